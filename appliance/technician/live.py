"""Live updates of the page by server-sent events (``GET /events.stream``), instead of
the page polling ``status.json``.

Each open page has one stream. It sends the status document (``event: status``) when it
changed, looking at once when a channel moves (the bank's change listener wakes every
stream: a modem that falls faulty is on the page within ``MIN_GAP_SECONDS``) and every
``TICK_SECONDS`` otherwise (SIM standings, counters, events); at least every
``FULL_SECONDS`` it sends the document anyway (the uptime, "last used" ages). It ends
with ``event: signedout`` when the session ends, and when the appliance stops (so a
stop never waits for open pages). ``retry: 2000`` tells the browser to reconnect 2 s
after a drop; the page says meanwhile that its updates are lost.

The stream itself (format, pings, a stalled browser dropped) is ``common.sse``'s.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from typing import Any, Final

from aiohttp import web

from common.sse import Changes, open_stream

logger = logging.getLogger(__name__)

#: How long a change that no channel move announces may wait: SIM standings, job
#: counters and events change without one. The page polled every 2 s; this halves it.
TICK_SECONDS: Final = 1.0
#: The document is sent at least this often, changed or not (ages on the page move on).
FULL_SECONDS: Final = 5.0
#: Looks at most this often per stream, however fast channels move (a busy bank moves
#: channels busy/idle hundreds of times a second). A look costs 11-23 ms at 512 SIMs with
#: a day's calls and a full events table (``simrotor bench page --modems 256`` on a loaded
#: 2-core machine), so two looks a second keep an open page at 2-4.5 % of a core, and a
#: fault is on it within 0.5 s.
MIN_GAP_SECONDS: Final = 0.5
#: The browser reconnects this long after a dropped stream (EventSource ``retry``).
RETRY_MS: Final = 2000
#: Keys of the document that change on every look and do not make it "changed".
CLOCK_KEYS: Final = frozenset({"now", "uptime_seconds"})


class Streams:
    """The open streams: woken by channel moves, ended when the appliance stops."""

    def __init__(self) -> None:
        self._wakers: set[asyncio.Event] = set()
        self.closing = asyncio.Event()

    def wake(self, *_: Any) -> None:
        """A bank change listener: every stream looks again now."""
        for e in self._wakers:
            e.set()

    async def close(self, app: web.Application | None = None) -> None:
        self.closing.set()
        self.wake()

    async def serve(self, request: web.Request, document: Callable[[], dict[str, Any] | None]) -> web.StreamResponse:
        """Stream ``document()`` (None: the session ended) until the client goes, the
        session ends or the appliance stops."""
        woken = asyncio.Event()
        self._wakers.add(woken)
        try:
            async with open_stream(request) as response:
                changes = Changes(response, "status", full_seconds=FULL_SECONDS, retry_ms=RETRY_MS)
                while not self.closing.is_set():
                    woken.clear()
                    doc = document()
                    if doc is None:
                        await changes.signed_out()
                        break
                    key = json.dumps({k: v for k, v in doc.items() if k not in CLOCK_KEYS}, sort_keys=True, default=str)
                    await changes.offer(json.dumps(doc, default=str), key)
                    await asyncio.sleep(MIN_GAP_SECONDS)  # a move in the gap sets woken: the next look has it
                    if not woken.is_set() and not self.closing.is_set():
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(woken.wait(), TICK_SECONDS - MIN_GAP_SECONDS)
        finally:
            self._wakers.discard(woken)
        return response
