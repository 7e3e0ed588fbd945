"""The Modem API against the emulator, over real pseudo-terminals, for every dialect:
probe, SMS with delivery reports, calls to each plan behaviour with their Q.850 cause,
USSD, PIN unlock, inbound traffic, and each injected fault."""
from __future__ import annotations

import asyncio

import pytest

from common.contract import Outcome
from modem_drivers.at import AtTimeout, PortState
from modem_drivers.call import CallState
from modem_drivers.emulator import Emulator, Fault, Timing
from modem_drivers.errors import SimPinRequired, WrongPin
from modem_drivers.modem import Modem
from modem_drivers.sms import DeliveryState
from modem_drivers.types import (
    IncomingCall,
    PinState,
    PortLost,
    PortRestored,
    SmsReceived,
    SmsUndecodable,
    StatusReportReceived,
)

VENDORS = ["simcom", "quectel", "huawei", "generic"]


pytestmark = pytest.mark.bank(modems=4, timing=Timing.FAST, seed=3)


def vm_of(emu: Emulator, vendor: str):
    return next(m for m in emu.modems if m.vendor == vendor)


@pytest.fixture
async def modems(emu):
    opened = {}
    for vendor in VENDORS:
        opened[vendor] = await Modem.open(vm_of(emu, vendor).port)
    yield opened
    for m in opened.values():
        await m.close()


@pytest.mark.parametrize("vendor", VENDORS)
async def test_probe(emu, modems, vendor):
    m, vm = modems[vendor], vm_of(emu, vendor)
    assert m.identity.dialect == vendor
    assert m.identity.imei == vm.imei
    sim = await m.sim_info()
    active = vm.sims[vm.active_slot]
    assert (sim.iccid, sim.imsi, sim.msisdn, sim.mcc_mnc) == (active.iccid, active.imsi, active.msisdn, active.mcc_mnc)
    assert sim.operator_name == active.operator_name
    sig = await m.signal()
    assert sig.dbm == -113 + 2 * sig.rssi
    assert (await m.registration_status()).registered
    assert m.call_progress_polled is (vendor == "generic")  # generic answers ERROR to AT+CLCC=1


CALLS = [
    ("+48600000123", Outcome.ANSWERED_HUMAN, 16, True),
    ("+48601200123", Outcome.BUSY, 17, False),
    ("+48602300123", Outcome.NO_ANSWER, 19, True),
    ("+48603400123", Outcome.REJECTED, 21, True),
    ("+48600500123", Outcome.UNREACHABLE, 20, False),
    ("+48601600123", Outcome.INVALID_NUMBER, 1, False),
]


@pytest.mark.parametrize("vendor", VENDORS)
async def test_calls_to_each_behaviour(modems, vendor):
    m = modems[vendor]
    for number, outcome, cause, alerts in CALLS:
        call = await m.dial(number)
        state = await call.wait_for(CallState.ACTIVE, timeout=10)
        if state is CallState.ACTIVE:
            await m.hangup()
        await call.wait_released(5)
        rep = call.report()
        assert (rep.outcome, rep.cause) == (outcome, cause), number
        if m.call_progress_polled:
            # Paced AT+CLCC cannot see an alerting phase shorter than its interval
            # (zero in fast timing); it must never invent one.
            assert alerts or rep.alerting_at is None, number
        else:
            assert (rep.alerting_at is not None) == alerts, number
        assert call.released


SMS_TEXTS = [
    "Hello from simrotor [7-bit] {ext} €",
    "Dzień dobry, przypominamy o płatności — zażółć gęślą jaźń",
    "Przypomnienie: " + "rata do zapłaty. " * 9,  # 168 UCS2 characters: 3 parts of 67
]


@pytest.mark.parametrize("vendor", VENDORS)
async def test_sms_with_delivery_report(emu, modems, vendor):
    m = modems[vendor]
    reports: list = []
    m.subscribe(lambda ev: reports.append(ev.report) if isinstance(ev, StatusReportReceived) else None)
    for text in SMS_TEXTS:
        reports.clear()
        sub = await m.send_sms("+48601000123", text, report=True)
        async with asyncio.timeout(10):
            while len(reports) < sub.parts:
                await asyncio.sleep(0.01)
        assert sorted(r.reference for r in reports) == sorted(sub.references)
        assert all(r.state is DeliveryState.DELIVERED for r in reports)
        rec = emu.network.sms[-1]
        assert rec.text == text and rec.parts == sub.parts
    assert [r.parts for r in emu.network.sms[-3:]] == [1, 1, 3]


