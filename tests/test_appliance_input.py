"""Bad input at the appliance's local API (issue 12, item 4 and 5): the real runtime over
an emulated bank, jobs over HTTP. Each is an RFC 9457 problem (application/problem+json:
type, title, status, detail, instance, code, errors) whose ``errors`` name the job (index)
and the field — never aiohttp's plain-text 500 — and no job of a refused body reaches the
store."""
from __future__ import annotations

import json

import aiohttp
import pytest

from common.problems import PROBLEM_JSON
from modem_drivers.emulator import Timing

TOKEN = "input-token-0123456789"
GOOD = {"id": "ok-1", "kind": "call", "callee": "+48600100200"}

pytestmark = pytest.mark.bank(modems=2, sims_per_modem=1, timing=Timing.FAST, seed=3)


@pytest.fixture
def appliance_config(tmp_path, bank):
    """The ``appliance`` fixture's (seed 1): the API on a free port with TOKEN."""
    return {
        "emulator_state": str(bank.state),
        "appliance": {"id": "input", "store": str(tmp_path / "appliance.db"), "listen": "127.0.0.1:0", "token": TOKEN},
    }


def jobs_stored(app) -> int:
    return app.store.conn.execute("SELECT COUNT(*) FROM jobs").fetchone()[0]


async def post(app, body: bytes):
    async with aiohttp.ClientSession(app.address) as s:
        async with s.post("/api/jobs", data=body, headers={"Authorization": f"Bearer {TOKEN}",
                                                          "Content-Type": "application/json"}) as r:
            # never a plain-text page: a reply, or an RFC 9457 problem
            assert r.content_type == ("application/json" if r.status < 400 else "application/problem+json"), await r.text()
            return r.status, await r.json()


def deep(n: int) -> str:
    return "[" * n + "]" * n


@pytest.mark.parametrize("body,index,field", [
    ('{"jobs": [{"id": "a", "kind": "call", "callee": "+48600100200", "hints": ' + deep(100_000) + "}]}", 0, "hints"),
    ('[{"id": "a", "kind": "call", "callee": "+48600100200"}, {"id": "b", "call": {"message": ' + deep(100_000) + "}}]",
     1, "call"),
    (deep(100_000), 0, "job"),
    ('[{"id": "a", "kind": "call", "callee": "+48600100200", "colour": 1}]', 0, "colour"),
    ('[{"id": "a", "kind": "call", "callee": "+48600100200", "priority": ' + "9" * 5000 + "}]", 0, "priority"),
    ('{"work": []}', None, "body"),
    ("[" + ",".join(["{}"] * 50_000) + "]", None, "body"),
])
async def test_bodies_that_cannot_be_read_are_a_json_400_naming_job_and_field(appliance, body, index, field):
    status, out = await post(appliance, body.encode())
    assert status == 400 and out["code"] == "invalid_json" and out["instance"] == "/api/jobs"
    [problem] = out["errors"]
    assert (problem["index"], problem["field"]) == (index, field), out
    assert problem["reason"] in out["detail"], out
    assert jobs_stored(appliance) == 0


@pytest.mark.parametrize("job,field", [
    ({"priority": 2**70}, "priority"),
    ({"priority": -2**40}, "priority"),
    ({"priority": 1.5}, "priority"),
    ({"not_before": 1e300}, "not_before"),
    ({"deadline": -1}, "deadline"),
    ({"callee": "+48 60a bcd efg"}, "callee"),
    ({"callee": "+48600100200 ext 12"}, "callee"),
    ({"hints": {"fixed_number": "+48 690 ABC 001"}}, "hints.fixed_number"),
    ({"hints": {"pool": ["a", "b"]}}, "hints.pool"),
    ({"call": {"max_ring_seconds": 1e9}}, "call.max_ring_seconds"),
    ({"call": {"max_talk_seconds": 0}}, "call.max_talk_seconds"),
    ({"call": {"ring_secs": 30}}, "call.ring_secs"),
    ({"retry": {"max_attempts": "three"}}, "retry.max_attempts"),
    ({"retry": {"max_attempts": 2**70}}, "retry.max_attempts"),
    ({"retry": {"backoff_factor": 1e308}}, "retry.backoff_factor"),
    ({"retry": {"retry_outcomes": "busy"}}, "retry.retry_outcomes"),
    ({"contact": 2**70}, "contact"),
])
async def test_out_of_range_fields_are_a_json_400_and_the_job_is_not_stored(appliance, job, field):
    status, out = await post(appliance, json.dumps([{**GOOD, **job}]).encode())
    assert status == 400 and out["code"] == "invalid_jobs", out
    assert out["errors"] == [{"index": 0, "id": "ok-1", "field": field, "reason": out["errors"][0]["reason"]}]
    assert out["detail"] == f"job 0: {field}: {out['errors'][0]['reason']}", out
    assert out["accepted"] == [] and jobs_stored(appliance) == 0


