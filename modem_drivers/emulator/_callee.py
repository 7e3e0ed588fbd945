"""The far end of an answered call on a modem's audio port: it speaks and listens.

``AudioLine`` is a modem's audio port: a second pseudo-terminal (``_port.PtyPort``, in the
same event loop as the AT ports) carrying raw 8 kHz s16le mono PCM in 20 ms frames of 320
bytes. Outside an answered call it reads and discards, and writes nothing.

During a call a ``FarEnd`` steps on the loop's one ``FrameClock`` of 20 ms ticks (its
first tick the next after the answer), paced by the event loop's clock against each
tick's due time: a tick sent more than 20 ms late is counted (``late_ticks``); the ones
missed in a stall of up to :data:`MAX_CATCH_UP` are sent at once, as a modem's buffered
stream hands them over, and after a longer stall the clock starts again from now. Each
tick it

* writes one frame: the next 20 ms of what the callee plays (``_voices.CalleeSound``),
  else the line's noise (the callee's ``line_floor``: the noise his voice carries, so a
  noisy line stays noisy between words; else the quiet floor) — never digital zero, which
  the appliance counts as a dead audio path;
* records one frame of what the host sent (a tick with less than a frame from the host
  records silence; more than :data:`MAX_BACKLOG_FRAMES` queued is dropped, as a modem's
  small buffer drops it) into ``CallRecord.audio``, and tracks the stretches of sound it
  heard (prompts, messages) as ``HeardSpan``s.

A keypad person presses each key group after the next prompt ends (sound, then
:data:`PROMPT_END_MS` of quiet), after his reaction time: each key is an in-band Q.23
tone of :data:`KEY_MS` with :data:`KEY_GAP_MS` after it, and the dialect's DTMF URC when
its tone ends. A person replies ("Hello? Anyone there?") once when he hears nothing after
his greeting.
"""
from __future__ import annotations

import asyncio
import logging
import random
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Final, Protocol

import numpy as np

from ._calls import (
    MAX_RECORDED_SECONDS,
    Call,
    CallAudio,
    CallState,
    HeardSpan,
    KeyPress,
)
from ._port import PtyPort
from ._timing import TimingProfile
from ._voices import FLOOR_DBFS, CalleeKind, CalleeSound
from .sounds import FRAME_BYTES, FRAME_MS, FRAME_SAMPLES, dtmf_tone, noise, to_pcm

log = logging.getLogger(__name__)

TICK: Final = FRAME_MS / 1000
BYTES_PER_MS: Final = FRAME_BYTES // FRAME_MS  # 16: 8 samples of 2 bytes
#: A frame louder than this (RMS, dBFS) is sound the callee hears; the appliance's prompts
#: are normalised near −20 dBFS, its silence is zero or a noise floor.
HEARD_DBFS: Final = -45.0
#: A heard stretch ends after this much quiet; it counts from 100 ms of sound. 700 ms is
#: longer than espeak's sentence pauses (150–480 ms, docs/audio.md) so a prompt of several
#: sentences stays one span, and about how long a person waits before he answers it.
PROMPT_END_MS: Final = 700
MIN_SPAN_MS: Final = 100
#: ITU-T Q.24 asks for ≥ 40 ms of tone and of pause; telephones send 80–100 ms.
KEY_MS: Final = 80
KEY_GAP_MS: Final = 80
KEY_DBFS: Final = -10.0  # each of the two tones (Q.23 levels, −10 dBm0 nominal)
#: A tick due less than this long ago is still sent (a modem's stream keeps real time and
#: its USB buffer hands over what piled up); behind by more, the clock starts again from
#: now. 200 ms = the 10 frames of the buffer below.
MAX_CATCH_UP: Final = 0.2
#: A modem's audio buffer: frames the host may write ahead before the oldest are dropped.
MAX_BACKLOG_FRAMES: Final = 10
_FLOOR_SECONDS: Final = 2  # length of the noise loop the floor is cut from
SILENT_FRAME: Final = bytes(FRAME_BYTES)
MAX_RECORDED_BYTES: Final = MAX_RECORDED_SECONDS * 1000 // FRAME_MS * FRAME_BYTES


