"""Fakes for driving the scheduler's core without an event loop: a clock that is a
float, a bank of channels kept in dicts, a store's history in dicts (h11's state tests
drive ``ConnectionState`` the same way)."""
from __future__ import annotations

import dataclasses
from types import SimpleNamespace
from typing import Any

from appliance.config import QuarantineSection, RetrySection, SmsSection
from appliance.jobs import Placement
from appliance.rotation import Decision, RotationPolicy, SimRef
from appliance.scheduler.core import Closing, SchedulerCore

T0 = 1_717_200_000.0  # 2024-06-01T00:00:00Z


@dataclasses.dataclass
class FakeChannels:
    """The bank's side (``core.Channels``): taking a channel makes it busy at once, as
    the bank's on-change callback does; switches succeed unless ``refuse_switch``."""

    core: SchedulerCore
    policy: RotationPolicy
    slots: dict[str, int] = dataclasses.field(default_factory=dict)  # sim_id -> slot
    refuse_switch: bool = False
    unsettled_now: bool = False
    taken: list[tuple[str, Decision]] = dataclasses.field(default_factory=list)
    switches: list[tuple[str, int, str]] = dataclasses.field(default_factory=list)
    switch_retry_at: float = T0 + 60.0

    def take(self, spec: dict[str, Any], decision: Decision) -> None:
        self.taken.append((spec["id"], decision))
        self.core.idle -= 1

    def switch(self, channel_id: str, slot: int, reason: str, now: float) -> bool:
        self.switches.append((channel_id, slot, reason))
        return not self.refuse_switch

    def slot_of(self, decision: Decision) -> int:
        return self.slots[decision.sim_id]

    def switch_not_before(self, channel_id: str, now: float) -> float:
        return self.switch_retry_at

    def unsettled(self) -> bool:
        return self.unsettled_now


class Box:
    """A core with a policy of ``channels`` one-SIM channels (``ch0``… holding ``s0``…,
    operator 26001), all idle, a fake store's history, and the shell's part of closing
    an attempt (release the channel, free the callee, queue the retry)."""

    def __init__(self, channels: int = 2, *, retry: dict[str, Any] | None = None,
                 quarantine: dict[str, Any] | None = None, now: float = T0) -> None:
        self.cfg = SimpleNamespace(retry=RetrySection(**(retry or {})),
                                   quarantine=QuarantineSection(**(quarantine or {})), sms=SmsSection())
        self.policy = RotationPolicy()
        self.shown: dict[str, tuple[str, ...]] = {}
        self.outcomes: dict[str, list[str]] = {}
        self.outcome_lookups: list[str] = []
        self.core = SchedulerCore(self.cfg, self.policy, shown_of=lambda c: self.shown.get(c, ()),
                                  outcomes_of=self._outcomes_of, operator_of=lambda n: None,
                                  learn_operator=lambda n, op: None)
        self.channels = FakeChannels(self.core, self.policy)
        self.specs: dict[str, dict[str, Any]] = {}
        self.msisdn: dict[str, str] = {}  # sim_id -> its number
        self.attempts: dict[str, int] = {}
        self.ended: list[dict[str, Any]] = []
        self.running: dict[str, tuple[dict[str, Any], Placement]] = {}
        for i in range(channels):
            self.add_channel(f"ch{i}", [f"s{i}"], now)

    def _outcomes_of(self, job_id: str) -> list[str]:
        self.outcome_lookups.append(job_id)
        return list(self.outcomes.get(job_id, []))

    def add_channel(self, channel_id: str, sims: list[str], now: float, *, operator: str = "26001") -> None:
        for slot, sim_id in enumerate(sims):
            self.msisdn[sim_id] = f"+486000{len(self.msisdn):05d}"
            self.policy.add_sim(SimRef(sim_id, self.msisdn[sim_id], operator, channel_id, slot), now=now)
            self.channels.slots[sim_id] = slot
        self.policy.set_channel(channel_id, idle=True, active_slot=0, now=now)
        self.core.idle += 1

    def job(self, job_id: str, kind: str = "call", callee: str | None = None, **fields: Any) -> dict[str, Any]:
        """Build and queue a job (a new callee each unless named)."""
        spec = {"id": job_id, "kind": kind, "callee": callee or f"+4860100{len(self.specs):04d}", **fields}
        self.specs[job_id] = spec
        self.core.enqueue(spec, spec.get("not_before") or 0.0, T0)
        return spec

    def round(self, now: float = T0) -> list[str]:
        """Run a round; returns the ids of the jobs it started (they are now running)."""
        before = len(self.channels.taken)
        self.ended = self.core.round(now, self.channels).ended
        started = []
        for job_id, d in self.channels.taken[before:]:
            n = self.attempts[job_id] = self.attempts.get(job_id, 0) + 1
            self.running[job_id] = (self.specs[job_id], Placement(d.channel_id, d.sim_id, d.msisdn, n))
            started.append(job_id)
        return started

    def finish(self, job_id: str, result: dict[str, Any], now: float, *, pending: dict[str, Any] | None = None) -> Closing:
        """Close the running job's attempt with ``result`` as the shell does."""
        spec, p = self.running.pop(job_id)
        closing = self.core.close(spec, p, 1, dict(result), now, pending=pending)
        self.policy.set_channel(p.channel_id, idle=True, active_slot=0, now=now)
        self.core.idle += 1
        self.core.queue.callee_done(spec["callee"])
        if closing.again:
            self.core.enqueue(spec, closing.ready_at, now)
        return closing
