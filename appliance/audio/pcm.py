"""The one audio format every detector speaks: 8 kHz, signed 16-bit, mono, 20 ms frames.

Modem audio ports (SIMCom ``AT+CPCMREG``, Quectel ``AT+QPCMV``, Huawei ``AT^DDSETEX``)
deliver narrow-band voice as 8 kHz s16le mono; 20 ms is the packetisation every voice
path around us uses (RFC 3551 §4.5, ``ptime`` 20), so detectors are fed one 20 ms frame
at a time and keep their clocks in frame counts, not wall time.
"""
from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt

#: Samples per second of narrow-band telephony (ITU-T G.711 §1; modem PCM ports).
SAMPLE_RATE: Final = 8000
#: One frame is 20 ms (RFC 3551 §4.5 default ptime).
FRAME_MS: Final = 20
FRAME_SAMPLES: Final = SAMPLE_RATE * FRAME_MS // 1000  # 160
FRAME_BYTES: Final = FRAME_SAMPLES * 2
#: Full scale of s16 PCM, the 0 dBFS reference of every level we report.
FULL_SCALE: Final = 32768.0

Frame = bytes | bytearray | memoryview | npt.NDArray[np.integer] | npt.NDArray[np.floating]


class FrameError(ValueError):
    """A frame that is not one 20 ms block of 8 kHz s16 mono audio."""


def frame_samples(frame: Frame) -> npt.NDArray[np.float32]:
    """One frame as float32 samples on the s16 scale; refuses anything but 160 samples.

    Bytes are read as little-endian s16 (the modems' byte order); arrays are taken as
    already being samples on the s16 scale.
    """
    if isinstance(frame, (bytes, bytearray, memoryview)):
        if len(frame) != FRAME_BYTES:
            raise FrameError(
                f"frame: expected {FRAME_BYTES} bytes (20 ms of 8 kHz s16le mono), got {len(frame)}"
            )
        return np.frombuffer(frame, dtype="<i2").astype(np.float32)
    arr = np.asarray(frame)
    if arr.shape != (FRAME_SAMPLES,):
        raise FrameError(f"frame: expected {FRAME_SAMPLES} samples, got shape {arr.shape}")
    return arr.astype(np.float32, copy=False)


def iter_frames(samples: npt.NDArray[np.int16]) -> list[npt.NDArray[np.int16]]:
    """Split a whole recording into 20 ms frames, zero-padding the last partial one.

    This is how the offline path feeds the very same streaming detectors as a live call.
    """
    n = len(samples)
    whole = -(-n // FRAME_SAMPLES) if n else 0
    padded = np.zeros(whole * FRAME_SAMPLES, dtype=np.int16)
    padded[:n] = samples
    return list(padded.reshape(whole, FRAME_SAMPLES)) if whole else []


def dbfs(power: float) -> float:
    """Mean-square power on the s16 scale as dB relative to a full-scale sine's... square.

    0 dBFS is a full-scale square wave (mean square 32768²); a full-scale sine is −3 dBFS.
    Floors at −120 dB so digital silence stays a finite number.
    """
    return 10.0 * float(np.log10(power / (FULL_SCALE * FULL_SCALE) + 1e-12))
