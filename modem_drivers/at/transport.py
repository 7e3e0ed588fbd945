"""Byte transport of a port: a pyserial-opened fd driven by the asyncio event loop.

The port is opened with ``serial.serial_for_url`` (device paths, ptys, ``socket://``,
``rfc2217://``), then pyserial steps aside: reads and writes are non-blocking
``os.read``/``os.write`` (or ``sock.recv``/``sock.send`` for ``socket://``) called from
``loop.add_reader``/``loop.add_writer`` callbacks. No thread per port, no polling and
nothing built on ``select()`` (pyserial's own ``read()`` uses it, so it is never called).

The one exception is ``rfc2217://``: pyserial negotiates RFC 2217 in a thread of its own
and delivers data through a queue, so that transport runs one reader thread per port that
blocks in ``Serial.read`` and hands bytes to the loop with ``call_soon_threadsafe``.
"""

from __future__ import annotations

import asyncio
import errno
import functools
import logging
import os
import threading
from collections.abc import Callable
from typing import Protocol

import serial

from .errors import PortUnavailable

__all__ = ["Transport", "open_serial", "start_transport"]

logger = logging.getLogger(__name__)

# Bytes per read call: larger than any burst a modem sends between two loop iterations at
# 115200 baud (11.5 kB/s), so one read usually drains the kernel buffer.
READ_CHUNK = 16384

_NO_SUCH_PORT = frozenset({errno.ENOENT, errno.ENODEV, errno.ENXIO, errno.ENOTDIR})
_DENIED = frozenset({errno.EACCES, errno.EPERM})
_BUSY = frozenset({errno.EBUSY, errno.EAGAIN, errno.EWOULDBLOCK})
_REFUSED = frozenset({errno.ECONNREFUSED, errno.EHOSTUNREACH, errno.ENETUNREACH, errno.ETIMEDOUT})


def _errno_of(exc: BaseException) -> int | None:
    """The errno behind a pyserial exception (first arg, or the OSError it wraps)."""
    seen: BaseException | None = exc
    while seen is not None:
        code = getattr(seen, "errno", None)
        if isinstance(code, int):
            return code
        if seen.args and isinstance(seen.args[0], int):
            return seen.args[0]
        seen = seen.__cause__ or seen.__context__
    return None


def _unavailable(url: str, exc: BaseException) -> PortUnavailable:
    code = _errno_of(exc)
    if code in _NO_SUCH_PORT:
        return PortUnavailable(f"no such port: {url}")
    if code in _DENIED:
        return PortUnavailable(f"permission denied: {url} (is the user in the dialout group?)")
    if code in _BUSY:
        return PortUnavailable(f"port busy: {url} (another process holds it open)")
    if code in _REFUSED:
        return PortUnavailable(f"connection refused: {url}")
    return PortUnavailable(f"cannot open {url}: {exc}")


def open_serial(url: str, baudrate: int) -> serial.SerialBase:
    """Open ``url`` with pyserial; raise ``PortUnavailable`` with the reason in words."""
    local = "://" not in url
    try:
        if local:
            # exclusive: flock the tty so two processes never drive one modem.
            return serial.serial_for_url(url, baudrate=baudrate, timeout=0, exclusive=True)
        return serial.serial_for_url(url, baudrate=baudrate, timeout=0)
    except ValueError as exc:  # bad URL scheme or parameter
        raise PortUnavailable(f"unsupported port URL {url!r}: {exc}") from exc
    except (serial.SerialException, OSError) as exc:
        raise _unavailable(url, exc) from exc


class Transport(Protocol):
    """What the port needs from a transport."""

    def write(self, data: bytes) -> None: ...
    async def drain(self) -> None: ...
    def close(self) -> None: ...


DataCallback = Callable[[bytes], None]
LostCallback = Callable[[BaseException | None], None]


