"""DTMF receiver: every key, Q.24 boundaries (duration, frequency, twist, bridging), talk-off."""
from __future__ import annotations

import numpy as np
import pytest

from appliance.audio import DtmfConfig, DtmfDetector, FrameError
from appliance.audio.events import DTMF_KEYS
from appliance.audio.goertzel import COLS, ROWS
from appliance.audio.pcm import FRAME_BYTES, iter_frames

FS = 8000


def keytone(key: str, ms: float, rng: np.random.Generator, *, off: float = 0.0, twist_db: float = 0.0,
            level_dbfs: float = -12.0) -> np.ndarray:
    """Two sines; ``twist_db`` = low group minus high group level."""
    k = DTMF_KEYS.index(key)
    t = np.arange(int(round(ms * FS / 1000))) / FS
    a = 32768 * 10 ** (level_dbfs / 20)
    lo = a * 10 ** (twist_db / 40) * np.sin(2 * np.pi * ROWS[k // 4] * (1 + off) * t + rng.uniform(0, 6.3))
    hi = a * 10 ** (-twist_db / 40) * np.sin(2 * np.pi * COLS[k % 4] * (1 + off) * t + rng.uniform(0, 6.3))
    return lo + hi


def gap(ms: float) -> np.ndarray:
    return np.zeros(int(round(ms * FS / 1000)))


def detect(signal: np.ndarray, config: DtmfConfig | None = None, *, as_bytes: bool = False) -> list:
    det = DtmfDetector(config)
    out = []
    for frame in iter_frames(np.clip(np.rint(signal), -32768, 32767).astype(np.int16)):
        out += det.feed(frame.astype("<i2").tobytes() if as_bytes else frame)
    return out + det.finish()


def digits(signal: np.ndarray, **kw) -> str:
    return "".join(d.digit for d in detect(signal, **kw))


@pytest.mark.parametrize("seed", range(4))
def test_all_sixteen_keys_40ms_tones_50ms_gaps_in_noise(seed: int) -> None:
    rng = np.random.default_rng(seed)
    keys = "".join(rng.permutation(list(DTMF_KEYS)))
    parts = [gap(rng.uniform(0, 30))]
    for key in keys:
        parts += [keytone(key, 40, rng, off=rng.uniform(-0.012, 0.012), twist_db=rng.uniform(-3.5, 7.5),
                          level_dbfs=rng.uniform(-25, -10)), gap(50)]
    sig = np.concatenate(parts)
    sig += rng.normal(0, 32768 * 10 ** (-45 / 20), len(sig))  # ≥ 15 dB below the weakest tone
    assert digits(sig, as_bytes=bool(seed % 2)) == keys


def test_reported_times_match_the_tone() -> None:
    rng = np.random.default_rng(7)
    sig = np.concatenate([gap(123), keytone("5", 60, rng), gap(200)])
    (d,) = detect(sig)
    assert d.digit == "5"
    assert abs(d.start_ms - 123) <= 5 and abs(d.end_ms - 183) <= 5
    assert abs(d.row_hz - 770) < 3 and abs(d.col_hz - 1336) < 3


@pytest.mark.parametrize(("ms", "expected"), [(40, "7"), (45, "7"), (23, ""), (20, ""), (15, "")])
def test_duration_accept_40_reject_23(ms: float, expected: str) -> None:
    for seed in range(6):  # tones falling anywhere relative to frame and block edges
        rng = np.random.default_rng(seed)
        sig = np.concatenate([gap(rng.uniform(0, 20)), keytone("7", ms, rng), gap(120)])
        assert digits(sig) == expected, (ms, seed)


@pytest.mark.parametrize(("off", "expected"), [(0.015, "9"), (-0.015, "9"), (0.035, ""), (-0.035, ""), (0.05, "")])
def test_frequency_tolerance_accept_1_5_reject_3_5_percent(off: float, expected: str) -> None:
    for key in ("1", "9", "D", "*"):
        rng = np.random.default_rng(3)
        sig = np.concatenate([gap(10), keytone(key, 60, rng, off=off), gap(120)])
        assert digits(sig) == (key if expected else ""), (key, off)


@pytest.mark.parametrize(("twist", "ok"), [(7.5, True), (9.0, False), (-3.5, True), (-5.0, False), (0.0, True)])
def test_twist_8db_normal_4db_reverse(twist: float, ok: bool) -> None:
    rng = np.random.default_rng(11)
    sig = np.concatenate([gap(10), keytone("6", 60, rng, twist_db=twist), gap(120)])
    got = detect(sig)
    assert [d.digit for d in got] == (["6"] if ok else [])
    if ok:
        assert abs(got[0].twist_db - twist) < 0.7


def test_ten_ms_interruption_is_bridged_but_50ms_gap_splits() -> None:
    rng = np.random.default_rng(5)
    bridged = np.concatenate([gap(10), keytone("3", 40, rng), gap(10), keytone("3", 40, rng), gap(120)])
    assert digits(bridged) == "3"
    split = np.concatenate([gap(10), keytone("3", 40, rng), gap(50), keytone("3", 40, rng), gap(120)])
    assert digits(split) == "33"


def test_no_talk_off_from_gliding_harmonics_and_single_tones() -> None:
    rng = np.random.default_rng(9)
    t = np.arange(FS) / FS
    f0 = 120 + 40 * np.sin(2 * np.pi * 3 * t)  # a voice-like gliding pitch with 20 harmonics
    phase = 2 * np.pi * np.cumsum(f0) / FS
    voice = sum(np.sin(k * phase) * 3000 / k for k in range(1, 21))
    single = keytone("1", 200, rng)  # row tone alone
    k = DTMF_KEYS.index("1")
    alone = 8000 * np.sin(2 * np.pi * ROWS[k // 4] * np.arange(1600) / FS)
    assert digits(np.concatenate([voice, gap(100), alone, gap(100)])) == ""
    assert digits(single) == "1"


def test_finish_reports_a_key_still_sounding_at_the_end() -> None:
    rng = np.random.default_rng(1)
    assert digits(np.concatenate([gap(40), keytone("#", 80, rng)])) == "#"


def test_frames_of_the_wrong_size_are_refused() -> None:
    det = DtmfDetector()
    with pytest.raises(FrameError, match="320 bytes"):
        det.feed(b"\0" * (FRAME_BYTES - 2))
    with pytest.raises(FrameError, match="160 samples"):
        det.feed(np.zeros(100))


def test_config_is_validated() -> None:
    with pytest.raises(ValueError, match="max_freq_error"):
        DtmfConfig(max_freq_error=0.5)


def steady_vowel(f0: float, loud: dict[int, float], ms: float, *, others_db: float = -20.0) -> np.ndarray:
    """A steady voiced sound: harmonics 1–20 of ``f0``, ``loud`` {harmonic: dB} over the
    rest at ``others_db`` (re 0 dB), all at −12 dBFS scale — a vowel whose formants sit
    on two harmonics."""
    t = np.arange(int(round(ms * FS / 1000))) / FS
    a = 32768 * 10 ** (-12 / 20)
    return sum(a * 10 ** (loud.get(k, others_db) / 20) * np.sin(2 * np.pi * k * f0 * t + k) for k in range(1, 21))


def test_two_harmonics_of_a_steady_voice_are_not_a_key() -> None:
    # 5 × 153.3 = 766 Hz and 8 × 153.3 = 1226 Hz: the "4" a greeting's vowel gave on the
    # 2,560-file corpus; its neighbours (4, 6, 7, 9) 12 dB down give it away
    vowel = steady_vowel(153.3, {5: 0.0, 8: 0.0, 4: -12.0, 6: -12.0, 7: -12.0, 9: -12.0}, 80)
    signal = np.concatenate([gap(40), vowel, gap(120)])
    assert digits(signal) == ""
    # every other rule passes it: without the harmonic guard it is a "4"
    assert digits(signal, config=DtmfConfig(max_harmonic_db=0.0)) == "4"


def test_harmonic_guard_measures_neighbours_only_where_a_voice_pitch_fits() -> None:
    from appliance.audio.dtmf import harmonic_neighbour_db
    rng = np.random.default_rng(3)
    key = keytone("4", 60, rng).astype(np.float32)
    assert harmonic_neighbour_db(key, 770.0, 1209.0) < -40.0  # a clean key: nothing beside it
    vowel = steady_vowel(153.3, {5: 0.0, 8: 0.0}, 60, others_db=-6.0).astype(np.float32)
    assert -7.0 < harmonic_neighbour_db(vowel, 766.5, 1226.4) < -5.0  # its neighbours, 6 dB down
    assert harmonic_neighbour_db(key, 770.0, 1300.0) is None  # no voice pitch has both as harmonics
    with pytest.raises(ValueError, match="max_harmonic_db"):
        DtmfConfig(max_harmonic_db=3.0)
