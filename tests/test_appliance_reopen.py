"""A modem that comes back from a USB drop or power loss on another SIM slot than the one
the bank last switched it to: the bank believes the modem (its slot query, else the card's
ICCID), so the number shown to a callee is the number that really called him. Before,
the restarted emulator's modems came back on slot 0 and the appliance filed slot 0's SIM
under slot 1: results named the wrong number shown (soak test, seeds 2-6)."""
from __future__ import annotations

import asyncio
import json

import pytest

from appliance.config import parse_config
from appliance.runtime import Appliance
from modem_drivers.emulator import Emulator, EmulatorConfig, Timing


@pytest.mark.parametrize("vendor", ["simcom", "quectel", "generic"])
async def test_after_a_reopen_the_bank_believes_the_modems_slot(tmp_path, vendor):
    cfg = EmulatorConfig(modems=1, sims_per_modem=2, timing=Timing.FAST, state_dir=tmp_path / "emu", seed=4,
                         vendors=(vendor,))
    async with Emulator(cfg) as emu:
        state = emu.state()
        (tmp_path / "bank.json").write_text(json.dumps(state))
        app = Appliance(parse_config({
            "emulator_state": str(tmp_path / "bank.json"),
            "appliance": {"id": "r", "store": str(tmp_path / "a.db"), "listen": ""},
            "supervision": {"reopen_backoff": [0.2, 1.0]},
        }), seed=2)
        await app.start()
        try:
            ch = next(iter(app.bank.channels.values()))
            vm = emu.modems[0]
            async with asyncio.timeout(30):
                while not (ch.active_slot == 1 and ch.state.value == "idle"):
                    if ch.state.value == "idle":
                        await app.bank.switch(ch.id, 1, reason="test")
                    await asyncio.sleep(0.1)
            assert vm.active_slot == 1
            vm.active_slot = 0  # the modem reboots on its default slot while away
            vm.vanish(0.3)
            async with asyncio.timeout(30):
                while ch.state.value != "faulty":  # the port is lost ...
                    await asyncio.sleep(0.01)
                while ch.state.value != "idle":  # ... and back
                    await asyncio.sleep(0.05)
            assert ch.active_slot == vm.active_slot == 0
            assert ch.active_sim.info.msisdn == vm.sims[0].msisdn
            finals: dict[str, dict] = {}
            app.scheduler.result_listeners.append(lambda r: finals.__setitem__(r["job_id"], r) if r.get("final") else None)
            app.scheduler.submit([{"id": "after", "kind": "call", "callee": "+48601000123",
                                   "call": {"max_ring_seconds": 15, "max_talk_seconds": 1}}])
            async with asyncio.timeout(30):
                while "after" not in finals:
                    await asyncio.sleep(0.05)
            call = next(c for c in emu.network.calls if c.callee == "+48601000123")
            assert finals["after"]["number_shown"] == call.caller_msisdn
        finally:
            await app.stop()
