"""The live listener (appliance/jobs/live.py) driven frame by frame, without a port: its
first verdict, the watch that revises a fast "human" to "machine" while the far end talks
on, the beep, and the greeting's end."""
from __future__ import annotations

import numpy as np

from appliance.audio.events import AmdResult
from appliance.audio.tones import tone_signal
from appliance.jobs.live import REVISE_UNTIL_MS, Listener
from modem_drivers.audio import FRAME_BYTES

SAMPLES = FRAME_BYTES // 2
RNG = np.random.default_rng(6)


def noise(ms: int, dbfs: float) -> list[bytes]:
    """White noise at ``dbfs`` (voice-band energy, no pitch: speech to the detector's level
    rules, never a tone), cut into frames."""
    n = ms // 20
    x = RNG.normal(0.0, 32768 * 10 ** (dbfs / 20), n * SAMPLES).clip(-32768, 32767).astype("<i2")
    return [x[i * SAMPLES:(i + 1) * SAMPLES].tobytes() for i in range(n)]


def feed(listener: Listener, frames: list[bytes]) -> None:
    for f in frames:
        listener.feed(f)


LINE = -66.0  # the emulator's line floor
TALK = -22.0


def test_a_short_hello_and_a_pause_is_human_and_stays_so() -> None:
    listener = Listener(port=None)  # type: ignore[arg-type]
    feed(listener, noise(400, LINE) + noise(500, TALK) + noise(3000, LINE))
    assert listener.first is not None and listener.first.result is AmdResult.HUMAN
    assert listener.revision is None and not listener.revised.is_set()


def test_a_greeting_that_runs_on_after_its_first_pause_is_revised_to_machine() -> None:
    listener = Listener(port=None)  # type: ignore[arg-type]
    feed(listener, noise(400, LINE) + noise(500, TALK) + noise(800, LINE))
    first = listener.first
    assert first is not None and first.result is AmdResult.HUMAN
    feed(listener, noise(2500, TALK))
    assert listener.revision is not None and listener.revision.result is AmdResult.MACHINE
    assert listener.revision.rule == "long_greeting" and listener.revised.is_set()
    assert listener.first is first  # the first decision is kept for the result


def test_no_revision_after_the_watch_window() -> None:
    listener = Listener(port=None)  # type: ignore[arg-type]
    feed(listener, noise(400, LINE) + noise(500, TALK) + noise(REVISE_UNTIL_MS, LINE) + noise(3000, TALK))
    assert listener.first is not None and listener.first.result is AmdResult.HUMAN and listener.revision is None


def test_a_beep_is_heard_and_timed() -> None:
    listener = Listener(port=None)  # type: ignore[arg-type]
    beep = tone_signal(1000.0, 500).astype("<i2").tobytes()
    frames = noise(400, LINE) + noise(2500, TALK) + noise(300, LINE)
    feed(listener, frames + [beep[i:i + FRAME_BYTES] for i in range(0, len(beep), FRAME_BYTES)] + noise(600, LINE))
    assert listener.first is not None and listener.first.result is AmdResult.MACHINE
    assert listener.beeped.is_set() and listener.beep_ms is not None
    assert abs(listener.beep_ms - (len(frames) * 20 + 500)) <= 40, listener.beep_ms
    assert listener.ms - listener.last_sound_ms >= 500  # the line is quiet after it


async def test_a_voicebot_jobs_known_prompts_render_while_the_call_rings(tmp_path) -> None:
    """``prepare_voicebot`` renders every prompt the job's variables fix (not the read-back of
    the date he will key) into the cache, so the first prompt never waits for espeak-ng."""
    import datetime as dt

    from appliance.jobs.amd import job_variables, prepare_voicebot
    from appliance.voicebot.load import shipped
    from appliance.voicebot.prepare import known_prompts
    from appliance.voicebot.tts import Synthesiser

    today = dt.date.today()
    raw = {"creditor": "Kredyt Plus", "debtor_name": "Jan Kowalski", "amount": "123.45", "currency": "PLN",
           "due_date": today.isoformat(), "window_end": (today + dt.timedelta(days=30)).isoformat()}
    opts = {"on_human": "voicebot", "dialogue": "promise_to_pay", "lang": "en", "voicebot": raw}
    synth = Synthesiser(cache_dir=tmp_path)
    task = prepare_voicebot(opts, synth)
    assert task is not None
    made = await task
    texts = known_prompts(shipped("promise_to_pay", "en"), job_variables(raw))
    assert made == len(texts) > 3
    assert all(synth.path(t, "en").is_file() for t in texts)
    assert prepare_voicebot({**opts, "on_human": "play"}) is None
    assert prepare_voicebot({**opts, "dialogue": "no_such"}) is None  # the runner says why, at the answer


