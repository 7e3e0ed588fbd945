"""The scheduler's core: queue, dispatch rounds, and what a closed attempt means.

Pure and synchronous: no asyncio, no I/O of its own, no clock (every call takes
``now``). It is handed what it uses — the rotation policy, look-ups of the store's
history (``shown_of``, ``outcomes_of``) and, for a dispatch round, the bank's side
(``Channels``) — so it runs as well on fakes (tests/test_scheduler_core.py) as in the
appliance, where the shell (``shell.Scheduler``) writes what it decides to the store and
runs the executors. The rules themselves live beside it: ``retry`` (retried or final,
when), ``waits`` (why a job waits, the dead-end grace), quarantine as a lock rule of the
rotation policy (``rotation.locks.QuarantineRule``), ``reports`` and ``recovery``.
"""
from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any, Final, Protocol

from common.clock import iso

from ..jobs import Placement
from ..rotation import Decision, JobKind, Lock, Refusal, Request, RotationPolicy
from ..rotation.locks import QuarantineRule
from .attempts import barring, summary
from .queue import JobQueue
from .retry import RetryRules, after_attempt
from .waits import JobWait, dead_end

#: A dispatch round asks the policy at most this many times before yielding, so a long
#: queue of unplaceable jobs cannot starve the event loop.
MAX_CHOICES_PER_ROUND: Final = 256
#: Callees whose shown numbers are cached in memory (the store stays the truth).
SHOWN_CACHE: Final = 100_000
#: Shown numbers kept per callee: the store's ``shown_numbers`` default.
SHOWN_KEPT: Final = 50


class Channels(Protocol):
    """What a dispatch round uses of the bank (the shell's ``channels.BankSide``)."""

    def take(self, spec: dict[str, Any], decision: Decision) -> None:
        """Acquire the decision's channel for the job (the core's ``idle`` drops)."""

    def switch(self, channel_id: str, slot: int, reason: str, now: float) -> bool:
        """Start a slot switch unless one failed lately; whether one is under way."""

    def slot_of(self, decision: Decision) -> int:
        """The slot that holds the decision's SIM."""

    def switch_not_before(self, channel_id: str, now: float) -> float:
        """When the channel may be asked to switch again."""

    def unsettled(self) -> bool:
        """Some modem is still opening or switching: it may yet bring a SIM."""


@dataclasses.dataclass(slots=True)
class Closing:
    """An attempt closed in memory, to be written (``row``: ``Store.finish_attempts``)
    with the round that refills its channel."""

    row: dict[str, Any]
    spec: dict[str, Any]
    placement: Placement
    again: bool  # the job is queued again, at ready_at
    ready_at: float
    lock: Lock | None  # a lock rule fired on the SIM
    quarantined: tuple[str, ...] | None  # the SIM was quarantined, with this evidence


@dataclasses.dataclass(slots=True)
class Round:
    """What a dispatch round did that the shell must carry out or know."""

    ended: list[dict[str, Any]]  # results of jobs that ended without an attempt
    more: bool  # it started jobs and more may fit: run another round


