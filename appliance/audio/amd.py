"""Answering-machine detection: is a person on the line, or a recording?

The signal a dialer has is *turn-taking*: a person answers with a short greeting
("Halo?", "Yes?") and then waits for the caller; a machine talks on. So the detector
segments speech with a noise-adaptive voice detector and runs this state machine
(``_TRANSITIONS`` below is the table; one step per 20 ms frame):

* ``waiting``  — no speech yet. Speech ≥ ``min_speech_ms`` → ``speaking``;
  nothing by ``initial_silence_ms`` → **silence**.
* ``speaking`` — the greeting runs from its first speech. Greeting ≥ ``machine_greeting_ms``
  → **machine** (rule ``long_greeting``); a pause → ``pausing``.
* ``pausing``  — speech again → ``speaking`` (the greeting, pauses included, keeps
  growing); silent for ``question_silence_ms`` when the speech before the pause ended on
  a rising pitch (a question: "Hello?", "Halo?") → **human** (rule
  ``question_then_silence``); otherwise silent for ``human_silence_ms`` → **human**
  (rule ``greeting_then_silence``). Silence is counted in the voice band *and* the
  fricative band, so a trailing "s" or "ść" is still speech.
* any state: a voicemail beep or SIT → **machine**; fax CNG/CED → **fax**; the analysis
  ends at ``total_analysis_ms`` → **unsure** (callers treat it as human).

Why two silences: a greeting's sentence pause ("Halo. Tu Marek…") is as long as 500 ms on
the corpus, so a statement followed by silence needs ``human_silence_ms``; but a
greeting's *rises* are commas, whose pauses are about half a sentence pause, while a
person's "Hello?" ends rising and then waits (see :mod:`.pitch`). A rise only counts
when the speech ends at (or within ``_FALL_MAX_ST`` of) its top: "Hello." climbs, then
falls to its end, and is a statement. Both silences shrink on a clean line (the
``*_clean_ms`` values at ``clean_snr_db``): noise hides the weak edges of the syllables
around a pause, so the same pause *measures* longer on a noisy line.

The voice detector compares each frame's level with a noise floor that follows the
quietest frames at once and rises slowly (``floor_rise_db_per_s``), so it works at any
gain and under steady noise, where a fixed threshold (Asterisk's 256) fails both ways.
Tonal frames (a beep, a fax tone) are not speech.

Bias to human: every threshold errs so that a doubtful call ends up human or unsure —
a machine verdict needs a long uninterrupted greeting, a beep or SIT; a person who
says something short and waits is never a machine.
"""
from __future__ import annotations

import enum
import math
import statistics
from dataclasses import dataclass, fields
from typing import Final

from .events import (AmdDecision, AmdEvidence, AmdResult, Beep, FaxKind, FaxTone, Segment,
                     Sit, ToneEvent)
from .features import FrameClock, FrameFedDetector, FrameFeatures, follow_floor
from .pcm import FRAME_MS
from .pitch import frame_pitch
from .tones import ToneDetector