async def test_in_range_values_are_accepted(appliance):
    job = {**GOOD, "priority": 2**31 - 1, "not_before": 1.0, "deadline": 253402300799, "callee": "+48 (600) 100-200",
           "call": {"max_ring_seconds": 180, "max_talk_seconds": 60}, "retry": {"max_attempts": 3, "backoff_factor": 2},
           "campaign": "c1", "contact": 2**63 - 1}
    status, out = await post(appliance, json.dumps([job]).encode())
    assert status == 200 and out["accepted"] == ["ok-1"] and jobs_stored(appliance) == 1


async def test_a_results_cursor_beyond_64_bits_is_a_400_not_a_500(appliance):
    async with aiohttp.ClientSession(appliance.address) as s:
        async with s.get(f"/api/results?after={2**64}", headers={"Authorization": f"Bearer {TOKEN}"}) as r:
            assert r.status == 400 and (await r.json(content_type=PROBLEM_JSON))["code"] == "invalid_query"


async def test_every_error_is_a_problem_415_for_a_body_not_sent_as_json_and_405_names_allow(appliance):
    auth = {"Authorization": f"Bearer {TOKEN}"}
    async with aiohttp.ClientSession(appliance.address) as s:
        async with s.post("/api/jobs", data=json.dumps([GOOD]), headers={**auth, "Content-Type": "text/csv"}) as r:
            assert (r.status, r.content_type) == (415, PROBLEM_JSON)
            out = await r.json(content_type=PROBLEM_JSON)
        assert out == {"type": "urn:simrotor:appliance:problem:unsupported_media_type",
                       "title": "The request's Content-Type is not one this route reads", "status": 415,
                       "detail": "Content-Type: 'text/csv' is not read here; send application/json",
                       "instance": "/api/jobs", "code": "unsupported_media_type",
                       "errors": [{"field": "Content-Type", "reason": "'text/csv' is not read here; send application/json"}]}
        assert jobs_stored(appliance) == 0
        async with s.post("/api/modems/emu000/stop", data="when_idle=1", headers={
                **auth, "Content-Type": "application/x-www-form-urlencoded"}) as r:
            assert r.status == 415 and (await r.json(content_type=PROBLEM_JSON))["code"] == "unsupported_media_type"
        assert all(c["state"] != "stopped" for c in appliance.bank.snapshot())  # nothing was done
        async with s.put("/api/jobs", json=[GOOD], headers=auth) as r:
            assert (r.status, r.content_type, r.headers["Allow"]) == (405, PROBLEM_JSON, "POST")
            out = await r.json(content_type=PROBLEM_JSON)
            assert (out["code"], out["status"], out["instance"], out["errors"]) == ("method_not_allowed", 405, "/api/jobs", [])
            assert "POST" in out["detail"]
        async with s.get("/api/nothing%20here", headers=auth) as r:
            out = await r.json(content_type=PROBLEM_JSON)
            assert (r.status, out["code"], out["instance"]) == (404, "not_found", "/api/nothing%20here")
        async with s.get("/api/status") as r:
            out = await r.json(content_type=PROBLEM_JSON)
            assert (r.status, out["code"], out["title"]) == (401, "unauthorized", "No valid credential")


async def test_the_local_api_client_reads_the_problem(appliance):
    from appliance.localapi import LocalApi, LocalApiError

    with pytest.raises(LocalApiError) as refused:
        await LocalApi(appliance.address, TOKEN).control("nope", "stop")
    assert (refused.value.status, refused.value.code) == (404, "not_found") and "no modem 'nope'" in str(refused.value)
    with pytest.raises(LocalApiError) as refused:
        await LocalApi(appliance.address, "not-the-token").channels()
    assert (refused.value.status, refused.value.code) == (401, "unauthorized") and "Bearer" in str(refused.value)
