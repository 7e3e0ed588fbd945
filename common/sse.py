"""The pages' live updates as server-sent events, through aiohttp-sse.

aiohttp-sse writes the EventSource format (HTML Living Standard §9.2: a multi-line
document split into ``data:`` lines), pings with a comment every ``PING_SECONDS`` so a
proxy keeps an idle stream open, and drops a browser that reads nothing for
``SEND_TIMEOUT_SECONDS`` (a phone gone to sleep holds no buffers of ours).

``Changes`` is what both pages (the appliance's technician page, the controller's overview)
do with a stream: send the document as one named event when it changed, and every
``full_seconds`` anyway (ages on the page move on); the first send carries the browser's
reconnect delay; ``signed_out`` ends a stream whose session ended.
"""
from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Final

from aiohttp import web
from aiohttp_sse import EventSourceResponse, sse_response

#: A comment line this often keeps proxies from closing an idle stream (nginx's default
#: read timeout is 60 s).
PING_SECONDS: Final = 15.0
#: A browser that takes no bytes for this long is dropped; its EventSource reconnects
#: when it wakes.
SEND_TIMEOUT_SECONDS: Final = 30.0
HEADERS: Final = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}

__all__ = ["Changes", "EventSourceResponse", "open_stream"]


@contextlib.asynccontextmanager
async def open_stream(request: web.Request) -> AsyncIterator[EventSourceResponse]:
    """The stream's response, prepared; a client that went away ends the block quietly."""
    async with sse_response(request, headers=HEADERS, send_timeout=SEND_TIMEOUT_SECONDS,
                            ping_interval=PING_SECONDS) as response:
        try:
            yield response
        except (ConnectionResetError, ConnectionError, TimeoutError):
            pass  # the page was closed, or stalled past the send timeout


class Changes:
    """Send ``event`` on ``response`` when its data changed, or every ``full_seconds``."""

    def __init__(self, response: EventSourceResponse, event: str, *, full_seconds: float, retry_ms: int) -> None:
        self.response = response
        self.event = event
        self.full_seconds = full_seconds
        self.retry_ms: int | None = retry_ms  # sent with the first event only
        self._loop = asyncio.get_running_loop()
        self._last: str | None = None
        self._sent = float("-inf")

    async def offer(self, data: str, key: str | None = None) -> bool:
        """Send ``data`` unless it is the same as last time (compared by ``key``, else by
        the data) and was sent less than ``full_seconds`` ago; returns whether it went."""
        key = data if key is None else key
        now = self._loop.time()
        if key == self._last and now - self._sent < self.full_seconds:
            return False
        await self.response.send(data, event=self.event, retry=self.retry_ms)
        self.retry_ms = None
        self._last, self._sent = key, now
        return True

    async def signed_out(self) -> None:
        """The session ended: the page goes back to the sign-in form."""
        await self.response.send("{}", event="signedout")
