"""``provision scan`` on emulated banks: the emulator's fake sysfs tree groups each USB
modem's ttys (AT and audio of one device), identity matches the modem, a port held by
another process and a modem that does not answer are reported while the rest is found;
the CLI prints the same as JSON and records the state."""
from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from modem_drivers.emulator import Fault
from modem_drivers.usb_layouts import LAYOUTS, MODEL_USB
from provisioning.cli import provision
from provisioning.scan import candidate_ports, scan
from provisioning.sysfs import place

#: Seconds a probe waits for AT in these tests: the emulator answers at once, so a short
#: wait keeps a silent port's two tries quick; not a timing assertion.
PROBE = 0.5

#: Another process holding a port open exclusively, as `simrotor modem` or a stray
#: minicom would: pyserial's exclusive open is the flock the AT layer takes too.
HOLD = ("import serial, sys, time; s = serial.Serial(sys.argv[1], exclusive=True); print('held', flush=True); "
        "time.sleep(120)")

pytestmark = pytest.mark.timeout(120)


def hold(port: str) -> subprocess.Popen[str]:
    """Another process holding ``port``; started in a thread (the CLI's runs install
    uvloop's policy, which has no child watcher for the test loop's subprocesses)."""
    holder = subprocess.Popen([sys.executable, "-c", HOLD, port], stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    return holder


@pytest.mark.bank(modems=8, vendors=("simcom", "quectel", "huawei", "generic"), sysfs=True)
async def test_fake_sysfs_groups_each_modems_ttys(bank):
    emu, state_file = bank
    state = json.loads(state_file.read_text())
    root = Path(state["sysfs_root"])
    assert root == emu.state_dir / "sysroot"
    ports = candidate_ports(root)
    assert len(ports) == len(emu.modems) + sum(1 for m in emu.modems if m.audio_port)  # one link per served tty
    result = await scan(sysfs_root=root, timeout=PROBE)
    assert result.problems == []
    assert len(result.modems) == len(emu.modems)
    by_imei = {m.imei: m for m in result.modems}
    assert len({m.usb_path for m in result.modems}) == len(emu.modems)
    for vm in emu.modems:
        found = by_imei[vm.imei]
        assert found.model == vm.model
        assert os.path.realpath(found.at_port) == os.path.realpath(vm.port)
        layout = LAYOUTS[MODEL_USB[vm.model]]
        assert found.usb_id == f"{layout.vendor_id}:{layout.product_id}"
        if vm.audio_port is None:
            assert found.audio_port is None
        else:  # the audio port is another interface of the same USB device
            assert found.audio_port is not None
            assert os.path.realpath(found.audio_port) == os.path.realpath(vm.audio_port)
            at, audio = place(found.at_port, root), place(found.audio_port, root)
            assert at is not None and audio is not None
            assert at.usb_path == audio.usb_path == found.usb_path
            assert (at.interface, audio.interface) == (layout.at[0], layout.audio)
            assert (found.at_interface, found.audio_interface) == (layout.at[0], layout.audio)
    # Three models carry audio ports (SIM7600, EC25, Huawei): each has one in this bank.
    assert {m.model for m in result.modems if m.audio_port} >= {"SIMCOM_SIM7600E-H", "EC25", "E1550"}


@pytest.mark.bank(modems=4, vendors=("simcom", "quectel", "huawei", "generic"), sysfs=True)
async def test_busy_port_and_silent_modem_are_reported_the_rest_found(bank, tmp_path):
    emu, _ = bank
    held, stuck = emu.modems[0], emu.modems[2]
    holder = await asyncio.to_thread(hold, held.port)
    try:
        await emu.inject(stuck.id, Fault.STUCK)
        result = await scan(sysfs_root=emu.sysfs_root, timeout=PROBE)
    finally:
        holder.kill()
        holder.wait()
    found = {m.imei for m in result.modems}
    assert found == {emu.modems[1].imei, emu.modems[3].imei}
    busy = [p for p in result.problems if p.kind == "busy"]
    assert len(busy) == 1 and os.path.realpath(busy[0].port) == os.path.realpath(held.port)
    assert "another process holds it" in busy[0].problem and "fuser" in busy[0].fix
    silent = [p for p in result.problems if p.kind == "silent"]
    assert len(silent) == 1 and silent[0].usb_path is not None
    assert os.path.realpath(silent[0].port) == os.path.realpath(stuck.port)
    assert "does not answer" in silent[0].problem and "power-cycle" in silent[0].fix
    assert len(result.problems) == 2


@pytest.mark.bank(modems=3, vendors=("huawei", "generic"))
async def test_glob_without_sysfs_reports_audio_ports_as_silent(bank):
    emu, _ = bank
    result = await scan(pattern=str(emu.state_dir / "ttyEMU*"), timeout=PROBE)
    assert sorted(m.imei for m in result.modems) == sorted(m.imei for m in emu.modems)
    assert all(m.usb_path is None and m.audio_port is None for m in result.modems)
    audio = [m.audio_port for m in emu.modems if m.audio_port]
    assert sorted(p.port for p in result.problems) == sorted(audio)
    assert all("audio, diagnostics or NMEA" in p.fix for p in result.problems)


@pytest.mark.bank(modems=4, sysfs=True)
async def test_scan_command_json_and_state(bank, tmp_path):
    emu, _ = bank
    state = tmp_path / "provisioning.json"
    args = ["scan", "--sysfs-root", str(emu.sysfs_root), "--timeout", str(PROBE), "--state", str(state), "--json"]
    run = await asyncio.to_thread(CliRunner().invoke, provision, args)
    assert run.exit_code == 0, run.output
    doc = json.loads(run.stdout)
    assert [m["id"] for m in doc["modems"]] == ["m01", "m02", "m03", "m04"]
    assert "probing ports: " in run.stderr
    saved = json.loads(state.read_text())
    assert {k for k in saved["modems"]} == {m.imei for m in emu.modems}
    assert state.stat().st_mode & 0o777 == 0o600
    # A rescan keeps each modem's id (by IMEI), whatever order the ports come in.
    again = await asyncio.to_thread(CliRunner().invoke, provision, args)
    assert {m["imei"]: m["id"] for m in json.loads(again.stdout)["modems"]} == \
        {m["imei"]: m["id"] for m in doc["modems"]}
