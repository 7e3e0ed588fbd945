"""A tiny asyncio AT host for tests, demos and benchmarks of the emulator itself.

It opens a virtual modem's port the way any host does (``open(2)`` on the tty path, raw,
non-blocking, an event-loop reader), sends command lines and collects response lines.
It is deliberately naive — the real driver is ``modem_drivers.at``; this only lets the
emulator be tested without depending on it.
"""
from __future__ import annotations

import asyncio
import os
import re
import tty
from collections import deque
from typing import Final

FINALS: Final = re.compile(
    r"^(OK|ERROR|NO CARRIER|NO DIALTONE|BUSY|NO ANSWER|COMMAND NOT SUPPORT|\+CME ERROR: .*|\+CMS ERROR: .*)$"
)
NUMERIC_FINALS: Final = re.compile(r"^([0-9]|\+CME ERROR: .*|\+CMS ERROR: .*|COMMAND NOT SUPPORT)$")
_SPLIT: Final = re.compile(rb"[\r\n]+")


class AtHost:
    def __init__(self, path: str) -> None:
        self.path = path
        self.fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        tty.setraw(self.fd)
        self.raw = bytearray()  # everything received, for byte-exact assertions
        self.lines: deque[str] = deque()
        self._partial = bytearray()
        self._event = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(self.fd, self._readable)
        self.closed = False

    def _readable(self) -> None:
        try:
            data = os.read(self.fd, 4096)
        except BlockingIOError:
            return
        except OSError:  # EIO: the emulator closed the pty (Fault.VANISH)
            self.close()
            self._event.set()
            return
        if not data:
            return
        self.raw += data
        self._partial += data
        *complete, rest = _SPLIT.split(bytes(self._partial))
        self._partial = bytearray(rest)
        for line in complete:
            if line:
                self.lines.append(line.decode("latin-1"))
        self._event.set()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._loop.remove_reader(self.fd)
            os.close(self.fd)

    def write(self, data: bytes) -> None:
        os.write(self.fd, data)

    async def _wait(self, deadline: float) -> None:
        self._event.clear()
        remaining = deadline - self._loop.time()
        if remaining <= 0:
            raise TimeoutError
        async with asyncio.timeout(remaining):
            await self._event.wait()

    async def command(self, line: str, timeout: float = 5.0, *, numeric: bool = False, end: bytes = b"\r") -> list[str]:
        """Send ``line`` and return the lines received up to and including the final."""
        self.write(line.encode("latin-1") + end)
        return await self.until_final(timeout, numeric=numeric)

    async def until_final(self, timeout: float = 5.0, *, numeric: bool = False) -> list[str]:
        deadline = self._loop.time() + timeout
        out: list[str] = []
        final = NUMERIC_FINALS if numeric else FINALS
        while True:
            while self.lines:
                text = self.lines.popleft()
                out.append(text)
                if final.match(text):
                    return out
            await self._wait(deadline)

    async def prompt(self, timeout: float = 5.0) -> None:
        """Wait for the ``> `` SMS prompt (it has no line end)."""
        deadline = self._loop.time() + timeout
        while not self._partial.endswith(b"> "):
            await self._wait(deadline)
        self._partial.clear()

    async def expect(self, prefix: str, timeout: float = 5.0) -> str:
        """The first received line starting with ``prefix`` (other lines stay queued)."""
        deadline = self._loop.time() + timeout
        while True:
            for i, text in enumerate(self.lines):
                if text.startswith(prefix):
                    del self.lines[i]
                    return text
            await self._wait(deadline)

    async def next_line(self, timeout: float = 5.0) -> str:
        deadline = self._loop.time() + timeout
        while not self.lines:
            await self._wait(deadline)
        return self.lines.popleft()

    async def silence(self, seconds: float) -> list[str]:
        """Collect whatever arrives within ``seconds`` (used to prove nothing comes)."""
        await asyncio.sleep(seconds)
        out = list(self.lines)
        self.lines.clear()
        return out
