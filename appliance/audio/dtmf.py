"""In-band DTMF receiver: Goertzel-style correlations on 5 ms blocks, Q.24 rules.

How it decides (ITU-T Q.24 Annex A as commonly implemented — spandsp ``dtmf.c`` and
Asterisk ``dsp.c`` use the same figures):

* Each frame is split into four 5 ms blocks; for each block the front end's one matrix
  product gives the complex correlation with the eight DTMF frequencies (a Goertzel
  filter's output, computed as a dot product). Three consecutive blocks sum to a 15 ms
  analysis window sliding by 5 ms: 15 ms puts the nulls of neighbouring row tones
  (73–89 Hz apart) at −14 … −21 dB while losing under 2 dB at a 1.5 % offset.
* A window *hits* a key when its best row and best column tone hold ``min_tone_ratio`` of
  the window's energy, each neighbour in its group is ``relative_peak_db`` below the best,
  and each tone is above ``min_level_dbfs``.
* The frequency of each tone is measured from the phase advance between consecutive
  windows (5 ms apart), averaged over the tone: a tone more than ``max_freq_error``
  (2.5 %, between Q.24's 1.5 % accept and 3.5 % reject) from nominal is rejected.
* The same phase steps must agree with each other (``min_coherence``): a generator's
  tone advances by the same phase every 5 ms, a voice's harmonic glides — this, with the
  energy share, is the talk-off guard.
* Speech is a harmonic series, a key is not: when the two tones could be harmonics
  *m* and *n* of one voice pitch (60–400 Hz; a greeting's "4" was harmonics 5 and 8
  of 153 Hz), the harmonics beside them (*m* ± 1, *n* ± 1) must be
  ``max_harmonic_db`` below the weaker tone. Measured once the tone has ended, at its
  measured frequencies, on its longest unbroken stretch (a bridged drop-out's phase
  jump would splatter energy into the neighbours) — once per candidate key, cheap.
* Twist is checked on the offset-corrected levels: the low group may be up to 8 dB
  louder ("normal", after line loss of the high group) and the high group up to 4 dB
  louder ("reverse") — spandsp/Asterisk ``DTMF_NORMAL_TWIST``/``DTMF_REVERSE_TWIST``.
* Duration is measured on block energy at 5 ms resolution: tones of ≥ 40 ms pass, ≤ 23 ms
  fail (threshold ``min_duration_ms`` = 30 ms between them); drop-outs up to 10 ms are
  bridged, so a key is reported once.

A digit is reported when its tone has ended (≤ ~30 ms later), with measured start, end,
frequencies and twist.
"""
from __future__ import annotations

import cmath
import math
from collections import deque
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from .events import DTMF_KEYS, DtmfDigit
from .features import FrameClock, FrameFeatures
from .goertzel import BLOCK, BLOCKS_PER_FRAME, FREQS
from .pcm import FRAME_SAMPLES, FULL_SCALE, SAMPLE_RATE, Frame

WINDOW_BLOCKS: Final = 3  # 15 ms analysis window
WINDOW: Final = WINDOW_BLOCKS * BLOCK
BLOCK_MS: Final = 1000 * BLOCK // SAMPLE_RATE
_PHASE_TO_HZ: Final = SAMPLE_RATE / (2 * math.pi * BLOCK)  # phase advance per block → Hz
_FS2: Final = FULL_SCALE * FULL_SCALE


