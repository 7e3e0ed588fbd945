"""The appliance's local JSON API (standalone mode) and its metrics endpoint.

    POST   /api/jobs                 a batch; ids chosen by the caller, resubmit is idempotent
    GET    /api/jobs/{id}            the job with its attempts
    DELETE /api/jobs/{id}            cancel if not started (409 when running or done)
    GET    /api/results?after=N      results in order, cursor-paginated (``next``)
    GET    /api/channels             channels: state, SIM, number, signal
    GET    /api/inbound?after=T      SMS and calls received (callbacks), oldest first
    GET    /api/status               counters
    POST   /api/modems/{id}/{action} stop, restart or remove one modem; {"when_idle": true} lets its work end first
    GET    /metrics                  Prometheus text format: this machine only, or [appliance] metrics_token

Every /api route needs ``Authorization: Bearer <token>``. Errors are RFC 9457 problems
(``application/problem+json``, appliance.problems: type, title, status, detail, instance,
code, errors) with the right 4xx — 415 for a body that is not sent as JSON, 405 with
``Allow`` — bad input never gets a 500, and anything that still fails inside is a problem
500, not aiohttp's plain-text page.

The handlers find what they use under typed application keys (``SCHEDULER``, ``STORE``,
``BANK``, ``METRICS`` and ``status.STATUS``), set once by ``make_app``.
"""
from __future__ import annotations

import dataclasses
import hmac
import json
import logging
from typing import Any, Final

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from common.configkit import is_loopback

from .bank import Bank, ControlError, ModemAction
from .jobspec import BodyError, JobError, decode_batch, validate_batch
from .metrics import Metrics
from .problems import http_problem, media_problem, problem
from .scheduler import Scheduler
from .status import STATUS, Status
from .store import Store

logger = logging.getLogger(__name__)

#: Largest request body: a full batch of MAX_BATCH jobs with texts fits in 16 MiB.
MAX_BODY = 16 * 1024 * 1024
#: Page size of /api/results when the caller does not say, and the largest allowed.
DEFAULT_PAGE, MAX_PAGE = 100, 1000
#: Result cursors are SQLite rowids: 64-bit signed integers (SQLite "Datatypes", INTEGER).
MAX_CURSOR = 2**63 - 1

SCHEDULER: Final = web.AppKey("scheduler", Scheduler)
STORE: Final = web.AppKey("store", Store)
BANK: Final = web.AppKey("bank", Bank)
METRICS: Final = web.AppKey("metrics", Metrics)


@dataclasses.dataclass(slots=True, frozen=True)
class ApiDeps:
    """What the API's handlers use."""

    scheduler: Scheduler
    store: Store
    bank: Bank
    metrics: Metrics
    status: Status


def _auth(token: str) -> Any:
    @web.middleware
    async def auth(request: web.Request, handler: Any) -> web.StreamResponse:
        if request.path.startswith("/api/"):
            header = request.headers.get("Authorization", "")
            given = header[7:] if header.startswith("Bearer ") else ""
            if not given or not hmac.compare_digest(given.encode(), token.encode()):
                return problem(request, 401, "unauthorized", "send Authorization: Bearer <token from the config>")
        try:
            return await handler(request)
        except web.HTTPException as exc:
            if exc.status >= 400:
                return http_problem(request, exc, MAX_BODY)
            raise
        except Exception:
            logger.exception("API %s %s", request.method, request.path)
            return problem(request, 500, "internal", "the appliance failed; see its log")

    return auth


async def post_jobs(request: web.Request) -> web.Response:
    """200 with ``accepted``, ``duplicates`` and ``errors`` (the bad jobs, the good ones
    stored); a batch with no good job is a 400 problem ``invalid_jobs`` listing them all."""
    if (refused := media_problem(request)) is not None:
        return refused
    try:
        body = decode_batch(await request.read())
    except BodyError as exc:
        return problem(request, 400, "invalid_json", exc.detail())
    try:
        good, errors = validate_batch(body)
    except JobError as exc:
        return problem(request, 400, "invalid_batch", {"field": exc.field, "reason": exc.reason})
    if errors and not good:
        return problem(request, 400, "invalid_jobs", errors=errors, accepted=[], duplicates=[])
    created = request.app[SCHEDULER].submit(good) if good else []
    return web.json_response({
        "accepted": [i for i, new in created if new],
        "duplicates": [i for i, new in created if not new],
        "errors": errors,
    })


async def get_job(request: web.Request) -> web.Response:
    job = request.app[STORE].get_job(request.match_info["id"])
    if job is None:
        return problem(request, 404, "not_found", f"no job {request.match_info['id']!r}")
    waiting = request.app[SCHEDULER].waiting(job["id"])
    if waiting is not None:
        job.update(waiting)
    return web.json_response(job)