async def test_status_reports_for_absent_and_unassigned(modems):
    m = modems["quectel"]
    reports: list = []
    m.subscribe(lambda ev: reports.append(ev.report) if isinstance(ev, StatusReportReceived) else None)
    await m.send_sms("+48600500777", "x", report=True)  # behaviour 5
    async with asyncio.timeout(10):
        while len(reports) < 2:
            await asyncio.sleep(0.01)
    assert [r.state for r in reports] == [DeliveryState.PENDING, DeliveryState.FAILED]
    reports.clear()
    await m.send_sms("+48600600777", "x", report=True)  # behaviour 6
    async with asyncio.timeout(10):
        while not reports:
            await asyncio.sleep(0.01)
    assert reports[0].state is DeliveryState.FAILED and 0x40 <= reports[0].status < 0x60


@pytest.mark.parametrize("vendor", VENDORS)
async def test_ussd_balance(modems, vendor):
    reply = await modems[vendor].ussd("*100#", timeout=10)
    assert "12,34 PLN" in reply.text


@pytest.mark.parametrize("vendor", VENDORS)
async def test_pin_unlock(emulated_bank, vendor):
    emu = (await emulated_bank(modems=1, vendors=(vendor,), pin_locked=True)).emu
    m = await Modem.open(emu.modems[0].port)
    try:
        assert m.pin_state is PinState.SIM_PIN
        with pytest.raises(SimPinRequired):
            await m.dial("+48600000123")
        with pytest.raises(WrongPin):
            await m.unlock("9999")
        assert await m.unlock("1234") is PinState.READY
        assert (await m.sim_info()).iccid == emu.modems[0].sims[0].iccid
        call = await m.dial("+48601200123")
        await call.wait_released(5)
        assert call.cause == 17
    finally:
        await m.close()
    m2 = await Modem.open(emu.modems[0].port, pin="1234")  # PIN given up front: already READY
    assert m2.pin_state is PinState.READY
    await m2.close()


@pytest.mark.parametrize("vendor", VENDORS)
async def test_inbound_sms_even_during_a_call_and_inbound_call(emu, modems, vendor):
    m, vm = modems[vendor], vm_of(emu, vendor)
    msisdn = vm.sims[vm.active_slot].msisdn
    got: list = []
    m.subscribe(got.append)
    call = await m.dial("+48600000123")
    await call.wait_for(CallState.ACTIVE, timeout=10)
    await emu.inbound_sms("+48600000555", msisdn, "STOP proszę")
    async with asyncio.timeout(10):
        while not any(isinstance(e, SmsReceived) for e in got):
            await asyncio.sleep(0.01)
    sms = next(e.sms for e in got if isinstance(e, SmsReceived))
    assert (sms.sender, sms.text) == ("+48600000555", "STOP proszę")
    assert call.state is CallState.ACTIVE  # the SMS did not disturb the call
    await m.hangup()
    await emu.inbound_call("+48600000555", msisdn, ring_seconds=0.2)
    async with asyncio.timeout(10):
        while not any(isinstance(e, IncomingCall) for e in got):
            await asyncio.sleep(0.01)
    assert next(e for e in got if isinstance(e, IncomingCall)).caller == "+48600000555"


@pytest.mark.bank(modems=1, vendors=("simcom",), timing=Timing.REALISTIC, seed=1)
async def test_urc_inside_cmgs_does_not_break_submission(emu):
    m = await Modem.open(emu.modems[0].port)
    got: list = []
    m.subscribe(got.append)
    try:
        send = asyncio.ensure_future(m.send_sms("+48601000123", "in the middle", report=False))
        await asyncio.sleep(0.3)  # inside AT+CMGS: realistic submission takes 1-3 s
        assert not send.done()
        await emu.inbound_sms("+48600000555", emu.modems[0].sims[0].msisdn, "interleaved")
        sub = await asyncio.wait_for(send, 10)
        assert sub.parts == 1 and sub.references[0] >= 0
        async with asyncio.timeout(10):
            while not any(isinstance(e, SmsReceived) for e in got):
                await asyncio.sleep(0.01)
    finally:
        await m.close()


async def test_malformed_urc_and_undecodable_pdu_never_take_the_modem_offline(emu, modems):
    m = modems["simcom"]
    got: list = []
    m.subscribe(got.append)
    await emu.inject(vm_of(emu, "simcom").id, Fault.GARBAGE, bytes=b'\r\n+CMTI: "SM",-1\r\n')
    await emu.inject(vm_of(emu, "simcom").id, Fault.GARBAGE, bytes=b"\r\n+CMT: ,12\r\n0791ZZZZ\r\n")
    await emu.inject(vm_of(emu, "simcom").id, Fault.GARBAGE, count=200)
    async with asyncio.timeout(10):
        while not any(isinstance(e, SmsUndecodable) for e in got):
            await asyncio.sleep(0.01)
    bad = next(e for e in got if isinstance(e, SmsUndecodable))
    assert bad.raw.pdu == "0791ZZZZ" and bad.raw.reason
    assert (await m.signal()).rssi >= 0  # still answering


