"""Voice calls: the call state machine and how each dialect reports its progress.

Rules of the machine (a table, h11-style): an outgoing call starts DIALING, may go to
ALERTING, then ACTIVE, and always ends RELEASED; an incoming call starts INCOMING. A
missing transition is a bug in the network script and raises ``CallStateError``. Busy,
absent and unassigned callees go DIALING → RELEASED without alerting.
"""
from __future__ import annotations

import asyncio
import enum
import io
import time
import wave
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

from common.clikit import to_jsonable
from common.contract import (
    Outcome,  # the one outcome enum; _network and the package import it from here
)

from ._dialects import CallReport


class CallState(enum.Enum):
    DIALING = "dialing"
    ALERTING = "alerting"
    INCOMING = "incoming"
    ACTIVE = "active"
    RELEASED = "released"


class CallStateError(RuntimeError):
    pass


TRANSITIONS: Final[dict[CallState, frozenset[CallState]]] = {
    CallState.DIALING: frozenset({CallState.ALERTING, CallState.ACTIVE, CallState.RELEASED}),
    CallState.ALERTING: frozenset({CallState.ACTIVE, CallState.RELEASED}),
    CallState.INCOMING: frozenset({CallState.ACTIVE, CallState.RELEASED}),
    CallState.ACTIVE: frozenset({CallState.RELEASED}),
    CallState.RELEASED: frozenset(),
}

#: +CLCC / ^DSCI <stat> (27.007 §7.18): 0 active, 2 dialing, 3 alerting, 4 incoming;
#: 6 "released" is the SIMCom/Quectel extension docs/dialects.md lists.
CLCC_STAT: Final[dict[CallState, int]] = {
    CallState.ACTIVE: 0, CallState.DIALING: 2, CallState.ALERTING: 3,
    CallState.INCOMING: 4, CallState.RELEASED: 6,
}

#: Final result code a remote release produces (V.250 §5.7.1, docs/dialects.md).
RELEASE_RESULT: Final[dict[int, str]] = {17: "BUSY", 19: "NO ANSWER"}
DEFAULT_RELEASE_RESULT: Final = "NO CARRIER"


@dataclass(frozen=True, slots=True)
class PlayedMessage:
    """A text-to-speech message a modem played during a call (``CallRecord.played``)."""

    text: str
    seconds: float  # how long the voice spoke
    completed: bool  # spoken to the end (False: stopped, or the call ended first)
    heard: bool  # reached the far end (False: played on the modem's local audio path)


@dataclass(frozen=True, slots=True)
class HeardSpan:
    """A stretch of sound the far end heard from the modem (a prompt, a message), in ms
    after the answer on the far end's frame clock (20 ms a frame)."""

    start_ms: int
    end_ms: int


@dataclass(frozen=True, slots=True)
class KeyPress:
    """A key the far end pressed: in-band tone (and the dialect's URC) ending ``at_ms``."""

    digit: str
    at_ms: int


@dataclass(slots=True)
class CallAudio:
    """What the far end of an answered call on an audio port played and heard
    (``CallRecord.audio``): the network's ground truth for live-audio tests.

    ``pcm`` is everything it heard, 8 kHz s16le, one 20 ms frame per tick of its clock
    from the answer (a tick with nothing from the host records silence), capped at
    :data:`MAX_RECORDED_SECONDS`. It is left out of :meth:`public` (the control API
    serves it as a WAV: ``GET /calls/{n}/heard.wav``)."""

    kind: str  # the callee's kind (``_voices.CalleeKind`` value)
    source: str  # "espeak", a WAV file of --audio-dir, or "none" (no voice could be made)
    said: str = ""  # text of what the callee said ("" for tones and WAV files)
    beep_ms: int | None = None  # a machine's beep ended here (ms after answer)
    greeting_end_ms: int | None = None  # a person's greeting (his first words) ended here
    frames_sent: int = 0
    frames_heard: int = 0  # ticks with a whole frame from the host
    late_ticks: int = 0  # ticks the far end itself sent more than a frame late
    heard: list[HeardSpan] = field(default_factory=list)
    keys: list[KeyPress] = field(default_factory=list)
    pcm: bytearray = field(default_factory=bytearray, repr=False)
    pcm_dropped: bool = False  # the recording was let go (only the newest calls keep theirs)

    def heard_after(self, ms: int) -> bytes:
        """The recording from ``ms`` after the answer on."""
        start = max(0, ms) * SAMPLES_PER_MS * 2
        return bytes(self.pcm[start:])

    def after_beep(self) -> bytes:
        """What the machine recorded after its beep (b"" when it has no beep yet)."""
        return b"" if self.beep_ms is None else self.heard_after(self.beep_ms)

    def span_audio(self, span: HeardSpan) -> bytes:
        """One heard prompt or message as PCM."""
        return bytes(self.pcm[span.start_ms * SAMPLES_PER_MS * 2 : span.end_ms * SAMPLES_PER_MS * 2])

    def public(self) -> dict[str, object]:
        return {
            "kind": self.kind, "source": self.source, "said": self.said, "beep_ms": self.beep_ms,
            "greeting_end_ms": self.greeting_end_ms,
            "frames_sent": self.frames_sent, "frames_heard": self.frames_heard, "late_ticks": self.late_ticks,
            "heard": [{"start_ms": h.start_ms, "end_ms": h.end_ms} for h in self.heard],
            "keys": [{"digit": k.digit, "at_ms": k.at_ms} for k in self.keys],
            "recorded_ms": len(self.pcm) // (2 * SAMPLES_PER_MS), "pcm_dropped": self.pcm_dropped,
        }


