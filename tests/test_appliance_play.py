"""Calls that play a message when answered (``on_answer = "play"``): an emulated bank and a
real Appliance; each job pinned to one modem by its SIM's number (hints.fixed_number), the
emulator's network log as the ground truth of what the callee heard."""
from __future__ import annotations

import asyncio

import pytest

from appliance.config import ConfigError, parse_config
from appliance.jobs import Placement, run_call
from appliance.jobspec import MAX_MESSAGE_LENGTH, JobError, validate_batch, validate_job
from appliance.runtime import Appliance
from modem_drivers.emulator import Emulator, Timing
from modem_drivers.modem import Modem
from test_appliance_dispatch import config as dispatch_config, run_until_final

POLISH = "Dzień dobry, tu biuro windykacji. Prosimy o pilny kontakt w sprawie zaległej płatności."
ENGLISH = "Good morning, this is the collections office. Please call us back about your payment."
#: Characters a second the emulated TTS voice speaks: ~0.2 s a message.
RATE = 400.0


# simcom (SIM7600), quectel (EC25), huawei (E1550), generic: one modem each
pytestmark = pytest.mark.bank(modems=4, timing=Timing.FAST, seed=11, speech_rate=RATE)


def config(tmp_path, state_file, **calls) -> dict:
    """test_appliance_dispatch's bank config (no caps, one attempt) with these [calls]."""
    return {**dispatch_config(tmp_path, state_file), "calls": calls}


def job(emu: Emulator, vendor: str, n: int, **call) -> dict:
    """A call to a behaviour-0 callee (answers, stays 60 s) from ``vendor``'s SIM."""
    vm = next(m for m in emu.modems if m.vendor == vendor)
    return {"id": f"{vendor}-{n}", "kind": "call", "callee": f"+486000{n:05d}",
            "hints": {"fixed_number": vm.sims[0].msisdn}, "call": call}


async def run_jobs(app: Appliance, raw: list[dict], timeout: float = 30) -> dict[str, dict]:
    """Validate as the API does, then run to one final result per job."""
    good, errors = validate_batch(raw)
    assert not errors
    return await run_until_final(app, good, timeout)


def record_of(emu: Emulator, callee: str):
    (record,) = [c for c in emu.network.calls if c.callee == callee]
    return record


async def test_simcom_and_quectel_play_polish_and_english_huawei_says_why_not(tmp_path, bank):
    emu, state = bank
    app = Appliance(parse_config(config(tmp_path, state)), seed=1)
    await app.start()
    jobs = [
        job(emu, "simcom", 1, on_answer="play", message=POLISH),
        job(emu, "simcom", 2, on_answer="play", message=ENGLISH),
        job(emu, "quectel", 3, on_answer="play", message=POLISH),
        job(emu, "quectel", 4, on_answer="play", message=ENGLISH),
        job(emu, "huawei", 5, on_answer="play", message=POLISH),
        job(emu, "generic", 6, on_answer="play", message=ENGLISH),
        job(emu, "simcom", 7),  # on_answer defaults to hangup: nothing played, no fields
    ]
    try:
        finals = await run_jobs(app, jobs)
    finally:
        await app.stop()
    for j in jobs[:4]:
        r = finals[j["id"]]
        assert r["outcome"] == "answered_human" and r["cause"] == 16, r
        assert r["message_played"] is True and "message_error" not in r
        assert r["message_seconds"] >= len(j["call"]["message"]) / RATE * 0.9
        assert r["local_release"]  # we hung up after the message, the callee did not
        (played,) = record_of(emu, j["callee"]).played
        assert (played.text, played.completed, played.heard) == (j["call"]["message"], True, True)
    for j in jobs[4:6]:
        r = finals[j["id"]]
        assert r["outcome"] == "answered_human", r  # the call keeps its normal outcome
        assert r["message_played"] is False and r["message_seconds"] == 0.0
        assert "no text-to-speech" in r["message_error"]
        assert record_of(emu, j["callee"]).played == []
    plain = finals[jobs[6]["id"]]
    assert plain["outcome"] == "answered_human" and "message_played" not in plain
    assert record_of(emu, jobs[6]["callee"]).played == []


async def test_the_configured_message_reaches_jobs_that_bring_none(tmp_path, bank):
    emu, state = bank
    app = Appliance(parse_config(config(tmp_path, state, on_answer="play", message="Prosimy o kontakt.")), seed=1)
    await app.start()
    try:
        finals = await run_jobs(app, [job(emu, "simcom", 21), job(emu, "quectel", 22, message=ENGLISH)])
    finally:
        await app.stop()
    assert finals["simcom-21"]["message_played"] is True
    assert [p.text for p in record_of(emu, "+48600000021").played] == ["Prosimy o kontakt."]
    assert [p.text for p in record_of(emu, "+48600000022").played] == [ENGLISH]  # the job's own wins


@pytest.mark.bank(modems=1, vendors=("quectel",), timing=Timing.FAST, seed=11,
                  speech_rate=20.0)  # the Polish message takes ~4.4 s
