"""The 27.007/27.005 commands every dialect answers alike, as rows with their readers, and
the readers of the standard URCs (``+CMTI``/``+CDSI``, ``+CLIP``, ``+CUSD``).

The vendor rows (ICCID, +CEER, slot query, PIN counter) are in ``tables.py`` beside their
readers; what is here is the same on every modem we know, so it is one row for all. A
reader takes the answer's information lines (or the URC's text) and never raises on a
malformed one: it returns a neutral value the driver knows how to treat.
"""
from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from typing import Final

from ..call import CallState
from ..types import PinState, Signal, rssi_to_dbm
from .base import Cmd, Query
from .progress import parse_clcc


def _body(line: str) -> str:
    return line.split(":", 1)[1].strip() if ":" in line else line.strip()


def _fields(line: str) -> list[str]:
    return [f.strip().strip('"') for f in _body(line).split(",")]


def _head(prefix: str) -> str:
    return prefix + ":"


def _value(lines: Sequence[str], prefix: str) -> str | None:
    """Text after ``PREFIX:`` of the first line with that prefix (``Response.value``)."""
    head = _head(prefix)
    return next((ln[len(head):].strip() for ln in lines if ln.startswith(head)), None)


def _values(lines: Sequence[str], prefix: str) -> list[str]:
    head = _head(prefix)
    return [ln[len(head):].strip() for ln in lines if ln.startswith(head)]


_PREFIXED: Final = re.compile(r"^\+?[A-Z]+:\s*(.*)$")


def read_plain(lines: Sequence[str]) -> str:
    """The first answer line, without an optional ``+CGMI:``-style prefix (and without
    the ``Revision:`` some firmware puts before +CGMR's answer)."""
    for line in lines:
        line = line.strip()
        if not line:
            continue
        m = _PREFIXED.match(line)
        if m and line[0] == "+":
            return m.group(1).strip().strip('"')
        if line.lower().startswith("revision:"):
            return line.split(":", 1)[1].strip()
        return line.strip('"')
    return ""


def read_imsi(lines: Sequence[str]) -> str | None:
    """The IMSI's digits (+CIMI, 27.007 §5.6); None when the answer has none."""
    return re.sub(r"\D", "", read_plain(lines)) or None


def read_imei(lines: Sequence[str]) -> str:
    """The IMEI's digits (+CGSN, 27.007 §5.4), or the answer as it is when it has none."""
    imei = read_plain(lines)
    return re.sub(r"\D", "", imei) or imei


def read_cpin(lines: Sequence[str]) -> PinState:
    """``+CPIN: <code>`` (27.007 §8.3): READY, SIM PIN, SIM PUK...; UNKNOWN otherwise."""
    value = (_value(lines, "+CPIN") or "").strip().strip('"').upper()
    return next((s for s in PinState if s.value == value), PinState.UNKNOWN)


def read_csq(lines: Sequence[str]) -> Signal:
    """``+CSQ: <rssi>,<ber>`` (27.007 §8.5); 99 (not known) for a missing field."""
    value = _value(lines, "+CSQ")
    f = _fields(f"+CSQ: {value}") if value else [""]
    rssi = int(f[0]) if f and f[0].isdecimal() else 99
    ber = int(f[1]) if len(f) > 1 and f[1].isdecimal() else 99
    return Signal(rssi, rssi_to_dbm(rssi), ber)


def read_cops_operator(lines: Sequence[str]) -> str | None:
    """``+COPS: <mode>,<format>,"<oper>"[,<AcT>]`` (27.007 §7.3): <oper> in the format
    set before (``AT+COPS=3,<format>``); None when not registered."""
    f = _fields(_value(lines, "+COPS") or "")
    return f[2] if len(f) > 2 and f[2] else None


def read_cnum(lines: Sequence[str]) -> str | None:
    """``+CNUM: [<alpha>],<number>,<type>`` (27.007 §7.1): the first number the SIM holds."""
    for value in _values(lines, "+CNUM"):
        f = [x.strip().strip('"') for x in value.split(",")]
        if len(f) > 1 and f[1]:
            return f[1]
    return None


def read_clcc(lines: Sequence[str]) -> list[tuple[CallState, int | None]]:
    """Our calls in a polled ``AT+CLCC`` answer (``progress.parse_clcc`` per line)."""
    states = [parse_clcc("+CLCC: " + v) for v in _values(lines, "+CLCC")]
    return [s for s in states if s is not None]


_CMGS: Final = re.compile(r"^\+CMGS:\s*(\d+)")


def read_cmgs(lines: Sequence[str]) -> int:
    """``+CMGS: <mr>`` (27.005 §3.5.1): the message reference; -1 when not given."""
    m = _CMGS.match(next((ln for ln in lines if ln.startswith("+CMGS")), ""))
    return int(m.group(1)) if m else -1


