"""AtParser on bytes: each requirement of the AT layer as its own test, plus splits."""

from __future__ import annotations

import logging

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modem_drivers.at import (
    MAX_LINE_BYTES,
    NEED_DATA,
    AtParser,
    AtProtocolError,
    Final,
    FinalKind,
    InfoLine,
    Prompt,
    Urc,
    parser_cost_per_line,
)


def feed(parser: AtParser, data: bytes) -> list[object]:
    parser.receive_data(data)
    events = []
    while (event := parser.next_event()) is not NEED_DATA:
        events.append(event)
    return events


def run(data: bytes, command: str | None = None, **begin: object) -> list[object]:
    parser = AtParser()
    if command is not None:
        parser.begin(command, **begin)  # type: ignore[arg-type]
    return feed(parser, data)


# -- finals ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "kind"),
    [
        (b"OK", FinalKind.OK),
        (b"CONNECT", FinalKind.CONNECT),
        (b"CONNECT 115200", FinalKind.CONNECT),
        (b"ERROR", FinalKind.ERROR),
        (b"NO CARRIER", FinalKind.NO_CARRIER),
        (b"BUSY", FinalKind.BUSY),
        (b"NO ANSWER", FinalKind.NO_ANSWER),
        (b"NO DIALTONE", FinalKind.NO_DIALTONE),
        (b"COMMAND NOT SUPPORT", FinalKind.ERROR),
        (b"TOO MANY PARAMETERS", FinalKind.ERROR),
    ],
)
def test_verbose_finals_during_dial(line: bytes, kind: FinalKind) -> None:
    events = run(b"\r\n" + line + b"\r\n", "ATD+48601000123;")
    assert events == [Final(kind, line.decode())]
    assert events[0].is_error is (kind not in (FinalKind.OK, FinalKind.CONNECT))


@pytest.mark.parametrize(
    ("line", "kind", "code"),
    [
        (b"+CME ERROR: 10", FinalKind.CME_ERROR, 10),
        (b"+CME ERROR: SIM not inserted", FinalKind.CME_ERROR, 10),
        (b"+CME ERROR: incorrect password", FinalKind.CME_ERROR, 16),
        (b"+CME ERROR: vendor specific words", FinalKind.CME_ERROR, None),
        (b"+CMS ERROR: 304", FinalKind.CMS_ERROR, 304),
        (b"+CMS ERROR: SMSC address unknown", FinalKind.CMS_ERROR, 330),
    ],
)
def test_cme_cms_numeric_and_text(line: bytes, kind: FinalKind, code: int | None) -> None:
    assert run(b"\r\n" + line + b"\r\n", "AT+CPIN?") == [Final(kind, line.decode(), code)]


def test_parser_returns_to_idle_after_final() -> None:
    parser = AtParser()
    parser.begin("AT")
    assert parser.command == "AT"
    assert feed(parser, b"\r\nOK\r\n") == [Final(FinalKind.OK, "OK")]
    assert parser.command is None
    assert feed(parser, b"\r\nOK\r\n") == [Urc("OK", "OK")]  # stray final while idle


def test_begin_while_in_flight_is_a_protocol_error() -> None:
    parser = AtParser()
    parser.begin("AT+CSQ")
    with pytest.raises(AtProtocolError, match="still in flight"):
        parser.begin("AT")
    parser.abort()
    parser.begin("AT")  # abort returned it to idle


def test_numeric_results_only_in_flight() -> None:
    assert run(b"0\r", "AT") == [Final(FinalKind.OK, "OK")]
    assert run(b"4\r", "AT+X") == [Final(FinalKind.ERROR, "ERROR")]
    assert run(b"7\r", "ATD123;") == [Final(FinalKind.BUSY, "BUSY")]
    assert run(b"8\r", "ATD123;") == [Final(FinalKind.NO_ANSWER, "NO ANSWER")]
    assert run(b"6\r", "ATD123;") == [Final(FinalKind.NO_DIALTONE, "NO DIALTONE")]
    assert run(b"1\r", "ATD123") == [Final(FinalKind.CONNECT, "CONNECT")]
    assert run(b"2\r0\r", "AT+CSQ") == [Urc("RING", "2"), Final(FinalKind.OK, "OK")]
    assert run(b"0\r") == [Urc("0", "0")]  # idle: just an unknown URC


