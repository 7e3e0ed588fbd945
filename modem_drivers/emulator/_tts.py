"""Text-to-speech during a call: what SIMCom ``AT+CTTS`` and Quectel ``AT+QTTS`` do.

Rules (docs/dialects.md, "text-to-speech"): the command is accepted only while a call is
active and nothing else is playing (``ERROR`` otherwise); ``OK`` comes at once, the voice
then speaks for ``TimingProfile.speech_seconds``, and the end URC (``+CTTS: 0`` /
``+QTTS: 0``) follows when it is done, when ``<mode>`` 0 stops it, or when the call ends
under it. Every playback, finished or cut, is written to the call's network record
(``CallRecord.played``) with the seconds spoken: the ground truth of what the callee heard.
"""
from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Protocol

from ._calls import Call, PlayedMessage
from ._pdu import from_ucs2_hex
from ._timing import TimingProfile

#: <mode> → how the <text> parameter is written (SIM7600 manual AT+CTTS; EC2x AT+QTTS):
#: 1 UCS2 hex, 2 ASCII. Other modes (0 = stop) carry no text.
TEXT_MODES: Final[dict[int, Callable[[str], str]]] = {
    1: from_ucs2_hex,
    2: lambda text: text.encode("ascii").decode("ascii"),  # non-ASCII: UnicodeError → ERROR
}


@dataclass(slots=True)
class _Playing:
    call: Call
    text: str
    heard: bool
    started: float
    task: asyncio.Task[None] | None = None


class SpeakerHost(Protocol):
    """What the TTS engine uses of its modem (declared here so it never imports the
    modem): the timing, the random source, the task tracker and the URC writer."""

    profile: TimingProfile
    rng: random.Random

    def track(self, task: asyncio.Task[None]) -> None: ...

    def urc(self, *lines: str) -> None: ...


class Speaker:
    """One modem's TTS engine: at most one message at a time; ``end_urc`` is the
    dialect's end report (``+CTTS``/``+QTTS``)."""

    def __init__(self, modem: SpeakerHost, end_urc: str | None) -> None:
        self._end_urc = end_urc
        self._modem = modem
        self._now: _Playing | None = None

    @property
    def playing(self) -> bool:
        return self._now is not None

    def start(self, call: Call, text: str, *, heard: bool) -> None:
        modem = self._modem
        playing = _Playing(call, text, heard, time.monotonic())
        self._now = playing
        seconds = modem.profile.speech_seconds(modem.rng, text)
        task = asyncio.get_running_loop().create_task(self._speak(playing, seconds))
        playing.task = task
        modem.track(task)

    async def _speak(self, playing: _Playing, seconds: float) -> None:
        await asyncio.sleep(seconds)
        if self._now is playing:
            self.end(completed=True)

    def end(self, *, completed: bool) -> None:
        """The voice stops (done, stopped, or its call is gone): record it, send the URC."""
        playing, self._now = self._now, None
        if playing is None:
            return
        if playing.task is not None and playing.task is not asyncio.current_task():
            playing.task.cancel()
        spoken = round(time.monotonic() - playing.started, 3)
        playing.call.record.played.append(PlayedMessage(playing.text, spoken, completed, playing.heard))
        self._modem.urc(f"{self._end_urc}: 0")

    def call_ended(self, call: Call) -> None:
        if self._now is not None and self._now.call is call:
            self.end(completed=False)
