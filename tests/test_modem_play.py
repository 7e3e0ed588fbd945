"""Text-to-speech during a call ("play a message"), driver and emulator together over real
pseudo-terminals: SIMCom ``AT+CTTS`` and Quectel ``AT+QTTS`` speak Polish and English
text that the network log then holds; the end URC ends the playback; a callee hanging up
mid-message ends it with the call; Huawei and generic modems have no TTS; a modem refuses
TTS outside a call."""
from __future__ import annotations

import asyncio
import math

import pytest

from modem_drivers.at import CommandFailed
from modem_drivers.call import CallState
from modem_drivers.dialects import HUAWEI, QUECTEL, SIMCOM, TTS_MAX_CHARS
from modem_drivers.emulator import Emulator, Timing
from modem_drivers.emulator._timing import PROFILES
from modem_drivers.errors import ModemError, PlaybackFailed, TtsUnsupported
from modem_drivers.modem import Modem, PlaybackEnd

POLISH = "Dzień dobry. Prosimy o pilny kontakt w sprawie zaległej płatności: żółć, źdźbło."
ENGLISH = "Good morning. Please call us back about your overdue payment."
HUMAN = "+48600000123"  # plan behaviour 0: answers, stays 60 s
MODELS = ("SIMCOM_SIM7600E-H", "EC25", "E1550", "GSM-27007", "SIM800")
#: Characters a second the emulated voice speaks in these tests: a message takes a
#: fraction of a second, long enough to measure, short enough for CI.
RATE = 400.0


pytestmark = pytest.mark.bank(modems=len(MODELS), vendors=MODELS, timing=Timing.FAST, seed=5, speech_rate=RATE)


def vm_of(emu: Emulator, model: str):
    return next(m for m in emu.modems if m.model == model)


@pytest.fixture
async def opened(emu):
    modems: dict[str, Modem] = {}
    yield lambda model: _open(emu, modems, model)
    for m in modems.values():
        await m.close()


async def _open(emu: Emulator, modems: dict[str, Modem], model: str) -> Modem:
    if model not in modems:
        modems[model] = await Modem.open(vm_of(emu, model).port)
    return modems[model]


async def answered(m: Modem, number: str = HUMAN):
    call = await m.dial(number)
    assert await call.wait_for(CallState.ACTIVE, timeout=5) is CallState.ACTIVE
    return call


@pytest.mark.parametrize("model", ["SIMCOM_SIM7600E-H", "EC25", "SIM800"])
@pytest.mark.parametrize("text", [POLISH, ENGLISH], ids=["polish", "english"])
async def test_message_is_heard_by_the_callee(emu, opened, model, text):
    m = await opened(model)
    call = await answered(m)
    playback = await m.play_tts(text, timeout=10)
    assert playback.end is PlaybackEnd.FINISHED
    assert playback.seconds >= len(text) / RATE * 0.9  # the end URC came after the voice, not at OK
    assert not call.released  # the message does not end the call; the caller hangs up
    await m.hangup()
    record = emu.network.calls[-1]
    assert record.callee == HUMAN and len(record.played) == 1
    played = record.played[0]
    assert played.text == text  # UCS2 hex (Polish) and ASCII (English) both arrive intact
    assert played.completed and played.heard
    assert played.seconds == pytest.approx(len(text) / RATE, abs=0.15)


async def test_two_messages_in_one_call_are_logged_in_order(emu, opened):
    m = await opened("EC25")
    await answered(m)
    for text in (ENGLISH, POLISH):
        assert (await m.play_tts(text, timeout=10)).end is PlaybackEnd.FINISHED
    await m.hangup()
    assert [p.text for p in emu.network.calls[-1].played] == [ENGLISH, POLISH]


async def test_sim7600_plays_to_the_far_end_only_after_cdtam(emu, opened):
    """The driver's setup row switches the SIM7600 TTS path to remote (AT+CDTAM=1); with
    the local path the modem still speaks, but the callee hears nothing."""
    m = await opened("SIMCOM_SIM7600E-H")
    assert vm_of(emu, "SIMCOM_SIM7600E-H").settings.tts_path == 1
    await m.port.command("AT+CDTAM=0")
    await answered(m)
    assert (await m.play_tts(ENGLISH, timeout=10)).end is PlaybackEnd.FINISHED
    await m.hangup()
    assert emu.network.calls[-1].played[0].heard is False


@pytest.mark.parametrize("model", ["E1550", "GSM-27007"])
async def test_modems_without_tts_cannot_play(emu, opened, model):
    m = await opened(model)
    call = await answered(m)
    with pytest.raises(TtsUnsupported, match="no text-to-speech"):
        await m.play_tts(ENGLISH, timeout=5)
    assert call.state is CallState.ACTIVE  # the call goes on; the caller decides
    # Sent anyway, the command is refused as the real firmware refuses unknown commands.
    with pytest.raises((CommandFailed, ModemError)):
        await m.port.command('AT+CTTS=2,"hello"')
    await m.hangup()
    assert emu.network.calls[-1].played == []


