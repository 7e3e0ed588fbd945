"""WAV input: conversions keep the signal, broken files give clear errors, never a crash."""
from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from appliance.audio import WavError, read_wav
from appliance.audio.cli import audio
from appliance.audio.wav import write_wav


def wav_bytes(body: bytes, *, tag: int = 1, channels: int = 1, rate: int = 8000, bits: int = 16,
              data_size: int | None = None) -> bytes:
    align = channels * bits // 8
    fmt = struct.pack("<HHIIHH", tag, channels, rate, rate * align, align, bits)
    size = len(body) if data_size is None else data_size
    return (b"RIFF" + struct.pack("<I", 36 + len(body)) + b"WAVE" + b"fmt " + struct.pack("<I", 16) + fmt
            + b"data" + struct.pack("<I", size) + body)


def peak_hz(x: np.ndarray) -> float:
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.argmax(spec) * 8000 / len(x))


def test_44k1_stereo_24bit_is_converted_without_changing_the_tone(tmp_path: Path) -> None:
    t = np.arange(44100) / 44100
    left = 0.3 * np.sin(2 * np.pi * 1000 * t)
    stereo = np.stack([left, left], axis=1).reshape(-1)
    v = np.rint(stereo * (2**23 - 1)).astype(np.int32)
    b = np.stack([v & 0xFF, (v >> 8) & 0xFF, (v >> 16) & 0xFF], axis=1).astype(np.uint8).tobytes()
    p = tmp_path / "hi.wav"
    p.write_bytes(wav_bytes(b, channels=2, rate=44100, bits=24))
    a = read_wav(p)
    assert a.source_rate == 44100 and a.source_channels == 2
    assert len(a.conversions) == 3
    assert abs(len(a.samples) - 8000) <= 1
    assert abs(peak_hz(a.samples[1000:7000].astype(float)) - 1000) < 3
    rms = np.sqrt(np.mean(a.samples[1000:7000].astype(float) ** 2))
    assert abs(rms - 0.3 * 32767 / np.sqrt(2)) < 0.02 * rms


@pytest.mark.parametrize(("tag", "bits", "encode"), [
    (3, 32, lambda x: (x / 32768).astype("<f4").tobytes()),
    (1, 8, lambda x: (np.rint(x / 256) + 128).astype(np.uint8).tobytes()),
    (1, 32, lambda x: (x.astype(np.int64) * 65536).astype("<i4").tobytes()),
])
def test_other_widths_and_float(tmp_path: Path, tag: int, bits: int, encode) -> None:
    x = np.rint(8000 * np.sin(2 * np.pi * 697 * np.arange(8000) / 8000))
    p = tmp_path / "w.wav"
    p.write_bytes(wav_bytes(encode(x), tag=tag, bits=bits))
    a = read_wav(p)
    assert np.max(np.abs(a.samples - x)) <= 128  # 8-bit loses the low byte, nothing else
    assert a.conversions


@pytest.mark.parametrize(("tag", "code", "value"), [(7, 0xFF, 0), (7, 0x00, -32124), (6, 0xD5, 8), (6, 0x2A, -32256)])
def test_g711_decoding(tmp_path: Path, tag: int, code: int, value: int) -> None:
    p = tmp_path / "g711.wav"
    p.write_bytes(wav_bytes(bytes([code]) * 8, tag=tag, bits=8))
    assert read_wav(p).samples[0] == value


@pytest.mark.parametrize(("data", "message"), [
    (b"", "not a WAV file"),
    (b"RIFF\0\0\0\0WAVX", "no RIFF/WAVE header"),
    (b"hello world, this is not audio", "no RIFF/WAVE header"),
    (wav_bytes(b""), "empty WAV"),
    (wav_bytes(b"\1\0" * 100, data_size=4000), "truncated WAV"),
    (wav_bytes(b"\1\0" * 100 + b"\1"), "ends inside a sample"),
    (wav_bytes(b"\0" * 64, tag=2), "unsupported WAV encoding"),
    (wav_bytes(b"\0" * 64, rate=2000), "unsupported sample rate"),
    (wav_bytes(b"\0" * 64, bits=12), "unsupported WAV sample width"),
    (wav_bytes(b"\0" * 64)[:40], "truncated WAV"),
    (b"RIFF\x04\0\0\0WAVEdata\0\0\0\0", "no fmt chunk"),
])
def test_broken_files_give_clear_errors(tmp_path: Path, data: bytes, message: str) -> None:
    p = tmp_path / "bad.wav"
    p.write_bytes(data)
    with pytest.raises(WavError, match=message):
        read_wav(p)
    result = CliRunner().invoke(audio, ["amd", str(p), "--json"])
    assert result.exit_code == 1 and message.split()[0] in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_missing_file_and_float_nan(tmp_path: Path) -> None:
    with pytest.raises(WavError, match="cannot read"):
        read_wav(tmp_path / "nope.wav")
    p = tmp_path / "nan.wav"
    p.write_bytes(wav_bytes(np.array([0.1, np.nan], "<f4").tobytes(), tag=3, bits=32))
    with pytest.raises(WavError, match="NaN"):
        read_wav(p)


def test_streamed_wav_with_unknown_length_is_read(tmp_path: Path) -> None:
    x = np.arange(-50, 50, dtype=np.int16)
    p = tmp_path / "s.wav"
    p.write_bytes(wav_bytes(x.tobytes(), data_size=0xFFFFFFFF))
    assert np.array_equal(read_wav(p).samples, x)


def test_write_then_read_roundtrip(tmp_path: Path) -> None:
    x = np.random.default_rng(0).integers(-32768, 32767, 1000).astype(np.int16)
    write_wav(tmp_path / "r.wav", x)
    a = read_wav(tmp_path / "r.wav")
    assert np.array_equal(a.samples, x) and a.conversions == ()
