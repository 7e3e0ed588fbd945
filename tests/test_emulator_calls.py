"""Voice calls through each dialect over the pty: progress URCs, final results, causes."""
from __future__ import annotations

import asyncio

import pytest

from modem_drivers.emulator import Emulator, Outcome, Timing
from modem_drivers.emulator.host import AtHost

VENDORS = ("simcom", "quectel", "huawei", "generic")
STAT = {"dialing": 2, "alerting": 3, "active": 0, "released": 6}
#: plan digit B → (phases before release, cause, final result code, 24.008 cause name)
BEHAVIOURS = {
    2: (["dialing"], 17, "BUSY", "User busy"),
    3: (["dialing", "alerting"], 19, "NO ANSWER", "User alerting, no answer"),
    4: (["dialing", "alerting"], 21, "NO CARRIER", "Call rejected"),
    5: (["dialing"], 20, "NO CARRIER", "Subscriber absent"),
    6: (["dialing"], 1, "NO CARRIER", "Unassigned (unallocated) number"),
}


def callee(behaviour: int, operator: int = 1) -> str:
    return f"+4860{operator}{behaviour}12345"


def progress(vendor: str, number: str, phase: str, cause: int = 16) -> list[str]:
    """What docs/dialects.md says each dialect reports when a call enters ``phase``."""
    stat = STAT[phase]
    if vendor == "simcom":  # SIM7600: +CLCC plus VOICE CALL: BEGIN/END
        lines = [f'+CLCC: 1,0,{stat},0,0,"{number}",145']
        lines += {"active": ["VOICE CALL: BEGIN"], "released": ["VOICE CALL: END: 000000"]}.get(phase, [])
        return lines
    if vendor == "quectel":
        return [f"^DSCI: 1,0,{stat},0,{number},145"]
    if vendor == "huawei":
        return [{"dialing": "^ORIG: 1,0", "alerting": "^CONF: 1", "active": "^CONN: 1,0",
                 "released": f"^CEND: 1,0,0,{cause}"}[phase]]
    return []  # generic: nothing unsolicited but the final result


def ceer(vendor: str, cause: int, name: str) -> str:
    return f"+CEER: 1,{cause}" if vendor == "quectel" else f"+CEER: {name}"


pytestmark = pytest.mark.bank(modems=4, control_port=None)


async def _ready(emu: Emulator, i: int) -> AtHost:
    host = AtHost(emu.modems[i].port)
    assert (await host.command("ATE0"))[-1] == "OK"
    enable = {"simcom": "AT+CLCC=1", "quectel": "AT^DSCI=1", "huawei": "AT", "generic": "AT"}[emu.modems[i].vendor]
    assert await host.command(enable) == ["OK"]
    return host


@pytest.mark.parametrize("behaviour", sorted(BEHAVIOURS))
@pytest.mark.parametrize("i,vendor", list(enumerate(VENDORS)))
async def test_unanswered_calls(emu: Emulator, i: int, vendor: str, behaviour: int) -> None:
    phases, cause, final, name = BEHAVIOURS[behaviour]
    number = callee(behaviour)
    host = await _ready(emu, i)
    assert await host.command(f"ATD{number};") == ["OK"]
    lines = await host.until_final()
    expected = [line for phase in phases for line in progress(vendor, number, phase)]
    expected += progress(vendor, number, "released", cause) + [final]
    assert lines == expected
    assert await host.command("AT+CEER") == [ceer(vendor, cause, name), "OK"]
    assert await host.command("AT+CLCC") == ["OK"]  # idle: no calls listed
    record = emu.network.calls[-1]
    assert (record.callee, record.cause, record.answered) == (number, cause, False)
    assert record.caller_msisdn == emu.modems[i].sim.msisdn
    host.close()


@pytest.mark.parametrize("i,vendor", list(enumerate(VENDORS)))
async def test_answered_call_and_our_hangup(emu: Emulator, i: int, vendor: str) -> None:
    number = callee(0)
    host = await _ready(emu, i)
    assert await host.command(f"ATD{number};") == ["OK"]
    if vendor == "generic":  # no auto-report: poll AT+CLCC like the driver does
        for _ in range(50):
            clcc = await host.command("AT+CLCC")
            if clcc[0] == f'+CLCC: 1,0,0,0,0,"{number}",145':
                break
        else:
            pytest.fail("the call never became active")
    else:
        expected = [line for p in ("dialing", "alerting", "active") for line in progress(vendor, number, p)]
        got = [await host.next_line() for _ in expected]
        assert got == expected
    assert await host.command("AT+VTS=5" if vendor != "huawei" else "AT^DTMF=1,5") == ["OK"]
    if vendor == "huawei":  # ATH leaves a Huawei voice call up; AT+CHUP ends it
        assert await host.command("ATH") == ["OK"]
        assert emu.modems[i].call is not None
    hangup = "AT+CHUP" if vendor == "huawei" else "ATH"
    assert await host.command(hangup) == progress(vendor, number, "released", 16) + ["OK"]
    assert emu.modems[i].call is None
    assert await host.command("AT+CEER") == [ceer(vendor, 16, "Normal call clearing"), "OK"]
    record = emu.network.calls[-1]
    assert record.answered and record.outcome is Outcome.ANSWERED_HUMAN and record.cause == 16
    host.close()


