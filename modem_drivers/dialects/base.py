"""What differs between modem vendors, declared as data (zigpy-znp's habit: commands are
table rows with their manual's words beside them, not ``if vendor == …`` branches).

A ``Dialect`` lists the commands a Modem sends for each feature and the URC parsers that
turn the vendor's unsolicited lines into call states and DTMF digits. ``docs/dialects.md``
is the human-readable contract these tables implement.
"""
from __future__ import annotations

import dataclasses
import enum
import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Final, Generic, TypeVar

from ..call import CallState
from ..ussd import UssdForm

if TYPE_CHECKING:
    from ..pin import PinTries


T = TypeVar("T")


@dataclasses.dataclass(frozen=True, slots=True)
class Cmd:
    """One command row: what to send, which prefix answers it, and why we send it."""

    command: str
    expect: str | None = None
    optional: bool = False  # an ERROR is logged and tolerated
    doc: str = ""


@dataclasses.dataclass(frozen=True, slots=True)
class Query(Generic[T]):
    """A command whose answer is read, with its reader beside it: ``parse`` turns the
    answer's information lines into what the driver wants (so a vendor's answer format
    is one place, the row). E.g. the PIN counter row: how many PIN and PUK entries the
    SIM still accepts, read before any PIN is sent (``modem_drivers.pin``; no try spent)."""

    query: Cmd
    parse: Callable[[Sequence[str]], T]


CallParser = Callable[[str], "tuple[CallState, int | None] | None"]
DtmfParser = Callable[[str], "str | None"]


@dataclasses.dataclass(frozen=True, slots=True)
class CallUrc:
    """A URC that reports call progress, its parser, and whether its cause is final."""

    prefix: str
    parse: CallParser
    cause_is_final: bool = False  # True: no +CEER needed (Huawei ^CEND carries Q.850)


#: SIM800 Series AT Command Manual V1.09 §1.4.4: "The Command line buffer can accept a
#: maximum of 556 characters (counted from the first command without "AT")"; a longer
#: line is refused with ERROR. The tightest command-line limit among our dialects, so a
#: text-to-speech line is kept within it for every vendor.
MAX_COMMAND_LINE: Final = 556


@dataclasses.dataclass(frozen=True, slots=True)
class Tts:
    """Text-to-speech played to the far end of an answered call: the command, its two text
    forms, the URC that says the playback ended, and the command that stops it.

    ASCII text goes in quotes as it is (``<mode>`` ``ascii_mode``); anything else (Polish
    letters, a quote sign, control characters) goes as UCS2 hex (``ucs2_mode``), four hex
    digits per character, as both vendors' manuals define the two modes."""

    command: str  # "AT+CTTS": "=<mode>,"<text>"" is appended
    ascii_mode: int
    ucs2_mode: int
    stop: str
    end_urc: str  # URC name whose value ``end_value`` means "playback over"
    end_value: str = "0"
    #: Sent once when the modem is configured (optional: an ERROR is tolerated), e.g. the
    #: SIM7600's switch of the TTS output to the remote side of a call.
    setup: Cmd | None = None
    doc: str = ""

    def command_for(self, text: str) -> str:
        """The command line that speaks ``text``; ValueError when it cannot be sent."""
        if not text:
            raise ValueError("the message is empty")
        if any(ord(ch) > 0xFFFF for ch in text):
            raise ValueError("the message has characters outside UCS2 (e.g. emoji), which no TTS engine speaks")
        if all(" " <= ch <= "~" and ch != '"' for ch in text):
            line = f'{self.command}={self.ascii_mode},"{text}"'
        else:
            line = f'{self.command}={self.ucs2_mode},"{text.encode("utf-16-be").hex().upper()}"'
        if len(line) - len("AT") > MAX_COMMAND_LINE:
            raise ValueError(
                f"the message is too long for one command line ({len(line) - 2} > {MAX_COMMAND_LINE} characters); "
                f"at most {self.max_chars()} characters of any alphabet fit"
            )
        return line

    def max_chars(self) -> int:
        """Longest text of any alphabet that fits (UCS2 costs four hex digits a character)."""
        overhead = len(f'{self.command}={self.ucs2_mode},""') - len("AT")
        return (MAX_COMMAND_LINE - overhead) // 4


