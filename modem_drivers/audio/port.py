"""A modem's audio port: 20 ms PCM frames both ways on a tty, in the AT port's event loop.

Opened with pyserial and driven by the same fd-in-the-loop transport as the AT port
(``at.transport``: ``add_reader``/``add_writer``, no thread per call). Bytes read are cut
into frames (``frames.Framer``) and queued as they come; writes wait for their slot on the
real clock (``pacing.Pacer``) and a late one is counted. At each answer ``begin_call``
starts the call's health watch (``health.AudioHealth``), and ``wait_healthy`` says within
500 ms whether the voice path is live or raises ``AudioFault``.
"""
from __future__ import annotations

import asyncio
import collections
import dataclasses
import logging
from typing import Final

from ..at.transport import Transport, open_serial, start_transport
from .frames import FRAME_BYTES, Framer
from .health import AudioFault, AudioFaultReason, AudioHealth, Verdict
from .pacing import Pacer

__all__ = ["RX_QUEUE_FRAMES", "AudioPort", "AudioStats"]

logger = logging.getLogger(__name__)

#: Frames kept for the listener: 50 = 1 s of audio. A listener (AMD, DTMF, the voicebot)
#: reads each frame within a loop iteration; one a second behind is stuck, and older audio
#: is useless to it (a reply must come within 1 s, issue 14). The oldest frame is dropped
#: and counted, so a port costs at most 16 kB however long its listener stalls, with
#: hundreds of ports in one process.
RX_QUEUE_FRAMES: Final = 50
#: USB serial voice ports ignore the line speed; a value is passed because pyserial
#: wants one (chan_dongle opens its audio tty at 115200 too).
AUDIO_BAUDRATE: Final = 115200


@dataclasses.dataclass(slots=True)
class AudioStats:
    frames_in: int = 0
    frames_out: int = 0
    late_writes: int = 0  # writes later than their 20 ms slot by more than 20 ms
    dropped_frames: int = 0  # read frames dropped because the listener fell 1 s behind


