"""RotationPolicy: which SIM (and so which channel) places a call, SMS or HLR job.

The policy is pure: no I/O, no asyncio, no clock (every call takes ``now``), randomness
only from the injected ``random.Random``. The bank tells it what the channels do
(``set_channel``), the scheduler asks (``choose``) and reports (``record_start``,
``record_end``, ``record_balance``), the store persists ``snapshot()``.

How a SIM stands, per traffic class (voice = calls and HLR probes, SMS):

* PLACED — ready by every per-SIM rule, not in flight, its modem idle: it sits in the
  *placed* heaps of its scopes, keyed ``(needs_switch, last_used, seq)``, so the top of a
  heap is an active-slot SIM unused for longest, and SIMs of inactive slots come after
  every active-slot one.
* WAITING — a cap, pause or timed lock holds it until a known time: it sits in the
  *waiting* heaps of its scopes (keyed by that time, to answer ``retry_at``) and in the
  timer heap, which moves it back when the time comes.
* DORMANT — in flight, its modem busy, quarantined or locked until released: no entry;
  the event that ends the condition re-files it.

A scope is ``(pool or None, operator)``: every SIM is filed under ``(None, op)`` and
``(pool, op)`` for each of its pools. A request looks at one heap per operator of its
scope (operators are few — a country has a handful), and operator caps are checked there,
once per operator, instead of touching every SIM of a capped operator.

Choice, best first (a request's hints and the last-number rule filter before ranking):

1. an active-slot SIM before one that needs a slot switch;
2. a number never shown to the callee before a number he was shown;
3. on-net (SIM operator = callee operator) before off-net;
4. among shown numbers, the least recently shown;
5. the SIM used least recently (spreads traffic evenly over the bank).

Cost per decision: one heap walk per operator that skips at most the callee's shown
numbers (k, small) plus stale entries (amortised O(1)), each step O(log n); shown numbers
are looked up directly, O(k). Recording a start or end re-files the ≤ 4 SIMs of one modem.
"""
from __future__ import annotations

import itertools
import math
from bisect import bisect_right
import random
from collections.abc import Iterable
from heapq import heappop, heappush
from typing import Any, NamedTuple

from common.clock import iso
from common.phone import mask

from .heaps import LazyHeap
from .locks import LOW_BALANCE, Barring, BarringRuns, QuarantineRule, Streaks
from .model import (
    DAY_SECONDS,
    HOUR_SECONDS,
    TRAFFIC_OF,
    AttemptSummary,
    Decision,
    JobKind,
    Lock,
    LockRules,
    Refusal,
    Request,
    SimLimits,
    SimRef,
    SimState,
    Traffic,
    WaitingFor,
)
from .windows import INF, Usage, WindowClock

SNAPSHOT_VERSION = 1
_TRAFFICS = (Traffic.VOICE, Traffic.SMS)
_TRAFFIC_INDEX = tuple((tr, tr.value) for tr in _TRAFFICS)  # enum .value is slow in a hot loop
_VOICE = Traffic.VOICE.value
_PLACED = "p"  # (PLACED, needs_switch): in the placed heaps
_WAITING = "w"  # (WAITING, ready_at): in the waiting heaps and the timer heap
_HELD: tuple[str, Any] = ("h", None)  # ready by its own rules, but its modem is busy: no entry


#: The wait a SIM's standing stands for when it is the first SIM to qualify again.
_WAITING_FOR_STATE: dict[SimState, WaitingFor] = {
    SimState.QUARANTINED: WaitingFor.SIMS_LOCKED,
    SimState.LOCKED: WaitingFor.SIMS_LOCKED,
    SimState.BUSY: WaitingFor.CHANNELS_BUSY,
    SimState.CAPPED: WaitingFor.CAPS,
    SimState.PAUSED: WaitingFor.SIM_PAUSE,
    SimState.READY: WaitingFor.CHANNELS_BUSY,  # ready by its own rules: its modem is busy
}


def _iso(t: float) -> str:
    return iso(t, ms=False)


class _Channel:
    __slots__ = ("channel_id", "idle", "active_slot", "in_flight", "sims")

    def __init__(self, channel_id: str) -> None:
        self.channel_id = channel_id
        self.idle = False  # unknown modems are not idle until the bank says so
        self.active_slot = 0
        self.in_flight = 0
        self.sims: dict[int, _Sim] = {}


class _Operator:
    __slots__ = ("usage", "limits")

    def __init__(self, limits: SimLimits | None) -> None:
        self.usage = Usage()
        self.limits = limits


