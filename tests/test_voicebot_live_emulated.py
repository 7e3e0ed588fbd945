"""The voicebot on a live emulated call: dial a listening keypad person through the Modem,
wait for the audio path (``audio_ready``), run the shipped dialogue with espeak-ng prompts,
and check the result against what the far end keyed and heard (docs/emulator.md, "What the
far end heard"). Slow-ish: the dialogue runs on the real clock (prompts at 230 words a
minute, the fast end of the corpus's range, keep it well inside the callee's 60 s)."""
from __future__ import annotations

import asyncio
import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest

from appliance.voicebot import Identity, JobVariables, shipped
from appliance.voicebot.live import LiveStats, run_dialogue
from appliance.voicebot.tts import Synthesiser
from modem_drivers.call import CallState
from modem_drivers.emulator import Emulator, Timing
from modem_drivers.modem import Modem

CONFIRMS = "+48600890111"  # behaviour 8, V = 9, W = 0: "1", a date 2-9 days ahead, "1"


@pytest.fixture(scope="module")
def sound_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("sounds")


async def test_the_keypad_person_confirms_a_date_on_a_live_call(emulated_bank, sound_cache: Path,  # type: ignore[no-untyped-def]
                                                                 tmp_path: Path) -> None:
    emu: Emulator
    emu, _ = await emulated_bank(modems=1, vendors=("huawei",), timing=Timing.FAST,
                                 sound_cache=sound_cache, control_port=None)
    vm = emu.modems[0]
    assert vm.audio_port is not None
    today = dt.date.today()
    variables = JobVariables(creditor="Kredyt Plus", debtor_name="Jan Kowalski", amount=Decimal("123.45"),
                             currency="PLN", due_date=today - dt.timedelta(days=20), window_start=today,
                             window_end=today + dt.timedelta(days=30))
    modem = await Modem.open(vm.port)
    try:
        port = await modem.audio_port(vm.audio_port)
        call = await modem.dial(CONFIRMS)
        assert await call.wait_for(CallState.ACTIVE, timeout=10) is CallState.ACTIVE
        assert await asyncio.wait_for(modem.audio_ready(), 5) is port
        stats = LiveStats()
        result = await asyncio.wait_for(
            run_dialogue(port, modem, shipped("promise_to_pay", "en"), variables,
                         prompts=Synthesiser(cache_dir=tmp_path / "prompts", speed_wpm=230), stats=stats), 90)
        await modem.hangup()
    finally:
        await modem.close()
    assert result.identity is Identity.CONFIRMED and not result.hung_up
    assert result.promise_date is not None and 2 <= (result.promise_date - today).days <= 9
    assert result.path == ("greet", "identity", "debt", "ask_date", "read_back", "thanks")
    record = next(r for r in reversed(emu.network.calls) if r.callee == CONFIRMS)
    assert record.audio is not None and record.audio.kind == "keypad"
    keyed = [k.digit for k in record.audio.keys]
    assert [k for k, _ in result.digits] == keyed == list(record.dtmf)  # each key once, URC and in band
    assert stats.keys_urc == stats.keys_in_band == len(keyed) and stats.keys_merged == len(keyed)
    # he heard the prompts: greet+identity, debt+ask_date, read_back, and the goodbye
    assert len(record.audio.heard) >= 4
    assert port.stats.late_writes == 0
