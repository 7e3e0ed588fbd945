"""Q.850 release causes: numbers, the 3GPP TS 24.008 names modems print in ``+CEER``,
and the call outcome each cause means for a dialer.

Sources: ITU-T Q.850 Table 1 (cause values); 3GPP TS 24.008 Annex H (the cause names
SIMCom and generic modems print); the outcome column is our own vocabulary from
docs/architecture.md.
"""
from __future__ import annotations

import enum
import re
from typing import Final


class CallOutcome(enum.Enum):
    """Call outcomes (docs/architecture.md vocabulary)."""

    ANSWERED_HUMAN = "answered_human"
    ANSWERED_MACHINE = "answered_machine"
    BUSY = "busy"
    NO_ANSWER = "no_answer"
    REJECTED = "rejected"
    UNREACHABLE = "unreachable"
    INVALID_NUMBER = "invalid_number"
    NETWORK_ERROR = "network_error"
    CHANNEL_ERROR = "channel_error"
    CANCELLED = "cancelled"
    REFUSED_BY_POLICY = "refused_by_policy"


#: cause -> (24.008 / Q.850 name, outcome when the call was never answered)
CAUSES: Final[dict[int, tuple[str, CallOutcome]]] = {
    1: ("Unassigned (unallocated) number", CallOutcome.INVALID_NUMBER),
    3: ("No route to destination", CallOutcome.INVALID_NUMBER),
    6: ("Channel unacceptable", CallOutcome.NETWORK_ERROR),
    8: ("Operator determined barring", CallOutcome.CHANNEL_ERROR),
    16: ("Normal call clearing", CallOutcome.NO_ANSWER),
    17: ("User busy", CallOutcome.BUSY),
    18: ("No user responding", CallOutcome.NO_ANSWER),
    19: ("User alerting, no answer", CallOutcome.NO_ANSWER),
    20: ("Subscriber absent", CallOutcome.UNREACHABLE),
    21: ("Call rejected", CallOutcome.REJECTED),
    22: ("Number changed", CallOutcome.INVALID_NUMBER),
    25: ("Pre-emption", CallOutcome.NETWORK_ERROR),
    26: ("Non selected user clearing", CallOutcome.NO_ANSWER),
    27: ("Destination out of order", CallOutcome.UNREACHABLE),
    28: ("Invalid number format (incomplete number)", CallOutcome.INVALID_NUMBER),
    29: ("Facility rejected", CallOutcome.CHANNEL_ERROR),
    30: ("Response to STATUS ENQUIRY", CallOutcome.NETWORK_ERROR),
    31: ("Normal, unspecified", CallOutcome.NETWORK_ERROR),
    34: ("No circuit/channel available", CallOutcome.NETWORK_ERROR),
    38: ("Network out of order", CallOutcome.NETWORK_ERROR),
    41: ("Temporary failure", CallOutcome.NETWORK_ERROR),
    42: ("Switching equipment congestion", CallOutcome.NETWORK_ERROR),
    43: ("Access information discarded", CallOutcome.NETWORK_ERROR),
    44: ("Requested circuit/channel not available", CallOutcome.NETWORK_ERROR),
    47: ("Resources unavailable, unspecified", CallOutcome.NETWORK_ERROR),
    49: ("Quality of service unavailable", CallOutcome.NETWORK_ERROR),
    50: ("Requested facility not subscribed", CallOutcome.CHANNEL_ERROR),
    55: ("Incoming calls barred within the CUG", CallOutcome.CHANNEL_ERROR),
    57: ("Bearer capability not authorized", CallOutcome.CHANNEL_ERROR),
    58: ("Bearer capability not presently available", CallOutcome.NETWORK_ERROR),
    63: ("Service or option not available, unspecified", CallOutcome.CHANNEL_ERROR),
    65: ("Bearer service not implemented", CallOutcome.CHANNEL_ERROR),
    68: ("ACM equal to or greater than ACMmax", CallOutcome.CHANNEL_ERROR),
    69: ("Requested facility not implemented", CallOutcome.CHANNEL_ERROR),
    70: ("Only restricted digital information bearer capability is available", CallOutcome.CHANNEL_ERROR),
    79: ("Service or option not implemented, unspecified", CallOutcome.CHANNEL_ERROR),
    81: ("Invalid transaction identifier value", CallOutcome.NETWORK_ERROR),
    87: ("User not member of CUG", CallOutcome.CHANNEL_ERROR),
    88: ("Incompatible destination", CallOutcome.INVALID_NUMBER),
    91: ("Invalid transit network selection", CallOutcome.NETWORK_ERROR),
    95: ("Semantically incorrect message", CallOutcome.NETWORK_ERROR),
    96: ("Invalid mandatory information", CallOutcome.NETWORK_ERROR),
    97: ("Message type non-existent or not implemented", CallOutcome.NETWORK_ERROR),
    98: ("Message type not compatible with protocol state", CallOutcome.NETWORK_ERROR),
    99: ("Information element non-existent or not implemented", CallOutcome.NETWORK_ERROR),
    100: ("Conditional IE error", CallOutcome.NETWORK_ERROR),
    101: ("Message not compatible with protocol state", CallOutcome.NETWORK_ERROR),
    102: ("Recovery on timer expiry", CallOutcome.NETWORK_ERROR),
    111: ("Protocol error, unspecified", CallOutcome.NETWORK_ERROR),
    127: ("Interworking, unspecified", CallOutcome.NETWORK_ERROR),
}

