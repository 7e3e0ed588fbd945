"""Bad input at the appliance's local API (issue 12, item 4 and 5): the real runtime over
an emulated bank, jobs over HTTP. Each is a JSON 4xx ``{error, detail}`` naming the job
(index) and the field — never aiohttp's plain-text 500 — and no job of a refused body
reaches the store."""
from __future__ import annotations

import json

import aiohttp
import pytest

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
            assert r.content_type == "application/json", await r.text()  # never a plain-text page
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
    assert status == 400 and out["error"] == "invalid_json"
    assert (out["detail"]["index"], out["detail"]["field"]) == (index, field), out
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
    assert status == 400, out
    assert out["errors"] == [{"index": 0, "id": "ok-1", "field": field, "reason": out["errors"][0]["reason"]}]
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
            assert r.status == 400 and (await r.json())["error"] == "invalid_query"
