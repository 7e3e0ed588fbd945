"""Errors of the CRM API as RFC 9457 problem details, over real HTTP: application/problem+json
with type, title, status, detail and instance; an ``errors`` list naming every bad field or
row of the request (not only the first); 415 for a media type a route does not read; 405
with ``Allow``; every body checked against the OpenAPI document's Problem schema."""
from __future__ import annotations

import json

import pytest
from jsonschema import Draft202012Validator

from controller.openapi import document

pytestmark = pytest.mark.controller(dispatch=False)

CALL = [{"kind": "call"}]


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def problem_validator() -> Draft202012Validator:
    doc = document()
    return Draft202012Validator({"$ref": "#/components/schemas/Problem", "components": doc["components"]})


async def problem(r, status: int, code: str) -> dict:
    """The answer's body, checked to be a problem of ``status`` and ``code``."""
    body = json.loads(await r.text())
    assert r.status == status and r.content_type == "application/problem+json", (r.status, r.content_type, body)
    problem_validator().validate(body)
    assert (body["status"], body["code"], body["type"]) == (status, code, f"/docs#problem-{code}"), body
    assert body["title"] and body["detail"] and body["instance"] == r.url.raw_path, body
    return body


async def test_a_campaign_with_six_mistakes_gets_all_six_named(controller, http):
    c, key = controller
    body = {"id": "a b", "colour": "red", "start": "yes",
            "strategy": [{"kind": "fax"}, {"kind": "call", "ring_seconds": 5}, {"kind": "call"}],
            "rules": {"hours": ["21:00", "08:00"], "max_attempts": 0, "loudness": 3}}
    async with http.post(f"{c.url}/v1/campaigns", json=body, headers=auth(key)) as r:
        out = await problem(r, 400, "invalid")
    assert {e["field"] for e in out["errors"]} == {
        "colour", "id", "start", "strategy[0].kind", "strategy[1].ring_seconds", "rules.loudness", "rules.hours",
        "rules.max_attempts"}, out["errors"]
    assert all(e["reason"] for e in out["errors"])
    assert "strategy[1].ring_seconds" in out["detail"] and "rules.hours" in out["detail"]
    assert c.store.list_campaigns() == []


async def test_an_import_names_every_bad_row_with_its_report(controller, http):
    c, key = controller
    async with http.post(f"{c.url}/v1/campaigns", json={"id": "c1", "strategy": CALL}, headers=auth(key)) as r:
        assert r.status == 201
    rows = [{"external_id": "a", "phones": ["+48600100200"]}, {"external_id": "b", "phones": ["12"]},
            {"external_id": "c", "phones": ["+48600100202"], "due_date": "2026-02-30"}, {"phones": ["+48600100203"]}]
    async with http.post(f"{c.url}/v1/campaigns/c1/contacts", json=rows, headers=auth(key)) as r:
        out = await problem(r, 422, "invalid_rows")
    assert [(e["line"], e["field"]) for e in out["errors"]] == [(2, "phones"), (3, "due_date"), (4, "external_id")]
    assert out["report"]["stored"] is False and out["report"]["rejected"] == 3 and "nothing was stored" in out["detail"]


@pytest.mark.parametrize("path", ["/v1/campaigns", "/v1/optouts", "/v1/webhooks", "/v1/campaigns/c1/contacts"])
async def test_an_unknown_content_type_is_a_415_naming_the_header(controller, http, path):
    c, key = controller
    c.store.create_campaign("c1", "c1", CALL, {}, c.clock())
    async with http.post(f"{c.url}{path}", data=b'{"id": "x", "strategy": [{"kind": "call"}]}',
                         headers={**auth(key), "Content-Type": "text/plain"}) as r:
        out = await problem(r, 415, "unsupported_media_type")
    assert out["errors"][0]["field"] == "Content-Type" and "Content-Type" in out["detail"]
    assert [x["id"] for x in c.store.list_campaigns()] == ["c1"] and c.store.list_optouts("", 10) == []


async def test_a_json_body_with_a_json_type_or_none_is_read(controller, http):
    c, key = controller
    for i, ctype in enumerate(("application/json", "application/merge-patch+json", None)):
        headers = {**auth(key), **({"Content-Type": ctype} if ctype else {})}
        async with http.post(f"{c.url}/v1/campaigns", data=json.dumps({"id": f"c{i}", "strategy": CALL}).encode(),
                             headers=headers) as r:
            assert r.status == 201, (ctype, await r.text())


async def test_a_wrong_method_is_a_405_with_allow_and_an_unknown_route_a_404(controller, http):
    c, key = controller
    async with http.delete(f"{c.url}/v1/campaigns", headers=auth(key)) as r:
        out = await problem(r, 405, "method_not_allowed")
        allow = {m.strip() for m in r.headers["Allow"].split(",")}
    assert {"GET", "POST"} <= allow and "DELETE" not in allow and "GET" in out["detail"]
    async with http.get(f"{c.url}/v1/nothing-here", headers=auth(key)) as r:
        await problem(r, 404, "not_found")
    async with http.get(f"{c.url}/v1/campaigns/nope", headers=auth(key)) as r:
        out = await problem(r, 404, "not_found")
    assert "nope" in out["detail"] and out["errors"] == []


