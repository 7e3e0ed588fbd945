"""The scheduler: which job goes next, on which channel, and what happens after.

Jobs wait in two heaps: *waiting* (by the time they may start: not-before or retry
backoff) and *ready* (by priority, then arrival). A dispatch round runs whenever
something changes — a job arrives, a channel frees, a timer fires — never on a poll:
it promotes due jobs, and for each ready job asks the rotation policy for a SIM. One
callee has at most one active job; his other jobs wait behind it.

Write before acting: the attempt (job, SIM, number shown) is committed to the store
before the executor dials; the result goes to the outbox in the transaction that closes
the attempt. A job past its deadline never starts (its result says ``expired``).
"""
from __future__ import annotations

import asyncio
import dataclasses
import enum
import functools
import heapq
import itertools
import logging
import random
import time
from collections import defaultdict, deque
from collections.abc import Callable
from typing import Any, Final

from modem_drivers.background import Background
from modem_drivers.sms import StatusReport
from modem_drivers.types import PinState, StatusReportReceived

from .bank import Bank
from .channel import SWITCHABLE, Channel, ChannelState
from .config import ApplianceConfig
from .jobs import (
    Placement,
    ReportTracker,
    await_delivery,
    classify_ping,
    iso,
    run_call,
    run_probe_call,
    submit_sms,
)
from .rotation import AttemptSummary, Decision, JobKind, Refusal, Request, RotationPolicy
from .store import CHECKPOINT_SECONDS, Store

logger = logging.getLogger(__name__)

#: A dispatch round asks the policy at most this many times before yielding, so a long
#: queue of unplaceable jobs cannot starve the event loop.
MAX_CHOICES_PER_ROUND: Final = 256
#: The rotation policy's state is checkpointed this often (and at stop); after a crash
#: the attempts stored since the checkpoint are replayed, so no cap is forgotten.
ROTATION_CHECKPOINT_SECONDS: Final = 5.0
ROUTINE_STATES: Final = frozenset({ChannelState.IDLE, ChannelState.BUSY, ChannelState.COOLING})
#: Callees whose shown numbers are cached in memory (the store stays the truth).
SHOWN_CACHE: Final = 100_000
#: After a failed commit (disk full, I/O error) or dispatch round, the dispatch loop
#: tries again this much later.
COMMIT_RETRY_SECONDS: Final = 1.0
#: Outcomes that mean the channel/SIM failed (not the callee): they feed lock rules.
CHANNEL_FAILURES: Final = frozenset({"channel_error", "network_error"})
#: A job whose only SIMs are quarantined, locked until released, absent, or the callee's
#: last number (``rotation.DEAD_ENDS``) ends ``no_eligible_sim`` once that has held this
#: long with the whole bank up: long enough for modems still opening or re-registering
#: after a slot switch (bank.REGISTRATION_TIMEOUT is 60 s), short enough that the
#: controller re-plans it (on another appliance, or later) well inside its lease.
NO_ELIGIBLE_GRACE_SECONDS: Final = 90.0
#: A failed slot switch is not tried again on that channel before this, doubling per
#: failure up to the cap: a modem that refuses switches (stuck, a call the driver thinks
#: is up) must not be asked again on every dispatch round.
SWITCH_BACKOFF_SECONDS: Final = (5.0, 300.0)
#: Channel states in which the bank has not yet said what the modem's SIMs are.
UNSETTLED_STATES: Final = frozenset({ChannelState.OPENING, ChannelState.SWITCHING})


class JobWait(enum.Enum):
    """Why a queued job waits, beyond the rotation policy's reasons (``WaitingFor``)."""

    NOT_BEFORE = "not_before"  # the job's own start time has not come
    RETRY_BACKOFF = "retry_backoff"  # between attempts, by the retry policy
    CALLEE_BUSY = "callee_busy"  # another job for this callee is running
    NO_IDLE_CHANNEL = "no_idle_channel"  # every channel is busy, cooling, switching or down
    SLOT_SWITCH = "slot_switch"  # its SIM sits in an inactive slot: the modem is switching to it
    SLOT_SWITCH_BACKOFF = "slot_switch_backoff"  # that modem's last switch failed; the next try waits


@dataclasses.dataclass(slots=True)
class Waiting:
    """The last known reason a queued job did not start: one word (``code``), a sentence
    (``detail``) and since when the same word holds."""

    code: str
    detail: str
    since: float

    def public(self) -> dict[str, Any]:
        return {"waiting_for": self.code, "waiting_detail": self.detail, "waiting_since": iso(self.since)}


@dataclasses.dataclass(slots=True)
class _Start:
    """An attempt written to the store, ready for its executor."""

    spec: dict[str, Any]
    placement: Placement
    attempt_id: int
    modem: Any
    freed: float | None  # perf_counter when its channel came free (dispatch latency)