NORMAL_CLEARING: Final = 16
USER_BUSY: Final = 17
NO_ANSWER: Final = 19
UNSPECIFIED: Final = 31


def _key(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", " ", text.lower()).strip()


#: Normalised name -> cause; includes the short forms modems print.
_BY_NAME: Final[dict[str, int]] = {_key(name): cause for cause, (name, _) in CAUSES.items()}
_BY_NAME.update(
    {
        # Short forms seen in SIMCom/Quectel +CEER texts (SIM800 manual, AT+CEER examples).
        _key("Unassigned number"): 1,
        _key("Unallocated number"): 1,
        _key("User alerting no answer"): 19,
        _key("No answer"): 19,
        _key("Busy"): 17,
        _key("Normal unspecified"): 31,
        _key("Call rejected by user"): 21,
        _key("Subscriber absent"): 20,
        _key("Facility not subscribed"): 50,
        _key("No cause information available"): 31,
    }
)


def cause_name(cause: int | None) -> str:
    if cause is None:
        return "unknown"
    return CAUSES.get(cause, (f"cause {cause}", CallOutcome.NETWORK_ERROR))[0]


def cause_from_text(text: str) -> int | None:
    """Parse a ``+CEER`` body: a 24.008 name, ``CC INFO``-style prefixes, or a number."""
    body = text.strip().strip('"')
    for prefix in ("cc info", "cc cause", "cause"):
        low = body.lower()
        if low.startswith(prefix):
            body = body[len(prefix):].lstrip(" :,\"")
    m = re.fullmatch(r"\s*(\d{1,3})\s*", body)
    if m:
        return int(m.group(1))
    key = _key(body)
    if key in _BY_NAME:
        return _BY_NAME[key]
    for name, cause in _BY_NAME.items():
        if name and (name in key or key in name) and len(key) > 3:
            return cause
    return None


def outcome_for(cause: int | None, *, answered: bool, alerted: bool) -> CallOutcome:
    """The outcome of a call that ended with ``cause``.

    An answered call is ``answered_human`` here; answering-machine detection refines it
    later. Normal clearing (16) of an unanswered call that rang means nobody picked up.
    """
    if answered:
        return CallOutcome.ANSWERED_HUMAN
    if cause is None:
        return CallOutcome.NO_ANSWER if alerted else CallOutcome.NETWORK_ERROR
    return CAUSES.get(cause, ("", CallOutcome.NETWORK_ERROR))[1]
