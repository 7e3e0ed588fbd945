"""A whole simrotor system for tests and the demo: an emulated bank, a controller, an
appliance linked to it, a webhook receiver — all real servers on loopback."""
from __future__ import annotations

import asyncio
import contextlib
import json
import re
import socket
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
from aiohttp import web
from controller_harness import FakeClock

from appliance.runtime import plan_prefixes
from controller.webhooks import verify


class WebhookReceiver:
    """A CRM's webhook endpoint: checks every signature and keeps what arrived."""

    def __init__(self, clock: Any = time.time) -> None:
        self.clock = clock  # the controller's clock (tests move it forward)
        self.secret = ""
        self.events: list[dict[str, Any]] = []
        self.delivery_ids: list[str] = []  # each event's X-Simrotor-Delivery, in step with events
        self.bad_signatures = 0
        self.runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> None:
        async def hook(request: web.Request) -> web.Response:
            body = await request.read()
            ok = verify(self.secret, request.headers.get("X-Simrotor-Signature", ""),
                        request.headers.get("X-Simrotor-Timestamp", ""), body, self.clock())
            if not ok:
                self.bad_signatures += 1
                return web.Response(status=401)
            self.events.append({"event": request.headers.get("X-Simrotor-Event"), **json.loads(body)})
            self.delivery_ids.append(request.headers.get("X-Simrotor-Delivery", ""))
            return web.Response(status=204)

        app = web.Application()
        app.router.add_post("/hook", hook)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}/hook"

    @property
    def unique(self) -> dict[str, dict[str, Any]]:
        """Delivery id -> event, repeats dropped (as a CRM does by X-Simrotor-Delivery)."""
        return dict(zip(self.delivery_ids, self.events, strict=True))

    async def stop(self) -> None:
        if self.runner:
            await self.runner.cleanup()


def clock_between(start_hour: int, end_hour: int, *, zone: str = "Europe/Warsaw") -> Any:
    """The controller's clock (a FakeClock, movable forward): the real
    time if it is between ``start_hour`` and ``end_hour`` in ``zone``, else the next 10:00
    there — forward only: the appliance runs on the real clock, and a controller clock set
    back (to this morning) hands it leases that already expired in its eyes."""
    from datetime import datetime, timedelta
    from zoneinfo import ZoneInfo

    now = datetime.now(ZoneInfo(zone))
    if start_hour <= now.hour < end_hour:
        return FakeClock()
    target = now.replace(hour=10, minute=0, second=0, microsecond=0)
    if target <= now:
        target += timedelta(days=1)
    return FakeClock(target.timestamp())


def controller_sections() -> dict[str, Any]:
    return {
        "dispatch": {"interval_seconds": 0.1, "lease_seconds": 60.0},
        "webhooks": {"backoff_seconds": 0.2, "allow_private": True},  # the CRM's receiver is on loopback
        "operator_prefixes": {k: v for k, v in plan_prefixes().items() if k.startswith("+4860")},
    }


def appliance_config(tmp: Path, state_file: Path, link_url: str, credential_file: Path, **extra: Any) -> dict[str, Any]:
    cfg: dict[str, Any] = {
        "emulator_state": str(state_file),
        "appliance": {"id": "box-01", "store": str(tmp / "appliance.db"), "listen": "127.0.0.1:0", "token": "t"},
        "limits": {"calls_per_hour": 1000, "calls_per_day": 10000, "min_pause_seconds": 0.0,
                   "pause_after_call": [0.0, 0.0], "sms_per_hour": 1000},
        "lock": {"consecutive_failed": None, "consecutive_not_alerting": None},
        "retry": {"max_attempts": 1},
        "sms": {"report_timeout_seconds": 20.0, "ping_timeout_seconds": 20.0, "collect_interval_seconds": 1.0},
        "link": {"url": link_url, "credential_file": str(credential_file), "heartbeat_seconds": 1.0,
                 "reconnect_backoff": [0.2, 1.0]},
        "supervision": {"reopen_backoff": [0.2, 1.0]},
    }
    for k, v in extra.items():
        cfg.setdefault(k, {}).update(v)
    return cfg


