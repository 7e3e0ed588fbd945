"""Callbacks answered (issue 14): a person calling back a number he was shown is answered,
never left ringing.

He hears a short message naming the creditor of the SIM's pool (``[callbacks]``, config.py)
and is offered two keys: 1, "call me back" (a callback request the controller matches to
his contact and campaign), and 9, "stop calling this number" (an opt-out through the
controller's opt-out list). The message is said at least once (a key pressed before it
counts, one pressed during it stops it); a timeout repeats it once; then, or on any other
key, the choice is "none". A short confirmation, and we hang up. The choice goes on the call's
inbound row (``InboundRecorder`` wrote it at the first ring and the link sent it then), and
the link sends the row again with it.

The channel is taken for the call the way a job takes it (``Bank.acquire``: BUSY, from idle
or from the pause after a call), so the scheduler places no outgoing job on it meanwhile; a
callback to a channel that is busy — dialling, on a call, checking its balance — is not
answered at that ring (while we dial, the network tells the caller "busy" anyway), and is
tried again at the next ring if the channel is free by then.

What the caller hears: on a modem with an audio port, the appliance's own voice (espeak-ng
through ``voicebot.tts.Synthesiser``, cached on disk; rendered at start), frame by frame,
with keys from the modem's DTMF report and the in-band detector merged
(``voicebot.keys.KeyMerger``); without one, the modem's text-to-speech with keys from its
DTMF report. A channel with neither (a Huawei dongle without its voice port, a generic
modem) leaves the caller ringing rather than answer him with silence (a silent call).
"""
from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

from modem_drivers.at import AtError
from modem_drivers.audio import FRAME_BYTES, SILENCE, AudioFault, AudioPort
from modem_drivers.call import Call
from modem_drivers.errors import ModemError
from modem_drivers.modem import CallEndedBeforeAudio, Modem
from modem_drivers.types import DtmfReceived, IncomingCall

from .audio import DtmfDetector
from .bank import Bank
from .channel import Channel, ChannelState
from .config import CallbacksSection, CallbackTexts, callback_texts, creditor_for
from .store import Store
from .voicebot.keys import KeyMerger, KeySource
from .voicebot.tts import Synthesiser, TtsError

logger = logging.getLogger(__name__)


class Choice(enum.Enum):
    """What the caller keyed (the contract's ``InboundEvent.choice``)."""

    CALLBACK = "callback"  # 1: call me back
    OPT_OUT = "opt_out"  # 9: stop calling this number
    NONE = "none"  # nothing, another key, or he hung up first


#: The menu's keys (issue 14).
CHOICE_KEYS: Final = {"1": Choice.CALLBACK, "9": Choice.OPT_OUT}
#: Channel states a callback is answered from: the modem has no call and no job of ours
#: holds it (a job's pause after its call is only the rotation policy's business).
ANSWERABLE: Final = frozenset({ChannelState.IDLE, ChannelState.COOLING})
#: The menu is said this often at most: once, and once more after a timeout (issue 14).
MENU_TIMES: Final = 2
#: The modem's TTS speaks about 15 characters a second (docs/emulator.md's assumption for
#: 150 words a minute); a message is given twice that long plus its first word's delay
#: before it is stopped.
TTS_CHARS_PER_SECOND: Final = 15.0
TTS_SLACK_S: Final = 3.0
#: The whole answered call is bounded: two menus with their timeouts and a goodbye fit in
#: well under this; a modem that never reports anything cannot hold the channel longer.
CALL_LIMIT_S: Final = 120.0


@dataclass(slots=True)
class MenuResult:
    """One answered callback: the choice, the key that made it, how it was said."""

    choice: Choice
    key: str | None = None
    voice: str = "none"  # "audio" (our audio port), "tts" (the modem's), "none"
    menus: int = 0  # times the menu was said (to its end or cut by a key)
    hung_up: bool = False  # the caller hung up before choosing
    keys: list[str] = field(default_factory=list)


class _Keys:
    """Keys of the answered call: the modem's DTMF reports (subscribed before ``ATA``, so a
    key typed at once is not lost) and the in-band detector's, merged one to one."""

    def __init__(self, modem: Modem) -> None:
        self.merger = KeyMerger()
        self.detector: DtmfDetector | None = None
        self.got: list[str] = []
        self.event = asyncio.Event()
        self._unsubscribe = modem.subscribe(self._on_event)

    def _on_event(self, ev: object) -> None:
        if isinstance(ev, DtmfReceived):
            self.offer(ev.digit, KeySource.URC)

    def offer(self, digit: str, source: KeySource) -> None:
        if self.merger.offer(digit, source, time.monotonic()):
            self.got.append(digit)
            self.event.set()

    def hear(self, frame: bytes) -> None:
        if self.detector is None:
            self.detector = DtmfDetector()
        for d in self.detector.feed(frame):
            self.offer(d.digit, KeySource.IN_BAND)

    def close(self) -> None:
        self._unsubscribe()


