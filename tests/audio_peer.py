"""The far side of an audio port on a real pseudo-terminal: the test writes PCM bytes into
the master (as the modem would) and collects what the port wrote, in the test's loop."""
from __future__ import annotations

import asyncio
import os
import tty
from pathlib import Path


class AudioPeer:
    """``path`` is the pty itself, or ``link`` (a stable symlink, as udev's) when given;
    ``reappear`` then makes a fresh pty behind the same link (a USB re-enumeration)."""

    def __init__(self, link: Path | None = None) -> None:
        self.link = link
        self.received = bytearray()
        self.arrivals: list[float] = []  # loop.time() of each read from the port
        self._loop = asyncio.get_running_loop()
        self.master = self.slave = -1
        self.path = ""
        self.reappear()

    def reappear(self) -> None:
        master, slave = os.openpty()
        tty.setraw(slave)
        os.set_blocking(master, False)
        self.master, self.slave = master, slave
        self.path = os.ttyname(slave)
        if self.link is not None:
            tmp = self.link.with_suffix(".tmp")
            tmp.unlink(missing_ok=True)
            tmp.symlink_to(self.path)
            os.replace(tmp, self.link)
            self.path = str(self.link)
        self._loop.add_reader(master, self._on_readable)

    def _on_readable(self) -> None:
        try:
            data = os.read(self.master, 65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            return
        self.received += data
        self.arrivals.append(self._loop.time())

    def send(self, data: bytes) -> None:
        """Write at once (a few frames: the pty's buffer holds them)."""
        os.write(self.master, data)

    async def feed(self, data: bytes) -> None:
        """Write any amount, yielding to the loop while the pty's buffer is full."""
        view = memoryview(data)
        while view:
            try:
                view = view[os.write(self.master, view):]
            except BlockingIOError:
                await asyncio.sleep(0.002)

    async def wait_received(self, count: int, timeout: float = 5.0) -> bytes:
        async with asyncio.timeout(timeout):
            while len(self.received) < count:
                await asyncio.sleep(0.005)
        return bytes(self.received)

    def vanish(self) -> None:
        if self.master < 0:
            return
        self._loop.remove_reader(self.master)
        os.close(self.master)
        os.close(self.slave)
        self.master = self.slave = -1

    close = vanish
