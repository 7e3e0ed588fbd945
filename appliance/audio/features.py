"""Per-frame measurements shared by every detector, computed once per 20 ms frame.

A live call runs AMD, tone and DTMF detection at the same time; each needs the frame's
level and spectrum. Computing them once here (one FFT, one dot product) is what keeps
all detectors together under the 2 ms of CPU per second of audio the issue budgets.

The spectrum is a 160-point Hann-windowed FFT: 50 Hz bins, main lobe ±100 Hz. A tone's
frequency is refined by log-parabolic (Gaussian) interpolation of the peak bin and its
neighbours, good to a few hertz for a steady tone (Gasior & Gonzalez, CERN-AB-2004-023).
"""
from __future__ import annotations

import math
from typing import Final

import numpy as np
import numpy.typing as npt

from .goertzel import dtmf_basis
from .pcm import FRAME_MS, FRAME_SAMPLES, FULL_SCALE, SAMPLE_RATE, Frame, frame_samples

BIN_HZ: Final = SAMPLE_RATE / FRAME_SAMPLES  # 50 Hz
# Total power is summed over bins 2–78 (100–3900 Hz): DC offset and hum below it are not
# signal. The spectrum array holds only those bins, so bin k sits at index k - 2.
_TOTAL_LO: Final = 2
_TOTAL_HI: Final = 79
_NBINS: Final = _TOTAL_HI - _TOTAL_LO
# Telephone band 300–3400 Hz (ITU-T G.712): where tones are searched for (array indices).
_BAND_LO: Final = int(300 / BIN_HZ) - _TOTAL_LO
_BAND_HI: Final = int(3400 / BIN_HZ) + 1 - _TOTAL_LO
# 250–1000 Hz, the voice band for speech detection (array indices).
_VOICE_LO: Final = 5 - _TOTAL_LO
_VOICE_HI: Final = 20 + 1 - _TOTAL_LO
# 1500–3400 Hz, the fricative band: /s/, /ś/, /ć/ put their energy above 1.5 kHz and the
# telephone band ends at 3.4 kHz (the AMD counts silence there too).
_HUSH_LO: Final = 1500 // 50 - _TOTAL_LO
_HUSH_HI: Final = 3400 // 50 + 1 - _TOTAL_LO
# Parseval with a Hann window: mean square = 2·Σ|X_k|² / (N·Σw²), one-sided bins.
_SPEC_TO_POWER: Final = 2.0 / (FRAME_SAMPLES * float(np.sum(np.hanning(FRAME_SAMPLES) ** 2)))
#: Hann main lobe: the peak bin ±2 holds a steady tone's power.
_LOBE: Final = 2
_FS2: Final = FULL_SCALE * FULL_SCALE


def _basis() -> npt.NDArray[np.float32]:
    """One matrix for the whole front end: Hann-windowed DFT (cos, sin) of bins 2–78, then
    the DTMF detector's per-5-ms correlations (see :mod:`.goertzel`), so a single
    matrix product per frame yields both. Matrix products beat ``np.fft.rfft`` threefold
    at this size because numpy's FFT call overhead dominates 160 points.
    """
    n = np.arange(FRAME_SAMPLES)[:, None]
    k = np.arange(_TOTAL_LO, _TOTAL_HI)[None, :]
    w = np.hanning(FRAME_SAMPLES)[:, None]
    ang = 2 * np.pi * n * k / FRAME_SAMPLES
    return np.concatenate([w * np.cos(ang), w * np.sin(ang), dtmf_basis()], axis=1).astype(np.float32)


_BASIS: Final = _basis()
_SPLIT: Final = 2 * _NBINS


def _bands() -> npt.NDArray[np.float32]:
    """Band sums as one matrix product (columns: whole spectrum, voice band, fricative
    band): one numpy call instead of three reductions, each of which costs more in call
    overhead than in arithmetic at 77 bins."""
    m = np.zeros((_NBINS, 3), dtype=np.float32)
    m[:, 0] = 1.0
    m[_VOICE_LO:_VOICE_HI, 1] = 1.0
    m[_HUSH_LO:_HUSH_HI, 2] = 1.0
    return m


