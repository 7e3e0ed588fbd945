"""The scheduler's shell: asyncio tasks around the pure core.

The dispatch loop sleeps until something changes — a job arrives, a channel frees, a
timer fires (``core.next_time``) — never on a poll, and runs a round of the core. The
shell carries out what the core decides: writes attempts before their executors run and
results with the transaction that closes their attempts (write before act), runs the
executor found for the job's kind (``jobs.EXECUTORS``), awaits status reports off the
channel, and checkpoints the rotation state and the WAL. A job past its deadline never
starts (its result says ``expired``).
"""
from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import deque
from collections.abc import Callable
from typing import Any, Final

from modem_drivers.background import Background

from ..bank import Bank
from ..channel import ChannelState
from ..config import ApplianceConfig
from ..jobs import Context, Followup, Placement, ReportTracker
from ..rotation import RotationPolicy
from ..store import CHECKPOINT_SECONDS, Store
from . import recovery
from .channels import BankSide
from .core import Closing, SchedulerCore
from .running import COMMIT_RETRY_SECONDS, Running, _Start

logger = logging.getLogger("appliance.scheduler")

#: The rotation policy's state is checkpointed this often (and at stop); after a crash
#: the attempts stored since the checkpoint are replayed, so no cap is forgotten.
ROTATION_CHECKPOINT_SECONDS: Final = 5.0
_BG: Final = "background work"


