"""SMS and USSD codecs, Q.850 parsing, dialect detection: pure functions, no tty."""
from __future__ import annotations

import gsmmodem.pdu as gsmpdu
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from common.contract import Outcome
from modem_drivers import q850, sms, ussd
from modem_drivers.dialects import DIALECTS, detect
from modem_drivers.dialects.base import parse_dtmf_ascii, parse_dtmf_digit


def test_gsm7_single_part_roundtrips_through_the_library_decoder():
    (part,) = sms.encode_submit("+48601000123", "Hello [world] {€}", report=True)
    d = gsmpdu.decodeSmsPdu(part.pdu)
    assert d["text"] == "Hello [world] {€}"  # extension-table characters survive
    assert d["number"] == "+48601000123"
    assert part.tpdu_length == len(bytes.fromhex(part.pdu)) - 1
    assert int(part.pdu[2:4], 16) & 0x20  # TP-SRR: status report requested


def test_polish_text_goes_ucs2_and_long_text_is_concatenated():
    text = "Zażółć gęślą jaźń. " * 6
    parts = sms.encode_submit("+48601000123", text, reference=200)
    assert len(parts) == 2
    decoded = [gsmpdu.decodeSmsPdu(p.pdu) for p in parts]
    assert "".join(d["text"] for d in decoded) == text
    refs = {ie.reference for d in decoded for ie in d["udh"] if isinstance(ie, gsmpdu.Concatenation)}
    assert refs == {200}


def test_three_part_gsm7_message():
    text = "x" * 400
    parts = sms.encode_submit("+48601000123", text)
    assert [p.part for p in parts] == [1, 2, 3] and {p.parts for p in parts} == {3}
    assert "".join(gsmpdu.decodeSmsPdu(p.pdu)["text"] for p in parts) == text


def test_type0_pid_for_hlr_ping():
    (part,) = sms.encode_submit("+48601000123", " ", pid=sms.PID_TYPE0, report=True)
    assert gsmpdu.decodeSmsPdu(part.pdu)["protocol_id"] == 0x40


def test_empty_text_is_refused():
    with pytest.raises(ValueError):
        sms.encode_submit("+48601000123", "")


@pytest.mark.parametrize("garbage", ["", "ZZ", "00", "0791", "07914806010000F0" + "04"])
def test_undecodable_pdu_is_kept_raw_with_a_reason(garbage):
    out = sms.decode(garbage)
    assert isinstance(out, sms.UndecodableSms)
    assert out.pdu == garbage.strip() and out.reason


@given(st.binary(max_size=200))
@settings(max_examples=300, deadline=None)
def test_decode_never_raises(data):
    out = sms.decode(data.hex())
    assert isinstance(out, (sms.IncomingSms, sms.StatusReport, sms.UndecodableSms))


@pytest.mark.parametrize(
    "status, state",
    [(0x00, sms.DeliveryState.DELIVERED), (0x30, sms.DeliveryState.PENDING),
     (0x41, sms.DeliveryState.FAILED), (0x46, sms.DeliveryState.FAILED), (0x62, sms.DeliveryState.FAILED)],
)
def test_tp_st_classes(status, state):
    assert sms.delivery_state(status) is state


def test_reassembler_joins_out_of_order_parts_and_expires_incomplete():
    r = sms.Reassembler(timeout=10)
    a = sms.IncomingSms("+48601000123", "Hello ", None, "AA", (7, 2, 1))
    b = sms.IncomingSms("+48601000123", "world", None, "BB", (7, 2, 2))
    assert r.add(b, 0) is None
    whole = r.add(a, 1)
    assert whole is not None and whole.text == "Hello world" and whole.parts_pdu == ("AA", "BB")
    assert r.add(sms.IncomingSms("+48601000999", "half", None, "CC", (9, 3, 1)), 0) is None
    assert r.expire(5) == []
    (late,) = r.expire(11)
    assert late.text == "half"


def test_ussd_forms():
    assert ussd.encode_request("*100#", ussd.UssdForm.PACKED) == "AA180C3602"  # chan_dongle's example
    assert ussd.encode_request("*100#", ussd.UssdForm.GSM) == "*100#"
    for text in ["Saldo: 12,34 PLN", "Stan konta: 5 zł", "1234567"]:
        for form, dcs in [(ussd.UssdForm.UCS2, 72)]:
            assert ussd.decode_reply(ussd.encode_request(text, form), dcs, form) == text
    packed = ussd.encode_request("Saldo: 12,34 PLN", ussd.UssdForm.PACKED)
    assert ussd.decode_reply(packed, 15, ussd.UssdForm.PACKED) == "Saldo: 12,34 PLN"
    assert ussd.decode_reply("not hex!", 15, ussd.UssdForm.PACKED) == "not hex!"


@pytest.mark.parametrize(
    "text, cause",
    [("Normal call clearing", 16), ("User busy", 17), ("USER BUSY", 17), ("Unassigned (unallocated) number", 1),
     ("Subscriber absent", 20), ("Call rejected", 21), ("16", 16), ('"CC INFO","Normal call clearing"', 16),
     ("User alerting, no answer", 19), ("gibberish xyz", None)],
)
def test_ceer_text_to_cause(text, cause):
    assert q850.cause_from_text(text) == cause


def test_outcomes():
    O = Outcome
    assert q850.outcome_for(17, answered=False, alerted=False) is O.BUSY
    assert q850.outcome_for(1, answered=False, alerted=False) is O.INVALID_NUMBER
    assert q850.outcome_for(20, answered=False, alerted=False) is O.UNREACHABLE
    assert q850.outcome_for(21, answered=False, alerted=True) is O.REJECTED
    assert q850.outcome_for(19, answered=False, alerted=True) is O.NO_ANSWER
    assert q850.outcome_for(16, answered=True, alerted=True) is O.ANSWERED_HUMAN
    assert q850.outcome_for(None, answered=False, alerted=False) is O.NETWORK_ERROR


@pytest.mark.parametrize(
    "cgmi, cgmm, name",
    [("SIMCOM_Ltd", "SIMCOM_SIM7600E-H", "simcom"), ("SIMCOM_Ltd", "SIM800", "simcom"), ("", "SIM800C", "simcom"),
     ("Quectel", "EC25", "quectel"), ("Quectel_Ltd", "M35", "quectel"), ("huawei", "E173", "huawei"),
     ("HUAWEI", "E1550", "huawei"), ("Telit", "LE910", "generic"), ("", "", "generic")],
)
def test_dialect_detection(cgmi, cgmm, name):
    assert detect(cgmi, cgmm).name == name


def test_every_dialect_declares_its_call_urcs_and_hangup():
    for d in DIALECTS:
        assert d.call_urcs and d.hangup.startswith("AT")
        assert set(d.urc_prefixes()) >= {u.prefix for u in d.call_urcs}


def test_dtmf_urc_parsers():
    assert parse_dtmf_digit("+DTMF: 5") == "5"
    assert parse_dtmf_digit("^DDTMF: #") == "#"
    assert parse_dtmf_ascii("+QTONEDET: 49") == "1"
    assert parse_dtmf_ascii("+QTONEDET: 35") == "#"
    assert parse_dtmf_ascii("+QTONEDET: x") is None
    assert parse_dtmf_digit("+DTMF: Q") is None
