"""HTTP control API (aiohttp, 127.0.0.1 only) so other processes can drive the emulator.

GET /modems, GET /calls, GET /calls/{n}/heard.wav, GET /sms, POST /faults {modem, fault, ...params},
GET /faults (faults armed for a call phase, and those that fired),
POST /inbound/sms {from, to, text}, POST /inbound/call {from, to, ring_seconds, keys}.
Errors are JSON ``{error, detail}`` with a 4xx status (docs/architecture.md, Conventions).

A fault posted with ``"phase": "dialing" | "alerting" | "active"`` is armed instead of
injected: it lands the moment that modem's next call enters the phase (ATD accepted,
the callee's phone ringing, the conversation). In FAST timing a call passes through
those phases within a loop turn or two, far too quickly for a client polling
GET /modems to hit one.
"""
from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, Protocol

from aiohttp import web

from ._calls import Call, CallState, wav_bytes
from ._faults import EmulatorError, Fault
from ._modem import VirtualModem
from ._network import Network

HOST = "127.0.0.1"  # never exposed beyond the machine: the API has no authentication
#: The call phases a fault can wait for (``phase`` in POST /faults).
PHASES: Final[dict[str, CallState]] = {
    "dialing": CallState.DIALING, "alerting": CallState.ALERTING, "active": CallState.ACTIVE,
}


@dataclass(slots=True)
class _Armed:
    """A fault waiting for a modem's call to enter ``phase``."""

    modem: str
    fault: str
    params: dict[str, Any]
    phase: str
    armed_at: float  # time.time(), for the report in GET /faults

    def public(self) -> dict[str, Any]:
        return {"modem": self.modem, "fault": self.fault, "phase": self.phase, "armed_at": self.armed_at, **self.params}


def _check_params(fault: str, params: dict[str, Any]) -> str | None:
    """What is wrong with an armed fault's parameters (checked when it is armed, since
    it fires later, where nobody could be told); None when they are fine."""
    try:
        kind = Fault(fault)
    except ValueError:
        return f"fault: {fault!r} is not one of {[f.value for f in Fault]}"
    seconds = params.get("seconds")
    if seconds is not None and (isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds < 0):
        return "seconds: expected a number of seconds >= 0, or null"
    if kind is Fault.LOSE_URC and not (isinstance(params.get("prefix"), str) and params["prefix"]):
        return "prefix: expected the start of the URC to lose, e.g. '+CDS'"
    if kind is Fault.GARBAGE and "count" in params and not (isinstance(params["count"], int) and params["count"] > 0):
        return "count: expected a number of random bytes > 0"
    if kind is Fault.BLOCK_SIM and params.get("slot") is not None and not isinstance(params["slot"], int):
        return "slot: expected a slot number from 0"
    return None


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


class Controlled(Protocol):
    """What the control server drives: the emulator's modems, network and injections
    (declared here, on the user's side, so the server never imports the emulator)."""

    modems: list[VirtualModem]
    network: Network

    def modem(self, modem_id: str) -> VirtualModem: ...

    async def inject(self, modem_id: str, fault: Fault | str, **params: Any) -> None: ...

    async def inbound_sms(self, sender: str, to_msisdn: str, text: str) -> None: ...

    async def inbound_call(self, caller: str, to_msisdn: str, ring_seconds: float = 5, keys: str = "") -> None: ...