def read_cmgl(lines: Sequence[str]) -> list[tuple[int, str]]:
    """``+CMGL: <index>,<stat>,[<alpha>],<length>`` then the PDU line (27.005 §3.4.2,
    PDU mode): (index, PDU) of every listed message."""
    found = []
    for head, pdu in itertools.pairwise(lines):
        if head.startswith("+CMGL:") and not pdu.startswith("+CMGL:"):
            f = _fields(head)
            if f and f[0].isdecimal():
                found.append((int(f[0]), pdu))
    return found


def read_cmgr(lines: Sequence[str]) -> str:
    """The PDU line of ``+CMGR: <stat>,[<alpha>],<length>`` (27.005 §3.4.3); "" when the
    modem sent only the header (an empty slot)."""
    return next((ln for ln in lines if not ln.startswith("+CMGR")), "")


#: +CMTI / +CDSI: [<mem>,]<index> (27.005 §3.4.1). <mem> is a quoted name ("SM", "ME"),
#: unquoted on some firmware, a number on others (chan_dongle test/parse.c: "+CMTI: 0,111")
#: or absent ("+CMTI: 3"); extra fields after <index> are ignored.
_STORED_INDICATION: Final = re.compile(
    r'^\+(?:CMTI|CDSI):\s*(?:(?:"(?P<quoted>[A-Za-z]{2})"\s*|(?P<bare>[A-Za-z]{2})|\d+)\s*,\s*)?'
    r'(?P<index>-?\d+)\s*(?:,.*)?$'
)


def read_stored_indication(text: str) -> tuple[str | None, int] | None:
    """(storage name or None when not named, index) of a +CMTI/+CDSI; None when malformed
    (a negative index included)."""
    m = _STORED_INDICATION.match(text)
    if not m or int(m.group("index")) < 0:
        return None
    return m.group("quoted") or m.group("bare") or None, int(m.group("index"))


_CLIP: Final = re.compile(r'^\+CLIP:\s*"([^"]*)"')


def read_clip(text: str) -> str | None:
    """The caller's number of ``+CLIP: "<number>",<type>`` (27.007 §7.6); None if hidden."""
    m = _CLIP.match(text)
    return m.group(1) if m else None


_CUSD: Final = re.compile(r'^\+CUSD:\s*(\d+)(?:\s*,\s*"(.*)"\s*(?:,\s*(\d+))?)?\s*$', re.DOTALL)


def read_cusd(text: str) -> tuple[int, str, int | None] | None:
    """``+CUSD: <m>[,"<str>"[,<dcs>]]`` (27.007 §7.15): (status, undecoded string, dcs);
    None when malformed."""
    m = _CUSD.match(text)
    if not m:
        return None
    return int(m.group(1)), m.group(2) or "", int(m.group(3)) if m.group(3) else None


# -- rows --------------------------------------------------------------------------------
MANUFACTURER: Final = Query(Cmd("AT+CGMI", doc="27.007 §5.1"), read_plain)
MODEL: Final = Query(Cmd("AT+CGMM", doc="27.007 §5.2"), read_plain)
REVISION: Final = Query(Cmd("AT+CGMR", optional=True, doc="27.007 §5.3"), read_plain)
IMEI: Final = Query(Cmd("AT+CGSN", optional=True, doc="27.007 §5.4"), read_imei)
IMSI: Final = Query(Cmd("AT+CIMI", optional=True, doc="27.007 §5.6"), read_imsi)
PIN_STATE: Final = Query(Cmd("AT+CPIN?", expect="+CPIN", doc="27.007 §8.3"), read_cpin)
SIGNAL: Final = Query(Cmd("AT+CSQ", expect="+CSQ", doc="27.007 §8.5"), read_csq)
OPERATOR: Final = Query(Cmd("AT+COPS?", expect="+COPS", optional=True, doc="27.007 §7.3"), read_cops_operator)
OWN_NUMBER: Final = Query(Cmd("AT+CNUM", expect="+CNUM", optional=True, doc="27.007 §7.1"), read_cnum)
CALLS: Final = Query(Cmd("AT+CLCC", expect="+CLCC", doc="27.007 §7.18, polled"), read_clcc)
LIST_STORED: Final = Query(Cmd("AT+CMGL=4", expect="+CMGL", optional=True, doc="27.005 §3.4.2: all"), read_cmgl)
#: ``AT+COPS=3,<format>`` sets the operator format of the next +COPS? (27.007 §7.3).
OPERATOR_NUMERIC: Final = "AT+COPS=3,2"
OPERATOR_NAME: Final = "AT+COPS=3,0"
