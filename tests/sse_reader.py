"""Server-sent events read as a browser reads them (HTML Living Standard §9.2.6): lines
ended by CRLF, LF or CR, ``data`` lines joined, comments (aiohttp-sse's pings) and blocks
without data (a lone ``retry``) not dispatched. Shared by the pages' stream tests."""
from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any


async def events(content: Any) -> AsyncIterator[tuple[str, str]]:
    """(event name, data) pairs from a response's ``content`` stream."""
    name, data = "", []
    async for raw in content:
        line = raw.decode().rstrip("\r\n")
        if line:
            field, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if field == "event":
                name = value
            elif field == "data":
                data.append(value)
        elif data:
            yield name or "message", "\n".join(data)
            name, data = "", []
        else:
            name = ""


async def next_event(content: Any) -> tuple[str, str]:
    """The next event; ``EOFError`` when the stream ended first."""
    async for item in events(content):
        return item
    raise EOFError("the stream ended")
