"""``simrotor emulate``: serve virtual modems until SIGINT/SIGTERM.

Parses options, builds an ``EmulatorConfig``, runs ``Emulator`` (sqlite-utils' habit:
the CLI mirrors the API), writes the state file and removes nothing it did not create.
"""
from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

import click

from common.clikit import EXIT_FAILURE, emit, fail, json_option, run_async

from ._emulator import Emulator, EmulatorConfig, EmulatorError
from ._state import write_atomic
from ._timing import Timing


@click.command()
@click.option("--modems", "-n", type=click.IntRange(min=1), default=4, show_default=True, help="Number of virtual modems.")
@click.option("--sims-per-modem", type=click.IntRange(1, 8), default=1, show_default=True, help="SIM slots per modem.")
@click.option("--vendors", default="simcom,quectel,huawei,generic", show_default=True,
              help="Comma-separated vendors (or model names), assigned round-robin.")
@click.option("--timing", type=click.Choice([t.value for t in Timing]), default="fast", show_default=True,
              help="realistic: plan delays; fast: no artificial delay.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for numbers, IMEIs and random behaviour.")
@click.option("--state-file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write ports, SIMs, control URL and an appliance config fragment here (JSON).")
@click.option("--state-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Directory for the stable port symlinks (default: a temporary directory).")
@click.option("--pin-locked", is_flag=True, help='Every SIM starts locked (PIN "1234").')
@click.option("--block-after-calls", type=click.IntRange(min=0), default=None,
              help="The operator blocks a SIM after this many calls.")
@click.option("--control-port", type=click.IntRange(0, 65535), default=0, show_default=True,
              help="HTTP control API port on 127.0.0.1 (0: any free port).")
@click.option("--audio-dir", type=click.Path(file_okay=False, exists=True, path_type=Path), default=None,
              help="WAV files the callees play instead of generated voices: <number>.wav or <kind>.wav "
                   "(person, machine, silence, fax, sit, keypad).")
@click.option("--sound-cache", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where generated callee voices are cached (default: ~/.cache/simrotor/emulator-sounds).")
@click.option("--sysfs", is_flag=True, help="Lay out a fake sysfs and by-id tree (state file: sysfs_root) "
                                          "for `simrotor provision scan --sysfs-root`.")
@json_option
def emulate(modems: int, sims_per_modem: int, vendors: str, timing: str, seed: int,
            state_file: Path | None, state_dir: Path | None, pin_locked: bool,
            block_after_calls: int | None, control_port: int, audio_dir: Path | None,
            sound_cache: Path | None, sysfs: bool, as_json: bool) -> None:
    """Serve N virtual GSM modems on pseudo-terminals, with a simulated network.

    \b
    Examples:
      simrotor emulate --modems 4 --state-file /tmp/bank.json
      simrotor emulate -n 1024 --vendors simcom,quectel --timing fast --state-file /tmp/big.json
      simrotor emulate -n 2 --sims-per-modem 2 --timing realistic --pin-locked --json
      simrotor emulate -n 3 --vendors huawei,simcom,quectel --audio-dir ./recordings
    """
    config = EmulatorConfig(
        modems=modems, sims_per_modem=sims_per_modem,
        vendors=tuple(v.strip() for v in vendors.split(",") if v.strip()),
        timing=Timing(timing), seed=seed, state_dir=state_dir, pin_locked=pin_locked,
        block_after_calls=block_after_calls, control_port=control_port,
        audio_dir=audio_dir, sound_cache=sound_cache, sysfs=sysfs,
    )
    try:
        run_async(lambda: _serve(config, state_file, as_json))
    except EmulatorError as exc:
        fail(str(exc), code=EXIT_FAILURE, as_json=as_json)


async def _serve(config: EmulatorConfig, state_file: Path | None, as_json: bool) -> None:
    t0 = time.perf_counter()
    emulator = Emulator(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await emulator.start()
    try:
        state = emulator.state()
        if state_file is not None:
            write_atomic(state_file, state)
        summary = {
            "modems": len(emulator.modems),
            "sims": sum(len(m.sims) for m in emulator.modems),
            "timing": config.timing.value,
            "state_dir": str(emulator.state_dir),
            "state_file": str(state_file) if state_file else None,
            "control": emulator.control_url,
            "started_in_seconds": round(time.perf_counter() - t0, 3),
            "first_port": emulator.modems[0].port,
        }
        emit(summary, as_json)
        await stop.wait()
    finally:
        await emulator.stop()
        if state_file is not None:
            state = emulator.state()
            state["status"] = "stopped"
            write_atomic(state_file, state)
