"""The voicebot on a live call: the sans-I/O engine driven by the call's audio port, the
modem's DTMF reports and a clock, in the event loop that runs every other call (no thread).

One loop step per 20 ms frame: read what came in (the in-band DTMF detector hears it),
take the keys reported meanwhile (the modem's URC and the detector, merged by
``keys.KeyMerger`` so a key both report counts once), send the engine a ``Timeout`` when
its ``Collect`` ran out, then write one frame — the next 20 ms of the prompt playing, or
silence — and, when that was a prompt's last frame, send ``PromptDone``. The port's
``write_frame`` waits for the frame's slot, so the loop is paced by the port and a step
costs one wake-up per call per frame.

Barge-in: a key pressed while a prompt that waits for keys plays (a menu or a date) cuts
that prompt at once — a key the state takes starts the next prompt, the first keys of a
date stop the prompt and the rest are collected. A key during a prompt that asks nothing
(the greeting, the debt, the goodbye) is recorded and the prompt plays to its end, so the
disclosure and the goodbye are always heard whole.

Prompt audio comes from ``tts.Synthesiser`` (or any ``(text, lang) -> PCM`` callable): a
cached prompt is read at once; one not yet synthesised is rendered in a worker thread
while the line carries silence, so espeak-ng never stalls the other calls' frames.

The runner does not hang up: on ``End`` (after the last prompt's last frame) or the far
end's hang-up it returns the engine's result and the caller ends the call.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from appliance.audio import DtmfDetector
from appliance.audio.events import DtmfDigit
from modem_drivers.audio import FRAME_BYTES, SILENCE, AudioFault
from modem_drivers.types import DtmfReceived

from .engine import (
    Action,
    Collect,
    Digit,
    End,
    Engine,
    Hangup,
    Phase,
    Play,
    PromptDone,
    Result,
    Timeout,
)
from .keys import KeyMerger, KeySource
from .load import Dialogue
from .tts import Synthesiser
from .variables import JobVariables

__all__ = ["CallLike", "FramePort", "LiveModem", "LiveStats", "PromptAudio", "run_dialogue"]

logger = logging.getLogger(__name__)

#: What a prompt is rendered with when none is given: text and language to 8 kHz s16le PCM.
PromptAudio = Synthesiser | Callable[[str, str], bytes]
#: Frames a prompt's render may keep the line silent before the loop logs it (1 s: issue
#: 14's "something is said within 1 s of the end of his greeting").
_SLOW_RENDER_FRAMES: Final = 50


class FramePort(Protocol):
    """The audio port as the runner uses it (``modem_drivers.audio.AudioPort``)."""

    def pending_frames(self) -> int: ...

    async def read_frame(self, timeout: float | None = None) -> bytes: ...

    async def write_frame(self, frame: bytes) -> None: ...


class DigitDetector(Protocol):
    """In-band DTMF on each frame read (``DtmfDetector``, or one sharing the frame's
    analysis with the call's AMD: ``appliance.jobs.live.SharedDtmf``)."""

    def feed(self, frame: bytes) -> list[DtmfDigit]: ...


class CallLike(Protocol):
    @property
    def released(self) -> bool: ...


class LiveModem(Protocol):
    """The modem as the runner uses it: its events (``DtmfReceived``) and its call."""

    @property
    def call(self) -> CallLike | None: ...

    def subscribe(self, callback: Callable[[Any], None]) -> Callable[[], None]: ...


@dataclass(slots=True)
class LiveStats:
    """What the runner did on one call (for logs and the benchmark)."""

    frames_written: int = 0
    frames_read: int = 0
    prompts_played: int = 0  # played to their last frame
    barge_ins: int = 0  # prompts cut by a key
    keys_urc: int = 0  # reports per reporter, copies included
    keys_in_band: int = 0
    keys_merged: int = 0  # reports dropped as the other reporter's copy


@dataclass(slots=True)
class _Prompt:
    prompt_id: str
    audio: asyncio.Future[bytes]
    offset: int = 0
    waited: int = 0  # frames of silence while it renders


@dataclass(slots=True)
class _Runner:
    port: FramePort
    engine: Engine
    prompts: PromptAudio
    clock: Callable[[], float]
    answered_at: float
    detector: DigitDetector | None
    stats: LiveStats
    merger: KeyMerger = field(default_factory=KeyMerger)
    keys: list[tuple[str, KeySource, float]] = field(default_factory=list)  # reported, not yet taken
    playing: _Prompt | None = None
    deadline: float | None = None  # of the current Collect
    result: Result | None = None

    # -- actions ---------------------------------------------------------------------------
    def apply(self, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, Play):
                self._play(action)
            elif isinstance(action, Collect):  # nothing plays while keys are collected
                self.stop()
                self.deadline = self.clock() + action.timeout_s
            elif isinstance(action, End):
                self.result = action.result
                self.stop()

    def stop(self) -> None:
        if self.playing is not None and not self.playing.audio.done():
            self.playing.audio.cancel()
        self.playing = None

    def _play(self, play: Play) -> None:
        self.stop()
        self.deadline = None
        self.playing = _Prompt(play.prompt_id, self._render(play.text))

    def _render(self, text: str) -> asyncio.Future[bytes]:
        lang = self.engine.dialogue.lang
        loop = asyncio.get_running_loop()
        prompts = self.prompts
        if isinstance(prompts, Synthesiser) and not prompts.path(text, lang).is_file():
            return asyncio.ensure_future(asyncio.to_thread(prompts.pcm, text, lang))
        done: asyncio.Future[bytes] = loop.create_future()
        done.set_result(prompts.pcm(text, lang) if isinstance(prompts, Synthesiser) else prompts(text, lang))
        return done

    # -- events ----------------------------------------------------------------------------
    def on_event(self, event: object) -> None:
        """A modem event (called from the AT port's reader): keep its DTMF digit."""
        if isinstance(event, DtmfReceived):
            self.keys.append((event.digit, KeySource.URC, self.clock()))

    def take_keys(self) -> None:
        keys, self.keys = self.keys, []
        for digit, source, at in keys:
            if source is KeySource.URC:
                self.stats.keys_urc += 1
            else:
                self.stats.keys_in_band += 1
            if not self.merger.offer(digit, source, at):
                self.stats.keys_merged += 1
                continue
            if self.result is None:
                self._digit(digit, at)

    def _digit(self, key: str, at: float) -> None:
        engine = self.engine
        state, was_playing = engine.state, engine.phase is Phase.PLAYING
        try:
            event = Digit(key, max(0.0, at - self.answered_at))
        except ValueError:  # A–D: no keypad has them, the engine takes none
            logger.debug("voicebot: key %r ignored", key)
            return
        actions = engine.handle(event)
        barge_in = was_playing and engine.dialogue.states[state].waits_for_keys
        if barge_in and not actions and engine.phase is Phase.PLAYING and engine.state == state:
            actions = engine.handle(PromptDone(state))  # the first keys of a date: collect the rest
        if barge_in and actions:
            self.stats.barge_ins += 1
        self.apply(actions)

    # -- the frame step ------------------------------------------------------------------
    def next_frame(self) -> tuple[bytes, bool]:
        """The frame to write now, and whether it is the last of the playing prompt."""
        prompt = self.playing
        if prompt is None or not prompt.audio.done():
            if prompt is not None:
                prompt.waited += 1
                if prompt.waited == _SLOW_RENDER_FRAMES:
                    logger.warning("voicebot: prompt %s still rendering after 1 s of silence", prompt.prompt_id)
            return SILENCE, False
        pcm = prompt.audio.result()
        chunk = pcm[prompt.offset : prompt.offset + FRAME_BYTES]
        prompt.offset += FRAME_BYTES
        last = prompt.offset >= len(pcm)
        if len(chunk) < FRAME_BYTES:
            chunk = chunk + SILENCE[: FRAME_BYTES - len(chunk)]
        return chunk, last


async def run_dialogue(
    port: FramePort,
    modem: LiveModem,
    dialogue: Dialogue,
    variables: JobVariables,
    *,
    prompts: PromptAudio | None = None,
    clock: Callable[[], float] | None = None,
    answered_at: float | None = None,
    in_band: bool = True,
    detector: DigitDetector | None = None,
    stats: LiveStats | None = None,
) -> Result:
    """Run ``dialogue`` with ``variables`` on the answered call of ``modem`` whose audio is
    ``port`` (``await modem.audio_ready()``), until the dialogue ends or the far end hangs
    up; returns the engine's result (digits timed in seconds from ``answered_at``).

    ``prompts`` renders prompt text (default: ``Synthesiser()``, espeak-ng cached on disk);
    ``clock`` is the loop's ``time()`` unless given, ``answered_at`` on that clock (default:
    now). Keys come from the modem's ``DtmfReceived`` events and, with ``in_band``, from the
    DTMF detector on the incoming frames (``detector``, default a ``DtmfDetector`` of its
    own), each key counted once. ``stats`` (when given) is
    filled as the call goes. Raises ``AudioFault`` when the port fails during a call that
    is still up, and ``TtsError`` when a prompt cannot be synthesised.
    """
    loop = asyncio.get_running_loop()
    now = clock or loop.time
    call = modem.call
    if call is None:
        raise ValueError("run_dialogue: the modem has no call (run it after the answer)")
    engine = Engine(dialogue, variables)
    runner = _Runner(port=port, engine=engine, prompts=prompts if prompts is not None else Synthesiser(),
                     clock=now, answered_at=now() if answered_at is None else answered_at,
                     detector=(detector or DtmfDetector()) if in_band else None, stats=stats or LiveStats())
    unsubscribe = modem.subscribe(runner.on_event)
    try:
        runner.apply(engine.start())
        while runner.result is None:
            await _drain(runner)
            runner.take_keys()
            if runner.result is not None:
                break
            if call.released:
                runner.apply(engine.handle(Hangup()))
                break
            if runner.deadline is not None and now() >= runner.deadline and engine.phase is Phase.COLLECTING:
                runner.apply(engine.handle(Timeout()))
                continue
            frame, last = runner.next_frame()
            try:
                await port.write_frame(frame)
            except AudioFault:
                if call.released:
                    continue  # the far end hung up and the port went with the call
                raise
            runner.stats.frames_written += 1
            if last and runner.playing is not None:
                done = runner.playing.prompt_id
                runner.playing = None
                runner.stats.prompts_played += 1
                runner.apply(engine.handle(PromptDone(done)))
    finally:
        unsubscribe()
        runner.stop()
    assert runner.result is not None
    return runner.result


async def _drain(runner: _Runner) -> None:
    """Read the frames queued on the port (no wait) into the in-band detector."""
    port = runner.port
    detector = runner.detector
    while port.pending_frames():
        frame = await port.read_frame(0)
        runner.stats.frames_read += 1
        if detector is None:
            continue
        for digit in detector.feed(frame):
            runner.keys.append((digit.digit, KeySource.IN_BAND, runner.clock()))
