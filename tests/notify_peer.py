"""systemd's side of the sd_notify protocol for tests: a real ``AF_UNIX`` datagram socket
(a file or an abstract name) that keeps every message with its arrival time, read by a
thread so a blocked event loop in the test cannot delay the stamps."""
from __future__ import annotations

import asyncio
import socket
import threading
import time
import uuid
from pathlib import Path


class NotifyPeer:
    """Bound at ``path`` (a file) or, with ``path=None``, at a fresh abstract name.
    ``env`` is what a service needs to find it."""

    def __init__(self, path: Path | None = None) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        if path is None:
            name = f"simrotor-test-{uuid.uuid4().hex}"
            self.sock.bind("\0" + name)
            self.name = "@" + name
        else:
            self.sock.bind(str(path))
            self.name = str(path)
        self.sock.settimeout(0.1)
        self.messages: list[tuple[float, dict[str, str]]] = []  # (monotonic arrival, KEY=value lines)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._read, name="notify-peer", daemon=True)
        self._thread.start()

    @property
    def env(self) -> dict[str, str]:
        return {"NOTIFY_SOCKET": self.name}

    def _read(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            fields = dict(line.split("=", 1) for line in data.decode().split("\n") if line)
            with self._lock:
                self.messages.append((time.monotonic(), fields))

    def snapshot(self) -> list[tuple[float, dict[str, str]]]:
        with self._lock:
            return list(self.messages)

    def with_key(self, key: str) -> list[tuple[float, dict[str, str]]]:
        return [(t, m) for t, m in self.snapshot() if key in m]

    def statuses(self) -> list[str]:
        return [m["STATUS"] for _, m in self.snapshot() if "STATUS" in m]

    async def wait_for(self, what: str, predicate, timeout: float) -> dict[str, str]:  # type: ignore[no-untyped-def]
        """The first message for which ``predicate(fields)`` holds, waiting up to
        ``timeout`` seconds; fails naming ``what`` and what did arrive."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for _, m in self.snapshot():
                if predicate(m):
                    return m
            await asyncio.sleep(0.05)
        raise AssertionError(f"no {what} within {timeout:.0f} s; got {[m for _, m in self.snapshot()]}")

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.sock.close()
