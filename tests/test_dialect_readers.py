"""The readers beside the dialect rows and the standard rows: answer lines in, value out,
never an exception (a malformed answer gives the neutral value; a superscript digit such
as a garbage byte 0xB9 read as latin-1 "¹" is not a number)."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modem_drivers.dialects import DIALECTS, GENERIC, HUAWEI, QUECTEL, SIMCOM
from modem_drivers.dialects import standard as std
from modem_drivers.registration import parse_registration
from modem_drivers.types import PinState

ICCID = "8948011234567890123"


def _swap(digits: str) -> str:
    padded = digits + "F" * (len(digits) % 2)
    return "".join(padded[i + 1] + padded[i] for i in range(0, len(padded), 2))


@pytest.mark.parametrize("dialect, lines", [
    (GENERIC, [f'+CRSM: 144,0,"{_swap(ICCID)}"']),
    (SIMCOM, [ICCID]),  # SIM800: bare digits
    (SIMCOM, [f"+CCID: {ICCID}"]),  # SIM7600
    (QUECTEL, [f"+QCCID: {ICCID}"]),
    (HUAWEI, [f'^ICCID: "{_swap(ICCID)}"']),
])
def test_each_dialect_reads_its_iccid_form(dialect, lines):
    assert dialect.iccid.parse(lines) == ICCID


def test_a_failed_crsm_read_is_no_iccid():
    assert GENERIC.iccid.parse(['+CRSM: 106,130,""']) is None  # 0x6A82: file not found
    assert GENERIC.iccid.parse([]) is None


@pytest.mark.parametrize("dialect, lines, cause", [
    (GENERIC, ["+CEER: User busy"], 17),
    (QUECTEL, ["+CEER: 1,17"], 17),
    (QUECTEL, ['+CEER: "CC REJECT",Normal call clearing'], 16),
    (SIMCOM, [], None),
])
def test_ceer_rows(dialect, lines, cause):
    assert dialect.ceer.parse(lines) == cause


def test_slot_query_rows_and_huawei_has_none():
    assert GENERIC.slot_query.parse(["+CSUS: 1"]) == 1
    assert QUECTEL.slot_query.parse(["+QDSIM: 0"]) == 0
    assert QUECTEL.slot_query.parse(["+QDSIM: x"]) is None
    assert HUAWEI.slot_query is None and HUAWEI.ceer is None


def test_standard_readers():
    assert std.read_plain(["+CGMI: SIMCOM INCORPORATED"]) == "SIMCOM INCORPORATED"
    assert std.read_plain(["Revision: 1418B05SIM800L24"]) == "1418B05SIM800L24"
    assert std.read_imei(["+CGSN: 35-209900-176148-1"]) == "352099001761481"
    assert std.read_imsi(["garbage"]) is None
    assert std.read_cpin(["+CPIN: SIM PIN"]) is PinState.SIM_PIN
    assert std.read_cpin(["+CPIN: WHATEVER"]) is PinState.UNKNOWN
    assert std.read_csq(["+CSQ: 20,99"]).dbm == -73
    assert std.read_csq([]).rssi == 99
    assert std.read_cops_operator(['+COPS: 0,2,"26001",7']) == "26001"
    assert std.read_cops_operator(["+COPS: 0"]) is None
    assert std.read_cnum(['+CNUM: "",""', '+CNUM: "Own","+48600100200",145']) == "+48600100200"
    assert std.read_cmgs(["+CMGS: 42"]) == 42 and std.read_cmgs([]) == -1
    assert std.read_cmgl(["+CMGL: 3,1,,23", "0791AA", "+CMGL: x,1,,2", "FF", "+CMGL: 5,1,,1"]) == [(3, "0791AA")]
    assert std.read_cmgr(["+CMGR: 0,,0"]) == ""
    assert std.read_stored_indication('+CMTI: "ME",4') == ("ME", 4)
    assert std.read_stored_indication("+CMTI: 0,111") == (None, 111)
    assert std.read_stored_indication('+CMTI: "SM",-1') is None
    assert std.read_clip('+CLIP: "+48600100200",145') == "+48600100200"
    assert std.read_cusd('+CUSD: 0,"Saldo 5 PLN",15') == (0, "Saldo 5 PLN", 15)
    assert std.read_cusd("+CUSD: 4") == (4, "", None)
    assert std.read_cusd("+CUSD: x") is None


#: Anything, and answer-like text: digits, separators, quotes, a superscript and an
#: Arabic-Indic digit (both str.isdigit(); only the latter int() reads).
_LINE = st.one_of(st.text(max_size=40), st.text(alphabet=st.sampled_from('0123456789,,,"+:- ¹٣SIMPUK'), max_size=40))
_LINES = st.lists(_LINE, max_size=4)


@settings(max_examples=500, deadline=None)
@given(_LINES)
def test_no_reader_raises_on_any_answer(lines):
    for row in (std.MANUFACTURER, std.MODEL, std.REVISION, std.IMEI, std.IMSI, std.PIN_STATE, std.SIGNAL,
                std.OPERATOR, std.OWN_NUMBER, std.CALLS, std.LIST_STORED):
        row.parse(lines)
    for d in DIALECTS:
        d.iccid.parse(lines)
        for row in (d.ceer, d.slot_query, d.pin_counter):
            if row is not None:
                row.parse(lines)
    for text in lines:
        std.read_stored_indication(text), std.read_clip(text), std.read_cusd(text)
        for prefix in ("+CREG", "+CEREG", "+CGREG"):
            parse_registration(f"{prefix}: {text}")
        for d in DIALECTS:
            for prefix, read_call in ((u.prefix, u.parse) for u in d.call_urcs):
                read_call(f"{prefix}: {text}")
            for prefix, read_digit in d.dtmf_urcs:
                read_digit(f"{prefix}: {text}")