class _AudioVoice:
    """Says text on the call's audio port, one 20 ms frame a step, listening meanwhile."""

    name = "audio"

    def __init__(self, port: AudioPort, call: Call, keys: _Keys, render: Callable[[str], bytes]) -> None:
        self.port, self.call, self.keys, self.render = port, call, keys, render

    async def _step(self, frame: bytes) -> None:
        try:
            while self.port.pending_frames():
                self.keys.hear(await self.port.read_frame(0))
            await self.port.write_frame(frame)
        except AudioFault:
            if not self.call.released:
                raise  # the port failed under a live call: the channel's modem is checked
            # the caller hung up and the port went quiet with the call: the loops see it

    async def say(self, text: str, *, stop_on_key: bool) -> None:
        """Play ``text`` to its end, the caller's hang-up, or (``stop_on_key``) his key."""
        pcm = await asyncio.to_thread(self.render, text)
        before = len(self.keys.got)
        for i in range(0, len(pcm), FRAME_BYTES):
            if self.call.released or (stop_on_key and len(self.keys.got) > before):
                return
            await self._step(pcm[i:i + FRAME_BYTES].ljust(FRAME_BYTES, b"\0"))
        for _ in range(10):  # the modem's small buffer still holds the end (jobs/live.PLAY_TAIL_S)
            if self.call.released:
                return
            await self._step(SILENCE)

    async def wait_key(self, timeout: float) -> None:
        """Silence on the line until a key, the hang-up, or ``timeout`` seconds."""
        loop = asyncio.get_running_loop()
        until = loop.time() + timeout
        start = len(self.keys.got)
        while len(self.keys.got) == start and not self.call.released and loop.time() < until:
            await self._step(SILENCE)


class _TtsVoice:
    """Says text with the modem's text-to-speech; keys come from its DTMF report."""

    name = "tts"

    def __init__(self, modem: Modem, call: Call, keys: _Keys) -> None:
        self.modem, self.call, self.keys = modem, call, keys

    async def say(self, text: str, *, stop_on_key: bool) -> None:
        await self.modem.play_tts(text, timeout=len(text) / TTS_CHARS_PER_SECOND * 2 + TTS_SLACK_S)

    async def wait_key(self, timeout: float) -> None:
        start = len(self.keys.got)
        released = asyncio.ensure_future(self.call.wait_released(None))
        try:
            async with asyncio.timeout(timeout):
                while len(self.keys.got) == start and not self.call.released:
                    self.keys.event.clear()
                    key = asyncio.ensure_future(self.keys.event.wait())
                    try:
                        await asyncio.wait({key, released}, return_when=asyncio.FIRST_COMPLETED)
                    finally:
                        key.cancel()
        except TimeoutError:
            pass
        finally:
            released.cancel()


def _decide(result: MenuResult, keys: _Keys) -> None:
    """The choice is the first key's (CHOICE_KEYS; any other key: none)."""
    result.keys = list(keys.got)
    if keys.got and result.key is None:
        result.key = keys.got[0]
        result.choice = CHOICE_KEYS.get(result.key, Choice.NONE)


async def run_menu(modem: Modem, caller: str | None, texts: CallbackTexts, creditor: str, *,
                   render: Callable[[str], bytes], key_timeout: float,
                   result: MenuResult | None = None) -> MenuResult:
    """Answer the ringing call of ``modem`` and run the menu (module docstring); returns the
    caller's choice, filled into ``result`` as it is made (so a failure after his key —
    the port lost during the goodbye — keeps it). Does not hang up: the caller of this
    function does, once it returns. Raises ``ModemError``/``AtError`` when the modem would
    not answer or failed during the call, ``AudioFault`` when its audio port did."""
    result = result if result is not None else MenuResult(Choice.NONE)
    keys = _Keys(modem)
    try:
        call = await modem.answer(caller)
        if call.released:
            result.hung_up = True
            return result
        voice: _AudioVoice | _TtsVoice | None = None
        if modem.audio is not None:
            try:
                voice = _AudioVoice(await modem.audio_ready(), call, keys, render)
            except CallEndedBeforeAudio:
                result.hung_up = True
                return result
            except AudioFault as exc:
                logger.warning("%s: callback: audio port not live (%s); the modem's TTS instead", modem.name, exc)
        if voice is None and modem.dialect.tts is not None:
            voice = _TtsVoice(modem, call, keys)
        if voice is None:
            return result  # no way to speak: the caller is hung up on (the answerer checked before)
        result.voice = voice.name
        menu = (texts.menu or "").replace("{creditor}", creditor)
        # Said at least once, so he hears who called him; a key pressed before it counts
        # (type-ahead), one pressed during it stops it (on the audio port).
        while result.menus < MENU_TIMES and not call.released:
            result.menus += 1
            await voice.say(menu, stop_on_key=True)
            if not keys.got:
                await voice.wait_key(key_timeout)
            if keys.got:
                break
        _decide(result, keys)
        if call.released:
            result.hung_up = result.key is None
            return result
        goodbye = {Choice.CALLBACK: texts.callback, Choice.OPT_OUT: texts.opt_out}.get(result.choice, texts.none)
        await voice.say(goodbye or "", stop_on_key=False)
        return result
    finally:
        _decide(result, keys)
        keys.close()