@dataclass(frozen=True, slots=True)
class DtmfConfig:
    """Receiver parameters; defaults are ITU-T Q.24 / spandsp figures (see module doc)."""

    min_duration_ms: int = 30  # between Q.24's 23 ms must-reject and 40 ms must-accept
    bridge_ms: int = 10  # Q.24: interruptions ≤ 10 ms do not split a digit
    max_freq_error: float = 0.025  # between ±1.5 % accept and ±3.5 % reject
    normal_twist_db: float = 8.0  # low group louder (spandsp DTMF_NORMAL_TWIST)
    reverse_twist_db: float = 4.0  # high group louder (spandsp DTMF_REVERSE_TWIST)
    relative_peak_db: float = 8.0  # spandsp DTMF_RELATIVE_PEAK_ROW/COL
    min_tone_ratio: float = 0.7  # both tones' share of the window energy (talk-off guard;
    # 0.5 let espeak vowels through as '*', '9', '5' on corpus seed 1, 0.65 two on seed 2)
    min_coherence: float = 0.9  # |Σ phase steps| / Σ |phase steps|: 1 for a steady tone
    min_level_dbfs: float = -50.0  # each tone; Q.24 receivers work to about −36 dBm0 + margin
    # talk-off guard (module doc): on the 2,560-file corpus generated keys' neighbouring
    # "harmonics" held ≤ −20 dB (white noise at 12 dB SNR), speech that passed every
    # other rule ≥ −8 dB: the threshold sits between
    max_harmonic_db: float = -14.0

    def __post_init__(self) -> None:
        if not 0 < self.max_freq_error < 0.1:
            raise ValueError("dtmf.max_freq_error: expected a fraction in (0, 0.1)")
        if not 0 < self.min_tone_ratio <= 1:
            raise ValueError("dtmf.min_tone_ratio: expected a fraction in (0, 1]")
        if not -60.0 <= self.max_harmonic_db <= 0.0:
            raise ValueError("dtmf.max_harmonic_db: expected dB in −60…0")
        if self.min_duration_ms < 10 or self.bridge_ms < 0:
            raise ValueError("dtmf.min_duration_ms must be ≥ 10 and bridge_ms ≥ 0")


_HALF: Final = BLOCKS_PER_FRAME * len(FREQS)
# e^{-jω·160·m}: the DTMF frequencies are whole hertz and a frame is 1/50 s, so the phase
# of frame m at each frequency repeats every 50 frames — exact, no drift over long calls.
_PERIOD: Final = 50
_ROTATION: Final = np.exp(
    -2j * np.pi * np.outer(np.arange(_PERIOD), FREQS) * FRAME_SAMPLES / SAMPLE_RATE
)
_GATE_ROW: Final = slice(int(650 / 50) - 2, int(1000 / 50) - 2 + 1)  # spectrum indices
_GATE_COL: Final = slice(int(1150 / 50) - 2, int(1700 / 50) - 2 + 1)
#: Front-end gate: a frame is looked at closely when its two strongest bins, one per
#: group, hold this share of its power (a DTMF tone holds ~0.5–0.7; most speech far less).
_GATE_RATIO: Final = 0.25
_GATE_LEVEL_DB: Final = -60.0
#: Frames kept for the harmonic check: a digit is finalised ≤ ~30 ms after its tone
#: ends, so 320 ms holds a whole ordinary key (40–200 ms) and the last part of a held one.
_RECENT_FRAMES: Final = 16
#: Voice pitch range of the harmonic check, and how close the higher tone must sit to a
#: harmonic of the pitch the lower one implies (a fraction of that pitch).
_VOICE_F0: Final = (60.0, 400.0)
_HARMONIC_FIT: Final = 0.06
_BAND: Final = (250.0, 3400.0)  # neighbours outside the telephone band are not looked at


