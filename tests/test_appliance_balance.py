"""USSD balance checks: a SIM without credit is locked with the operator's answer as
evidence, and calls go out on the other SIMs."""
from __future__ import annotations

import asyncio

import pytest

from appliance.balance import parse_balance
from appliance.config import parse_config
from appliance.rotation import SimState
from appliance.runtime import Appliance
from modem_drivers.emulator import Timing


def test_parse_balance():
    assert parse_balance("Saldo: 12,34 PLN.\r\nKonto wazne do 31.12.2026", r"(\d+[.,]\d{1,2})") == 12.34
    assert parse_balance("Your balance is 0.50 EUR", r"(\d+[.,]\d{1,2})") == 0.5
    assert parse_balance("Service unavailable", r"(\d+[.,]\d{1,2})") is None


@pytest.mark.bank(modems=4, timing=Timing.FAST, seed=4)
async def test_low_balance_locks_the_sim_and_calls_avoid_it(tmp_path, bank):
    emu = bank.emu
    poor = emu.modems[1].sims[0]
    poor.balance = 0.0  # no credit: the operator answers "Saldo: 0,00 PLN"
    app = Appliance(parse_config({
        "emulator_state": str(bank.state),
        "appliance": {"id": "b", "store": str(tmp_path / "a.db"), "listen": "", "token": "t"},
        "lock": {"min_balance": 1.0},
        "ussd": {"interval_seconds": 0.5},
        "limits": {"min_pause_seconds": 0.0, "pause_after_call": [0.0, 0.0]},
    }))
    await app.start()
    try:
        async with asyncio.timeout(20):
            while app.policy.state(poor.iccid, __import__("time").time()) is not SimState.LOCKED:
                await asyncio.sleep(0.1)
        assert app.bank.channels[emu.modems[1].id].balance == 0.0
        assert all(app.bank.channels[m.id].balance == 12.34 for m in emu.modems if m is not emu.modems[1])
        events = app.store.conn.execute("SELECT detail FROM events WHERE kind = 'sim_locked' AND subject = ?",
                                        (poor.iccid,)).fetchall()
        assert "balance" in events[0][0] and "below 1" in events[0][0]
        app.scheduler.submit([{"id": f"c{i}", "kind": "call", "callee": f"+4860{i % 4}0{i:05d}", "priority": 0,
                               "hints": {}, "call": {}} for i in range(12)])
        async with asyncio.timeout(20):
            while app.store.counts().get("done", 0) < 12:
                await asyncio.sleep(0.1)
        used = {r[0] for r in app.store.conn.execute("SELECT sim_id FROM attempts")}
        assert poor.iccid not in used and len(used) == 3
    finally:
        await app.stop()