def test_call_progress_is_final_only_for_call_commands() -> None:
    assert run(b"\r\nNO CARRIER\r\n", "ATD+48601;") == [Final(FinalKind.NO_CARRIER, "NO CARRIER")]
    assert run(b"\r\nBUSY\r\n", "ATA") == [Final(FinalKind.BUSY, "BUSY")]
    during_clcc = run(b"\r\nNO CARRIER\r\n\r\nOK\r\n", "AT+CLCC")
    assert during_clcc == [Urc("NO CARRIER", "NO CARRIER"), Final(FinalKind.OK, "OK")]


@pytest.mark.parametrize("line", [b"NO CARRIER", b"BUSY", b"NO ANSWER", b"RING"])
def test_call_events_while_idle_are_urcs(line: bytes) -> None:
    assert run(b"\r\n" + line + b"\r\n") == [Urc(line.decode(), line.decode())]


# -- echo and line ends -----------------------------------------------------------


def test_echo_on_is_dropped_and_echo_off_works() -> None:
    expected = [InfoLine("+CSQ: 20,99"), Final(FinalKind.OK, "OK")]
    assert run(b"AT+CSQ\r\r\n+CSQ: 20,99\r\n\r\nOK\r\n", "AT+CSQ") == expected
    assert run(b"\r\n+CSQ: 20,99\r\n\r\nOK\r\n", "AT+CSQ") == expected


def test_echo_dropped_only_once() -> None:
    # A line equal to the command after the echo is a real answer line.
    events = run(b"ABC\r\r\nABC\r\n\r\nOK\r\n", "ABC")
    assert events == [InfoLine("ABC"), Final(FinalKind.OK, "OK")]


@pytest.mark.parametrize("eol", [b"\r\n", b"\r", b"\r\r\n", b"\n"])
def test_line_ends(eol: bytes) -> None:
    data = eol + b"+CSQ: 20,99" + eol + eol + b"+CMTI: \"SM\",3" + eol + b"OK" + eol
    assert run(data, "AT+CSQ", expect=("+CSQ",)) == [
        InfoLine("+CSQ: 20,99"),
        Urc("+CMTI", '+CMTI: "SM",3'),
        Final(FinalKind.OK, "OK"),
    ]


def test_final_with_bare_cr_needs_no_more_bytes() -> None:
    parser = AtParser()
    parser.begin("AT")
    assert feed(parser, b"AT\rOK\r") == [Final(FinalKind.OK, "OK")]


# -- URC vs information line ---------------------------------------------------------


def test_urc_between_info_and_final() -> None:
    data = b"\r\n+CSQ: 20,99\r\n\r\n+CMTI: \"SM\",4\r\n\r\nOK\r\n"
    assert run(data, "AT+CSQ", expect=("+CSQ",)) == [
        InfoLine("+CSQ: 20,99"),
        Urc("+CMTI", '+CMTI: "SM",4'),
        Final(FinalKind.OK, "OK"),
    ]


def test_expected_prefix_wins_over_urc_table() -> None:
    data = b"\r\n+CREG: 2,1,\"00C3\",\"1A2B\"\r\n\r\nOK\r\n"
    assert run(data, "AT+CREG?", expect=("+CREG:",))[0] == InfoLine('+CREG: 2,1,"00C3","1A2B"')
    assert run(data, "AT+CSQ", expect=("+CSQ",))[0] == Urc("+CREG", '+CREG: 2,1,"00C3","1A2B"')
    assert run(b"\r\n+CREG: 1\r\n") == [Urc("+CREG", "+CREG: 1")]


def test_unprefixed_answer_is_info_line() -> None:
    data = b"\r\nSIMCOM_Ltd\r\n\r\nOK\r\n"
    assert run(data, "AT+CGMI") == [InfoLine("SIMCOM_Ltd"), Final(FinalKind.OK, "OK")]


def test_unknown_urc_while_idle_is_reported() -> None:
    assert run(b"\r\n+XYZZY: 1,2\r\n\r\nweird text\r\n") == [
        Urc("+XYZZY", "+XYZZY: 1,2"),
        Urc("weird text", "weird text"),
    ]