class _LoopTransport:
    """Non-blocking fd (tty) or socket registered in the event loop."""

    __slots__ = ("_loop", "_ser", "_fd", "_recv", "_send", "_on_data", "_on_lost",
                 "_out", "_drained", "_writing", "_closed")

    def __init__(self, loop: asyncio.AbstractEventLoop, ser: serial.SerialBase,
                 on_data: DataCallback, on_lost: LostCallback) -> None:
        self._loop = loop
        self._ser = ser
        sock = getattr(ser, "_socket", None)
        if sock is not None:  # socket:// (pyserial already made it non-blocking)
            self._fd = sock.fileno()
            self._recv: Callable[[int], bytes] = sock.recv
            self._send: Callable[[bytes | bytearray], int] = sock.send
        else:
            fd = ser.fileno()
            os.set_blocking(fd, False)
            self._fd = fd
            self._recv = functools.partial(os.read, fd)
            self._send = functools.partial(os.write, fd)
        self._on_data = on_data
        self._on_lost = on_lost
        self._out = bytearray()
        self._drained: asyncio.Future[None] | None = None
        self._writing = False
        self._closed = False
        loop.add_reader(self._fd, self._on_readable)

    def _on_readable(self) -> None:
        try:
            data = self._recv(READ_CHUNK)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:  # EIO when a pty master or USB device goes away
            self._lost(exc)
            return
        if not data:
            self._lost(None)
            return
        self._on_data(data)

    def write(self, data: bytes) -> None:
        if self._closed:
            return
        if self._out:
            self._out += data
            return
        try:
            sent = self._send(data)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError as exc:
            self._loop.call_soon(self._lost, exc)
            return
        if sent < len(data):
            self._out += data[sent:]
            self._loop.add_writer(self._fd, self._on_writable)
            self._writing = True

    def _on_writable(self) -> None:
        try:
            sent = self._send(self._out)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._lost(exc)
            return
        del self._out[:sent]
        if not self._out:
            self._loop.remove_writer(self._fd)
            self._writing = False
            self._wake_drain()

    def _wake_drain(self) -> None:
        waiter, self._drained = self._drained, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def drain(self) -> None:
        """Wait until every written byte is handed to the kernel."""
        if not self._out or self._closed:
            return
        if self._drained is None:
            self._drained = self._loop.create_future()
        await asyncio.shield(self._drained)

    def _lost(self, exc: BaseException | None) -> None:
        if self._closed:
            return
        self.close()
        self._on_lost(exc)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._loop.remove_reader(self._fd)
        if self._writing:
            self._loop.remove_writer(self._fd)
            self._writing = False
        self._out.clear()
        self._wake_drain()
        try:
            self._ser.close()
        except Exception:  # noqa: BLE001 - the device may already be gone
            logger.debug("closing %s failed", self._ser.port, exc_info=True)


class _ThreadTransport:
    """rfc2217:// only: pyserial's RFC 2217 client needs its own thread (see module doc)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, ser: serial.SerialBase,
                 on_data: DataCallback, on_lost: LostCallback) -> None:
        self._loop = loop
        self._ser = ser
        self._on_data = on_data
        self._on_lost = on_lost
        self._closed = False
        ser.timeout = None
        self._thread = threading.Thread(target=self._reader, name=f"rfc2217 {ser.port}",
                                        daemon=True)
        self._thread.start()

    def _reader(self) -> None:
        try:
            while not self._closed:
                data = self._ser.read(1)
                waiting = self._ser.in_waiting
                if waiting:
                    data += self._ser.read(waiting)
                if not data:
                    raise EOFError("connection closed")
                self._loop.call_soon_threadsafe(self._on_data, data)
        except Exception as exc:  # noqa: BLE001 - any failure means the port is gone
            if not self._closed:
                self._loop.call_soon_threadsafe(self._lost, exc)

    def _lost(self, exc: BaseException | None) -> None:
        if not self._closed:
            self.close()
            self._on_lost(exc)

    def write(self, data: bytes) -> None:
        try:
            self._ser.write(data)
        except Exception as exc:  # noqa: BLE001
            self._loop.call_soon(self._lost, exc)

    async def drain(self) -> None:
        return None

    def close(self) -> None:
        # pyserial's RFC 2217 close() joins its thread (up to 7 s) and sleeps 0.3 s: never
        # on the event loop. The reader thread then sees EOF and ends.
        self._closed = True
        threading.Thread(target=self._close_serial, name=f"close {self._ser.port}",
                         daemon=True).start()

    def _close_serial(self) -> None:
        try:
            self._ser.close()
        except Exception:  # noqa: BLE001
            logger.debug("closing %s failed", self._ser.port, exc_info=True)


def start_transport(loop: asyncio.AbstractEventLoop, ser: serial.SerialBase,
                    on_data: DataCallback, on_lost: LostCallback) -> Transport:
    """Wrap an open pyserial object in the transport that fits its kind."""
    if "rfc2217" in type(ser).__module__:
        return _ThreadTransport(loop, ser, on_data, on_lost)
    return _LoopTransport(loop, ser, on_data, on_lost)
