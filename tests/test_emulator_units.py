"""Sans-I/O parts of the emulator: number plan, framer, command splitting, PDUs, SIM rules."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest
from gsmmodem.pdu import decodeSmsPdu
from hypothesis import given, settings
from hypothesis import strategies as st

from modem_drivers.emulator import DIALECTS, VENDOR_MODELS, Behaviour, PinState, plan_behaviour, plan_operator
from modem_drivers.emulator._calls import TRANSITIONS, Call, CallRecord, CallState, CallStateError
from modem_drivers.emulator._commands import Kind, parse_line, split_args
from modem_drivers.emulator._framer import Body, Framer, Line
from modem_drivers.emulator._pdu import build_deliver, build_status_report, ussd_pack, ussd_unpack
from modem_drivers.emulator._sim import luhn_digit, make_sim
from modem_drivers.emulator._timing import PROFILES, Timing


@pytest.mark.parametrize("number,behaviour,operator", [
    ("+48600012345", Behaviour.HUMAN, "26001"),
    ("+48 601 112 345", Behaviour.MACHINE, "26002"),
    ("0048602212345", Behaviour.BUSY, "26003"),
    ("48603312345", Behaviour.NO_ANSWER, "26006"),
    ("604412345", Behaviour.REJECTS, "26001"),
    ("+48609912345", Behaviour.RANDOM, "26002"),
    ("+48690000001", Behaviour.UNASSIGNED, "26001"),  # a SIM number is no callee
    ("+48221234567", Behaviour.UNASSIGNED, None),
    ("+4960012345", Behaviour.UNASSIGNED, None),
    ("12345", Behaviour.UNASSIGNED, None),
])
def test_number_plan(number: str, behaviour: Behaviour, operator: str | None) -> None:
    assert plan_behaviour(number) is behaviour
    assert plan_operator(number) == operator


@given(st.binary(max_size=200), st.integers(min_value=1, max_value=7))
def test_framer_split_anywhere_gives_the_same_events(noise: bytes, step: int) -> None:
    data = noise + b"\rAT+CGMI\r\nAT\rATE0\r"
    whole = Framer().feed(data)
    f = Framer()
    pieces = [e for i in range(0, len(data), step) for e in f.feed(data[i:i + step])]
    assert pieces == whole
    assert [e for e in whole if isinstance(e, Line)][-3:] == [Line("AT+CGMI"), Line("AT"), Line("ATE0")]


def test_framer_body_mode() -> None:
    f = Framer()
    f.expect_body()
    assert f.feed(b"0011\r\n00") == []
    assert f.feed(b"FF\x1aAT\r") == [Body("001100FF", False), Line("AT")]
    f.expect_body()
    assert f.feed(b"00\x1b") == [Body("00", True)]
    assert f.feed(b"AT+X\x08Y\r") == [Line("AT+Y")]


def test_command_splitting() -> None:
    cmds = parse_line('E0V1+CMEE=2;+CUSD=1,"a;b,c",15;+CPIN?;+CLCC=?;D+48600012345;')
    assert [(c.name, c.kind) for c in cmds] == [
        ("E", Kind.EXEC), ("V", Kind.EXEC), ("+CMEE", Kind.SET), ("+CUSD", Kind.SET),
        ("+CPIN", Kind.READ), ("+CLCC", Kind.TEST), ("D", Kind.EXEC)]
    assert cmds[3].args == ("1", "a;b,c", "15")
    assert cmds[-1].raw == "+48600012345;"
    assert split_args('"",1, 2') == ("", "1", "2")
    with pytest.raises(ValueError):
        parse_line("+CMEE x")


def test_status_report_and_deliver_decode() -> None:
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    pdu, tlen = build_status_report("+48601000310", 200, "+48600012345", 0x46, when, when)
    report = decodeSmsPdu(bytearray(pdu))
    assert (report["reference"], report["number"], report["status"], report["tpdu_length"]) == (200, "+48600012345", 0x46, tlen)
    assert report["time"].replace(tzinfo=None) == when.replace(tzinfo=None)


@settings(max_examples=40, deadline=None)
@given(st.text(alphabet=st.characters(max_codepoint=0xFFFF, exclude_categories=("Cs", "Cc")), min_size=0, max_size=500))
def test_deliver_round_trips_any_text(text: str) -> None:
    parts = build_deliver("+48601000310", "+48600012345", text, concat_ref=7)
    decoded = [decodeSmsPdu(bytearray(p)) for p, _ in parts]
    assert "".join(d["text"] for d in decoded) == text
    assert all(d["tpdu_length"] == tlen for d, (_, tlen) in zip(decoded, parts))


def test_ussd_packing_matches_the_contract() -> None:
    assert ussd_pack("*100#") == "AA180C3602"  # docs/dialects.md example
    assert ussd_unpack("AA180C3602") == "*100#"


def test_sim_identity_and_pin_rules() -> None:
    sim = make_sim(5, 0, seed=3, pin_locked=True)
    assert len(sim.iccid) == 20 and luhn_digit(sim.iccid[:-1]) == sim.iccid[-1]
    assert len(sim.imsi) == 15 and sim.imsi.startswith(sim.mcc_mnc)
    assert plan_operator(sim.msisdn) == sim.mcc_mnc
    assert sim.pin_state is PinState.SIM_PIN
    assert not sim.enter_pin("0000") and not sim.enter_pin("0001") and sim.pin_state is PinState.SIM_PIN
    assert not sim.enter_pin("0002") and sim.pin_state is PinState.SIM_PUK
    assert sim.enter_puk(sim.puk, "5555") and sim.pin_state is PinState.READY and sim.pin == "5555"
    numbers = {make_sim(k, 0, seed=0, pin_locked=False).msisdn for k in range(2048)}
    assert len(numbers) == 2048  # unique across a big bank


def test_call_state_table() -> None:
    record = CallRecord("+48690000000", "+48600012345", datetime.now(timezone.utc))
    call = Call(number="+48600012345", direction=0, record=record, state=CallState.DIALING)
    call.advance(CallState.ALERTING)
    with pytest.raises(CallStateError):
        call.advance(CallState.INCOMING)
    call.advance(CallState.ACTIVE)
    call.advance(CallState.RELEASED)
    assert TRANSITIONS[CallState.RELEASED] == frozenset()


def test_tables_are_consistent() -> None:
    for vendor, models in VENDOR_MODELS.items():
        assert all(DIALECTS[m].vendor == vendor for m in models)
    for dialect in DIALECTS.values():
        assert len(dialect.tac) == 8 and dialect.tac.isdigit()
        if dialect.slot_command:
            assert dialect.slot_command in dialect.commands
        if dialect.dtmf_enable:
            assert dialect.dtmf_enable in dialect.commands
    fast = PROFILES[Timing.FAST]
    assert fast.call_setup == fast.sms_submit == fast.no_answer_timer == (0.0, 0.0)
    assert PROFILES[Timing.REALISTIC].no_answer_timer == (30.0, 30.0)
