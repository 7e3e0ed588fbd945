"""Single-tone signalling after answer: voicemail beeps, special information tones, fax.

Rules of the segmenter (one state per frame, fed by the shared front end):

* a frame is *tonal* when its spectral peak (300–3400 Hz) holds ``min_tonality`` of its
  power within ±100 Hz and it is louder than ``min_level_dbfs``;
* consecutive tonal frames whose peak stays within ``max_drift_hz`` of the segment's
  frequency form one :class:`ToneSegment`; its start and end are refined to 5 ms from
  block energies, so a beep's end is known to ±5 ms, not ±20;
* a closed segment is classified, first rule that matches wins (a table, not if-chains):

  1. third of three segments 950/1400/1800 Hz ±50, each 200–460 ms, gaps ≤ 60 ms → SIT
     (ITU-T E.180 §2.2: 330 ± 70 ms, gaps ≤ 30 ms; Bellcore 274/380 ms; +20 ms framing);
  2. 1100 ± 38 Hz, 400–700 ms → fax CNG (ITU-T T.30 §4.1.2: 0.5 s ± 15 %, 1100 ± 38 Hz);
  3. 400–2000 Hz, ≥ 90 ms, ≤ 3 s, peak wandering ≤ 8 Hz over the segment's inner frames,
     as pure as a generator's sine (``beep_min_tonality``), then ``beep_silence_ms`` quiet
     → voicemail beep (the issue's definition; 90 ms leaves
     10 ms for the 5 ms end refinement; the wander limit is what keeps held vowels out).
     In segments of ≥ ``_INNER_MIN_FRAMES`` frames the first and last frame are left out
     of the wander: they hold part tone, part silence, and the window's truncation pulls
     their peak estimate by up to ±12 Hz (it lost three beeps of corpus seed 2). Shorter
     segments keep the whole range: a held vowel can sit still for 3–4 inner frames;

* CNG needs a line that was quiet before the tone: a calling fax sends CNG from the
  start (T.30 §4.1.2), so a 1100 Hz tone after ``_CNG_AFTER_SOUND_MS`` of other sound
  (a greeting) is a voicemail beep at that pitch, not a fax;

* a segment at 2100 ± 30 Hz lasting 500 ms is fax CED (T.30 §4.1.3 / V.25: 2100 ± 15 Hz,
  2.6–4 s; 500 ms is enough to tell it from anything else and decides early).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np

from .events import Beep, FaxKind, FaxTone, Sit, SitKind, ToneEvent, ToneSegment
from .features import FrameClock, FrameFeatures, follow_floor
from .pcm import FRAME_MS, FULL_SCALE, Frame

_BLOCK: Final = 40  # 5 ms refinement blocks
_BLOCKS: Final = 4
_BLOCK_MS: Final = 5
# "Silence" after a beep means line noise: within 6 dB of the noise floor, which follows
# the quietest frames at once and rises 3 dB/s (the AMD's voice detector does the same).
_FLOOR_RISE_DB: Final = 3.0 * 0.020
_QUIET_OVER_FLOOR_DB: Final = 6.0
#: Voice-band (250–1000 Hz) sound this far over its floor counts as "the line was not
#: quiet" (the AMD's speech threshold; the whole band's level would count brown line
#: noise, which swings it by 10 dB from frame to frame) …
_SOUND_OVER_FLOOR_DB: Final = 9.0
#: … and over this absolute level (the AMD's ``speech_min_dbfs``: below it a quiet line's
#: rounding noise swings by 10 dB too)
_SOUND_MIN_DBFS: Final = -62.0
#: … and after this much of it a CNG-like tone is a beep (the AMD's own limit for CNG).
_CNG_AFTER_SOUND_MS: Final = 500
#: Wander over inner frames only from this many frames (140 ms) on: on corpus seeds 1–4,
#: voiced speech made tonal runs of ≤ 6 frames (inner wander down to 4.4 Hz), beeps of
#: ≥ 7 frames wandered ≤ 5.7 Hz inside.
_INNER_MIN_FRAMES: Final = 7

# SIT segment windows: ITU-T E.180 nominal ±50 Hz; Bellcore frequencies fall inside them.
_SIT_BANDS: Final = ((900.0, 1000.0), (1350.0, 1450.0), (1750.0, 1850.0))
_SIT_DURATION_MS: Final = (200, 460)
_SIT_MAX_GAP_MS: Final = 60
# Bellcore (GR-1162 as summarised in the 1983 recorder/announcer manual): segment 1 low
# 913.8 / high 985.2 Hz, segment 2 low 1370.6 / high 1428.5 Hz; segment 3 always 1776.7.
_SIT_SPLIT: Final = (949.5, 1399.55)  # midpoints between Bellcore low and high
_SIT_PATTERN: Final = {
    (False, False): SitKind.INTERCEPT,
    (True, False): SitKind.VACANT_CODE,
    (True, True): SitKind.NO_CIRCUIT,
    (False, True): SitKind.REORDER,
}
#: Within this of 950 and 1400 Hz both, the tones are the plain ITU ones, not Bellcore.
_ITU_TOLERANCE_HZ: Final = 12.0


@dataclass(frozen=True, slots=True)
class ToneConfig:
    min_tonality: float = 0.8  # share of frame power within ±100 Hz of the peak
    min_level_dbfs: float = -55.0  # quieter than this is not signalling worth trusting
    max_drift_hz: float = 20.0  # a beep generator is crystal-stable; speech harmonics glide
    beep_min_ms: int = 90
    beep_max_ms: int = 3000
    beep_band_hz: tuple[float, float] = (400.0, 2000.0)
    beep_max_spread_hz: float = 8.0  # frame-to-frame peak wander; voices glide more
    # a generator's sine keeps all of its lobe but the line noise's share; voiced speech
    # whose one harmonic dominates a frame (a low "Dzień" band-limited at 300 Hz) kept
    # 84–91 % on quiet lines (corpus seeds 1–8): on a quiet line a beep needs this much,
    # on a noisy one 1 − 2 × the noise's share (see ToneDetector._pure_enough)
    beep_min_tonality: float = 0.93
    beep_silence_ms: int = 40  # quiet needed after the tone before "beep ended" is said
    beep_quiet_db: float = 12.0  # "quiet" = this far below the tone
    cng_hz: tuple[float, float] = (1062.0, 1138.0)
    cng_ms: tuple[int, int] = (400, 700)
    ced_hz: tuple[float, float] = (2070.0, 2130.0)
    ced_ms: int = 500

    def __post_init__(self) -> None:
        if not 0 < self.min_tonality <= 1:
            raise ValueError("tones.min_tonality: expected a fraction in (0, 1]")
        if not self.min_tonality <= self.beep_min_tonality <= 1:
            raise ValueError("tones.beep_min_tonality: expected a fraction in [min_tonality, 1]")
        if self.beep_min_ms < 20 or self.beep_max_ms <= self.beep_min_ms:
            raise ValueError("tones.beep_min_ms/beep_max_ms: need 20 ≤ min < max")


def _block_energies(ft: FrameFeatures) -> list[float]:
    x = ft.samples
    return (x * x).reshape(_BLOCKS, _BLOCK).sum(axis=1).tolist()


class _Run:
    __slots__ = ("first", "last", "freq_sum", "n", "level_sum", "first_ft", "last_ft", "ced_sent",
                 "fmin", "fmax", "inner_min", "inner_max", "inner_tonality", "last_hz", "last_tonality",
                 "sound_before_ms")

    def __init__(self, ft: FrameFeatures) -> None:
        self.first = self.last = ft.index
        self.freq_sum = ft.peak_hz
        self.level_sum = ft.level_db
        self.n = 1
        self.first_ft = self.last_ft = ft
        self.ced_sent = False
        self.fmin = self.fmax = ft.peak_hz
        # peak range of the inner frames (not the first, not the current last one)
        self.inner_min = float("inf")
        self.inner_max = float("-inf")
        self.inner_tonality = 0.0  # summed over the inner frames
        self.last_hz = ft.peak_hz
        self.last_tonality = ft.tonality
        self.sound_before_ms = 0  # non-tonal sound on the line before this tone began

    @property
    def spread(self) -> float:
        """Peak wander: over the inner frames of a long run, else over all of them."""
        if self.n >= _INNER_MIN_FRAMES:
            return self.inner_max - self.inner_min
        return self.fmax - self.fmin

    @property
    def purity(self) -> float:
        """Mean tonality of the inner frames (of the edge frames when there are none)."""
        if self.n > 2:
            return self.inner_tonality / (self.n - 2)
        return (self.first_ft.tonality + self.last_tonality) / 2

    @property
    def freq(self) -> float:
        return self.freq_sum / self.n

    @property
    def level(self) -> float:
        return self.level_sum / self.n


class ToneDetector:
    """Streaming beep / SIT / fax-tone detector: ``feed(frame) -> list[ToneEvent]``."""

    def __init__(self, config: ToneConfig | None = None) -> None:
        self.config = config or ToneConfig()
        self._clock = FrameClock()
        self._run: _Run | None = None
        self._segments: list[ToneSegment] = []  # recent closed segments (for SIT)
        self._pending: ToneSegment | None = None  # beep candidate waiting for its silence
        self._pending_quiet_ms = 0
        self._pending_purity = 0.0  # inner tonality of the pending tone
        self._pending_noise = 0.0  # summed power of the quiet frames after it
        self._floor: float | None = None  # line noise level (min-follower), dBFS
        self._voice_floor: float | None = None  # … and in the voice band
        self._sound_ms = 0  # non-tonal sound heard so far (a greeting before a tone)
        self._closing: _Run | None = None  # the run being classified by the rules (its wander, purity)

    def feed(self, frame: Frame) -> list[ToneEvent]:
        return self.feed_features(self._clock.features(frame))

    def finish(self) -> list[ToneEvent]:
        out: list[ToneEvent] = []
        if self._run is not None:
            self._close(out, self._run.last + 1)
        if self._pending is not None:  # audio ended in silence after the tone: that is a beep
            seg, self._pending = self._pending, None
            if self._pure_enough(seg):
                out.append(Beep(seg, seg.end_ms + max(0, self._pending_quiet_ms)))
        return out

    def feed_features(self, ft: FrameFeatures) -> list[ToneEvent]:
        cfg = self.config
        out: list[ToneEvent] = []
        tonal = ft.tonality >= cfg.min_tonality and ft.level_db >= cfg.min_level_dbfs
        self._floor = follow_floor(self._floor, ft.level_db, _FLOOR_RISE_DB)
        voice_floor = self._voice_floor
        self._voice_floor = follow_floor(voice_floor, ft.voice_db, _FLOOR_RISE_DB)
        run = self._run
        if run is not None and tonal and abs(ft.peak_hz - run.freq) <= cfg.max_drift_hz:
            run.last, run.last_ft = ft.index, ft
            run.freq_sum += ft.peak_hz
            run.level_sum += ft.level_db
            run.n += 1
            run.fmin = min(run.fmin, ft.peak_hz)
            run.fmax = max(run.fmax, ft.peak_hz)
            if run.n > 2:  # the previous last frame is now an inner one
                run.inner_min = min(run.inner_min, run.last_hz)
                run.inner_max = max(run.inner_max, run.last_hz)
                run.inner_tonality += run.last_tonality
            run.last_hz = ft.peak_hz
            run.last_tonality = ft.tonality
            if run.n == 2:
                self._pending = None  # another tone follows: not a beep (SIT, multi-tone)
            if (not run.ced_sent and cfg.ced_hz[0] <= run.freq <= cfg.ced_hz[1]
                    and (run.n * FRAME_MS) >= cfg.ced_ms):
                run.ced_sent = True
                seg = ToneSegment(run.first * FRAME_MS, ft.end_ms, round(run.freq, 1), round(run.level, 1))
                out.append(FaxTone(FaxKind.CED, seg, ft.end_ms))
            return out
        if run is not None:
            self._close(out, ft.index)
        if self._pending is not None:
            quiet = (ft.level_db <= self._pending.level_dbfs - cfg.beep_quiet_db
                     or (self._floor is not None and ft.level_db <= self._floor + _QUIET_OVER_FLOOR_DB)
                     or (voice_floor is not None and ft.voice_db < voice_floor + _SOUND_OVER_FLOOR_DB))
            if self._pending_quiet_ms < 0:
                self._pending_quiet_ms = 0  # the frame the tone ended in: holds its tail
            elif not quiet or (tonal and ft.level_db > self._pending.level_dbfs - cfg.beep_quiet_db):
                # not followed by silence: speech or another tone (a lone "tonal" frame of
                # brown noise at 300 Hz, 15 dB under the beep, is neither)
                self._pending = None
            else:
                self._pending_quiet_ms += FRAME_MS
                self._pending_noise += ft.power
                if self._pending_quiet_ms >= cfg.beep_silence_ms:
                    seg, self._pending = self._pending, None
                    if self._pure_enough(seg):
                        out.append(Beep(seg, ft.end_ms))
        if tonal:
            self._run = _Run(ft)
            self._run.sound_before_ms = self._sound_ms
        elif (voice_floor is not None and ft.voice_db >= voice_floor + _SOUND_OVER_FLOOR_DB
              and ft.voice_db >= _SOUND_MIN_DBFS):
            self._sound_ms += FRAME_MS
        return out

    def _close(self, out: list[ToneEvent], next_index: int) -> None:
        run, self._run = self._run, None
        assert run is not None
        if run.n < 2:
            return
        seg = self._refine(run)
        self._closing = run
        self._segments = (self._segments + [seg])[-3:]
        for rule in _RULES:
            if rule(self, seg, out, next_index):
                return

    def _refine(self, run: _Run) -> ToneSegment:
        """Start/end to 5 ms: blocks of the edge frames within 6 dB of the tone's level."""
        first, last = _block_energies(run.first_ft), _block_energies(run.last_ft)
        ref = max(max(first), max(last)) * 0.25
        lead = next((i for i, e in enumerate(first) if e >= ref), 0)
        tail = next((i for i, e in enumerate(reversed(last)) if e >= ref), 0)
        return ToneSegment(
            run.first * FRAME_MS + lead * _BLOCK_MS,
            (run.last + 1) * FRAME_MS - tail * _BLOCK_MS,
            round(run.freq, 1), round(run.level, 1),
        )

    # -- classification rules, tried in order ---------------------------------------
    def _rule_sit(self, seg: ToneSegment, out: list[ToneEvent], next_index: int) -> bool:
        segs = self._segments
        if len(segs) < 3:
            return False
        s = segs[-3:]
        lo, hi = _SIT_DURATION_MS
        for (f_lo, f_hi), t in zip(_SIT_BANDS, s):
            if not (f_lo <= t.frequency_hz <= f_hi and lo <= t.duration_ms <= hi):
                return False
        if any(b.start_ms - a.end_ms > _SIT_MAX_GAP_MS for a, b in zip(s, s[1:])):
            return False
        f1, f2 = s[0].frequency_hz, s[1].frequency_hz
        if abs(f1 - 950) <= _ITU_TOLERANCE_HZ and abs(f2 - 1400) <= _ITU_TOLERANCE_HZ:
            kind = SitKind.ITU
        else:
            kind = _SIT_PATTERN[(f1 > _SIT_SPLIT[0], f2 > _SIT_SPLIT[1])]
        out.append(Sit(kind, (s[0], s[1], s[2]), next_index * FRAME_MS))
        self._segments = []
        return True

    def _rule_cng(self, seg: ToneSegment, out: list[ToneEvent], next_index: int) -> bool:
        cfg = self.config
        run = self._closing
        assert run is not None
        if run.sound_before_ms >= _CNG_AFTER_SOUND_MS:
            return False  # after a greeting: a beep at 1100 Hz (rule 3), not a fax
        if cfg.cng_hz[0] <= seg.frequency_hz <= cfg.cng_hz[1] and cfg.cng_ms[0] <= seg.duration_ms <= cfg.cng_ms[1]:
            out.append(FaxTone(FaxKind.CNG, seg, next_index * FRAME_MS))
            return True
        return False

    def _rule_beep(self, seg: ToneSegment, out: list[ToneEvent], next_index: int) -> bool:
        cfg = self.config
        run = self._closing
        assert run is not None
        if (cfg.beep_band_hz[0] <= seg.frequency_hz <= cfg.beep_band_hz[1]
                and cfg.beep_min_ms <= seg.duration_ms <= cfg.beep_max_ms
                and run.spread <= cfg.beep_max_spread_hz):
            self._pending = seg
            self._pending_quiet_ms = -FRAME_MS
            self._pending_purity = run.purity
            self._pending_noise = 0.0
            return True
        return False

    def _pure_enough(self, seg: ToneSegment) -> bool:
        """Is the pending tone as pure as a sine would be on this line? Line noise takes
        its share of every frame: a sine ``x`` dB over the noise keeps ``1 − 10^(−x/10)``
        of the power in its lobe. The tone's inner frames must keep all but twice the
        noise's share (the noise measured in the quiet frames after it), and
        ``beep_min_tonality`` on a quiet line — a voice's single harmonic falls short."""
        cfg = self.config
        quiet_frames = max(0, self._pending_quiet_ms) // FRAME_MS
        noise = self._pending_noise / quiet_frames / (FULL_SCALE * FULL_SCALE) if quiet_frames else 0.0
        share = noise / 10.0 ** (seg.level_dbfs / 10.0)
        needed = min(cfg.beep_min_tonality, max(cfg.min_tonality, 1.0 - 2.0 * share))
        return self._pending_purity >= needed


_RULES: Final = (ToneDetector._rule_sit, ToneDetector._rule_cng, ToneDetector._rule_beep)


def tone_signal(freq_hz: float, ms: float, amplitude: float = 8000.0, phase: float = 0.0) -> np.ndarray:
    """A steady sine at 8 kHz (test and corpus helper)."""
    t = np.arange(int(round(ms * 8))) / 8000.0
    return amplitude * np.sin(2 * np.pi * freq_hz * t + phase)