async def test_callee_hanging_up_mid_message_ends_the_call_cleanly(tmp_path, bank):
    emu, state = bank
    app = Appliance(parse_config(config(tmp_path, state, on_answer="play", message=POLISH)), seed=1)
    await app.start()
    vm = emu.modems[0]

    async def hang_up_when_speaking() -> None:
        while not vm.speaker.playing:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.5)
        await emu.callee_hangs_up(vm.id)

    hanger = asyncio.create_task(hang_up_when_speaking())
    try:
        finals = await run_jobs(app, [job(emu, "quectel", 1, on_answer="play", message=POLISH)])
        await asyncio.wait_for(hanger, 1)
        # The channel is free again: the next message on it plays to its end.
        after = await run_jobs(app, [job(emu, "quectel", 2, on_answer="play", message="Do widzenia.")])
    finally:
        hanger.cancel()
        await app.stop()
    r = finals["quectel-1"]
    assert r["outcome"] == "answered_human" and r["cause"] == 16
    assert not r["local_release"]  # the callee released the call
    assert r["message_played"] is False and "hung up" in r["message_error"]
    assert 0.4 < r["message_seconds"] < len(POLISH) / 20.0 * 0.8  # cut short; loose for slow CI
    (played,) = record_of(emu, r["callee"]).played
    assert played.text == POLISH and not played.completed and played.seconds < len(POLISH) / 20.0 * 0.8
    assert after["quectel-2"]["message_played"] is True


@pytest.mark.bank(modems=1, vendors=("simcom",), timing=Timing.FAST, seed=11,
                  speech_rate=10.0)  # ~9 s of speech
async def test_max_talk_seconds_bounds_the_message(emu):
    vm = emu.modems[0]
    async with await Modem.open(vm.port) as modem:
        # The scheduler's [calls] defaults: on_answer and message from the config.
        defaults = {"max_ring_seconds": 10.0, "max_talk_seconds": 1.0, "on_answer": "play", "message": ENGLISH}
        spec = {"id": "t1", "kind": "call", "callee": "+48600000042"}
        place = Placement("ch", "sim", vm.sims[0].msisdn, 1)
        r = await run_call(modem, spec, place, defaults)
    assert r["outcome"] == "answered_human" and r["local_release"]
    assert r["message_played"] is False and "max_talk_seconds" in r["message_error"]
    assert 0.9 <= r["message_seconds"] < 5.0 and r["talk_seconds"] < 5.0  # ~9 s message stopped at 1 s
    (played,) = emu.network.calls[-1].played
    assert played.text == ENGLISH and not played.completed


# -- validation -----------------------------------------------------------------------------
def base_config(tmp_path, **calls) -> dict:
    return {"appliance": {"id": "x", "listen": ""}, "modem": [{"id": "m1", "port": "/dev/null"}],
            "calls": calls}


@pytest.mark.parametrize("calls, words", [
    ({"on_answer": "play"}, ["[calls] message", 'on_answer = "play" needs the message', "fix:", "136"]),
    ({"on_answer": "play", "message": "ż" * 137}, ["[calls] message", "137 characters", "136", "fix:"]),
    ({"on_answer": "play", "message": "   "}, ["[calls] message", "non-empty"]),
    ({"on_answer": "sing"}, ["[calls] on_answer", "'sing'", "'play'"]),
])
def test_config_mistakes_name_the_key_and_the_fix(tmp_path, calls, words):
    with pytest.raises(ConfigError) as err:
        parse_config(base_config(tmp_path, **calls), source="a.toml")
    for w in words:
        assert w in str(err.value), (w, str(err.value))


def test_config_play_with_a_message_loads(tmp_path):
    cfg = parse_config(base_config(tmp_path, on_answer="play", message=POLISH), source="a.toml")
    assert (cfg.calls.on_answer, cfg.calls.message) == ("play", POLISH)


@pytest.mark.parametrize("call, field, words", [
    ({"on_answer": "play"}, "call.message", ["needs the message"]),
    ({"on_answer": "play", "message": "x" * (MAX_MESSAGE_LENGTH + 1)}, "call.message", ["137 characters", "556"]),
    ({"on_answer": "play", "message": "Hi 🙂"}, "call.message", ["UCS2"]),
    ({"on_answer": "play", "message": 42}, "call.message", ["non-empty text"]),
    ({"on_answer": "dance"}, "call.on_answer", ["hangup, hold, play, amd", "'dance'"]),
])
def test_job_mistakes_name_the_field_and_the_reason(call, field, words):
    with pytest.raises(JobError) as err:
        validate_job({"id": "j", "kind": "call", "callee": "+48600000001", "call": call})
    assert err.value.field == field
    for w in words:
        assert w in err.value.reason, (w, err.value.reason)


def test_job_message_of_the_longest_length_and_a_bare_override_pass():
    ok = validate_job({"id": "j", "kind": "call", "callee": "+48600000001",
                       "call": {"on_answer": "play", "message": "ż" * MAX_MESSAGE_LENGTH}})
    assert len(ok["call"]["message"]) == MAX_MESSAGE_LENGTH == 136
    # a message alone overrides the configured one when [calls] on_answer = "play"
    assert validate_job({"id": "k", "kind": "call", "callee": "+48600000001", "call": {"message": "Hej"}})
