"""Start ``simrotor emulate`` in its own process for a benchmark or the demo, and read its
state file; the process is stopped (SIGTERM, then SIGKILL) when the block exits."""
from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

#: Starting 1,024 virtual modems takes a couple of seconds; a stuck start is reported
#: rather than waited on forever.
START_TIMEOUT = 60.0


@contextlib.contextmanager
def emulator_process(
    modems: int,
    *,
    timing: str = "fast",
    sims_per_modem: int = 1,
    vendors: str | None = None,
    seed: int = 0,
    extra: list[str] | None = None,
) -> Iterator[dict[str, Any]]:
    with tempfile.TemporaryDirectory(prefix="simrotor-emu-") as tmp:
        state_file = Path(tmp) / "state.json"
        cmd = [
            sys.executable, "-m", "simrotor", "emulate",
            "--modems", str(modems), "--timing", timing, "--sims-per-modem", str(sims_per_modem),
            "--seed", str(seed), "--state-file", str(state_file),
        ]
        if vendors:
            cmd += ["--vendors", vendors]
        cmd += extra or []
        log = open(Path(tmp) / "emulator.log", "wb")
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            deadline = time.monotonic() + START_TIMEOUT
            state: dict[str, Any] | None = None
            while time.monotonic() < deadline:
                if proc.poll() is not None:
                    log.flush()
                    raise RuntimeError(
                        f"emulator exited with {proc.returncode}: "
                        + (Path(tmp) / "emulator.log").read_text(errors="replace")[-2000:]
                    )
                if state_file.exists():
                    try:
                        state = json.loads(state_file.read_text())
                        if len(state.get("modems", [])) == modems:
                            break
                    except json.JSONDecodeError:
                        pass
                time.sleep(0.05)  # waiting for another process to start: no event to wait on
            else:
                raise RuntimeError(f"emulator did not write {state_file} within {START_TIMEOUT:g} s")
            assert state is not None
            state["_pid"] = proc.pid
            yield state
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            log.close()
