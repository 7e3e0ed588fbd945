"""The appliance process: store, bank, rotation policy, scheduler and local API, wired
together from a validated config. ``simrotor appliance run`` is a thin shell over this.

This is the one module that knows every service: each is handed the parts it uses (the
API, the page, the link, the balance checker and the metrics take the scheduler, bank,
store, policy and config section they need, never the ``Appliance``), and ``Appliance``
starts them in order and stops them in the reverse order through one exit stack."""
from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import signal
import time
from pathlib import Path
from typing import Any

from aiohttp import web

from common.heap import freeze_startup_heap, tune_gc
from common.sdnotify import Notifier, keep_alive

from .api import ApiDeps, make_app
from .balance import BalanceChecker
from .bank import Bank
from .callbacks import CallbackAnswerer
from .channel import Channel, ChannelState
from .config import ApplianceConfig
from .inbound import InboundRecorder
from .link import Link
from .metrics import Metrics
from .recordings import RecordingRows, Recordings, Uploader
from .rotation import LockRules, RotationPolicy, SimLimits, WindowCap
from .scheduler import Scheduler
from .services import Core
from .status import Status
from .store import Store
from .web import add_routes as add_page_routes

logger = logging.getLogger(__name__)

#: A clean stop closes every port and task; past this, the process exits anyway
#: (systemd's default TimeoutStopSec is 90 s; we stay well inside it).
STOP_TIMEOUT = 20.0


def plan_prefixes() -> dict[str, str]:
    """The emulator's documented number plan as operator prefixes (+48 60O…, +48 69O…)."""
    ops = ["26001", "26002", "26003", "26006"]
    out = {}
    for o in range(10):
        out[f"+4860{o}"] = ops[o % 4]
        out[f"+4869{o}"] = ops[o % 4]
    return out


#: Callee operators learnt from jobs (ported numbers) kept in memory, oldest dropped first.
LEARNT_OPERATORS = 100_000


class PrefixOperators:
    """A callee number's operator (MCC+MNC): learnt for that number (a job's
    ``hints.callee_operator``, e.g. from the CRM's number-portability lookup) or else by
    the longest configured prefix. Prefixes alone are wrong for ported numbers."""

    def __init__(self, prefixes: dict[str, str]) -> None:
        self.prefixes = prefixes
        self.lengths = sorted({len(p) for p in prefixes}, reverse=True)
        self.learnt: dict[str, str] = {}

    def learn(self, number: str, operator: str) -> None:
        self.learnt.pop(number, None)
        if len(self.learnt) >= LEARNT_OPERATORS:
            self.learnt.pop(next(iter(self.learnt)))
        self.learnt[number] = operator

    def __call__(self, number: str) -> str | None:
        if number in self.learnt:
            return self.learnt[number]
        for n in self.lengths:
            op = self.prefixes.get(number[:n])
            if op:
                return op
        return None


def build_policy(cfg: ApplianceConfig, rng: random.Random) -> RotationPolicy:
    lim = cfg.limits
    limits = SimLimits(
        calls_per_hour=lim.calls_per_hour, calls_per_day=lim.calls_per_day,
        sms_per_hour=lim.sms_per_hour, sms_per_day=lim.sms_per_day,
        min_pause_seconds=lim.min_pause_seconds, pause_after_call=tuple(lim.pause_after_call),  # type: ignore[arg-type]
        max_call_seconds_per_day=lim.max_call_seconds_per_day,
        windows=tuple(WindowCap(w.start, w.end, w.max_calls) for w in lim.windows),
    )
    lk = cfg.lock
    rules = LockRules(
        consecutive_failed=lk.consecutive_failed, consecutive_not_alerting=lk.consecutive_not_alerting,
        consecutive_unanswered=lk.consecutive_unanswered, consecutive_short=lk.consecutive_short,
        short_call_seconds=lk.short_call_seconds, lock_seconds=lk.lock_seconds, min_balance=lk.min_balance,
    )
    ops = {
        k: SimLimits(calls_per_hour=v.calls_per_hour, calls_per_day=v.calls_per_day,
                     sms_per_hour=v.sms_per_hour, sms_per_day=v.sms_per_day)
        for k, v in cfg.operator_limits.items()
    }
    return RotationPolicy(limits=limits, lock_rules=rules, operator_limits=ops, tz=cfg.appliance.timezone, rng=rng)


