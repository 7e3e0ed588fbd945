"""Reading WAV files for the offline path: anything sane becomes 8 kHz s16 mono, anything
else is refused with a message that names the problem.

Why a RIFF reader of our own instead of :mod:`wave`: Python 3.11's ``wave`` refuses
WAVE_FORMAT_EXTENSIBLE, IEEE float and G.711 (A-law/µ-law) files — the last being exactly
what call recorders and PBXs write — and it silently accepts a truncated data chunk.
Conversions made are listed in :attr:`WavAudio.conversions`, so a caller can say what was
done to the audio rather than pretend it arrived in the modem format.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt

from .pcm import SAMPLE_RATE

# WAVE format tags (Microsoft RIFF/WAVE spec, mmreg.h).
_PCM: Final = 0x0001
_IEEE_FLOAT: Final = 0x0003
_ALAW: Final = 0x0006
_MULAW: Final = 0x0007
_EXTENSIBLE: Final = 0xFFFE
_FORMAT_NAMES: Final = {_PCM: "PCM", _IEEE_FLOAT: "IEEE float", _ALAW: "A-law", _MULAW: "µ-law"}
#: A data size some streaming writers leave when they never learn the length.
_UNKNOWN_SIZE: Final = 0xFFFFFFFF
#: Rates we convert from; below 4 kHz there is no telephone band left to analyse.
MIN_RATE: Final = 4000
MAX_RATE: Final = 384000
MAX_CHANNELS: Final = 8


class WavError(ValueError):
    """A WAV file we will not analyse, with the reason in words."""


@dataclass(frozen=True, slots=True)
class WavAudio:
    """A recording ready for the detectors: 8 kHz s16 mono samples plus what was done."""

    samples: npt.NDArray[np.int16]
    source_rate: int
    source_channels: int
    source_format: str
    conversions: tuple[str, ...]

    @property
    def duration_s(self) -> float:
        return len(self.samples) / SAMPLE_RATE


def _alaw_table() -> npt.NDArray[np.int16]:
    # ITU-T G.711 §A-law decoding: invert even bits, 3-bit segment, 4-bit mantissa.
    codes = np.arange(256, dtype=np.int32) ^ 0x55
    sign = codes & 0x80
    seg = (codes >> 4) & 0x07
    mant = codes & 0x0F
    mag = np.where(seg == 0, (mant << 4) + 8, ((mant << 4) + 0x108) << np.maximum(seg - 1, 0))
    return np.where(sign, mag, -mag).astype(np.int16)


def _mulaw_table() -> npt.NDArray[np.int16]:
    # ITU-T G.711 §µ-law decoding: complemented code, bias 0x84 (132).
    codes = ~np.arange(256, dtype=np.int32) & 0xFF
    sign = codes & 0x80
    seg = (codes >> 4) & 0x07
    mant = codes & 0x0F
    mag = (((mant << 3) + 0x84) << seg) - 0x84
    return np.where(sign, -mag, mag).astype(np.int16)


def _chunks(data: bytes) -> dict[bytes, bytes]:
    """RIFF chunks of a WAVE file by id (first of each), data possibly cut short."""
    if len(data) < 12:
        raise WavError(f"not a WAV file: {len(data)} bytes, a RIFF header needs 12")
    riff, _size, wave = struct.unpack("<4sI4s", data[:12])
    if riff not in (b"RIFF", b"RF64") or wave != b"WAVE":
        raise WavError("not a WAV file: no RIFF/WAVE header")
    chunks: dict[bytes, bytes] = {}
    pos = 12
    while pos + 8 <= len(data):
        cid, size = struct.unpack("<4sI", data[pos : pos + 8])
        body_start = pos + 8
        if cid == b"data" and (size == _UNKNOWN_SIZE or (size == 0 and len(data) > body_start)):
            size = len(data) - body_start  # streamed WAV: length never patched in
        end = body_start + size
        if end > len(data):
            if cid == b"data":
                raise WavError(
                    f"truncated WAV: data chunk declares {size} bytes, file holds {len(data) - body_start}"
                )
            raise WavError(f"truncated WAV: {cid!r} chunk runs past the end of the file")
        chunks.setdefault(cid, data[body_start:end])
        pos = end + (size & 1)  # chunks are word-aligned
    if b"data" not in chunks and 0 < len(data) - pos < 8:
        raise WavError("truncated WAV: the file ends inside a chunk header")
    return chunks


def _decode(fmt: bytes, body: bytes) -> tuple[npt.NDArray[np.float64], int, int, str]:
    if len(fmt) < 16:
        raise WavError(f"corrupt WAV: fmt chunk is {len(fmt)} bytes, needs at least 16")
    tag, channels, rate, _byte_rate, block_align, bits = struct.unpack("<HHIIHH", fmt[:16])
    if tag == _EXTENSIBLE:
        if len(fmt) < 40:
            raise WavError("corrupt WAV: WAVE_FORMAT_EXTENSIBLE without its 40-byte fmt chunk")
        tag = struct.unpack("<H", fmt[24:26])[0]  # first two bytes of the SubFormat GUID
    name = _FORMAT_NAMES.get(tag)
    if name is None:
        raise WavError(f"unsupported WAV encoding: format tag 0x{tag:04x} (need PCM, float, A-law or µ-law)")
    if not 1 <= channels <= MAX_CHANNELS:
        raise WavError(f"corrupt WAV: {channels} channels")
    if not MIN_RATE <= rate <= MAX_RATE:
        raise WavError(f"unsupported sample rate {rate} Hz (need {MIN_RATE}–{MAX_RATE} Hz)")
    width = {(_PCM, 8): 1, (_PCM, 16): 2, (_PCM, 24): 3, (_PCM, 32): 4, (_IEEE_FLOAT, 32): 4,
             (_IEEE_FLOAT, 64): 8, (_ALAW, 8): 1, (_MULAW, 8): 1}.get((tag, bits))
    if width is None:
        raise WavError(f"unsupported WAV sample width: {bits}-bit {name}")
    if block_align != width * channels:
        raise WavError(f"corrupt WAV: block align {block_align}, expected {width * channels} "
                       f"for {channels} × {bits}-bit")
    if len(body) % block_align:
        raise WavError(f"truncated WAV: data ends inside a sample frame ({len(body)} bytes, "
                       f"frames of {block_align})")
    if not body:
        raise WavError("empty WAV: the data chunk holds no samples")
    raw = np.frombuffer(body, dtype=np.uint8)
    if tag == _PCM and width == 1:
        x = (raw.astype(np.float64) - 128.0) * 256.0  # 8-bit WAV PCM is unsigned
    elif tag == _ALAW:
        x = _alaw_table()[raw].astype(np.float64)
    elif tag == _MULAW:
        x = _mulaw_table()[raw].astype(np.float64)
    elif tag == _PCM and width == 2:
        x = np.frombuffer(body, dtype="<i2").astype(np.float64)
    elif tag == _PCM and width == 3:
        b = raw.reshape(-1, 3).astype(np.int32)
        v = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        x = (np.where(v & 0x800000, v - (1 << 24), v) / 256.0).astype(np.float64)
    elif tag == _PCM and width == 4:
        x = np.frombuffer(body, dtype="<i4").astype(np.float64) / 65536.0
    else:
        f = np.frombuffer(body, dtype="<f4" if width == 4 else "<f8").astype(np.float64)
        if not np.all(np.isfinite(f)):
            raise WavError("corrupt WAV: float samples that are NaN or infinite")
        x = f * 32767.0
    return x.reshape(-1, channels), rate, channels, f"{bits}-bit {name}"


def resample(x: npt.NDArray[np.float64], src: int, dst: int = SAMPLE_RATE) -> npt.NDArray[np.float64]:
    """Band-limited resampling by a Hann-windowed sinc (no scipy needed for this one job).

    The cut-off is 45 % of the lower rate, so 44.1 kHz music loses everything above
    3.6 kHz — the telephone band ends at 3.4 kHz (ITU-T G.712) anyway.
    """
    if src == dst:
        return x
    n_out = int(len(x) * dst // src)
    fc = 0.45 * min(src, dst) / src  # cut-off in cycles per input sample
    half = int(np.ceil(8 / (2 * fc)))  # eight zero crossings either side
    taps = np.arange(-half, half + 1)
    out = np.empty(n_out)
    padded = np.concatenate([np.zeros(half + 1), x, np.zeros(half + 2)])
    step = 4096
    for lo in range(0, n_out, step):
        t = np.arange(lo, min(lo + step, n_out)) * (src / dst)  # output times in input samples
        base = np.floor(t).astype(np.int64)
        frac = t - base
        d = taps[None, :] - frac[:, None]
        h = 2 * fc * np.sinc(2 * fc * d) * (0.5 + 0.5 * np.cos(np.pi * d / (half + 1)))
        out[lo : lo + len(t)] = np.sum(padded[base[:, None] + taps[None, :] + half + 1] * h, axis=1)
    return out


def read_wav(path: str | Path) -> WavAudio:
    """Load ``path`` as 8 kHz s16 mono, converting rate, width and channels as needed.

    Raises :class:`WavError` for anything that is not a usable WAV (missing, empty,
    truncated, corrupt, unsupported encoding) — never returns misread audio.
    """
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise WavError(f"cannot read {p}: {exc.strerror or exc}") from None
    chunks = _chunks(data)
    if b"fmt " not in chunks:
        raise WavError("corrupt WAV: no fmt chunk")
    if b"data" not in chunks:
        raise WavError("corrupt WAV: no data chunk")
    x, rate, channels, fmt_name = _decode(chunks[b"fmt "], chunks[b"data"])
    conversions: list[str] = []
    if fmt_name != "16-bit PCM":
        conversions.append(f"{fmt_name} → 16-bit PCM")
    mono = x.mean(axis=1) if channels > 1 else x[:, 0]
    if channels > 1:
        conversions.append(f"{channels} channels downmixed to mono")
    if rate != SAMPLE_RATE:
        mono = resample(mono, rate)
        conversions.append(f"{rate} Hz resampled to {SAMPLE_RATE} Hz")
        if len(mono) == 0:
            raise WavError("empty WAV: shorter than one sample at 8 kHz")
    samples = np.clip(np.rint(mono), -32768, 32767).astype(np.int16)
    return WavAudio(samples, rate, channels, fmt_name, tuple(conversions))


def write_wav(path: str | Path, samples: npt.NDArray[np.int16], rate: int = SAMPLE_RATE) -> None:
    """Write s16 mono PCM (used by the corpus and the tests)."""
    body = np.asarray(samples, dtype="<i2").tobytes()
    header = struct.pack("<4sI4s4sIHHIIHH4sI", b"RIFF", 36 + len(body), b"WAVE", b"fmt ", 16,
                         _PCM, 1, rate, rate * 2, 2, 16, b"data", len(body))
    Path(path).write_bytes(header + body)
