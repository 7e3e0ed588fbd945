"""Readers of the call-progress reports each vendor sends: line -> ``(state, cause)`` or
None (not a report about our outbound call). The dialect rows (``tables.py``) name which
URC goes to which reader; ``call.Call`` applies what they return.
"""
from __future__ import annotations

from typing import Final

from ..call import CallState

#: +CLCC / ^DSCI <stat> (27.007 §7.18) -> call state. 6 = "released" is a SIMCom/Quectel
#: extension (SIM7600 manual, AT+CLCC; EC25 manual, ^DSCI). 1 held, 4 incoming and
#: 5 waiting do not happen on an outbound call we own.
CLCC_STAT: Final[dict[int, CallState]] = {
    0: CallState.ACTIVE,
    2: CallState.DIALING,
    3: CallState.ALERTING,
    6: CallState.RELEASED,
}

#: Final result codes that end a call, with the cause they imply when +CEER says nothing.
RELEASE_FINALS: Final[dict[str, int | None]] = {
    "NO CARRIER": None,
    "BUSY": 17,  # Q.850 user busy
    "NO ANSWER": 19,  # Q.850 no answer from user (user alerted)
    "NO DIALTONE": 31,  # no network: normal, unspecified
}


def _fields(text: str) -> list[str]:
    body = text.split(":", 1)[1] if ":" in text else ""
    return [f.strip().strip('"') for f in body.split(",")]


def parse_clcc(text: str) -> tuple[CallState, int | None] | None:
    """``+CLCC: <idx>,<dir>,<stat>,<mode>,<mpty>[,"<number>",<type>]`` (27.007 §7.18)."""
    f = _fields(text)
    if len(f) < 3 or not f[2].isdecimal():
        return None
    if f[1] != "0":  # only mobile-originated calls are ours
        return None
    state = CLCC_STAT.get(int(f[2]))
    return None if state is None else (state, None)


def parse_dsci(text: str) -> tuple[CallState, int | None] | None:
    """Quectel ``^DSCI: <id>,<dir>,<stat>,<type>,<number>,<num_type>`` (EC25 manual)."""
    return parse_clcc(text)


def parse_huawei(text: str) -> tuple[CallState, int | None] | None:
    """Huawei ``^ORIG``/``^CONF``/``^CONN``/``^CEND`` (chan_dongle; E1550 voice)."""
    name = text.split(":", 1)[0].strip()
    if name == "^ORIG":
        return CallState.DIALING, None
    if name == "^CONF":
        return CallState.ALERTING, None
    if name == "^CONN":
        return CallState.ACTIVE, None
    if name == "^CEND":
        f = _fields(text)  # call_x, duration, end_status, cc_cause
        cause = int(f[3]) if len(f) > 3 and f[3].isdecimal() else None
        return CallState.RELEASED, cause
    return None


def parse_voice_call(text: str) -> tuple[CallState, int | None] | None:
    """SIM7600 ``VOICE CALL: BEGIN`` / ``VOICE CALL: END: <duration>``."""
    body = text.split(":", 1)[1].strip().upper() if ":" in text else ""
    if body.startswith("BEGIN"):
        return CallState.ACTIVE, None
    if body.startswith("END"):
        return CallState.RELEASED, None
    return None


def parse_release_final(text: str) -> tuple[CallState, int | None] | None:
    key = text.strip().upper()
    if key in RELEASE_FINALS:
        return CallState.RELEASED, RELEASE_FINALS[key]
    return None
