"""A call's live audio after the answer: listen (AMD, then a watch that may revise a fast
"human"), wait for a machine's beep, and play a message on the audio port.

``Listener`` reads the port's frames as they come (one task per call, in the loop: no
thread) and feeds issue 6's streaming detectors the same ``FrameFeatures`` the offline WAV
path builds: the ``AmdDetector`` until its verdict, a ``ToneDetector`` throughout (the beep),
and after a human or unsure verdict a watch detector that turns it into "machine" when the
far end talks on without the pause a person leaves for a reply. ``play`` writes a message
frame by frame, paced by the port, and says whether it was heard whole or why it was cut.
"""
from __future__ import annotations

import asyncio
import dataclasses
import enum
from typing import Final

from appliance.audio.amd import AmdConfig, AmdDetector
from appliance.audio.dtmf import DtmfConfig, DtmfDetector, DtmfDigit
from appliance.audio.events import AmdDecision, AmdResult, Beep
from appliance.audio.features import FrameClock, FrameFeatures, follow_floor
from appliance.audio.pcm import FRAME_MS
from appliance.audio.tones import ToneDetector
from modem_drivers.audio import FRAME_BYTES, AudioFault, AudioPort
from modem_drivers.call import Call

#: A fast "human" may still be a machine whose greeting runs on past its first pause; the
#: watch runs this long after the answer: the emulator's machines measure 3.5–6.5 s with
#: their beep (docs/emulator.md), real greetings up to 12 s (issue 14) — 12 s plus a beep.
REVISE_UNTIL_MS: Final = 14000
#: The watch's own timers never end it: only a long greeting, a beep or SIT (machine)
#: counts; a pause restarts it (AmdConfig's 60 s bound).
_WATCH: Final = AmdConfig(initial_silence_ms=60000, total_analysis_ms=60000)
#: No beep within this long of the machine verdict: the message goes after the greeting's
#: end instead (issue 14).
BEEP_WAIT_S: Final = 10.0
#: The greeting has ended once the line is this quiet this long: the AMD's own pause for a
#: statement on a noisy line (AmdConfig.human_silence_ms 500) plus margin, 700 ms as the
#: emulator closes what it heard.
GREETING_END_MS: Final = 700
#: A frame is sound when it is this far over the line's noise floor (the AMD's own
#: speech_on_db: a fixed level never saw a greeting end on a line noisier than it) ...
SOUND_OVER_FLOOR_DB: Final = 9.0
#: ... and over this level at least (speech and beeps are above −45 dBFS, the level at
#: which the emulator's far end counts what it hears; its clean line floor is −66).
SOUND_MIN_DBFS: Final = -45.0
#: The floor follows the quietest frames at once and creeps up 3 dB/s otherwise
#: (``features.follow_floor``, the AMD's ``floor_rise_db_per_s``).
_FLOOR_RISE_DB: Final = 3.0 * FRAME_MS / 1000
#: After the last frame is written, the modem's small buffer still holds a few frames;
#: hanging up at once would cut the message's end (10 frames = the emulator's buffer).
PLAY_TAIL_S: Final = 10 * FRAME_MS / 1000


class SharedDtmf:
    """The voicebot's in-band DTMF detector on the features the call's ``Listener`` made for
    each frame (its revision watch reads the same frames through ``WatchedPort``): one
    analysis per frame instead of two — 1.2 ms of CPU per call-second (bench live).

    Keys come from the modem's own DTMF report where its dialect has one (issue 14), in band
    otherwise. While the watch runs the frame's analysis is made anyway, so in-band keys
    are heard beside the modem's (merged, each counted once); once the watch is over, a
    modem that reports keys itself (``urc_keys``) is trusted alone and no frame is analysed
    any more: the analysis is most of a dialogue's CPU (docs/appliance.md, "Live calls")."""

    def __init__(self, listener: Listener, *, urc_keys: bool = False, config: DtmfConfig | None = None) -> None:
        self.listener = listener
        self.urc_keys = urc_keys
        self.detector = DtmfDetector(config)

    def feed(self, frame: bytes) -> list[DtmfDigit]:
        if self.urc_keys and self.listener.idle:
            return []
        return self.detector.feed_features(self.listener.features_for(frame))


class Cut(enum.Enum):
    """Why a message was not heard to its end."""

    RELEASED = "the callee hung up before the message ended"
    TALK_TIME = "the message was stopped at max_talk_seconds"
    REVISED = "the AMD revised its decision to machine during the message"
    PORT_LOST = "the audio port was lost during the message"


@dataclasses.dataclass(slots=True)
class Played:
    whole: bool
    seconds: float
    cut: Cut | None = None


