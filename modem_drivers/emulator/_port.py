"""One virtual modem's serial port: a pseudo-terminal in the event loop, no thread.

The emulator keeps both ends open: the master is what the modem reads and writes; the
slave stays open too, so the master never sees EIO when the host closes its side (Linux
pty semantics, pty(7)). The slave is raw (no echo, no CR/LF mapping): the echo the host
sees is the modem's own. The stable path is a symlink in the state directory, re-pointed
atomically whenever the port comes back (as udev's /dev/serial/by-id links are).
"""
from __future__ import annotations

import asyncio
import errno
import logging
import os
import tty
from collections.abc import Callable
from pathlib import Path
from typing import Final

log = logging.getLogger(__name__)

READ_CHUNK: Final = 4096  # N_TTY buffers 4 KiB per direction (drivers/tty/n_tty.c)
MAX_BACKLOG: Final = 64 * 1024  # undelivered output kept when the host does not read


class PtyPort:
    __slots__ = ("link", "_loop", "_on_data", "_master", "_slave", "_backlog", "_writing", "device")

    def __init__(self, link: Path, on_data: Callable[[bytes], None]) -> None:
        self.link = link
        self._on_data = on_data
        self._loop: asyncio.AbstractEventLoop | None = None
        self._master = -1
        self._slave = -1
        self._backlog = bytearray()
        self._writing = False
        self.device = ""

    @property
    def is_open(self) -> bool:
        return self._master >= 0

    def open(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        master, slave = os.openpty()
        try:
            tty.setraw(slave)
            os.set_blocking(master, False)
            self.device = os.ttyname(slave)
            tmp = self.link.with_name(f".{self.link.name}.{os.getpid()}.tmp")
            try:
                tmp.unlink()
            except FileNotFoundError:
                pass
            os.symlink(self.device, tmp)
            os.replace(tmp, self.link)  # atomic re-point, like udev's by-id links
        except BaseException:
            os.close(master)
            os.close(slave)
            raise
        self._master, self._slave = master, slave
        loop.add_reader(master, self._readable)

    def close(self, *, remove_link: bool) -> None:
        if self._master >= 0 and self._loop is not None:
            self._loop.remove_reader(self._master)
            if self._writing:
                self._loop.remove_writer(self._master)
        for fd in (self._master, self._slave):
            if fd >= 0:
                os.close(fd)
        self._master = self._slave = -1
        self._writing = False
        self._backlog.clear()
        if remove_link:
            try:
                self.link.unlink()
            except FileNotFoundError:
                pass

    def _readable(self) -> None:
        try:
            data = os.read(self._master, READ_CHUNK)
        except BlockingIOError:
            return
        except OSError as exc:  # EIO cannot happen while we hold the slave; be safe anyway
            log.warning("pty %s read failed: %s", self.link.name, exc)
            return
        if data:
            try:
                self._on_data(data)
            except Exception:  # one bad line never kills a port (docs/architecture.md, Style 5)
                log.exception("modem %s failed on input %r", self.link.name, data[:64])

    def write(self, data: bytes) -> None:
        if self._master < 0 or not data:
            return
        if self._writing:
            self._queue(data)
            return
        try:
            sent = os.write(self._master, data)
        except BlockingIOError:
            sent = 0
        except OSError as exc:
            if exc.errno != errno.EIO:
                log.warning("pty %s write failed: %s", self.link.name, exc)
            return
        if sent < len(data):
            self._queue(data[sent:])

    def _queue(self, data: bytes) -> None:
        self._backlog += data
        if len(self._backlog) > MAX_BACKLOG:  # a host that never reads loses the oldest
            del self._backlog[: len(self._backlog) - MAX_BACKLOG]
        if not self._writing and self._loop is not None:
            self._writing = True
            self._loop.add_writer(self._master, self._flush)

    def _flush(self) -> None:
        try:
            sent = os.write(self._master, self._backlog)
        except BlockingIOError:
            return
        except OSError:
            sent = len(self._backlog)
        del self._backlog[:sent]
        if not self._backlog and self._loop is not None:
            self._loop.remove_writer(self._master)
            self._writing = False