async def test_auth_parameters_and_state_errors_are_problems_too(controller, http):
    c, key = controller
    async with http.get(f"{c.url}/v1/results") as r:
        await problem(r, 401, "unauthorized")
    async with http.get(f"{c.url}/v1/results?limit=5000", headers=auth(key)) as r:
        out = await problem(r, 400, "bad_parameter")
    assert out["errors"] == [{"field": "limit", "reason": "expected 1 to 1000"}]
    async with http.post(f"{c.url}/v1/campaigns", data=b"{not json", headers=auth(key)) as r:
        out = await problem(r, 400, "bad_json")
    assert out["errors"][0]["field"] == "body"
    async with http.post(f"{c.url}/v1/campaigns", json={"id": "c1", "strategy": CALL, "start": True}, headers=auth(key)) as r:
        assert r.status == 201
    async with http.post(f"{c.url}/v1/campaigns", json={"id": "c1", "strategy": CALL}, headers=auth(key)) as r:
        await problem(r, 409, "exists")
    async with http.post(f"{c.url}/v1/campaigns/c1/cancel", headers=auth(key)) as r:
        assert r.status == 200
    async with http.post(f"{c.url}/v1/campaigns/c1/start", headers=auth(key)) as r:
        out = await problem(r, 409, "bad_state")
    assert "cancelled" in out["detail"]


async def test_the_document_describes_every_error_as_the_problem_schema():
    doc = document()
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            for status, resp in op["responses"].items():
                if int(status) >= 400 and path != "/healthz":  # its 503 is the health report itself
                    assert resp == {"$ref": "#/components/responses/Problem"}, (method, path, status)
            if "requestBody" in op:
                assert "415" in op["responses"], (method, path)
            if method == "post":
                assert any(p.get("name") == "Idempotency-Key" for p in op["parameters"]), path
                assert {"409", "422"} <= set(op["responses"]), path
    content = doc["components"]["responses"]["Problem"]["content"]
    assert list(content) == ["application/problem+json"]
    assert content["application/problem+json"]["schema"] == {"$ref": "#/components/schemas/Problem"}
    problem_validator().validate(doc["components"]["schemas"]["Problem"]["example"])
    assert "Error" not in doc["components"]["schemas"]


async def test_a_webhook_and_an_opt_out_with_several_mistakes_get_each_named(controller, http):
    c, key = controller
    async with http.post(f"{c.url}/v1/webhooks", json={"url": "http://127.0.0.1/hook", "events": ["fax"], "secret": "short"},
                         headers=auth(key)) as r:
        out = await problem(r, 400, "invalid")
    assert [e["field"] for e in out["errors"]] == ["url", "events", "secret"] and "loopback" in out["errors"][0]["reason"]
    async with http.post(f"{c.url}/v1/optouts", json={"number": "hello", "reason": "x" * 201}, headers=auth(key)) as r:
        out = await problem(r, 400, "invalid")
    assert [e["field"] for e in out["errors"]] == ["number", "reason"]
    assert c.store.list_webhooks() == [] and c.store.list_optouts("", 10) == []


async def test_a_failure_inside_is_a_500_problem_and_does_not_keep_the_idempotency_key(controller, http, monkeypatch):
    c, key = controller
    real = c.store.add_optout

    def failing(*args, **kwargs):
        raise RuntimeError("simulated: the disk went away")

    monkeypatch.setattr(c.store, "add_optout", failing)
    headers = {**auth(key), "Idempotency-Key": "k500"}
    async with http.post(f"{c.url}/v1/optouts", json={"number": "+48600100200"}, headers=headers) as r:
        out = await problem(r, 500, "internal")
    assert "disk" not in out["detail"]  # the log has the traceback; the client is not shown internals
    monkeypatch.setattr(c.store, "add_optout", real)
    async with http.post(f"{c.url}/v1/optouts", json={"number": "+48600100200"}, headers=headers) as r:
        assert r.status == 201 and "Idempotent-Replayed" not in r.headers  # ran again, not a replayed 500
    assert [o["number"] for o in c.store.list_optouts("", 10)] == ["+48600100200"]


async def test_every_problem_type_points_at_its_entry_on_the_reference_page(controller, http):
    from controller.apikit import TITLES

    c, _ = controller
    async with http.get(f"{c.url}/docs/plain") as r:  # server-rendered (Redoc's anchors: test_reference_page)
        page = await r.text()
    for code, title in TITLES.items():
        assert f"id='problem-{code}'" in page and title in page.replace("&#x27;", "'"), code