class Listener:
    """Feeds one call's frames to the detectors and tells the executor what they decided."""

    def __init__(self, port: AudioPort, config: AmdConfig | None = None) -> None:
        self.port = port
        self._clock = FrameClock()
        self._tones = ToneDetector()
        self._amd = AmdDetector(config, own_tones=False)
        self._watch: AmdDetector | None = None
        self._idle = False  # set once a person's watch has ended unrevised
        self.first: AmdDecision | None = None
        self.revision: AmdDecision | None = None
        self.beep_ms: int | None = None
        self.ms = 0  # audio heard so far, ms after the answer
        self.last_sound_ms = 0
        self._floor: float | None = None  # the line's noise floor, dBFS (follow_floor)
        self._last: tuple[bytes, FrameFeatures] | None = None  # the frame fed last, and its features
        self.decided = asyncio.Event()
        self.revised = asyncio.Event()
        self.beeped = asyncio.Event()
        self._frame = asyncio.Event()
        self.error: BaseException | None = None

    async def run(self) -> None:
        try:
            while True:
                self.feed(await self.port.read_frame())
        except AudioFault as exc:
            self.error = exc
            self._frame.set()

    def feed(self, frame: bytes) -> None:
        self._last = None
        if self._idle:  # a person past the watch: nothing reads the detectors any more
            self.ms += FRAME_MS
            self._clock.index += 1  # frames stay counted: features_for() may still be asked
            self._frame.set()
            self._frame.clear()
            return
        ft = self._clock.features(frame)
        self._last = (frame, ft)
        self.ms = ft.end_ms
        self._floor = follow_floor(self._floor, ft.level_db, _FLOOR_RISE_DB)
        if ft.level_db > max(SOUND_MIN_DBFS, self._floor + SOUND_OVER_FLOOR_DB):
            self.last_sound_ms = ft.end_ms
        tones = self._tones.feed_features(ft)
        for ev in tones:
            if isinstance(ev, Beep) and self.beep_ms is None:
                self.beep_ms = ev.end_ms
                self.beeped.set()
        if self.first is None:
            for d in self._amd.feed_features(ft, tones):
                self.first = d
                self.decided.set()
                if d.result in (AmdResult.HUMAN, AmdResult.UNSURE):
                    self._watch = AmdDetector(_WATCH, own_tones=False)
        elif self._watch is not None:
            if ft.end_ms > REVISE_UNTIL_MS:
                # the watch is over and he stays a person: the beep and the greeting's end
                # are the machine branch's, which no longer runs — stop the front end (35 µs
                # a frame: a third of a dialogue's CPU after 14 s, bench live)
                self._watch, self._idle = None, True
            else:
                for d in self._watch.feed_features(ft, tones):
                    if d.result is AmdResult.MACHINE:
                        self.revision, self._watch = d, None
                        self.revised.set()
                    else:  # a pause a person leaves: watch the next stretch of speech
                        self._watch = AmdDetector(_WATCH, own_tones=False)
        self._frame.set()
        self._frame.clear()

    @property
    def idle(self) -> bool:
        """A person's watch is over unrevised: the detectors here analyse nothing more."""
        return self._idle

    def features_for(self, frame: bytes) -> FrameFeatures:
        """The features of ``frame``, the one fed last: those the detectors here used (one
        analysis per frame for AMD, tones and in-band DTMF), or, once idle, made now with
        the same frame index (a detector fed from here keeps its phase)."""
        last = self._last
        if last is not None and last[0] is frame:
            return last[1]
        return FrameFeatures.of(frame, self._clock.index - 1)

    async def quiet(self, ms: int = GREETING_END_MS) -> None:
        """Return once the line has been quiet ``ms`` (the greeting ended)."""
        while self.ms - self.last_sound_ms < ms and self.error is None:
            await self._frame.wait()


async def until(call: Call, aw: asyncio.Future[object] | asyncio.Task[object], timeout: float | None) -> bool:
    """Wait for ``aw`` while the call lasts, at most ``timeout``: True when it finished."""
    released = asyncio.ensure_future(call.wait_released(None))
    try:
        done, _ = await asyncio.wait({aw, released}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        released.cancel()
    return aw in done


async def play(port: AudioPort, call: Call, pcm: bytes, deadline: float, stop: asyncio.Event | None = None) -> Played:
    """Write ``pcm`` (8 kHz s16le mono) frame by frame until its end, the callee's hang-up,
    ``deadline`` (loop time), or ``stop``; the last frame is padded with silence."""
    loop = asyncio.get_running_loop()
    frames = [pcm[i:i + FRAME_BYTES].ljust(FRAME_BYTES, b"\0") for i in range(0, len(pcm), FRAME_BYTES)]
    sent = 0
    cut: Cut | None = None
    for frame in frames:
        if call.releasing or call.released:
            cut = Cut.RELEASED
        elif loop.time() >= deadline:
            cut = Cut.TALK_TIME
        elif stop is not None and stop.is_set():
            cut = Cut.REVISED
        if cut is not None:
            break
        try:
            await port.write_frame(frame)
        except AudioFault:
            cut = Cut.PORT_LOST
            break
        sent += 1
    if cut is None:
        await asyncio.sleep(PLAY_TAIL_S)
        if call.released and not call.local_release:
            cut = Cut.RELEASED
    return Played(cut is None, round(sent * FRAME_MS / 1000, 2), cut)