def test_urc_names_from_table() -> None:
    data = (b"\r\nVOICE CALL: BEGIN\r\n\r\n^CEND:1,0,104,16\r\n\r\nCall Ready\r\n"
            b"\r\n+QTONEDET: 49\r\n\r\nRDY\r\n")
    assert [e.name for e in run(data, "AT+CSQ")] == [  # type: ignore[attr-defined]
        "VOICE CALL", "^CEND", "Call Ready", "+QTONEDET", "RDY"
    ]


def test_dialect_adds_urc_prefixes_at_run_time() -> None:
    # A vendor URC without a +/^ sigil (Telit ME310 "SRING: 1", FreeRTOS-Cellular-Interface
    # issue #179) reads as a reply line until a dialect names it; a two-line URC needs its
    # row to take the next line as its PDU.
    parser = AtParser()
    parser.begin("AT+CSQ")
    assert feed(parser, b"\r\nSRING: 1\r\n") == [InfoLine("SRING: 1")]
    assert feed(parser, b"\r\nOK\r\n") == [Final(FinalKind.OK, "OK")]
    parser.add_urc_prefixes(["SRING:"])
    parser.add_urc_prefixes(["+ZMSG"], two_line=True)
    parser.begin("AT+CSQ")
    assert feed(parser, b"\r\nSRING: 1\r\n+ZMSG: 3\r\nABCDEF\r\nOK\r\n") == [
        Urc("SRING", "SRING: 1"),
        Urc("+ZMSG", "+ZMSG: 3", "ABCDEF"),
        Final(FinalKind.OK, "OK"),
    ]
    with pytest.raises(ValueError):
        parser.add_urc_prefixes([":"])


# -- vendor URCs inside a reply (issue 12 item 7) ------------------------------------
# Sources: ModemManager src/plugins/simtech/tests/test-modem-helpers-simtech.c
# ("^CIEV: 1,0" around +CLCC, "MISSED_CALL: 11:01AM 07712345678"), src/tests/
# test-at-serial-port.c ("+CIEV: 7,1", "+CRING: VOICE" after OK), chan_dongle's URC
# table (at_response.h: ^BOOT, ^RSSI, ^SMMEMFULL, ^DSFLOWRPT on Huawei E1550/E173).


@pytest.mark.parametrize(
    ("command", "urc", "name"),
    [
        ("AT+CGMM", b"^CIEV: 1,0", "^CIEV"),
        ("AT+CGMM", b"MISSED_CALL: 11:01AM 07712345678", "MISSED_CALL"),
        ("AT+CGMM", b"^SMMEMFULL: \"SM\"", "^SMMEMFULL"),
        ("AT+CGMM", b"^DSFLOWRPT: 0000000A,00000000,00000000", "^DSFLOWRPT"),
        ("AT+CGMM", b"+PACSP1", "+PACSP1"),
        ("AT+CGMR", b"+QIURC: \"pdpdeact\",1", "+QIURC"),
        ("AT+CMGR=3", b"^CIEV: 1,0", "^CIEV"),
        ("AT+CMGR=3", b"MISSED_CALL: 11:01AM 07712345678", "MISSED_CALL"),
        ("AT", b"+CIEV: 7,1", "+CIEV"),
    ],
)
def test_unknown_vendor_urc_inside_a_reply_is_a_urc(command: str, urc: bytes, name: str) -> None:
    # The first-line readers (model name, the PDU after +CMGR) must never see it.
    answer = {
        "AT+CGMM": b"SIMCOM_SIM7600E-H",
        "AT+CGMR": b"Revision: LE11B12SIM7600M22",
        "AT+CMGR=3": b"+CMGR: 0,,24\r\n07917283010010F5040BC87238880900F10000",
        "AT": b"",
    }[command]
    reply = b"\r\n" + answer + b"\r\n" if answer else b""
    events = run(b"\r\n" + urc + b"\r\n" + reply + b"\r\nOK\r\n", command)
    text = urc.decode()
    assert events[0] == Urc(name, text)
    assert [e for e in events if isinstance(e, InfoLine)] == [
        InfoLine(x) for x in answer.decode().split("\r\n") if x
    ]
    assert events[-1] == Final(FinalKind.OK, "OK")