class Crm:
    """The upstream CRM: talks to the controller's /v1 API with its key."""

    def __init__(self, session: aiohttp.ClientSession, base: str, key: str) -> None:
        self.s, self.base, self.headers = session, base, {"Authorization": f"Bearer {key}"}

    async def call(self, method: str, path: str, **kw: Any) -> tuple[int, Any]:
        kw.setdefault("timeout", aiohttp.ClientTimeout(total=30))  # a hung request fails, it does not hang the test
        async with self.s.request(method, self.base + path, headers={**self.headers, **kw.pop("headers", {})}, **kw) as r:
            text = await r.text()
            body = json.loads(text) if text else None
            if r.status >= 400 and r.content_type != "text/html":  # every error of the API is a problem (RFC 9457)
                assert r.content_type == "application/problem+json", (method, path, r.status, r.content_type, text)
                assert body["status"] == r.status and isinstance(body["errors"], list) and body["title"], body
            return r.status, body

    async def all_results(self, campaign: str | None = None) -> list[dict[str, Any]]:
        out, after = [], 0
        while True:
            q = f"/v1/results?after={after}&limit=1000" + (f"&campaign_id={campaign}" if campaign else "")
            status, page = await self.call("GET", q)
            assert status == 200, page
            out += page["items"]
            if not page["items"]:
                return out
            after = page["next"]

    async def wait_campaign_done(self, campaign: str, timeout: float) -> dict[str, Any]:
        async with asyncio.timeout(timeout):
            while True:
                status, c = await self.call("GET", f"/v1/campaigns/{campaign}")
                counts = c.get("contacts") or {}
                if status == 200 and counts.get("total") and counts.get("done") == counts["total"]:
                    return c
                await asyncio.sleep(0.2)

    async def wait_campaign_done_moving(self, campaign: str, clock: Any, timeout: float,
                                        step: float = 61.0) -> dict[str, Any]:
        """``wait_campaign_done`` while the controller's fake ``clock`` moves ``step`` s every
        0.5 s: retries wait 60 s of controller time, so the test moves it instead of sleeping."""
        async def tick() -> None:
            while True:
                await asyncio.sleep(0.5)
                clock.advance(step)

        ticker = asyncio.ensure_future(tick())
        try:
            return await self.wait_campaign_done(campaign, timeout)
        finally:
            ticker.cancel()


@contextlib.asynccontextmanager
async def receiver(clock: Any = time.time) -> Any:
    r = WebhookReceiver(clock)
    await r.start()
    try:
        yield r
    finally:
        await r.stop()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def toml_text(cfg: dict[str, Any]) -> str:
    """A config dict as TOML: top-level values, then one table per dict; keys that are
    not bare TOML keys (``"+48600"``, as in ``[operator_prefixes]``) quoted."""
    def key(k: str) -> str:
        return k if re.fullmatch(r"[A-Za-z0-9_-]+", k) else json.dumps(k)

    def val(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (int, float)):
            return repr(v)
        if isinstance(v, (list, tuple)):
            return "[" + ", ".join(val(x) for x in v) + "]"
        return json.dumps(v)  # a JSON string literal is a valid TOML basic string

    lines = [f"{key(k)} = {val(v)}" for k, v in cfg.items() if not isinstance(v, dict)]
    for k, v in cfg.items():
        if isinstance(v, dict):
            lines.append(f"[{key(k)}]")
            lines += [f"{key(kk)} = {val(vv)}" for kk, vv in v.items() if vv is not None]
    return "\n".join(lines) + "\n"


def config_mistake(load: Any, error: type[Exception], path: Path, text: str) -> str:
    """Write ``text`` to ``path``, load it and return the one-line message of the refusal,
    which must name the file and say how to fix it (issue 12: every mistake names file,
    key and fix; none escapes as a traceback)."""
    path.write_text(text)
    try:
        load(path)
    except error as exc:
        msg = str(exc)
    else:
        raise AssertionError(f"{path}: loaded without a complaint")
    assert msg.startswith(f"{path}: ") and "fix: " in msg and "\n" not in msg, msg
    return msg


#: Zones round the globe: at any hour one of them is inside the shipped calling hours.
ZONES = ("Pacific/Auckland", "Australia/Sydney", "Asia/Tokyo", "Asia/Shanghai", "Asia/Bangkok", "Asia/Kolkata",
         "Asia/Dubai", "Europe/Moscow", "Europe/Warsaw", "Europe/London", "Atlantic/Azores", "America/Sao_Paulo",
         "America/New_York", "America/Chicago", "America/Denver", "America/Los_Angeles", "Pacific/Honolulu")


def daytime_zone(at: float | None = None) -> str:
    """A zone where the local time is well inside the default calling hours at ``at``
    (epoch seconds; now by default). A test whose controller runs on a clock of its own
    (``clock_between``: moved to tomorrow 10:00 in Warsaw late in the evening) passes that
    clock's time: a zone chosen by the real time was then at night in the controller's eyes."""
    when = datetime.now(UTC) if at is None else datetime.fromtimestamp(at, UTC)

    def distance(zone: str) -> float:
        local = when.astimezone(ZoneInfo(zone))
        return abs(local.hour + local.minute / 60 - 13)

    zone = min(ZONES, key=distance)
    assert 9 <= when.astimezone(ZoneInfo(zone)).hour < 18, zone
    return zone


async def wait_for(what: str, check: Any, timeout: float) -> None:
    """Poll ``check`` (sync or async) until true; a timeout names what was awaited."""
    try:
        async with asyncio.timeout(timeout):
            while True:
                got = check()
                if asyncio.iscoroutine(got):
                    got = await got
                if got:
                    return
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(f"waited {timeout:g} s for {what}") from None


def spread_contacts(zone: str, n: int, prefix: str = "c") -> list[dict[str, Any]]:
    """``n`` contacts in ``zone``, their numbers spread over four operators and three
    behaviours of the emulator's plan (answered, busy, no answer)."""
    return [{"external_id": f"{prefix}{i}", "phones": [f"+4860{i % 4}{(0, 2, 3)[i % 3]}{i:05d}"], "time_zone": zone}
            for i in range(n)]
