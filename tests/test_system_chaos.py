"""The whole system under trouble: mid-campaign the controller is stopped and started
again (the link drops and comes back), then the appliance is killed with SIGKILL and
restarted. Every contact still ends with its results, and nobody is dialed more often
than the campaign allows."""
from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections import Counter

import aiohttp
import pytest

from controller.server import Controller
from controller.server import create_key
from controller_harness import enroll, make_config
from modem_drivers.emulator import Timing
from system_harness import Crm, appliance_config, controller_sections, free_port, toml_text
from test_system_e2e import daytime_clock

STRATEGY = [
    {"kind": "hlr", "method": "sms_ping"},
    {"kind": "call", "attempts": 1, "ring_seconds": 15},
    {"kind": "sms", "text": "Dzień dobry {name}."},
]


async def spawn_appliance(config_path, log):
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "simrotor", "appliance", "run", "--config", str(config_path),
        "--log-level", "WARNING", stdout=log, stderr=log)


async def wait_results(crm: Crm, at_least: int, timeout: float = 60) -> list[dict]:
    async with asyncio.timeout(timeout):
        while True:
            res = await crm.all_results("chaos")
            if len(res) >= at_least:
                return res
            await asyncio.sleep(0.2)


@pytest.mark.timeout(300)
@pytest.mark.bank(modems=8, sims_per_modem=2, timing=Timing.FAST, seed=9)
async def test_link_cut_controller_restart_and_appliance_kill(tmp_path, bank):
    clock = daytime_clock()
    emu = bank.emu
    port = free_port()
    sections = controller_sections()
    sections["dispatch"]["lease_seconds"] = 60.0
    sections["dispatch"]["stranded_after_seconds"] = 120.0
    ccfg = make_config(tmp_path / "controller.db", controller={"listen": f"127.0.0.1:{port}"}, **sections)
    controller = Controller(ccfg, clock=clock)
    await controller.start()
    key = create_key(controller.store, "crm", clock())["key"]
    log = open(tmp_path / "appliance.log", "ab")
    proc = None
    try:
        async with aiohttp.ClientSession() as session:
            (tmp_path / "cred").write_text(await enroll(session, controller, "box-01"))
            acfg = appliance_config(tmp_path, bank.state, f"ws://127.0.0.1:{port}/v1/link", tmp_path / "cred")
            acfg["appliance"]["listen"] = ""
            (tmp_path / "a.json").write_text(json.dumps(acfg))
            toml = tmp_path / "a.toml"
            toml.write_text(toml_text(acfg))
            proc = await spawn_appliance(toml, log)
            crm = Crm(session, controller.url, key)
            status, _ = await crm.call("POST", "/v1/campaigns", json={
                "id": "chaos", "name": "Chaos", "start": True, "strategy": STRATEGY, "rules": {"hours": ["00:00", "23:59"]}})
            assert status == 201
            people = [{"external_id": f"p{i}", "phones": [f"+4860{i % 4}{(0, 2, 3, 5, 6)[i % 5]}{i:05d}"],
                       "name": f"P{i}"} for i in range(60)]
            status, imported = await crm.call("POST", "/v1/campaigns/chaos/contacts", json=people)
            assert status == 200 and imported["created"] == 60

            async def tick() -> None:  # leases and retries run on the controller's clock
                while True:
                    await asyncio.sleep(0.5)
                    clock.advance(30)

            ticker = asyncio.ensure_future(tick())
            try:
                await wait_results(crm, 30)
                # 1. The controller goes away (the link drops) and comes back on the same store.
                await controller.stop()
                await asyncio.sleep(1.0)
                controller = Controller(ccfg, clock=clock)
                await controller.start()
                crm = Crm(session, controller.url, key)
                await wait_results(crm, 90)
                # 2. The appliance is killed mid-work and restarted.
                os.kill(proc.pid, signal.SIGKILL)
                await proc.wait()
                proc = await spawn_appliance(toml, log)
                await crm.wait_campaign_done("chaos", timeout=150)
            finally:
                ticker.cancel()
            results = await crm.all_results("chaos")
    finally:
        if proc is not None and proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), 40)
            except TimeoutError:
                proc.kill()
                await proc.wait()
                raise AssertionError("the appliance did not stop on SIGTERM; see appliance.log") from None
        await controller.stop()
        log.close()

    finals = [r for r in results if r.get("final") is not False]
    contacts = {r["contact_id"] for r in results}
    assert len(contacts) == 60
    keys = Counter((r["job_id"], r.get("detail", {}).get("attempt"), r.get("final")) for r in results)
    assert max(keys.values()) == 1, [k for k, n in keys.items() if n > 1]  # no result twice
    # Nobody dialed beyond the policy (one call attempt): a second call only after a
    # failure on our side (channel or network error, an interrupted attempt).
    ours = Counter(r["callee"] for r in results if r.get("kind") == "call"
                   and r.get("outcome") in ("channel_error", "network_error", "interrupted", "expired"))
    calls = Counter(c.callee for c in emu.network.calls)
    for callee, n in calls.items():
        assert n <= 1 + ours[callee], (callee, n, ours[callee])
    # Every contact ended (the campaign says so) and has a final result of its last step.
    per_contact = Counter(r["contact_id"] for r in finals)
    assert set(per_contact) == contacts