def test_expected_and_plain_reply_lines_stay_reply_lines() -> None:
    # AT+CGMI may answer with its own prefix (docs/dialects.md), AT+CGSN with digits, a
    # SIM800 AT+CCID with bare digits; a "+" line that is a number is not a URC either.
    assert run(b"\r\n+CGMI: SIMCOM_Ltd\r\n\r\nOK\r\n", "AT+CGMI")[0] == InfoLine("+CGMI: SIMCOM_Ltd")
    assert run(b"\r\n861475030000011\r\n\r\nOK\r\n", "AT+CGSN")[0] == InfoLine("861475030000011")
    assert run(b"\r\n89860012345678901234\r\n\r\nOK\r\n", "AT+CCID")[0] == InfoLine("89860012345678901234")
    assert run(b"\r\n+48601000123\r\n\r\nOK\r\n", "AT+X")[0] == InfoLine("+48601000123")
    # an explicit expect list claims a vendor prefix the command name does not give
    assert run(b"\r\n^CIEV: 1,0\r\n\r\nOK\r\n", "AT+X", expect=("^CIEV",))[0] == InfoLine("^CIEV: 1,0")


def test_begin_without_expect_claims_the_commands_own_prefix() -> None:
    assert run(b"\r\n+CSQ: 20,99\r\n\r\nOK\r\n", "AT+CSQ")[0] == InfoLine("+CSQ: 20,99")
    # ...but not a set command's when the prefix is a URC (+CREG during AT+CREG=2)
    assert run(b"\r\n+CREG: 1\r\n\r\nOK\r\n", "AT+CREG=2")[0] == Urc("+CREG", "+CREG: 1")
    # expect=() claims nothing
    assert run(b"\r\n+CSQ: 20,99\r\n\r\nOK\r\n", "AT+CSQ", expect=())[0] == Urc("+CSQ", "+CSQ: 20,99")


# -- two-line URCs and multi-line strings ---------------------------------------------


@pytest.mark.parametrize("name", [b"+CMT", b"+CDS", b"+CBM"])
def test_two_line_urcs(name: bytes) -> None:
    data = b"\r\n" + name + b": ,24\r\n07917283010010F5040BC872\r\n"
    assert run(data) == [Urc(name.decode(), name.decode() + ": ,24", "07917283010010F5040BC872")]


def test_two_line_header_followed_by_final_does_not_eat_it() -> None:
    data = b"\r\n+CMT: ,24\r\nOK\r\n"
    assert run(data, "AT+CSQ") == [Urc("+CMT", "+CMT: ,24"), Final(FinalKind.OK, "OK")]


def test_two_line_urc_inside_command() -> None:
    data = b"\r\n+CSQ: 9,0\r\n\r\n+CMT: ,3\r\n0011AA\r\n\r\nOK\r\n"
    assert run(data, "AT+CSQ", expect=("+CSQ",)) == [
        InfoLine("+CSQ: 9,0"),
        Urc("+CMT", "+CMT: ,3", "0011AA"),
        Final(FinalKind.OK, "OK"),
    ]


def test_cusd_string_spanning_lines_is_joined() -> None:
    data = b"\r\n+CUSD: 1,\"Menu:\r\n1. Saldo\r\n\r\n2. Pakiety\",15\r\n\r\nRING\r\n"
    assert run(data) == [
        Urc("+CUSD", '+CUSD: 1,"Menu:\r\n1. Saldo\r\n\r\n2. Pakiety",15'),
        Urc("RING", "RING"),
    ]


def test_cusd_with_bare_cr_inside_quotes() -> None:
    data = b"\r\n+CUSD: 0,\"a\rb\",15\r\n"
    assert run(data) == [Urc("+CUSD", '+CUSD: 0,"a\r\nb",15')]


def test_multiline_prefixes_can_be_added() -> None:
    parser = AtParser()
    parser.add_multiline_prefixes(["^USSD"])
    assert feed(parser, b"\r\n^USSD: \"x\r\ny\"\r\n") == [Urc("^USSD", '^USSD: "x\r\ny"')]


# -- prompt --------------------------------------------------------------------------


