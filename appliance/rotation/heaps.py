"""Binary heaps with lazy deletion, the rotation policy's only index structure.

An entry is a tuple whose last two items are ``(sim_id, token)``; it is live while the
SIM still exists and still holds that token for the heap's traffic class. Invalidating a
SIM is therefore O(1) (bump its token), and a stale entry costs one pop when it reaches
the top. A heap is rebuilt from its live entries once it holds more than thrice its
members plus a constant, which keeps memory bounded and the cost amortised O(1) per push.

heapq rather than sortedcontainers: the hot path is push / peek / pop, where heapq's C
implementation is several times cheaper than a SortedList's insort and remove, and lazy
deletion removes the need for arbitrary removal — so no dependency earns its place here.

The rebuild threshold (3× members) trades memory for fewer rebuilds; measured with
bench/rotation.py, 2× rebuilt about as often as it pushed at 4,000 SIMs.
"""
from __future__ import annotations

from collections.abc import Callable
from heapq import heapify, heappush
from typing import Any

#: Slack before a rebuild: small heaps are never rebuilt for a handful of stale entries.
_REBUILD_SLACK = 32


class LazyHeap:
    __slots__ = ("h", "members")

    def __init__(self) -> None:
        self.h: list[tuple[Any, ...]] = []
        self.members = 0  # SIMs that may have a live entry here (at most one each)

    def push(self, entry: tuple[Any, ...], live: Callable[[tuple[Any, ...]], bool]) -> None:
        h = self.h
        heappush(h, entry)
        if len(h) > 3 * self.members + _REBUILD_SLACK:
            self.h = [e for e in h if live(e)]
            heapify(self.h)
