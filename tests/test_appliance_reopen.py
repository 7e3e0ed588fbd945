"""A modem that comes back from a USB drop or power loss on another SIM slot than the one
the bank last switched it to: the bank believes the modem (its slot query, else the card's
ICCID), so the number shown to a callee is the number that really called him. Before,
the restarted emulator's modems came back on slot 0 and the appliance filed slot 0's SIM
under slot 1: results named the wrong number shown (soak test, seeds 2-6)."""
from __future__ import annotations

import asyncio

import pytest

from appliance.config import parse_config
from appliance.runtime import Appliance
from modem_drivers.emulator import Timing


@pytest.mark.parametrize("vendor", ["simcom", "quectel", "generic"])
async def test_after_a_reopen_the_bank_believes_the_modems_slot(tmp_path, emulated_bank, vendor):
    emu, state = await emulated_bank(modems=1, sims_per_modem=2, timing=Timing.FAST, seed=4, vendors=(vendor,))
    app = Appliance(parse_config({
        "emulator_state": str(state),
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


@pytest.mark.bank(modems=2, sims_per_modem=1, timing=Timing.FAST, seed=4, vendors=("simcom",))
async def test_another_modem_on_the_port_after_a_reopen_is_refused_before_its_sim(tmp_path, emu):
    """The port's name now leads to another modem (a hub re-enumerated; the soak's dead pty
    number went to another program's modem): the driver refuses it before any command
    reaches its SIM (no PIN), the channel says why and stays out of service, and comes back
    when its own modem does."""
    state = emu.state()
    mine, other = emu.modems  # the appliance drives the first; the second is another program's
    app = Appliance(parse_config({
        "modem": [{"id": mine.id, "port": state["modems"][0]["port"], "pin": mine.sims[0].pin}],
        "appliance": {"id": "r", "store": str(tmp_path / "a.db"), "listen": ""},
        "supervision": {"reopen_backoff": [0.2, 1.0]},
    }), seed=2)
    await app.start()
    try:
        ch = app.bank.channels[mine.id]
        link = tmp_path / "emu" / "ttyEMU000"
        assert str(link) == ch.port
        mine.vanish(None)  # our modem is gone; its port name now leads to the other one
        async with asyncio.timeout(10):
            while ch.state.value != "faulty":
                await asyncio.sleep(0.01)
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to((tmp_path / "emu" / "ttyEMU001").resolve())
        async with asyncio.timeout(15):
            while "another modem answers" not in (ch.reason or ""):
                await asyncio.sleep(0.05)
        assert ch.state.value == "faulty" and mine.imei[-4:] in ch.reason and other.imei[-4:] in ch.reason
        assert app.scheduler.stats()["idle_channels"] == 0
        assert other.sims[0].presentations == 0  # no PIN went to the other modem's SIM
        link.unlink()
        mine.reappear()  # our modem is back on its own name
        async with asyncio.timeout(30):
            while ch.state.value != "idle":
                await asyncio.sleep(0.05)
        assert ch.imei == mine.imei and ch.active_sim.info.msisdn == mine.sims[0].msisdn
    finally:
        await app.stop()