class ControlServer:
    def __init__(self, emulator: Controlled) -> None:
        self.emulator = emulator
        self._runner: web.AppRunner | None = None
        self._armed: dict[str, list[_Armed]] = {}
        self._watched: set[str] = set()
        self.fired: list[dict[str, Any]] = []

    def _app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/modems", self.modems)
        app.router.add_get("/calls", self.calls)
        app.router.add_get("/calls/{n}/heard.wav", self.heard)
        app.router.add_get("/sms", self.sms)
        app.router.add_post("/faults", self.faults)
        app.router.add_get("/faults", self.armed_faults)
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
                "audio_port": m.audio_port, "audio_device": m.audio.device if m.audio is not None else None,
                "audio_setup": m.settings.audio,
                "vendor": m.vendor, "model": m.model, "imei": m.imei, "active_slot": m.active_slot,
                "registration": m.reg_stat, "stuck": m.stuck,
                "call": m.call.state.value if m.call else None,
                "sims": [s.status() for s in m.sims],
            })
        return web.json_response(out)

    async def calls(self, request: web.Request) -> web.Response:
        return web.json_response([r.public() for r in self.emulator.network.calls])

    async def heard(self, request: web.Request) -> web.Response:
        """What the far end of call ``n`` (its index in GET /calls) heard, as a WAV;
        ``?from=beep`` starts at a machine's beep, ``?from_ms=N`` N ms after the answer."""
        calls = self.emulator.network.calls
        try:
            n = int(request.match_info["n"])
            record = calls[n]
        except (ValueError, IndexError):
            return _error(404, "unknown_call", f"n: expected a call index 0…{len(calls) - 1}")
        audio = record.audio
        if audio is None:
            return _error(404, "no_audio", f"call {n} had no far end on an audio port")
        start = request.query.get("from")
        if start == "beep":
            if audio.beep_ms is None:
                return _error(404, "no_beep", f"call {n}: the callee played no beep")
            pcm = audio.after_beep()
        else:
            try:
                pcm = audio.heard_after(int(request.query.get("from_ms", "0")))
            except ValueError:
                return _error(422, "bad_field", "from_ms: expected whole milliseconds after the answer")
        return web.Response(body=wav_bytes(pcm), content_type="audio/wav")

    async def sms(self, request: web.Request) -> web.Response:
        return web.json_response([r.public() for r in self.emulator.network.sms])

    async def faults(self, request: web.Request) -> web.Response:
        body = await _body(request, ("modem", "fault"))
        params = {k: v for k, v in body.items() if k not in ("modem", "fault", "phase")}
        if "phase" in body:
            return self._arm(str(body["modem"]), str(body["fault"]), params, body["phase"])
        try:
            await self.emulator.inject(str(body["modem"]), str(body["fault"]), **params)
        except EmulatorError as exc:
            status = 404 if str(exc).startswith("modem:") else 422
            return _error(status, "bad_fault", str(exc))
        except (TypeError, ValueError) as exc:
            return _error(422, "bad_fault", f"parameters: {exc}")
        return web.json_response({"ok": True}, status=202)

    async def armed_faults(self, request: web.Request) -> web.Response:
        armed = [a.public() for waiting in self._armed.values() for a in waiting]
        return web.json_response({"armed": armed, "fired": self.fired})

    def _arm(self, modem_id: str, fault: str, params: dict[str, Any], phase: Any) -> web.Response:
        if phase not in PHASES:
            return _error(422, "bad_fault", f"phase: expected one of {', '.join(PHASES)}")
        try:
            modem = self.emulator.modem(modem_id)
        except EmulatorError as exc:
            return _error(404, "bad_fault", str(exc))
        problem = _check_params(fault, params)
        if problem:
            return _error(422, "bad_fault", problem)
        self._armed.setdefault(modem_id, []).append(_Armed(modem_id, fault, params, phase, time.time()))
        self._watch(modem)
        return web.json_response({"ok": True, "armed": True}, status=202)

    def _watch(self, modem: VirtualModem) -> None:
        """Hear every call phase of ``modem``: its ``call_progress`` (which the network
        calls as a call enters each state) is wrapped once, on this instance only."""
        if modem.id in self._watched:
            return
        self._watched.add(modem.id)
        progress: Callable[[Call, CallState], None] = modem.call_progress

        def call_progress(call: Call, state: CallState) -> None:
            progress(call, state)
            self._phase_entered(modem, call, state)

        modem.call_progress = call_progress  # type: ignore[method-assign]

    def _phase_entered(self, modem: VirtualModem, call: Call, state: CallState) -> None:
        waiting = self._armed.get(modem.id)
        if not waiting or call.direction != 0:  # outgoing calls only (27.007 <dir> 0)
            return
        due = [a for a in waiting if PHASES[a.phase] is state]
        if not due:
            return
        self._armed[modem.id] = [a for a in waiting if a not in due]
        for a in due:
            self.fired.append({**a.public(), "fired_at": time.time(), "callee": call.number})
            # Injected from its own task, which runs before the call's next phase (the
            # network script yields at least one loop turn between phases): the phase's
            # report has gone out, nothing after it has.
            task = asyncio.get_running_loop().create_task(self.emulator.inject(a.modem, a.fault, **a.params))
            modem.track(task)

    async def inbound_sms(self, request: web.Request) -> web.Response:
        body = await _body(request, ("from", "to", "text"))
        try:
            await self.emulator.inbound_sms(str(body["from"]), str(body["to"]), str(body["text"]))
        except EmulatorError as exc:
            return _error(404, "unknown_subscriber", str(exc))
        return web.json_response({"ok": True}, status=202)

    async def inbound_call(self, request: web.Request) -> web.Response:
        body = await _body(request, ("from", "to"))
        try:
            ring = float(body.get("ring_seconds", 5))
        except (TypeError, ValueError):
            return _error(422, "bad_field", "ring_seconds: expected a number of seconds")
        try:
            await self.emulator.inbound_call(str(body["from"]), str(body["to"]), ring, str(body.get("keys", "")))
        except EmulatorError as exc:
            if str(exc).startswith("keys:"):
                return _error(422, "bad_field", str(exc))
            return _error(404, "unknown_subscriber", str(exc))
        return web.json_response({"ok": True}, status=202)
