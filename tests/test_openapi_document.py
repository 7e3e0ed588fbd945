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
    if "$ref" in schema:
        schema = {**schema, "$ref": DOC_URI + schema["$ref"]}
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
    async with http.get(f"{controller.c.url}/docs") as r:
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
