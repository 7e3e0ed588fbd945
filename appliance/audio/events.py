"""What the detectors say: frozen, slotted events, each checked when it is built.

Times are milliseconds since the first frame fed (the moment of answer on a live call),
always multiples of 5 ms or 20 ms depending on the detector's resolution.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass, field

DTMF_KEYS = "123A456B789C*0#D"


class AmdResult(enum.Enum):
    """AMD outcomes. ``UNSURE`` is handled like ``HUMAN`` by callers (never drop a person)."""

    HUMAN = "human"
    MACHINE = "machine"
    FAX = "fax"
    SILENCE = "silence"
    UNSURE = "unsure"


class FaxKind(enum.Enum):
    CNG = "cng"  # calling tone, 1100 Hz 0.5 s on / 3 s off (ITU-T T.30 §4.1.2)
    CED = "ced"  # called-station answer tone, 2100 Hz 2.6–4 s (ITU-T T.30 §4.1.3, V.25)


class SitKind(enum.Enum):
    """Which special information tone, by the Bellcore frequency pattern of segments 1–2."""

    INTERCEPT = "intercept"  # low low: number changed or disconnected
    VACANT_CODE = "vacant_code"  # high low: unassigned number
    NO_CIRCUIT = "no_circuit"  # high high: all circuits busy
    REORDER = "reorder"  # low high: network congestion
    ITU = "itu"  # 950/1400/1800 Hz, ITU-T E.180 / Q.35, no Bellcore sub-code


#: What a SIT tells the dialer (reported as evidence; a number check acts on it).
SIT_MEANING: dict[SitKind, str] = {
    SitKind.INTERCEPT: "number_not_in_service",
    SitKind.VACANT_CODE: "number_not_in_service",
    SitKind.NO_CIRCUIT: "network_congestion",
    SitKind.REORDER: "network_congestion",
    SitKind.ITU: "number_not_in_service",
}


@dataclass(frozen=True, slots=True)
class Segment:
    """A span of the call: speech, a silence or a tone."""

    start_ms: int
    end_ms: int

    def __post_init__(self) -> None:
        if self.end_ms < self.start_ms:
            raise ValueError(f"segment ends ({self.end_ms}) before it starts ({self.start_ms})")

    @property
    def duration_ms(self) -> int:
        return self.end_ms - self.start_ms


@dataclass(frozen=True, slots=True)
class ToneSegment:
    """One steady single tone: where, which frequency (Hz) and how loud (dBFS)."""

    start_ms: int
    end_ms: int
    frequency_hz: float
    level_dbfs: float

    @property
    def duration_ms(self) -> int:
        return self.end_ms - self.start_ms


@dataclass(frozen=True, slots=True)
class DtmfDigit:
    """A key press, reported when the tone has ended and passed every receiver rule."""

    digit: str
    start_ms: int
    end_ms: int
    row_hz: float  # measured frequencies, not the nominal ones
    col_hz: float
    twist_db: float  # low group minus high group level; positive = "normal" twist

    def __post_init__(self) -> None:
        if len(self.digit) != 1 or self.digit not in DTMF_KEYS:
            raise ValueError(f"digit: expected one of {DTMF_KEYS!r}, got {self.digit!r}")


@dataclass(frozen=True, slots=True)
class Beep:
    """End of a voicemail beep: start recording the message now."""

    tone: ToneSegment
    reported_ms: int  # when the detector knew (tone end + the silence it waited for)

    @property
    def end_ms(self) -> int:
        return self.tone.end_ms


@dataclass(frozen=True, slots=True)
class Sit:
    """Special information tones: the network is playing an announcement, not a person."""

    kind: SitKind
    segments: tuple[ToneSegment, ToneSegment, ToneSegment]
    reported_ms: int

    @property
    def meaning(self) -> str:
        return SIT_MEANING[self.kind]


@dataclass(frozen=True, slots=True)
class FaxTone:
    kind: FaxKind
    tone: ToneSegment
    reported_ms: int


ToneEvent = Beep | Sit | FaxTone


@dataclass(frozen=True, slots=True)
class AmdEvidence:
    """Why the AMD decided: what it heard and which rule fired."""

    speech: tuple[Segment, ...] = ()
    silences: tuple[Segment, ...] = ()
    tones: tuple[ToneEvent, ...] = ()
    noise_floor_dbfs: float | None = None
    detail: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AmdDecision:
    """The verdict, once: which class, when (ms after answer), the rule and the evidence."""

    result: AmdResult
    decided_ms: int
    rule: str
    evidence: AmdEvidence = field(default_factory=AmdEvidence)

    @property
    def connect_agent(self) -> bool:
        """True when a live person may be on the line: human, or unsure (bias to human)."""
        return self.result in (AmdResult.HUMAN, AmdResult.UNSURE)
