"""``on_answer = "amd"`` through a real Appliance on an emulated Huawei bank: the audio ports
come from the emulator's state file (``audio_port``) and open with the modems, the job
carries only ``on_answer``, the rest is the customer's [calls]; machines end
``answered_machine`` with the message in their recording, people ``answered_human``."""
from __future__ import annotations

import asyncio
import os

import pytest
from test_appliance_dispatch import config as dispatch_config
from test_appliance_dispatch import run_until_final

from appliance.config import ConfigError, parse_config
from appliance.jobspec import validate_batch
from appliance.runtime import Appliance
from modem_drivers.emulator import Emulator, Timing

MESSAGE = "Dzień dobry, prosimy o pilny kontakt z działem obsługi klienta."
#: two persons (Polish, English), two machines
CALLEES = {"+48600000123": "answered_human", "+48600010123": "answered_human",
           "+48601100200": "answered_machine", "+48601100301": "answered_machine"}

pytestmark = pytest.mark.bank(modems=4, vendors=("huawei",), timing=Timing.FAST, seed=3)


def config(tmp_path, state, **calls) -> dict:
    return {**dispatch_config(tmp_path, state), "calls": {"on_answer": "amd", "message": MESSAGE, **calls}}


async def test_machines_get_the_message_after_the_beep_people_hear_it(tmp_path, bank) -> None:  # type: ignore[no-untyped-def]
    emu: Emulator
    emu, state = bank
    cfg = parse_config(config(tmp_path, state))
    assert all(m.audio for m in cfg.modem)  # from the state file's audio_port
    app = Appliance(cfg, seed=1)
    await app.start()
    raw = [{"id": f"j{i}", "kind": "call", "callee": callee, "hints": {"fixed_number": vm.sims[0].msisdn}}
           for i, (callee, vm) in enumerate(zip(CALLEES, emu.modems))]
    good, errors = validate_batch(raw)
    assert not errors
    try:
        finals = await run_until_final(app, good, 90)
    finally:
        await app.stop()
    for i, (callee, outcome) in enumerate(CALLEES.items()):
        r = finals[f"j{i}"]
        assert r["outcome"] == outcome and r["message_played"] is True, r
        audio = next(c for c in emu.network.calls if c.callee == callee).audio
        assert audio is not None
        if outcome == "answered_machine":
            assert audio.beep_ms is not None and r["beep_ms"] is not None
            assert any(s.start_ms >= audio.beep_ms for s in audio.heard), (audio.heard, audio.beep_ms)
        else:
            assert audio.heard and audio.heard[0].start_ms - r["amd"]["decided_ms"] <= 1000, (audio.heard, r["amd"])


def test_the_customers_mistakes_are_named(tmp_path, bank) -> None:  # type: ignore[no-untyped-def]
    _, state = bank
    for calls, where in (({"on_machine": "wait"}, "[calls] on_machine"), ({"on_human": "voicebot"}, "[calls] on_human"),
                         ({"lang": "de"}, "[calls] lang"), ({"message_wav": str(tmp_path / "none.wav")}, "[calls] message_wav")):
        with pytest.raises(ConfigError) as err:
            parse_config(config(tmp_path, state, **calls))
        assert where in str(err.value), err.value


async def test_an_audio_fault_takes_the_channel_out_while_its_modem_is_checked(tmp_path, bank) -> None:  # type: ignore[no-untyped-def]
    """[[modem]] audio names a tty that is not the modem's voice port (a pty nobody writes
    to): the answered call ends ``audio_fault``, the channel goes FAULTY while the bank
    checks the modem, and comes back once the port and the AT side answer."""
    emu: Emulator
    emu, state = bank
    vm = emu.modems[0]
    master, slave = os.openpty()
    raw = {k: v for k, v in config(tmp_path, state).items() if k != "emulator_state"}
    raw["modem"] = [{"id": "m0", "port": vm.port, "audio": os.ttyname(slave)}]
    app = Appliance(parse_config(raw), seed=1)
    moves: list[tuple[str, str]] = []
    app.bank.on_change(lambda ch, old, new, reason: moves.append((new.value, reason)))
    await app.start()
    good, errors = validate_batch([{"id": "f", "kind": "call", "callee": "+48600000123"}])
    assert not errors
    try:
        finals = await run_until_final(app, good, 30)
        async with asyncio.timeout(10):
            while app.bank.channels["m0"].state.value != "idle":
                await asyncio.sleep(0.05)
    finally:
        await app.stop()
        os.close(master)
        os.close(slave)
    r = finals["f"]
    assert r["outcome"] == "audio_fault" and "amd" not in r, r
    assert any(state == "faulty" and reason.startswith("audio fault") for state, reason in moves), moves
    assert ("idle", "audio port checked") in moves, moves