class AudioMoment(enum.Enum):
    """When a dialect's audio set-up step is sent in a call."""

    BEFORE_DIAL = "before_dial"  # before each ATD (Quectel: the path must exist at set-up)
    AFTER_CONNECT = "after_connect"  # once the call is answered (its connect report)


@dataclasses.dataclass(frozen=True, slots=True)
class AudioSetup:
    """A modem's audio port (8 kHz S16LE mono PCM, ``modem_drivers.audio``): which models
    of the dialect have it, the command that turns the call's voice onto it, and when that
    command goes. Where the port appears is for the installer (``port``); the driver is
    given its path."""

    step: Cmd
    moment: AudioMoment
    #: Regex searched in +CGMM: the dialect's models that have the port (SIMCom's SIM800
    #: and Quectel's M35 speak the dialect but have none).
    models: str = ".*"
    #: Where the modem puts the port (which USB interface / tty), as its sources say.
    port: str = ""

    def fits(self, model: str) -> bool:
        return re.search(self.models, model, re.IGNORECASE) is not None


@dataclasses.dataclass(frozen=True, slots=True)
class Dialect:
    name: str
    #: (manufacturer regex, model regex) pairs that select this dialect, searched in +CGMI/+CGMM.
    matches: tuple[tuple[str, str], ...]
    #: Sent after identification, once the SIM is ready (order matters).
    init: tuple[Cmd, ...]
    #: Read the ICCID (its reader undoes the vendor's form: EF_ICCID's nibble-swapped BCD...).
    iccid: Query[str | None]
    #: Turn on call-progress reports; when it fails the modem is polled with AT+CLCC.
    call_progress_on: Cmd | None
    call_urcs: tuple[CallUrc, ...]
    hangup: str
    #: ``{digit}`` and ``{call}`` are filled in.
    dtmf_send: str
    dtmf_urcs: tuple[tuple[str, DtmfParser], ...]
    dtmf_receive_on: Cmd | None
    #: The last call's release cause (Q.850); None where it comes in its own URC (^CEND).
    ceer: Query[int | None] | None
    ussd_form: UssdForm
    #: ``{slot}`` is filled in; None when the modem has one SIM slot.
    slot_switch: str | None
    #: The active SIM slot as the modem says; None when it has no such query.
    slot_query: Query[int | None] | None
    reset: str
    #: URC prefixes beyond the AT layer's table, and those whose PDU is on the next line.
    extra_urcs: tuple[str, ...] = ()
    #: Interval of AT+CLCC polling when the modem has no auto-report: frequent enough to
    #: stamp answer within half a second, rare enough to leave the port for SMS work.
    poll_interval: float = 0.5
    #: Text-to-speech to the far end during a call; None = the modem has none.
    tts: Tts | None = None
    #: Reads the SIM's PIN/PUK tries left; None = the modem cannot tell.
    pin_counter: Query[PinTries] | None = None
    #: The audio port and its set-up step; None = no audio port (the TTS is the fallback).
    audio: AudioSetup | None = None

    def urc_prefixes(self) -> tuple[str, ...]:
        tts = (self.tts.end_urc,) if self.tts is not None else ()
        return tuple(u.prefix for u in self.call_urcs) + tuple(p for p, _ in self.dtmf_urcs) + self.extra_urcs + tts

    def selected_by(self, manufacturer: str, model: str) -> bool:
        return any(
            re.search(mre, manufacturer, re.IGNORECASE) and re.search(dre, model, re.IGNORECASE) for mre, dre in self.matches
        )


def parse_dtmf_digit(text: str) -> str | None:
    """``+DTMF: 5`` / ``+RXDTMF: 5`` / ``^DDTMF: 5`` -> "5"."""
    body = text.split(":", 1)[1].strip().strip('"') if ":" in text else ""
    return body[:1].upper() if body[:1] and body[:1].upper() in DTMF_DIGITS else None


def parse_dtmf_ascii(text: str) -> str | None:
    """Quectel ``+QTONEDET: 49`` carries the ASCII code of the digit."""
    body = text.split(":", 1)[1].strip() if ":" in text else ""
    if not body.isdecimal():
        return None
    ch = chr(int(body)) if int(body) < 128 else ""
    return ch.upper() if ch and ch.upper() in DTMF_DIGITS else None


DTMF_DIGITS: Final = frozenset("0123456789*#ABCD")
