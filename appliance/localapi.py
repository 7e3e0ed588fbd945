"""A client of the appliance's local API, for commands run on the appliance itself
(``simrotor appliance modem …``, ``simrotor provision selftest``): they ask the running
process instead of opening its modems' ports behind its back.

The address and token come from the appliance's config (``[appliance] listen`` and
``token``); a wildcard address (``0.0.0.0``, ``::``) is reached on loopback.
"""
from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Final
from urllib.parse import quote

import aiohttp

from .config import ApplianceConfig

#: Seconds one request may take: the API answers from memory in milliseconds; a process
#: that does not answer in this long is stuck or not there.
REQUEST_TIMEOUT: Final = 10.0
#: Addresses that listen everywhere, and the loopback address a local client uses instead.
WILDCARDS: Final = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1", "[::]": "::1"}
#: Polls of a modem's state after a control start at 0.2 s and double to 2 s: a stop is
#: done in milliseconds when idle, and a call's end may take minutes.
POLL_BACKOFF: Final = (0.2, 2.0)


class LocalApiError(RuntimeError):
    """The appliance's API could not be reached, or refused the request (``status``, and the
    problem's ``code``: appliance.problems)."""

    def __init__(self, message: str, status: int | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status, self.code = status, code


def base_url(listen: str) -> str:
    """``http://host:port`` to reach ``[appliance] listen`` from this machine."""
    host, _, port = listen.rpartition(":")
    host = WILDCARDS.get(host, host)
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{port}"


class LocalApi:
    def __init__(self, url: str, token: str, *, timeout: float = REQUEST_TIMEOUT) -> None:
        self.url = url.rstrip("/")
        self.token = token
        self.timeout = aiohttp.ClientTimeout(total=timeout)

    @classmethod
    def from_config(cls, cfg: ApplianceConfig) -> LocalApi | None:
        """The config's API, or None when it is switched off (``listen = ""``)."""
        if not cfg.appliance.listen:
            return None
        return cls(base_url(cfg.appliance.listen), cfg.appliance.token or "")

    async def _call(self, method: str, path: str, body: Any = None) -> Any:
        headers = {"Authorization": f"Bearer {self.token}"}
        try:
            async with aiohttp.ClientSession(timeout=self.timeout) as session, \
                    session.request(method, self.url + path, json=body, headers=headers) as resp:
                try:
                    data = await resp.json(content_type=None)
                except ValueError:
                    data = {"code": "not_json", "detail": (await resp.text())[:200]}
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise LocalApiError(f"the appliance's API at {self.url} does not answer ({exc or type(exc).__name__})") from None
        if resp.status >= 400:  # a problem (RFC 9457): its detail in words, its code to branch on
            problem = data if isinstance(data, dict) else {}
            code = problem.get("code") if isinstance(problem.get("code"), str) else None
            raise LocalApiError(f"{method} {path}: {resp.status} {problem.get('detail') or data}", resp.status, code)
        return data

    async def channels(self) -> list[dict[str, Any]]:
        """``GET /api/channels``: every channel's state, SIM, number and signal."""
        return list((await self._call("GET", "/api/channels"))["channels"])

    async def control(self, modem_id: str, action: str, *, when_idle: bool = False) -> dict[str, Any]:
        """``POST /api/modems/{id}/{action}`` (``Bank.control``): the channel's view."""
        return dict(await self._call("POST", f"/api/modems/{quote(modem_id, safe='')}/{action}", {"when_idle": when_idle}))

    async def wait_modem(self, modem_id: str, done: Callable[[dict[str, Any] | None], bool], *, timeout: float,
                         said: Callable[[str], None] | None = None) -> dict[str, Any] | None:
        """Poll ``GET /api/channels`` (with backoff) until ``done(channel)`` — the channel's
        view, None once it is gone (removed) — or ``timeout`` seconds; each new reason the
        channel gives while it is not done goes to ``said``. Returns the last view; raises
        ``LocalApiError`` naming the wait's last reason on timeout."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        delay, cap = POLL_BACKOFF
        last_reason = None
        while True:
            view = next((c for c in await self.channels() if c["id"] == modem_id), None)
            if done(view):
                return view
            reason = None if view is None else f"{view['state']}: {view['reason']}"
            if reason != last_reason and said is not None and reason is not None:
                said(f"{modem_id} {reason}")
            last_reason = reason
            if loop.time() >= deadline:
                raise LocalApiError(f"{modem_id}: still {last_reason} after {timeout:.0f} s")
            await asyncio.sleep(min(delay, max(0.0, deadline - loop.time())))
            delay = min(cap, delay * 2)