#: Modems named in the STATUS line when down, at most: `systemctl status` shows one line.
STATUS_DOWN_NAMED = 3


def status_line(channels: list[Channel], link: Link | None) -> str:
    """systemd's STATUS= line: modems up (those down named, with their state) and the link."""
    down = [ch for ch in channels if ch.state in (ChannelState.OPENING, ChannelState.FAULTY)]
    text = f"{len(channels) - len(down)}/{len(channels)} modems up"
    if down:
        named = ", ".join(f"{ch.id} {ch.state.value}" for ch in down[:STATUS_DOWN_NAMED])
        more = f", +{len(down) - STATUS_DOWN_NAMED} more" if len(down) > STATUS_DOWN_NAMED else ""
        text += f" (down: {named}{more})"
    if link is None:
        return text + "; no link (standalone)"
    return text + ("; link connected to " if link.connected.is_set() else "; link down, reconnecting to ") + link.url


class Appliance:
    def __init__(self, cfg: ApplianceConfig, *, seed: int | None = None) -> None:
        self.cfg = cfg
        self.rng = random.Random(seed)
        # Relative to the working directory, as given (parse_config resolves only
        # emulator_state against the config file's folder).
        self.store = Store(cfg.appliance.store)
        channels = [Channel(m.id, m.port, m.slots, pin=m.pin, pools=tuple(m.pools), audio=m.audio) for m in cfg.modem]
        sup = cfg.supervision
        self.bank = Bank(channels, check_interval=sup.check_interval_seconds,
                         command_timeout=sup.stuck_timeout_seconds, reopen_backoff=tuple(sup.reopen_backoff),  # type: ignore[arg-type]
                         rng=self.rng, pin_marks=self.store)  # rejected PINs survive a restart
        prefixes = dict(plan_prefixes()) if cfg.emulator_state and not cfg.operator_prefixes else {}
        prefixes.update(cfg.operator_prefixes)
        self.operators = PrefixOperators(prefixes)
        self.policy = build_policy(cfg, self.rng)
        self.scheduler = Scheduler(cfg, self.store, self.bank, self.policy, operator_of=self.operators,
                                   learn_operator=self.operators.learn, rng=self.rng)
        self.metrics = Metrics(self.bank.channels, self.scheduler)
        self.scheduler.result_listeners.append(self.metrics.count_result)
        self.bank.on_change(lambda ch, old, new, reason: self.metrics.count_change(new))
        # A modem removed by a person (Bank.control): its SIMs leave rotation (their jobs end no_eligible_sim).
        self.bank.on_remove(lambda ch: [self.policy.remove_sim(s.sim_id) for s in ch.sims.values()
                                        if s.sim_id and self.policy.knows(s.sim_id)])
        # Recordings (call.record): files in a folder named after the store, rows in it; the
        # executors reach them through their Context; a row is written with its result.
        self.recordings = Recordings(RecordingRows(self.store.conn), Path(cfg.appliance.store).resolve().with_suffix(".recordings"))
        self.scheduler.context.recordings = self.recordings
        self.scheduler.result_listeners.append(self.recordings.on_result)
        # Callbacks are answered (a menu: 1 call me back, 9 stop calling) at their first ring.
        self.callbacks = CallbackAnswerer(self.bank, self.store, cfg.callbacks)
        self.inbound = InboundRecorder(self.store, on_ring=self.callbacks.on_ring)
        self.bank.on_event(self.inbound)
        core = Core(self.bank, self.scheduler, self.store, self.policy)
        self.link: Link | None = None
        self.uploader: Uploader | None = None
        if cfg.link.urls:
            link = self.link = Link(cfg.link, cfg.appliance.id, core)
            self.callbacks.on_choice = link.wake  # a caller's choice goes out at once
            credential = Path(cfg.link.credential_file)
            # recordings go to the controller the link is on now (any of them stores them
            # in the fleet's one database)
            self.uploader = Uploader(self.recordings, lambda: link.url, lambda: credential.read_text().strip())
        self.balance: BalanceChecker | None = None
        if cfg.ussd.balance_code and cfg.ussd.interval_seconds > 0:
            self.balance = BalanceChecker(cfg.ussd, core)
        self.runner: web.AppRunner | None = None
        self.started_at = time.time()
        self.address: str | None = None
        self._status = Status(cfg.appliance.id, self.started_at, self.bank, self.store, self.scheduler, self.link)
        # Stopped in the reverse order of start; the bank and the scheduler are closed
        # even when start never ran or failed half-way (the scheduler then still writes
        # what it knows, and ports opened before the failure are closed).
        self._stack = contextlib.AsyncExitStack()
        self._stack.push_async_callback(self.bank.close)
        self._stack.push_async_callback(self.scheduler.close)

    async def start(self) -> None:
        await self.bank.start()
        await self.scheduler.start()
        self.callbacks.start()
        self._stack.push_async_callback(self.callbacks.close)
        if self.cfg.appliance.listen:
            await self._serve(self.cfg.appliance.listen)
        if self.link is not None:
            self.link.start()
            self._stack.push_async_callback(self.link.stop)
        if self.uploader is not None:
            self.uploader.start()
            self._stack.push_async_callback(self.uploader.stop)
        if self.balance is not None:
            self.balance.start()
            self._stack.push_async_callback(self.balance.stop)
        logger.info("appliance %s up: %d channels, API %s", self.cfg.appliance.id, len(self.bank.channels), self.address)

    async def _serve(self, listen: str) -> None:
        """The local API (and the technician page) on ``listen``; sets ``address``."""
        host, _, port = listen.rpartition(":")
        app = make_app(ApiDeps(self.scheduler, self.store, self.bank, self.metrics, self._status),
                       self.cfg.appliance.token or "")
        if self.cfg.appliance.status_page:
            add_page_routes(app)
        self.runner = web.AppRunner(app, access_log=None)
        self._stack.push_async_callback(self.runner.cleanup)
        await self.runner.setup()
        site = web.TCPSite(self.runner, host.strip("[]"), int(port))
        await site.start()
        sockets = site._server.sockets if site._server else []  # type: ignore[union-attr]
        if sockets:
            h, p = sockets[0].getsockname()[:2]
            self.address = f"http://{h}:{p}"

    async def stop(self) -> None:
        try:
            await self._stack.aclose()
        finally:
            self.store.close()

    def status(self) -> dict[str, Any]:
        return self._status.summary()

    def status_line(self) -> str:
        return status_line(list(self.bank.channels.values()), self.link)

    async def run_forever(self, notifier: Notifier | None = None) -> None:
        """Start, serve until SIGINT/SIGTERM, stop; under systemd (``notifier``, from the
        environment by default) READY=1 once started, WATCHDOG=1 and STATUS= from this
        loop while it runs, STOPPING=1 at the stop."""
        notifier = Notifier() if notifier is None else notifier
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        tune_gc()
        await self.start()
        freeze_startup_heap()
        notifier.ready(self.status_line())
        alive = asyncio.create_task(keep_alive(notifier, self.status_line), name="sd_notify keep-alive")
        try:
            await stop.wait()
        finally:
            alive.cancel()
            notifier.stopping("stopping: closing the modems' ports")
            logger.info("stopping")
            try:
                await asyncio.wait_for(self.stop(), STOP_TIMEOUT)
            except TimeoutError:
                # Say what is stuck, then go: everything that matters is in the store
                # (a restart recovers it), and a supervisor waiting on us must not hang.
                for task in asyncio.all_tasks():
                    if task is not asyncio.current_task():
                        logger.error("still running at stop: %r", task)
                logger.error("stop took longer than %.0f s; exiting anyway", STOP_TIMEOUT)
                logging.shutdown()
                os._exit(1)  # the stuck tasks would hold asyncio.run's own cleanup too