class Scheduler(Running):
    def __init__(
        self,
        cfg: ApplianceConfig,
        store: Store,
        bank: Bank,
        policy: RotationPolicy,
        *,
        operator_of: Callable[[str], str | None] = lambda n: None,
        learn_operator: Callable[[str, str], None] = lambda n, op: None,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        self.cfg = cfg
        self.store = store
        self.bank = bank
        self.policy = policy
        self.operator_of = operator_of
        self.clock = clock
        self.rng = rng or random.Random()
        self.tracker = ReportTracker()
        self.core = SchedulerCore(cfg, policy, shown_of=store.shown_numbers, outcomes_of=store.attempt_outcomes,
                                  operator_of=operator_of, learn_operator=learn_operator)
        self._background = Background("scheduler", logger)
        self._wake = asyncio.Event()
        self.channels = BankSide(bank, policy, self.core, store, self.tracker, clock=lambda: self.clock(),
                                 spawn=self._spawn, wake=self._wake.set)
        self.context = Context({"max_ring_seconds": cfg.calls.max_ring_seconds, "max_talk_seconds": cfg.calls.max_talk_seconds,
                                 "on_answer": cfg.calls.on_answer, "message": cfg.calls.message,
                                 "on_machine": cfg.calls.on_machine, "on_human": cfg.calls.on_human,
                                 "lang": cfg.calls.lang, "message_wav": cfg.calls.message_wav},
                                self.tracker, operator_of)
        self._running: dict[str, asyncio.Task[Any]] = {}
        self._loop_task: asyncio.Task[None] | None = None
        self._awaiting: set[str] = set()  # jobs whose channel part is done, waiting for reports
        self._finishing: list[Closing] = []
        self._dirty = False
        self._sleeping_until = float("-inf")  # the time the dispatch loop sleeps until (-inf: awake)
        self.dispatch_latencies: deque[float] = deque(maxlen=10000)
        self.result_listeners: list[Callable[[dict[str, Any]], None]] = []
        self.last_dispatch_at: float | None = None

    def _spawn(self, coro: Any, what: str) -> None:
        self._background.spawn(coro, what)

    @property
    def _jobs(self) -> dict[str, dict[str, Any]]:
        """Queued jobs by id (the core's queue)."""
        return self.core.queue.jobs

    @property
    def decisions(self) -> int:
        return self.core.decisions

    # -- lifecycle ------------------------------------------------------------------------
    async def start(self) -> None:
        now = self.clock()
        snap_at = recovery.restore_rotation(self.policy, self.store.get_kv("rotation"), now)
        for a in self.store.interrupted_attempts():
            self.store.finish_attempt(**recovery.interrupted(a, self.cfg.retry, now))
            logger.warning("job %s: attempt %d interrupted by a restart", a["job_id"], a["n"])
        for ch in self.bank.channels.values():
            self.channels.register(ch, now)
        n = recovery.replay(self.policy, self.store.attempts_since(recovery.replay_horizon(snap_at, self.clock())))
        if n:
            logger.info("rotation counters: %d attempt(s) replayed from the store", n)
        for ch in self.bank.channels.values():  # replayed starts marked modems busy
            self.policy.set_channel(ch.id, idle=ch.state is ChannelState.IDLE, active_slot=ch.active_slot, now=now)
        self.bank.on_change(self.channels.on_change)
        self.bank.on_event(self.channels.on_event)
        for row in self.store.open_jobs():
            spec = row["spec"]
            self._enqueue(spec, ready_at=row["next_attempt_at"] or spec.get("not_before") or 0.0)
        for job_id, item in self.store.pending_reports().items():
            p = Placement(*item["placement"])
            queues = [self.tracker.expect(p.sim_id, r) for r in item["refs"]]
            self._awaiting.add(job_id)
            followup = Followup(queues, item["refs"], item["first_only"])
            self._spawn(self._await_reports(item["spec"], p, item["attempt_id"], followup,
                                            deadline=item["deadline"], sent_at=item.get("sent_at")), _BG)
        self._wake.set()  # jobs loaded from the store are dispatched at once
        self._loop_task = asyncio.get_running_loop().create_task(self._dispatch_loop())
        self._spawn(self._every(ROTATION_CHECKPOINT_SECONDS, self._save_rotation, "rotation checkpoint"), _BG)
        self._spawn(self._every(CHECKPOINT_SECONDS, self._checkpoint_wal, "WAL checkpoint"), _BG)
        self._spawn(self._every(CHECKPOINT_SECONDS, lambda: self.store.prune_events(self.clock()), "events retention"), _BG)

    def _save_rotation(self) -> None:
        if self._dirty:
            self._dirty = False
            self.store.set_kv("rotation", {"at": self.clock(), "policy": self.policy.snapshot()})

    async def _every(self, seconds: float, work: Callable[[], None], what: str) -> None:
        """Run ``work`` every ``seconds`` for the scheduler's life; a failure is logged
        and the next round comes anyway."""
        while True:
            await asyncio.sleep(seconds)
            try:
                work()
            except Exception:
                logger.exception("%s failed", what)

    def _checkpoint_wal(self) -> None:
        t0 = time.perf_counter()
        log, done = self.store.checkpoint()
        if log:
            logger.debug("WAL checkpoint: %d/%d frames in %.1f ms", done, log, (time.perf_counter() - t0) * 1e3)

    async def close(self) -> None:
        if self._finishing:  # results already known are written before we go (no new jobs start)
            try:
                self.store.finish_attempts([c.row for c in self._finishing], self.clock())
                self._finishing = []
            except Exception:
                logger.exception("could not record %d finished attempt(s) at stop", len(self._finishing))
        try:
            self._save_rotation()
        except Exception:
            logger.exception("rotation checkpoint failed")
        if self._loop_task:
            self._loop_task.cancel()
        for t in list(self._running.values()) + list(self._background):
            t.cancel()
        for t in list(self._running.values()) + list(self._background) + ([self._loop_task] if self._loop_task else []):
            try:
                await t
            except BaseException:
                pass

    # -- submission -------------------------------------------------------------------------
    def submit(self, jobs: list[dict[str, Any]]) -> list[tuple[str, bool]]:
        """Store and queue new jobs. A job id already held and not yet started keeps its
        place: a later ``deadline`` (the controller renewing the lease of the same job)
        is taken, so a renewal never becomes a second job."""
        created = self.store.add_jobs(jobs, now=self.clock())
        by_id = {j["id"]: j for j in jobs}
        for job_id, new in created:
            spec = by_id[job_id]
            if new:
                self._enqueue(spec, ready_at=spec.get("not_before") or 0.0)
            else:
                self._renew(spec)
        self._wake.set()
        return created

    def _renew(self, spec: dict[str, Any]) -> None:
        held = self._jobs.get(spec["id"])
        deadline = spec.get("deadline")
        if held is None or deadline is None or held.get("deadline") is None or float(deadline) <= float(held["deadline"]):
            return
        if self.store.renew_job(spec["id"], float(deadline), now=self.clock()):
            held["deadline"] = float(deadline)

    def cancel(self, job_id: str, *, reason: str | None = None) -> str:
        """Withdraw a job that has not started (a job on a channel runs to its end);
        returns its state after the call."""
        now = self.clock()
        body = self.core.unstarted(job_id, "cancelled", reason or "cancelled before it started", now)
        state = self.store.cancel_job(job_id, now=now, body=body)
        if state == "cancelled":
            self.core.queue.remove(job_id)  # lazy deletion from the heaps
            if body is not None:
                self._notify(body)
        return state

    def _enqueue(self, spec: dict[str, Any], *, ready_at: float) -> None:
        if self.core.enqueue(spec, ready_at, self.clock()) and ready_at < self._sleeping_until:
            self._wake.set()  # the loop sleeps past this job's time: it must look again

    # -- views ------------------------------------------------------------------------------------
    def waiting(self, job_id: str) -> dict[str, Any] | None:
        """Why a queued job has not started, or None if it is not queued here."""
        return self.core.waiting(job_id)

    def waiting_counts(self) -> dict[str, int]:
        """Queued jobs per reason (jobs not yet looked at count as no_idle_channel or dispatch)."""
        return self.core.waiting_counts()

    def stats(self) -> dict[str, Any]:
        core = self.core
        return {
            "queued": len(core.queue),
            "running": len(self._running),
            "awaiting_report": len(self._awaiting),
            "idle_channels": core.idle,
            "waiting_for": core.waiting_counts(),
            "decisions": core.decisions,
            "decision_us": round(core.decision_seconds / core.decisions * 1e6, 1) if core.decisions else None,
        }

    # -- the dispatch loop -------------------------------------------------------------------
    def _nudge(self) -> None:
        """Wake the dispatch loop if something done outside it (an executor closing its
        attempt, a retry queued) set a time earlier than the one the loop sleeps until:
        else a retry due in 5 s waited for the next channel event, which at the quiet end
        of a campaign never came (soak test, seed 5: an SMS retry idle for a minute)."""
        t = self.core.next_time()
        if t is not None and t < self._sleeping_until:
            self._wake.set()

    async def _dispatch_loop(self) -> None:
        while True:
            t = self.core.next_time()
            timeout = None if t is None else max(0.0, t - self.clock())
            self._sleeping_until = float("inf") if t is None else t
            try:
                async with asyncio.timeout(timeout):
                    await self._wake.wait()
            except TimeoutError:
                pass
            finally:
                self._sleeping_until = float("-inf")  # awake: nothing to nudge
            self._wake.clear()
            self._dispatch_now()
            await asyncio.sleep(0)

    def _dispatch_now(self, keep: str | None = None) -> _Start | None:
        if self._finishing:  # results a failed commit kept: written with this round
            return self._commit_finishes(keep)
        self._guarded_round()
        return self._commit_starts(self.clock(), keep)

    def _guarded_round(self) -> None:
        """A dispatch round whose failure is logged; the jobs it placed before failing
        are still committed and run by the caller, and the dispatch loop tries again a
        second later (not at once: a round that keeps failing must not spin)."""
        try:
            now = self.clock()
            done = self.core.round(now, self.channels)
            for body in done.ended:
                self._end_unstarted(body, now)
            if done.more:
                self._wake.set()  # more may fit; a round that started nothing waits for an event
            if not self.core.queue.has_ready:
                self.channels.collect_reports(now, self.cfg.sms.collect_interval_seconds)
        except Exception:
            logger.exception("dispatch round failed")
            asyncio.get_running_loop().call_later(COMMIT_RETRY_SECONDS, self._wake.set)  # channels already taken must run

    def _end_unstarted(self, body: dict[str, Any], now: float) -> None:
        """A job that ended before any attempt: its result goes to the outbox with the job's state."""
        self.store.finish_job_without_attempt(body["job_id"], body["outcome"], body, now)
        self._notify(body)
        if body["outcome"] == "no_eligible_sim":
            logger.warning("job %s: no SIM of this bank can place it (%s): %s", body["job_id"], body["waiting_for"], body["detail"])

    def _notify(self, result: dict[str, Any]) -> None:
        for cb in list(self.result_listeners):
            try:
                cb(result)
            except Exception:
                logger.exception("result listener failed")
