"""The campaign lifecycle over real HTTP and a fake appliance on a real link:
``draft -> running <-> paused -> done | cancelled``. A campaign is created as a draft unless
``"start": true``; the dispatcher leases nothing of a draft, however many contacts it holds;
``POST …/start`` starts it; asking for the state a campaign is already in is a 200 that
changes nothing; what the lifecycle does not allow is a 409 naming what it does allow."""
from __future__ import annotations

import asyncio

import pytest
from controller_harness import FakeAppliance, enroll

pytestmark = pytest.mark.controller(dispatch=False)  # the test ticks dispatch itself

CALL = [{"kind": "call"}]
ALL_DAY = {"hours": ["00:00", "23:59"]}
PEOPLE = [{"external_id": f"d{i}", "phones": [f"+4860010020{i}"]} for i in range(3)]


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def post(http, c, key, path: str, body=None) -> tuple[int, dict]:
    async with http.post(f"{c.url}{path}", json=body, headers=auth(key)) as r:
        return r.status, await r.json(content_type=None)


async def connected_box(http, c) -> FakeAppliance:
    box = FakeAppliance(http, c.url, await enroll(http, c, "box-01"))
    await box.connect(capacity=4)
    async with asyncio.timeout(5):  # waiting for the controller to read the hello, not timing it
        while c.connected() == 0:
            await asyncio.sleep(0.01)
    return box


async def test_a_draft_takes_contacts_but_is_not_dialled_until_started(controller, http):
    c, key = controller
    box = await connected_box(http, c)
    try:
        status, camp = await post(http, c, key, "/v1/campaigns", {"id": "jan", "strategy": CALL, "rules": ALL_DAY})
        assert status == 201 and camp["state"] == "draft"
        status, report = await post(http, c, key, "/v1/campaigns/jan/contacts", PEOPLE)
        assert status == 200 and report["created"] == 3
        for _ in range(3):
            out = await c.dispatch_once()
            assert out["planned"] == 0 and out["refused"] == 0, out
        assert c.store.open_jobs_by_state() == {"leased": 0, "accepted": 0, "started": 0}
        assert c.store.get_campaign("jan")["state"] == "draft"  # finish_idle_campaigns leaves a draft alone
        status, camp = await post(http, c, key, "/v1/campaigns/jan/start")
        assert status == 200 and camp["state"] == "running"
        out = await c.dispatch_once()
        assert out["planned"] == 3, out
        batch = await box.expect("jobs")
        assert sorted(j["callee"] for j in batch["jobs"]) == sorted(p["phones"][0] for p in PEOPLE)
    finally:
        await box.close()


async def test_start_true_creates_a_running_campaign(controller, http):
    c, key = controller
    status, camp = await post(http, c, key, "/v1/campaigns", {"id": "now", "strategy": CALL, "start": True})
    assert status == 201 and camp["state"] == "running"
    status, out = await post(http, c, key, "/v1/campaigns", {"id": "bad", "strategy": CALL, "start": 1})
    assert status == 400 and [e["field"] for e in out["errors"]] == ["start"]


@pytest.mark.parametrize("steps", [
    # (action, status, state after): a repeated request for the state it is in is a 200
    [("start", 200, "running"), ("start", 200, "running"), ("resume", 200, "running"), ("pause", 200, "paused"),
     ("pause", 200, "paused"), ("start", 409, "paused"), ("resume", 200, "running"), ("cancel", 200, "cancelled"),
     ("cancel", 200, "cancelled"), ("resume", 409, "cancelled"), ("start", 409, "cancelled"), ("pause", 409, "cancelled")],
    [("pause", 409, "draft"), ("resume", 409, "draft"), ("cancel", 200, "cancelled"), ("start", 409, "cancelled")],
])
async def test_state_changes_are_idempotent_and_the_rest_is_a_409_saying_what_can_be_done(controller, http, steps):
    c, key = controller
    assert (await post(http, c, key, "/v1/campaigns", {"id": "c1", "strategy": CALL}))[0] == 201
    for action, want, state in steps:
        status, out = await post(http, c, key, f"/v1/campaigns/c1/{action}")
        assert status == want, (action, out)
        if status == 409:
            assert out["code"] == "bad_state" and action in out["detail"], out
            assert ("it can:" in out["detail"]) is (state != "cancelled"), out["detail"]
        else:
            assert out["state"] == state
        assert c.store.get_campaign("c1")["state"] == state, action


async def test_a_done_campaign_is_finished_and_an_import_reopens_it(controller, http):
    c, key = controller
    assert (await post(http, c, key, "/v1/campaigns", {"id": "d", "strategy": CALL, "start": True}))[0] == 201
    assert c.store.set_campaign_state("d", "running", "done", c.clock())
    status, out = await post(http, c, key, "/v1/campaigns/d/pause")
    assert status == 409 and "done" in out["detail"]
    status, _ = await post(http, c, key, "/v1/campaigns/d/contacts", PEOPLE[:1])
    assert status == 200 and c.store.get_campaign("d")["state"] == "running"
