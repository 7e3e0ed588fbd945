"""The controller process: store, CRM API, fleet link, dispatcher and webhook worker
wired together. ``Controller(cfg).start()`` listens; ``stop()`` closes everything.

The clock is injected (``clock=time.time`` by default) so tests can move time past a
lease or a calling window without sleeping.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import logging
import multiprocessing
import os
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

from aiohttp import web

from common.heap import freeze_startup_heap, tune_gc
from common.sdnotify import Notifier, keep_alive

from . import auth, planner
from .api import Api
from .config import ControllerConfig, recordings_dir
from .dispatcher import Dispatcher
from .link import LinkHub
from .metrics import Metrics
from .overview import add_overview
from .recordings import RecordingsApi
from .reports import Reports
from .store import Store
from .webhooks import Deliverer

logger = logging.getLogger(__name__)

#: Import validation workers at most (fewer on smaller machines): the issue's machine has 2 cores.
VALIDATION_WORKERS = 2


#: At start, appliances heard from within this long stay marked connected: they heartbeat
#: on another controller's link (every 10 s by default, appliance [link] heartbeat_seconds:
#: three beats); the rest are marked disconnected until they say hello again.
LINK_QUIET_SECONDS = 30.0
#: Paused and cancelled campaigns' jobs on this controller's links are looked for at most
#: this often (the pause may have come to another controller: LinkHub.cancel_withdrawn).
CANCEL_SWEEP_SECONDS = 1.0


#: How long stop() waits for its background tasks to end after cancelling them.
STOP_TASKS_SECONDS = 10.0


@dataclasses.dataclass(slots=True)
class Background:
    """The loops that run beside the server (dispatch, webhook delivery): started with the
    application, stopped first at its shutdown."""

    loops: list[Callable[[], Coroutine[Any, Any, None]]]
    tasks: list[asyncio.Task[None]] = dataclasses.field(default_factory=list)

    def start(self) -> None:
        self.tasks = [asyncio.create_task(loop()) for loop in self.loops]

    async def stop(self) -> None:
        for t in self.tasks:
            t.cancel()
        if self.tasks:
            _, stuck = await asyncio.wait(self.tasks, timeout=STOP_TASKS_SECONDS)
            for t in stuck:  # say which, and go on stopping: the store is the truth
                logger.error("still running at stop: %r", t)
        self.tasks.clear()


BACKGROUND = web.AppKey("background", Background)
HUB = web.AppKey("hub", LinkHub)


async def _background(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx: the loops run while the application does."""
    app[BACKGROUND].start()
    yield
    await app[BACKGROUND].stop()  # already done at shutdown; here for a failed start-up


async def _shutdown(app: web.Application) -> None:
    """on_shutdown: the loops stop first (no dispatch tick sends to a closing link), then
    every appliance link is closed (a WebSocket would otherwise hold the shutdown)."""
    await app[BACKGROUND].stop()
    await app[HUB].close_all()


