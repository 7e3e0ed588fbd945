"""The driver's audio path end to end on the emulator: a Modem on a virtual Huawei,
SIM7600 or EC25 opens the modem's audio pty (its path in the state file), dials a person,
and after the answer its voice path is judged live; frames flow both ways and what the
driver writes is what the far end heard."""
from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from modem_drivers.audio import FRAME_BYTES
from modem_drivers.call import CallState
from modem_drivers.emulator import Emulator, Timing
from modem_drivers.emulator._plan import plan_behaviour
from modem_drivers.modem import Modem

PERSON = "+48600000123"  # plan behaviour 0: answers, says something, stays
MODELS = ("E1550", "SIMCOM_SIM7600E-H", "EC25")
STEPS = {"E1550": "AT^DDSETEX=2", "SIMCOM_SIM7600E-H": "AT+CPCMREG=1", "EC25": "AT+QPCMV=1,0"}
TONE = (b"\x00\x10" + b"\x00\xf0") * (FRAME_BYTES // 4)  # a loud square wave, never zero


@pytest.fixture(scope="module")
def sound_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("sounds")


@pytest.mark.parametrize("model", MODELS)
async def test_live_audio_on_the_emulator(emulated_bank, sound_cache: Path, model: str) -> None:  # type: ignore[no-untyped-def]
    emu: Emulator
    emu, _ = await emulated_bank(modems=3, vendors=("huawei", "simcom", "quectel"), timing=Timing.FAST,
                                 sound_cache=sound_cache, control_port=None)
    vm = next(m for m in emu.modems if m.model == model)
    assert vm.audio_port is not None
    # The far end's voice is made before the dial (espeak-ng and numpy in a worker thread
    # took the interpreter from the emulator's frame clock at the answer: no frame within
    # the 500 ms health rule, 1 run in 8 on a cold cache); a real line has no TTS to wait for.
    assert emu.network.sounds is not None
    await asyncio.to_thread(emu.network.sounds.sound_for, PERSON, plan_behaviour(PERSON))
    modem = await Modem.open(vm.port)
    try:
        port = await modem.audio_port(vm.audio_port)
        call = await modem.dial(PERSON)
        assert await call.wait_for(CallState.ACTIVE, timeout=10) is CallState.ACTIVE
        assert await asyncio.wait_for(modem.audio_ready(), 5) is port
        assert vm.settings.audio == (2 if model == "E1550" else 1)  # the set-up step reached the modem
        frames = [await port.read_frame(timeout=2) for _ in range(10)]
        assert all(len(f) == FRAME_BYTES for f in frames)
        for _ in range(25):
            await port.write_frame(TONE)
        assert port.stats.late_writes == 0
        await asyncio.sleep(0.3)
        record = next(r for r in reversed(emu.network.calls) if r.callee == PERSON)
        assert record.audio is not None and record.audio.frames_heard >= 20
        await modem.hangup()
    finally:
        await modem.close()
