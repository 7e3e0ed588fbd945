"""The live ``Listener`` stops its detectors once a person's revision watch is over: the
beep and the greeting's end are the machine branch's, which no longer runs (bench live:
the front end was a third of a dialogue's CPU after 14 s). Until then, and for a machine,
it keeps hearing: a beep is still found."""
from __future__ import annotations

import numpy as np

from appliance.audio.events import AmdResult
from appliance.jobs.live import REVISE_UNTIL_MS, Listener

RNG = np.random.default_rng(7)


def _noise(ms: int, dbfs: float) -> np.ndarray:
    return RNG.normal(0, 32768 * 10 ** (dbfs / 20), 8 * ms)


def _beep(ms: int) -> np.ndarray:
    t = np.arange(8 * ms) / 8000
    return 32768 * 10 ** (-15 / 20) * np.sqrt(2) * np.sin(2 * np.pi * 1000 * t) + _noise(ms, -66)


def _feed(listener: Listener, x: np.ndarray) -> None:
    pcm = np.clip(np.rint(x), -32768, 32767).astype("<i2").tobytes()
    for i in range(0, len(pcm) - 319, 320):
        listener.feed(pcm[i : i + 320])


def _call(greeting_ms: int, beep_at_ms: int) -> Listener:
    listener = Listener(None)  # type: ignore[arg-type]  # feed() never touches the port
    _feed(listener, np.concatenate([_noise(300, -66), _noise(greeting_ms, -20)]))
    _feed(listener, _noise(beep_at_ms - 300 - greeting_ms, -66))
    _feed(listener, np.concatenate([_beep(400), _noise(1000, -66)]))
    return listener


def test_a_person_past_the_watch_is_no_longer_analysed() -> None:
    person = _call(500, REVISE_UNTIL_MS + 1000)
    assert person.first is not None and person.first.result is AmdResult.HUMAN, person.first
    assert person.revision is None and person.beep_ms is None  # nothing analysed the late tone
    assert person.ms == (REVISE_UNTIL_MS + 1000 + 1400) // 20 * 20  # the call's clock still runs


def test_within_the_watch_and_for_a_machine_the_beep_is_heard() -> None:
    early = _call(500, REVISE_UNTIL_MS - 3000)
    assert early.first is not None and early.first.result is AmdResult.HUMAN
    assert early.revision is not None and early.revision.rule == "beep" and early.beep_ms is not None
    machine = _call(2500, REVISE_UNTIL_MS + 1000)
    assert machine.first is not None and machine.first.result is AmdResult.MACHINE
    assert machine.beep_ms is not None and machine.beep_ms > REVISE_UNTIL_MS