class Controller:
    def __init__(self, cfg: ControllerConfig, *, clock: Callable[[], float] = time.time) -> None:
        self.cfg = cfg
        self.clock = clock
        self.store = Store(cfg.controller.store, durability=cfg.controller.durability)
        # appliances heard from lately are on another controller's link (one database, several controllers)
        self.store.mark_all_disconnected(clock(), seen_before=clock() - LINK_QUIET_SECONDS)
        d = cfg.dispatch
        w = cfg.webhooks
        self.deliverer = Deliverer(self.store, clock, backoff=w.backoff_seconds, max_attempts=w.max_attempts,
                                   timeout=w.timeout_seconds, allow_private=w.allow_private)
        # the delivery worker is woken by what queued deliveries (with no webhooks, a wake
        # per results message cost it a claim transaction each), the dispatcher by ``wake``
        self.reports = Reports(self.store, clock, stop_words=cfg.inbound.stop_words, on_queued=self._deliveries_queued)
        self.dispatcher = Dispatcher(self.store, self.reports, clock, lease_seconds=d.lease_seconds, stranded_after=d.stranded_after_seconds,
                                     queue_depth=d.queue_depth, operator_prefixes=cfg.operator_prefixes)
        # recordings in [store] recordings, or a folder named after a SQLite store (controller.db -> controller.recordings/)
        self.recordings = RecordingsApi(self.store, recordings_dir(cfg), clock)
        self.hub = LinkHub(self.store, self.reports, clock, wake=self.wake, heartbeat_seconds=cfg.link.heartbeat_seconds)
        self.metrics = Metrics(self.store, appliances_connected=self.connected,
                               deliveries=lambda: (self.deliverer.delivered, self.deliverer.failed))
        self.api = Api(self.store, self.hub, clock, wake=self.wake, wake_deliveries=self.deliverer.wake.set,
                       validation_pool=self.validation_pool, region=cfg.controller.region,
                       allow_private=w.allow_private, recordings=self.recordings, metrics=self.metrics)
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None  # the one the delivery worker waits on (start)
        self._cancel_sweep_at = 0.0
        self._runner: web.AppRunner | None = None
        self._pool: concurrent.futures.ProcessPoolExecutor | None = None
        self.port = 0

    def validation_pool(self) -> concurrent.futures.Executor:
        """Worker processes for import validation (spawned on first use, one per core)."""
        if self._pool is None:
            self._pool = concurrent.futures.ProcessPoolExecutor(
                max_workers=max(1, min(VALIDATION_WORKERS, os.cpu_count() or 1)),
                mp_context=multiprocessing.get_context("spawn"))
        return self._pool

    def wake(self) -> None:
        """Dispatch now: new work or room for it (an import, a start, a hello, final results,
        another controller's notice). Deliveries are woken by ``Reports.on_queued``."""
        self._wake.set()

    def _deliveries_queued(self) -> None:
        """Wake the delivery worker: ``Reports.on_queued``, called after a write that queued
        deliveries, which on PostgreSQL runs in a worker thread (``Store.off_loop``), where
        an asyncio event must not be set directly (it would not wake the loop's waiter)."""
        if self._loop is None or self._loop.is_closed():  # not started, or over: no worker waits
            self.deliverer.wake.set()
        else:  # from the loop's own thread too: the set then runs at its next turn
            self._loop.call_soon_threadsafe(self.deliverer.wake.set)

    def slots(self) -> list[planner.Slot]:
        open_jobs = self.store.open_jobs_by_appliance()
        return [planner.Slot(aid, link.capacity, open_jobs.get(aid, 0), dict(link.hello.operators), self.cfg.dispatch.queue_depth)
                for aid, link in self.hub.links.items() if link.hello is not None]

    def connected(self) -> int:
        """Appliances on the link that said hello."""
        return sum(1 for link in self.hub.links.values() if link.hello is not None)

    async def dispatch_once(self) -> dict[str, int]:
        if time.monotonic() >= self._cancel_sweep_at:
            self._cancel_sweep_at = time.monotonic() + CANCEL_SWEEP_SECONDS
            await self.hub.cancel_withdrawn()
        out = await self.dispatcher.tick(self.slots(), self.hub.send)
        if out["released"]:
            self.metrics.lease_expiries.inc(out["released"])
        self.store.finish_idle_campaigns(self.clock())
        return out

    # -- lifecycle -----------------------------------------------------------------------
    async def _dispatch_loop(self) -> None:
        while True:
            try:
                await self.dispatch_once()
            except Exception:  # a bad row must not stop dispatch for everyone
                logger.exception("dispatch tick")
            self._wake.clear()
            # asyncio.timeout, not wait_for: Python 3.11's wait_for can swallow a cancel
            # that lands as the event is set, and stop() would then wait for ever.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.cfg.dispatch.interval_seconds):
                    await self._wake.wait()

    async def _wake_listener(self) -> None:
        """Work made by the other controllers on this database (an import, an opt-out, a
        campaign started) wakes this one's dispatcher: PostgreSQL's LISTEN/NOTIFY
        (store/backend.py); returns at once on SQLite, whose one process wakes itself."""
        await self.store.listen_for_wakeups(lambda what: self.wake())

    def app(self, *, dispatch: bool = True) -> web.Application:
        """The API's application with the background loops, the links' shutdown and the overview page."""
        app = self.api.app()
        loops: list[Callable[[], Coroutine[Any, Any, None]]] = [self._dispatch_loop, self._wake_listener] if dispatch else []
        app[BACKGROUND] = Background([*loops, self.deliverer.run_forever, self.recordings.sweep_forever])
        app[HUB] = self.hub
        app.cleanup_ctx.append(_background)
        app.on_shutdown.append(_shutdown)
        add_overview(app, self.store, self.clock)  # /overview/: the page, its sign-in and live stream
        return app

    async def start(self, *, dispatch: bool = True) -> None:
        self._loop = asyncio.get_running_loop()
        host, port = self.cfg.controller.listen.rsplit(":", 1)
        self._runner = web.AppRunner(self.app(dispatch=dispatch), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host.strip("[]"), int(port))
        await site.start()
        server = getattr(site, "_server", None)
        sockets = getattr(server, "sockets", None) or []
        self.port = sockets[0].getsockname()[1] if sockets else int(port)
        logger.info("controller listening on %s", self.url)

    @property
    def url(self) -> str:
        host = self.cfg.controller.listen.rsplit(":", 1)[0]
        return f"http://{host}:{self.port}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()  # on_shutdown, then cleanup_ctx (see app())
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
        self.store.close()

    def status_line(self) -> str:
        """systemd's STATUS= line: appliances on the link, campaigns running, the API."""
        connected = self.connected()
        running = len(self.store.running_campaigns())
        return f"appliances connected: {connected}, campaigns running: {running}; API {self.url}"

    async def run_forever(self, notifier: Notifier | None = None) -> None:
        """Start, serve until SIGINT/SIGTERM, stop; under systemd (``notifier``, from the
        environment by default) READY=1 once listening, WATCHDOG=1 and STATUS= from this
        loop while it runs, STOPPING=1 at the stop."""
        import signal

        notifier = Notifier() if notifier is None else notifier
        tune_gc()
        await self.start()
        freeze_startup_heap()
        notifier.ready(self.status_line())
        alive = asyncio.create_task(keep_alive(notifier, self.status_line), name="sd_notify keep-alive")
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, stop.set)
        try:
            await stop.wait()
        finally:
            alive.cancel()
            notifier.stopping("stopping: closing the appliances' links")
            await self.stop()


# -- admin operations (the CLI's API) ------------------------------------------------------------
def create_key(store: Store, name: str, now: float) -> dict[str, Any]:
    key = auth.new_secret(auth.KEY_PREFIX)
    key_id = auth.new_id("key_")
    store.add_api_key(key_id, name, auth.digest(key), now)
    return {"id": key_id, "name": name, "key": key}


def create_enroll_token(store: Store, ttl_seconds: float, now: float) -> dict[str, Any]:
    token = auth.new_secret(auth.TOKEN_PREFIX)
    store.add_enroll_token(auth.digest(token), now + ttl_seconds, now)
    return {"token": token, "expires_at": now + ttl_seconds}