def harmonic_neighbour_db(samples: npt.NDArray[np.float32], low_hz: float, high_hz: float) -> float | None:
    """Loudest neighbouring harmonic, in dB re the weaker of the two tones, over every
    voice pitch for which both tones are harmonics (``None``: no such pitch).

    A voice with pitch f0 puts energy at every k·f0; two of its harmonics can look like
    a key for 40 ms, their neighbours are what give it away. A generated key has
    nothing there but line noise."""
    pitches: list[tuple[float, tuple[int, ...]]] = []
    for m in range(max(2, math.ceil(low_hz / _VOICE_F0[1])), int(low_hz / _VOICE_F0[0]) + 1):
        f0 = low_hz / m
        n = round(high_hz / f0)
        if n <= m or abs(high_hz / f0 - n) > _HARMONIC_FIT:
            continue
        f0 = (low_hz + high_hz) / (m + n)  # both tones' evidence
        pitches.append((f0, tuple(k for k in (m - 1, m + 1, n - 1, n + 1)
                                  if k not in (m, n) and _BAND[0] <= k * f0 <= _BAND[1])))
    freqs = [f0 * k for f0, ks in pitches for k in ks]
    if not freqs or len(samples) < BLOCK:
        return None
    x = samples.astype(np.float64) * np.hanning(len(samples))
    t = np.arange(len(samples)) / SAMPLE_RATE
    ang = 2 * np.pi * np.outer([low_hz, high_hz, *freqs], t)
    # element-wise products, not a matrix product: BLAS would start its threads for
    # a matrix this size, and their spinning costs more than the sums
    c, s = (np.cos(ang) * x).sum(axis=1), (np.sin(ang) * x).sum(axis=1)
    p = c * c + s * s
    weaker = min(p[0], p[1])
    if weaker <= 0.0:
        return None
    return 10 * math.log10(max(float(p[2:].max()), 1e-30) / weaker)


class _Run:
    """One key being received: accumulated evidence until its tone ends."""

    __slots__ = ("key", "first_block", "last_hit", "hits", "misses", "prod", "mag", "pow", "ref", "streak", "best")

    def __init__(self, key: int, block: int) -> None:
        self.key = key
        self.first_block = block
        self.last_hit = block
        self.hits = 0
        self.misses = 0
        self.prod = [0j, 0j]
        self.mag = [0.0, 0.0]
        self.pow = [0.0, 0.0]
        self.ref = 0.0
        self.streak = block  # first hit of the current unbroken run of hits
        self.best = (block, block)  # longest unbroken run of hits: the cleanest stretch of tone