#: 8 kHz audio: samples per millisecond.
SAMPLES_PER_MS: Final = 8
#: A call's recording stops growing after this long (a far end kept up for hours would
#: otherwise hold 57 MB an hour); two minutes cover the longest scripted conversation.
MAX_RECORDED_SECONDS: Final = 120


@dataclass(slots=True)
class CallRecord:
    """One call as the network saw it (``Network.calls``)."""

    caller_msisdn: str
    callee: str
    started: datetime
    outcome: Outcome | None = None
    cause: int | None = None
    answered: bool = False
    direction: str = "out"  # "out" = from a virtual SIM, "in" = towards one
    modem_id: str = ""
    slot: int = 0
    behaviour: int | None = None
    duration: float = 0.0  # seconds ACTIVE
    dtmf: str = ""  # digits the callee keyed
    # time.monotonic() when the answer was signalled to the host (CLOCK_MONOTONIC is
    # system-wide on Linux, so another process on this host can compare its own stamp)
    answered_monotonic: float | None = None
    played: list[PlayedMessage] = field(default_factory=list)  # TTS messages, in order
    audio: CallAudio | None = None  # the far end on the modem's audio port (audio modems only)

    def public(self) -> dict[str, object]:
        """The record as JSON-ready data, its audio without the PCM."""
        data = {f: to_jsonable(getattr(self, f)) for f in self.__dataclass_fields__ if f != "audio"}
        data["audio"] = self.audio.public() if self.audio is not None else None
        return data


def wav_bytes(pcm: bytes) -> bytes:
    """8 kHz s16le mono PCM as a WAV file."""
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SAMPLES_PER_MS * 1000)
        w.writeframes(pcm)
    return out.getvalue()


def toa(number: str) -> int:
    """Type of address (24.008 §10.5.4.7): 145 international, 129 unknown."""
    return 145 if number.startswith("+") else 129


@dataclass(slots=True, eq=False)
class Call:
    number: str
    direction: int  # 0 mobile-originated, 1 mobile-terminated (27.007 <dir>)
    record: CallRecord
    state: CallState
    index: int = 1  # <idx>/<call_x>: one call at a time per modem
    started: float = field(default_factory=time.monotonic)
    answered_at: float | None = None
    cause: int | None = None
    task: asyncio.Task[None] | None = None
    answered_event: asyncio.Event = field(default_factory=asyncio.Event)
    #: set once the modem's OK to ATD is written: progress (and a release) comes after it
    dial_confirmed: asyncio.Event = field(default_factory=asyncio.Event)
    caller_keys: str = ""  # an inbound caller's keys, one after each prompt he hears

    def advance(self, new: CallState) -> CallState:
        if new not in TRANSITIONS[self.state]:
            raise CallStateError(f"call {self.state.value} → {new.value} is not allowed") from None
        old, self.state = self.state, new
        if new is CallState.ACTIVE:
            self.answered_at = time.monotonic()
            self.record.answered_monotonic = self.answered_at
            self.answered_event.set()
        return old

    def release(self, cause: int) -> CallState:
        """End the call with Q.850 ``cause`` (the ``^CEND``/``+CEER`` it reports)."""
        old = self.advance(CallState.RELEASED)
        self.cause = cause
        return old

    @property
    def duration(self) -> float:
        return 0.0 if self.answered_at is None else time.monotonic() - self.answered_at


def _hhmmss(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600:02d}{s % 3600 // 60:02d}{s % 60:02d}"


def _clcc(call: Call, state: CallState) -> str:
    return f'+CLCC: {call.index},{call.direction},{CLCC_STAT[state]},0,0,"{call.number}",{toa(call.number)}'


def _dsci(call: Call, state: CallState) -> str:
    return f"^DSCI: {call.index},{call.direction},{CLCC_STAT[state]},0,{call.number},{toa(call.number)}"


def _huawei(call: Call, state: CallState) -> str | None:
    # chan_dongle: ^ORIG dialing, ^CONF alerting, ^CONN answered, ^CEND released.
    # <end_status> is not interpreted by chan_dongle or our driver; we send 0.
    return {
        CallState.DIALING: f"^ORIG: {call.index},0",
        CallState.ALERTING: f"^CONF: {call.index}",
        CallState.ACTIVE: f"^CONN: {call.index},0",
        CallState.RELEASED: f"^CEND: {call.index},{int(call.duration)},0,{call.cause or 16}",
    }.get(state)


#: Call-progress renderer per report style; the bool says whether the host enabled it.
_RENDERERS: Final[dict[CallReport, Callable[[Call, CallState], str | None]]] = {
    CallReport.CLCC: _clcc,
    CallReport.DSCI: _dsci,
    CallReport.HUAWEI: _huawei,
    CallReport.NONE: lambda call, state: None,
}


def progress_urcs(style: CallReport, enabled: bool, voice_call_urcs: bool, call: Call, state: CallState) -> list[str]:
    """URC lines a modem of this style emits when ``call`` enters ``state``."""
    lines: list[str] = []
    if enabled or style is CallReport.HUAWEI:
        line = _RENDERERS[style](call, state)
        if line:
            lines.append(line)
    if voice_call_urcs:  # SIM7600 manual: VOICE CALL: BEGIN / VOICE CALL: END: <hhmmss>
        if state is CallState.ACTIVE:
            lines.append("VOICE CALL: BEGIN")
        elif state is CallState.RELEASED:
            lines.append(f"VOICE CALL: END: {_hhmmss(call.duration)}")
    return lines
