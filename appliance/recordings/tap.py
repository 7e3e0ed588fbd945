"""A recording tap on a live call's audio port: every frame read (the far end) and written
(ours) is copied into a two-channel buffer — left the far end, right ours — placed on the
20 ms frame clock, so the two sides line up as they did on the line.

Placement: a frame goes into its side's next slot, or into the slot the clock says when
that is later (a side that was quiet — we write nothing while we listen — gets silence
for the gap). A frame read is placed where it arrived, not where it was read: the slot
that ended as it came in, i.e. now's less the frames still queued behind it (a burst read
after a busy loop turn lands where its sound was). A frame written is placed in the slot
the port's pacing wrote it in. The buffer is bounded (``MAX_SECONDS``):
past it frames are no longer kept and ``truncated`` says so. The tap is the port to
whoever reads and writes through it: other attributes pass through to the port.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Final

import numpy as np

from modem_drivers.audio import FRAME_BYTES, FRAME_SECONDS, AudioPort

#: The longest stretch kept per call: the appliance's max_talk_seconds default is 60 s, and
#: a reminder call with the voicebot lasts 1–3 minutes; 10 minutes of 8 kHz s16 stereo is
#: 19.2 MB of memory at most per recorded call.
MAX_SECONDS: Final = 600.0


class Tap:
    """Records what passes through an ``AudioPort`` (``attach``), both ways."""

    def __init__(self, *, max_seconds: float = MAX_SECONDS, clock: Callable[[], float] = time.monotonic) -> None:
        if not max_seconds > 0:
            raise ValueError(f"a recording's max_seconds must be above 0, not {max_seconds!r}")
        self._max_frames = int(max_seconds / FRAME_SECONDS)
        self._clock = clock
        self._sides: tuple[bytearray, bytearray] = (bytearray(), bytearray())  # far end, ours
        self._t0: float | None = None
        self.port: AudioPort | None = None
        self.truncated = False

    def attach(self, port: AudioPort) -> Tap:
        """Record ``port`` from now on; returns the tap to use as the port. The frames the
        port already holds (queued since the answer while its voice path was judged) came
        before now: the clock starts that many frames back, so they are the recording's
        first slots and our side lines up with them."""
        self.port = port
        if self._t0 is None:
            self._t0 = self._clock() - port.pending_frames() * FRAME_SECONDS
        return self

    def __getattr__(self, name: str) -> Any:  # pending_frames, stats, name… of the port
        port = self.__dict__.get("port")
        if port is None:
            raise AttributeError(name)
        return getattr(port, name)

    async def read_frame(self, timeout: float | None = None) -> bytes:
        assert self.port is not None, "attach the tap to a port first"
        frame = await self.port.read_frame(timeout)
        # it came in before the frames still queued behind it, each 20 ms of sound, and its
        # slot ended as it arrived
        self._put(0, frame, -1 - self.port.pending_frames())
        return frame

    async def write_frame(self, frame: bytes) -> None:
        assert self.port is not None, "attach the tap to a port first"
        await self.port.write_frame(frame)  # paced into its 20 ms slot: the clock after it is the slot
        self._put(1, frame)

    def _put(self, side: int, frame: bytes, back: int = 0) -> None:
        """``frame`` into ``side`` at its clock slot (``back`` slots before now's) or the
        side's next slot, whichever is later."""
        if len(frame) != FRAME_BYTES or self._t0 is None:
            return
        buf = self._sides[side]
        slot = max(len(buf) // FRAME_BYTES, int((self._clock() - self._t0) / FRAME_SECONDS) + back)
        if slot >= self._max_frames:
            self.truncated = True
            return
        if slot * FRAME_BYTES > len(buf):
            buf.extend(bytes(slot * FRAME_BYTES - len(buf)))
        buf.extend(frame)

    @property
    def frames(self) -> int:
        """Frames of the longer side (the recording's length in 20 ms steps)."""
        return max(len(s) for s in self._sides) // FRAME_BYTES

    @property
    def seconds(self) -> float:
        return round(self.frames * FRAME_SECONDS, 2)

    def stereo(self) -> np.ndarray:
        """The recording as int16 samples, shape (n, 2): column 0 the far end, 1 ours."""
        n = self.frames * FRAME_BYTES
        far, ours = (np.frombuffer(bytes(s).ljust(n, b"\0"), dtype="<i2") for s in self._sides)
        return np.stack([far, ours], axis=1)