class _Sim:
    __slots__ = (
        "ref", "limits", "channel", "seq", "usage", "streaks", "locks", "quarantine",
        "in_flight", "last_used", "pause_until", "min_pause_until", "token", "where",
        "placed", "waiting",
    )

    def __init__(self, ref: SimRef, limits: SimLimits, channel: _Channel, seq: int) -> None:
        self.ref = ref
        self.limits = limits
        self.channel = channel
        self.seq = seq
        self.usage = Usage()
        self.streaks = Streaks()
        self.locks: dict[str, Lock] = {}
        self.quarantine: tuple[str, ...] | None = None
        self.in_flight = 0
        self.last_used = -INF
        self.pause_until = -INF  # pause after the last call
        self.min_pause_until = -INF  # minimum start-to-start spacing
        self.token = [0, 0]  # per Traffic.value: the live token of this SIM's heap entries
        self.where: list[tuple[str, Any] | None] = [None, None]  # PLACED / WAITING / HELD / None = dormant
        self.placed: tuple[list[LazyHeap], list[LazyHeap]] = ([], [])
        self.waiting: tuple[list[LazyHeap], list[LazyHeap]] = ([], [])


class _Standing(NamedTuple):
    """Why a SIM is not ready for a class now: the time each kind of rule lets go."""

    quarantined: bool
    lock_until: float  # INF = until released; -INF = no lock
    cap_until: float
    cap_why: str
    pause_until: float

    @property
    def ready_at(self) -> float:
        if self.quarantined:
            return INF
        return max(self.lock_until, self.cap_until, self.pause_until)