class LineHost(Protocol):
    """What the far end uses of its modem: the timing, a random source, the task tracker
    and the DTMF URC (declared here so it never imports the modem)."""

    profile: TimingProfile
    rng: random.Random

    def track(self, task: asyncio.Task[None]) -> None: ...

    def dtmf_received(self, digit: str) -> None: ...


def _make_floor() -> bytes:
    x = noise("white", _FLOOR_SECONDS * 1000 * FRAME_SAMPLES // FRAME_MS, np.random.default_rng(0))
    return to_pcm(x * 32768 * 10 ** (FLOOR_DBFS / 20))


#: A frame's sum of squared samples above which it is heard (:data:`HEARD_DBFS` RMS).
HEARD_ENERGY: Final = FRAME_SAMPLES * (32768 * 10 ** (HEARD_DBFS / 20)) ** 2


def _loud(frame: bytes) -> bool:
    x = np.frombuffer(frame, dtype="<i2").astype(np.float32)
    return float(x @ x) > HEARD_ENERGY


class FrameClock:
    """The one 20 ms clock every far end in the event loop steps on: one timer for all
    calls instead of one per call (128 calls' timers cost more than their frames)."""

    def __init__(self) -> None:
        self._ends: dict[FarEnd, None] = {}  # insertion-ordered set
        self._task: asyncio.Task[None] | None = None

    def join(self, far: FarEnd) -> None:
        self._ends[far] = None
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name="far-end-clock")

    def leave(self, far: FarEnd) -> None:
        self._ends.pop(far, None)

    async def close(self) -> None:
        self._ends.clear()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        t0, n = loop.time(), 0
        while self._ends:
            for far in list(self._ends):
                far.step()
            n += 1
            behind = loop.time() - (t0 + n * TICK)
            if behind > TICK:
                for far in self._ends:
                    far.audio.late_ticks += 1
            if behind > MAX_CATCH_UP:  # a long stall: start the clock again from now
                t0, n, behind = loop.time(), 0, 0.0
            await asyncio.sleep(max(-behind, 0.0))


class AudioLine:
    """One modem's audio port and the far end playing into it while a call is up."""

    FLOOR: Final = _make_floor()

    def __init__(self, link: Path, host: LineHost, clock: FrameClock) -> None:
        self._pty = PtyPort(link, self._on_data)
        self._host = host
        self._clock = clock
        self.far: FarEnd | None = None

    @property
    def port(self) -> str:
        return str(self._pty.link)

    @property
    def device(self) -> str:
        return self._pty.device

    def open(self, loop: asyncio.AbstractEventLoop) -> None:
        self._pty.open(loop)

    def close(self, *, remove_link: bool) -> None:
        self.hang_up()
        self._pty.close(remove_link=remove_link)

    @property
    def is_open(self) -> bool:
        return self._pty.is_open

    def _on_data(self, data: bytes) -> None:
        if self.far is not None:
            self.far.receive(data)
        # outside a call the port reads and discards

    def connect(self, call: Call, sound: asyncio.Future[CalleeSound] | CalleeSound, kind: CalleeKind,
                line_floor: bytes | None = None) -> FarEnd:
        """The call was answered: start the far end's clock. ``line_floor``: the line's
        noise until the sound is known (a sound still being made)."""
        self.hang_up()
        far = FarEnd(call, self._pty.write, self._host, kind, self._clock, line_floor)
        self.far = far
        far.start(sound)
        return far

    def hang_up(self) -> None:
        far, self.far = self.far, None
        if far is not None:
            far.stop()