class DtmfDetector:
    """Streaming DTMF receiver: ``feed(frame) -> list[DtmfDigit]``, then ``finish()``."""

    def __init__(self, config: DtmfConfig | None = None) -> None:
        self.config = cfg = config or DtmfConfig()
        self._clock = FrameClock()
        self._ratio = cfg.min_tone_ratio
        self._peak = 10 ** (-cfg.relative_peak_db / 10)
        # tone power (A²/2) floor on the s16 scale
        self._min_pow = _FS2 * 10 ** (cfg.min_level_dbfs / 10)
        self._max_misses = max(2, (cfg.bridge_ms + 2 * BLOCK_MS) // BLOCK_MS + 1)
        self._min_blocks = math.ceil(cfg.min_duration_ms / BLOCK_MS)
        self._prev: FrameFeatures | None = None
        self._prev_done = False
        self._tail_s: npt.NDArray[np.complex128] = np.zeros((WINDOW_BLOCKS - 1, 8), complex)
        self._tail_e: npt.NDArray[np.float64] = np.zeros(WINDOW_BLOCKS - 1)
        self._last_w: npt.NDArray[np.complex128] | None = None
        self._last_key = -1
        self._energy: dict[int, float] = {}
        self._run: _Run | None = None
        self._recent: deque[FrameFeatures] = deque(maxlen=_RECENT_FRAMES)

    # -- streaming interface -------------------------------------------------------
    def feed(self, frame: Frame) -> list[DtmfDigit]:
        return self.feed_features(self._clock.features(frame))

    def finish(self) -> list[DtmfDigit]:
        """End of audio: report a key still sounding (if it already qualifies)."""
        out: list[DtmfDigit] = []
        if self._run is not None:
            self._finalize(out)
        return out

    def feed_features(self, ft: FrameFeatures) -> list[DtmfDigit]:
        out: list[DtmfDigit] = []
        self._recent.append(ft)
        if self._run is None and not self._gate(ft):
            self._prev, self._prev_done = ft, False
            return out
        if self._prev is not None and not self._prev_done:
            self._analyse(self._prev, out)  # the tone may have begun in the previous frame
        self._analyse(ft, out)
        self._prev, self._prev_done = ft, True
        return out

    # -- internals -----------------------------------------------------------------
    @staticmethod
    def _gate(ft: FrameFeatures) -> bool:
        if ft.level_db < _GATE_LEVEL_DB:
            return False
        spec = ft.spectrum
        return float(spec[_GATE_ROW].max() + spec[_GATE_COL].max()) >= _GATE_RATIO * ft.total

    def _analyse(self, ft: FrameFeatures, out: list[DtmfDigit]) -> None:
        y = ft.dtmf
        s = ((y[:_HALF] - 1j * y[_HALF:]).reshape(BLOCKS_PER_FRAME, 8)) * _ROTATION[ft.index % _PERIOD]
        x = ft.samples
        e = (x * x).reshape(BLOCKS_PER_FRAME, BLOCK).sum(axis=1).astype(np.float64)
        blocks = np.concatenate([self._tail_s, s])
        energies = np.concatenate([self._tail_e, e])
        self._tail_s, self._tail_e = blocks[-(WINDOW_BLOCKS - 1) :], energies[-(WINDOW_BLOCKS - 1) :]
        w = blocks[0:4] + blocks[1:5] + blocks[2:6]
        we = energies[0:4] + energies[1:5] + energies[2:6]
        p = (w.real * w.real + w.imag * w.imag) * (2.0 / (WINDOW * WINDOW))  # tone power A²/2
        pr, pc = p[:, :4], p[:, 4:]
        first_block = ft.index * BLOCKS_PER_FRAME
        if self._run is None:
            # Cheap necessary test first: even the strongest row and column together
            # must hold the tone ratio of some window. Speech that passed the gate
            # almost never does, and leaves here without the peak bookkeeping below.
            strongest = (pr.max(axis=1) + pc.max(axis=1)) * WINDOW >= self._ratio * we
            if not strongest.any():
                self._no_tone(first_block, e, w)
                return
        r = pr.argmax(axis=1)
        c = pc.argmax(axis=1)
        idx = np.arange(4)
        br, bc = pr[idx, r], pc[idx, c]
        pr2 = pr.copy()
        pr2[idx, r] = 0
        pc2 = pc.copy()
        pc2[idx, c] = 0
        hit = (
            (br >= self._min_pow) & (bc >= self._min_pow)
            & ((br + bc) * WINDOW >= self._ratio * we)
            & (pr2.max(axis=1) <= br * self._peak) & (pc2.max(axis=1) <= bc * self._peak)
        )
        if self._run is None and not hit.any():
            self._no_tone(first_block, e, w)
            return
        self._remember(first_block, e)
        keys = (r * 4 + c).tolist()
        hits = hit.tolist()
        for i in range(4):
            block = first_block + i
            key = keys[i] if hits[i] else -1
            run = self._run
            if run is not None and key != run.key:
                run.misses += 1
                if run.misses >= self._max_misses or key >= 0:
                    self._finalize(out)
                    run = None
            if key >= 0:
                if run is None:
                    run = self._run = _Run(key, block)
                    run.ref = float(we[i]) / WINDOW_BLOCKS
                if block - run.last_hit > 1:
                    run.streak = block
                if block - run.streak > run.best[1] - run.best[0]:
                    run.best = (run.streak, block)
                run.hits += 1
                run.misses = 0
                run.last_hit = block
                rk, ck = key // 4, 4 + key % 4
                wi = w[i]
                run.pow[0] += float(p[i, rk])
                run.pow[1] += float(p[i, ck])
                run.ref = max(run.ref, float(we[i]) / WINDOW_BLOCKS)
                if self._last_key == key and self._last_w is not None:
                    a = complex(wi[rk] * self._last_w[rk].conjugate())
                    b = complex(wi[ck] * self._last_w[ck].conjugate())
                    run.prod[0] += a
                    run.prod[1] += b
                    run.mag[0] += abs(a)
                    run.mag[1] += abs(b)
            self._last_w, self._last_key = w[i], key
        self._trim(first_block)

    def _tone_samples(self, start_block: int, end_block: int) -> npt.NDArray[np.float32]:
        """The samples of blocks ``start_block…end_block`` still held (the tone's last
        ``_RECENT_FRAMES`` frames at most)."""
        if not self._recent:
            return np.zeros(0, np.float32)
        first = self._recent[0].index * FRAME_SAMPLES
        held = np.concatenate([f.samples for f in self._recent])
        a = max(0, start_block * BLOCK - first)
        b = max(a, (end_block + 1) * BLOCK - first)
        return held[a:b]

    def _no_tone(self, first_block: int, e: npt.NDArray[np.float64], w: npt.NDArray[np.complex128]) -> None:
        """A frame with no key and no key running: keep its energies and last window."""
        self._remember(first_block, e)
        self._last_w, self._last_key = w[3], -1
        self._trim(first_block)

    def _remember(self, first_block: int, e: npt.NDArray[np.float64]) -> None:
        """Block energies, kept a little while for the digit's edges (see _finalize)."""
        for b, eb in enumerate(e.tolist()):
            self._energy[first_block + b] = eb

    def _trim(self, first_block: int) -> None:
        keep_from = (self._run.first_block if self._run else first_block) - 3 * BLOCKS_PER_FRAME
        if len(self._energy) > 64:
            for k in [k for k in self._energy if k < keep_from]:
                del self._energy[k]

    def _finalize(self, out: list[DtmfDigit]) -> None:
        run, self._run = self._run, None
        assert run is not None
        cfg = self.config
        if run.hits < 2:
            return
        thr = run.ref * 0.25  # −6 dB of the steady tone's block energy
        energy = self._energy
        start = run.first_block - (WINDOW_BLOCKS - 1)
        while energy.get(start - 1, 0.0) >= thr and start > run.first_block - 8:
            start -= 1
        while energy.get(start, 0.0) < thr and start < run.last_hit:
            start += 1
        end = run.last_hit
        while energy.get(end + 1, 0.0) >= thr and end < run.last_hit + 3:
            end += 1
        while energy.get(end, 0.0) < thr and end > start:
            end -= 1
        if end - start + 1 < self._min_blocks:
            return
        rk, ck = run.key // 4, 4 + run.key % 4
        if run.prod[0] == 0 or run.prod[1] == 0:
            return
        coherence = min(abs(run.prod[0]) / run.mag[0], abs(run.prod[1]) / run.mag[1])
        if coherence < cfg.min_coherence:
            return  # the frequencies wandered during the "tone": a voice's harmonics
        d_row = cmath.phase(run.prod[0]) * _PHASE_TO_HZ
        d_col = cmath.phase(run.prod[1]) * _PHASE_TO_HZ
        if abs(d_row) > cfg.max_freq_error * FREQS[rk] or abs(d_col) > cfg.max_freq_error * FREQS[ck]:
            return
        # undo the window's loss at the measured offset before judging twist
        g_row = float(np.sinc(d_row * WINDOW / SAMPLE_RATE)) ** 2
        g_col = float(np.sinc(d_col * WINDOW / SAMPLE_RATE)) ** 2
        twist = 10 * math.log10((run.pow[0] / g_row) / (run.pow[1] / g_col))
        if twist > cfg.normal_twist_db or twist < -cfg.reverse_twist_db:
            return
        row_hz, col_hz = FREQS[rk] + d_row, FREQS[ck] + d_col
        # on the longest unbroken stretch: a bridged drop-out's phase jump splatters
        neighbour = harmonic_neighbour_db(self._tone_samples(run.best[0] - (WINDOW_BLOCKS - 1), run.best[1]),
                                          row_hz, col_hz)
        if neighbour is not None and neighbour > cfg.max_harmonic_db:
            return  # two harmonics of a voice, with their neighbours beside them
        out.append(DtmfDigit(
            digit=DTMF_KEYS[run.key], start_ms=start * BLOCK_MS, end_ms=(end + 1) * BLOCK_MS,
            row_hz=round(row_hz, 1), col_hz=round(col_hz, 1),
            twist_db=round(twist, 2),
        ))