@dataclass(frozen=True, slots=True)
class AmdConfig:
    """AMD parameters (ms unless named otherwise), defaults measured on the corpus
    (docs/audio.md) and kept on the human side of each trade-off."""

    initial_silence_ms: int = 4000  # nothing said this long → silence (Asterisk: 2500 → MACHINE)
    min_speech_ms: int = 100  # shorter bursts are clicks, not words (Asterisk min word: 100)
    # Silence after speech before "human", by how the speech ended and how clean the
    # line is. Both must outlast a machine's pauses: a sentence pause after a statement,
    # a comma's after a (false) rise. Measured pauses grow as the line gets noisier —
    # the weak edges of the syllables on both sides sink under the noise — so each
    # silence runs from its ``_clean_ms`` value at ``clean_snr_db`` (voice band: the
    # greeting's peak over the noise floor) to its plain value at ``noisy_snr_db``.
    # Corpus seeds 1, 5–8, machines' statement pauses: ≤ 400 ms at ≥ 45 dB, ≤ 500 ms
    # at 20–40 dB; each statement value covers that regime's longest pause (400 ms
    # alone lost slow "Halo." greetings on clean lines of a fresh seed), the question
    # values come from a grid (docs/audio.md).
    human_silence_ms: int = 500  # noisy line: over machines' sentence pauses (≤ 500 ms)
    human_silence_clean_ms: int = 440  # clean line: machines' pauses there ≤ 400 ms (p99 350) + 2 frames
    # after a rising end: over the comma pauses of machines' false rises; set both to
    # the human_silence values to turn the rule off
    question_silence_ms: int = 280
    question_silence_clean_ms: int = 220
    noisy_snr_db: float = 30.0
    clean_snr_db: float = 50.0
    rise_semitones: float = 2.0  # end this far above its last valley: a question (grid 1–2 st, seeds 1, 5–8)
    pitch_clarity: float = 0.6  # autocorrelation at the pitch lag: below it, not voiced (0.5 let noise in)
    hush_db: float = 6.0  # fricative band within this of its floor: silent (both rules)
    machine_greeting_ms: int = 1700  # longer than most hellos, shorter than greetings
    total_analysis_ms: int = 5000  # Asterisk total_analysis_time
    speech_on_db: float = 9.0  # above the noise floor to start speech
    speech_off_db: float = 5.0  # … and to keep it going (hysteresis)
    speech_min_dbfs: float = -62.0  # absolute floor: below this nothing is speech
    floor_rise_db_per_s: float = 3.0
    tonal_not_speech: float = 0.9  # frames this tonal are tones, not voice

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if f.name.endswith("_ms") and not 0 < v <= 60000:
                raise ValueError(f"amd.{f.name}: expected milliseconds in 1–60000, got {v!r}")
        if self.question_silence_ms > self.human_silence_ms:
            raise ValueError("amd.question_silence_ms must not exceed amd.human_silence_ms")
        if self.question_silence_clean_ms > self.human_silence_clean_ms:
            raise ValueError("amd.question_silence_clean_ms must not exceed amd.human_silence_clean_ms")
        if self.human_silence_clean_ms > self.human_silence_ms:
            raise ValueError("amd.human_silence_clean_ms must not exceed amd.human_silence_ms (the noisy-line value)")
        if self.question_silence_clean_ms > self.question_silence_ms:
            raise ValueError("amd.question_silence_clean_ms must not exceed amd.question_silence_ms (the noisy-line value)")
        if not self.noisy_snr_db < self.clean_snr_db:
            raise ValueError("amd.noisy_snr_db must be below amd.clean_snr_db")
        if not 0.0 < self.pitch_clarity < 1.0:
            raise ValueError(f"amd.pitch_clarity: expected 0–1, got {self.pitch_clarity!r}")
        if self.speech_off_db > self.speech_on_db:
            raise ValueError("amd.speech_off_db must not exceed amd.speech_on_db")


class _State(enum.Enum):
    WAITING = "waiting"
    SPEAKING = "speaking"
    PAUSING = "pausing"
    DONE = "done"


class _Ev(enum.Enum):
    SPEECH = "speech"
    QUIET = "quiet"


#: {state: {frame kind: next state}} — the decisions themselves are timers, checked after.
_TRANSITIONS: Final = {
    _State.WAITING: {_Ev.SPEECH: _State.SPEAKING, _Ev.QUIET: _State.WAITING},
    _State.SPEAKING: {_Ev.SPEECH: _State.SPEAKING, _Ev.QUIET: _State.PAUSING},
    _State.PAUSING: {_Ev.SPEECH: _State.SPEAKING, _Ev.QUIET: _State.PAUSING},
}
#: Tone evidence → verdict and rule name.
_TONE_RULES: Final = {Beep: (AmdResult.MACHINE, "beep"), Sit: (AmdResult.MACHINE, "sit"),
                      FaxTone: (AmdResult.FAX, "fax_tone")}


