"""Typed errors of the modem layer, each with a message an installer can act on.

The AT layer raises protocol errors (``CmeError`` with a code); this module turns the
codes that mean something to a person (27.007 §9.2, 27.005 §3.2.5) into these types.
"""
from __future__ import annotations

from typing import Final


class ModemError(Exception):
    """Base of the modem layer's errors. ``str(exc)`` is a sentence for a person."""


class SimError(ModemError):
    pass


class SimNotInserted(SimError):
    pass


class PinError(SimError):
    """The SIM is locked and was not unlocked. ``tries_left`` counts the entries the SIM
    still accepts for what it asks (PIN or PUK) when the modem could tell, else None."""

    def __init__(self, message: str, tries_left: int | None = None) -> None:
        super().__init__(message)
        self.tries_left = tries_left


class SimPinRequired(PinError):
    pass


class SimPukRequired(PinError):
    pass


class WrongPin(PinError):
    pass


class SimBlocked(SimError):
    """The operator blocked the SIM (calls barred, registration denied)."""


class NotRegistered(ModemError):
    pass


class SmsFailed(ModemError):
    pass


class UssdFailed(ModemError):
    pass


class Unsupported(ModemError):
    """The modem's dialect has no such feature (e.g. slot switch on a Huawei dongle)."""


class SlotRefused(ModemError):
    """The modem has slots but refused to switch to this one now (no SIM there, a SIM
    fault, a busy modem): worth another try later, unlike ``Unsupported``."""


class ForeignModem(ModemError):
    """Another modem (another IMEI) answers on the port this modem was opened on: tty names
    move when a USB hub re-enumerates. Nothing is sent to its SIM (not even a PIN)."""


class CallBusy(ModemError):
    """A call is already up on this modem."""


class TtsUnsupported(Unsupported):
    """The modem's dialect has no text-to-speech command (Huawei voice dongles, generic
    27.007 modems): a message cannot be played on this channel."""


class PlaybackFailed(ModemError):
    """A message could not be played: no answered call, the modem refused the command, or
    the text cannot be sent to it."""


#: +CME ERROR codes (27.007 §9.2.1) that map to a typed error with a sentence.
CME_ERRORS: Final[dict[int, tuple[type[ModemError], str]]] = {
    3: (CallBusy, "operation not allowed now (a call may be in progress)"),
    10: (SimNotInserted, "no SIM card in the active slot"),
    11: (SimPinRequired, "the SIM needs its PIN (use --pin)"),
    12: (SimPukRequired, "the SIM is PIN-locked: it needs its PUK"),
    13: (SimError, "SIM failure"),
    14: (SimError, "SIM busy"),
    15: (SimError, "wrong SIM"),
    16: (WrongPin, "incorrect PIN or password"),
    17: (SimPinRequired, "the SIM needs its PIN2"),
    18: (SimPukRequired, "the SIM needs its PUK2"),
    30: (NotRegistered, "no network service"),
    31: (NotRegistered, "network timeout"),
    32: (NotRegistered, "network not allowed: emergency calls only"),
}

#: +CMS ERROR codes (27.005 §3.2.5) worth a sentence.
CMS_ERRORS: Final[dict[int, tuple[type[ModemError], str]]] = {
    38: (NotRegistered, "network out of order"),
    42: (NotRegistered, "network congestion"),
    50: (SimBlocked, "SMS not subscribed on this SIM (facility not subscribed)"),
    69: (SmsFailed, "the network rejected the message"),
    96: (SmsFailed, "invalid mandatory information"),
    300: (SmsFailed, "modem failure"),
    301: (SmsFailed, "SMS service of the modem reserved"),
    302: (SmsFailed, "operation not allowed"),
    303: (Unsupported, "operation not supported"),
    304: (SmsFailed, "invalid PDU mode parameter"),
    310: (SimNotInserted, "no SIM card in the active slot"),
    311: (SimPinRequired, "the SIM needs its PIN (use --pin)"),
    316: (SimPukRequired, "the SIM is PIN-locked: it needs its PUK"),
    330: (SmsFailed, "SMS centre address unknown (set it with AT+CSCA)"),
    331: (NotRegistered, "no network service"),
    332: (NotRegistered, "network timeout"),
    500: (SmsFailed, "unknown error"),
}
