"""A scripted fake modem on the master side of a real pseudo-terminal.

The port under test opens the slave side by path (through a symlink the peer owns), so
the whole pyserial + fd-in-the-loop path is exercised. The peer runs in the test's event
loop (``add_reader`` on the master fd) and answers commands from a script:

* ``replies[command] = b"..."`` (bytes written after the echo), or a callable
  ``(peer, command) -> bytes | None``; unknown commands get ``ERROR``.
* ``prompts[command] = callable(payload) -> bytes``: answer ``\\r\\n> ``, read the payload
  up to Ctrl-Z (or ESC) and reply with what the callable returns.
* ``silent``: commands that get no answer at all (timeouts); ``later(delay, data)``
  writes bytes after a delay (late finals).
* ``vanish()`` closes the master (the port sees EIO, as when a USB modem is unplugged);
  ``reappear()`` makes a fresh pty and repoints the symlink at it.
"""

from __future__ import annotations

import asyncio
import os
import tty
from collections.abc import Callable
from pathlib import Path

Reply = bytes | Callable[["Peer", str], bytes | None]

CTRL_Z = 0x1A
ESC = 0x1B


class Peer:
    def __init__(self, directory: Path, *, echo: bool = True, name: str = "modem") -> None:
        self.link = directory / name
        self.echo = echo
        self.replies: dict[str, Reply] = {"AT": b"\r\nOK\r\n"}
        self.prompts: dict[str, Callable[[bytes], bytes]] = {}
        self.silent: set[str] = set()
        self.received: list[str] = []  # commands in arrival order
        self.payloads: list[bytes] = []  # bytes received after "> " (with Ctrl-Z/ESC)
        self.connected = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        self._buf = bytearray()
        self._prompt_for: str | None = None
        self._master = -1
        self._slave = -1
        self._timers: list[asyncio.TimerHandle] = []
        self._make_pty()

    # -- pty management ------------------------------------------------------------

    def _make_pty(self) -> None:
        master, slave = os.openpty()
        tty.setraw(slave)
        os.set_blocking(master, False)
        self._master, self._slave = master, slave
        tmp = self.link.with_suffix(".tmp")
        if tmp.is_symlink():
            tmp.unlink()
        tmp.symlink_to(os.ttyname(slave))
        os.replace(tmp, self.link)  # atomic: the port never sees a missing link
        self._loop.add_reader(master, self._on_readable)

    def vanish(self) -> None:
        """Close both pty ends: the port's next read fails with EIO."""
        if self._master < 0:
            return
        self._loop.remove_reader(self._master)
        os.close(self._master)
        os.close(self._slave)
        self._master = self._slave = -1
        self._buf.clear()
        self._prompt_for = None

    def reappear(self) -> None:
        self._make_pty()

    def close(self) -> None:
        for timer in self._timers:
            timer.cancel()
        self.vanish()

    # -- talking -------------------------------------------------------------------

    def send(self, data: bytes) -> None:
        """Write bytes to the port (URCs, replies, garbage)."""
        if self._master >= 0:
            os.write(self._master, data)

    def later(self, delay: float, data: bytes) -> None:
        self._timers.append(self._loop.call_later(delay, self.send, data))

    def _on_readable(self) -> None:
        try:
            data = os.read(self._master, 65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:  # EIO: no process has the slave open (port closed)
            return
        self._buf += data
        self._process()

    def _process(self) -> None:
        while True:
            if self._prompt_for is not None:
                end = next((i for i, b in enumerate(self._buf) if b in (CTRL_Z, ESC)), -1)
                if end < 0:
                    return
                payload = bytes(self._buf[: end + 1])
                del self._buf[: end + 1]
                self.payloads.append(payload)
                command, self._prompt_for = self._prompt_for, None
                if self.echo:
                    self.send(payload)
                if payload[-1] == ESC:
                    self.send(b"\r\nOK\r\n")  # SIM800: ESC leaves the prompt, answers OK
                else:
                    self.send(self.prompts[command](payload[:-1]))
                continue
            end = self._buf.find(b"\r")
            if end < 0:
                return
            command = self._buf[:end].decode()
            del self._buf[: end + 1]
            self._on_command(command)

    def _on_command(self, command: str) -> None:
        self.received.append(command)
        self.connected.set()
        if self.echo:
            self.send(command.encode() + b"\r")
        if command in self.silent:
            return
        if command in self.prompts:
            self._prompt_for = command
            self.send(b"\r\n> ")
            return
        reply = self.replies.get(command, b"\r\nERROR\r\n")
        if callable(reply):
            reply = reply(self, command)
        if reply:
            self.send(reply)