class AudioPort:
    """One audio tty. Create with ``await AudioPort.open(url)``."""

    def __init__(self, url: str, *, name: str | None = None) -> None:
        self.url = url
        self.name = name or url
        self.stats = AudioStats()
        self.pacer = Pacer()
        self._framer = Framer()
        self._rx: collections.deque[bytes] = collections.deque()
        self._readable: asyncio.Future[None] | None = None
        self._transport: Transport | None = None
        self._loop = asyncio.get_running_loop()
        self._write_lock = asyncio.Lock()
        self._health: AudioHealth | None = None
        self._healthy: asyncio.Event | None = None
        self._lost: BaseException | None = None
        self.closed = True

    @classmethod
    async def open(cls, url: str, *, name: str | None = None, baudrate: int = AUDIO_BAUDRATE) -> AudioPort:
        """Open ``url`` (a tty path, ``socket://``…); ``PortUnavailable`` when it cannot be."""
        port = cls(url, name=name)
        if "://" in url:  # network URLs connect synchronously inside pyserial: off the loop
            ser = await port._loop.run_in_executor(None, open_serial, url, baudrate)
        else:
            ser = open_serial(url, baudrate)
        port._transport = start_transport(port._loop, ser, port._on_data, port._on_lost)
        port.closed = False
        logger.debug("%s: audio port open on %s", port.name, url)
        return port

    # -- reading ------------------------------------------------------------------------
    def _on_data(self, data: bytes) -> None:
        frames = self._framer.feed(data)
        if not frames:
            return
        now = self._loop.time()
        health = self._health
        for frame in frames:
            self.stats.frames_in += 1
            if len(self._rx) >= RX_QUEUE_FRAMES:
                self._rx.popleft()
                self.stats.dropped_frames += 1
            self._rx.append(frame)
            if health is not None:
                health.feed(frame, now)
        if health is not None and self._healthy is not None and health.verdict(now) is Verdict.GOOD:
            self._healthy.set()
        self._wake_reader()

    def _wake_reader(self) -> None:
        waiter, self._readable = self._readable, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def read_frame(self, timeout: float | None = None) -> bytes:
        """The next 320-byte frame read (oldest first). ``TimeoutError`` after ``timeout``
        seconds without one; ``AudioFault`` (port lost) once the port is gone and drained."""
        while not self._rx:
            if self.closed:
                raise self._fault()
            if self._readable is None:
                self._readable = self._loop.create_future()
            async with asyncio.timeout(timeout):
                await asyncio.shield(self._readable)
        return self._rx.popleft()

    def pending_frames(self) -> int:
        return len(self._rx)

    # -- writing ------------------------------------------------------------------------
    async def write_frame(self, frame: bytes) -> None:
        """Write one 320-byte frame in its 20 ms slot (waiting for it on the loop's clock);
        a write later than its slot by more than a frame is counted in ``late_writes``."""
        if len(frame) != FRAME_BYTES:
            raise ValueError(f"an audio frame is {FRAME_BYTES} bytes (20 ms of 8 kHz S16LE mono), not {len(frame)}")
        async with self._write_lock:
            delay = self.pacer.delay(self._loop.time())
            if delay > 0:
                await asyncio.sleep(delay)
            if self.closed or self._transport is None:
                raise self._fault()
            if self.pacer.wrote(self._loop.time()):
                self.stats.late_writes = self.pacer.late_writes
                logger.debug("%s: audio frame written late (%d so far)", self.name, self.pacer.late_writes)
            self._transport.write(frame)
            self.stats.frames_out += 1

    # -- a call's audio -------------------------------------------------------------------
    def begin_call(self, answered_at: float | None = None) -> AudioHealth:
        """A call was answered at ``answered_at`` (``loop.time()``; now when None): drop
        what was read before, start a new write schedule and the call's health watch."""
        self._rx.clear()
        self._framer.reset()
        self.pacer.reset()
        health = AudioHealth(self._loop.time() if answered_at is None else answered_at)
        self._health = health
        self._healthy = asyncio.Event()
        return health

    async def wait_healthy(self, health: AudioHealth | None = None) -> None:
        """Return once a live frame came after the answer (``begin_call``, whose watch
        ``health`` is; the current one when None), or when that call ended first
        (``end_call``); raise ``AudioFault`` when the 500 ms window passes with no frame or
        only zero frames, or when the port is lost meanwhile."""
        if health is None:
            health = self._health
            if health is None:
                raise RuntimeError("wait_healthy without begin_call")
        if self._health is not health or self._healthy is None:
            return  # that call ended already: nothing to judge
        event = self._healthy
        remaining = health.deadline - self._loop.time()
        if health.verdict(self._loop.time()) is Verdict.PENDING and remaining > 0:
            try:
                async with asyncio.timeout(remaining):
                    await event.wait()
            except TimeoutError:
                pass
        if self._health is not health:
            return  # the call ended (``end_call``) before its audio was judged: nothing to judge
        if self.closed and health.verdict(self._loop.time()) is not Verdict.GOOD:
            raise self._fault()
        # judged at the deadline at the latest: a timer may fire a hair before it
        health.check(max(self._loop.time(), health.deadline))

    def end_call(self) -> None:
        """The call ended: stop the health watch (frames still queue for a late reader)."""
        self._health = None
        if self._healthy is not None:
            self._healthy.set()  # wake a waiter: it returns without a verdict
        self._healthy = None

    # -- closing ------------------------------------------------------------------------
    def _fault(self) -> AudioFault:
        why = f"{self.url}: {self._lost}" if self._lost is not None else f"{self.url} is closed"
        return AudioFault(AudioFaultReason.PORT_LOST, why)

    def _on_lost(self, exc: BaseException | None) -> None:
        logger.warning("%s: audio port lost (%s)", self.name, exc or "end of file")
        self._lost = exc if exc is not None else EOFError("end of file")
        self._shut()

    def _shut(self) -> None:
        self.closed = True
        transport, self._transport = self._transport, None
        if transport is not None:
            transport.close()
        self._wake_reader()
        if self._healthy is not None:
            self._healthy.set()

    async def close(self) -> None:
        """Release the tty; a waiting reader gets ``AudioFault`` (port lost)."""
        if not self.closed:
            self._shut()
            logger.debug("%s: audio port closed", self.name)