def test_a_greeting_ends_on_a_noisy_line_too() -> None:
    """The greeting's end (when no beep comes) is quiet against the line's own floor: on a
    line whose noise stands at −38 dBFS (louder than a fixed −45 dBFS 'sound' level) the
    greeting still ends, and on a clean line a −45 dBFS murmur is not taken for talk."""
    listener = Listener(port=None)  # type: ignore[arg-type]
    feed(listener, noise(1000, -38.0) + noise(3000, -14.0) + noise(1000, -38.0))
    assert listener.ms - listener.last_sound_ms >= 700, (listener.ms, listener.last_sound_ms)
    assert 3900 <= listener.last_sound_ms <= 4200, listener.last_sound_ms  # the talk's end, not the noise's
    clean = Listener(port=None)  # type: ignore[arg-type]
    feed(clean, noise(1000, LINE) + noise(2000, TALK) + noise(1000, -47.0))
    assert clean.ms - clean.last_sound_ms >= 700 and 2900 <= clean.last_sound_ms <= 3200, clean.last_sound_ms


def dtmf_frames(key_hz: tuple[float, float], ms: int) -> list[bytes]:
    x = (tone_signal(key_hz[0], ms, 6000.0) + tone_signal(key_hz[1], ms, 6000.0)).astype("<i2")
    return [x[i * SAMPLES:(i + 1) * SAMPLES].tobytes() for i in range(ms // 20)]


def test_the_voicebots_dtmf_shares_the_listeners_analysis_and_keeps_hearing_after_the_watch() -> None:
    """SharedDtmf reads the features the Listener made for each frame (one analysis per
    frame), and once the Listener is idle (past the watch) makes them with the same frame
    index: a key is heard during the watch and after it, each once."""
    from appliance.jobs.live import SharedDtmf

    listener = Listener(port=None)  # type: ignore[arg-type]
    shared = SharedDtmf(listener)
    heard: list[str] = []

    def run(frames: list[bytes]) -> None:
        for f in frames:
            listener.feed(f)
            heard.extend(d.digit for d in shared.feed(f))

    run(noise(400, LINE) + noise(500, TALK) + noise(1500, LINE))  # a person: the watch starts
    frame = noise(20, LINE)[0]
    listener.feed(frame)
    assert listener.features_for(frame) is listener._last[1]  # type: ignore[index]  # the same analysis
    run(dtmf_frames((697.0, 1209.0), 120) + noise(200, LINE))  # "1" during the watch
    run(noise(REVISE_UNTIL_MS - listener.ms + 200, LINE))
    assert listener.idle
    run(dtmf_frames((770.0, 1336.0), 120) + noise(200, LINE))  # "5" after it
    assert heard == ["1", "5"], heard


def test_after_the_watch_a_modem_that_reports_keys_is_trusted_alone() -> None:
    """With ``urc_keys`` (the dialect reports DTMF itself) the in-band detector hears keys
    while the watch runs, and analyses nothing once it is over."""
    from appliance.jobs.live import SharedDtmf

    listener = Listener(port=None)  # type: ignore[arg-type]
    shared = SharedDtmf(listener, urc_keys=True)
    heard: list[str] = []

    def run(frames: list[bytes]) -> None:
        for f in frames:
            listener.feed(f)
            heard.extend(d.digit for d in shared.feed(f))

    run(noise(400, LINE) + noise(500, TALK) + noise(1500, LINE) + dtmf_frames((697.0, 1209.0), 120) + noise(200, LINE))
    run(noise(REVISE_UNTIL_MS - listener.ms + 200, LINE))
    run(dtmf_frames((770.0, 1336.0), 120) + noise(200, LINE))
    assert listener.idle and heard == ["1"], heard
