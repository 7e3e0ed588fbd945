"""Audio health of one call: after the answer, real voice frames must arrive.

The rule (issue 14): no frames, or only all-zero frames, for 500 ms after the answer is a
fault of the channel — the modem's voice path is not there — and never a silent callee:
even a silent line carries comfort noise and codec noise, so its samples are not all zero.
The call then ends ``audio_fault`` and the modem is checked. ``AudioHealth`` is the rule,
pure (frames and times in, a verdict out); the port feeds it.
"""
from __future__ import annotations

import dataclasses
import enum
from typing import Final

from ..errors import ModemError

#: Issue 14: the window after the answer within which a live frame must come.
HEALTH_WINDOW: Final = 0.5


class AudioFaultReason(enum.Enum):
    NO_FRAMES = "no_frames"  # nothing came on the audio port
    ZERO_FRAMES = "zero_frames"  # frames came, every sample zero: a dead voice path
    SETUP_REFUSED = "setup_refused"  # the modem refused the dialect's audio set-up step
    PORT_LOST = "port_lost"  # the audio tty went away (USB loss) or is closed


class AudioFault(ModemError):
    """The call's audio path failed: the call ends ``audio_fault`` (common.contract)."""

    def __init__(self, reason: AudioFaultReason, detail: str = "") -> None:
        super().__init__(f"audio fault: {reason.value}" + (f" ({detail})" if detail else ""))
        self.reason = reason


class Verdict(enum.Enum):
    PENDING = "pending"
    GOOD = "good"
    NO_FRAMES = "no_frames"
    ZERO_FRAMES = "zero_frames"


@dataclasses.dataclass(slots=True)
class AudioHealth:
    """Frames seen since the answer at ``answered_at`` (the port's clock, seconds)."""

    answered_at: float
    window: float = HEALTH_WINDOW
    frames: int = 0
    live: int = 0  # frames with a non-zero sample

    @property
    def deadline(self) -> float:
        return self.answered_at + self.window

    def feed(self, frame: bytes, now: float) -> None:
        if now < self.answered_at:
            return  # before the answer: not this call's audio
        self.frames += 1
        if any(frame):
            self.live += 1

    def verdict(self, now: float) -> Verdict:
        """GOOD from the first live frame on (the rule judges the answer only); a fault
        once the window is over without one; PENDING before."""
        if self.live:
            return Verdict.GOOD
        if now < self.deadline:
            return Verdict.PENDING
        return Verdict.ZERO_FRAMES if self.frames else Verdict.NO_FRAMES

    def check(self, now: float) -> None:
        """Raise ``AudioFault`` when the verdict at ``now`` is a fault."""
        verdict = self.verdict(now)
        if verdict is Verdict.NO_FRAMES:
            raise AudioFault(AudioFaultReason.NO_FRAMES, f"no frame within {self.window * 1000:.0f} ms of the answer")
        if verdict is Verdict.ZERO_FRAMES:
            raise AudioFault(AudioFaultReason.ZERO_FRAMES,
                             f"{self.frames} frames within {self.window * 1000:.0f} ms of the answer, all zero")