class CallbackAnswerer:
    """Answers callbacks on free channels (module docstring); handed each ring of an
    incoming call by ``InboundRecorder`` with the id of its inbound row."""

    def __init__(self, bank: Bank, store: Store, cfg: CallbacksSection, *,
                 synthesiser: Synthesiser | None = None, on_choice: Callable[[], None] | None = None) -> None:
        self.bank = bank
        self.store = store
        self.cfg = cfg
        self.texts = callback_texts(cfg)
        self.synthesiser = synthesiser or Synthesiser()
        self.on_choice = on_choice  # the link's wake-up: a row to send again
        self.answered = 0
        self.results: list[MenuResult] = []  # the newest answered callbacks, for the status and tests
        self._busy: set[str] = set()  # channels answering now
        self._tasks: set[asyncio.Task[Any]] = set()
        self._mute_logged: set[str] = set()

    def creditor(self, ch: Channel) -> str:
        return creditor_for(self.cfg, ch.pools)

    def render(self, text: str) -> bytes:
        return self.synthesiser.pcm(text, self.cfg.lang)

    async def prepare(self) -> None:
        """Render every channel's menu and the confirmations into the prompt cache (a worker
        thread), so a caller hears the menu at once after the answer."""
        texts = self.texts
        said = {(texts.menu or "").replace("{creditor}", self.creditor(ch)) for ch in self.bank.channels.values()}
        said |= {t for t in (texts.callback, texts.opt_out, texts.none) if t}
        for text in sorted(said):
            try:
                await asyncio.to_thread(self.synthesiser.render, text, self.cfg.lang)
            except TtsError as exc:
                logger.warning("callbacks: the menu cannot be rendered (%s); modems with an audio port will use "
                               "their TTS if they have one", exc)
                return

    def on_ring(self, ch: Channel, ev: IncomingCall, inbound_id: str) -> bool:
        """A ring of an incoming call on ``ch`` (its row ``inbound_id``): answer it when the
        channel is free (True); otherwise let it ring (the next ring tries again)."""
        if not self.cfg.answer or ch.id in self._busy:
            return False
        modem = self.bank.modems.get(ch.id)
        if ch.state not in ANSWERABLE or modem is None or (modem.call is not None and not modem.call.released):
            logger.debug("channel %s: callback %s not answered now (%s)", ch.id, inbound_id, ch.state.value)
            return False
        if modem.audio is None and modem.dialect.tts is None:
            if ch.id not in self._mute_logged:
                self._mute_logged.add(ch.id)
                logger.warning("channel %s: callbacks are left ringing: the modem has no audio port and no TTS "
                               "(a caller must not be answered with silence)", ch.id)
            return False
        self.bank.acquire(ch.id, f"callback {inbound_id}")
        self._busy.add(ch.id)
        task = asyncio.get_running_loop().create_task(self._answer(ch, modem, ev.caller, inbound_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return True

    async def _answer(self, ch: Channel, modem: Modem, caller: str | None, inbound_id: str) -> None:
        result = MenuResult(Choice.NONE)  # filled as the caller chooses, kept whatever fails after
        audio_fault: str | None = None
        try:
            async with asyncio.timeout(CALL_LIMIT_S):
                await run_menu(modem, caller, self.texts, self.creditor(ch), render=self.render,
                               key_timeout=self.cfg.key_timeout_seconds, result=result)
        except AudioFault as exc:
            audio_fault = str(exc)
            logger.warning("channel %s: callback %s: %s", ch.id, inbound_id, exc)
        except (AtError, ModemError, TtsError, TimeoutError) as exc:
            logger.warning("channel %s: callback %s ended early: %s: %s", ch.id, inbound_id, type(exc).__name__, exc)
        except Exception:
            logger.exception("channel %s: callback %s failed", ch.id, inbound_id)
        finally:
            call = modem.call
            if call is not None and not call.released:
                with contextlib.suppress(AtError, ModemError):
                    await modem.hangup()
            self._busy.discard(ch.id)
            self.bank.release(ch.id, cooldown=0.0, reason="callback answered")
            if audio_fault is not None:
                self.bank.audio_fault(ch.id, audio_fault)
        self.answered += 1
        self.results = [*self.results[-99:], result]
        logger.info("channel %s: callback %s answered: %s (key %s, %s, menu said %d time(s))", ch.id, inbound_id,
                    result.choice.value, result.key, result.voice, result.menus)
        self.store.set_inbound_choice(inbound_id, result.choice.value)
        if self.on_choice is not None:
            self.on_choice()

    def start(self) -> None:
        """Render the menus in the background (``prepare``) when callbacks are answered."""
        if self.cfg.answer:
            task = asyncio.get_running_loop().create_task(self.prepare())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