def test_prompt_only_while_expected() -> None:
    parser = AtParser()
    parser.begin("AT+CMGS=23", expect=("+CMGS",), prompt=True)
    assert feed(parser, b"AT+CMGS=23\r\r\n> ") == [Prompt()]
    assert feed(parser, b"0011AA\x1a\r\n+CREG: 1\r\n\r\n+CMGS: 7\r\n\r\nOK\r\n") == [
        Urc("+CREG", "+CREG: 1"),
        InfoLine("+CMGS: 7"),
        Final(FinalKind.OK, "OK"),
    ]
    # without prompt=True "> " is the start of an ordinary line
    assert run(b"\r\n> hello\r\n\r\nOK\r\n", "AT+X") == [
        InfoLine("> hello"),
        Final(FinalKind.OK, "OK"),
    ]
    assert run(b"\r\n> ") == []


def test_prompt_needs_its_space() -> None:
    parser = AtParser()
    parser.begin("AT+CMGS=5", prompt=True)
    assert feed(parser, b"\r\n>") == []
    assert feed(parser, b" ") == [Prompt()]


def test_payload_cancelled_with_esc_echo_is_dropped() -> None:
    parser = AtParser()
    parser.begin("AT+CMGS=5", prompt=True)
    assert feed(parser, b"\r\n> 00\x1b\r\nOK\r\n") == [Prompt(), Final(FinalKind.OK, "OK")]


# -- garbage and limits ------------------------------------------------------------


def test_garbage_lines_dropped_with_warning(caplog: pytest.LogCaptureFixture) -> None:
    parser = AtParser()
    parser.begin("AT+CSQ", expect=("+CSQ",))
    with caplog.at_level(logging.WARNING, logger="modem_drivers.at.protocol"):
        events = feed(parser, b"\x00\x01\x02\x03\r\n\xc3\x28bad utf8\r\n+CSQ: 5,0\r\n\x1b[1m\r\nOK\r\n")
    assert events == [InfoLine("+CSQ: 5,0"), Final(FinalKind.OK, "OK")]
    assert parser.lines_dropped == 3
    assert caplog.text.count("dropped") == 3


def test_boot_noise_before_a_line_is_stripped() -> None:
    assert run(b"\x00\xff\xffRDY\r\n") == [Urc("RDY", "RDY")]


def test_over_long_line_dropped_and_parser_resyncs(caplog: pytest.LogCaptureFixture) -> None:
    parser = AtParser()
    parser.begin("AT+COPS=?", expect=("+COPS",))
    junk = b"+COPS: " + b"7" * (MAX_LINE_BYTES + 10)
    with caplog.at_level(logging.WARNING):
        events = feed(parser, junk[:3000])
        events += feed(parser, junk[3000:])
        events += feed(parser, b"\r\n+COPS: (1,\"Plus\")\r\n\r\nOK\r\n")
    assert events == [InfoLine('+COPS: (1,"Plus")'), Final(FinalKind.OK, "OK")]
    assert "over-long line (limit 4096 bytes)" in caplog.text
    assert len(parser._buf) < 64  # the buffer did not keep the junk  # noqa: SLF001
    # the same line in one piece is dropped the same way
    assert run(junk + b"\r\nOK\r\n", "AT") == [Final(FinalKind.OK, "OK")]


def test_unterminated_quote_is_bounded() -> None:
    parser = AtParser()
    data = b"\r\n+CUSD: 0,\"never closed\r\n" + (b"x" * 100 + b"\r\n") * 60
    events = feed(parser, data)
    assert parser.lines_dropped == 1  # dropped once it passed MAX_LINE_BYTES
    # after the drop the parser is back to plain lines
    assert 0 < len(events) < 60 and all(e == Urc("x" * 100, "x" * 100) for e in events)
    assert feed(parser, b"\r\nRING\r\n") == [Urc("RING", "RING")]


@given(st.binary(max_size=300))
@settings(max_examples=200, deadline=None)
def test_random_garbage_never_crashes_and_resyncs(junk: bytes) -> None:
    parser = AtParser()
    parser.begin("AT+CSQ", expect=("+CSQ",))
    feed(parser, junk)
    parser.abort()  # the junk may have held a final; start a clean command
    parser.reset()
    parser.begin("AT")
    assert feed(parser, b"\r\nOK\r\n") == [Final(FinalKind.OK, "OK")]


