"""``simrotor modem dial PORT --to N --amd --json`` on an emulated Huawei modem: the command
(a process of its own, on the emulator's ptys) reports the live AMD's decision, and with
``--message`` the far end hears it (after a machine's beep)."""
from __future__ import annotations

import asyncio
import json
import sys

import pytest

from modem_drivers.emulator import Emulator, Timing

pytestmark = pytest.mark.bank(modems=1, vendors=("huawei",), timing=Timing.FAST, seed=3)


async def dial(*args: str) -> tuple[int, dict]:
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "simrotor", "modem", "dial", *args, "--json",
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert out, err.decode()
    return proc.returncode or 0, json.loads(out)


async def test_dial_amd_reports_the_live_decision(bank) -> None:  # type: ignore[no-untyped-def]
    emu: Emulator = bank.emu
    modem = emu.state()["modems"][0]
    port, audio = modem["port"], modem["audio_port"]
    code, person = await dial(port, "--audio", audio, "--to", "+48600000123", "--amd", "--seconds", "20")
    assert code == 0 and person["outcome"] == "answered_human", person
    assert person["amd"]["decision"] == "human" and 0 < person["amd"]["decided_ms"] < 6000, person
    code, machine = await dial(port, "--audio", audio, "--to", "+48601100200", "--amd", "--seconds", "30",
                               "--message", "Prosimy o kontakt.", "--lang", "pl")
    assert code == 0 and machine["outcome"] == "answered_machine" and machine["amd"]["decision"] == "machine", machine
    assert machine["message_played"] is True and machine["beep_ms"] is not None, machine
    record = next(c for c in emu.network.calls if c.callee == "+48601100200")
    assert record.audio is not None and record.audio.beep_ms is not None
    assert any(s.start_ms >= record.audio.beep_ms for s in record.audio.heard), record.audio.heard


async def test_dial_amd_without_the_audio_port_says_what_is_missing(bank) -> None:  # type: ignore[no-untyped-def]
    port = bank.emu.state()["modems"][0]["port"]
    code, out = await dial(port, "--to", "+48600000123", "--amd")
    assert code == 2 and "--audio" in out["error"], out
    code, out = await dial(port, "--to", "+48600000123", "--message", "x")
    assert code == 2 and "--amd" in out["error"], out
