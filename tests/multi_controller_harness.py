"""Two or more controller processes on one PostgreSQL database, for the system and chaos
tests: each a real ``simrotor controller run --config …`` process (its own port, the same
``[store] url``), killable with SIGKILL, its stderr read line by line so a test can wait
for a fault point (controller/faults.py) instead of guessing a moment; and the appliance
with all of them in its ``[link] url``."""
from __future__ import annotations

import asyncio
import contextlib
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

#: A controller process is up when its API answers; a cold start (imports, migrations
#: checked) takes ~2 s on the 2-core CI machine, 30 s is a wedged start.
START_SECONDS = 30.0


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
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE, env=env)
        self._reader = asyncio.create_task(self._read(self.proc))
        t0 = time.monotonic()
        async with aiohttp.ClientSession() as s:
            while time.monotonic() - t0 < START_SECONDS:
                if self.proc.returncode is not None:
                    raise AssertionError(f"controller {self.name} exited {self.proc.returncode}: {self.tail()}")
                with contextlib.suppress(aiohttp.ClientError):
                    async with s.get(f"{self.url}/healthz") as r:
                        if r.status == 200:
                            return
                await asyncio.sleep(0.1)  # the port is not listening yet
        raise AssertionError(f"controller {self.name} did not answer /healthz in {START_SECONDS:g} s: {self.tail()}")

    async def _read(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stderr is not None
        with self.log.open("a") as f:
            async for raw in proc.stderr:
                line = raw.decode(errors="replace").rstrip("\n")
                f.write(line + "\n")
                async with self._line:
                    self.lines.append(line)
                    self._line.notify_all()

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
        if self._reader is not None:
            await self._reader

    async def stop(self) -> None:
        if self.proc is None or self.proc.returncode is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            async with asyncio.timeout(15):  # the controller's own stop waits 10 s for its loops
                await self.proc.wait()
        except TimeoutError:
            await self.kill9()
        if self._reader is not None:
            await self._reader


def admin_secrets(store_url: str) -> tuple[str, str]:
    """An API key for the CRM and an enrollment token for the appliance, as the CLI makes them."""
    store = Store(store_url)
    try:
        return create_key(store, "crm", time.time())["key"], create_enroll_token(store, 600, time.time())["token"]
    finally:
        store.close()


async def appliance_on(tmp: Path, state_file: Path, credential: str, controllers: list[ControllerProcess], *,
                       seed: int) -> Appliance:
    """The appliance, started, on the emulated bank's ``state_file``, with every controller
    in its ``[link] url`` (in that order) and its fresh-install limits and lock rules."""
    (tmp / "cred").write_text(credential)
    cfg = appliance_config(tmp, state_file, "", tmp / "cred")
    cfg["link"]["url"] = [c.link_url for c in controllers]
    for shipped_default in ("limits", "lock", "retry"):
        cfg.pop(shipped_default)
    app = Appliance(parse_config(cfg), seed=seed)
    await app.start()
    return app
