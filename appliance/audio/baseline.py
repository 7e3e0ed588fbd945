"""The field's default, as a yardstick: Asterisk's ``AMD()`` (app_amd.c), re-implemented
from its documentation and behaviour, with the same interface as :class:`.AmdDetector`.

Per 20 ms frame: the frame is silent when its mean absolute sample is below
``silence_threshold`` (Asterisk ``ast_dsp_silence``). Silence and voice durations are
counted; a word is ``min_word_length`` of consecutive voice after ≥ ``between_words_silence``
of silence. Verdicts (``AMDCAUSE``): INITIALSILENCE → MACHINE, HUMAN after
``after_greeting_silence``, LONGGREETING, MAXWORDLENGTH and MAXWORDS → MACHINE, TOOLONG →
NOTSURE. Defaults are ``amd.conf.sample``'s. It knows nothing of tones or fax.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .events import AmdDecision, AmdEvidence, AmdResult, Segment
from .features import FrameClock, FrameFedDetector, FrameFeatures
from .pcm import FRAME_MS, FRAME_SAMPLES


@dataclass(frozen=True, slots=True)
class AsteriskAmdConfig:
    """Asterisk ``amd.conf.sample`` defaults (docs.asterisk.org, Dialplan_Applications/AMD)."""

    initial_silence: int = 2500
    greeting: int = 1500
    after_greeting_silence: int = 800
    total_analysis_time: int = 5000
    min_word_length: int = 100
    between_words_silence: int = 50
    maximum_number_of_words: int = 3  # amd.conf.sample ships 2 in some releases, 3 in others
    silence_threshold: int = 256  # mean |sample| on the s16 scale
    maximum_word_length: int = 5000


class AsteriskAmd(FrameFedDetector):
    """Asterisk AMD() state machine, fed frame by frame like our detector."""

    def __init__(self, config: AsteriskAmdConfig | None = None) -> None:
        self.config = config or AsteriskAmdConfig()
        self._clock = FrameClock()
        self.decision: AmdDecision | None = None
        self._total = 0
        self._silence = 0  # the DSP's running silence, ms
        self._silence_duration = 0  # AMD's silenceDuration (reset only after a real word)
        self._voice = 0
        self._consecutive_voice = 0
        self._words = 0
        self._in_word = True  # Asterisk starts in STATE_IN_WORD
        self._in_initial_silence = True
        self._in_greeting = False
        self._speech: list[Segment] = []
        self._voice_start = -1

    def finish(self) -> list[AmdDecision]:
        if self.done:
            return []
        return [self._decide(AmdResult.UNSURE, "TOOLONG")]

    def feed_features(self, ft: FrameFeatures, tone_events: object = None) -> list[AmdDecision]:
        if self.decision is not None:
            return []
        cfg = self.config
        self._total += FRAME_MS
        if self._total >= cfg.total_analysis_time:
            return [self._decide(AmdResult.UNSURE, "TOOLONG")]
        mean_abs = int(np.abs(ft.samples).sum()) // FRAME_SAMPLES
        if mean_abs < cfg.silence_threshold:
            self._silence += FRAME_MS
            self._silence_duration = self._silence
            if self._voice_start >= 0:
                self._speech.append(Segment(self._voice_start, ft.start_ms))
                self._voice_start = -1
            if self._silence_duration >= cfg.between_words_silence:
                self._in_word = False
                self._consecutive_voice = 0
            if self._in_initial_silence and self._silence_duration >= cfg.initial_silence:
                return [self._decide(AmdResult.MACHINE, "INITIALSILENCE")]
            if self._silence_duration >= cfg.after_greeting_silence and self._in_greeting:
                return [self._decide(AmdResult.HUMAN, "HUMAN")]
            return []
        self._silence = 0
        if self._voice_start < 0:
            self._voice_start = ft.start_ms
        self._consecutive_voice += FRAME_MS
        self._voice += FRAME_MS
        if self._consecutive_voice >= cfg.min_word_length and not self._in_word:
            self._words += 1
            self._in_word = True
        if self._consecutive_voice >= cfg.maximum_word_length:
            return [self._decide(AmdResult.MACHINE, "MAXWORDLENGTH")]
        if self._words >= cfg.maximum_number_of_words:
            return [self._decide(AmdResult.MACHINE, "MAXWORDS")]
        if self._in_greeting and self._voice >= cfg.greeting:
            return [self._decide(AmdResult.MACHINE, "LONGGREETING")]
        if self._voice >= cfg.min_word_length:
            self._silence_duration = 0
        if self._consecutive_voice >= cfg.min_word_length and not self._in_greeting:
            self._in_initial_silence = False
            self._in_greeting = True
        return []

    def _decide(self, result: AmdResult, cause: str) -> AmdDecision:
        if self._voice_start >= 0:
            self._speech.append(Segment(self._voice_start, self._total))
        self.decision = AmdDecision(result, self._total, cause, AmdEvidence(
            speech=tuple(self._speech),
            detail={"words": float(self._words), "voice_ms": float(self._voice)},
        ))
        return [self.decision][0]
