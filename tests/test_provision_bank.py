"""The installer's path on an emulated, PIN-locked bank, through the commands as a person
runs them: scan → sims → assign → write-config → an Appliance starts on the config.

On the way, a modem that does not answer (scan), a wrong PIN, a PUK-locked SIM and a
port held by another process (sims) each get a clear message and a fix, and the rest of
the bank is provisioned. The wrong PIN is sent once: a second run does not send it again
(the SIM counts every PIN it is shown). Then: write-config never changes an existing
line without --force, and inventory names a modem gone from its hub port.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from click.testing import CliRunner, Result
from system_harness import free_port

from appliance.channel import ChannelState
from appliance.config import load_config
from appliance.runtime import Appliance
from modem_drivers.emulator import Fault, PinState
from provisioning.cli import provision

#: Seconds a probe waits for AT: the emulator answers at once (not a timing assertion).
PROBE = "0.5"
#: Seconds any awaited condition may take on a loaded 2-core machine.
WAIT = 30.0
#: The bearer token of the appliance run as a process.
TOKEN = "provision-run-token"
#: Another process holding a port open exclusively (the AT layer's flock).
HOLD = ("import serial, sys, time; s = serial.Serial(sys.argv[1], exclusive=True); print('held', flush=True); "
        "time.sleep(120)")

pytestmark = pytest.mark.timeout(240)

VENDORS = ("simcom", "quectel", "huawei", "generic")


async def cli(*args: str) -> Result:
    """One command as a person runs it (in a thread: the emulator serves on this loop)."""
    return await asyncio.to_thread(CliRunner().invoke, provision, list(args))


def doc(run: Result) -> Any:
    return json.loads(run.stdout)


def hold(port: str) -> subprocess.Popen[str]:
    """Started in a thread: the CLI's runs install uvloop's policy, which has no child
    watcher for asyncio subprocesses on the test's loop."""
    holder = subprocess.Popen([sys.executable, "-c", HOLD, port], stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    return holder


async def wait_idle(app: Appliance, ids: list[str]) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT
    while not all(app.bank.channels[i].state is ChannelState.IDLE for i in ids):
        assert loop.time() < deadline, {i: app.bank.channels[i].state for i in ids}
        await asyncio.sleep(0.1)  # waiting for the channels' bring-up, bounded by WAIT


@pytest.mark.bank(modems=6, vendors=VENDORS, pin_locked=True, sysfs=True, control_port=None)
async def test_scan_sims_assign_write_config_then_the_appliance_runs(bank, tmp_path: Path):
    emu, _ = bank
    m = emu.modems  # 0 SIM7600 (wrong PIN), 1 EC25 (PUK), 2 E1550 (held), 3 generic (stuck), 4 SIM800, 5 M35
    state = str(tmp_path / "provisioning.json")
    config = tmp_path / "appliance.toml"
    # What the installer wrote before: kept by write-config (the API on a free port here).
    config.write_text('[appliance]\nid = "box-07"\nstore = "%s"\nlisten = "127.0.0.1:0"\ntoken = "t0k3n-t0k3n-t0k3n"\n'
                      'timezone = "Europe/Warsaw"\n\n[calls]\nmax_ring_seconds = 25.0\n' % (tmp_path / "a.db"))

    # scan: the stuck modem is reported, the other five found.
    await emu.inject(m[3].id, Fault.STUCK)
    run = await cli("scan", "--sysfs-root", str(emu.sysfs_root), "--timeout", PROBE, "--state", state, "--json")
    assert run.exit_code == 1, run.output
    found = doc(run)
    assert sorted(x["imei"] for x in found["modems"]) == sorted(x.imei for i, x in enumerate(m) if i != 3)
    (silent,) = found["problems"]
    assert silent["kind"] == "silent" and "does not answer" in silent["problem"]
    assert "problem: the modem on USB" in run.stderr and "fix: power-cycle" in run.stderr
    ids = {x["imei"]: x["id"] for x in found["modems"]}
    mid = [ids.get(x.imei) for x in m]

    # sims: a wrong PIN for one ICCID, a PUK-locked SIM, a port held by another process.
    wrong = m[0].sims[0]
    puk = m[1].sims[0]
    puk.pin_state, puk.pin_attempts_left = PinState.SIM_PUK, 0
    pins = tmp_path / "pins.txt"
    pins.write_text(f"# the batch's PIN, and one SIM's (mistyped)\n* 1234\n{wrong.iccid} 1111\n")
    holder = await asyncio.to_thread(hold, m[2].port)
    try:
        run = await cli("sims", "--pin-file", str(pins), "--register-wait", "10", "--state", state, "--json")
    finally:
        holder.kill()
        holder.wait()
    assert run.exit_code == 1, run.output
    sims = {r["modem_id"]: r for r in doc(run)["sims"]}
    assert sims[mid[0]]["status"] == "wrong_pin" and sims[mid[0]]["pin_tries_left"] == 2
    assert "wrong PIN (2 tries left)" in sims[mid[0]]["problem"] and "fix the PIN file" in sims[mid[0]]["fix"]
    assert sims[mid[1]]["status"] == "puk" and "--puk PUK --new-pin" in sims[mid[1]]["fix"]
    assert sims[mid[2]]["status"] == "busy" and "another process holds it" in sims[mid[2]]["problem"]
    for i in (4, 5):
        r = sims[mid[i]]
        assert r["status"] == "ready", r
        assert (r["iccid"], r["msisdn"], r["mcc_mnc"]) == (m[i].sims[0].iccid, m[i].sims[0].msisdn,
                                                           m[i].sims[0].mcc_mnc)
        assert r["number_source"] == "cnum" and r["registration"] == "home"
    assert "pin_used" not in sims[mid[4]]
    assert wrong.presentations == 1 and puk.presentations == 0

    # sims again, the port free now: the wrong PIN is not sent a second time.
    run = await cli("sims", "--pin-file", str(pins), "--register-wait", "10", "--state", state, "--json")
    sims = {r["modem_id"]: r for r in doc(run)["sims"]}
    assert sims[mid[2]]["status"] == "ready"
    assert sims[mid[0]]["status"] == "wrong_pin" and "not sent again" in sims[mid[0]]["problem"]
    assert wrong.presentations == 1 and wrong.pin_attempts_left == 2

    # assign: pools per creditor, an operator's limit, a label.
    assert (await cli("assign", mid[4], mid[5], "--pool", "creditor-a", "--state", state)).exit_code == 0
    assert (await cli("assign", mid[2], "--pool", "creditor-b", "--label", "H-1", "--state", state)).exit_code == 0
    run = await cli("assign", "operator:26001", "--calls-per-hour", "300", "--state", state)
    assert run.exit_code == 0, run.output
    run = await cli("assign", "m99", "--pool", "x", "--state", state)
    assert run.exit_code == 2 and "no such SIM, modem or label" in run.stderr

    # write-config: the ready modems, the installer's settings kept, the rest left out with why.
    run = await cli("write-config", "--config", str(config), "--state", state, "--json")
    assert run.exit_code == 0, run.output
    plan = doc(run)
    assert plan["written"] and plan["removed"] == []
    assert sorted(plan["modems"]) == sorted([mid[2], mid[4], mid[5]])
    assert any(mid[0] in x and "wrong_pin" in x for x in plan["left_out"])
    assert any(mid[1] in x and "puk" in x for x in plan["left_out"])
    cfg = load_config(str(config))
    assert (cfg.appliance.id, cfg.appliance.timezone, cfg.calls.max_ring_seconds) == ("box-07", "Europe/Warsaw", 25.0)
    by_id = {x.id: x for x in cfg.modem}
    assert by_id[mid[4]].pools == ("creditor-a",) and by_id[mid[2]].pools == ("creditor-b",)
    assert by_id[mid[4]].pin == "1234"
    assert by_id[mid[2]].audio is not None  # the Huawei's audio interface
    assert cfg.operator_limits["26001"].calls_per_hour == 300
    assert "label 'H-1'" in config.read_text()

    # The appliance starts on it: every configured modem's channel comes up idle.
    app = Appliance(cfg, seed=1)
    await app.start()
    try:
        await wait_idle(app, list(by_id))
        sims_up = {s.info.iccid for ch, s in app.bank.sims() if s.info}
        assert sims_up == {m[i].sims[0].iccid for i in (2, 4, 5)}
    finally:
        await app.stop()


@pytest.mark.bank(modems=3, vendors=VENDORS, sysfs=True, control_port=None)
async def test_write_config_keeps_lines_then_inventory_names_a_missing_modem(bank, tmp_path: Path):
    emu, _ = bank
    state = str(tmp_path / "provisioning.json")
    config = tmp_path / "appliance.toml"
    assert (await cli("scan", "--sysfs-root", str(emu.sysfs_root), "--timeout", PROBE, "--state", state)).exit_code == 0
    assert (await cli("sims", "--state", state)).exit_code == 0
    args = ["write-config", "--config", str(config), "--state", state, "--store", str(tmp_path / "a.db")]
    assert (await cli(*args)).exit_code == 0
    first = config.read_text()
    assert "token = " in first  # made for the local API, which listens by default
    assert (await cli(*args)).exit_code == 0 and config.read_text() == first  # nothing new: nothing changed

    # The installer edits a limit by hand; assign says another: the change is shown, not made.
    text = first + "\n[limits]\ncalls_per_day = 100\n"
    config.write_text(text)
    assert (await cli("assign", "bank", "--calls-per-day", "120", "--state", state)).exit_code == 0
    run = await cli(*args)
    assert run.exit_code == 1 and "-calls_per_day = 100" in run.stdout and "+calls_per_day = 120" in run.stdout
    assert "add --force" in run.stderr and config.read_text() == text
    run = await cli(*args, "--force")
    assert run.exit_code == 0 and tomllib.loads(config.read_text())["limits"]["calls_per_day"] == 120

    # With the udev rules installed, the config names the rules' stable names.
    udev = tmp_path / "udev.toml"
    run = await cli("write-config", "--config", str(udev), "--state", state, "--store", str(tmp_path / "a.db"),
                    "--udev-names")
    assert run.exit_code == 0, run.output
    named = {x.id: x for x in load_config(str(udev)).modem}
    huawei = next(x for x in emu.modems if x.vendor == "huawei")
    ids = {e["imei"]: e["id"] for e in json.loads(Path(state).read_text())["modems"].values()}
    assert named[ids[huawei.imei]].port == f"/dev/simrotor/imei-{huawei.imei}.at"
    assert named[ids[huawei.imei]].audio == f"/dev/simrotor/imei-{huawei.imei}.audio"

    run = await cli("inventory", "--sysfs-root", str(emu.sysfs_root), "--timeout", PROBE, "--state", state)
    assert run.exit_code == 0 and run.stdout.strip() == "expected 3 modems, found 3"

    gone = emu.modems[1]
    await emu.inject(gone.id, Fault.VANISH, seconds=None)  # unplugged: its port is gone
    run = await cli("inventory", "--sysfs-root", str(emu.sysfs_root), "--timeout", PROBE, "--state", state, "--json")
    assert run.exit_code == 1, run.output
    report = doc(run)
    assert (report["expected"], report["found"], report["complete"]) == (3, 2, False)
    (missing,) = report["missing"]
    assert missing["imei"] == gone.imei and missing["usb_path"] == "1-1.2"
    run = await cli("inventory", "--sysfs-root", str(emu.sysfs_root), "--timeout", PROBE, "--state", state)
    assert f"expected 3 modems, found 2: missing IMEI {gone.imei}" in run.stdout
    assert "last seen on hub port 1-1.2" in run.stdout
    # A scan now marks it absent: write-config leaves it out and says so.
    assert (await cli("scan", "--sysfs-root", str(emu.sysfs_root), "--timeout", PROBE, "--state", state)).exit_code == 1
    run = await cli(*args, "--force", "--json")
    assert run.exit_code == 0, run.output
    assert any(gone.imei in x and "not found at the last scan" in x for x in doc(run)["left_out"])
    assert len(load_config(str(config)).modem) == 2


@pytest.mark.bank(modems=3, vendors=VENDORS, pin_locked=True, sysfs=True, control_port=None)
async def test_appliance_run_as_a_process_on_the_written_config(bank, tmp_path: Path):
    """The config `write-config` wrote, run as the service runs it: `simrotor appliance
    run` in its own process opens the scanned by-id ports, enters the PINs and serves."""
    emu, _ = bank
    state = str(tmp_path / "provisioning.json")
    config = tmp_path / "appliance.toml"
    port = free_port()
    config.write_text(f'[appliance]\nid = "box-run"\nstore = "{tmp_path / "a.db"}"\nlisten = "127.0.0.1:{port}"\n'
                      f'token = "{TOKEN}"\n')
    pins = tmp_path / "pins.txt"
    pins.write_text("* 1234\n")
    assert (await cli("scan", "--sysfs-root", str(emu.sysfs_root), "--timeout", PROBE, "--state", state)).exit_code == 0
    assert (await cli("sims", "--pin-file", str(pins), "--state", state)).exit_code == 0
    run = await cli("write-config", "--config", str(config), "--state", state)
    assert run.exit_code == 0, run.output
    ids = sorted(x.id for x in load_config(str(config)).modem)
    assert len(ids) == 3
    # The SIMs ask for their PIN again after a power-up: the appliance enters the config's.
    for vm in emu.modems:
        vm.sims[0].pin_state = PinState.SIM_PIN
    proc = await asyncio.to_thread(run_appliance, config, tmp_path / "appliance.log")
    try:
        channels = await wait_channels(f"http://127.0.0.1:{port}", proc, len(ids))
        assert sorted(c["id"] for c in channels) == ids
        assert all(c["state"] == "idle" for c in channels), channels
    finally:
        proc.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(proc.wait, WAIT)
    assert code == 0, (tmp_path / "appliance.log").read_text()


def run_appliance(config: Path, log_path: Path) -> subprocess.Popen[bytes]:
    """`simrotor appliance run` as a child, its output in ``log_path`` (started in a
    thread: the CLI's runs install uvloop's policy, without a child watcher here)."""
    with open(log_path, "wb") as log:  # the child has its own copy of the descriptor
        return subprocess.Popen([sys.executable, "-m", "simrotor", "appliance", "run", "--config", str(config),
                                 "--log-level", "WARNING"], stdout=log, stderr=log)


async def wait_channels(base: str, proc: subprocess.Popen[bytes], count: int) -> list[dict[str, Any]]:
    """The appliance's channels once ``count`` are idle (polled, bounded by WAIT)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {TOKEN}"}) as http:
        while True:
            assert proc.poll() is None, "the appliance exited"
            with contextlib.suppress(aiohttp.ClientError):
                async with http.get(f"{base}/api/channels") as r:
                    if r.status == 200:
                        channels = (await r.json())["channels"]
                        if sum(c["state"] == "idle" for c in channels) >= count:
                            return list(channels)
            assert loop.time() < deadline, "the appliance's channels did not come up"
            await asyncio.sleep(0.2)  # waiting for the appliance to open the modems and enter PINs
