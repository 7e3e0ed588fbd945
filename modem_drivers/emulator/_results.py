"""Final result codes and error results, verbose and numeric (V.250, 27.007, 27.005)."""
from __future__ import annotations

from typing import Final

#: V.250 §5.7.1 numeric result codes (ATV0), as listed in docs/dialects.md.
RESULT_CODES: Final[dict[str, int]] = {
    "OK": 0, "CONNECT": 1, "RING": 2, "NO CARRIER": 3, "ERROR": 4,
    "NO DIALTONE": 6, "BUSY": 7, "NO ANSWER": 8,
}

#: 27.007 §9.2 +CME ERROR codes the virtual modems use.
CME_TEXT: Final[dict[int, str]] = {
    3: "operation not allowed",
    4: "operation not supported",
    10: "SIM not inserted",
    11: "SIM PIN required",
    12: "SIM PUK required",
    13: "SIM failure",
    16: "incorrect password",
    30: "no network service",
    50: "incorrect parameters",
    100: "unknown",
}

#: 27.005 §3.2.5 +CMS ERROR codes (0–127 are 24.011 RP causes).
CMS_TEXT: Final[dict[int, str]] = {
    21: "short message transfer rejected",
    50: "requested facility not subscribed",
    302: "operation not allowed",
    303: "operation not supported",
    304: "invalid PDU mode parameter",
    310: "SIM not inserted",
    311: "SIM PIN required",
    316: "SIM PUK required",
    321: "invalid memory index",
    331: "no network service",
    500: "unknown error",
}


class AtFailure(Exception):
    """A command's non-OK final result; ``render`` honours AT+CMEE."""

    def render(self, cmee: int) -> str:
        raise NotImplementedError


class CmeError(AtFailure):
    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code

    def render(self, cmee: int) -> str:
        if cmee == 0:
            return "ERROR"  # 27.007 §9.1: CMEE=0 gives the plain V.250 ERROR
        if cmee == 1:
            return f"+CME ERROR: {self.code}"
        return f"+CME ERROR: {CME_TEXT.get(self.code, 'unknown')}"


class CmsError(AtFailure):
    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code

    def render(self, cmee: int) -> str:
        # 27.005 §3.2.5: +CMS ERROR is its own final result code, numeric unless CMEE=2.
        if cmee == 2:
            return f"+CMS ERROR: {CMS_TEXT.get(self.code, 'unknown error')}"
        return f"+CMS ERROR: {self.code}"


class FixedResult(AtFailure):
    """A fixed final result: ERROR, NO DIALTONE, NO CARRIER, COMMAND NOT SUPPORT…"""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text

    def render(self, cmee: int) -> str:
        return self.text
