"""``simrotor emulate`` as a subprocess, and 1,024 modems starting and answering quickly."""
from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import serial

from modem_drivers.emulator import Emulator, EmulatorConfig
from common.clikit import raise_nofile_limit

SIMROTOR = Path(sys.executable).with_name("simrotor")


def _wait_for_state(path: Path, proc: subprocess.Popen[str], timeout: float = 20.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            state = json.loads(path.read_text())
            if state.get("status") == "running":
                return state
        if proc.poll() is not None:
            raise AssertionError(f"emulator exited early: {proc.communicate()}")
        time.sleep(0.05)
    raise AssertionError("state file never appeared")


def test_cli_writes_state_file_and_stops_cleanly(tmp_path: Path) -> None:
    state_file, state_dir = tmp_path / "bank.json", tmp_path / "ports"
    proc = subprocess.Popen(
        [str(SIMROTOR), "emulate", "--modems", "3", "--sims-per-modem", "2", "--vendors", "simcom,huawei",
         "--seed", "7", "--state-file", str(state_file), "--state-dir", str(state_dir), "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        state = _wait_for_state(state_file, proc)
        assert state["version"] == 1 and state["pid"] == proc.pid and state["seed"] == 7
        assert state["timing"] == "fast" and state["control"].startswith("http://127.0.0.1:")
        assert [m["vendor"] for m in state["modems"]] == ["simcom", "huawei", "simcom"]
        first = state["modems"][0]
        assert len(first["sims"]) == 2 and set(first["sims"][0]) >= {"slot", "iccid", "imsi", "msisdn", "mcc_mnc", "operator_name", "pin", "puk"}
        config = tomllib.loads(state["appliance_config"])
        assert [(m["id"], m["port"], m["vendor"], m["slots"]) for m in config["modem"]] == [
            (m["id"], m["port"], m["vendor"], 2) for m in state["modems"]]
        # another process (this one) talks to a modem over its stable path with pyserial
        with serial.Serial(first["port"], 115200, timeout=2) as port:
            port.write(b"ATE0\r")
            port.read_until(b"OK\r\n")
            port.write(b"AT+CGMI;+CNUM\r")
            answer = port.read_until(b"OK\r\n").decode()
        assert answer == f'\r\nSIMCOM_Ltd\r\n+CNUM: "","{first["sims"][0]["msisdn"]}",145\r\n\r\nOK\r\n'
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    summary = json.loads(out)
    assert summary["modems"] == 3 and summary["sims"] == 6
    assert json.loads(state_file.read_text())["status"] == "stopped"
    assert not any(p.is_symlink() for p in state_dir.iterdir())


def test_cli_rejects_unknown_vendor(tmp_path: Path) -> None:
    result = subprocess.run(
        [str(SIMROTOR), "emulate", "--vendors", "nokia", "--state-file", str(tmp_path / "s.json")],
        capture_output=True, text=True, timeout=30,
    )
    assert result.returncode == 1
    assert "vendors" in result.stderr and "nokia" in result.stderr
    assert not (tmp_path / "s.json").exists()


async def test_1024_modems_start_and_answer_quickly(tmp_path: Path) -> None:
    raise_nofile_limit()
    n = 1024
    t0 = time.perf_counter()
    emu = Emulator(EmulatorConfig(modems=n, state_dir=tmp_path, control_port=None))
    await emu.start()
    started = time.perf_counter() - t0
    try:
        loop = asyncio.get_running_loop()
        t1 = time.perf_counter()

        async def identify(port: str) -> bytes:
            fd = os.open(port, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
            got = bytearray()
            done = loop.create_future()

            def readable() -> None:
                got.extend(os.read(fd, 4096))
                if got.endswith(b"OK\r\n") and not done.done():
                    done.set_result(None)

            loop.add_reader(fd, readable)
            try:
                os.write(fd, b"AT+CGMI\r")
                async with asyncio.timeout(10):
                    await done
            finally:
                loop.remove_reader(fd)
                os.close(fd)
            return bytes(got)

        answers = await asyncio.gather(*(identify(m.port) for m in emu.modems))
        identified = time.perf_counter() - t1
    finally:
        await emu.stop()
    expected = {"simcom": b"SIMCOM_Ltd", "quectel": b"Quectel", "huawei": b"huawei", "generic": b"+CGMI: Emulated"}
    assert all(expected[m.vendor] in a for m, a in zip(emu.modems, answers))
    print(f"\n1024 modems: started in {started:.2f} s, identified in {identified:.2f} s")
    assert started < 15 and started + identified < 15
