"""The served /openapi.json is a valid OpenAPI 3.1 document whose ``webhooks`` are enough
to receive the controller's deliveries from the document alone (issue 16): one entry per
event a webhook can subscribe to, each example payload valid against its schema, and the
signature recipe the document states — applied here by reading its x-signature fields,
not by calling the server's own ``verify`` — accepts real deliveries captured from a
running controller and refuses them once tampered with."""
from __future__ import annotations

import asyncio
import copy
import hmac
import json
from typing import Any

import pytest
from aiohttp import web
from controller_harness import FakeAppliance, FakeClock, enroll, make_config
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

DOC_URI = "urn:simrotor:openapi"


@pytest.fixture
def clock():
    """Inside the calling hours (2026-01-15 10:00 UTC), so the campaign's job is dispatched
    whenever the test runs; deliveries are timestamped by this clock."""
    return FakeClock(1768471200.0)


@pytest.fixture
def controller_config(tmp_path):
    """Webhooks to a receiver on loopback: allowed only with allow_private."""
    return make_config(tmp_path / "c.db", webhooks={"allow_private": True, "backoff_seconds": 0.2})


async def wait_for(pred, timeout: float = 10.0) -> None:
    """Until ``pred()`` holds: the deliveries arrive from the controller's worker."""
    async with asyncio.timeout(timeout):
        while not pred():
            await asyncio.sleep(0.05)


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def served_document(controller, http) -> dict[str, Any]:
    c, _ = controller
    async with http.get(f"{c.url}/openapi.json") as r:
        assert r.status == 200
        return await r.json()


def schema_validator(doc: dict[str, Any], schema: dict[str, Any]) -> Draft202012Validator:
    """A JSON Schema 2020-12 validator of ``schema`` whose $refs resolve inside ``doc``."""
    registry = Registry().with_resource(DOC_URI, Resource.from_contents(doc, default_specification=DRAFT202012))
    schema = json.loads(json.dumps(schema).replace('"$ref": "#/', f'"$ref": "{DOC_URI}#/'))  # nested ones too
    return Draft202012Validator(schema, registry=registry, format_checker=Draft202012Validator.FORMAT_CHECKER)


def body_validator(doc: dict[str, Any], event: str) -> Draft202012Validator:
    return schema_validator(doc, doc["webhooks"][event]["post"]["requestBody"]["content"]["application/json"]["schema"])


def signature_by_recipe(recipe: dict[str, Any], secret: str, timestamp: str, body: bytes) -> str:
    """The signature as the document's x-signature fields say to compute it."""
    algorithm, _, digest = recipe["algorithm"].partition("-")
    assert algorithm == "HMAC" and recipe["encoding"] == "hex", recipe
    before, after = recipe["signed_bytes"].split("{body}")
    signed = before.replace("{timestamp}", timestamp).encode() + body + after.replace("{timestamp}", timestamp).encode()
    return recipe["prefix"] + hmac.new(secret.encode(), signed, digest.lower()).hexdigest()


def verified_by_recipe(recipe: dict[str, Any], secret: str, headers: dict[str, str], body: bytes, now: float) -> bool:
    timestamp = headers.get(recipe["timestamp_header"], "")
    if not timestamp.isdigit() or abs(now - int(timestamp)) > recipe["tolerance_seconds"]:
        return False
    return hmac.compare_digest(signature_by_recipe(recipe, secret, timestamp, body), headers.get(recipe["header"], ""))