_BANDS: Final = _bands()


class FrameFeatures:
    """Level and spectral peak of one frame (slotted, built once, read by all detectors)."""

    __slots__ = ("index", "samples", "power", "level_db", "voice_db", "hush_db", "total",
                 "spectrum", "peak_hz", "tonality", "dtmf")

    def __init__(self, index: int, samples: npt.NDArray[np.float32]) -> None:
        # Few numpy calls, scalars in Python floats: at 160 samples the per-call overhead
        # of numpy, not the arithmetic, is what a frame costs (docs/audio.md, CPU).
        self.index = index
        self.samples = samples
        power = float(samples @ samples) / FRAME_SAMPLES
        self.power = power
        self.level_db = 10.0 * math.log10(power / _FS2 + 1e-12)
        y = samples @ _BASIS
        #: raw DTMF correlations, decoded by :class:`.dtmf.DtmfDetector`
        self.dtmf = y[_SPLIT:]
        y2 = y[:_SPLIT] * y[:_SPLIT]
        spec = y2[:_NBINS] + y2[_NBINS:]
        self.spectrum = spec  # index i is bin i + 2, i.e. (i + 2) * 50 Hz
        total, voice, hush = (spec @ _BANDS).tolist()
        self.total = total
        #: level of the first-formant band, where voiced speech is strongest and line noise
        #: (brown: below it; white: spread over 4 kHz) is weakest — the AMD's voice level
        self.voice_db = 10.0 * math.log10(voice * _SPEC_TO_POWER / _FS2 + 1e-12)
        #: level of the fricative band (1.5–3.4 kHz), the AMD's second silence test
        self.hush_db = 10.0 * math.log10(hush * _SPEC_TO_POWER / _FS2 + 1e-12)
        k = int(spec[_BAND_LO:_BAND_HI].argmax()) + _BAND_LO
        lobe = spec[k - _LOBE : k + _LOBE + 1].tolist()
        self.tonality = sum(lobe) / total if total > 0 else 0.0
        a, b, d = lobe[_LOBE - 1 : _LOBE + 2]
        if a > 0 and b > 0 and d > 0:
            la, lb, ld = math.log(a), math.log(b), math.log(d)
            den = la - 2 * lb + ld
            delta = 0.5 * (la - ld) / den if den < 0 else 0.0
        else:
            delta = 0.0
        self.peak_hz = (k + _TOTAL_LO + max(-0.5, min(0.5, delta))) * BIN_HZ

    @property
    def start_ms(self) -> int:
        return self.index * FRAME_MS

    @property
    def end_ms(self) -> int:
        return (self.index + 1) * FRAME_MS

    @classmethod
    def of(cls, frame: Frame, index: int) -> FrameFeatures:
        return cls(index, frame_samples(frame))


def follow_floor(floor: float | None, level: float, rise_db: float) -> float:
    """One step of a noise floor: follow the quietest frames at once, creep up by
    ``rise_db`` per frame otherwise (so a louder line is learnt within seconds while
    speech, a few hundred ms at a time, barely lifts it). Every detector's "over the
    floor" test uses this one follower."""
    return level if floor is None or level < floor else floor + rise_db


class FrameClock:
    """Counts frames for a detector fed on its own (the shared path passes features)."""

    __slots__ = ("index",)

    def __init__(self) -> None:
        self.index = 0

    def features(self, frame: Frame) -> FrameFeatures:
        ft = FrameFeatures.of(frame, self.index)
        self.index += 1
        return ft


class FrameFedDetector:
    """What the two AMD classifiers share: fed 20 ms frames through their FrameClock
    (``_clock``), they decide once (``decision``); ``feed_features`` is theirs to write."""

    _clock: FrameClock
    decision: object | None

    @property
    def done(self) -> bool:
        return self.decision is not None

    def feed(self, frame: Frame) -> list:  # type: ignore[type-arg]
        return self.feed_features(self._clock.features(frame))  # type: ignore[attr-defined]