class Scheduler:
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
        self.learn_operator = learn_operator
        self.clock = clock
        self.rng = rng or random.Random()
        self.tracker = ReportTracker()
        self._seq = itertools.count()
        self._ready: list[tuple[int, int, str]] = []
        self._waiting: list[tuple[float, int, str]] = []
        self._jobs: dict[str, dict[str, Any]] = {}  # queued job id -> spec (+ "_attempts")
        self._active_callees: set[str] = set()
        self._blocked: dict[str, deque[str]] = defaultdict(deque)
        self._running: dict[str, asyncio.Task[Any]] = {}
        self._background = Background("scheduler", logger)
        self._wake = asyncio.Event()
        self._loop_task: asyncio.Task[None] | None = None
        self._quarantine_runs: dict[str, list[str]] = defaultdict(list)
        self._idle = 0
        self.decisions = 0
        self.decision_seconds = 0.0
        self.dispatch_latencies: deque[float] = deque(maxlen=10000)
        self._freed_at: dict[str, float] = {}
        self.result_listeners: list[Callable[[dict[str, Any]], None]] = []
        self._last_collect: dict[str, float] = {}
        self._last_collect_round = 0.0
        self._awaiting: set[str] = set()  # jobs whose channel part is done, waiting for reports
        self._starting: list[tuple[dict[str, Any], Decision, Any, float | None]] = []
        self._finishing: list[tuple[dict[str, Any], dict[str, Any], Placement, bool, float]] = []
        self.last_dispatch_at: float | None = None
        self._shown_cache: dict[str, tuple[str, ...]] = {}
        self._outcomes: dict[str, list[str]] = {}
        self._dirty = False
        self._refilling = False  # inside _commit_finishes: freed channels are refilled there
        self._waits: dict[str, Waiting] = {}  # queued job id -> why it has not started
        self._switch_retry: dict[str, tuple[float, float]] = {}  # channel -> (not before, last delay)
        self._switching: set[str] = set()  # channels with a switch of ours under way
        self._recheck_at: float | None = None  # when a dead-end wait reaches its grace (set per round)
        self._sleeping_until = float("-inf")  # the time the dispatch loop sleeps until (-inf: awake)

    # -- lifecycle ------------------------------------------------------------------------
    async def start(self) -> None:
        now = self.clock()
        snap_at = self._restore_rotation(now)
        self._recover(now)
        for ch in self.bank.channels.values():
            self._register_channel(ch, now)
        self._replay_attempts(snap_at)
        for ch in self.bank.channels.values():  # replayed starts marked modems busy
            self.policy.set_channel(ch.id, idle=ch.state is ChannelState.IDLE, active_slot=ch.active_slot, now=now)
        self.bank.on_change(self._on_channel_change)
        self.bank.on_event(self._on_bank_event)
        for row in self.store.open_jobs():
            spec = row["spec"]
            self._enqueue(spec, ready_at=row["next_attempt_at"] or spec.get("not_before") or 0.0)
        self._rearm_reports(now)
        self._wake.set()  # jobs loaded from the store are dispatched at once
        self._loop_task = asyncio.get_running_loop().create_task(self._dispatch_loop())
        self._background_task(self._every(ROTATION_CHECKPOINT_SECONDS, self._save_rotation, "rotation checkpoint"))
        self._background_task(self._every(CHECKPOINT_SECONDS, self._checkpoint_wal, "WAL checkpoint"))
        self._background_task(self._every(CHECKPOINT_SECONDS, lambda: self.store.prune_events(self.clock()), "events retention"))

    # -- rotation state: snapshot + replay of the attempt log ------------------------------------
    def _restore_rotation(self, now: float) -> float:
        """Counters come back from the last snapshot plus the attempts stored after it:
        the attempts table is the log, the snapshot only a checkpoint (saving the whole
        policy on every attempt would cost O(SIMs) per call)."""
        snap = self.store.get_kv("rotation")
        snap_at = 0.0
        if snap:
            try:
                self.policy.restore(snap["policy"] if "policy" in snap else snap, now)
                snap_at = float(snap.get("at", 0.0))
            except Exception:
                logger.exception("rotation snapshot unreadable; rebuilding counters from the attempt log")
                snap_at = 0.0
        return snap_at

    def _replay_attempts(self, since: float) -> None:
        horizon = max(since, self.clock() - 86400.0)  # daily caps look back 24 h at most
        n = 0
        for a in self.store.attempts_since(horizon):
            try:
                kind = JobKind(a["kind"])
                self.policy.record_start(a["sim_id"], kind, a["started_at"])
                if a["result"] is not None:
                    self.policy.record_end(a["sim_id"], self._summary({"kind": a["kind"]}, a["result"]), a["ended_at"] or a["started_at"])
                n += 1
            except (KeyError, ValueError):
                continue
        if n:
            logger.info("rotation counters: %d attempt(s) replayed from the store", n)

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
                self.store.finish_attempts([row for row, *_ in self._finishing], self.clock())
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

    def _recover(self, now: float) -> None:
        """Attempts a dead process left 'started' become 'interrupted' results."""
        for a in self.store.interrupted_attempts():
            spec = a["spec"]
            retry = self._retry_settings(spec)
            again = retry["retry_interrupted"] and a["n"] < retry["max_attempts"]
            body = {
                "job_id": a["job_id"], "kind": spec["kind"], "callee": spec["callee"], "attempt": a["n"],
                "channel_id": a["channel_id"], "sim_id": a["sim_id"], "number_shown": a["msisdn"],
                "outcome": "interrupted", "started_at": iso(a["started_at"]),
                "detail": "the appliance stopped during this attempt; it is not redialed unless the retry policy says so",
                "final": not again,
            }
            self.store.finish_attempt(
                a["attempt_id"], a["job_id"], result=body, job_state="waiting_retry" if again else "done",
                next_attempt_at=now if again else None, final=not again, now=now, attempt_state="interrupted",
            )
            logger.warning("job %s: attempt %d interrupted by a restart", a["job_id"], a["n"])

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
        spec = self._jobs.get(job_id)
        body = None if spec is None else self._unstarted_body(spec, "cancelled", reason or "cancelled before it started", now)
        state = self.store.cancel_job(job_id, now=now, body=body)
        if state == "cancelled":
            self._jobs.pop(job_id, None)  # lazy deletion from the heaps
            self._waits.pop(job_id, None)
            if body is not None:
                self._notify(body)
        return state

    # -- why jobs wait -------------------------------------------------------------------------
    def _wait(self, job_id: str, code: str, detail: str, now: float) -> Waiting:
        w = self._waits.get(job_id)
        if w is None or w.code != code:
            w = self._waits[job_id] = Waiting(code, detail, now)
        else:
            w.detail = detail
        return w

    def waiting(self, job_id: str) -> dict[str, Any] | None:
        """Why a queued job has not started, or None if it is not queued here."""
        if job_id not in self._jobs:
            return None
        w = self._waits.get(job_id)
        if w is None:
            if self._idle <= 0:
                return {"waiting_for": JobWait.NO_IDLE_CHANNEL.value,
                        "waiting_detail": "every channel is busy, cooling down, switching or down", "waiting_since": None}
            return {"waiting_for": "dispatch", "waiting_detail": "next in line", "waiting_since": None}
        return w.public()

    def waiting_counts(self) -> dict[str, int]:
        """Queued jobs per reason (jobs not yet looked at count as no_idle_channel or dispatch)."""
        counts: dict[str, int] = defaultdict(int)
        for job_id in self._jobs:
            w = self._waits.get(job_id)
            counts[w.code if w else (JobWait.NO_IDLE_CHANNEL.value if self._idle <= 0 else "dispatch")] += 1
        return dict(counts)

    def _enqueue(self, spec: dict[str, Any], *, ready_at: float) -> None:
        self._jobs[spec["id"]] = spec
        learnt = (spec.get("hints") or {}).get("callee_operator")
        if learnt:
            self.learn_operator(spec["callee"], learnt)
        now = self.clock()
        if ready_at and ready_at > now:
            heapq.heappush(self._waiting, (ready_at, next(self._seq), spec["id"]))
            if ready_at < self._sleeping_until:
                self._wake.set()  # the loop sleeps past this job's time: it must look again
            code = JobWait.NOT_BEFORE if spec.get("not_before") and float(spec["not_before"]) >= ready_at else JobWait.RETRY_BACKOFF
            self._wait(spec["id"], code.value, f"until {iso(ready_at)}", now)
        else:
            heapq.heappush(self._ready, (-int(spec.get("priority", 0)), next(self._seq), spec["id"]))

    # -- channel bookkeeping ------------------------------------------------------------------
    def _register_channel(self, ch: Channel, now: float) -> None:
        self._register_channel_sims_only(ch, now)
        idle = ch.state is ChannelState.IDLE
        self._idle += 1 if idle else 0
        self.policy.set_channel(ch.id, idle=idle, active_slot=ch.active_slot, now=now)

    def _on_channel_change(self, ch: Channel, old: ChannelState, new: ChannelState, reason: str) -> None:
        now = self.clock()
        if old is ChannelState.IDLE:
            self._idle -= 1
        if new is ChannelState.IDLE:
            self._idle += 1
            self._freed_at[ch.id] = time.perf_counter()
        if new is ChannelState.IDLE and old in (ChannelState.SWITCHING, ChannelState.OPENING, ChannelState.FAULTY):
            self._register_channel_sims_only(ch, now)
        self.policy.set_channel(ch.id, idle=new is ChannelState.IDLE, active_slot=ch.active_slot, now=now)
        # Busy/idle/cooling moves are in the attempts table already; storing each would
        # cost two writes per job. Every other move (faulty, switching, quarantined,
        # back from those) is stored as an event with its reason.
        if not ({old, new} <= ROUTINE_STATES):
            try:
                self.store.log_event("channel", ch.id, {"from": old.value, "to": new.value, "reason": reason}, now)
            except Exception:
                logger.exception("could not store channel event")
        if new is ChannelState.IDLE and not self._refilling:
            self._wake.set()  # (a channel freed by ``_commit_finishes`` is refilled there)

    def _register_channel_sims_only(self, ch: Channel, now: float) -> None:
        """Offer the channel's SIMs to the rotation policy. A SIM that was locked (PIN,
        PUK) when last read is left out: a switch to it would stop the modem on its PIN
        (modem_drivers.pin) and take the other slot's SIM out of service with it. It is
        offered once it is read unlocked (the bank settles the channel again)."""
        from .rotation import SimRef

        for slot in ch.sims.values():
            if slot.sim_id and slot.info and slot.info.pin_state is PinState.READY:
                try:
                    self.policy.add_sim(
                        SimRef(slot.sim_id, slot.info.msisdn or slot.sim_id, slot.info.mcc_mnc or "", ch.id, slot.slot,
                               frozenset(ch.pools)),
                        now=now,
                    )
                except ValueError:
                    pass

    def _on_bank_event(self, ch: Channel, ev: Any) -> None:
        if isinstance(ev, StatusReportReceived):
            sim = ch.active_sim
            sim_id = sim.sim_id if sim and sim.sim_id else ch.id
            if not self.tracker.deliver(sim_id, ev.report):
                logger.debug("status report %d on %s kept for a late waiter", ev.report.reference, ch.id)

    # -- dispatch ----------------------------------------------------------------------------
    def _next_time(self) -> float | None:
        """When the clock alone next lets a job go: a waiting job's time, a SIM's cap,
        pause or lock ending (the policy's wake-up), a dead-end wait reaching its grace."""
        times = [t for t in (self._waiting[0][0] if self._waiting else None, self.policy.next_wakeup(),
                             self._recheck_at) if t is not None]
        return min(times) if times else None

    def _nudge(self) -> None:
        """Wake the dispatch loop if something done outside it (an executor closing its
        attempt, a retry queued) set a time earlier than the one the loop sleeps until:
        else a retry due in 5 s waited for the next channel event, which at the quiet end
        of a campaign never came (soak test, seed 5: an SMS retry idle for a minute)."""
        t = self._next_time()
        if t is not None and t < self._sleeping_until:
            self._wake.set()

    async def _dispatch_loop(self) -> None:
        while True:
            t = self._next_time()
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

    def _dispatch_round(self) -> None:
        now = self.clock()
        self._recheck_at = None
        while self._waiting and self._waiting[0][0] <= now:
            _, seq, job_id = heapq.heappop(self._waiting)
            spec = self._jobs.get(job_id)
            if spec is not None:
                self._waits.pop(job_id, None)  # its time has come: the round below says what holds it now
                heapq.heappush(self._ready, (-int(spec.get("priority", 0)), seq, job_id))
        deferred: list[tuple[str, float | None]] = []
        asked = started = 0
        for ch_id, slot in self.policy.plan_switches(now):
            self._switch(ch_id, slot, "planned by rotation", now)
        while self._ready and self._idle > 0 and asked < MAX_CHOICES_PER_ROUND:
            _, seq, job_id = heapq.heappop(self._ready)
            spec = self._jobs.get(job_id)
            if spec is None:
                continue  # cancelled or already running
            deadline = spec.get("deadline")
            if deadline is not None and now >= float(deadline):
                w = self._waits.get(job_id)
                detail = "deadline passed before the job could start"
                self._end_unstarted(spec, "expired", f"{detail} (waiting for {w.code}: {w.detail})" if w else detail, now)
                continue
            callee = spec["callee"]
            if callee in self._active_callees:
                self._blocked[callee].append(job_id)
                self._wait(job_id, JobWait.CALLEE_BUSY.value, "another job for this callee is running", now)
                continue
            asked += 1
            t0 = time.perf_counter()
            decision = self.policy.choose(self._request(spec), now)
            self.decision_seconds += time.perf_counter() - t0
            self.decisions += 1
            if isinstance(decision, Refusal):
                if self._refused(spec, decision, now):
                    deferred.append((job_id, decision.retry_at))
                continue
            if decision.needs_switch:
                slot = self._slot_of(decision)
                if self._switch(decision.channel_id, slot, f"for job {job_id}", now):
                    self._wait(job_id, JobWait.SLOT_SWITCH.value, f"channel {decision.channel_id} is switching to slot {slot}", now)
                else:
                    not_before = self._switch_retry.get(decision.channel_id, (now, 0.0))[0]
                    self._wait(job_id, JobWait.SLOT_SWITCH_BACKOFF.value,
                               f"its SIM {decision.sim_id} sits in slot {slot} of channel {decision.channel_id}, whose last "
                               f"slot switch failed; next try after {iso(not_before)}", now)
                deferred.append((job_id, None))
                continue
            self._waits.pop(job_id, None)
            self._start(spec, decision, now)
            started += 1
        # A refusal's retry_at is only when the *clock* may help; a channel coming free
        # may help sooner. Refused jobs go back to the ready heap: the next round runs on
        # the next channel event or at the policy's next wake-up, whichever comes first.
        for job_id, _retry_at in deferred:
            spec = self._jobs.get(job_id)
            if spec is not None:
                heapq.heappush(self._ready, (-int(spec.get("priority", 0)), next(self._seq), job_id))
        if started and self._ready and self._idle > 0:
            self._wake.set()  # more may fit; a round that started nothing waits for an event
        if not self._ready:
            self._collect_reports(now)

    def _collect_reports(self, now: float) -> None:
        """Idle moment: visit SIMs in inactive slots that owe us status reports.

        A report for a SIM in an inactive slot waits on that SIM (27.005: it is stored
        in its SR memory, with no URC); switching to the slot sweeps it up. Done only
        when no job is waiting, at most once per ``sms.collect_interval_seconds`` per
        channel."""
        interval = self.cfg.sms.collect_interval_seconds
        if now - self._last_collect_round < min(1.0, interval):
            return  # bounded: at most one scan a second, however busy the bank
        self._last_collect_round = now
        owed = self.tracker.sims_waiting()
        if not owed:
            return
        for ch in self.bank.channels.values():
            if ch.slots < 2:
                continue
            if ch.state is not ChannelState.IDLE or now - self._last_collect.get(ch.id, 0.0) < interval:
                continue
            for slot in ch.sims.values():
                if slot.slot != ch.active_slot and slot.sim_id in owed:
                    self._last_collect[ch.id] = now
                    self._switch(ch.id, slot.slot, "collecting status reports", now)
                    break

    def _refused(self, spec: dict[str, Any], refusal: Refusal, now: float) -> bool:
        """Note why the job waits; end it ``no_eligible_sim`` when no SIM of the bank can
        serve it and that has held for ``NO_ELIGIBLE_GRACE_SECONDS`` with every modem up.
        Returns whether the job stays queued."""
        w = self._wait(spec["id"], refusal.waiting_for.value, refusal.reason, now)
        if not refusal.dead_end:
            return True
        if now - w.since < NO_ELIGIBLE_GRACE_SECONDS or self._bank_unsettled():
            # No event may come to end this wait: look again when the grace is over (a
            # modem settling is an event of its own).
            due = w.since + NO_ELIGIBLE_GRACE_SECONDS
            if due > now:  # (past it, only an unsettled modem holds it: its settling wakes us)
                self._recheck_at = due if self._recheck_at is None else min(self._recheck_at, due)
            return True
        self._end_unstarted(spec, "no_eligible_sim", refusal.reason, now, waiting_for=refusal.waiting_for.value)
        logger.warning("job %s: no SIM of this bank can place it (%s): %s", spec["id"], refusal.waiting_for.value, refusal.reason)
        return False

    def _bank_unsettled(self) -> bool:
        return any(ch.state in UNSETTLED_STATES for ch in self.bank.channels.values())

    def _end_unstarted(self, spec: dict[str, Any], outcome: str, detail: str, now: float, **extra: Any) -> None:
        """A job that ends before any attempt: its result goes to the outbox with the job's state."""
        job_id = spec["id"]
        self._jobs.pop(job_id, None)
        self._waits.pop(job_id, None)
        body = self._unstarted_body(spec, outcome, detail, now, **extra)
        self.store.finish_job_without_attempt(job_id, outcome, body, now)
        self._notify(body)

    @staticmethod
    def _unstarted_body(spec: dict[str, Any], outcome: str, detail: str, now: float, **extra: Any) -> dict[str, Any]:
        return {"job_id": spec["id"], "kind": spec["kind"], "callee": spec["callee"], "outcome": outcome,
                "detail": detail, "final": True, "at": iso(now), **extra}

    def _switch(self, channel_id: str, slot: int, reason: str, now: float) -> bool:
        """Start a slot switch on an idle channel unless its last one failed recently
        (``SWITCH_BACKOFF_SECONDS``); returns whether a switch is under way."""
        ch = self.bank.channels.get(channel_id)
        if ch is None:
            return False
        if channel_id in self._switching:
            return True
        if ch.state is not ChannelState.IDLE or now < self._switch_retry.get(channel_id, (0.0, 0.0))[0]:
            return False
        self._switching.add(channel_id)
        self._background_task(self._run_switch(ch, slot, reason), f"slot switch of {channel_id}")
        return True

    async def _run_switch(self, ch: Channel, slot: int, reason: str) -> None:
        if ch.state not in SWITCHABLE:
            # A job of the same round took the channel first: nothing was tried, nothing failed.
            self._switching.discard(ch.id)
            return
        try:
            ok = await self.bank.switch(ch.id, slot, reason=reason)
        except Exception as exc:  # a driver bug must not turn into a switch storm
            logger.warning("channel %s: slot switch to %d raised %s: %s", ch.id, slot, type(exc).__name__, exc)
            ok = False
        finally:
            self._switching.discard(ch.id)
        if ok:
            self._switch_retry.pop(ch.id, None)
            return
        lo, hi = SWITCH_BACKOFF_SECONDS
        delay = min(hi, self._switch_retry.get(ch.id, (0.0, lo / 2))[1] * 2)
        not_before = self.clock() + delay
        self._switch_retry[ch.id] = (not_before, delay)
        logger.warning("channel %s: slot switch to %d did not complete (%s); no switch on it before %s (backoff %.0f s)",
                       ch.id, slot, ch.reason or "no reason given", iso(not_before), delay)
        try:
            self.store.log_event("switch_failed", ch.id, {"slot": slot, "reason": ch.reason, "retry_in": delay}, self.clock())
        except Exception:
            logger.exception("could not store switch event")
        asyncio.get_running_loop().call_later(delay, self._wake.set)

    def _slot_of(self, d: Decision) -> int:
        ch = self.bank.channels[d.channel_id]
        for slot in ch.sims.values():
            if slot.sim_id == d.sim_id:
                return slot.slot
        return ch.active_slot

    def _request(self, spec: dict[str, Any]) -> Request:
        hints = spec.get("hints") or {}
        kind = JobKind(spec["kind"])
        callee = spec["callee"]
        # hints.operator is the SIM operator the caller prefers (the controller sends the
        # callee's own, for on-net calls): a preference that ranks, not a filter, unless
        # the job lists it in hints.require. A filter would leave the job waiting for ever
        # when that operator's few SIMs are locked or were this callee's last number.
        wanted = hints.get("operator")
        required = "operator" in (hints.get("require") or ())
        return Request(
            callee=callee,
            kind=kind,
            callee_operator=hints.get("callee_operator") or wanted or self.operator_of(callee),
            required_operator=wanted if required else None,
            pool=hints.get("pool"),
            fixed_msisdn=hints.get("fixed_number"),
            shown=self._shown(callee),
        )

    def _shown(self, callee: str) -> tuple[str, ...]:
        cached = self._shown_cache.get(callee)
        if cached is None:
            cached = self.store.shown_numbers(callee)
            if len(self._shown_cache) >= SHOWN_CACHE:
                self._shown_cache.pop(next(iter(self._shown_cache)))
            self._shown_cache[callee] = cached
        return cached

    def _background_task(self, coro: Any, what: str = "background work") -> None:
        self._background.spawn(coro, what)

    # -- running a job ---------------------------------------------------------------------------
    def _start(self, spec: dict[str, Any], d: Decision, now: float) -> None:
        """Take the channel and the SIM now (the rest of the round must see them busy);
        the attempt is written with the round's others in ``_commit_starts``, and only
        then does the executor run (write before act)."""
        job_id = spec["id"]
        self._jobs.pop(job_id, None)
        self._active_callees.add(spec["callee"])
        self.policy.record_start(d.sim_id, JobKind(spec["kind"]), now)
        modem = self.bank.acquire(d.channel_id, job_id)
        self._starting.append((spec, d, modem, self._freed_at.pop(d.channel_id, None)))

    def _commit_starts(self, now: float, keep: str | None = None) -> _Start | None:
        """Write the round's attempts in one transaction, then start their executors."""
        if not self._starting:
            return None
        starting, self._starting = self._starting, []
        try:
            ids = self.store.start_attempts(self._start_rows(starting), now)
        except Exception:
            logger.exception("could not record %d new attempt(s); they go back to the queue", len(starting))
            self._undo_starts(starting)
            return None
        self._dirty = True
        return self._launch(starting, ids, keep)

    @staticmethod
    def _start_rows(starting: list[tuple[dict[str, Any], Decision, Any, float | None]]) -> list[dict[str, Any]]:
        return [{"job_id": spec["id"], "sim_id": d.sim_id, "msisdn": d.msisdn, "channel_id": d.channel_id,
                 "callee": spec["callee"]} for spec, d, _, _ in starting]

    def _undo_starts(self, starting: list[tuple[dict[str, Any], Decision, Any, float | None]]) -> None:
        """Attempts that could not be written are not run (write before act): their
        channels are released and the jobs wait a second before the next try."""
        for spec, d, _, _ in starting:
            self.bank.release(d.channel_id, cooldown=0.0, reason="attempt could not be recorded")
            self._callee_done(spec["callee"])
            self._enqueue(spec, ready_at=self.clock() + 1.0)

    def _launch(self, starting: list[tuple[dict[str, Any], Decision, Any, float | None]],
                ids: list[tuple[int, int]], keep: str | None) -> _Start | None:
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
            if spec["callee"] in self._shown_cache:
                self._shown_cache[spec["callee"]] = (self._shown_cache[spec["callee"]] + (d.msisdn,))[-50:]
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
        places on the same channel (see ``_commit_starts``), until none is."""
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
        spec, p, attempt_id, modem, freed = start.spec, start.placement, start.attempt_id, start.modem, start.freed
        kind = spec["kind"]
        if freed is not None:
            # Channel free -> executor running; the first AT command (ATD/AT+CMGS) is
            # written synchronously from here when the port is idle.
            self.dispatch_latencies.append(time.perf_counter() - freed)
        followup = None
        try:
            if kind == "call":
                result = await run_call(modem, spec, p, {
                    "max_ring_seconds": self.cfg.calls.max_ring_seconds,
                    "max_talk_seconds": self.cfg.calls.max_talk_seconds,
                    "on_answer": self.cfg.calls.on_answer,
                    "message": self.cfg.calls.message,
                })
            elif kind == "sms":
                result, queues, refs = await submit_sms(modem, spec, p, self.tracker)
                if queues:
                    followup = (queues, refs, False)
            elif kind == "hlr" and spec.get("method", "sms_ping") == "probe_call":
                result = await run_probe_call(modem, spec, p)
                result.update(self._hlr_extras(spec["callee"]))
            elif kind == "hlr":
                ping = {**spec, "text": " ", "report": True}
                from modem_drivers.sms import PID_TYPE0

                result, queues, refs = await submit_sms(modem, ping, p, self.tracker, pid=PID_TYPE0)
                result["method"] = "sms_ping"
                if queues:
                    followup = (queues, refs, True)
            else:
                result = {"job_id": spec["id"], "outcome": "channel_error", "error": f"unknown kind {kind!r}"}
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # an executor bug must not lose the job
            logger.exception("job %s failed on %s", spec["id"], p.channel_id)
            result = {"job_id": spec["id"], "kind": kind, "callee": spec["callee"], "outcome": "channel_error",
                      "error": f"{type(exc).__name__}: {exc}", "channel_id": p.channel_id, "sim_id": p.sim_id,
                      "number_shown": p.msisdn, "attempt": p.attempt}
        pending = None
        if followup is not None:
            queues, refs, first_only = followup
            pending = self._pending_record(p, attempt_id, spec, refs, first_only)
        self._finish(spec, p, attempt_id, result, pending=pending)
        if followup is not None:
            self._awaiting.add(spec["id"])
            self._background_task(self._await_reports(spec, p, attempt_id, queues, refs, first_only,
                                                      sent_at=pending["sent_at"] if pending else None))
        try:
            return self._commit_finishes(keep=p.channel_id)
        except Exception:
            logger.exception("job %s: closing the attempt failed", spec["id"])
            return None

    def _summary(self, spec: dict[str, Any], result: dict[str, Any]) -> AttemptSummary:
        outcome = result.get("outcome", "")
        return AttemptSummary(
            kind=JobKind(spec["kind"]),
            alerted=bool(result.get("alerting_at") or result.get("answered_at") or result.get("alerted")),
            answered=bool(result.get("answered_at")),
            talk_seconds=float(result.get("talk_seconds") or 0.0),
            failed=outcome in CHANNEL_FAILURES,
            cause=result.get("cause"),
        )

    def _retry_settings(self, spec: dict[str, Any]) -> dict[str, Any]:
        r = self.cfg.retry
        base = {
            "max_attempts": r.max_attempts, "backoff_seconds": r.backoff_seconds, "backoff_factor": r.backoff_factor,
            "retry_outcomes": list(r.retry_outcomes), "retry_interrupted": r.retry_interrupted,
        }
        base.update(spec.get("retry") or {})
        return base

    def _finish(self, spec: dict[str, Any], p: Placement, attempt_id: int, result: dict[str, Any], *,
                pending: dict[str, Any] | None = None) -> None:
        """Close the attempt; ``pending`` (status reports still owed) is stored in the same
        transaction, so a restart re-arms exactly the waits whose attempts were closed."""
        now = self.clock()
        awaiting_report = pending is not None
        job_id = spec["id"]
        summary = self._summary(spec, result)
        lock = self.policy.record_end(p.sim_id, summary, now)
        if lock is not None:
            self.store.log_event("sim_locked", p.sim_id, {"rule": lock.rule, "until": lock.until, "evidence": list(lock.evidence)}, now)
        self._check_quarantine(spec, p, result, now)
        retry = self._retry_settings(spec)
        outcome = result.get("outcome")
        # Attempts that failed on our side (channel/network) do not use up the callee's
        # attempt budget: he was never reached. They have their own cap so a job cannot
        # bounce between broken channels for ever.
        retryable = outcome in retry["retry_outcomes"] and not awaiting_report
        if retryable and job_id not in self._outcomes:
            self._outcomes[job_id] = self.store.attempt_outcomes(job_id)
        outcomes = self._outcomes.get(job_id, [None] * (p.attempt - 1)) + [outcome]
        ours = sum(1 for o in outcomes if o in CHANNEL_FAILURES)
        callee_attempts = len(outcomes) - ours
        if outcome in CHANNEL_FAILURES:
            budget_left = ours < int(retry.get("max_channel_retries", self.cfg.retry.max_channel_retries))
        else:
            budget_left = callee_attempts < int(retry["max_attempts"])
        again = not awaiting_report and outcome in retry["retry_outcomes"] and budget_left
        next_at = None
        if again and outcome in CHANNEL_FAILURES:
            # Our side failed: try again soon, on another SIM (the failed one is last-used).
            next_at = now + float(retry.get("channel_retry_seconds", self.cfg.retry.channel_retry_seconds))
        elif again:
            exponent = max(0, callee_attempts - 1)
            next_at = now + float(retry["backoff_seconds"]) * float(retry["backoff_factor"]) ** exponent
        if again:
            result["retry_at"] = iso(next_at)
        final = not again and not awaiting_report
        result["final"] = final
        if again:
            self._outcomes[job_id] = outcomes
        else:
            self._outcomes.pop(job_id, None)
        job_state = "waiting_retry" if again else ("awaiting_report" if awaiting_report else "done")
        self._finishing.append(({"attempt_id": attempt_id, "job_id": job_id, "result": result, "job_state": job_state,
                                 "next_attempt_at": next_at, "final": final, "pending": pending}, spec, p, again, next_at or now))

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
        self._refilling = True  # the round below refills these channels: no wake-up needed
        try:
            for row, spec, p, again, ready_at in finishing:
                lo, hi = self.cfg.limits.pause_after_call if spec["kind"] == "call" else (0.0, 0.0)
                self.bank.release(p.channel_id, cooldown=self.rng.uniform(lo, hi) if hi > 0 else 0.0,
                                  reason=f"{spec['kind']} {row['result'].get('outcome')}")
                self._callee_done(spec["callee"])
                if again:
                    self._enqueue(spec, ready_at=ready_at)
        finally:
            self._refilling = False
        self._guarded_round()
        starting, self._starting = self._starting, []
        now = self.clock()
        try:
            _, ids = self.store.finish_and_start([row for row, *_ in finishing], self._start_rows(starting), now)
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
        for row, *_ in finishing:
            self._notify(row["result"])
        self._nudge()  # retries queued and SIM pauses begun above are the loop's to time
        return self._launch(starting, ids, keep)

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
            self._dispatch_round()
        except Exception:
            logger.exception("dispatch round failed")
            asyncio.get_running_loop().call_later(COMMIT_RETRY_SECONDS, self._wake.set)  # channels already taken must run

    def _notify(self, result: dict[str, Any]) -> None:
        for cb in list(self.result_listeners):
            try:
                cb(result)
            except Exception:
                logger.exception("result listener failed")

    def _callee_done(self, callee: str) -> None:
        self._active_callees.discard(callee)
        blocked = self._blocked.pop(callee, None)
        if blocked:
            for job_id in blocked:
                spec = self._jobs.get(job_id)
                if spec is not None:
                    heapq.heappush(self._ready, (-int(spec.get("priority", 0)), next(self._seq), job_id))

    def _check_quarantine(self, spec: dict[str, Any], p: Placement, result: dict[str, Any], now: float) -> None:
        """A SIM whose attempts keep failing the way blocked SIMs fail is quarantined:
        calls released without alerting with a cause in ``quarantine.causes``, or SMS
        refused by the network as not subscribed (+CMS ERROR 50)."""
        q = self.cfg.quarantine
        is_call = spec["kind"] == "call" or spec.get("method") == "probe_call"
        if is_call:
            alerted = bool(result.get("alerting_at") or result.get("answered_at") or result.get("alerted"))
            cause = result.get("cause")
            blocked_like = not alerted and cause in q.causes
            why = f"cause {cause} without alerting"
        else:
            blocked_like = bool(result.get("sim_blocked"))
            why = "SMS refused: not subscribed"
            if not blocked_like and result.get("outcome") == "channel_error":
                return  # other SMS trouble says nothing either way
        runs = self._quarantine_runs[p.sim_id]
        if blocked_like:
            runs.append(f"job {spec['id']}: {why} at {iso(now)}")
            if len(runs) >= q.consecutive:
                evidence = tuple(runs)
                runs.clear()
                self.policy.quarantine(p.sim_id, evidence, now)
                self.store.log_event("sim_quarantined", p.sim_id, {"evidence": list(evidence)}, now)
                logger.warning("SIM %s quarantined: %s", p.sim_id, "; ".join(evidence))
        elif is_call or result.get("outcome") not in ("channel_error", "network_error"):
            runs.clear()

    # -- status reports (off the channel) -----------------------------------------------------------
    def _pending_record(self, p: Placement, attempt_id: int, spec: dict[str, Any], refs: list[int], first_only: bool) -> dict[str, Any]:
        now = self.clock()
        return {
            "channel_id": p.channel_id, "refs": refs, "attempt_id": attempt_id, "first_only": first_only,
            "deadline": now + self._report_timeout(first_only), "spec": spec,
            "placement": [p.channel_id, p.sim_id, p.msisdn, p.attempt], "sent_at": now,
        }

    def _hlr_extras(self, callee: str) -> dict[str, Any]:
        """An HLR result names the callee's operator when it is known (learnt for the
        number, or its prefix): neither a status report nor a release cause carries it."""
        operator = self.operator_of(callee)
        return {"operator": operator} if operator else {}

    def _report_timeout(self, first_only: bool) -> float:
        return self.cfg.sms.ping_timeout_seconds if first_only else self.cfg.sms.report_timeout_seconds

    def _rearm_reports(self, now: float) -> None:
        for job_id, item in self.store.pending_reports().items():
            p = Placement(*item["placement"])
            queues = [self.tracker.expect(p.sim_id, r) for r in item["refs"]]
            self._awaiting.add(job_id)
            self._background_task(self._await_reports(item["spec"], p, item["attempt_id"], queues, item["refs"],
                                                      item["first_only"], deadline=item["deadline"],
                                                      sent_at=item.get("sent_at")))

    async def _await_reports(self, spec: dict[str, Any], p: Placement, attempt_id: int, queues: list[asyncio.Queue[StatusReport]],
                             refs: list[int], first_only: bool, deadline: float | None = None,
                             sent_at: float | None = None) -> None:
        timeout = (deadline - self.clock()) if deadline else self._report_timeout(first_only)
        state, statuses = await await_delivery(queues, max(0.0, timeout), first_only=first_only)
        for r in refs:
            self.tracker.forget(p.sim_id, r)
        now = self.clock()
        base = {"job_id": spec["id"], "kind": spec["kind"], "callee": spec["callee"], "attempt": p.attempt,
                "channel_id": p.channel_id, "sim_id": p.sim_id, "number_shown": p.msisdn, "final": True,
                "tp_status": statuses, "at": iso(now)}
        if first_only:
            body = {**base, "method": "sms_ping", "outcome": classify_ping(statuses[0] if statuses else None).value,
                    **self._hlr_extras(spec["callee"])}
            if sent_at is not None:
                body["seconds"] = round(now - sent_at, 3)  # ping sent -> its report
        else:
            body = {**base, "outcome": {"delivered": "delivered", "failed": "failed"}.get(state, "no_report")}
        self.store.add_result(spec["id"], attempt_id, body, final=True, job_state="done", now=now)
        self._notify(body)
        self._awaiting.discard(spec["id"])

    # -- views ------------------------------------------------------------------------------------
    def stats(self) -> dict[str, Any]:
        return {
            "queued": len(self._jobs),
            "running": len(self._running),
            "awaiting_report": len(self._awaiting),
            "idle_channels": self._idle,
            "waiting_for": self.waiting_counts(),
            "decisions": self.decisions,
            "decision_us": round(self.decision_seconds / self.decisions * 1e6, 1) if self.decisions else None,
        }
