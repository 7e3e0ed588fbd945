"""Running attempts, the shell's half that touches jobs on channels: write the round's
attempts, run their executors (``jobs.EXECUTORS``), close them with the next round's
starts in one transaction, and await status reports off the channel.

Write before acting: the attempt (job, SIM, number shown) is committed to the store
before the executor dials; the result goes to the outbox in the transaction that closes
the attempt. A mixin of ``shell.Scheduler``, whose attributes it names below.
"""
from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import random
import time
from collections import deque
from collections.abc import Callable
from typing import Any, Final

from ..bank import Bank
from ..config import ApplianceConfig
from ..jobs import (
    EXECUTORS,
    Context,
    Followup,
    Placement,
    ReportTracker,
    await_delivery,
    hlr_extras,
)
from ..rotation import Decision
from ..store import Store
from . import reports
from .channels import BankSide
from .core import Closing, SchedulerCore

logger = logging.getLogger("appliance.scheduler")

#: After a failed commit (disk full, I/O error) or dispatch round, the dispatch loop
#: tries again this much later.
COMMIT_RETRY_SECONDS: Final = 1.0
#: Attempts that could not be written go back to the queue this much later.
UNDO_DELAY_SECONDS: Final = 1.0

Starting = list[tuple[dict[str, Any], Decision, Any, float | None]]


@dataclasses.dataclass(slots=True)
class _Start:
    """An attempt written to the store, ready for its executor."""

    spec: dict[str, Any]
    placement: Placement
    attempt_id: int
    modem: Any
    freed: float | None  # perf_counter when its channel came free (dispatch latency)


