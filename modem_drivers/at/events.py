"""Events of the AT protocol: what the sans-I/O parser hands up.

Frozen, slotted dataclasses (h11 ``_events.py`` style): a consumer can keep them, hash
them and compare them, and a test can state the expected stream as a list of literals.
They are built only by the parser, so validation stays light: the enums carry the
meaning, the ``text`` fields keep the modem's own words for logs.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final as _Final
from typing import TypeAlias

__all__ = [
    "NEED_DATA",
    "Event",
    "Final",
    "FinalKind",
    "InfoLine",
    "NeedData",
    "Prompt",
    "Urc",
]


class FinalKind(enum.Enum):
    """Kind of final result code (ITU-T V.250 §5.7.1, 3GPP TS 27.007 §9, 27.005 §3.2.5)."""

    OK = "OK"
    CONNECT = "CONNECT"
    ERROR = "ERROR"  # also vendor errors: "COMMAND NOT SUPPORT", "TOO MANY PARAMETERS"
    CME_ERROR = "+CME ERROR"
    CMS_ERROR = "+CMS ERROR"
    NO_CARRIER = "NO CARRIER"
    BUSY = "BUSY"
    NO_ANSWER = "NO ANSWER"
    NO_DIALTONE = "NO DIALTONE"


_SUCCESS_KINDS = frozenset({FinalKind.OK, FinalKind.CONNECT})


@dataclass(frozen=True, slots=True)
class Final:
    """The final result code that ends a command's response.

    ``text`` is the whole line as the modem sent it (``"+CME ERROR: 10"``, or the
    verbose name for a numeric ATV0 code); ``code`` is the ``+CME``/``+CMS`` error number
    (also filled in when the modem reported the error in words and the word form is in
    the 27.007/27.005 table), otherwise None.
    """

    kind: FinalKind
    text: str
    code: int | None = None

    @property
    def is_error(self) -> bool:
        """True for everything but OK and CONNECT: the command did not do its job."""
        return self.kind not in _SUCCESS_KINDS


@dataclass(frozen=True, slots=True)
class InfoLine:
    """One information line of the in-flight command's response (e.g. ``+CSQ: 20,99``)."""

    text: str


@dataclass(frozen=True, slots=True)
class Urc:
    """An unsolicited result code.

    ``name`` is the prefix without ``:`` (``"+CMTI"``, ``"^CEND"``, ``"RING"``,
    ``"NO CARRIER"``, ``"VOICE CALL"``); ``text`` the whole line, with a quoted string
    that spanned lines joined by ``"\\r\\n"``; ``pdu`` the second line of a two-line URC
    (``+CMT``, ``+CDS``, ``+CBM``), else None.
    """

    name: str
    text: str
    pdu: str | None = None


@dataclass(frozen=True, slots=True)
class Prompt:
    """The ``> `` prompt: the modem waits for the payload (27.005 §3.5.1, AT+CMGS)."""


class NeedData(enum.Enum):
    """Type of the ``NEED_DATA`` sentinel (an enum member so it is a singleton and typed)."""

    NEED_DATA = "NEED_DATA"

    def __repr__(self) -> str:
        return "NEED_DATA"


NEED_DATA: _Final = NeedData.NEED_DATA

Event: TypeAlias = Final | InfoLine | Urc | Prompt