@given(st.binary(max_size=200).filter(lambda b: b"\r" not in b and b"\n" not in b and b'"' not in b))
@settings(max_examples=200, deadline=None)
def test_garbage_line_then_final_still_ends_command(junk: bytes) -> None:
    parser = AtParser()
    parser.begin("AT+CSQ")
    events = feed(parser, b"\r\n" + junk + b"\r\nOK\r\n")
    finals = [e for e in events if isinstance(e, Final)]
    # the junk itself may be a final result code; otherwise OK ends the command
    assert finals[-1:] == [Final(FinalKind.OK, "OK")] or parser.command is None
    assert parser.command is None


# -- splits ----------------------------------------------------------------------------

# (command or None, bytes): a session with every feature; begin() is called before each
# section's bytes, so the state a line is parsed in does not depend on the split.
SESSION: list[tuple[tuple[str, tuple[str, ...], bool] | None, bytes]] = [
    (None, b"\x00\xffRDY\r\n\r\n+CPIN: READY\r\n"),
    (("AT+CSQ", ("+CSQ",), False), b"AT+CSQ\r\r\n+CSQ: 20,99\r\n\r\n+CMTI: \"SM\",3\r\n\r\nOK\r\n"),
    (("AT+CREG?", ("+CREG",), False), b"\r+CREG: 2,1\r\r\nOK\r"),
    (("AT+CGMI", (), False), b"\nSIMCOM_Ltd\n\nOK\n"),
    (("AT+CMGS=23", ("+CMGS",), True),
     b"AT+CMGS=23\r\r\n> 0011AA\x1a\r\n+CREG: 1\r\n\r\n+CMGS: 5\r\n\r\nOK\r\n"),
    (None, b"\r\n+CMT: ,24\r\n07917283010010F5\r\n\r\n+CUSD: 1,\"A\r\nB\",15\r\n"),
    (("ATD+48601;", (), False), b"\r\nNO CARRIER\r\n"),
    (("AT+CPIN?", ("+CPIN",), False), b"\r\n+CME ERROR: SIM PIN required\r\n"),
    (("ATV0", (), False), b"ATV0\r0\r"),
    (("AT+CLCC", ("+CLCC",), False), b"2\r3\r0\r"),
    (None, b"\r\n\x01\x02garbage\r\n^CEND:1,0,104,16\r\n"),
]


def session_events(chunking: list[list[int]]) -> list[object]:
    parser = AtParser()
    events: list[object] = []
    for (begin, data), cuts in zip(SESSION, chunking):
        if begin is not None:
            command, expect, prompt = begin
            parser.begin(command, expect=expect, prompt=prompt)
        points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
        for start, end in zip(points, points[1:]):
            events += feed(parser, data[start:end])
    return events


WHOLE = session_events([[] for _ in SESSION])


def test_session_reference_events() -> None:
    assert len(WHOLE) == 22
    assert WHOLE[0] == Urc("RDY", "RDY")
    assert Prompt() in WHOLE
    assert Urc("+CUSD", '+CUSD: 1,"A\r\nB",15') in WHOLE
    assert Final(FinalKind.CME_ERROR, "+CME ERROR: SIM PIN required", 11) in WHOLE
    assert WHOLE[-1] == Urc("^CEND", "^CEND:1,0,104,16")


def test_one_byte_at_a_time() -> None:
    assert session_events([list(range(len(d) + 1)) for _, d in SESSION]) == WHOLE


@given(st.lists(st.lists(st.integers(min_value=0, max_value=500), max_size=12),
                min_size=len(SESSION), max_size=len(SESSION)))
@settings(max_examples=300, deadline=None)
def test_every_split_gives_the_same_events(chunking: list[list[int]]) -> None:
    assert session_events(chunking) == WHOLE


# -- cost hook -----------------------------------------------------------------------


def test_parser_cost_per_line_measures_something() -> None:
    stream = b"\r\n+CMTI: \"SM\",3\r\n\r\n+CSQ: 20,99\r\n\r\nRING\r\n"
    cost = parser_cost_per_line(stream, repeat=200)
    assert 0 < cost < 1e-3
    assert 0 < parser_cost_per_line(stream, repeat=20, chunk=7) < 1e-3


def test_logged_samples_mask_phone_numbers(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        run(b"\x01+CLIP: \"+48601000123\",145\r\n")
    assert "601000123" not in caplog.text
    assert "********123" in caplog.text
