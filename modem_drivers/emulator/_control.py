"""HTTP control API (aiohttp, 127.0.0.1 only) so other processes can drive the emulator.

GET /modems, GET /calls, GET /sms, POST /faults {modem, fault, ...params},
POST /inbound/sms {from, to, text}, POST /inbound/call {from, to, ring_seconds}.
Errors are JSON ``{error, detail}`` with a 4xx status (DESIGN.md conventions).
"""
from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from aiohttp import web

from provisioning.clikit import to_jsonable

if TYPE_CHECKING:
    from ._emulator import Emulator

HOST = "127.0.0.1"  # never exposed beyond the machine: the API has no authentication


def _error(status: int, error: str, detail: str) -> web.Response:
    return web.json_response({"error": error, "detail": detail}, status=status)


async def _body(request: web.Request, required: tuple[str, ...]) -> dict[str, Any]:
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise web.HTTPBadRequest(
            text=json.dumps({"error": "bad_json", "detail": "the body must be a JSON object"}),
            content_type="application/json") from None
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(
            text=json.dumps({"error": "bad_json", "detail": "the body must be a JSON object"}),
            content_type="application/json")
    missing = [k for k in required if k not in body]
    if missing:
        raise web.HTTPUnprocessableEntity(
            text=json.dumps({"error": "missing_field", "detail": f"required: {', '.join(missing)}"}),
            content_type="application/json")
    return body


class ControlServer:
    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator
        self._runner: web.AppRunner | None = None

    def _app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/modems", self.modems)
        app.router.add_get("/calls", self.calls)
        app.router.add_get("/sms", self.sms)
        app.router.add_post("/faults", self.faults)
        app.router.add_post("/inbound/sms", self.inbound_sms)
        app.router.add_post("/inbound/call", self.inbound_call)
        return app

    async def start(self, port: int) -> str:
        self._runner = web.AppRunner(self._app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, HOST, port)
        await site.start()
        host, bound = self._runner.addresses[0][:2]
        return f"http://{host}:{bound}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def modems(self, request: web.Request) -> web.Response:
        out = []
        for m in self.emulator.modems:
            out.append({
                "id": m.id, "port": m.port, "device": m.device, "online": m.online,
                "vendor": m.vendor, "model": m.model, "imei": m.imei, "active_slot": m.active_slot,
                "registration": m.reg_stat, "stuck": m.stuck,
                "call": m.call.state.value if m.call else None,
                "sims": [s.status() for s in m.sims],
            })
        return web.json_response(out)

    async def calls(self, request: web.Request) -> web.Response:
        return web.json_response(to_jsonable(self.emulator.network.calls))

    async def sms(self, request: web.Request) -> web.Response:
        return web.json_response([r.public() for r in self.emulator.network.sms])

    async def faults(self, request: web.Request) -> web.Response:
        from ._emulator import EmulatorError

        body = await _body(request, ("modem", "fault"))
        params = {k: v for k, v in body.items() if k not in ("modem", "fault")}
        try:
            await self.emulator.inject(str(body["modem"]), str(body["fault"]), **params)
        except EmulatorError as exc:
            status = 404 if str(exc).startswith("modem:") else 422
            return _error(status, "bad_fault", str(exc))
        except (TypeError, ValueError) as exc:
            return _error(422, "bad_fault", f"parameters: {exc}")
        return web.json_response({"ok": True}, status=202)

    async def inbound_sms(self, request: web.Request) -> web.Response:
        from ._emulator import EmulatorError

        body = await _body(request, ("from", "to", "text"))
        try:
            await self.emulator.inbound_sms(str(body["from"]), str(body["to"]), str(body["text"]))
        except EmulatorError as exc:
            return _error(404, "unknown_subscriber", str(exc))
        return web.json_response({"ok": True}, status=202)

    async def inbound_call(self, request: web.Request) -> web.Response:
        from ._emulator import EmulatorError

        body = await _body(request, ("from", "to"))
        try:
            ring = float(body.get("ring_seconds", 5))
        except (TypeError, ValueError):
            return _error(422, "bad_field", "ring_seconds: expected a number of seconds")
        try:
            await self.emulator.inbound_call(str(body["from"]), str(body["to"]), ring)
        except EmulatorError as exc:
            return _error(404, "unknown_subscriber", str(exc))
        return web.json_response({"ok": True}, status=202)
