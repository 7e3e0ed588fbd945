"""A recording tap on a live call's audio port: every frame read (the far end) and written
(ours) is copied into a two-channel buffer — left the far end, right ours — lined up on
the 20 ms frame clock the way they met on the line.

The clock is the far end's own stream: the modem delivers one 20 ms frame per 20 ms of
the call, so the frames that came in so far (read, plus those still queued in the port)
say where on the call's timeline "now" is. A frame read takes the far end's next slot; a
frame written takes that "now" slot, or our next slot when that is later (a side that
was quiet — we write nothing while we listen — gets silence for the gap). So when the
AMD's verdict comes after the frame ending at ``decided_ms`` and the message starts at
once, the message starts at ``decided_ms`` in the recording too, whatever the loop's
scheduling did to the reads (a wall clock would move our side by the read jitter: the
emulator's far end sends a late frame together with the next one). The frames the port
already holds when the tap is attached (queued since the answer while the voice path was
judged) are the recording's first slots.

The buffer is bounded (``MAX_SECONDS``): past it frames are no longer kept and
``truncated`` says so. The tap is the port to whoever reads and writes through it: other
attributes pass through to the port.
"""
from __future__ import annotations

from typing import Any, Final

import numpy as np

from modem_drivers.audio import FRAME_BYTES, FRAME_SECONDS, AudioPort

#: The longest stretch kept per call: the appliance's max_talk_seconds default is 60 s, and
#: a reminder call with the voicebot lasts 1–3 minutes; 10 minutes of 8 kHz s16 stereo is
#: 19.2 MB of memory at most per recorded call.
MAX_SECONDS: Final = 600.0


class Tap:
    """Records what passes through an ``AudioPort`` (``attach``), both ways."""

    def __init__(self, *, max_seconds: float = MAX_SECONDS) -> None:
        if not max_seconds > 0:
            raise ValueError(f"a recording's max_seconds must be above 0, not {max_seconds!r}")
        self._max_frames = int(max_seconds / FRAME_SECONDS)
        self._sides: tuple[bytearray, bytearray] = (bytearray(), bytearray())  # far end, ours
        self.port: AudioPort | None = None
        self.truncated = False

    def attach(self, port: AudioPort) -> Tap:
        """Record ``port`` from now on; returns the tap to use as the port."""
        self.port = port
        return self

    def __getattr__(self, name: str) -> Any:  # pending_frames, stats, name… of the port
        port = self.__dict__.get("port")
        if port is None:
            raise AttributeError(name)
        return getattr(port, name)

    async def read_frame(self, timeout: float | None = None) -> bytes:
        assert self.port is not None, "attach the tap to a port first"
        frame = await self.port.read_frame(timeout)
        self._put(0, frame, len(self._sides[0]) // FRAME_BYTES)
        return frame

    async def write_frame(self, frame: bytes) -> None:
        assert self.port is not None, "attach the tap to a port first"
        await self.port.write_frame(frame)  # paced into its 20 ms slot
        now = len(self._sides[0]) // FRAME_BYTES + self.port.pending_frames()  # far-end frames come in so far
        self._put(1, frame, max(len(self._sides[1]) // FRAME_BYTES, now))

    def _put(self, side: int, frame: bytes, slot: int) -> None:
        if len(frame) != FRAME_BYTES:
            return
        if slot >= self._max_frames:
            self.truncated = True
            return
        buf = self._sides[side]
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
