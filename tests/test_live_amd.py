"""``on_answer: "amd"`` end to end on the emulator: the call executor dials from a virtual
Huawei with its audio port, decides human or machine on the live audio, and runs the
decision's branch; the emulator's record of the call (what its far end heard, and when its
beep ended) is the ground truth."""
from __future__ import annotations

import os
import time
from typing import Any

from appliance.jobs.base import Placement
from appliance.jobs.call import run_call
from modem_drivers.emulator import Emulator, Timing
from modem_drivers.modem import Modem

PERSON = "+48600000123"  # plan behaviour 0, V = 0: a Polish person says hello and waits
MACHINE = "+48601100200"  # behaviour 1: greeting, beep, then it records
MESSAGE = "Dzień dobry, prosimy o pilny kontakt z działem obsługi klienta."
AMD = {"on_answer": "amd", "on_machine": "leave_message", "on_human": "play", "message": MESSAGE, "lang": "pl",
       "max_ring_seconds": 30.0, "max_talk_seconds": 40.0}


def job(callee: str) -> dict[str, Any]:
    return {"id": f"j{callee}", "kind": "call", "callee": callee}


def record_of(emu: Emulator, callee: str) -> Any:
    return next(r for r in reversed(emu.network.calls) if r.callee == callee)


async def machine_greeting_call(emulated_bank: Any, tmp_path: Any, greeting: Any, opts: dict[str, Any]) -> tuple[Emulator, dict[str, Any]]:
    """One call to MACHINE on a Huawei whose far end plays ``greeting`` (int16 samples at
    8 kHz, as --audio-dir's machine.wav); the emulator and the call's result."""
    import wave

    (tmp_path / "voices").mkdir()
    with wave.open(str(tmp_path / "voices" / "machine.wav"), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(greeting.tobytes())
    emu, _ = await emulated_bank(modems=1, vendors=("huawei",), timing=Timing.FAST, control_port=None,
                                 audio_dir=tmp_path / "voices")
    vm = emu.modems[0]
    modem = await Modem.open(vm.port)
    try:
        await modem.audio_port(vm.audio_port)
        return emu, await run_call(modem, job(MACHINE), Placement("m1", "s1", "+48690000000", 1), opts)
    finally:
        await modem.close()


async def on_huawei(emulated_bank: Any, n: int = 1) -> tuple[Emulator, list[Any]]:
    emu, _ = await emulated_bank(modems=n, vendors=("huawei",), timing=Timing.FAST, control_port=None)
    return emu, list(emu.modems)


async def test_a_machine_gets_the_message_after_its_beep(emulated_bank) -> None:  # type: ignore[no-untyped-def]
    emu, (vm,) = await on_huawei(emulated_bank)
    modem = await Modem.open(vm.port)
    try:
        await modem.audio_port(vm.audio_port)
        result = await run_call(modem, job(MACHINE), Placement("m1", "s1", "+48690000000", 1), AMD)
    finally:
        await modem.close()
    assert result["outcome"] == "answered_machine", result
    amd = result["amd"]
    assert amd["decision"] == "machine" or amd["revised"], amd
    assert result["message_played"] is True, result
    audio = record_of(emu, MACHINE).audio
    assert audio is not None and audio.beep_ms is not None
    # the far end heard the message after its beep (its recording), and our beep agrees with its
    assert any(s.start_ms >= audio.beep_ms and s.end_ms - s.start_ms > 1000 for s in audio.heard), (audio.heard, audio.beep_ms)
    assert result["beep_ms"] is not None and abs(result["beep_ms"] - audio.beep_ms) <= 200, (result["beep_ms"], audio.beep_ms)


async def test_a_person_hears_the_message_within_a_second_of_his_greeting(emulated_bank) -> None:  # type: ignore[no-untyped-def]
    emu, (vm,) = await on_huawei(emulated_bank)
    modem = await Modem.open(vm.port)
    try:
        await modem.audio_port(vm.audio_port)
        result = await run_call(modem, job(PERSON), Placement("m1", "s1", "+48690000000", 1), AMD)
    finally:
        await modem.close()
    assert result["outcome"] == "answered_human", result
    assert result["amd"]["decision"] in ("human", "unsure") and result["amd"]["revised"] is False, result["amd"]
    assert result["message_played"] is True, result
    audio = record_of(emu, PERSON).audio
    assert audio is not None and audio.heard, audio
    first = audio.heard[0]
    # said within 1 s of the AMD's verdict (itself 0.2–0.5 s after the greeting's end)
    assert first.start_ms - result["amd"]["decided_ms"] <= 1000, (first, result["amd"])
    assert first.end_ms - first.start_ms > 1000


async def test_an_audio_port_that_carries_nothing_ends_audio_fault(emulated_bank) -> None:  # type: ignore[no-untyped-def]
    """The customer's mistake: [[modem]] audio names a tty that is not the modem's voice port
    (here a pty nobody writes to). The call is answered, no frame comes within 500 ms."""
    emu, (vm,) = await on_huawei(emulated_bank)
    master, slave = os.openpty()
    modem = await Modem.open(vm.port)
    try:
        await modem.audio_port(os.ttyname(slave))
        t0 = time.monotonic()
        result = await run_call(modem, job(PERSON), Placement("m1", "s1", "+48690000000", 1), AMD)
        took = time.monotonic() - t0
    finally:
        await modem.close()
        os.close(master)
        os.close(slave)
    assert result["outcome"] == "audio_fault", result
    assert "500 ms" in result["error"] or "frame" in result["error"], result["error"]
    assert "amd" not in result and took < 15
    assert not record_of(emu, PERSON).audio or not record_of(emu, PERSON).audio.heard


async def test_without_an_audio_port_the_modems_tts_is_the_fallback(emulated_bank) -> None:  # type: ignore[no-untyped-def]
    emu, _ = await emulated_bank(modems=1, vendors=("generic",), timing=Timing.FAST, control_port=None)
    vm = emu.modems[0]
    assert vm.audio_port is None
    modem = await Modem.open(vm.port)
    try:
        result = await run_call(modem, job(PERSON), Placement("m1", "s1", "+48690000000", 1), {**AMD, "message": "Dzień dobry"})
    finally:
        await modem.close()
    assert "amd" not in result and "no audio port" in result["detail"], result
    assert result["outcome"] == "answered_human"


async def test_a_machine_without_a_beep_gets_the_message_after_its_greeting(emulated_bank, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """--audio-dir plays a greeting with no beep (its end counts as the beep's end on the far
    end's record): after 10 s without a beep the message goes once the greeting has ended."""
    import numpy as np

    rng = np.random.default_rng(1)
    # 0.4 s of quiet (the emulator plays a recording as recorded, its onset included), then 3 s of talk, about −22 dBFS
    greeting = np.concatenate([np.zeros(3200), rng.normal(0, 2600, 8000 * 3)]).clip(-32768, 32767).astype("<i2")
    emu, result = await machine_greeting_call(emulated_bank, tmp_path, greeting, AMD)
    assert result["outcome"] == "answered_machine" and result["amd"]["rule"] == "long_greeting", result
    assert result["beep_ms"] is None and result["message_played"] is True, result
    audio = record_of(emu, MACHINE).audio
    assert audio is not None and audio.beep_ms is not None  # the greeting's end, on the far end's timeline
    spans = [s for s in audio.heard if s.start_ms >= audio.beep_ms]
    assert spans and spans[0].start_ms >= result["amd"]["decided_ms"] + 10000, (spans, result["amd"])


async def test_a_person_runs_the_voicebot(emulated_bank) -> None:  # type: ignore[no-untyped-def]
    """A listening keypad person (B = 8, V = 9, W = 0: he confirms, then keys a date) answers;
    the AMD hands him to the promise-to-pay dialogue, which hears his keys. (The shipped
    Polish prompts at espeak-ng's pace run ~55 s to the read-back, and the emulator's person
    hangs up after 60 s: the promise date itself is the voicebot's tests' to check.)"""
    import datetime as dt

    callee = "+48600890111"
    today = dt.date.today()
    opts = {**AMD, "on_human": "voicebot", "dialogue": "promise_to_pay", "max_talk_seconds": 90.0,
            "voicebot": {"creditor": "Kredyt Plus", "debtor_name": "Jan Kowalski", "amount": "123.45", "currency": "PLN",
                         "due_date": (today - dt.timedelta(days=10)).isoformat(),
                         "window_end": (today + dt.timedelta(days=30)).isoformat()}}
    emu, (vm,) = await on_huawei(emulated_bank)
    modem = await Modem.open(vm.port)
    try:
        await modem.audio_port(vm.audio_port)
        result = await run_call(modem, job(callee), Placement("m1", "s1", "+48690000000", 1), opts)
    finally:
        await modem.close()
    assert result["outcome"] == "answered_human" and result["amd"]["decision"] in ("human", "unsure"), result
    bot = result["voicebot"]
    assert bot["identity"] == "confirmed" and bot["path"][:4] == ["greet", "identity", "debt", "ask_date"], bot
    audio = record_of(emu, callee).audio
    assert audio.heard and audio.heard[0].start_ms - result["amd"]["decided_ms"] <= 1000, (audio.heard, result["amd"])
    keyed = [k.digit for k in audio.keys]
    assert keyed[0] == "1" and [d["key"] for d in bot["digits"]][:1] == ["1"], (keyed, bot["digits"])


async def test_a_machine_judged_human_is_revised_during_the_voicebot_dialogue(emulated_bank, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A greeting that pauses after its first word (0.4 s of line, "Halo." 0.5 s, then
    0.9 s of quiet: a fast "human") and runs on for 3 s, then beeps: the dialogue has started, the watch
    hears its frames too, revises to machine, the dialogue stops and the message goes
    after the beep."""
    import datetime as dt

    import numpy as np

    from appliance.audio.tones import tone_signal

    rng = np.random.default_rng(2)

    def talk(ms: int) -> np.ndarray:
        return rng.normal(0, 2600, 8 * ms).clip(-32768, 32767)

    beep = tone_signal(1000.0, 400, 6000.0)
    greeting = np.concatenate([np.zeros(8 * 400), talk(500), np.zeros(8 * 900), talk(3000), np.zeros(8 * 300), beep])
    # a recording carries its line's noise throughout (−60 dBFS), its onset included
    greeting = (greeting + rng.normal(0, 32768 * 10 ** (-60 / 20), len(greeting))).clip(-32768, 32767).astype("<i2")
    today = dt.date.today()
    opts = {**AMD, "on_human": "voicebot", "dialogue": "promise_to_pay",
            "voicebot": {"creditor": "Kredyt Plus", "debtor_name": "Jan Kowalski", "amount": "123.45", "currency": "PLN",
                         "due_date": today.isoformat(), "window_end": (today + dt.timedelta(days=30)).isoformat()}}
    emu, result = await machine_greeting_call(emulated_bank, tmp_path, greeting, opts)
    amd = result["amd"]
    assert amd["decision"] == "human" and amd["revised"] is True and amd["revised_rule"] == "long_greeting", (amd, result)
    assert amd["revised_ms"] > amd["decided_ms"], amd
    assert result["outcome"] == "answered_machine" and "voicebot" not in result and result["message_played"], result
    assert result["beep_ms"] is not None, result
    audio = record_of(emu, MACHINE).audio
    assert audio is not None and audio.beep_ms is not None
    assert audio.heard[0].start_ms < amd["revised_ms"], audio.heard  # the dialogue's first prompt had begun
    assert any(s.start_ms >= audio.beep_ms for s in audio.heard), (audio.heard, audio.beep_ms)