#: End-of-speech contour: the mean of the last ``_RISE_END`` pitched frames against the
#: lowest of the last ``_RISE_SPAN`` (200 ms, the last syllable or two): a question's
#: rise comes after a valley ("Yes?" in espeak-ng falls, then rises over its last
#: 60 ms); a statement ends on its lowest pitch.
_RISE_END: Final = 2
_RISE_SPAN: Final = 10
#: … and the end must be the top of that rise: within this many semitones of the highest
#: point after the valley ("Hello." rises to "-lo" and falls to its end). 1 st: the
#: smallest step chosen on corpus seeds 1, 5–8 (0.5/1/2 tried, 1 and 2 alike).
_FALL_MAX_ST: Final = 1.0
#: The rise must reach the end of the speech: its last pitched frame at most this
#: many frames before the pause (a final fricative may follow: "Yes?").
_RISE_MAX_GAP: Final = 6
#: Only strong frames are pitched: voice band ≥ 10 dB over its floor. The weak edges of
#: a syllable, where 12 dB-SNR noise takes over, gave machines' false rises (and the
#: pitch tracker's FFTs are the AMD's main cost).
_PITCH_MIN_DB: Final = 10.0
#: Pitch more than this many semitones from the call's median is a tracking error
#: (octave slips, a formant's period) and is left out; a real question rises 2–7 st.
_PITCH_OUTLIER_ST: Final = 8.0


#: Below this the fricative band holds nothing but s16 rounding noise (about −105 dBFS
#: over 1.5–3.4 kHz), which swings 10 dB from frame to frame: quiet whatever its floor.
#: A person on a digitally silent line (no noise added, gain −16 dB) was never "silent"
#: before this, and his reply after 0.9 s of silence made him a long-greeting machine.
_HUSH_MIN_DBFS: Final = -80.0


#: Silence after speech → rule name, by whether the speech ended as a question.
_SILENCE_RULES: Final = {True: "question_then_silence", False: "greeting_then_silence"}


def _median3(v: list[float]) -> list[float]:
    """Running median of three (ends kept): one-frame tracking glitches go, a rise stays."""
    return v[:1] + [sorted(v[j - 1 : j + 2])[1] for j in range(1, len(v) - 1)] + v[-1:] if len(v) > 2 else v


#: CNG after this much speech is taken for a greeting's tone (T.30 fax calls start silent).
_CNG_AFTER_SPEECH_MS: Final = 500


