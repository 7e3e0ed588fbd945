"""Coarse deadlines: thousands of short-lived timeouts on a handful of loop timers.

Why: a bank of 256 modems completes thousands of AT commands a second, each bounded by a
deadline of seconds that almost never fires. ``asyncio.timeout`` arms one loop timer per
block (under uvloop a libuv timer is allocated, started, stopped and closed each time),
and in ``simrotor bench multiplex --modems 256 --timing fast`` arming and disarming them
was about a tenth of the appliance's CPU (py-spy, GIL samples). Here a deadline is filed
in a bucket of ``GRANULARITY`` seconds and one loop timer serves the whole bucket: adding
and cancelling are dict operations, and at most ``1 / GRANULARITY`` timers a second are
armed however many commands run.

The price: a deadline fires up to ``GRANULARITY`` late, never early. Every deadline in
the modem path is a second or more (AT timeout classes, ring and talk limits), where
50 ms is noise.
"""
from __future__ import annotations

import asyncio
import itertools
import logging
import math
from collections.abc import Callable
from types import TracebackType
from typing import Final

__all__ = ["GRANULARITY", "Deadlines", "coarse_timeout", "deadlines"]

logger = logging.getLogger(__name__)

#: Bucket width in seconds: the most a deadline fires late. 50 ms is under the shortest
#: timeout in the modem path (1 s) by 20x, and caps the timers at 20 a second.
GRANULARITY: Final = 0.05

Token = tuple[int, int]


class Deadlines:
    """Callbacks due at loop times, fired by bucket (one loop timer per busy bucket)."""

    __slots__ = ("_loop", "_buckets", "_ids")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._buckets: dict[int, dict[int, Callable[[], None]]] = {}
        self._ids = itertools.count()

    def add(self, when: float, callback: Callable[[], None]) -> Token:
        """Call ``callback()`` at loop time ``when`` (up to ``GRANULARITY`` later)."""
        b = math.ceil(when / GRANULARITY)
        bucket = self._buckets.get(b)
        if bucket is None:
            bucket = self._buckets[b] = {}
            self._loop.call_at(b * GRANULARITY, self._fire, b)
        key = next(self._ids)
        bucket[key] = callback
        return b, key

    def cancel(self, token: Token) -> None:
        bucket = self._buckets.get(token[0])
        if bucket is not None:
            bucket.pop(token[1], None)

    def pending(self) -> int:
        """Deadlines filed and not yet fired or cancelled (for tests and stats)."""
        return sum(len(b) for b in self._buckets.values())

    def _fire(self, b: int) -> None:
        bucket = self._buckets.pop(b, None)
        if not bucket:
            return
        for callback in bucket.values():
            try:
                callback()
            except Exception:  # one broken callback must not skip the rest of the bucket
                logger.exception("deadline callback %r failed", callback)


_by_loop: dict[int, Deadlines] = {}


def deadlines() -> Deadlines:
    """The running loop's ``Deadlines`` (created on first use)."""
    loop = asyncio.get_running_loop()
    d = _by_loop.get(id(loop))
    if d is None or d._loop is not loop:  # a new loop may reuse a dead one's id
        if len(_by_loop) > 64:  # tests run many loops; drop the closed ones
            for k in [k for k, v in _by_loop.items() if v._loop.is_closed()]:
                del _by_loop[k]
        d = _by_loop[id(loop)] = Deadlines(loop)
    return d


class coarse_timeout:  # noqa: N801 - used like asyncio.timeout
    """``async with coarse_timeout(seconds):`` — ``asyncio.timeout``'s contract (the block
    is cancelled at the deadline and ``TimeoutError`` comes out of it; ``None`` means no
    deadline) on a coarse deadline. For waits of a second or more on hot paths."""

    __slots__ = ("_delay", "_task", "_token", "_expired", "_cancelling")

    def __init__(self, delay: float | None) -> None:
        self._delay = delay
        self._task: asyncio.Task[object] | None = None
        self._token: Token | None = None
        self._expired = False
        self._cancelling = 0

    async def __aenter__(self) -> coarse_timeout:
        if self._delay is None:
            return self
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("coarse_timeout must be used inside a task")
        self._task = task
        self._cancelling = task.cancelling()
        if self._delay <= 0:
            self._expired = True
            task.cancel()
        else:
            d = deadlines()
            self._token = d.add(d._loop.time() + self._delay, self._on_deadline)
        return self

    def _on_deadline(self) -> None:
        self._token = None
        if self._task is not None and not self._task.done():
            self._expired = True
            self._task.cancel()

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        if self._token is not None:
            deadlines().cancel(self._token)
            self._token = None
        if self._expired and self._task is not None:
            # Same rule as asyncio.Timeout: our cancel becomes TimeoutError unless someone
            # else cancelled the task too, whose cancellation then goes on.
            if self._task.uncancel() <= self._cancelling and exc_type is asyncio.CancelledError:
                raise TimeoutError from exc
        return None