async def test_served_document_validates_with_a_webhook_per_subscribable_event(controller, http):
    doc = await served_document(controller, http)
    validate(doc)  # openapi-spec-validator: OpenAPI 3.1 (webhooks included)
    assert doc["openapi"].startswith("3.1")
    subscribable = (doc["paths"]["/v1/webhooks"]["post"]["requestBody"]["content"]["application/json"]["schema"]
                    ["properties"]["events"]["items"]["enum"])
    assert sorted(doc["webhooks"]) == sorted(subscribable) == ["inbound", "result"]
    for event, item in doc["webhooks"].items():
        op = item["post"]
        headers = {p["name"]: p for p in op["parameters"] if p["in"] == "header"}
        recipe = op["x-signature"]
        assert headers[recipe["header"]]["required"] and headers[recipe["timestamp_header"]]["required"]
        assert "HMAC-SHA256" in op["description"] and recipe["header"] in op["description"]
        assert headers["X-Simrotor-Event"]["schema"]["enum"] == [event]
        # the payload schema is a component, and says which event it is
        ref = op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        name = ref.rsplit("/", 1)[-1]
        assert doc["components"]["schemas"][name]["properties"]["type"] == {"const": event}
    async with http.get(f"{controller.c.url}/docs/plain") as r:  # the server-rendered page
        page = await r.text()
    assert "id='webhook-result'" in page and "id='webhook-inbound'" in page and "<script" not in page


async def test_each_webhook_example_validates_and_its_signature_follows_the_recipe(controller, http):
    doc = await served_document(controller, http)
    for event, item in doc["webhooks"].items():
        op = item["post"]
        example = op["requestBody"]["content"]["application/json"]["example"]
        checker = body_validator(doc, event)
        assert list(checker.iter_errors(example)) == [], event
        broken = copy.deepcopy(example)
        del broken["external_id"]
        broken["at"] = "yesterday"
        assert len(list(checker.iter_errors(broken))) == 2  # the schema is not vacuous
        recipe = op["x-signature"]
        worked = recipe["example"]
        assert json.loads(worked["body"]) == example
        assert worked["signed_bytes"] == f"{worked['timestamp']}.{worked['body']}"
        assert signature_by_recipe(recipe, worked["secret"], worked["timestamp"], worked["body"].encode()) \
            == worked["signature"]
        params = {p["name"]: p for p in op["parameters"]}
        assert params[recipe["header"]]["example"] == worked["signature"]
        assert params[recipe["timestamp_header"]]["example"] == worked["timestamp"]
        for p in op["parameters"]:  # each header's example fits its schema
            assert list(schema_validator(doc, p["schema"]).iter_errors(p["example"])) == [], p["name"]


async def test_real_deliveries_verify_by_the_documents_recipe_and_fit_their_schemas(controller, http):
    c, key = controller
    s = http
    doc = await served_document(controller, http)
    captured: list[tuple[dict[str, str], bytes]] = []

    async def receive(request: web.Request) -> web.Response:
        captured.append((dict(request.headers), await request.read()))
        return web.Response(status=204)

    receiver = web.Application()
    receiver.router.add_post("/hook", receive)
    runner = web.AppRunner(receiver)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    try:
        async with s.post(f"{c.url}/v1/webhooks", json={"url": f"http://127.0.0.1:{port}/hook"}, headers=auth(key)) as r:
            assert r.status == 201
            secret = (await r.json())["secret"]
        async with s.post(f"{c.url}/v1/campaigns", json={"id": "c1", "strategy": [{"kind": "call"}], "start": True},
                          headers=auth(key)) as r:
            assert r.status == 201
        async with s.post(f"{c.url}/v1/campaigns/c1/contacts", json=[{"external_id": "D-1042", "phones": ["+48600100200"]}],
                          headers=auth(key)) as r:
            assert r.status == 200
        app = FakeAppliance(s, c.url, await enroll(s, c, "box-01"), clock=c.clock)
        await app.connect()
        await app.reach_then_text_back("+48690000003", "Zapłacę w piątek", "in-9")
        await wait_for(lambda: len(captured) == 2)
        await app.close()
    finally:
        await runner.cleanup()

    seen = set()
    for headers, body in captured:
        event = headers["X-Simrotor-Event"]
        op = doc["webhooks"][event]["post"]
        recipe = op["x-signature"]
        now = c.clock()
        assert verified_by_recipe(recipe, secret, headers, body, now), (event, headers)
        assert not verified_by_recipe(recipe, secret, headers, body.replace(b"D-1042", b"D-1043"), now)
        assert not verified_by_recipe(recipe, secret[::-1], headers, body, now)
        assert not verified_by_recipe(recipe, secret, headers, body, now + recipe["tolerance_seconds"] + 5)  # replay
        payload = json.loads(body)
        assert list(body_validator(doc, event).iter_errors(payload)) == [], (event, payload)
        assert payload["type"] == event and payload["external_id"] == "D-1042"
        for p in op["parameters"]:  # every documented header came, fitting its schema
            value = headers[p["name"]]
            assert list(schema_validator(doc, p["schema"]).iter_errors(value)) == [], (p["name"], value)
        seen.add(event)
    assert seen == {"result", "inbound"}


