"""The CRM API under /v1 (aiohttp). The routes here and the OpenAPI document in
openapi.py describe the same thing; tests/test_controller_api.py validates the document
and runs schemathesis against a live server to keep them so.

Every /v1 route except ``POST /v1/enroll`` (one-time token in the body) and ``GET
/v1/link`` (appliance credential) needs ``Authorization: Bearer <API key>``. Errors are
RFC 9457 problem details (``application/problem+json``, apikit.py) with the right 4xx and
an ``errors`` list of every bad field or row; list endpoints are cursor-paginated (``after``, ``limit``; the reply's ``next`` is
the next ``after``).

Bad input is a 4xx that names the field, never a 500: bodies are decoded with msgspec
(big integers and nesting past the interpreter's recursion limit are refused, not
crashed on); a contact import is checked whole and stored in one transaction or not at
all (422 ``invalid_rows`` with every bad row's line and field, controller/contacts.py).
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import logging
import queue
import re
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any, Final

from aiohttp import web

from common import phone

from . import auth, contacts_csv, contacts_json
from . import campaigns as cp
from . import contacts as ct
from .apikit import (
    DEFAULT_PAGE,
    ID_PATTERN,
    MAX_CURSOR,
    MAX_PAGE,
    ApiError,
    http_problem,
    int_param,
    json_object,
    page,
    path_campaign_id,
    path_contact_id,
    plain_text,
    problem_reply,
    read_json,
    region_param,
    reply,
)
from .crm_routes import CrmRoutes
from .idempotency import HEADER as IDEMPOTENCY_HEADER
from .idempotency import Idempotency
from .link import LinkHub
from .metrics import Metrics, health
from .openapi import (
    DOCS_CSP,
    OPTOUT_CURSOR,
    REDOC_PATH,
    document,
    redoc_html,
    reference_html,
)
from .recordings import RecordingsApi
from .store import Conflict, Store, contacts_copy_text
from .store.base import Read
from .store.loop_reads import LoopReads
from .webhooks import TargetRefused, check_target

logger = logging.getLogger(__name__)

#: 100,000 contacts of ~250 bytes each in one request, with headroom.
MAX_BODY: Final = 64 * 1024 * 1024
#: Rows per validation task: ~200 ms of phonenumbers work in a worker process.
IMPORT_SLICE: Final = 5000
#: Media types of an import body; a request without one is read as JSON.
JSON_TYPES: Final = frozenset({"application/json", "application/octet-stream"})
CSV_TYPES: Final = frozenset({"text/csv", "application/csv"})
#: The state an import moves a campaign to when it adds contacts (a done campaign reopens).
REOPEN: Final = {s.value: t["reopen"].value for s, t in cp.TRANSITIONS.items() if "reopen" in t}
_OPEN: Final = frozenset({"/v1/enroll", "/v1/link"})
#: Routes under it take the appliance's link credential, checked by their handler (recordings.py).
_LINK_PREFIX: Final = "/v1/link/"
#: Redoc's standalone bundle, placed by scripts/vendor-redoc (absent: /docs is the plain page).
REDOC_BUNDLE = Path(__file__).resolve().parent / "static" / "redoc.standalone.js"
#: What ``_check_and_store`` feeds its store thread besides a slice's rows: the last one
#: was sent / a row was bad, roll back.
_END_OF_ROWS: Final = object()
_ABANDON: Final = object()


class _Abandoned(Exception):
    """Raised in the store's transaction of an import with a bad row: nothing is stored."""


