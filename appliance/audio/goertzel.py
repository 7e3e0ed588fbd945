"""DTMF frequencies and the block correlations the front end computes for them.

A Goertzel filter evaluates one DFT term by recursion; on a modern CPU the same number
is cheaper as a dot product, and a matrix of such dot products for all eight DTMF
frequencies over each 5 ms block of a frame rides along in the front end's single
matrix product (:mod:`.features`). Kept apart from :mod:`.dtmf` so the front end does not
import the detector.
"""
from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt

from .pcm import FRAME_SAMPLES, SAMPLE_RATE

ROWS: Final = (697.0, 770.0, 852.0, 941.0)  # ITU-T Q.23 low group
COLS: Final = (1209.0, 1336.0, 1477.0, 1633.0)  # ITU-T Q.23 high group
FREQS: Final = ROWS + COLS
BLOCK: Final = 40  # 5 ms blocks: the time resolution of duration and bridging
BLOCKS_PER_FRAME: Final = FRAME_SAMPLES // BLOCK


def dtmf_basis() -> npt.NDArray[np.float64]:
    """Cos then sin columns of the 8 DTMF frequencies within each 5 ms block of a frame
    (zero outside the block), phases measured from the frame's first sample."""
    n = np.arange(FRAME_SAMPLES)
    cols_c, cols_s = [], []
    for b in range(BLOCKS_PER_FRAME):
        inside = (n >= b * BLOCK) & (n < (b + 1) * BLOCK)
        for f in FREQS:
            ang = 2 * np.pi * f * n / SAMPLE_RATE
            cols_c.append(np.where(inside, np.cos(ang), 0.0))
            cols_s.append(np.where(inside, np.sin(ang), 0.0))
    return np.stack(cols_c + cols_s, axis=1)
