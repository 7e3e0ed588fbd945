"""Q.850 release causes: numbers, the 3GPP TS 24.008 names modems print in ``+CEER``,
and the call outcome each cause means for a dialer.

Sources: ITU-T Q.850 Table 1 (cause values); 3GPP TS 24.008 Annex H (the cause names
SIMCom and generic modems print); the outcome column is our own vocabulary from
docs/architecture.md (``common.contract.Outcome``).
"""
from __future__ import annotations

import re
from typing import Final

from common.contract import Outcome

#: cause -> (24.008 / Q.850 name, outcome when the call was never answered)
CAUSES: Final[dict[int, tuple[str, Outcome]]] = {
    1: ("Unassigned (unallocated) number", Outcome.INVALID_NUMBER),
    3: ("No route to destination", Outcome.INVALID_NUMBER),
    6: ("Channel unacceptable", Outcome.NETWORK_ERROR),
    8: ("Operator determined barring", Outcome.CHANNEL_ERROR),
    16: ("Normal call clearing", Outcome.NO_ANSWER),
    17: ("User busy", Outcome.BUSY),
    18: ("No user responding", Outcome.NO_ANSWER),
    19: ("User alerting, no answer", Outcome.NO_ANSWER),
    20: ("Subscriber absent", Outcome.UNREACHABLE),
    21: ("Call rejected", Outcome.REJECTED),
    22: ("Number changed", Outcome.INVALID_NUMBER),
    25: ("Pre-emption", Outcome.NETWORK_ERROR),
    26: ("Non selected user clearing", Outcome.NO_ANSWER),
    27: ("Destination out of order", Outcome.UNREACHABLE),
    28: ("Invalid number format (incomplete number)", Outcome.INVALID_NUMBER),
    29: ("Facility rejected", Outcome.CHANNEL_ERROR),
    30: ("Response to STATUS ENQUIRY", Outcome.NETWORK_ERROR),
    31: ("Normal, unspecified", Outcome.NETWORK_ERROR),
    34: ("No circuit/channel available", Outcome.NETWORK_ERROR),
    38: ("Network out of order", Outcome.NETWORK_ERROR),
    41: ("Temporary failure", Outcome.NETWORK_ERROR),
    42: ("Switching equipment congestion", Outcome.NETWORK_ERROR),
    43: ("Access information discarded", Outcome.NETWORK_ERROR),
    44: ("Requested circuit/channel not available", Outcome.NETWORK_ERROR),
    47: ("Resources unavailable, unspecified", Outcome.NETWORK_ERROR),
    49: ("Quality of service unavailable", Outcome.NETWORK_ERROR),
    50: ("Requested facility not subscribed", Outcome.CHANNEL_ERROR),
    55: ("Incoming calls barred within the CUG", Outcome.CHANNEL_ERROR),
    57: ("Bearer capability not authorized", Outcome.CHANNEL_ERROR),
    58: ("Bearer capability not presently available", Outcome.NETWORK_ERROR),
    63: ("Service or option not available, unspecified", Outcome.CHANNEL_ERROR),
    65: ("Bearer service not implemented", Outcome.CHANNEL_ERROR),
    68: ("ACM equal to or greater than ACMmax", Outcome.CHANNEL_ERROR),
    69: ("Requested facility not implemented", Outcome.CHANNEL_ERROR),
    70: ("Only restricted digital information bearer capability is available", Outcome.CHANNEL_ERROR),
    79: ("Service or option not implemented, unspecified", Outcome.CHANNEL_ERROR),
    81: ("Invalid transaction identifier value", Outcome.NETWORK_ERROR),
    87: ("User not member of CUG", Outcome.CHANNEL_ERROR),
    88: ("Incompatible destination", Outcome.INVALID_NUMBER),
    91: ("Invalid transit network selection", Outcome.NETWORK_ERROR),
    95: ("Semantically incorrect message", Outcome.NETWORK_ERROR),
    96: ("Invalid mandatory information", Outcome.NETWORK_ERROR),
    97: ("Message type non-existent or not implemented", Outcome.NETWORK_ERROR),
    98: ("Message type not compatible with protocol state", Outcome.NETWORK_ERROR),
    99: ("Information element non-existent or not implemented", Outcome.NETWORK_ERROR),
    100: ("Conditional IE error", Outcome.NETWORK_ERROR),
    101: ("Message not compatible with protocol state", Outcome.NETWORK_ERROR),
    102: ("Recovery on timer expiry", Outcome.NETWORK_ERROR),
    111: ("Protocol error, unspecified", Outcome.NETWORK_ERROR),
    127: ("Interworking, unspecified", Outcome.NETWORK_ERROR),
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
    return CAUSES.get(cause, (f"cause {cause}", Outcome.NETWORK_ERROR))[0]


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


def outcome_for(cause: int | None, *, answered: bool, alerted: bool) -> Outcome:
    """The outcome of a call that ended with ``cause``.

    An answered call is ``answered_human`` here; answering-machine detection refines it
    later. Normal clearing (16) of an unanswered call that rang means nobody picked up.
    """
    if answered:
        return Outcome.ANSWERED_HUMAN
    if cause is None:
        return Outcome.NO_ANSWER if alerted else Outcome.NETWORK_ERROR
    return CAUSES.get(cause, ("", Outcome.NETWORK_ERROR))[1]
