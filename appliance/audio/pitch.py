"""Voice pitch (F0) of one 20 ms frame, for the AMD's end-of-utterance contour.

Why the AMD wants pitch: a person answering the phone usually asks — "Hello?", "Halo?",
"Tak?" — and a question ends on a rising pitch, which is also how a speaker hands the
turn over (Gravano & Hirschberg, "Turn-taking cues in task-oriented dialogue", Computer
Speech & Language 25, 2011: final rising or falling intonation yields the turn, a level
plateau holds it). A recorded greeting's sentences end falling ("Hello. This is Mark.")
and its rises (commas) are followed by short pauses only. So a rise followed by silence
lets the AMD say "human" sooner than a fixed silence would.

Method: autocorrelation over a 40 ms Hann window (this frame and the one before), of the
signal low-passed to 1 kHz in the frequency domain (the fundamental and first harmonics;
line noise and fricatives above it only lower the clarity), divided by the window's own
autocorrelation (Boersma, "Accurate short-term analysis of the fundamental frequency…",
IFA Proceedings 17, 1993). The pitch is the *shortest* lag whose peak is within
``_OCTAVE_TOLERANCE`` of the best one: a periodic signal also peaks at two and three
periods, and picking the longest of near-equal peaks is the classic octave-down error.
"""
from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt

from .pcm import FRAME_SAMPLES, SAMPLE_RATE

#: Window: two frames (40 ms) hold ≥ 2.4 periods of a 60 Hz voice.
_WINDOW: Final = 2 * FRAME_SAMPLES
_NFFT: Final = 512  # ≥ window + longest lag (453): linear, not circular, autocorrelation
#: Voice F0 range searched: 60–350 Hz (low male to high female; espeak-ng's voices
#: at pitch 25–75 fall in 70–300 Hz).
_MIN_LAG: Final = SAMPLE_RATE // 350
_MAX_LAG: Final = SAMPLE_RATE // 60
_LOWPASS_HZ: Final = 1000.0
_OCTAVE_TOLERANCE: Final = 0.9  # a shorter-lag peak ≥ 90 % of the best one wins


#: FFT bins kept by the 1 kHz low-pass (bin k is k · 8000 / 512 Hz).
_BINS: Final = int(_LOWPASS_HZ * _NFFT / SAMPLE_RATE) + 1  # 65


def _tables() -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """The low-passed autocorrelation as two matrix products instead of a 512-point FFT
    pair: only 65 of 257 bins pass the 1 kHz low-pass, so the forward transform (with the
    Hann window and the mean removal folded in) is a 320 × 130 product and the inverse, for the lags searched,
    a 65 × 136 one — the same numbers as ``irfft(|rfft(w · hann, 512)|² · lowpass)``, for
    a quarter of the numpy calls."""
    hann = np.hanning(_WINDOW)
    spec = np.fft.rfft(hann, _NFFT)
    wac = np.fft.irfft(spec.real**2 + spec.imag**2, _NFFT)[: _MAX_LAG + 2]
    n = np.arange(_WINDOW)[:, None]
    k = np.arange(_BINS)[None, :]
    ang = 2 * np.pi * n * k / _NFFT
    forward = np.concatenate([hann[:, None] * np.cos(ang), hann[:, None] * np.sin(ang)], axis=1)
    # (w − mean(w)) @ F == w @ (F − column means of F): the mean removal folded in too
    forward -= forward.mean(axis=0)
    lags = np.arange(_MAX_LAG + 2)[None, :]
    weight = np.where(np.arange(_BINS) == 0, 1.0, 2.0)[:, None] / _NFFT  # irfft: bins 1… count twice
    inverse = weight * np.cos(2 * np.pi * np.arange(_BINS)[:, None] * lags / _NFFT)
    return forward, wac / wac[0], inverse


_FORWARD, _WINDOW_AC, _INVERSE = _tables()


def frame_pitch(previous: npt.NDArray[np.float32], current: npt.NDArray[np.float32]) -> tuple[float, float]:
    """``(f0_hz, clarity)`` of the 40 ms ending with ``current``; clarity is the normalised
    autocorrelation at the pitch lag (1 = perfectly periodic, < 0.5 = not voiced).
    Returns ``(0.0, 0.0)`` for a silent window."""
    y = np.concatenate((previous, current)).astype(np.float64) @ _FORWARD
    y *= y
    ac = (y[:_BINS] + y[_BINS:]) @ _INVERSE
    if ac[0] <= 0.0:
        return 0.0, 0.0
    r = ac / (ac[0] * _WINDOW_AC)
    seg = r[_MIN_LAG : _MAX_LAG + 1]
    # local maxima of the normalised autocorrelation inside the lag range
    inner = seg[1:-1]
    peaks = np.flatnonzero((inner >= seg[:-2]) & (inner > seg[2:])) + 1
    if len(peaks) == 0:
        return 0.0, 0.0
    best = float(seg[peaks].max())
    k = int(peaks[np.argmax(seg[peaks] >= _OCTAVE_TOLERANCE * best)])
    # parabolic interpolation of the peak for sub-sample lag
    a, b, c = float(seg[k - 1]), float(seg[k]), float(seg[k + 1])
    den = a - 2.0 * b + c
    delta = 0.5 * (a - c) / den if den < 0.0 else 0.0
    lag = _MIN_LAG + k + max(-0.5, min(0.5, delta))
    return SAMPLE_RATE / lag, min(1.0, b)
