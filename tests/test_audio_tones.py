"""Beep end timing, SIT sequences (ITU and the Bellcore codes), fax tones."""
from __future__ import annotations

import numpy as np
import pytest

from appliance.audio import Beep, FaxKind, FaxTone, Sit, SitKind, ToneDetector
from appliance.audio.pcm import iter_frames
from appliance.audio.tones import tone_signal

FS = 8000


def z(ms: float) -> np.ndarray:
    return np.zeros(int(round(ms * FS / 1000)))


def run(sig: np.ndarray, noise_dbfs: float = -60.0, seed: int = 0) -> list:
    rng = np.random.default_rng(seed)
    sig = sig + rng.normal(0, 32768 * 10 ** (noise_dbfs / 20), len(sig))
    det = ToneDetector()
    out = []
    for frame in iter_frames(np.clip(np.rint(sig), -32768, 32767).astype(np.int16)):
        out += det.feed(frame)
    return out + det.finish()


@pytest.mark.parametrize(("freq", "ms", "lead"), [(1000, 400, 1013), (440, 120, 507), (1950, 900, 333), (600, 250, 0)])
def test_beep_end_reported_within_200ms_of_the_tone_end(freq: float, ms: float, lead: float) -> None:
    events = run(np.concatenate([z(lead), tone_signal(freq, ms, 6000), z(800)]), noise_dbfs=-50)
    beeps = [e for e in events if isinstance(e, Beep)]
    assert len(beeps) == 1
    end = lead + ms
    assert abs(beeps[0].end_ms - end) <= 10
    assert 0 <= beeps[0].reported_ms - end <= 200
    assert abs(beeps[0].tone.frequency_hz - freq) < 5


def test_beep_needs_silence_after_it_and_a_steady_frequency() -> None:
    t = np.arange(int(0.4 * FS)) / FS
    glide = 6000 * np.sin(2 * np.pi * (700 * t + 60 * t * t))  # 700 → 750 Hz, a held vowel
    assert not [e for e in run(np.concatenate([z(100), glide, z(500)])) if isinstance(e, Beep)]
    rng = np.random.default_rng(0)
    talk_after = np.concatenate([z(100), tone_signal(1000, 300, 6000), rng.normal(0, 3000, 8000)])
    assert not [e for e in run(talk_after) if isinstance(e, Beep)]
    short = np.concatenate([z(100), tone_signal(1000, 60, 6000), z(500)])
    assert not [e for e in run(short) if isinstance(e, Beep)]


SIT_CASES = {
    SitKind.INTERCEPT: ((913.8, 274), (1370.6, 274), (1776.7, 380)),
    SitKind.VACANT_CODE: ((985.2, 380), (1370.6, 274), (1776.7, 380)),
    SitKind.NO_CIRCUIT: ((985.2, 380), (1428.5, 380), (1776.7, 380)),
    SitKind.REORDER: ((913.8, 274), (1428.5, 380), (1776.7, 380)),
    SitKind.ITU: ((950.0, 330), (1400.0, 330), (1800.0, 330)),
}


@pytest.mark.parametrize("kind", list(SIT_CASES))
@pytest.mark.parametrize("gap_ms", [0, 25])
def test_sit_sequences_detected_with_timing_and_no_beep(kind: SitKind, gap_ms: float) -> None:
    lead = 437
    parts = [z(lead)]
    for i, (f, ms) in enumerate(SIT_CASES[kind]):
        parts += [z(gap_ms)] if i else []
        parts.append(tone_signal(f, ms, 4000))
    parts.append(z(1000))
    events = run(np.concatenate(parts), noise_dbfs=-55)
    sits = [e for e in events if isinstance(e, Sit)]
    assert [s.kind for s in sits] == [kind]
    assert not [e for e in events if isinstance(e, Beep)]
    s = sits[0]
    end = lead + sum(ms for _, ms in SIT_CASES[kind]) + 2 * gap_ms
    assert abs(s.segments[0].start_ms - lead) <= 20 and abs(s.segments[2].end_ms - end) <= 20
    for seg, (f, ms) in zip(s.segments, SIT_CASES[kind]):
        assert abs(seg.frequency_hz - f) < 8 and abs(seg.duration_ms - ms) <= 30
    assert s.reported_ms - end <= 100
    assert s.meaning == ("network_congestion" if kind in (SitKind.NO_CIRCUIT, SitKind.REORDER) else "number_not_in_service")


def test_sit_out_of_band_is_not_sit() -> None:
    parts = [z(200), tone_signal(850, 330), tone_signal(1400, 330), tone_signal(1800, 330), z(600)]
    assert not [e for e in run(np.concatenate(parts)) if isinstance(e, Sit)]


