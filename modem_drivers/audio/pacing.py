"""Write pacing on the real clock: one frame every 20 ms on a fixed schedule, and a count
of the writes that missed their slot.

Pure (the caller passes ``now``, the event loop's ``loop.time()``), so the schedule is a
unit test on a fake clock. The schedule is absolute — slot n is ``start + n × 20 ms`` — so
waiting ``due - now`` never drifts the way repeated ``sleep(0.02)`` does. A write more than
one frame late is counted in ``late_writes`` (never hidden) and the schedule starts again
from it: catching up with a burst would overflow the modem's small voice buffer.
"""
from __future__ import annotations

import dataclasses
from typing import Final

from .frames import FRAME_SECONDS

#: A write later than its slot by more than one frame (20 ms) is late: the modem's buffer
#: (a frame or two on the dongles, per chan_dongle's 20 ms write cadence) has run dry by then.
LATE_AFTER: Final = FRAME_SECONDS


@dataclasses.dataclass(slots=True)
class Pacer:
    """The write schedule of one audio port."""

    period: float = FRAME_SECONDS
    tolerance: float = LATE_AFTER
    late_writes: int = 0
    _due: float | None = None

    def delay(self, now: float) -> float:
        """Seconds to wait before the next frame may be written (0: write now)."""
        return 0.0 if self._due is None else max(0.0, self._due - now)

    def wrote(self, now: float) -> bool:
        """A frame was written at ``now``; True (and counted) when it was late."""
        if self._due is None:
            self._due = now + self.period
            return False
        if now - self._due > self.tolerance:
            self.late_writes += 1
            self._due = now + self.period
            return True
        self._due += self.period
        return False

    def reset(self) -> None:
        """Start a new schedule at the next write (a new call, or a pause on purpose)."""
        self._due = None