async def delete_job(request: web.Request) -> web.Response:
    state = request.app[SCHEDULER].cancel(request.match_info["id"])
    if state == "unknown":
        return problem(request, 404, "not_found", f"no job {request.match_info['id']!r}")
    if state != "cancelled":
        return problem(request, 409, "not_cancellable", f"the job is {state}")
    return web.json_response({"id": request.match_info["id"], "state": "cancelled"})


async def get_results(request: web.Request) -> web.Response:
    try:
        after = int(request.query.get("after", "0"))
        limit = int(request.query.get("limit", str(DEFAULT_PAGE)))
    except ValueError:
        return problem(request, 400, "invalid_query", "after and limit are integers")
    if not 0 <= after <= MAX_CURSOR or not 1 <= limit <= MAX_PAGE:
        return problem(request, 400, "invalid_query", f"0 <= after <= {MAX_CURSOR}, 1 <= limit <= {MAX_PAGE}")
    items, nxt = request.app[STORE].results_after(after, limit)
    return web.json_response({"results": items, "next": nxt})


async def get_inbound(request: web.Request) -> web.Response:
    try:
        after = float(request.query.get("after", "0"))
    except ValueError:
        return problem(request, 400, "invalid_query", {"field": "after", "reason": "a UTC epoch time in seconds"})
    return web.json_response({"inbound": request.app[STORE].inbound_after(after)})


async def get_channels(request: web.Request) -> web.Response:
    return web.json_response({"channels": request.app[BANK].snapshot()})


async def post_modem(request: web.Request) -> web.Response:
    """``Bank.control``: 200 with the channel's view (``pending`` while its work ends)."""
    try:
        action = ModemAction(request.match_info["action"])
    except ValueError:
        return problem(request, 404, "not_found", f"no action {request.match_info['action']!r}; "
                       f"one of {', '.join(a.value for a in ModemAction)}")
    if (refused := media_problem(request)) is not None:
        return refused
    raw = await request.read()
    try:
        body = json.loads(raw) if raw.strip() else {}
    except ValueError as exc:
        return problem(request, 400, "invalid_json", {"field": "body", "reason": f"not JSON: {exc}"})
    if not isinstance(body, dict) or set(body) - {"when_idle"} or not isinstance(body.get("when_idle", False), bool):
        return problem(request, 400, "invalid_body", {"field": "body", "reason": 'expected {"when_idle": true|false} '
                                                      "or no body"})
    try:
        view = request.app[BANK].control(request.match_info["id"], action, when_idle=body.get("when_idle", False))
    except ControlError as exc:
        return problem(request, 404, "not_found", str(exc))
    return web.json_response(view)


async def get_status(request: web.Request) -> web.Response:
    return web.json_response(request.app[STATUS].summary())


def metrics_refusal(request: web.Request, metrics_token: str | None) -> web.Response | None:
    """``/metrics`` is for Prometheus, not for anyone who reaches the port: without
    ``[appliance] metrics_token`` only this machine's callers (a loopback peer) are
    answered; with it every caller, this machine's too (a proxy on it would look local),
    sends ``Authorization: Bearer <metrics_token>``."""
    if metrics_token is None:
        if is_loopback(request.remote or ""):
            return None
        return problem(request, 403, "forbidden", "/metrics answers this machine only; to scrape from elsewhere set "
                       "[appliance] metrics_token and send it as a bearer token")
    header = request.headers.get("Authorization", "")
    given = header[7:] if header.startswith("Bearer ") else ""
    if given and hmac.compare_digest(given.encode(), metrics_token.encode()):
        return None
    return problem(request, 401, "unauthorized", "send Authorization: Bearer <[appliance] metrics_token>")


async def get_metrics(request: web.Request) -> web.Response:
    refused = metrics_refusal(request, request.app[SCHEDULER].cfg.appliance.metrics_token)
    if refused is not None:
        return refused
    metrics = request.app[METRICS]
    metrics.refresh()
    return web.Response(body=generate_latest(metrics.registry), headers={"Content-Type": CONTENT_TYPE_LATEST})


def make_app(deps: ApiDeps, token: str) -> web.Application:
    app = web.Application(middlewares=[_auth(token)], client_max_size=MAX_BODY)
    app[SCHEDULER] = deps.scheduler
    app[STORE] = deps.store
    app[BANK] = deps.bank
    app[METRICS] = deps.metrics
    app[STATUS] = deps.status
    app.router.add_post("/api/jobs", post_jobs)
    app.router.add_get("/api/jobs/{id}", get_job)
    app.router.add_delete("/api/jobs/{id}", delete_job)
    app.router.add_get("/api/results", get_results)
    app.router.add_get("/api/channels", get_channels)
    app.router.add_get("/api/inbound", get_inbound)
    app.router.add_get("/api/status", get_status)
    app.router.add_post("/api/modems/{id}/{action}", post_modem)
    app.router.add_get("/metrics", get_metrics)
    return app