class FarEnd:
    """The callee of one answered call, on the far end's 20 ms clock."""

    def __init__(self, call: Call, write: Callable[[bytes], None], host: LineHost, kind: CalleeKind,
                 clock: FrameClock, line_floor: bytes | None = None) -> None:
        self.call = call
        self._clock = clock
        self._write = write
        self._host = host
        self.audio = CallAudio(kind=kind.value, source="")
        call.record.audio = self.audio
        self.tick = 0
        self._out: deque[tuple[bytes, Callable[[], None] | None]] = deque()  # (pcm, when it has played)
        self._out_pos = 0
        self._in = bytearray()
        self._floor_pos = 0
        self._line_floor = line_floor or AudioLine.FLOOR  # the callee's line noise (his sound's, once known)
        self._span_start: int | None = None
        self._quiet_ms = 0
        self._prompt_ended = asyncio.Event()
        self._prompts = 0  # heard stretches closed so far
        self.mark_ms = 0  # where the last finished piece of sound ended (set before its callback)
        self._tasks: list[asyncio.Task[None]] = []
        self._opened: asyncio.Event | None = None  # set once the greeting queued at the answer has played

    # -- life cycle ---------------------------------------------------------------------
    def start(self, sound: asyncio.Future[CalleeSound] | CalleeSound) -> None:
        # a sound ready at the answer is queued before the first tick: his first frame is his
        if not isinstance(sound, CalleeSound) and sound.done() and not sound.cancelled() and sound.exception() is None:
            sound = sound.result()
        self._opened = self._open(sound) if isinstance(sound, CalleeSound) else None
        task = asyncio.get_running_loop().create_task(self._script(sound))
        self._tasks.append(task)
        self._host.track(task)
        self._clock.join(self)

    def stop(self) -> None:
        self._clock.leave(self)
        for task in self._tasks:
            if task is not asyncio.current_task():
                task.cancel()
        self._close_span()

    @property
    def now_ms(self) -> int:
        return self.tick * FRAME_MS

    # -- the clock ----------------------------------------------------------------------
    def step(self) -> None:
        """One tick of the clock: a frame out, a frame recorded."""
        if self.call.state is not CallState.ACTIVE:
            self._clock.leave(self)
            return
        self._send_frame()
        self._record_frame()
        self.tick += 1

    def _send_frame(self) -> None:
        frame = bytearray()
        while len(frame) < FRAME_BYTES and self._out:
            pcm, done = self._out[0]
            take = pcm[self._out_pos : self._out_pos + FRAME_BYTES - len(frame)]
            frame += take
            self._out_pos += len(take)
            if self._out_pos >= len(pcm):
                self._out.popleft()
                self._out_pos = 0
                if done is not None:
                    # where this piece ended on the far end's timeline (ms after the answer)
                    self.mark_ms = (self.audio.frames_sent * FRAME_BYTES + len(frame)) // BYTES_PER_MS
                    done()
        if len(frame) < FRAME_BYTES:
            frame += self._floor(FRAME_BYTES - len(frame))
        self._write(bytes(frame))
        self.audio.frames_sent += 1

    def _floor(self, n: int) -> bytes:
        """The next ``n`` bytes of the line's noise (a loop through the callee's line floor,
        else ``AudioLine.FLOOR``)."""
        floor = self._line_floor
        if self._floor_pos + n > len(floor):
            self._floor_pos = 0
        chunk = floor[self._floor_pos : self._floor_pos + n]
        self._floor_pos += n
        return chunk

    def receive(self, data: bytes) -> None:
        self._in += data
        excess = len(self._in) - MAX_BACKLOG_FRAMES * FRAME_BYTES
        if excess > 0:
            del self._in[:excess]  # the modem's buffer overflows: the oldest audio is lost

    def _record_frame(self) -> None:
        if len(self._in) >= FRAME_BYTES:
            frame = bytes(self._in[:FRAME_BYTES])
            del self._in[:FRAME_BYTES]
            self.audio.frames_heard += 1
            loud = _loud(frame)
        else:
            frame, loud = SILENT_FRAME, False
        if len(self.audio.pcm) < MAX_RECORDED_BYTES:
            self.audio.pcm += frame
        self._track_sound(loud)

    def _track_sound(self, loud: bool) -> None:
        if loud:
            if self._span_start is None:
                self._span_start = self.now_ms
            self._quiet_ms = 0
            return
        if self._span_start is None:
            return
        self._quiet_ms += FRAME_MS
        if self._quiet_ms >= PROMPT_END_MS:
            self._close_span()

    def _close_span(self) -> None:
        start, self._span_start = self._span_start, None
        if start is None:
            return
        end = self.now_ms + FRAME_MS - self._quiet_ms
        self._quiet_ms = 0
        if end - start >= MIN_SPAN_MS:
            self.audio.heard.append(HeardSpan(start, end))
            self._prompts += 1
            self._prompt_ended.set()

    # -- what the callee does -----------------------------------------------------------
    def play(self, pcm: bytes, done: Callable[[], None] | None = None) -> None:
        if pcm or done is not None:
            self._out.append((pcm, done))

    async def played(self, pcm: bytes) -> None:
        """Queue ``pcm`` and wait until its last frame went out."""
        finished = asyncio.Event()
        self.play(pcm, finished.set)
        await finished.wait()

    def _open(self, sound: CalleeSound) -> asyncio.Event:
        """Queue what the callee plays first — the quiet while he draws breath, then his
        greeting (a fax: its first burst) — in one go, so no tick of the line's floor falls
        between them however busy the loop (the clock catching up steps several ticks
        before the script runs again: 128 calls answered at once put a frame of the quiet
        floor before recordings, a level step the AMD took for a long greeting). The event
        is set when the greeting has played."""
        self.audio.source, self.audio.said = sound.source, sound.said
        if sound.line_floor:
            self._line_floor, self._floor_pos = sound.line_floor, 0
        if sound.onset_ms > self.now_ms:  # a recording (onset 0) starts at once
            self.play(self._quiet(sound.onset_ms - self.now_ms))  # he draws breath
        done = asyncio.Event()

        def ended() -> None:
            if sound.kind is CalleeKind.MACHINE:
                self._beeped()
            elif sound.kind in (CalleeKind.PERSON, CalleeKind.KEYPAD):
                self.audio.greeting_end_ms = self.mark_ms
            done.set()

        if sound.repeat_ms:
            self.play(sound.greeting + self._quiet(sound.repeat_ms - len(sound.greeting) // BYTES_PER_MS), ended)
        else:
            self.play(sound.greeting, ended)
        return done

    async def _script(self, pending: asyncio.Future[CalleeSound] | CalleeSound) -> None:
        sound = pending if isinstance(pending, CalleeSound) else await pending
        opened = self._opened if self._opened is not None else self._open(sound)
        await opened.wait()
        if sound.kind is CalleeKind.MACHINE:
            return  # it records what comes after its beep
        if sound.repeat_ms:
            while True:
                await self.played(sound.greeting + self._quiet(sound.repeat_ms - len(sound.greeting) // BYTES_PER_MS))
        heard_before = len(self.audio.heard)
        if sound.reply and sound.kind is CalleeKind.PERSON:
            await asyncio.sleep(sound.reply_after_ms / 1000)
            if len(self.audio.heard) == heard_before and self._span_start is None:
                await self.played(sound.reply)
        if sound.kind is CalleeKind.KEYPAD:
            await self._press(sound.keys)

    def _beeped(self) -> None:
        self.audio.beep_ms = self.mark_ms  # what comes now is the message it records

    def _quiet(self, ms: int) -> bytes:
        return self._floor_bytes(max(0, ms) * BYTES_PER_MS)

    def _floor_bytes(self, n: int) -> bytes:
        """``n`` bytes of the noise floor to queue as a pause."""
        n -= n % 2
        floor = self._line_floor
        reps = -(-n // len(floor)) if n else 0
        return (floor * reps)[:n]

    def press_now(self, digits: str) -> None:
        """Key ``digits`` from the answer on, one every ``dtmf_gap``, hearing nothing (the
        plan's first keypad person)."""
        task = asyncio.get_running_loop().create_task(self._keys(digits))
        self._tasks.append(task)
        self._host.track(task)

    async def _keys(self, digits: str) -> None:
        rng = np.random.default_rng(len(self.call.record.callee))
        profile = self._host.profile
        for digit in digits:
            await asyncio.sleep(profile.draw(self._host.rng, profile.dtmf_gap))
            tone = to_pcm(dtmf_tone(digit, KEY_MS, KEY_DBFS, rng))
            self.play(tone, lambda d=digit: self._key_sent(d))
            await self.played(self._quiet(KEY_GAP_MS))

    async def _press(self, groups: tuple[str, ...]) -> None:
        seen = self._prompts
        for group in groups:
            while self._prompts <= seen:  # the next prompt has not ended yet
                self._prompt_ended.clear()
                await self._prompt_ended.wait()
            await self._keys(group)
            seen = self._prompts

    def _key_sent(self, digit: str) -> None:
        self.audio.keys.append(KeyPress(digit, self.mark_ms))
        self.call.record.dtmf += digit
        self._host.dtmf_received(digit)
