"""Pause reaches the appliance (issue 12, item 6): jobs handed to an appliance and not yet
dialled are withdrawn at once and come back ``cancelled`` with the reason; a call under
way ends normally; nothing is dialled for a paused campaign; resume plans the withdrawn
contacts again under new job ids, without using up their attempts. On the appliance's
default limits (pauses between calls keep jobs queued there), default calling hours."""
from __future__ import annotations

import asyncio

import pytest

from appliance.config import parse_config
from appliance.runtime import Appliance
from controller_harness import FakeClock, enroll, make_config
from modem_drivers.emulator import Timing
from system_harness import clock_between, controller_sections

pytestmark = pytest.mark.bank(modems=4, sims_per_modem=1, timing=Timing.FAST, seed=11)


@pytest.fixture
def clock() -> FakeClock:
    """The controller's clock inside the default calling hours (08:00-21:00 in the
    callee's zone, Warsaw here), with an hour to spare at either end."""
    return clock_between(9, 20)


@pytest.fixture
def controller_config(tmp_path):
    """The system tests' controller (system_harness.controller_sections)."""
    return make_config(tmp_path / "controller.db", **controller_sections())


async def test_pause_withdraws_queued_jobs_and_resume_plans_them_again(tmp_path, bank, controller, crm):
    emu = bank.emu
    (tmp_path / "cred").write_text(await enroll(crm.s, controller.c, "box-01"))
    app = Appliance(parse_config({  # the appliance's defaults: limits, pauses, lock rules
        "emulator_state": str(bank.state),
        "appliance": {"id": "box-01", "store": str(tmp_path / "a.db"), "listen": ""},
        "link": {"url": controller.c.url.replace("http", "ws") + "/v1/link",
                 "credential_file": str(tmp_path / "cred"), "heartbeat_seconds": 1.0},
    }), seed=3)
    await app.start()
    try:
        status, _ = await crm.call("POST", "/v1/campaigns", json={
            "id": "p", "name": "Pause", "start": True, "strategy": [{"kind": "call", "attempts": 1, "ring_seconds": 15}]})
        assert status == 201
        rows = ["external_id,phones"] + [f"c{i},+48600{i % 4}0{i:05d}".replace("+48600", "+4860") for i in range(16)]
        status, imported = await crm.call("POST", "/v1/campaigns/p/contacts", data="\n".join(rows).encode(),
                                          headers={"Content-Type": "text/csv"})
        assert status == 200 and imported["created"] == 16, imported

        # The first calls go out at once; the pauses between calls keep the rest queued.
        async with asyncio.timeout(30):
            while app.scheduler.stats()["queued"] == 0 or not any(c for c in emu.network.calls):
                await asyncio.sleep(0.05)
        status, _ = await crm.call("POST", "/v1/campaigns/p/pause")
        assert status == 200
        async with asyncio.timeout(10):  # withdrawn within one dispatch cycle
            while app.scheduler.stats()["queued"]:
                await asyncio.sleep(0.02)
        async with asyncio.timeout(10):
            while True:
                results = await crm.all_results("p")
                withdrawn = [r for r in results if r["outcome"] == "cancelled"]
                if withdrawn and app.scheduler.stats()["running"] == 0:
                    break
                await asyncio.sleep(0.1)
        called = {c.callee for c in emu.network.calls}
        for r in withdrawn:
            assert r["detail"]["detail"] == "campaign paused", r
            assert r["callee"] not in called, f"{r['callee']} was dialled after its job was withdrawn"
        calls_at_pause = len(emu.network.calls)
        await asyncio.sleep(2.0)  # paused: nothing new is handed out or dialled
        assert len(emu.network.calls) == calls_at_pause
        assert app.scheduler.stats()["queued"] == 0

        status, _ = await crm.call("POST", "/v1/campaigns/p/resume")
        assert status == 200
        again = {r["job_id"] + ".g1" for r in withdrawn}
        async with asyncio.timeout(20):  # the same contacts, new job ids (.g1), same attempt number
            while not again & (set(app.scheduler._jobs) | set(app.scheduler._running)):
                await asyncio.sleep(0.1)
    finally:
        await app.stop()