class RotationPolicy:
    """See the module docstring; docs/rotation.md lists every parameter."""

    def __init__(
        self,
        *,
        limits: SimLimits = SimLimits(),
        lock_rules: LockRules = LockRules(),
        operator_limits: dict[str, SimLimits] | None = None,
        tz: str = "UTC",
        rng: random.Random | None = None,
    ) -> None:
        self._limits = limits
        self._lock_rules = lock_rules
        self._operator_limits = dict(operator_limits or {})
        self._clock = WindowClock(tz)
        self._rng = rng if rng is not None else random.Random()
        self._sims: dict[str, _Sim] = {}
        self._by_msisdn: dict[str, _Sim] = {}
        self._channels: dict[str, _Channel] = {}
        self._operators: dict[str, _Operator] = {}
        self._placed: tuple[dict[tuple[str | None, str], LazyHeap], ...] = ({}, {})
        self._waiting: tuple[dict[tuple[str | None, str], LazyHeap], ...] = ({}, {})
        self._scope_ops: dict[str | None, dict[str, int]] = {}  # pool -> operator -> SIM count
        self._timers: list[tuple[float, int, str, int, int]] = []  # (t, seq, sim_id, traffic, token)
        self._switch_wanted: dict[str, int] = {}  # channel_id -> slot to switch to
        self._retired: dict[str, dict] = {}  # state of removed / not yet added SIMs
        self._seq = itertools.count()
        self._now = -INF
        self._moves = 0  # bumped whenever a SIM may change place: the census memo's version
        self._census_memo: dict[tuple[str | None, str | None, int], tuple[int, tuple[int, int]]] = {}
        self._live = tuple(self._live_check(tr.value) for tr in _TRAFFICS)
        self._barring = BarringRuns()

    # ------------------------------------------------------------------ the bank's side
    def add_sim(self, sim: SimRef, *, limits: SimLimits | None = None, now: float) -> None:
        if sim.sim_id in self._sims:
            raise ValueError(f"SIM {sim.sim_id!r} is already in the policy")
        if sim.msisdn in self._by_msisdn:
            raise ValueError(f"msisdn {mask(sim.msisdn)} of SIM {sim.sim_id!r} belongs to SIM {self._by_msisdn[sim.msisdn].ref.sim_id!r}")
        ch = self._channel(sim.channel_id)
        if sim.slot in ch.sims:
            raise ValueError(f"slot {sim.slot} of channel {sim.channel_id!r} already holds SIM {ch.sims[sim.slot].ref.sim_id!r}")
        s = _Sim(sim, limits if limits is not None else self._limits, ch, next(self._seq))
        ch.sims[sim.slot] = s
        self._sims[sim.sim_id] = s
        self._by_msisdn[sim.msisdn] = s
        if sim.operator not in self._operators:
            self._operators[sim.operator] = _Operator(self._operator_limits.get(sim.operator))
        for pool in (None, *sorted(sim.pools)):
            ops = self._scope_ops.setdefault(pool, {})
            ops[sim.operator] = ops.get(sim.operator, 0) + 1
            for tr in _TRAFFICS:
                for index, mine in ((self._placed, s.placed), (self._waiting, s.waiting)):
                    heap = index[tr.value].setdefault((pool, sim.operator), LazyHeap())
                    heap.members += 1
                    mine[tr.value].append(heap)
        saved = self._retired.pop(sim.sim_id, None)
        if saved is not None:
            self._load_sim(s, saved)
        self._refile_channel(ch, now, s)

    def remove_sim(self, sim_id: str) -> None:
        """Forget a SIM (pulled out, modem gone). Its counters and locks are kept aside and
        come back if the same SIM is added again, and they stay in ``snapshot()``."""
        s = self._sim(sim_id)
        self._retired[sim_id] = self._dump_sim(s)
        del self._sims[sim_id]
        del self._by_msisdn[s.ref.msisdn]
        ch = s.channel
        del ch.sims[s.ref.slot]
        ch.in_flight -= s.in_flight
        for pool in (None, *s.ref.pools):
            ops = self._scope_ops[pool]
            ops[s.ref.operator] -= 1
            if not ops[s.ref.operator]:
                del ops[s.ref.operator]
        for tr in _TRAFFICS:
            for heap in (*s.placed[tr.value], *s.waiting[tr.value]):
                heap.members -= 1
        self._moves += 1
        self._update_switch(ch)

    def set_channel(self, channel_id: str, *, idle: bool, active_slot: int, now: float) -> None:
        """The bank's view of a modem: idle (registered, no call, not switching) and which
        slot is active. A modem is not idle until this says so."""
        ch = self._channel(channel_id)
        ch.idle = idle
        ch.active_slot = active_slot
        self._advance(now)
        self._refile_channel(ch, now)

    # ------------------------------------------------------------------ deciding
    def choose(self, req: Request, now: float) -> Decision | Refusal:
        self._advance(now)
        traffic = TRAFFIC_OF[req.kind]
        if req.fixed_msisdn is not None:
            return self._choose_fixed(req, traffic, now)
        ops_in_scope = self._scope_ops.get(req.pool)
        if not ops_in_scope:
            return Refusal(f"no SIM in {self._scope_words(req)}", None, WaitingFor.NO_SIM)
        if req.required_operator is not None:
            if req.required_operator not in ops_in_scope:
                return Refusal(f"no SIM in {self._scope_words(req)}", None, WaitingFor.NO_SIM)
            ops: Iterable[str] = (req.required_operator,)
        else:
            ops = ops_in_scope
        trv = traffic.value
        recency = {m: i for i, m in enumerate(req.shown)}  # msisdn -> when last shown
        last = req.shown[-1] if req.shown else None
        callee_op = req.callee_operator
        placed = self._placed[trv]
        best_key: tuple | None = None
        best: _Sim | None = None
        capped: dict[str, tuple[float, str]] = {}
        for op in ops:
            op_ready, op_why = self._op_ready(op, traffic, now)
            if op_ready > now:
                capped[op] = (op_ready, op_why)
                continue
            entry = self._walk(placed[(req.pool, op)], trv, recency)
            if entry is not None:
                key = (entry[0], 0, op != callee_op, 0, entry[1], entry[2])
                if best_key is None or key < best_key:
                    best_key, best = key, self._sims[entry[3]]
        for msisdn, when in recency.items():  # numbers shown before: O(k) direct look-ups
            if msisdn == last:
                continue
            s = self._by_msisdn.get(msisdn)
            if s is None or not self._in_scope(s, req) or s.ref.operator in capped:
                continue
            where = s.where[trv]
            if where is None or where[0] != _PLACED:
                continue
            key = (where[1], 1, s.ref.operator != callee_op, when, s.last_used, s.seq)
            if best_key is None or key < best_key:
                best_key, best = key, s
        if best is not None and best_key is not None:
            return self._decision(best, best_key, req)
        return self._refusal(req, traffic, ops, capped, last, now)

    def _choose_fixed(self, req: Request, traffic: Traffic, now: float) -> Decision | Refusal:
        m = req.fixed_msisdn
        assert m is not None
        s = self._by_msisdn.get(m)
        if s is None:
            return Refusal(f"fixed number {mask(m)} is not a SIM of this bank", None, WaitingFor.NO_SIM)
        if not self._in_scope(s, req):
            return Refusal(f"fixed number {mask(m)} is not in {self._scope_words(req)}", None, WaitingFor.NO_SIM)
        op_ready, op_why = self._op_ready(s.ref.operator, traffic, now)
        where = s.where[traffic.value]
        if op_ready <= now and where is not None and where[0] == _PLACED:
            key = (where[1], 0, s.ref.operator != req.callee_operator, 0, s.last_used, s.seq)
            return self._decision(s, key, req, fixed=True)
        parts = []
        retry: float | None = None
        waiting_for = WaitingFor.CAPS
        if op_ready > now:
            parts.append(f"operator {s.ref.operator} is capped ({op_why}) until {_iso(op_ready)}")
        standing = self._standing(s, traffic, now)
        state = self._state_of(s, standing, now)
        if where is not None and where[0] == _WAITING:
            retry = max(where[1], op_ready)
            parts.append(f"its SIM {s.ref.sim_id} is {state.value} until {_iso(where[1])}")
            waiting_for = _WAITING_FOR_STATE.get(state, WaitingFor.CAPS)
        elif where is None or where is _HELD:
            parts.append(f"its SIM {s.ref.sim_id} is {state.value if state is not SimState.READY else 'on a busy modem'}")
            waiting_for = _WAITING_FOR_STATE.get(state, WaitingFor.CHANNELS_BUSY)
        else:
            retry = op_ready
        return Refusal(f"fixed number {mask(m)} cannot be used now: " + "; ".join(parts), retry, waiting_for)

    def _decision(self, s: _Sim, key: tuple, req: Request, *, fixed: bool = False) -> Decision:
        needs_switch, shown, off_net, when = key[0], key[1], key[2], key[3]
        if fixed:
            why = "the job fixes this number"
        elif shown:
            ago = len(req.shown) - when
            why = f"every free number was shown before; least recently shown ({ago} attempts ago)"
        else:
            why = "a number never shown to this callee"
        why += f", {'off-net' if off_net else 'on-net'} ({s.ref.operator})"
        if needs_switch:
            why += f", after switching channel {s.channel.channel_id} to slot {s.ref.slot} (no active-slot SIM qualifies)"
        else:
            why += ", least recently used"
        return Decision(s.ref.sim_id, s.channel.channel_id, s.ref.msisdn, bool(needs_switch), not off_net, why)

    def _refusal(
        self, req: Request, traffic: Traffic, ops: Iterable[str], capped: dict[str, tuple[float, str]],
        last: str | None, now: float,
    ) -> Refusal:
        trv = traffic.value
        skip_last = {last: 0} if last is not None else {}
        first: tuple[float, str, _Sim | None] | None = None  # (time, operator, SIM waited for)
        for op in ops:
            op_ready = capped[op][0] if op in capped else now
            sim_t: float | None = None
            waited: _Sim | None = None
            if op in capped and self._walk(self._placed[trv][(req.pool, op)], trv, skip_last) is not None:
                sim_t = now
            else:
                entry = self._walk(self._waiting[trv][(req.pool, op)], trv, skip_last)
                if entry is not None:
                    sim_t, waited = entry[0], self._sims[entry[-2]]
            if sim_t is not None:
                t = max(op_ready, sim_t)
                if first is None or t < first[0]:
                    first = (t, op, waited if sim_t >= op_ready else None)
        parts = [f"operator {op} capped ({why}) until {_iso(t)}" for op, (t, why) in sorted(capped.items())]
        last_free = False
        if last is not None:
            s = self._by_msisdn.get(last)
            w = s.where[trv] if s is not None else None
            if s is not None and self._in_scope(s, req) and w is not None and w[0] == _PLACED:
                parts.append(f"the only free number is {mask(last)}, the one this callee saw last")
                last_free = True
        if first is None:
            busy, blocked = self._census(req, trv)
            if busy:
                waiting_for = WaitingFor.CHANNELS_BUSY
                parts.append(f"{busy} SIM(s) in flight or on a modem that is busy, switching or down")
            elif last_free:
                waiting_for = WaitingFor.CALLEE_LAST_NUMBER
            elif blocked:
                waiting_for = WaitingFor.OPERATOR_SIMS_LOCKED if req.required_operator else WaitingFor.SIMS_LOCKED
                parts.append(f"{blocked} SIM(s) quarantined or locked until released")
            else:
                waiting_for = WaitingFor.NO_SIM
            return Refusal(f"no SIM in {self._scope_words(req)} qualifies: " + "; ".join(parts), None, waiting_for)
        retry, op, waited = first
        if waited is not None:
            standing = self._standing(waited, traffic, now)
            state = self._state_of(waited, standing, now)
            why = f" ({standing.cap_why})" if state is SimState.CAPPED and standing.cap_why else ""
            parts.append(f"the first to qualify is SIM {waited.ref.sim_id}, {state.value}{why} until {_iso(retry)}")
            waiting_for = _WAITING_FOR_STATE.get(state, WaitingFor.CAPS)
            if waiting_for is WaitingFor.SIMS_LOCKED and req.required_operator:
                waiting_for = WaitingFor.OPERATOR_SIMS_LOCKED
        else:
            parts.append(f"the first SIM qualifies when operator {op}'s cap lifts at {_iso(retry)}")
            waiting_for = WaitingFor.CAPS
        return Refusal(f"no SIM in {self._scope_words(req)} qualifies: " + "; ".join(parts), retry, waiting_for)

    def _census(self, req: Request, trv: int) -> tuple[int, int]:
        """(busy, blocked) SIMs of the request's scope that no heap holds: busy = in
        flight or on a modem that is not free (an event will bring them back); blocked =
        quarantined or locked until released (only a person will). Asked only when no SIM
        is placed or waiting, so the O(SIMs in scope) walk is memoised until any SIM moves."""
        key = (req.pool, req.required_operator, trv)
        hit = self._census_memo.get(key)
        if hit is not None and hit[0] == self._moves:
            return hit[1]
        busy = blocked = 0
        for s in self._sims.values():
            if not self._in_scope(s, req):
                continue
            where = s.where[trv]
            if s.in_flight or where is _HELD:
                busy += 1
            elif where is None:
                blocked += 1
        self._census_memo[key] = (self._moves, (busy, blocked))
        return busy, blocked

    # ------------------------------------------------------------------ the scheduler's reports
    def record_start(self, sim_id: str, kind: JobKind, now: float) -> None:
        """A job started on this SIM: it counts toward every cap at once, and the modem is
        busy until the bank says it is idle again (``set_channel``)."""
        s = self._sim(sim_id)
        traffic = TRAFFIC_OF[kind]
        ch = s.channel
        ch.active_slot = s.ref.slot  # a job runs on the active slot: the bank switched
        ch.idle = False
        s.in_flight += 1
        ch.in_flight += 1
        s.last_used = now
        s.usage.record_start(traffic, now, s.limits.windows, self._clock)
        op = self._operators[s.ref.operator]
        if op.limits is not None:
            op.usage.record_start(traffic, now, op.limits.windows, self._clock)
        if traffic is Traffic.VOICE:
            s.min_pause_until = now + s.limits.min_pause_seconds
        self._refile_channel(ch, now, s)

    def record_end(self, sim_id: str, summary: AttemptSummary, now: float) -> Lock | None:
        """A job ended. Starts the pause after a call, counts talk time, runs the lock
        rules; returns the Lock if one fired (with its evidence). The modem stays busy for
        the policy until the bank's next ``set_channel(idle=True)``."""
        s = self._sim(sim_id)
        ch = s.channel
        if s.in_flight:
            s.in_flight -= 1
            ch.in_flight -= 1
        if TRAFFIC_OF[summary.kind] is Traffic.VOICE:
            if summary.answered and summary.talk_seconds > 0:
                s.usage.record_talk(summary.talk_seconds, now)
                op = self._operators[s.ref.operator]
                if op.limits is not None:
                    op.usage.record_talk(summary.talk_seconds, now)
            lo, hi = s.limits.pause_after_call
            pause = lo if lo == hi else self._rng.uniform(lo, hi)
            s.pause_until = max(s.pause_until, now + pause)
        lock: Lock | None = None
        fired = s.streaks.observe(now, summary, self._lock_rules)
        if fired is not None:
            rule, evidence = fired
            seconds = self._lock_rules.lock_seconds
            lock = Lock(sim_id, rule, None if seconds is None else now + seconds, evidence)
            s.locks[rule] = lock
        self._refile(s, now, True)  # the modem stays busy: its other SIMs do not move
        self._update_switch(ch)
        return lock

    def record_balance(self, sim_id: str, balance: float, now: float) -> Lock | None:
        """A USSD balance reading. Below ``LockRules.min_balance`` the SIM is locked until a
        later reading is back above it (a top-up) or it is released."""
        s = self._sim(sim_id)
        threshold = self._lock_rules.min_balance
        if threshold is None:
            return None
        if balance < threshold:
            lock = Lock(sim_id, LOW_BALANCE, None, (f"{_iso(now)} USSD balance {balance:g} below {threshold:g}",))
            s.locks[LOW_BALANCE] = lock
            self._refile_channel(s.channel, now, s)
            return lock
        if s.locks.pop(LOW_BALANCE, None) is not None:
            self._refile_channel(s.channel, now, s)
        return None

    def record_barring(self, sim_id: str, job_id: str, sign: Barring, rule: QuarantineRule, now: float) -> tuple[str, ...] | None:
        """Quarantine's lock rule (``locks.QuarantineRule``): counts an attempt's signs of
        a barred SIM and quarantines the SIM when the run reaches the rule's length;
        returns the evidence if it did."""
        evidence = self._barring.observe(sim_id, job_id, now, sign, rule)
        if evidence is not None:
            self.quarantine(sim_id, evidence, now)
        return evidence

    def quarantine(self, sim_id: str, evidence: tuple[str, ...], now: float) -> None:
        """The bank judged the SIM blocked (e.g. calls failing with causes {21, 50, 57, 8}
        without alerting): it places nothing until ``release``."""
        s = self._sim(sim_id)
        s.quarantine = tuple(evidence)
        self._refile_channel(s.channel, now, s)

    def release(self, sim_id: str, now: float) -> None:
        """Lift quarantine and every lock, and restart the lock rules' streaks."""
        s = self._sim(sim_id)
        s.quarantine = None
        s.locks.clear()
        s.streaks.clear()
        self._refile_channel(s.channel, now, s)

    # ------------------------------------------------------------------ questions
    def knows(self, sim_id: str) -> bool:
        """Whether the SIM is in the policy (added and not removed)."""
        return sim_id in self._sims

    def state(self, sim_id: str, now: float) -> SimState:
        """The SIM's standing for calls (voice traffic)."""
        self._advance(now)
        s = self._sim(sim_id)
        return self._state_of(s, self._standing(s, Traffic.VOICE, now), now)

    def locks(self, sim_id: str, now: float) -> tuple[Lock, ...]:
        """The SIM's locks in force (with their evidence)."""
        s = self._sim(sim_id)
        self._standing(s, Traffic.VOICE, now)  # drops expired locks
        return tuple(s.locks.values())

    def usage(self, sim_id: str, now: float) -> dict[str, Any]:
        """One SIM as the technician page shows it: starts in the rolling hour and day per
        class (what the caps count; HLR probes count as calls), talk seconds in the day,
        last use, its standing, quarantine evidence, locks, and the caps it is held to."""
        s = self._sim(sim_id)
        state = self.state(sim_id, now)
        voice, sms = s.usage.starts
        s.usage._purge_talk(now)
        lim = s.limits
        return {
            "state": state.value,
            "calls_hour": len(voice) - bisect_right(voice, now - HOUR_SECONDS),  # starts are in time order
            "calls_day": len(voice) - bisect_right(voice, now - DAY_SECONDS),
            "sms_hour": len(sms) - bisect_right(sms, now - HOUR_SECONDS),
            "sms_day": len(sms) - bisect_right(sms, now - DAY_SECONDS),
            "talk_seconds_day": round(s.usage.talk_sum, 1),
            "last_used": None if math.isinf(s.last_used) else s.last_used,
            "quarantine": None if s.quarantine is None else list(s.quarantine),
            "locks": [{"rule": lk.rule, "until": lk.until, "evidence": list(lk.evidence)} for lk in self.locks(sim_id, now)],
            "limits": {"calls_per_hour": lim.calls_per_hour, "calls_per_day": lim.calls_per_day,
                       "sms_per_hour": lim.sms_per_hour, "sms_per_day": lim.sms_per_day},
        }

    def plan_switches(self, now: float) -> list[tuple[str, int]]:
        """(channel_id, slot) for idle modems whose active SIM cannot place a call while
        another slot's SIM can: the bank switches them in idle moments."""
        self._advance(now)
        return sorted(self._switch_wanted.items())

    def next_wakeup(self) -> float | None:
        """Earliest time a capped, paused or locked SIM becomes ready, or an operator cap
        lifts (as of the last ``now`` seen)."""
        timers = self._timers
        while timers:
            t, _, sim_id, trv, token = timers[0]
            s = self._sims.get(sim_id)
            if s is not None and s.token[trv] == token:
                break
            heappop(timers)
        best = timers[0][0] if timers else INF
        for name, op in self._operators.items():
            if op.limits is None:
                continue
            for tr in _TRAFFICS:
                t, _ = self._op_ready(name, tr, self._now)
                if self._now < t < best:
                    best = t
        return None if best == INF else best

    # ------------------------------------------------------------------ persistence
    def snapshot(self) -> dict:
        sims = dict(self._retired)
        sims.update((sid, self._dump_sim(s)) for sid, s in self._sims.items())
        return {
            "version": SNAPSHOT_VERSION,
            "sims": sims,
            "operators": {name: op.usage.to_json() for name, op in self._operators.items() if op.limits is not None},
        }

    def restore(self, data: dict, now: float) -> None:
        """Load a snapshot. SIMs not (yet) added are kept aside until ``add_sim``."""
        version = data.get("version")
        if version != SNAPSHOT_VERSION:
            raise ValueError(f"snapshot version {version!r} is not {SNAPSHOT_VERSION}")
        self._now = max(self._now, now)  # saved windows are purged against this time
        for sid, saved in data.get("sims", {}).items():
            s = self._sims.get(sid)
            if s is None:
                self._retired[sid] = saved
            else:
                self._load_sim(s, saved)
        for name, usage in data.get("operators", {}).items():
            op = self._operators.setdefault(name, _Operator(self._operator_limits.get(name)))
            op.usage = Usage.from_json(usage, now)
        for s in self._sims.values():
            s.where = [None, None]
            s.token = [s.token[0] + 1, s.token[1] + 1]
        for ch in self._channels.values():
            self._refile_channel(ch, now, True)

    @staticmethod
    def _dump_sim(s: _Sim) -> dict:
        def num(x: float) -> float | None:
            return None if math.isinf(x) else x

        return {
            "usage": s.usage.to_json(),
            "streaks": s.streaks.to_json(),
            "locks": [[l.rule, l.until, list(l.evidence)] for l in s.locks.values()],
            "quarantine": None if s.quarantine is None else list(s.quarantine),
            "last_used": num(s.last_used),
            "pause_until": num(s.pause_until),
            "min_pause_until": num(s.min_pause_until),
        }

    def _load_sim(self, s: _Sim, saved: dict) -> None:
        def num(x: float | None) -> float:
            return -INF if x is None else float(x)

        now = self._now
        s.usage = Usage.from_json(saved.get("usage", {}), now)
        s.streaks = Streaks.from_json(saved.get("streaks", {}))
        s.locks = {
            rule: Lock(s.ref.sim_id, rule, None if until is None else float(until), tuple(evidence))
            for rule, until, evidence in saved.get("locks", ())
        }
        q = saved.get("quarantine")
        s.quarantine = None if q is None else tuple(q)
        s.last_used = num(saved.get("last_used"))
        s.pause_until = num(saved.get("pause_until"))
        s.min_pause_until = num(saved.get("min_pause_until"))
        s.in_flight = 0  # a job in flight at the crash is the store's to report

    # ------------------------------------------------------------------ internals
    def _sim(self, sim_id: str) -> _Sim:
        try:
            return self._sims[sim_id]
        except KeyError:
            raise KeyError(f"no SIM {sim_id!r} in the rotation policy") from None

    def _channel(self, channel_id: str) -> _Channel:
        ch = self._channels.get(channel_id)
        if ch is None:
            ch = self._channels[channel_id] = _Channel(channel_id)
        return ch

    @staticmethod
    def _in_scope(s: _Sim, req: Request) -> bool:
        return (req.pool is None or req.pool in s.ref.pools) and (
            req.required_operator is None or req.required_operator == s.ref.operator
        )

    @staticmethod
    def _scope_words(req: Request) -> str:
        words = [f"pool {req.pool!r}" if req.pool is not None else "the bank"]
        if req.required_operator is not None:
            words.append(f"of operator {req.required_operator}")
        return " ".join(words)

    def _live_check(self, trv: int):
        sims = self._sims

        def live(entry: tuple) -> bool:
            s = sims.get(entry[-2])
            return s is not None and s.token[trv] == entry[-1]

        return live

    def _walk(self, heap: LazyHeap, trv: int, skip: dict[str, int]) -> tuple | None:
        """The top live entry of ``heap`` whose SIM's number is not in ``skip``; stale
        entries met on the way are dropped, skipped live ones put back."""
        h = heap.h
        sims = self._sims
        held = []
        found = None
        while h:
            entry = h[0]
            s = sims.get(entry[-2])
            if s is None or s.token[trv] != entry[-1]:
                heappop(h)
                continue
            if s.ref.msisdn in skip:
                held.append(heappop(h))
                continue
            found = entry
            break
        for entry in held:
            heappush(h, entry)
        return found

    def _op_ready(self, op: str, traffic: Traffic, now: float) -> tuple[float, str]:
        o = self._operators.get(op)
        if o is None or o.limits is None:
            return now, ""
        return o.usage.ready_at(traffic, o.limits, now, self._clock)

    def _standing(self, s: _Sim, traffic: Traffic, now: float) -> _Standing:
        lock_until = -INF
        if s.locks:
            for rule, lock in list(s.locks.items()):
                if lock.until is None:
                    lock_until = INF
                elif lock.until <= now:
                    del s.locks[rule]
                elif lock.until > lock_until:
                    lock_until = lock.until
        cap_until, cap_why = s.usage.ready_at(traffic, s.limits, now, self._clock)
        pause = max(s.pause_until, s.min_pause_until) if traffic is Traffic.VOICE else -INF
        return _Standing(s.quarantine is not None, lock_until, cap_until, cap_why, pause)

    def _state_of(self, s: _Sim, st: _Standing, now: float) -> SimState:
        if st.quarantined:
            return SimState.QUARANTINED
        if st.lock_until > now:
            return SimState.LOCKED
        if s.in_flight:
            return SimState.BUSY
        if st.cap_until > now or self._op_ready(s.ref.operator, Traffic.VOICE, now)[0] > now:
            return SimState.CAPPED
        if st.pause_until > now:
            return SimState.PAUSED
        return SimState.READY

    def _advance(self, now: float) -> None:
        """Move SIMs whose waiting time has come back into the placed heaps."""
        if now > self._now:
            self._now = now
        timers = self._timers
        sims = self._sims
        touched: dict[str, _Channel] = {}
        while timers and timers[0][0] <= now:
            _, _, sim_id, trv, token = heappop(timers)
            s = sims.get(sim_id)
            if s is not None and s.token[trv] == token:
                self._refile(s, now, True)
                touched[s.channel.channel_id] = s.channel
        for ch in touched.values():
            self._update_switch(ch)

    def _refile_channel(self, ch: _Channel, now: float, changed: _Sim | bool = False) -> None:
        """Re-file the SIMs of one modem after an event; ``changed`` is the SIM whose own
        state changed (True: all of them) — the others only follow the modem."""
        for s in ch.sims.values():
            self._refile(s, now, changed is True or changed is s)
        self._update_switch(ch)

    def _refile(self, s: _Sim, now: float, changed: bool) -> None:
        """Put the SIM where it belongs for each traffic class.

        When the SIM's own state did not change, its readiness did not either (every rule,
        once satisfied, stays satisfied as time passes; a WAITING SIM's time is in the timer
        heap), so only the modem's state is applied — no rule is re-evaluated. That keeps a
        modem's busy/idle flips at O(slots) heap pushes."""
        ch = s.channel
        modem_free = ch.idle and not ch.in_flight
        where = s.where
        self._moves += 1
        for tr, trv in _TRAFFIC_INDEX:
            old = where[trv]
            new: tuple[str, Any] | None
            if s.in_flight or s.quarantine is not None:
                new = None
            elif not changed and old is not None and old[0] != _WAITING:
                new = (_PLACED, s.ref.slot != ch.active_slot) if modem_free else _HELD
            elif not changed and old is not None and old[1] > now:
                continue  # still waiting for its time
            else:
                ready = self._standing(s, tr, now).ready_at
                if ready == INF:
                    new = None
                elif ready > now:
                    new = (_WAITING, ready)
                elif modem_free:
                    new = (_PLACED, s.ref.slot != ch.active_slot)
                else:
                    new = _HELD
            if new == old:
                continue
            where[trv] = new
            token = s.token[trv] = s.token[trv] + 1
            if new is None or new is _HELD:
                continue
            live = self._live[trv]
            sid = s.ref.sim_id
            if new[0] == _PLACED:
                placed_entry = (new[1], s.last_used, s.seq, sid, token)
                for heap in s.placed[trv]:
                    heap.push(placed_entry, live)
            else:
                ready_at: float = new[1]  # WAITING carries its time
                waiting_entry = (ready_at, s.seq, sid, token)
                for heap in s.waiting[trv]:
                    heap.push(waiting_entry, live)
                heappush(self._timers, (ready_at, next(self._seq), sid, trv, token))
                if len(self._timers) > 4 * len(self._sims) + 64:
                    self._timers = [t for t in self._timers if (x := self._sims.get(t[2])) is not None and x.token[t[3]] == t[4]]
                    self._timers.sort()

    def _update_switch(self, ch: _Channel) -> None:
        if ch.idle and not ch.in_flight:
            active = ch.sims.get(ch.active_slot)
            aw = active.where[_VOICE] if active is not None else None
            if aw is None or aw[0] != _PLACED:
                best: _Sim | None = None
                for slot, s in ch.sims.items():
                    w = s.where[_VOICE]
                    if slot != ch.active_slot and w is not None and w[0] == _PLACED:
                        if best is None or (s.last_used, s.seq) < (best.last_used, best.seq):
                            best = s
                if best is not None:
                    self._switch_wanted[ch.channel_id] = best.ref.slot
                    return
        self._switch_wanted.pop(ch.channel_id, None)
