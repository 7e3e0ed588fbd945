"""Typed exceptions of the AT layer, and the 3GPP error-code tables they speak with.

A failed command raises ``CommandFailed`` (or its ``+CME``/``+CMS`` subclasses) carrying
the final result, so callers branch on types and codes, never on strings. The messages
come from 3GPP TS 27.007 §9.2 (``+CME ERROR``) and TS 27.005 §3.2.5 (``+CMS ERROR``);
the 27.005 values 1..127 are the RP causes of TS 24.011 annex E-2.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Mapping

from common.phone import mask

from .events import Final, FinalKind

__all__ = [
    "CME_MESSAGES",
    "CMS_MESSAGES",
    "AtError",
    "AtProtocolError",
    "AtTimeout",
    "CmeError",
    "CmsError",
    "CommandFailed",
    "PortClosed",
    "PortUnavailable",
    "error_code_from_text",
    "failure_for",
]

# 3GPP TS 27.007 §9.2.1 (general) and §9.2.2 (GPRS) <err> values.
CME_MESSAGES: Mapping[int, str] = MappingProxyType(
    {
        0: "phone failure",
        1: "no connection to phone",
        2: "phone-adaptor link reserved",
        3: "operation not allowed",
        4: "operation not supported",
        5: "PH-SIM PIN required",
        6: "PH-FSIM PIN required",
        7: "PH-FSIM PUK required",
        10: "SIM not inserted",
        11: "SIM PIN required",
        12: "SIM PUK required",
        13: "SIM failure",
        14: "SIM busy",
        15: "SIM wrong",
        16: "incorrect password",
        17: "SIM PIN2 required",
        18: "SIM PUK2 required",
        20: "memory full",
        21: "invalid index",
        22: "not found",
        23: "memory failure",
        24: "text string too long",
        25: "invalid characters in text string",
        26: "dial string too long",
        27: "invalid characters in dial string",
        30: "no network service",
        31: "network timeout",
        32: "network not allowed - emergency calls only",
        40: "network personalization PIN required",
        41: "network personalization PUK required",
        42: "network subset personalization PIN required",
        43: "network subset personalization PUK required",
        44: "service provider personalization PIN required",
        45: "service provider personalization PUK required",
        46: "corporate personalization PIN required",
        47: "corporate personalization PUK required",
        50: "incorrect parameters",
        100: "unknown",
        103: "illegal MS",
        106: "illegal ME",
        107: "GPRS services not allowed",
        111: "PLMN not allowed",
        112: "location area not allowed",
        113: "roaming not allowed in this location area",
        132: "service option not supported",
        133: "requested service option not subscribed",
        134: "service option temporarily out of order",
        148: "unspecified GPRS error",
        149: "PDP authentication failure",
        150: "invalid mobile class",
    }
)

# 3GPP TS 27.005 §3.2.5 <err> values; 1..127 from TS 24.011 annex E-2 (RP cause).
CMS_MESSAGES: Mapping[int, str] = MappingProxyType(
    {
        1: "unassigned (unallocated) number",
        8: "operator determined barring",
        10: "call barred",
        21: "short message transfer rejected",
        27: "destination out of service",
        28: "unidentified subscriber",
        29: "facility rejected",
        30: "unknown subscriber",
        38: "network out of order",
        41: "temporary failure",
        42: "congestion",
        47: "resources unavailable, unspecified",
        50: "requested facility not subscribed",
        69: "requested facility not implemented",
        81: "invalid short message transfer reference value",
        95: "invalid message, unspecified",
        96: "invalid mandatory information",
        97: "message type non-existent or not implemented",
        98: "message not compatible with short message protocol state",
        99: "information element non-existent or not implemented",
        111: "protocol error, unspecified",
        127: "interworking, unspecified",
        300: "ME failure",
        301: "SMS service of ME reserved",
        302: "operation not allowed",
        303: "operation not supported",
        304: "invalid PDU mode parameter",
        305: "invalid text mode parameter",
        310: "SIM not inserted",
        311: "SIM PIN required",
        312: "PH-SIM PIN required",
        313: "SIM failure",
        314: "SIM busy",
        315: "SIM wrong",
        316: "SIM PUK required",
        317: "SIM PIN2 required",
        318: "SIM PUK2 required",
        320: "memory failure",
        321: "invalid memory index",
        322: "memory full",
        330: "SMSC address unknown",
        331: "no network service",
        332: "network timeout",
        340: "no +CNMA acknowledgement expected",
        500: "unknown error",
    }
)

# Word form (AT+CMEE=2) -> number, for modems that answer "+CME ERROR: SIM not inserted".
_CME_BY_TEXT = {text.casefold(): code for code, text in CME_MESSAGES.items()}
_CMS_BY_TEXT = {text.casefold(): code for code, text in CMS_MESSAGES.items()}


def error_code_from_text(cms: bool, text: str) -> int | None:
    """The code for an error reported in words, or None when the words are not in the table."""
    table = _CMS_BY_TEXT if cms else _CME_BY_TEXT
    return table.get(text.strip().casefold())


class AtError(Exception):
    """Base of every error raised by the AT layer."""


class AtProtocolError(AtError):
    """The parser was driven wrongly (e.g. ``begin`` while a command is in flight)."""


class CommandFailed(AtError):
    """The command ended with an error final result (ERROR, vendor error, NO CARRIER, ...)."""

    def __init__(self, command: str, final: Final, message: str | None = None) -> None:
        self.command = command
        self.final = final
        super().__init__(message or f"{mask(repr(command))} failed: {final.text}")


class _CodedError(CommandFailed):
    """Shared shape of ``+CME``/``+CMS`` errors: a code and its message in words."""

    _messages: Mapping[int, str] = CME_MESSAGES
    _label = "+CME ERROR"

    def __init__(self, command: str, final: Final) -> None:
        self.code: int | None = final.code
        if final.code is not None:
            self.text = self._messages.get(final.code, f"error {final.code}")
        else:
            _, _, words = final.text.partition(":")
            self.text = words.strip() or "unspecified error"
        code = "" if final.code is None else f" {final.code}"
        super().__init__(
            command, final, f"{mask(repr(command))} failed: {self._label}{code} ({self.text})"
        )


class CmeError(_CodedError):
    """``+CME ERROR``: mobile equipment error, 27.007 §9.2."""


class CmsError(_CodedError):
    """``+CMS ERROR``: SMS service error, 27.005 §3.2.5."""

    _messages = CMS_MESSAGES
    _label = "+CMS ERROR"


def failure_for(command: str, final: Final) -> CommandFailed:
    """The exception that says how ``command`` failed with ``final`` (an error final)."""
    cls = _FAILURE_BY_KIND.get(final.kind, CommandFailed)
    return cls(command, final)


_FAILURE_BY_KIND: Mapping[FinalKind, type[CommandFailed]] = MappingProxyType(
    {FinalKind.CME_ERROR: CmeError, FinalKind.CMS_ERROR: CmsError}
)


class AtTimeout(AtError):
    """No final result within the command's deadline."""

    def __init__(self, command: str, timeout: float) -> None:
        self.command = command
        self.timeout = timeout
        super().__init__(f"{mask(repr(command))}: no final result within {timeout:g} s")


class PortClosed(AtError):
    """The port was closed, or the device vanished, while the caller was waiting on it."""


class PortUnavailable(AtError):
    """The port cannot be opened: no such port, permission denied, busy, refused."""