class AmdDetector(FrameFedDetector):
    """Streaming AMD: ``feed(frame)`` returns ``[AmdDecision]`` once, then nothing."""

    def __init__(self, config: AmdConfig | None = None, *, own_tones: bool = True) -> None:
        self.config = cfg = config or AmdConfig()
        self._clock = FrameClock()
        self._tones = ToneDetector() if own_tones else None
        self.state = _State.WAITING
        self.decision: AmdDecision | None = None
        self._floor: float | None = None
        self._rise = cfg.floor_rise_db_per_s * FRAME_MS / 1000
        self._voiced = False
        self._run_start = -1  # frame index where the current voiced run began
        self._run_len = 0
        self._greeting_start = -1
        self._pause_start = -1
        self._speech: list[Segment] = []
        self._silences: list[Segment] = []
        self._tone_events: list[ToneEvent] = []
        self._min_run = max(1, cfg.min_speech_ms // FRAME_MS)
        self._questions = (cfg.question_silence_ms < cfg.human_silence_ms  # the rule is on
                           or cfg.question_silence_clean_ms < cfg.human_silence_clean_ms)
        self._peak = -120.0  # loudest voice-band frame of the greeting so far (dBFS)
        self._run_peak = -120.0  # … of the current voiced run
        self._snr: float | None = None  # greeting peak over the floor, at the last pause
        self._needed_ms = 0  # silence the current pause needs for "human"
        self._prev_samples: object = None
        #: (frame index, semitones re 1 Hz) per strong pitched frame, until the verdict
        self._pitch: list[tuple[int, float]] = []
        self._end_rise: float | None = None  # rise of the speech before the current pause
        self._end_question = False  # … and it ended at the top of that rise
        self._hush_floor: float | None = None
        self._hush_run = 0  # whole-band silent frames in a row

    def finish(self) -> list[AmdDecision]:
        """Audio ended before a verdict: silence if nothing was said, else unsure."""
        if self.done:
            return []
        end = self._clock.index * FRAME_MS if self._tones is not None else self._last_ms
        if self._tones is not None:
            for ev in self._tones.finish():
                d = self._on_tone(ev, end)
                if d:
                    return [d]
        if self.state is _State.WAITING:
            return [self._decide(AmdResult.SILENCE, end, "ended_in_silence")]
        return [self._decide(AmdResult.UNSURE, end, "ended_undecided")]

    _last_ms = 0

    def feed_features(self, ft: FrameFeatures, tone_events: list[ToneEvent] | None = None) -> list[AmdDecision]:
        if self.decision is not None:
            return []
        cfg = self.config
        now = ft.end_ms
        self._last_ms = now
        if tone_events is None and self._tones is not None:
            tone_events = self._tones.feed_features(ft)
        for ev in tone_events or ():
            d = self._on_tone(ev, now)
            if d:
                return [d]
        if ft.tonality >= cfg.tonal_not_speech and ft.level_db >= (self._floor or 0.0) + cfg.speech_on_db:
            # a tone is sounding (beep, SIT, fax): neither speech nor silence — hold the
            # timers so a SIT or beep is not mistaken for the pause after a greeting
            if self.state is _State.PAUSING:
                self._held_ms += FRAME_MS
            self._hush_run = 0  # a tone is not silence
            return []
        voiced = self._voice(ft)
        self._hush(ft)
        prev_samples, self._prev_samples = self._prev_samples, ft.samples
        if (voiced and prev_samples is not None and self._questions  # until the verdict only
                and ft.voice_db - (self._floor or 0.0) >= _PITCH_MIN_DB):
            f0, clarity = frame_pitch(prev_samples, ft.samples)  # type: ignore[arg-type]
            if clarity >= cfg.pitch_clarity:
                self._pitch.append((ft.index, 12.0 * math.log2(f0)))
        if voiced:
            if self._run_len == 0:
                self._run_start = ft.index
                self._run_peak = ft.voice_db
            elif ft.voice_db > self._run_peak:
                self._run_peak = ft.voice_db
            self._run_len += 1
        else:
            self._run_len = 0
        kind = _Ev.SPEECH if self._run_len >= (self._min_run if self.state is _State.WAITING else 2) else _Ev.QUIET
        prev = self.state
        self.state = _TRANSITIONS[prev][kind]
        if self.state is _State.SPEAKING and self._run_peak > self._peak:
            self._peak = self._run_peak
        if prev is _State.WAITING and self.state is _State.SPEAKING:
            self._greeting_start = self._run_start
            if self._run_start > 0:
                self._silences.append(Segment(0, self._run_start * FRAME_MS))
        elif prev is _State.SPEAKING and self.state is _State.PAUSING:
            self._pause_start = ft.index
            self._held_ms = 0
            self._end_rise, self._end_question = self._final_rise(ft.index)
            self._snr = self._peak - (self._floor or 0.0)
            self._needed_ms = self.silence_needed(self._snr, self._end_question)
            self._speech.append(Segment(self._seg_start, ft.index * FRAME_MS))
        elif prev is _State.PAUSING and self.state is _State.SPEAKING:
            self._silences.append(Segment(self._pause_start * FRAME_MS, self._run_start * FRAME_MS))
        if self.state is _State.SPEAKING and prev is not _State.SPEAKING:
            self._seg_start = self._run_start * FRAME_MS
        # timers
        if self.state is _State.WAITING and now >= cfg.initial_silence_ms:
            return [self._decide(AmdResult.SILENCE, now, "initial_silence")]
        if self.state is _State.SPEAKING and now - self._greeting_start * FRAME_MS >= cfg.machine_greeting_ms:
            self._speech.append(Segment(self._seg_start, now))
            return [self._decide(AmdResult.MACHINE, now, "long_greeting")]
        if self.state is _State.PAUSING:
            rule = _SILENCE_RULES[self._end_question]
            if self.counted_silence_ms(now) >= self._needed_ms:
                self._silences.append(Segment(self._pause_start * FRAME_MS, now))
                return [self._decide(AmdResult.HUMAN, now, rule)]
        if now >= cfg.total_analysis_ms:
            return [self._decide(AmdResult.UNSURE, now, "too_long")]
        return []

    def counted_silence_ms(self, now: int) -> int:
        """Silence counted in the current pause up to ``now``: tone frames held out, and
        only since both bands (voice and fricative) went quiet."""
        return min(now - self._pause_start * FRAME_MS - self._held_ms, self._hush_run * FRAME_MS)

    def silence_needed(self, snr: float, question: bool) -> int:
        """Silence (ms) a pause needs for "human": the clean-line value at or above
        ``clean_snr_db``, the noisy-line one at or below ``noisy_snr_db``, linear between."""
        cfg = self.config
        noisy, clean = ((cfg.question_silence_ms, cfg.question_silence_clean_ms) if question
                        else (cfg.human_silence_ms, cfg.human_silence_clean_ms))
        x = min(1.0, max(0.0, (snr - cfg.noisy_snr_db) / (cfg.clean_snr_db - cfg.noisy_snr_db)))
        return round(noisy + (clean - noisy) * x)

    _seg_start = 0
    _held_ms = 0  # tone frames inside the current pause, not counted as silence

    def _voice(self, ft: FrameFeatures) -> bool:
        cfg = self.config
        level = max(ft.voice_db, -90.0)
        self._floor = floor = follow_floor(self._floor, level, self._rise)
        threshold = cfg.speech_off_db if self._voiced else cfg.speech_on_db
        self._voiced = level >= floor + threshold and level >= cfg.speech_min_dbfs
        return self._voiced

    def _hush(self, ft: FrameFeatures) -> None:
        """Silence of the fricative band against its own floor: the voice band misses a
        comma's trailing "ść" or "s", and low-frequency (brown, pink) line noise, which
        swings the whole band's level by several dB from frame to frame, is weak here."""
        level = ft.hush_db
        self._hush_floor = floor = follow_floor(self._hush_floor, level, self._rise)
        quiet = level < floor + self.config.hush_db or level < _HUSH_MIN_DBFS
        self._hush_run = self._hush_run + 1 if quiet else 0

    def _final_rise(self, pause_index: int) -> tuple[float | None, bool]:
        """``(rise, question)``: semitones the speech's end rose above its last valley
        (None if too little was voiced near the end to say), and whether that rise is a
        question's — at least ``rise_semitones``, ending at its top."""
        pts = [p for p in self._pitch if p[0] < pause_index]
        if not pts:
            return None, False
        ref = statistics.median(st for _, st in pts)
        span = [(i, st) for i, st in pts if abs(st - ref) <= _PITCH_OUTLIER_ST][-_RISE_SPAN:]
        if len(span) < _RISE_END + 1 or pause_index - span[-1][0] > _RISE_MAX_GAP:
            return None, False
        v = _median3([st for _, st in span])
        end = sum(v[-_RISE_END:]) / _RISE_END
        valley = v.index(min(v))
        rise = end - v[valley]
        return rise, rise >= self.config.rise_semitones and max(v[valley:]) - end <= _FALL_MAX_ST

    _end_question = False

    def _on_tone(self, ev: ToneEvent, now: int) -> AmdDecision | None:
        self._tone_events.append(ev)
        rule = _TONE_RULES.get(type(ev))
        if rule is None:
            return None
        result, name = rule
        if isinstance(ev, FaxTone) and ev.kind is FaxKind.CNG and self._spoken_ms() >= _CNG_AFTER_SPEECH_MS:
            return None  # 1100 Hz after real speech is a greeting's beep-like tone, not a fax
        return self._decide(result, now, name)

    def _spoken_ms(self) -> int:
        done = sum(s.duration_ms for s in self._speech)
        if self.state is _State.SPEAKING:
            done += self._last_ms - self._seg_start
        return done

    def _decide(self, result: AmdResult, now: int, rule: str) -> AmdDecision:
        self.state = _State.DONE
        evidence = AmdEvidence(
            speech=tuple(self._speech), silences=tuple(self._silences),
            tones=tuple(self._tone_events),
            noise_floor_dbfs=None if self._floor is None else round(self._floor, 1),
            detail={"greeting_ms": float(max(0, now - self._greeting_start * FRAME_MS)) if self._greeting_start >= 0 else 0.0,
                    **({"end_rise_st": round(self._end_rise, 2)} if self._end_rise is not None else {}),
                    **({"snr_db": round(self._snr, 1), "silence_needed_ms": float(self._needed_ms)}
                       if self._snr is not None else {})},
        )
        self.decision = AmdDecision(result, now, rule, evidence)
        return self.decision