@pytest.mark.bank(modems=2, vendors=("quectel", "huawei"), control_port=None)
async def test_dtmf_callee_keys_digits_to_the_voicebot(emu: Emulator) -> None:
    quectel, huawei = AtHost(emu.modems[0].port), AtHost(emu.modems[1].port)
    for host in (quectel, huawei):
        await host.command("ATE0")
    assert await quectel.command("AT+QTONEDET=1") == ["OK"]
    assert await quectel.command(f"ATD{callee(8)};") == ["OK"]
    assert await huawei.command(f"ATD{callee(8, 2)};") == ["OK"]
    q_digits = [chr(int((await quectel.expect("+QTONEDET: ")).split(": ")[1])) for _ in range(6)]
    h_digits = [(await huawei.expect("^DDTMF: ")).split(": ")[1] for _ in range(6)]
    by_callee = {r.callee: r.dtmf for r in emu.network.calls}
    assert "".join(q_digits) == by_callee[callee(8)]
    assert "".join(h_digits) == by_callee[callee(8, 2)]
    assert q_digits[0] == "1" and q_digits[-1] == "#"
    for host in (quectel, huawei):
        host.close()


@pytest.mark.bank(modems=2, vendors=("simcom",), block_after_calls=1, control_port=None, balances={})
async def test_sim_blocked_after_n_calls_and_no_credit(emu: Emulator) -> None:
    host = await _ready(emu, 0)
    assert await host.command(f"ATD{callee(5)};") == ["OK"]
    assert (await host.until_final())[-1] == "NO CARRIER"
    assert await host.command(f"ATD{callee(0)};") == ["OK"]
    number = callee(0)
    assert await host.until_final() == [
        f'+CLCC: 1,0,2,0,0,"{number}",145', f'+CLCC: 1,0,6,0,0,"{number}",145',
        "VOICE CALL: END: 000000", "NO CARRIER",
    ]
    assert await host.command("AT+CEER") == ["+CEER: Requested facility not subscribed", "OK"]
    assert emu.modems[0].sim.blocked and emu.network.calls[-1].cause == 50
    # no credit: the second modem's SIM has balance 0 → cause 31 and a zero balance
    emu.modems[1].sim.balance = 0
    other = await _ready(emu, 1)
    assert await other.command(f"ATD{callee(0)};") == ["OK"]
    assert (await other.until_final())[-1] == "NO CARRIER"
    assert await other.command("AT+CEER") == ["+CEER: Normal, unspecified", "OK"]
    assert await other.command('AT+CUSD=1,"*100#",15') == ["OK"]
    assert (await other.expect("+CUSD: ")).startswith('+CUSD: 0,"Saldo: 0,00 PLN.')
    for h in (host, other):
        h.close()


@pytest.mark.bank(modems=1, vendors=("generic",), pin_locked=True, control_port=None)
async def test_no_dialtone_and_second_call(emu: Emulator) -> None:
    host = AtHost(emu.modems[0].port)
    await host.command("ATE0;+CMEE=1")
    assert await host.command(f"ATD{callee(0)};") == ["+CME ERROR: 11"]
    await host.command('AT+CPIN="1234"')
    assert await host.command(f"ATD{callee(0)};") == ["OK"]
    assert await host.command(f"ATD{callee(0)};") == ["+CME ERROR: 3"]
    assert await host.command("AT+CFUN=0") == ["OK"]
    assert await host.command("ATH") == ["OK"]
    assert await host.command(f"ATD{callee(0)};") == ["NO DIALTONE"]
    host.close()


async def test_inbound_call_rings_with_clip(emu: Emulator) -> None:
    modem = emu.modems[0]
    host = await _ready(emu, 0)
    assert await host.command("AT+CLIP=1") == ["OK"]
    caller = callee(0, 3)
    await emu.inbound_call(caller, modem.sim.msisdn, ring_seconds=5)
    assert await host.expect("+CLCC: 1,1,4") == f'+CLCC: 1,1,4,0,0,"{caller}",145'
    assert await host.expect("RING") == "RING"
    assert await host.expect("+CLIP: ") == f'+CLIP: "{caller}",145,,,,0'
    assert await host.command("ATA") == ["OK"]
    assert await host.expect("+CLCC: 1,1,0") == f'+CLCC: 1,1,0,0,0,"{caller}",145'
    assert (await host.command("ATH"))[-1] == "OK"
    record = emu.network.calls[-1]
    assert record.direction == "in" and record.answered and record.caller_msisdn == caller
    # a call nobody answers: the caller gives up after ring_seconds
    await emu.inbound_call(caller, modem.sim.msisdn, ring_seconds=0.2)
    try:
        assert await host.expect("NO CARRIER", timeout=3) == "NO CARRIER"
    except TimeoutError:
        raise AssertionError(list(host.lines))
    assert emu.network.calls[-1].outcome is Outcome.NO_ANSWER
    host.close()


@pytest.mark.bank(modems=1, timing=Timing.REALISTIC, vendors=("huawei",), control_port=None)
async def test_realistic_busy_takes_call_setup_time(emu: Emulator) -> None:
    host = AtHost(emu.modems[0].port)
    await host.command("ATE0")
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    assert await host.command(f"ATD{callee(2)};") == ["OK"]
    assert await host.until_final() == ["^ORIG: 1,0", "^CEND: 1,0,0,17", "BUSY"]
    # Realistic timing injects the call set-up (1–2 s) before BUSY: the lower bound is
    # what the emulator guarantees; no upper bound, which would only measure CI load.
    assert loop.time() - t0 >= 1.0
    host.close()