class Api:
    """The CRM's routes, handed what they use: the store, the link hub (``/v1/link``, and
    cancels of paused or cancelled campaigns' jobs), the clock, ``wake`` (new work: dispatch
    now), ``wake_deliveries`` (replayed dead letters: deliver now), the import validation
    pool and two settings."""

    def __init__(self, store: Store, hub: LinkHub, clock: Callable[[], float], *, wake: Callable[[], None],
                 wake_deliveries: Callable[[], None], validation_pool: Callable[[], concurrent.futures.Executor],
                 region: str | None = None, allow_private: bool = False, recordings: RecordingsApi | None = None,
                 metrics: Metrics | None = None) -> None:
        self.store = store
        self.idempotency = Idempotency(store, clock)
        self.keys = auth.KeyCache(store.api_key_for_hash)
        self.metrics = metrics or Metrics(store, appliances_connected=self.appliances_connected, deliveries=lambda: (0, 0))
        self.recordings = recordings
        self.hub = hub
        self.clock = clock
        self.wake = wake
        self.wake_deliveries = wake_deliveries
        self.validation_pool = validation_pool
        self.region = region
        self.allow_private = allow_private
        self.reads = LoopReads(store)  # the hot reads' pool on PostgreSQL: opened with the app

    async def _reads(self, app: web.Application) -> AsyncIterator[None]:
        """cleanup_ctx: the reads' asyncio pool lives while the application does."""
        await self.reads.open()
        yield
        await self.reads.close()

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self.middleware], client_max_size=MAX_BODY)
        app.cleanup_ctx.append(self._reads)
        r = app.router
        r.add_get("/openapi.json", self.openapi)
        r.add_get("/docs", self.docs)
        r.add_get("/docs/plain", self.plain_docs)
        r.add_get(REDOC_PATH, self.redoc_bundle)
        r.add_get("/", self.docs)
        r.add_get("/healthz", self.healthz)
        r.add_get("/metrics", self.prometheus)
        r.add_post("/v1/enroll", self.enroll)
        r.add_get("/v1/link", self.hub.handle)
        r.add_get("/v1/campaigns", self.list_campaigns)
        r.add_post("/v1/campaigns", self.create_campaign)
        r.add_get("/v1/campaigns/{id}", self.get_campaign)
        for action in ("start", "pause", "resume", "cancel"):
            r.add_post(f"/v1/campaigns/{{id}}/{action}", self._transition(action))
        r.add_post("/v1/campaigns/{id}/contacts", self.import_contacts)
        r.add_get("/v1/campaigns/{id}/contacts", self.list_contacts)
        r.add_get("/v1/contacts/{id}", self.get_contact)
        r.add_get("/v1/contacts/{id}/history", self.contact_history)
        r.add_get("/v1/results", self.results)
        r.add_get("/v1/inbound", self.inbound)
        r.add_get("/v1/optouts", self.list_optouts)
        r.add_post("/v1/optouts", self.add_optout)
        r.add_delete("/v1/optouts/{number:(?!bulk$)[^/]+}", self.remove_optout)  # not /v1/optouts/bulk (its Allow)
        r.add_get("/v1/webhooks", self.list_webhooks)
        r.add_post("/v1/webhooks", self.add_webhook)
        r.add_delete("/v1/webhooks/{id:wh_[^/]+}", self.delete_webhook)  # not /v1/webhooks/dead-letters (its Allow)
        r.add_get("/v1/webhooks/dead-letters", self.dead_letters)
        r.add_post("/v1/webhooks/dead-letters/replay", self.replay)
        r.add_get("/v1/appliances", self.list_appliances)
        r.add_get("/v1/appliances/{id}", self.get_appliance)
        if self.recordings is not None:
            self.recordings.add_routes(app)  # /v1/recordings…, and the appliances' /v1/link/recordings/{id}
        # /v1/contacts?external_id=, /v1/campaigns/{id}/report, /v1/results/export, /v1/optouts/bulk
        CrmRoutes(self.store, self.reads, self.clock, region=self.region, contact_out=self._contact_out).add_routes(app)
        return app

    @web.middleware
    async def middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        """Every request: its API key (401), its Idempotency-Key (a POST's first answer kept
        and replayed), every error as a problem, its latency in /metrics."""
        started = time.perf_counter()
        try:
            scope = "open"  # enrollment: its token is in the body, and so in the fingerprint
            if request.path.startswith("/v1/") and request.path not in _OPEN and not request.path.startswith(_LINK_PREFIX):
                scope = self._api_key(request)
            if request.method == "POST" and IDEMPOTENCY_HEADER in request.headers:
                resp = await self.idempotency.run(request, scope, lambda: self._answer(request, handler))
            else:
                resp = await self._answer(request, handler)
        except (ApiError, web.HTTPException) as exc:
            resp = self._problem(exc, request)
        except Exception:
            logger.exception("API %s %s", request.method, request.path)
            resp = problem_reply(ApiError(500, "internal", "the controller failed; see its log"), request)
        if not isinstance(resp, web.WebSocketResponse):  # the link's lifetime is no request's latency
            self.metrics.observe(request, resp.status, time.perf_counter() - started)
        return resp

    def _api_key(self, request: web.Request) -> str:
        """The id of the request's API key; 401 without a valid one."""
        secret = auth.bearer(request.headers.get("Authorization"))
        key_id = self.keys.key_id(secret) if secret is not None else None
        if key_id is None:
            raise ApiError(401, "unauthorized", "send Authorization: Bearer <API key> (simrotor controller keys create)")
        return key_id

    async def _answer(self, request: web.Request, handler: Any) -> web.StreamResponse:
        """The handler's answer, its refusals as problems (so that a kept answer is the one sent)."""
        try:
            if any("\x00" in v for v in request.match_info.values()):  # PostgreSQL text cannot hold one: no such id
                raise ApiError(404, "not_found", "no such resource: an id never holds a NUL character")
            return await handler(request)
        except (ApiError, web.HTTPException) as exc:
            return self._problem(exc, request)

    def _problem(self, exc: ApiError | web.HTTPException, request: web.Request) -> web.Response:
        if isinstance(exc, ApiError):
            return problem_reply(exc, request)
        if exc.status < 400:
            raise exc
        return problem_reply(http_problem(exc, MAX_BODY, ct.MAX_ROWS), request)

    # -- health and metrics ---------------------------------------------------------------
    def appliances_connected(self) -> int:
        return sum(1 for link in self.hub.links.values() if link.hello is not None)

    async def healthz(self, request: web.Request) -> web.Response:
        """No API key: a load balancer or systemd probe asks it. Says nothing secret."""
        status, body = health(self.store, self.appliances_connected())
        return reply(body, status)

    async def prometheus(self, request: web.Request) -> web.Response:
        """Prometheus text format; an API key as the bearer (Prometheus' ``authorization``)."""
        self._api_key(request)
        return self.metrics.render()

    # -- documents ------------------------------------------------------------------------
    async def openapi(self, request: web.Request) -> web.Response:
        return reply(document())

    async def docs(self, request: web.Request) -> web.Response:
        """Redoc when its bundle is vendored (served from here: the CSP allows no other
        origin), else the plain server-rendered page, which says how to get Redoc."""
        page = redoc_html(document()) if REDOC_BUNDLE.is_file() else reference_html(document())
        return web.Response(text=page, content_type="text/html", headers={"Content-Security-Policy": DOCS_CSP})

    async def plain_docs(self, request: web.Request) -> web.Response:
        """The server-rendered page always: no JavaScript (a text browser, a quick grep)."""
        page = reference_html(document(), redoc=REDOC_BUNDLE.is_file())
        return web.Response(text=page, content_type="text/html", headers={"Content-Security-Policy": DOCS_CSP})

    async def redoc_bundle(self, request: web.Request) -> web.StreamResponse:
        if not REDOC_BUNDLE.is_file():
            raise ApiError(404, "not_found", "Redoc is not vendored here: run scripts/vendor-redoc")
        return web.FileResponse(REDOC_BUNDLE, headers={"Content-Type": "text/javascript; charset=utf-8",
                                                       "Cache-Control": "public, max-age=86400"})

    # -- enrollment ----------------------------------------------------------------------
    async def enroll(self, request: web.Request) -> web.Response:
        body = json_object(await read_json(request))
        token, appliance_id = body.get("token"), body.get("appliance_id")
        problems = []
        if not isinstance(token, str) or not token:
            problems.append({"field": "token", "reason": "the one-time enrollment token"})
        if not isinstance(appliance_id, str) or not re.fullmatch(ID_PATTERN, appliance_id):
            problems.append({"field": "appliance_id", "reason": "1-64 letters, digits, _ or -"})
        if problems:
            raise ApiError(400, "invalid", errors=problems)
        assert isinstance(token, str) and isinstance(appliance_id, str)
        credential = auth.new_secret(auth.CREDENTIAL_PREFIX)
        status = self.store.enroll(auth.digest(token), appliance_id, auth.digest(credential), self.clock())
        if status == "bad_token":
            raise ApiError(401, "bad_token", "the token is unknown, used or expired")
        if status == "exists":
            raise ApiError(409, "exists", f"appliance {appliance_id!r} is already enrolled")
        return reply({"appliance_id": appliance_id, "credential": credential})

    # -- campaigns -----------------------------------------------------------------------
    def _campaign_out(self, camp: dict[str, Any], counts: dict[str, int] | None = None) -> dict[str, Any]:
        return {"id": camp["id"], "name": camp["name"], "state": camp["state"], "strategy": camp["strategy"],
                "rules": camp["rules"], "created_at": camp["created_at"], "updated_at": camp["updated_at"],
                "contacts": self.store.campaign_counts(camp["id"]) if counts is None else counts}

    async def list_campaigns(self, request: web.Request) -> web.Response:
        found = await self.reads.run(self.store.campaigns_with_counts_read())
        return reply({"items": [self._campaign_out(camp, counts) for camp, counts in found]})

    async def create_campaign(self, request: web.Request) -> web.Response:
        body = json_object(await read_json(request))
        problems = [{"field": k, "reason": "unknown field (a typo?)"}
                    for k in sorted(set(body) - {"id", "name", "strategy", "rules", "creditor", "start"})]
        cid = body.get("id")
        if not isinstance(cid, str) or not re.fullmatch(ID_PATTERN, cid):
            problems.append({"field": "id", "reason": "1-64 letters, digits, _ or -"})
        name = body.get("name", cid)
        if not plain_text(name, 1, 200):
            problems.append({"field": "name", "reason": "1-200 characters, no control character"})
        start = body.get("start", False)
        if not isinstance(start, bool):
            problems.append({"field": "start", "reason": "true (dial at once) or false (a draft: POST …/start later)"})
        steps, bad_steps = cp.strategy_problems(body.get("strategy"), body.get("creditor"))
        settings, bad_rules = cp.rules_problems(body.get("rules"))
        problems += [{"field": e.field, "reason": e.reason} for e in (*bad_steps, *bad_rules)]
        if problems:
            raise ApiError(400, "invalid", errors=problems)
        assert settings is not None and isinstance(cid, str) and isinstance(name, str)
        state = cp.CampaignState.RUNNING if start else cp.CampaignState.DRAFT
        try:
            self.store.create_campaign(cid, name, [s.to_json() for s in steps], cp.rules_to_json(settings), self.clock(),
                                       state=state.value)
        except Conflict:
            raise ApiError(409, "exists", f"campaign {cid!r} exists") from None
        if start:
            self.wake()
        camp = self.store.get_campaign(cid)
        assert camp is not None
        return reply(self._campaign_out(camp), 201)

    async def get_campaign(self, request: web.Request) -> web.Response:
        cid = path_campaign_id(request)
        found = await self.reads.run(self.store.campaign_with_counts_read(cid))
        if found is None:
            raise ApiError(404, "not_found", f"no campaign {cid!r}")
        return reply(self._campaign_out(*found))

    def _transition(self, action: str) -> Any:
        async def handler(request: web.Request) -> web.Response:
            cid = path_campaign_id(request)
            camp = self.store.get_campaign(cid)
            if camp is None:
                raise ApiError(404, "not_found", f"no campaign {cid!r}")
            state = cp.CampaignState(camp["state"])
            if state is cp.TARGET[action]:
                return reply(self._campaign_out(camp))  # already there: a retry changes nothing
            to = cp.TRANSITIONS[state].get(action)
            if to is None or not self.store.set_campaign_state(cid, state.value, to.value, self.clock()):
                allowed = sorted(cp.TRANSITIONS[state].keys() - {"reopen"})
                raise ApiError(409, "bad_state", f"cannot {action} a {state.value} campaign"
                               + (f"; it can: {', '.join(allowed)}" if allowed else "; it is finished"))
            if to is cp.CampaignState.CANCELLED:
                await self.hub.withdraw(self.store.cancel_open_jobs(cid, self.clock()), "campaign cancelled")
            elif to is cp.CampaignState.PAUSED:
                # jobs handed out and not started are withdrawn (each comes back cancelled and
                # its contact is planned again on resume); a call under way ends normally
                await self.hub.withdraw(self.store.unstarted_jobs(cid), "campaign paused")
            self.wake()
            camp = self.store.get_campaign(cid)
            assert camp is not None
            return reply(self._campaign_out(camp))

        handler.__name__ = f"{action}_campaign"
        return handler

    # -- contacts ------------------------------------------------------------------------
    async def import_contacts(self, request: web.Request) -> web.Response:
        cid = path_campaign_id(request)
        camp = self.store.get_campaign(cid)
        if camp is None:
            raise ApiError(404, "not_found", f"no campaign {cid!r}")
        if camp["state"] == cp.CampaignState.CANCELLED.value:
            raise ApiError(409, "bad_state", "the campaign is cancelled")
        region = region_param(request, self.region)
        if request.content_type not in JSON_TYPES | CSV_TYPES:
            raise ApiError(415, "unsupported_media_type", {"field": "Content-Type", "reason": "send application/json or text/csv"})
        body = await request.read()
        try:
            if request.content_type in CSV_TYPES:
                parsed, check = contacts_csv.parse_csv(contacts_csv.decode_csv(body, request.charset)), ct.check_slice
            else:
                parsed, check = contacts_json.parse_json(body), contacts_json.check_slice
        except ct.BodyError as exc:
            raise ApiError(exc.status, exc.error, exc.detail()) from None
        stored: tuple[int, int] | None = None
        try:
            if self.store.dialect.name == "postgresql":
                checked, stored = await self._check_and_store(cid, parsed, check, region)
            else:
                checked = ct.combine(parsed, await asyncio.gather(*self._checks(parsed, check, region)))
            if checked.refused:
                refused = checked.report(stored=False)
                self.metrics.imported(refused=refused["rows"])
                raise ApiError(422, "invalid_rows", refused)
            created, updated = stored or self.store.upsert_contacts(cid, checked.rows, self.clock(),
                                                                    closed=(cp.CampaignState.CANCELLED.value,), reopen=REOPEN)
        except Conflict:
            raise ApiError(409, "bad_state", "the campaign was cancelled during the import; nothing was stored") from None
        self.metrics.imported(stored=created + updated)
        self.wake()
        return reply(checked.report(stored=True, created=created, updated=updated))

    def _checks(self, parsed: ct.Parsed, check: Callable[..., ct.SliceCheck], region: str | None,
                encode_rows: Callable[[list[ct.ContactRow]], bytes] = ct.pack_rows) -> list[asyncio.Future[ct.SliceCheck]]:
        """The checks of an import's rows by ``check`` (``ct.check_slice`` or
        ``contacts_json.check_slice``), a future per ``IMPORT_SLICE`` rows in file order.
        Validation is CPU-bound pure Python (phonenumbers), so an import of more than one
        slice goes to worker processes on the other cores and the loop stays free for links
        and API requests meanwhile; one slice is checked here at once. The good rows of a
        slice come back as ``encode_rows`` writes them."""
        loop = asyncio.get_running_loop()
        items = parsed.items
        slices = [ct.pack(items[i:i + IMPORT_SLICE]) for i in range(0, len(items), IMPORT_SLICE)]
        if len(slices) <= 1:
            if not slices:
                return []
            done: asyncio.Future[ct.SliceCheck] = loop.create_future()
            done.set_result(check(slices[0], region, encode_rows))
            return [done]
        pool = self.validation_pool()
        return [loop.run_in_executor(pool, check, sl, region, encode_rows) for sl in slices]

    async def _check_and_store(self, cid: str, parsed: ct.Parsed, check: Callable[..., ct.SliceCheck], region: str | None
                               ) -> tuple[ct.Checked, tuple[int, int] | None]:
        """PostgreSQL: check the rows and store them at once. The store's transaction runs in
        a worker thread (the pool gives it a connection of its own; the loop keeps serving)
        and takes each slice, in file order, as its check comes back: the server's COPY and
        index work hides behind the checks of the next slices, where it used to follow them
        all (100,000 rows: ~1.2 s of store after ~1 s of checks). A row that could not be
        read, a slice with a bad row, or rows repeating a key (known once every slice is
        checked) abandon the transaction (rolled back: nothing stored); the checks still all
        run, for the report of every bad row. Returns the check and (created, updated), None
        when refused. Raises ``Conflict`` as ``upsert_contacts`` does."""
        feed: queue.SimpleQueue[Any] = queue.SimpleQueue()

        def slices() -> Iterator[list[ct.ContactRow] | bytes]:
            while (item := feed.get()) is not _END_OF_ROWS:
                if item is _ABANDON:
                    raise _Abandoned
                yield item

        now = self.clock()
        # the workers write each slice's good rows as COPY reads them: the store thread only
        # forwards the text (formatting them there held the loop's process ~0.4 s per 100,000)
        checks = self._checks(parsed, check, region, functools.partial(contacts_copy_text, campaign_id=cid, now=now))
        store = asyncio.ensure_future(asyncio.to_thread(
            self.store.upsert_contact_slices, cid, slices(), now,
            closed=(cp.CampaignState.CANCELLED.value,), reopen=REOPEN))
        results: list[ct.SliceCheck] = []
        if parsed.bad:
            feed.put(_ABANDON)
        try:
            for future in checks:
                results.append(await future)
                feed.put(_ABANDON if results[-1][1] else results[-1][0])
        except BaseException:  # a worker's failure or the request's end: the transaction must not wait for ever
            feed.put(_ABANDON)
            store.add_done_callback(lambda f: f.cancelled() or f.exception())
            raise
        checked = ct.combine(parsed, results, rows=False)
        feed.put(_ABANDON if checked.refused else _END_OF_ROWS)
        try:
            return checked, await store
        except Exception:
            if checked.refused:  # abandoned (or the campaign went meanwhile): the 422 is the answer
                return checked, None
            raise

    def _contact_out(self, row: dict[str, Any]) -> dict[str, Any]:
        out = {k: row[k] for k in ("id", "campaign_id", "external_id", "name", "case_ref", "amount", "currency", "due_date",
                                   "time_zone", "language", "phones", "state", "step", "n", "next_at", "outcome",
                                   "promise_date", "created_at", "updated_at")}
        out["formula_fields"] = ct.formula_fields(row)  # verbatim in JSON; flagged for whoever exports it
        return out

    async def list_contacts(self, request: web.Request) -> web.Response:
        cid = path_campaign_id(request)
        if self.store.get_campaign(cid) is None:
            raise ApiError(404, "not_found", f"no campaign {cid!r}")
        after, limit = page(request)
        items = [self._contact_out(c) for c in await self.reads.run(self.store.list_contacts_read(cid, after, limit))]
        nxt = items[-1]["id"] if items else after
        if "text/csv" in request.headers.get("Accept", ""):
            # for a spreadsheet: formula-like cells neutralised; the cursor in a Link header (RFC 8288)
            return web.Response(text=contacts_csv.contacts_csv(items), content_type="text/csv", charset="utf-8",
                                headers={"Link": f'<{request.rel_url.with_query(after=nxt, limit=limit)}>; rel="next"'})
        return reply({"items": items, "next": nxt})

    async def get_contact(self, request: web.Request) -> web.Response:
        ct = await self.reads.run(self.store.get_contact_read(path_contact_id(request)))
        if ct is None:
            raise ApiError(404, "not_found", "no such contact")
        return reply(self._contact_out(ct))

    async def contact_history(self, request: web.Request) -> web.Response:
        cid = path_contact_id(request)

        def read() -> Read[tuple[dict[str, Any] | None, dict[str, Any]]]:
            ct = yield from self.store.get_contact_read(cid)
            return ct, ((yield from self.store.contact_history_read(cid)) if ct is not None else {})
        ct, h = await self.reads.run(read())
        if ct is None:
            raise ApiError(404, "not_found", "no such contact")
        return reply({"contact": self._contact_out(ct), "results": h["results"], "inbound": h["inbound"]})

    # -- results, inbound ----------------------------------------------------------------
    async def results(self, request: web.Request) -> web.Response:
        after, limit = page(request)
        # campaign_id, as on every other route; campaign, its first name, is read when
        # campaign_id is not given
        field = "campaign_id" if "campaign_id" in request.query or "campaign" not in request.query else "campaign"
        campaign = request.query.get(field)
        if campaign is not None and not re.fullmatch(ID_PATTERN, campaign):
            raise ApiError(400, "bad_parameter", {"field": field, "reason": "a campaign id: 1-64 letters, digits, _ or -"})
        items = await self.reads.run(self.store.results_after_read(after, limit, campaign))
        return reply({"items": items, "next": items[-1]["seq"] if items else after})

    async def inbound(self, request: web.Request) -> web.Response:
        after, limit = page(request)
        items = await self.reads.run(self.store.inbound_after_read(after, limit))
        return reply({"items": items, "next": items[-1]["seq"] if items else after})

    # -- opt-outs ------------------------------------------------------------------------
    def _number(self, value: Any) -> str:
        try:
            return phone.normalise(value, self.region)
        except phone.NumberError as exc:
            raise ApiError(400, "invalid", {"field": "number", "reason": str(exc)}) from None

    async def list_optouts(self, request: web.Request) -> web.Response:
        after = request.query.get("after", "")
        if not re.fullmatch(OPTOUT_CURSOR, after):
            raise ApiError(400, "bad_parameter", {"field": "after", "reason": "the next of the previous page: an E.164 number"})
        limit = int_param(request, "limit", DEFAULT_PAGE, 1, MAX_PAGE)
        items = await self.reads.run(self.store.list_optouts_read(after, limit))
        return reply({"items": items, "next": items[-1]["number"] if items else after})

    async def add_optout(self, request: web.Request) -> web.Response:
        body = json_object(await read_json(request))
        problems: list[dict[str, Any]] = []
        try:
            number = self._number(body.get("number"))
        except ApiError as exc:
            problems.append(exc.detail)
        reason = body.get("reason")
        if reason is not None and not plain_text(reason, 0, 200):
            problems.append({"field": "reason", "reason": "at most 200 characters, no control character"})
        if problems:
            raise ApiError(400, "invalid", errors=problems)
        created = self.store.add_optout(number, "api", reason, self.clock())
        return reply({"number": number, "created": created}, 201 if created else 200)

    async def remove_optout(self, request: web.Request) -> web.Response:
        number = self._number(request.match_info["number"])
        if not self.store.remove_optout(number):
            raise ApiError(404, "not_found", f"{number} is not opted out")
        return reply({"number": number, "removed": True})

    # -- webhooks ------------------------------------------------------------------------
    async def list_webhooks(self, request: web.Request) -> web.Response:
        return reply({"items": await self.reads.run(self.store.list_webhooks_read())})

    async def add_webhook(self, request: web.Request) -> web.Response:
        body = json_object(await read_json(request))
        problems: list[dict[str, Any]] = []  # every one of them named at once
        url = body.get("url")
        if not plain_text(url, 1, 2048):  # a URL holds no control character (RFC 3986)
            problems.append({"field": "url", "reason": "an http(s) URL"})
        else:
            try:
                await check_target(url, allow_private=self.allow_private)
            except TargetRefused as exc:
                problems.append({"field": "url", "reason": str(exc)})
        events = body.get("events", ["result", "inbound"])
        if (not isinstance(events, list) or not events or not all(isinstance(e, str) for e in events)
                or not set(events) <= {"result", "inbound"}):
            problems.append({"field": "events", "reason": 'a non-empty list of "result" and/or "inbound"'})
        secret = body.get("secret") or auth.new_secret("whsec_")
        if not plain_text(secret, 16, 200):
            problems.append({"field": "secret", "reason": "16-200 characters, no control character (or omit it for a "
                                                          "random one)"})
        if problems:
            raise ApiError(400, "invalid", errors=problems)
        wid = auth.new_id("wh_")
        self.store.add_webhook(wid, str(url), secret, sorted(set(events)), self.clock())
        return reply({"id": wid, "url": url, "events": sorted(set(events)), "secret": secret}, 201)

    async def delete_webhook(self, request: web.Request) -> web.Response:
        if not self.store.delete_webhook(request.match_info["id"]):
            raise ApiError(404, "not_found", "no such webhook")
        return reply({"id": request.match_info["id"], "deleted": True})

    async def dead_letters(self, request: web.Request) -> web.Response:
        after, limit = page(request)
        items = await self.reads.run(self.store.dead_letters_read(after, limit))
        return reply({"items": items, "next": items[-1]["id"] if items else after})

    async def replay(self, request: web.Request) -> web.Response:
        # body_exists, not can_read_body: the Idempotency-Key middleware has read the body
        # already, after which can_read_body is false and ids would be taken as "all"
        body = json_object(await read_json(request)) if request.body_exists else {}
        ids = body.get("ids")
        if isinstance(ids, list):  # JSON has numbers, not integers: 7.0 is the id 7 (JSON Schema's integer)
            ids = [int(i) if isinstance(i, float) and i.is_integer() and abs(i) < 2**63 else i for i in ids]
        if "ids" in body and (not isinstance(ids, list)  # null too: only an absent ids means all
                                or not all(isinstance(i, int) and not isinstance(i, bool) and 0 <= i < MAX_CURSOR for i in ids)
                                or len(ids) > 10_000):
            raise ApiError(400, "invalid", {"field": "ids", "reason": "a list of dead-letter ids (or omit for all)"})
        n = self.store.replay_dead(ids, self.clock())
        self.wake_deliveries()
        return reply({"replayed": n})

    # -- fleet ---------------------------------------------------------------------------
    async def list_appliances(self, request: web.Request) -> web.Response:
        return reply({"items": await self.reads.run(self.store.list_appliances_read())})

    async def get_appliance(self, request: web.Request) -> web.Response:
        app = await self.reads.run(self.store.get_appliance_read(request.match_info["id"]))
        if app is None:
            raise ApiError(404, "not_found", "no such appliance")
        return reply(app)
