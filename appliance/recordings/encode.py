"""A call's two sides as one compressed file: Ogg Opus, stereo, 8 kHz, through soundfile
(libsndfile, bundled in soundfile's manylinux wheel: 1.2.2 in soundfile 0.14).

Why Opus and not GSM 06.10: libsndfile writes GSM 06.10 only as mono (WAV/AIFF/RAW with
one channel; a two-channel GSM WAV is refused, "Format not recognised"), so both sides in
one file would be mixed — and the point of a two-sided recording is to hear who said what.
Opus keeps the two channels apart at speech bitrates, and every browser and player reads
Ogg Opus. ``COMPRESSION`` is libsndfile's compression level (0 best quality … 1 smallest):
at 0.95 a tone in one channel leaves the other 57 dB below it (~38 kbit/s on noise; a
minute of espeak-ng speech on both sides, half the time each, is 150 kB: 20 kbit/s); at 0.97 the bleed rises to −30 dB and at 1.0 libsndfile's Opus encoder folds the
channels into one (measured with ``tests/test_recordings.py::test_opus_keeps_the_sides_apart``).
"""
from __future__ import annotations

import io
from typing import Final

import numpy as np
import soundfile

from modem_drivers.audio import SAMPLE_RATE

FORMAT: Final = "ogg/opus"
CONTENT_TYPE: Final = "audio/ogg"
SUFFIX: Final = ".opus"
COMPRESSION: Final = 0.95


class EncodeError(ValueError):
    pass


def encode(stereo: np.ndarray, rate: int = SAMPLE_RATE) -> bytes:
    """int16 samples of shape (n, 2) -> Ogg Opus bytes."""
    if stereo.ndim != 2 or stereo.shape[1] != 2 or stereo.dtype != np.int16:
        raise EncodeError(f"a recording is int16 samples of shape (n, 2), not {stereo.dtype} {stereo.shape}")
    buf = io.BytesIO()
    with soundfile.SoundFile(buf, "w", rate, 2, format="OGG", subtype="OPUS", compression_level=COMPRESSION) as f:
        f.write(stereo)
    return buf.getvalue()


def decode(data: bytes) -> tuple[np.ndarray, int]:
    """Ogg Opus (or any file libsndfile reads) -> int16 samples (n, channels) and the rate."""
    try:
        samples, rate = soundfile.read(io.BytesIO(data), dtype="int16", always_2d=True)
    except (soundfile.LibsndfileError, RuntimeError) as exc:
        raise EncodeError(f"not a recording libsndfile can read: {exc}") from None
    return samples, int(rate)