class SchedulerCore:
    def __init__(
        self,
        cfg: Any,
        policy: RotationPolicy,
        *,
        shown_of: Callable[[str], tuple[str, ...]],
        outcomes_of: Callable[[str], list[str]],
        operator_of: Callable[[str], str | None],
        learn_operator: Callable[[str, str], None],
    ) -> None:
        self.cfg = cfg  # ApplianceConfig: the [retry] and [quarantine] sections
        self.policy = policy
        self.shown_of = shown_of
        self.outcomes_of = outcomes_of
        self.operator_of = operator_of
        self.learn_operator = learn_operator
        self.queue = JobQueue()
        self.quarantine_rule = QuarantineRule(frozenset(cfg.quarantine.causes), int(cfg.quarantine.consecutive))
        self.retry_rules = RetryRules.of(cfg.retry, None)  # a job's own ``retry`` overrides it
        self.idle = 0  # idle channels (the shell counts the bank's moves)
        self.decisions = 0
        self.decision_seconds = 0.0
        self.recheck_at: float | None = None  # when a dead-end wait reaches its grace (set per round)
        self._outcomes: dict[str, list[str | None]] = {}  # job id -> outcomes of its attempts so far
        self._shown: dict[str, tuple[str, ...]] = {}

    # -- the queue ----------------------------------------------------------------------
    def enqueue(self, spec: dict[str, Any], ready_at: float, now: float) -> bool:
        """Queue a job; returns whether it waits for ``ready_at`` (a time to come)."""
        learnt = (spec.get("hints") or {}).get("callee_operator")
        if learnt:
            self.learn_operator(spec["callee"], learnt)
        return self.queue.put(spec, ready_at, now)

    def unstarted(self, job_id: str, outcome: str, detail: str, now: float, **extra: Any) -> dict[str, Any] | None:
        """The result of a queued job that ends without an attempt (None if not queued)."""
        spec = self.queue.jobs.get(job_id)
        if spec is None:
            return None
        return {"job_id": spec["id"], "kind": spec["kind"], "callee": spec["callee"], "outcome": outcome,
                "detail": detail, "final": True, "at": iso(now), **extra}

    def waiting(self, job_id: str) -> dict[str, Any] | None:
        """Why a queued job has not started, or None if it is not queued."""
        if job_id not in self.queue.jobs:
            return None
        return self.queue.waits.view(job_id, self.idle)

    def waiting_counts(self) -> dict[str, int]:
        return self.queue.waits.counts(self.queue.jobs, self.idle)

    def next_time(self) -> float | None:
        """When the clock alone next lets a job go: a waiting job's time, a SIM's cap,
        pause or lock ending (the policy's wake-up), a dead-end wait reaching its grace."""
        times = [t for t in (self.queue.next_time(), self.policy.next_wakeup(), self.recheck_at) if t is not None]
        return min(times) if times else None

    # -- a dispatch round ------------------------------------------------------------------
    def round(self, now: float, channels: Channels) -> Round:
        """Promote due jobs, start the slot switches the policy plans, then give each
        ready job a SIM while channels are idle: start it, wait for its slot switch, or
        note why it waits (ending it when its deadline passed or its wait is a dead end)."""
        queue, policy = self.queue, self.policy
        self.recheck_at = None
        queue.promote(now)
        ended: list[dict[str, Any]] = []
        deferred: list[dict[str, Any]] = []
        asked = started = 0
        for ch_id, slot in policy.plan_switches(now):
            channels.switch(ch_id, slot, "planned by rotation", now)
        while self.idle > 0 and asked < MAX_CHOICES_PER_ROUND:
            spec = queue.pop_ready()
            if spec is None:
                break
            job_id = spec["id"]
            deadline = spec.get("deadline")
            if deadline is not None and now >= float(deadline):
                w = queue.waits.get(job_id)
                detail = "deadline passed before the job could start"
                ended.append(self._end(spec, "expired", f"{detail} (waiting for {w.code}: {w.detail})" if w else detail, now))
                continue
            if queue.callee_busy(spec, now):
                continue
            asked += 1
            t0 = time.perf_counter()
            decision = policy.choose(self.request(spec), now)
            self.decision_seconds += time.perf_counter() - t0
            self.decisions += 1
            if isinstance(decision, Refusal):
                body = self._refused(spec, decision, channels, now)
                if body is None:
                    deferred.append(spec)
                else:
                    ended.append(body)
                continue
            if decision.needs_switch:
                self._await_switch(spec, decision, channels, now)
                deferred.append(spec)
                continue
            queue.take(spec)
            policy.record_start(decision.sim_id, JobKind(spec["kind"]), now)
            channels.take(spec, decision)
            started += 1
        # A refusal's retry_at is only when the *clock* may help; a channel coming free
        # may help sooner. Refused jobs go back to the ready heap: the next round runs on
        # the next channel event or at the policy's next wake-up, whichever comes first.
        for spec in deferred:
            if spec["id"] in queue.jobs:
                queue.push_ready(spec)
        return Round(ended, bool(started and queue.has_ready and self.idle > 0))

    def _await_switch(self, spec: dict[str, Any], d: Decision, channels: Channels, now: float) -> None:
        slot = channels.slot_of(d)
        if channels.switch(d.channel_id, slot, f"for job {spec['id']}", now):
            self.queue.waits.note(spec["id"], JobWait.SLOT_SWITCH.value, f"channel {d.channel_id} is switching to slot {slot}", now)
            return
        not_before = channels.switch_not_before(d.channel_id, now)
        self.queue.waits.note(spec["id"], JobWait.SLOT_SWITCH_BACKOFF.value,
                              f"its SIM {d.sim_id} sits in slot {slot} of channel {d.channel_id}, whose last "
                              f"slot switch failed; next try after {iso(not_before)}", now)

    def _refused(self, spec: dict[str, Any], refusal: Refusal, channels: Channels, now: float) -> dict[str, Any] | None:
        """Note why the job waits; end it ``no_eligible_sim`` when no SIM of the bank can
        serve it and that has held past the grace with every modem up (``waits.dead_end``).
        Returns the job's result if it ended."""
        w = self.queue.waits.note(spec["id"], refusal.waiting_for.value, refusal.reason, now)
        if not refusal.dead_end:
            return None
        end, recheck = dead_end(w, now, channels.unsettled())
        if recheck is not None:
            self.recheck_at = recheck if self.recheck_at is None else min(self.recheck_at, recheck)
        if not end:
            return None
        return self._end(spec, "no_eligible_sim", refusal.reason, now, waiting_for=refusal.waiting_for.value)

    def _end(self, spec: dict[str, Any], outcome: str, detail: str, now: float, **extra: Any) -> dict[str, Any]:
        body = self.unstarted(spec["id"], outcome, detail, now, **extra)
        self.queue.remove(spec["id"])
        assert body is not None
        return body

    # -- what the policy is asked -------------------------------------------------------------
    def request(self, spec: dict[str, Any]) -> Request:
        hints = spec.get("hints") or {}
        callee = spec["callee"]
        # hints.operator is the SIM operator the caller prefers (the controller sends the
        # callee's own, for on-net calls): a preference that ranks, not a filter, unless
        # the job lists it in hints.require. A filter would leave the job waiting for ever
        # when that operator's few SIMs are locked or were this callee's last number.
        wanted = hints.get("operator")
        required = "operator" in (hints.get("require") or ())
        return Request(
            callee=callee,
            kind=JobKind(spec["kind"]),
            callee_operator=hints.get("callee_operator") or wanted or self.operator_of(callee),
            required_operator=wanted if required else None,
            pool=hints.get("pool"),
            fixed_msisdn=hints.get("fixed_number"),
            shown=self.shown(callee),
        )

    def shown(self, callee: str) -> tuple[str, ...]:
        """The numbers this callee was shown, oldest first (cached; the store is the truth)."""
        cached = self._shown.get(callee)
        if cached is None:
            cached = self.shown_of(callee)
            if len(self._shown) >= SHOWN_CACHE:
                self._shown.pop(next(iter(self._shown)))
            self._shown[callee] = cached
        return cached

    def note_shown(self, callee: str, msisdn: str) -> None:
        """An attempt showing ``msisdn`` was written: a cached history gets it too."""
        cached = self._shown.get(callee)
        if cached is not None:
            self._shown[callee] = (cached + (msisdn,))[-SHOWN_KEPT:]

    # -- closing an attempt ----------------------------------------------------------------
    def close(self, spec: dict[str, Any], p: Placement, attempt_id: int, result: dict[str, Any], now: float, *,
              pending: dict[str, Any] | None = None) -> Closing:
        """Tell the policy (lock rules, quarantine), ask the retry policy, and build the
        row that closes the attempt; ``pending`` (status reports still owed) goes in the
        same row, so a restart re-arms exactly the waits whose attempts were closed."""
        job_id = spec["id"]
        lock = self.policy.record_end(p.sim_id, summary(spec["kind"], result), now)
        quarantined = self.policy.record_barring(p.sim_id, job_id, barring(spec, result), self.quarantine_rule, now)
        override = spec.get("retry")
        rules = RetryRules.of(self.cfg.retry, override) if override else self.retry_rules
        outcome = result.get("outcome")
        awaiting_report = pending is not None
        if outcome in rules.retry_outcomes and not awaiting_report and job_id not in self._outcomes:
            self._outcomes[job_id] = list(self.outcomes_of(job_id))
        outcomes = self._outcomes.get(job_id, [None] * (p.attempt - 1)) + [outcome]
        verdict = after_attempt(rules, outcomes, awaiting_report=awaiting_report, now=now)
        if verdict.again:
            result["retry_at"] = iso(verdict.next_at)
            self._outcomes[job_id] = outcomes
        else:
            self._outcomes.pop(job_id, None)
        result["final"] = verdict.final
        row = {"attempt_id": attempt_id, "job_id": job_id, "result": result, "job_state": verdict.state.value,
               "next_attempt_at": verdict.next_at, "final": verdict.final, "pending": pending}
        return Closing(row, spec, p, verdict.again, verdict.next_at or now, lock, quarantined)