def test_fax_ced_and_cng() -> None:
    ced = [e for e in run(np.concatenate([z(300), tone_signal(2100, 3000), z(300)])) if isinstance(e, FaxTone)]
    assert [e.kind for e in ced] == [FaxKind.CED] and ced[0].reported_ms <= 300 + 600
    cng = [e for e in run(np.concatenate([z(300), tone_signal(1100, 500), z(3000), tone_signal(1100, 500), z(300)]))
           if isinstance(e, FaxTone)]
    assert [e.kind for e in cng] == [FaxKind.CNG, FaxKind.CNG]
    assert abs(cng[1].tone.start_ms - 3800) <= 20


def _voice_like(ms: float, rng: np.random.Generator) -> np.ndarray:
    """Speech stand-in: noise bursts shaped like syllables (not tonal), about −20 dBFS."""
    n = int(ms * FS / 1000)
    env = np.abs(np.sin(np.pi * np.arange(n) / (0.2 * FS)))  # 5 "syllables" a second
    return rng.normal(0, 3300, n) * env


@pytest.mark.parametrize(("freq", "ms", "lead"), [(612, 160, 1013), (1149, 750, 1007), (1124, 900, 1011)])
def test_beep_with_ragged_edges_under_noise(freq: float, ms: float, lead: float) -> None:
    """Edge frames hold part tone, part noise: their peak estimate wanders by up to ±12 Hz
    (three beeps of corpus seed 2 were lost to it); the inner frames decide the wander."""
    found = []
    for seed in range(6):
        events = run(np.concatenate([z(lead), tone_signal(freq, ms, 5000), z(800)]), noise_dbfs=-34, seed=seed)
        beeps = [e for e in events if isinstance(e, Beep)]
        found.append(len(beeps) == 1 and abs(beeps[0].end_ms - (lead + ms)) <= 10)
    assert all(found), found


def test_cng_pitch_tone_after_a_greeting_is_a_beep_not_a_fax() -> None:
    rng = np.random.default_rng(3)
    sig = np.concatenate([z(300), _voice_like(1500, rng), z(400), tone_signal(1100, 600, 6000), z(800)])
    events = run(sig, noise_dbfs=-55)
    assert not [e for e in events if isinstance(e, FaxTone)]
    beeps = [e for e in events if isinstance(e, Beep)]
    assert len(beeps) == 1 and abs(beeps[0].end_ms - (300 + 1500 + 400 + 600)) <= 10
    # the same tone on a quiet line is a calling fax
    quiet = [e for e in run(np.concatenate([z(300), tone_signal(1100, 600, 6000), z(800)])) if isinstance(e, FaxTone)]
    assert [e.kind for e in quiet] == [FaxKind.CNG]


def _line_noise(kind: str, n: int, dbfs: float, rng: np.random.Generator) -> np.ndarray:
    """White or brown (1/f²) line noise at ``dbfs`` RMS, as the corpus makes it."""
    w = rng.normal(size=n)
    if kind == "brown":
        spec = np.fft.rfft(w)
        spec /= np.maximum(np.arange(len(spec)), 1)
        w = np.fft.irfft(spec, n)
    return w / w.std() * 32768 * 10 ** (dbfs / 20)


@pytest.mark.parametrize(("kind", "noise_dbfs", "freq", "tone_dbfs"),
                         [("brown", -22.0, 1897.0, -16.0), ("white", -32.0, 1641.0, -23.0), ("brown", -40.0, 1577.0, -27.0)])
def test_beep_on_a_noisy_line(kind: str, noise_dbfs: float, freq: float, tone_dbfs: float) -> None:
    """Beeps the corpus's fresh seeds lost: after a beep 9 dB over brown noise the line
    never gets 12 dB quieter (the voice band shows nothing starts); a beep 9 dB over white
    noise keeps only ~92 % of each frame in its lobe (the noise's share is allowed for);
    brown noise can make one "tonal" frame at 300 Hz right after the beep."""
    for seed in range(4):
        rng = np.random.default_rng(seed)
        lead, ms = 1013, 700
        tone = tone_signal(freq, ms, 32768 * 10 ** (tone_dbfs / 20) * np.sqrt(2))
        sig = np.concatenate([z(lead), tone, z(1000)])
        sig = sig + _line_noise(kind, len(sig), noise_dbfs, rng)
        events = run(sig, noise_dbfs=-90)
        beeps = [e for e in events if isinstance(e, Beep)]
        # end to ±20 ms: at 9 dB over white noise the 5 ms edge blocks are noisy too
        assert len(beeps) == 1 and abs(beeps[0].end_ms - (lead + ms)) <= 20, (seed, events)
        assert beeps[0].reported_ms - (lead + ms) <= 200