class Running:
    """The shell's methods that run attempts; ``shell.Scheduler`` supplies the attributes
    and methods annotated here."""

    cfg: ApplianceConfig
    store: Store
    bank: Bank
    core: SchedulerCore
    channels: BankSide
    tracker: ReportTracker
    rng: random.Random
    clock: Callable[[], float]
    dispatch_latencies: deque[float]
    last_dispatch_at: float | None
    context: Context
    _running: dict[str, asyncio.Task[Any]]
    _awaiting: set[str]
    _finishing: list[Closing]
    _dirty: bool
    _wake: asyncio.Event
    _spawn: Callable[[Any, str], Any]
    _enqueue: Callable[..., None]
    _guarded_round: Callable[[], None]
    _nudge: Callable[[], None]
    _notify: Callable[[dict[str, Any]], None]

    # -- writing the round's attempts ---------------------------------------------------------
    def _commit_starts(self, now: float, keep: str | None = None) -> _Start | None:
        """Write the round's attempts in one transaction, then start their executors."""
        if not self.channels.starting:
            return None
        starting, self.channels.starting = self.channels.starting, []
        try:
            ids = self.store.start_attempts(self._start_rows(starting), now)
        except Exception:
            logger.exception("could not record %d new attempt(s); they go back to the queue", len(starting))
            self._undo_starts(starting)
            return None
        self._dirty = True
        return self._launch(starting, ids, keep)

    def _commit_finishes(self, keep: str | None = None) -> _Start | None:
        """Close the finished attempts and refill their channels, in one transaction.

        The channels are released and the next jobs placed in memory first, then the
        closed attempts, their results and the new attempts are committed together (one
        commit per freed channel, not two), and only then are results announced and
        executors run. The channels just freed are filled here, not on the dispatch
        loop's next turn: under load a turn of the event loop takes milliseconds, and
        each turn between "free" and "ATD written" is idle channel time."""
        if not self._finishing:
            return None
        finishing, self._finishing = self._finishing, []
        self.channels.refilling = True  # the round below refills these channels: no wake-up needed
        try:
            for c in finishing:
                kind = c.spec["kind"]
                lo, hi = self.cfg.limits.pause_after_call if kind == "call" else (0.0, 0.0)
                self.bank.release(c.placement.channel_id, cooldown=self.rng.uniform(lo, hi) if hi > 0 else 0.0,
                                  reason=f"{kind} {c.row['result'].get('outcome')}")
                if c.row["result"].get("outcome") == "audio_fault" or c.row["result"].get("audio_lost"):
                    self.bank.audio_fault(c.placement.channel_id, str(c.row["result"].get("error") or ""))
                self.core.queue.callee_done(c.spec["callee"])
                if c.again:
                    self._enqueue(c.spec, ready_at=c.ready_at)
        finally:
            self.channels.refilling = False
        self._guarded_round()
        starting, self.channels.starting = self.channels.starting, []
        now = self.clock()
        try:
            _, ids = self.store.finish_and_start([c.row for c in finishing], self._start_rows(starting), now)
        except Exception:
            logger.exception("could not record %d finished and %d new attempt(s); the results are written with "
                             "the next commit, the new jobs go back to the queue", len(finishing), len(starting))
            self._finishing = finishing + self._finishing
            self._undo_starts(starting)
            # The dispatch loop tries the kept results again in a second (not at once:
            # a full disk would make that a busy loop).
            asyncio.get_running_loop().call_later(COMMIT_RETRY_SECONDS, self._wake.set)
            return None
        self._dirty = True
        for c in finishing:
            self._notify(c.row["result"])
        self._nudge()  # retries queued and SIM pauses begun above are the loop's to time
        return self._launch(starting, ids, keep)

    @staticmethod
    def _start_rows(starting: Starting) -> list[dict[str, Any]]:
        return [{"job_id": spec["id"], "sim_id": d.sim_id, "msisdn": d.msisdn, "channel_id": d.channel_id,
                 "callee": spec["callee"]} for spec, d, _, _ in starting]

    def _undo_starts(self, starting: Starting) -> None:
        """Attempts that could not be written are not run (write before act): their
        channels are released and the jobs wait a second before the next try."""
        for spec, d, _, _ in starting:
            self.bank.release(d.channel_id, cooldown=0.0, reason="attempt could not be recorded")
            self.core.queue.callee_done(spec["callee"])
            self._enqueue(spec, ready_at=self.clock() + UNDO_DELAY_SECONDS)

    # -- running executors ------------------------------------------------------------------------
    def _launch(self, starting: Starting, ids: list[tuple[int, int]], keep: str | None) -> _Start | None:
        """Run the executors of attempts just written. ``keep``: the channel whose
        executor is calling (it just finished a job there); the start placed on it is
        returned for the caller to run itself, so no turn of the event loop passes
        between the channel coming free and its next ATD."""
        if starting:
            self.last_dispatch_at = time.time()
        loop = asyncio.get_running_loop()
        kept = None
        for (spec, d, modem, freed), (attempt_id, n) in zip(starting, ids):
            job_id = spec["id"]
            self.core.note_shown(spec["callee"], d.msisdn)
            start = _Start(spec, Placement(d.channel_id, d.sim_id, d.msisdn, n), attempt_id, modem, freed)
            if kept is None and d.channel_id == keep:
                kept = start
                continue
            task = loop.create_task(self._run(start))
            self._running[job_id] = task
            task.add_done_callback(functools.partial(self._forget_task, job_id))
        return kept

    def _forget_task(self, job_id: str, task: asyncio.Task[None]) -> None:
        if self._running.get(job_id) is task:  # a task cancelled before its first step
            del self._running[job_id]

    async def _run(self, start: _Start) -> None:
        """Run a job on its channel; when it is over, run the next job the dispatch round
        places on the same channel (see ``_commit_finishes``), until none is."""
        task = asyncio.current_task()
        nxt: _Start | None = start
        while nxt is not None:
            job_id = nxt.spec["id"]
            self._running[job_id] = task  # type: ignore[assignment]
            try:
                nxt = await self._run_one(nxt)
            finally:
                self._running.pop(job_id, None)

    async def _run_one(self, start: _Start) -> _Start | None:
        spec, p = start.spec, start.placement
        kind = spec["kind"]
        if start.freed is not None:
            # Channel free -> executor running; the first AT command (ATD/AT+CMGS) is
            # written synchronously from here when the port is idle.
            self.dispatch_latencies.append(time.perf_counter() - start.freed)
        followup: Followup | None = None
        try:
            execute = EXECUTORS.get(kind)
            if execute is None:
                result = {"job_id": spec["id"], "outcome": "channel_error", "error": f"unknown kind {kind!r}"}
            else:
                result, followup = await execute(self.context, start.modem, spec, p)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # an executor bug must not lose the job
            logger.exception("job %s failed on %s", spec["id"], p.channel_id)
            result = {"job_id": spec["id"], "kind": kind, "callee": spec["callee"], "outcome": "channel_error",
                      "error": f"{type(exc).__name__}: {exc}", "channel_id": p.channel_id, "sim_id": p.sim_id,
                      "number_shown": p.msisdn, "attempt": p.attempt}
        now = self.clock()
        pending = None if followup is None else reports.pending(p, start.attempt_id, spec, followup.refs,
                                                                followup.first_only, sms=self.cfg.sms, now=now)
        self._finish(self.core.close(spec, p, start.attempt_id, result, now, pending=pending))
        if followup is not None:
            self._awaiting.add(spec["id"])
            self._spawn(self._await_reports(spec, p, start.attempt_id, followup, sent_at=now), "background work")
        try:
            return self._commit_finishes(keep=p.channel_id)
        except Exception:
            logger.exception("job %s: closing the attempt failed", spec["id"])
            return None

    def _finish(self, c: Closing) -> None:
        """An attempt closed in memory: its lock or quarantine are stored as events now,
        the attempt itself with the next commit."""
        sim_id, now = c.placement.sim_id, self.clock()
        if c.lock is not None:
            lock = c.lock
            self.store.log_event("sim_locked", sim_id, {"rule": lock.rule, "until": lock.until, "evidence": list(lock.evidence)}, now)
        if c.quarantined is not None:
            self.store.log_event("sim_quarantined", sim_id, {"evidence": list(c.quarantined)}, now)
            logger.warning("SIM %s quarantined: %s", sim_id, "; ".join(c.quarantined))
        self._finishing.append(c)

    # -- status reports (off the channel) -----------------------------------------------------------
    async def _await_reports(self, spec: dict[str, Any], p: Placement, attempt_id: int, followup: Followup, *,
                             deadline: float | None = None, sent_at: float | None = None) -> None:
        sms = self.cfg.sms
        state, statuses = await await_delivery(
            followup.queues, reports.time_left(deadline, followup.first_only, sms=sms, now=self.clock()),
            first_only=followup.first_only)
        for r in followup.refs:
            self.tracker.forget(p.sim_id, r)
        now = self.clock()
        body = reports.final_body(spec, p, first_only=followup.first_only, state=state, statuses=statuses, now=now,
                                  sent_at=sent_at, extras=hlr_extras(self.context, spec["callee"]) if followup.first_only else {})
        self.store.add_result(spec["id"], attempt_id, body, final=True, job_state="done", now=now)
        self._notify(body)
        self._awaiting.discard(spec["id"])
