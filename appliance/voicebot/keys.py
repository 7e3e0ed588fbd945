"""One stream of keypad digits from two reporters: the modem's DTMF URC and the in-band
detector on the call's audio.

A modem with a DTMF URC (``+RXDTMF``, ``+DTMF``, ``+QTONEDET``, ``^DDTMF``) and an audio
port reports each key twice, once per reporter, a few tens of milliseconds apart; a modem
without the URC reports it once, in band. The merger pairs reports one to one: a report is
a copy when the *other* reporter already reported the same digit within ``window`` seconds
and that report has not been paired yet. So a key both heard is counted once, and the same
key pressed again (a second report from each) is counted again, however close the presses
(Q.24 allows 40 ms on, 40 ms off), because each report pairs with at most one other.

Pure: the caller passes each report's time (the live runner's clock), so the rule is a
unit test.
"""
from __future__ import annotations

import enum
from collections import deque
from dataclasses import dataclass, field
from typing import Final


class KeySource(enum.Enum):
    URC = "urc"  # the modem's DTMF report on the AT port
    IN_BAND = "in_band"  # appliance.audio.dtmf.DtmfDetector on the incoming frames


#: How far apart the two reports of one key may be. The emulator sends the URC when the
#: tone ends and the detector reports ≤ ~30 ms after it (appliance/audio/dtmf.py), plus up
#: to a frame of read latency; a real modem's URC is said to lag its tone by up to a few
#: hundred ms. 0.5 s covers that, and a wrong pairing needs one reporter to miss a key and
#: the other to miss the same digit pressed again within 0.5 s.
PAIR_WINDOW_S: Final = 0.5


@dataclass(slots=True)
class KeyMerger:
    """Counts each key once when both reporters report it (module doc)."""

    window: float = PAIR_WINDOW_S
    #: reports not paired yet, oldest first: (source, digit, at)
    _open: deque[tuple[KeySource, str, float]] = field(default_factory=deque)

    def offer(self, digit: str, source: KeySource, at: float) -> bool:
        """A reporter reported ``digit`` at ``at`` (seconds, any monotonic clock): True when
        it is a new key, False when it is the other reporter's copy of one counted."""
        while self._open and at - self._open[0][2] > self.window:
            self._open.popleft()
        for i, (src, d, when) in enumerate(self._open):
            if src is not source and d == digit and abs(at - when) <= self.window:
                del self._open[i]
                return False
        self._open.append((source, digit, at))
        return True