async def test_vanished_port_comes_back(emu, modems):
    m, vm = modems["quectel"], vm_of(emu, "quectel")
    got: list = []
    m.subscribe(got.append)
    await emu.inject(vm.id, Fault.VANISH, seconds=0.5)
    async with asyncio.timeout(20):
        while not any(isinstance(e, PortRestored) for e in got):
            await asyncio.sleep(0.02)
    assert any(isinstance(e, PortLost) for e in got)
    assert m.port.state is PortState.OPEN
    assert (await m.sim_info()).iccid == vm.sims[vm.active_slot].iccid


async def test_stuck_modem_gives_a_clear_timeout_then_recovers(emu, modems):
    m, vm = modems["huawei"], vm_of(emu, "huawei")
    await emu.inject(vm.id, Fault.STUCK, seconds=1.5)
    with pytest.raises(AtTimeout):
        await m.port.command("AT+CSQ", timeout=0.5)
    await asyncio.sleep(1.2)
    assert (await m.signal()).rssi >= 0


async def test_lost_release_urc_is_covered_by_hangup(emu, modems):
    m, vm = modems["simcom"], vm_of(emu, "simcom")
    call = await m.dial("+48600000123")
    await call.wait_for(CallState.ACTIVE, timeout=10)
    await emu.inject(vm.id, Fault.LOSE_URC, prefix="+CLCC")
    await m.hangup()
    assert call.released and call.cause == 16 and call.local_release


async def test_sim_blocked_mid_run_fails_calls_with_cause_50(emu, modems):
    m, vm = modems["generic"], vm_of(emu, "generic")
    await emu.inject(vm.id, Fault.BLOCK_SIM)
    call = await m.dial("+48600000123")
    await call.wait_released(10)
    assert call.cause == 50 and call.report().alerting_at is None
    assert call.report().outcome is Outcome.CHANNEL_ERROR


# -- a stuck modem during a call never leaves the driver's call set (issue 12 item 2) ------

#: How long the injected fault lasts: longer than the test's dial timeout plus the port's
#: hold for a late final, and than a hang-up's 3 s (TimeoutClass.DEFAULT), so every phase
#: meets a modem that does not answer.
STUCK_SECONDS = 4.0
#: Log lines (INFO and up, modem_drivers.*) one stuck episode may cost: measured 3 (dial)
#: to 6 (generic, whose AT+CLCC poll times out too): the port's timeout and reset warnings,
#: the driver's "call ended here"; bounded with margin.
STUCK_LOG_LINES = 12
#: phase -> (number, state the call reaches before the fault, timing that holds it there)
STUCK_PHASES = {
    "dial": ("+48600000123", None, Timing.FAST),
    "ringing": ("+48602300123", CallState.ALERTING, Timing.REALISTIC),  # no answer: rings 30 s
    "talk": ("+48600000123", CallState.ACTIVE, Timing.FAST),  # human: holds 60 s
}


@pytest.mark.parametrize("phase", list(STUCK_PHASES))
@pytest.mark.parametrize("vendor", VENDORS)
async def test_stuck_modem_during_a_call_never_leaves_the_call_set(emulated_bank, caplog, vendor, phase):
    import logging

    from modem_drivers.errors import Unsupported

    number, reached, timing = STUCK_PHASES[phase]
    emu = (await emulated_bank(modems=1, vendors=(vendor,), sims_per_modem=2, timing=timing, seed=5)).emu
    vm = emu.modems[0]
    m = await Modem.open(vm.port)
    m.dial_timeout = 1.0  # instead of 20 s (TimeoutClass.DIAL): the test's patience
    m.port.abandoned_grace = 0.3
    loop = asyncio.get_running_loop()
    try:
        with caplog.at_level(logging.INFO, logger="modem_drivers"):
            caplog.clear()
            if reached is None:
                await emu.inject(vm.id, Fault.STUCK, seconds=STUCK_SECONDS)
                stuck_until = loop.time() + STUCK_SECONDS
                with pytest.raises(AtTimeout):
                    await m.dial(number)
            else:
                call = await m.dial(number)
                assert await call.wait_for(reached, timeout=10) is reached
                await emu.inject(vm.id, Fault.STUCK, seconds=STUCK_SECONDS)
                stuck_until = loop.time() + STUCK_SECONDS
                await m.hangup()  # no answer: the call ends here
                assert call.released
                if reached is CallState.ALERTING:
                    assert call.report().outcome is Outcome.CHANNEL_ERROR
            assert m.call is None or m.call.released
            await asyncio.sleep(max(0.0, stuck_until - loop.time()) + 0.1)
            # the modem answers again: the owed hang-up goes first, the call is gone
            assert (await m.signal()).rssi >= 0
            assert vm.call is None
            if vendor == "huawei":
                with pytest.raises(Unsupported, match="one SIM slot"):
                    await m.switch_slot(1)
            else:
                await m.switch_slot(1)
                assert vm.active_slot == 1
            lines = [r for r in caplog.records if r.name.startswith("modem_drivers")]
        assert len(lines) <= STUCK_LOG_LINES, [r.getMessage() for r in lines]
    finally:
        await m.close()