def test_the_docs_worked_example_is_the_documents():
    """docs/controller.md's openssl example is the document's inbound example, unchanged."""
    from pathlib import Path

    from controller.openapi import document

    docs = (Path(__file__).resolve().parent.parent / "docs" / "controller.md").read_text()
    section = docs.split("### Webhooks", 1)[1].split("\n### ", 1)[0]
    worked = document()["webhooks"]["inbound"]["post"]["x-signature"]["example"]
    assert f"SECRET={worked['secret']} TS={worked['timestamp']}" in section
    assert f"BODY='{worked['body']}'" in section
    assert worked["signature"].removeprefix("sha256=") + " *stdin" in section


METHODS = ("get", "put", "post", "delete", "patch")


def operations(doc: dict[str, Any]):
    for path, item in doc["paths"].items():
        for method in METHODS:
            if method in item:
                yield method, path, item[method]


def success(op: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The operation's first 2xx answer."""
    status = min(s for s in op["responses"] if s.startswith("2"))
    return status, op["responses"][status]


def media_examples(content: dict[str, Any]):
    """(media type, schema, examples) of each media type of a body or an answer."""
    for ctype, media in content.items():
        examples = ([media["example"]] if "example" in media else []) + [
            e["value"] for e in media.get("examples", {}).values()]
        yield ctype, media["schema"], examples


def example_problems(doc: dict[str, Any], content: dict[str, Any]) -> list[str]:
    """What is wrong with the examples of ``content``: missing, or not fitting their schema."""
    problems = []
    for ctype, schema, examples in media_examples(content):
        if not examples:
            problems.append(f"{ctype}: no example")
        checker = schema_validator(doc, schema)
        for example in examples:
            problems += [f"{ctype}: {e.json_path}: {e.message}" for e in checker.iter_errors(example)]
    return problems


def is_binary(content: dict[str, Any]) -> bool:
    """An audio upload: no example can show one in JSON (the operation's text says what it is)."""
    return all(m["schema"].get("format") == "binary" for m in content.values())


async def test_every_operation_has_examples_that_fit_their_schemas(controller, http):
    doc = await served_document(controller, http)
    missing: dict[str, list[str]] = {}
    checked = 0
    for method, path, op in operations(doc):
        problems = []
        body = op.get("requestBody")
        if body is not None and not is_binary(body["content"]):
            problems += [f"request {p}" for p in example_problems(doc, body["content"])]
            checked += 1
        status, answer = success(op)
        problems += [f"answer {status} {p}" for p in example_problems(doc, answer["content"])]
        checked += 1
        for p in op.get("parameters", []):
            if p["in"] == "path":
                problems += [f"parameter {p['name']}: no example"] if "example" not in p else [
                    f"parameter {p['name']}: {e.message}" for e in schema_validator(doc, p["schema"]).iter_errors(p["example"])]
        if problems:
            missing[f"{method.upper()} {path}"] = problems
    assert missing == {}
    assert checked >= 40  # 35 operations, 8 of them with a body: the walk saw them all
    # every error answer is the Problem response, whose examples are problems
    problem = doc["components"]["responses"]["Problem"]["content"]
    assert example_problems(doc, problem) == [] and len(problem["application/problem+json"]["examples"]) >= 4
    for method, path, op in operations(doc):
        for status, answer in op["responses"].items():
            # /healthz's 503 is the health document a load balancer reads (the 200's shape,
            # status failing), not a problem with a request
            if status[0] in "45" and (path, status) != ("/healthz", "503"):
                assert answer == {"$ref": "#/components/responses/Problem"}, (method, path, status)
    # the CSV import's columns are in the document, each with its format
    csv_body = doc["paths"]["/v1/campaigns/{id}/contacts"]["post"]["requestBody"]["content"]["text/csv"]
    for column in ("external_id", "phones", "amount", "currency", "due_date", "time_zone", "language", "region"):
        assert f"{column}: " in csv_body["schema"]["description"], column
    # the checks are not vacuous: a wrong example is caught
    broken = copy.deepcopy(doc)
    create = broken["paths"]["/v1/campaigns"]["post"]
    create["requestBody"]["content"]["application/json"]["example"]["strategy"][0]["kind"] = "fax"
    del create["responses"]["201"]["content"]["application/json"]["example"]["state"]
    assert len(example_problems(broken, create["requestBody"]["content"])) == 1
    assert len(example_problems(broken, create["responses"]["201"]["content"])) == 1


def answer_problems(doc: dict[str, Any], op: dict[str, Any], status: int, ctype: str, body: Any) -> list[str]:
    """What is wrong with a live answer: an undocumented status or media type, or a body that
    does not fit its schema (an error: the Problem schema)."""
    answer = op["responses"].get(str(status)) or op["responses"].get(f"{str(status)[0]}XX")
    if answer is None:
        return [f"status {status} is not documented"]
    if "$ref" in answer:
        answer = doc["components"]["responses"][answer["$ref"].rsplit("/", 1)[-1]]
    media = answer.get("content", {}).get(ctype)
    if media is None:
        return [f"{status} {ctype} is not documented"]
    return [f"{e.json_path}: {e.message}" for e in schema_validator(doc, media["schema"]).iter_errors(body)]


#: The request examples sent in the story's order: (method, path, expected status). A
#: fresh controller answers each with its documented success, except where it says why.
STORY = (
    ("post", "/v1/enroll", 200),  # with a live one-time token in the example's place
    ("post", "/v1/campaigns", 201),
    ("post", "/v1/campaigns/{id}/contacts", 200),  # JSON, then CSV: the re-import updates both rows
    ("get", "/v1/campaigns/{id}", 200),
    ("post", "/v1/campaigns/{id}/start", 200),
    ("post", "/v1/campaigns/{id}/pause", 200),
    ("post", "/v1/campaigns/{id}/resume", 200),
    ("get", "/v1/campaigns", 200),
    ("get", "/v1/campaigns/{id}/contacts", 200),
    ("get", "/v1/contacts", 200),
    ("get", "/v1/contacts/{id}", 200),
    ("get", "/v1/contacts/{id}/history", 200),
    ("get", "/v1/results", 200),
    ("get", "/v1/inbound", 200),
    ("get", "/v1/campaigns/{id}/report", 200),
    ("get", "/v1/results/export", 200),
    ("post", "/v1/optouts", 201),
    ("post", "/v1/optouts/bulk", 200),  # JSON, then CSV
    ("get", "/v1/optouts", 200),
    ("delete", "/v1/optouts/{number}", 200),
    ("post", "/v1/webhooks", 201),  # its host resolved to a public address (no DNS in a test)
    ("get", "/v1/webhooks", 200),
    ("delete", "/v1/webhooks/{id}", 200),
    ("get", "/v1/webhooks/dead-letters", 200),
    ("post", "/v1/webhooks/dead-letters/replay", 200),  # ids of no dead letter: 0 replayed
    ("get", "/v1/appliances", 200),
    ("get", "/v1/appliances/{id}", 200),
    ("get", "/v1/recordings", 200),
    ("get", "/v1/recordings/{id}", 404),  # no call was recorded: the not_found problem
    ("post", "/v1/campaigns/{id}/cancel", 200),
    ("get", "/healthz", 200),
    ("get", "/metrics", 200),
)


async def test_request_examples_get_documented_answers_from_a_live_controller(controller, http, monkeypatch):
    """Each request example, sent as a client would, is accepted, and every answer fits the
    document; ids the server chooses (contacts, webhooks) are taken from earlier answers."""
    from controller_harness import create_enroll_token

    from controller import api

    c, key = controller

    async def public(url: str, *, allow_private: bool) -> None:
        assert url == "https://crm.example.com/hooks/simrotor"

    monkeypatch.setattr(api, "check_target", public)
    doc = await served_document(controller, http)
    ops = {(m, p): op for m, p, op in operations(doc)}
    untold = set(ops) - {(m, p) for m, p, _ in STORY}
    assert untold == {("put", "/v1/link/recordings/{id}")}  # the appliance's audio upload (test_recordings)
    chosen: dict[str, Any] = {}  # ids the server picked
    wrong: dict[str, list[str]] = {}
    sent = 0
    for method, path, expected in STORY:
        op = ops[(method, path)]
        url = path
        for p in op.get("parameters", []):
            if p["in"] == "path":
                url = url.replace("{" + p["name"] + "}", str(chosen.get(path.split("/")[2], p["example"])))
        query = {p["name"]: p["example"] for p in op.get("parameters", []) if p["in"] == "query" and p.get("required")}
        bodies = [(ctype, media["example"]) for ctype, media in op.get("requestBody", {}).get("content", {}).items()] \
            or [(None, None)]
        for ctype, example in bodies:
            if path == "/v1/enroll":
                example = {**example, "token": create_enroll_token(c.store, 600, c.clock())["token"]}
            kwargs: dict[str, Any] = {"params": query, "headers": auth(key)}
            if ctype == "application/json":
                kwargs["json"] = example
            elif ctype is not None:
                kwargs["data"] = example.encode()
                kwargs["headers"] = {**auth(key), "Content-Type": ctype}
            async with http.request(method, c.url + url, **kwargs) as r:
                raw = await r.read()
                answer = json.loads(raw) if r.content_type.endswith("json") else raw.decode()
                status, rtype = r.status, r.content_type
            sent += 1
            problems = [] if status == expected else [f"{status}, not {expected}: {str(answer)[:300]}"]
            problems += answer_problems(doc, op, status, rtype, answer)
            if problems:
                wrong[f"{method.upper()} {url} {ctype or ''}"] = problems
            if path == "/v1/campaigns/{id}/contacts" and method == "get":
                chosen["contacts"] = answer["items"][0]["id"]
            elif path == "/v1/webhooks" and method == "post":
                chosen["webhooks"] = answer.get("id")
    assert wrong == {}
    assert sent == len(STORY) + 2  # the import and the bulk opt-outs each sent JSON and CSV


async def test_operation_ids_are_unique_and_links_name_real_operations_and_parameters(controller, http):
    doc = await served_document(controller, http)
    ops = {op["operationId"]: op for _, _, op in operations(doc)}
    assert len(ops) == len(list(operations(doc)))  # one id each, none repeated
    chained = set()
    for method, path, op in operations(doc):
        for status, answer in op["responses"].items():
            for name, link in answer.get("links", {}).items():
                target = ops[link["operationId"]]
                names = {p["name"] for p in target.get("parameters", [])}
                assert set(link["parameters"]) <= names, (method, path, status, name)
                for expr in link["parameters"].values():
                    assert expr.startswith(("$response.body#/", "$request.path.")), expr
                chained.add((op["operationId"], link["operationId"]))
    # the stateful chain: create a campaign -> import -> start -> pause -> report, a contact -> its history
    for step in [("createCampaign", "importContacts"), ("importContacts", "startCampaign"),
                 ("startCampaign", "pauseCampaign"), ("pauseCampaign", "getCampaignReport"),
                 ("listContacts", "getContact"), ("getContact", "getContactHistory")]:
        assert step in chained, step