@pytest.mark.parametrize("model,command", [("SIMCOM_SIM7600E-H", "AT+CTTS"), ("EC25", "AT+QTTS")])
async def test_tts_outside_a_call_is_refused(emu, opened, model, command):
    m = await opened(model)
    with pytest.raises(PlaybackFailed, match="answered call"):
        await m.play_tts(ENGLISH, timeout=5)
    # The modem itself refuses too (the driver's check is not the only guard).
    with pytest.raises(CommandFailed):
        await m.port.command(f'{command}=2,"hello"')
    call = await answered(m)
    await m.hangup()
    assert call.released
    with pytest.raises(CommandFailed):  # nor after the call ended
        await m.port.command(f'{command}=2,"hello"')
    with pytest.raises(PlaybackFailed, match="answered call"):
        await m.play_tts(ENGLISH, timeout=5)


@pytest.mark.bank(modems=2, vendors=("SIMCOM_SIM7600E-H", "EC25"), timing=Timing.FAST, seed=5,
                  speech_rate=20.0)  # 81 chars ≈ 4 s
async def test_callee_hanging_up_mid_message_ends_playback_and_call(emu):
    for vm in emu.modems:
        async with await Modem.open(vm.port) as m:
            call = await answered(m)
            playing = asyncio.create_task(m.play_tts(POLISH, timeout=30))
            async with asyncio.timeout(5):
                while not vm.speaker.playing:
                    await asyncio.sleep(0.01)
            await asyncio.sleep(0.3)
            await emu.callee_hangs_up(vm.id)
            playback = await asyncio.wait_for(playing, 5)
            assert playback.end is PlaybackEnd.CALL_RELEASED
            assert playback.seconds < len(POLISH) / 20.0 * 0.8  # cut short (upper bound loose for slow CI)
            await call.wait_released(5)
            report = call.report()
            assert report.outcome.value == "answered_human" and report.cause == 16
            assert not report.local_release
            played = emu.network.calls[-1].played
            assert len(played) == 1 and not played[0].completed
            assert 0.2 < played[0].seconds < len(POLISH) / 20.0 * 0.8
            assert not vm.speaker.playing and vm.call is None


@pytest.mark.bank(modems=1, vendors=("EC25",), timing=Timing.FAST, seed=5, speech_rate=10.0)
async def test_playback_past_its_deadline_is_stopped(emu):
    vm = emu.modems[0]
    async with await Modem.open(vm.port) as m:
        call = await answered(m)
        playback = await m.play_tts(ENGLISH, timeout=0.5)
        assert playback.end is PlaybackEnd.TIMED_OUT
        assert 0.45 <= playback.seconds < 5.0  # stopped long before the ~9 s message ends
        assert not vm.speaker.playing  # AT+QTTS=0 stopped the voice
        assert call.state is CallState.ACTIVE
        # The engine is free again: the next message plays.
        await emu.callee_hangs_up(vm.id)
        await call.wait_released(5)
    played = emu.network.calls[-1].played
    assert len(played) == 1 and not played[0].completed and played[0].seconds < 5.0


@pytest.mark.bank(modems=1, vendors=("SIM800",), timing=Timing.FAST, seed=5, speech_rate=10.0)
async def test_second_message_while_one_plays_is_refused(emu):
    async with await Modem.open(emu.modems[0].port) as m:
        await answered(m)
        await m.port.command('AT+CTTS=2,"one two three four five"')
        with pytest.raises(CommandFailed):
            await m.port.command('AT+CTTS=2,"six"')
        r = await m.port.command("AT+CTTS?", expect="+CTTS")
        assert r.value("+CTTS") == "1"
        await m.hangup()
        assert emu.network.calls[-1].played[0].text == "one two three four five"


# -- the command line, as data (no tty needed) --------------------------------------------
def test_ascii_text_is_sent_as_is_and_anything_else_as_ucs2_hex():
    assert SIMCOM.tts.command_for("Hello") == 'AT+CTTS=2,"Hello"'
    assert QUECTEL.tts.command_for("Hello") == 'AT+QTTS=2,"Hello"'
    assert QUECTEL.tts.command_for("Łódź") == 'AT+QTTS=1,"014100F30064017A"'
    # a quote or a line break cannot sit inside a quoted ASCII parameter
    assert SIMCOM.tts.command_for('say "yes"').startswith("AT+CTTS=1,")
    assert SIMCOM.tts.command_for("a\rb") == 'AT+CTTS=1,"0061000D0062"'
    assert HUAWEI.tts is None


def test_longest_message_fits_the_simcom_command_line():
    assert TTS_MAX_CHARS == 136  # (556 - len('+CTTS=1,""')) // 4
    for tts in (SIMCOM.tts, QUECTEL.tts):
        line = tts.command_for("ż" * TTS_MAX_CHARS)
        assert len(line) - 2 <= 556
        with pytest.raises(ValueError, match="at most 136"):
            tts.command_for("ż" * (TTS_MAX_CHARS + 1))
    with pytest.raises(ValueError, match="emoji"):
        SIMCOM.tts.command_for("Hi 🙂")
    with pytest.raises(ValueError, match="empty"):
        SIMCOM.tts.command_for("")


def test_realistic_voice_takes_seconds_and_fast_timing_none():
    import random

    rng = random.Random(0)
    realistic = PROFILES[Timing.REALISTIC].speech_seconds(rng, "x" * 150)
    assert 10.0 + 0.2 <= realistic <= 10.0 + 0.5  # 15 characters a second after 0.2–0.5 s
    assert PROFILES[Timing.FAST].speech_seconds(rng, "x" * 150) == 0.0
    assert math.isinf(PROFILES[Timing.FAST].speech_chars_per_second)
