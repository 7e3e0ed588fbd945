"""Two or more controller processes on one PostgreSQL database, for the system and chaos
tests: each a real ``simrotor controller run --config …`` process (its own port, the same
``[store] url``), killable with SIGKILL, its stderr read line by line so a test can wait
for a fault point (controller/faults.py) instead of guessing a moment; and the appliance
with all of them in its ``[link] url``."""
from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
import sys
import time
from pathlib import Path

import aiohttp
from system_harness import appliance_config, controller_sections, free_port, toml_text

from appliance.config import parse_config
from appliance.runtime import Appliance
from controller.faults import ENV as FAULT_ENV
from controller.server import create_enroll_token, create_key
from controller.store import Store

#: What a controller writes to stderr when it stops at its fault point (controller/faults.py).
FAULT_LINE = "fault point "
#: A controller process is up when its API answers; a cold start (imports, migrations
#: checked) takes ~2 s on the 2-core CI machine, 30 s is a wedged start.
START_SECONDS = 30.0


def _die_with_parent() -> None:
    """In the child: SIGKILL when the test process dies (prctl PR_SET_PDEATHSIG, Linux), so a
    test run killed by a timeout leaves no controller — nor one stopped at a fault point."""
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG


class ControllerProcess:
    """``simrotor controller run`` on ``store_url`` at a free port of loopback."""

    def __init__(self, name: str, tmp: Path, store_url: str, *, lease_seconds: float = 60.0,
                 webhook_timeout: float = 10.0) -> None:
        self.name = name
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.link_url = f"ws://127.0.0.1:{self.port}/v1/link"
        sections = controller_sections()
        sections["dispatch"] = {**sections["dispatch"], "lease_seconds": lease_seconds}
        sections["webhooks"] = {**sections["webhooks"], "timeout_seconds": webhook_timeout}
        self.config = tmp / f"controller-{name}.toml"
        self.config.write_text(toml_text({"controller": {"listen": f"127.0.0.1:{self.port}"}, "store": {"url": store_url},
                                          "log": {"format": "text", "level": "INFO"}, **sections}))
        self.log = tmp / f"controller-{name}.log"
        self.proc: asyncio.subprocess.Process | None = None
        self.lines: list[str] = []
        self._line = asyncio.Condition()
        self._reader: asyncio.Task[None] | None = None

    async def start(self, fault: str | None = None) -> None:
        """Start the process (``fault``: ``SIMROTOR_CONTROLLER_FAULT`` for it) and wait for its API."""
        env = {k: v for k, v in os.environ.items() if k != FAULT_ENV}
        if fault:
            env[FAULT_ENV] = fault
        self.lines = []
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", "from simrotor.cli import main; main()", "controller", "run", "--config", str(self.config),
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE, env=env,
            preexec_fn=_die_with_parent)
        self._reader = asyncio.create_task(self._read(self.proc))
        t0 = time.monotonic()
        async with aiohttp.ClientSession() as s:
            while time.monotonic() - t0 < START_SECONDS:
                if self.proc.returncode is not None:
                    raise AssertionError(f"controller {self.name} exited {self.proc.returncode}: {self.tail()}")
                if self.frozen:
                    return  # stopped at its fault point already (it was serving: it got there)
                # a short timeout per try: a process stopping at its fault point may have
                # accepted the connection and will never answer it
                with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                    async with s.get(f"{self.url}/healthz", timeout=aiohttp.ClientTimeout(total=1)) as r:
                        if r.status == 200:
                            return
                await asyncio.sleep(0.1)  # the port is not listening yet
        raise AssertionError(f"controller {self.name} did not answer /healthz in {START_SECONDS:g} s: {self.tail()}")

    async def _read(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stderr is not None
        with self.log.open("a", buffering=1) as f:  # line by line: readable while it runs
            async for raw in proc.stderr:
                line = raw.decode(errors="replace").rstrip("\n")
                f.write(line + "\n")
                async with self._line:
                    self.lines.append(line)
                    self._line.notify_all()

    @property
    def frozen(self) -> bool:
        """Stopped at its fault point (SIGSTOP: only SIGKILL ends it now)."""
        return any(FAULT_LINE in ln for ln in self.lines)

    def tail(self, n: int = 20) -> str:
        return "\n".join(self.lines[-n:])

    async def wait_line(self, text: str, timeout: float) -> str:
        """The first line of its stderr containing ``text`` (a fault point, say), waited for."""
        try:
            async with asyncio.timeout(timeout), self._line:
                while True:
                    hit = next((ln for ln in self.lines if text in ln), None)
                    if hit is not None:
                        return hit
                    await self._line.wait()
        except TimeoutError:
            raise AssertionError(f"controller {self.name}: no {text!r} on stderr in {timeout:g} s; last lines:\n"
                                 f"{self.tail()}") from None

    async def kill9(self) -> None:
        """SIGKILL, as a host dying does: nothing of it runs after this (a process frozen
        at a fault point included)."""
        assert self.proc is not None
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(signal.SIGKILL)
        await self.proc.wait()
        await self._reader_done()

    async def _reader_done(self) -> None:
        """The stderr reader ends at EOF; a child still holding the pipe (a process-pool
        worker) must not hang the test: 5 s, then it is cancelled."""
        if self._reader is not None and not (await asyncio.wait({self._reader}, timeout=5))[0]:
            self._reader.cancel()

    async def stop(self) -> None:
        if self.proc is None or self.proc.returncode is not None:
            return
        if self.frozen:  # SIGTERM would wait for a SIGCONT
            await self.kill9()
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            async with asyncio.timeout(15):  # the controller's own stop waits 10 s for its loops
                await self.proc.wait()
        except TimeoutError:
            await self.kill9()
        await self._reader_done()


def admin_secrets(store_url: str) -> tuple[str, str]:
    """An API key for the CRM and an enrollment token for the appliance, as the CLI makes them."""
    store = Store(store_url)
    try:
        return create_key(store, "crm", time.time())["key"], create_enroll_token(store, 600, time.time())["token"]
    finally:
        store.close()


async def appliance_on(tmp: Path, state_file: Path, http: aiohttp.ClientSession, token: str,
                       controllers: list[ControllerProcess], *, enroll_via: ControllerProcess, seed: int) -> Appliance:
    """The appliance ``box-01``, enrolled through ``enroll_via`` with ``token`` and started
    on the emulated bank's ``state_file``, with every controller in its ``[link] url`` (in
    that order) and its fresh-install limits and lock rules."""
    async with http.post(f"{enroll_via.url}/v1/enroll", json={"token": token, "appliance_id": "box-01"}) as r:
        assert r.status == 200, await r.text()
        (tmp / "cred").write_text((await r.json())["credential"])
    cfg = appliance_config(tmp, state_file, "", tmp / "cred")
    cfg["link"]["url"] = [c.link_url for c in controllers]
    for shipped_default in ("limits", "lock", "retry"):
        cfg.pop(shipped_default)
    app = Appliance(parse_config(cfg), seed=seed)
    await app.start()
    return app
