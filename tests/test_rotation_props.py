"""Property test: random sequences of choose / record_* against an independent oracle.

The oracle keeps the raw history (every start, end, lock, quarantine, modem state) and
decides from it, by brute force, which SIMs qualify for each request. The policy must
never pick a SIM the oracle rules out (caps, pauses, locks, hints, the last number, busy
modems), must never refuse while the oracle finds one, and must rank as documented:
an active slot before a switch, a never-shown number before a shown one.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, time
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from appliance.rotation import (
    AttemptSummary,
    JobKind,
    LockRules,
    Refusal,
    Request,
    RotationPolicy,
    SimLimits,
    SimRef,
    WindowCap,
)

T0 = 1_717_398_000.0  # 2024-06-03T07:00:00Z: the 09:00–11:00 window is near in every zone used
HOUR, DAY = 3600.0, 86400.0
VOICE = (JobKind.CALL, JobKind.HLR)

OUTCOMES = {
    "answered": lambda talk: AttemptSummary(JobKind.CALL, True, True, talk, False),
    "short": lambda talk: AttemptSummary(JobKind.CALL, True, True, 1.0, False),
    "no_answer": lambda talk: AttemptSummary(JobKind.CALL, True, False, 0.0, False),
    "failed": lambda talk: AttemptSummary(JobKind.CALL, False, False, 0.0, True, 21),
}

opt = lambda lo, hi: st.none() | st.integers(lo, hi)  # noqa: E731


@st.composite
def scenario(draw):
    sims = []
    for m in range(draw(st.integers(2, 4))):
        for slot in range(draw(st.integers(1, 2))):
            op = draw(st.sampled_from(["26001", "26002"]))
            pools = frozenset(draw(st.sets(st.sampled_from(["p1", "p2"]), max_size=1)))
            sims.append(SimRef(f"m{m}s{slot}", f"4860{m}{slot}0000", op, f"m{m}", slot, pools))
    lo = draw(st.sampled_from([0.0, 30.0, 120.0]))
    limits = SimLimits(
        calls_per_hour=draw(opt(1, 3)),
        calls_per_day=draw(opt(2, 5)),
        sms_per_hour=draw(opt(1, 2)),
        sms_per_day=draw(opt(1, 3)),
        min_pause_seconds=draw(st.sampled_from([0.0, 60.0, 300.0])),
        pause_after_call=(lo, lo + draw(st.sampled_from([0.0, 90.0]))),
        max_call_seconds_per_day=draw(st.none() | st.sampled_from([100.0, 400.0])),
        windows=draw(st.sampled_from([(), (WindowCap("09:00", "11:00", 1),), (WindowCap("09:00", "11:00", 2),)])),
    )
    op_limits = {"26001": SimLimits(calls_per_hour=draw(opt(2, 4)))}
    rules = LockRules(
        consecutive_failed=draw(opt(2, 3)),
        consecutive_unanswered=draw(opt(2, 3)),
        consecutive_short=draw(opt(2, 3)),
        lock_seconds=draw(st.sampled_from([600.0, None])),
        min_balance=5.0,
    )
    tz = draw(st.sampled_from(["UTC", "Europe/Warsaw", "Asia/Tokyo"]))
    choose = st.tuples(
        st.just("choose"),
        st.integers(0, 3),  # callee
        st.sampled_from([JobKind.CALL, JobKind.CALL, JobKind.SMS, JobKind.HLR]),
        st.sampled_from([None, "26001", "26002"]),  # callee operator
        st.sampled_from([None, None, None, "required", "pool", "fixed"]),
        st.integers(0, 7),  # which operator / pool / SIM the hint names
    )
    step = st.one_of(
        choose,
        choose,
        st.tuples(st.just("wait"), st.sampled_from([1.0, 30.0, 61.0, 300.0, 1800.0, 3600.0, 20000.0])),
        st.tuples(st.just("end"), st.integers(0, 7), st.sampled_from(sorted(OUTCOMES)), st.sampled_from([0.0, 40.0, 200.0])),
        st.tuples(st.just("release"), st.integers(0, 7)),
        st.tuples(st.just("quarantine"), st.integers(0, 7)),
        st.tuples(st.just("balance"), st.integers(0, 7), st.sampled_from([1.0, 9.0])),
    )
    return sims, limits, op_limits, rules, tz, draw(st.integers(0, 2**32)), draw(st.lists(step, max_size=70))


@dataclass
class Oracle:
    sims: list[SimRef]
    limits: SimLimits
    op_limits: dict[str, SimLimits]
    tz: ZoneInfo
    starts: dict[str, list[tuple[float, bool]]] = field(default_factory=dict)  # sim -> (t, is_voice)
    talk: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    pause_until: dict[str, float] = field(default_factory=dict)
    locks: dict[str, dict[str, float | None]] = field(default_factory=dict)
    quarantined: set[str] = field(default_factory=set)
    in_flight: dict[str, tuple[str, JobKind]] = field(default_factory=dict)  # channel -> (sim, kind)
    active: dict[str, int] = field(default_factory=dict)

    def in_window(self, t: float, w: WindowCap) -> object | None:
        local = datetime.fromtimestamp(t, self.tz)
        s, e = (time.fromisoformat(x) for x in (w.start, w.end))
        return local.date() if s <= local.time() < e else None

    def count(self, sim_ids: list[str], voice: bool, span: float, now: float) -> int:
        return sum(1 for sid in sim_ids for t, v in self.starts.get(sid, ()) if v == voice and t + span > now)

    def caps_hold(self, sim: SimRef, kind: JobKind, now: float) -> bool:
        voice = kind in VOICE
        lim = self.limits
        per = (lim.calls_per_hour, lim.calls_per_day) if voice else (lim.sms_per_hour, lim.sms_per_day)
        for cap, span in zip(per, (HOUR, DAY)):
            if cap is not None and self.count([sim.sim_id], voice, span, now) >= cap:
                return False
        if voice:
            voice_starts = [t for t, v in self.starts.get(sim.sim_id, ()) if v]
            if voice_starts and voice_starts[-1] + lim.min_pause_seconds > now:
                return False
            if self.pause_until.get(sim.sim_id, -1.0) > now:
                return False
            if lim.max_call_seconds_per_day is not None:
                if sum(s for e, s in self.talk.get(sim.sim_id, ()) if e + DAY > now) >= lim.max_call_seconds_per_day:
                    return False
            for w in lim.windows:
                occ = self.in_window(now, w)
                if occ is not None and sum(1 for t in voice_starts if self.in_window(t, w) == occ) >= w.max_calls:
                    return False
            op_cap = self.op_limits.get(sim.operator)
            if op_cap is not None and op_cap.calls_per_hour is not None:
                same_op = [s.sim_id for s in self.sims if s.operator == sim.operator]
                if self.count(same_op, True, HOUR, now) >= op_cap.calls_per_hour:
                    return False
        return True

    def qualifies(self, sim: SimRef, req: Request, now: float) -> bool:
        if sim.channel_id in self.in_flight or sim.sim_id in self.quarantined:
            return False
        if any(u is None or u > now for u in self.locks.get(sim.sim_id, {}).values()):
            return False
        if req.fixed_msisdn is not None and sim.msisdn != req.fixed_msisdn:
            return False
        if req.fixed_msisdn is None and req.shown and sim.msisdn == req.shown[-1]:
            return False
        if req.required_operator is not None and sim.operator != req.required_operator:
            return False
        if req.pool is not None and req.pool not in sim.pools:
            return False
        return self.caps_hold(sim, req.kind, now)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario())
def test_random_sequences_never_break_a_rule(sc):
    sims, limits, op_limits, rules, tz, seed, steps = sc
    policy = RotationPolicy(limits=limits, lock_rules=rules, operator_limits=op_limits, tz=tz, rng=random.Random(seed))
    mirror = random.Random(seed)  # the policy draws one pause per voice call end, in order
    oracle = Oracle(sims, limits, op_limits, ZoneInfo(tz))
    by_id = {s.sim_id: s for s in sims}
    now = T0
    for s in sims:
        policy.add_sim(s, now=now)
    for ch in {s.channel_id for s in sims}:
        policy.set_channel(ch, idle=True, active_slot=0, now=now)
        oracle.active[ch] = 0
    shown: dict[int, tuple[str, ...]] = {c: () for c in range(4)}
    decisions = 0
    for step in steps:
        op = step[0]
        if op == "wait":
            now += step[1]
        elif op == "choose":
            _, callee, kind, callee_op, hint, pick = step
            extra = {}
            if hint == "required":
                extra["required_operator"] = ["26001", "26002"][pick % 2]
            elif hint == "pool":
                extra["pool"] = ["p1", "p2"][pick % 2]
            elif hint == "fixed":
                extra["fixed_msisdn"] = sims[pick % len(sims)].msisdn
            req = Request(f"c{callee}", kind=kind, callee_operator=callee_op, shown=shown[callee], **extra)
            allowed = [s for s in sims if oracle.qualifies(s, req, now)]
            d = policy.choose(req, now)
            if isinstance(d, Refusal):
                assert not allowed, (d, [s.sim_id for s in allowed])
                assert d.retry_at is None or d.retry_at > now
                continue
            sim = by_id[d.sim_id]
            assert sim in allowed, (d, [s.sim_id for s in allowed])
            active_ok = [s for s in allowed if s.slot == oracle.active[s.channel_id]]
            assert d.needs_switch == (sim.slot != oracle.active[sim.channel_id])
            assert d.needs_switch == (not active_ok)  # a switch only as the last resort
            if req.fixed_msisdn is None:
                pool = [s for s in allowed if s.slot == oracle.active[s.channel_id]] or allowed
                if any(s.msisdn not in req.shown for s in pool):
                    assert d.msisdn not in req.shown  # never-shown numbers first
            if d.needs_switch:  # the bank switches the slot, then dials
                policy.set_channel(d.channel_id, idle=True, active_slot=sim.slot, now=now)
                oracle.active[d.channel_id] = sim.slot
            policy.record_start(d.sim_id, kind, now)
            oracle.starts.setdefault(d.sim_id, []).append((now, kind in VOICE))
            oracle.in_flight[d.channel_id] = (d.sim_id, kind)
            shown[callee] += (d.msisdn,)
            decisions += 1
        elif op == "end":
            if not oracle.in_flight:
                continue
            channel = sorted(oracle.in_flight)[step[1] % len(oracle.in_flight)]
            sim_id, kind = oracle.in_flight.pop(channel)
            outcome = OUTCOMES[step[2]](step[3])
            if kind is JobKind.SMS:
                outcome = AttemptSummary(JobKind.SMS, False, False, 0.0, step[2] == "failed")
            elif kind is JobKind.HLR:
                outcome = AttemptSummary(JobKind.HLR, outcome.alerted, False, 0.0, outcome.failed)
            lock = policy.record_end(sim_id, outcome, now)
            if kind in VOICE:
                lo, hi = limits.pause_after_call
                oracle.pause_until[sim_id] = now + (lo if lo == hi else mirror.uniform(lo, hi))
                if outcome.answered:
                    oracle.talk.setdefault(sim_id, []).append((now, outcome.talk_seconds))
            if lock is not None:
                assert lock.evidence and lock.sim_id == sim_id
                oracle.locks.setdefault(sim_id, {})[lock.rule] = lock.until
            policy.set_channel(channel, idle=True, active_slot=oracle.active[channel], now=now)
        elif op == "release":
            sim_id = sims[step[1] % len(sims)].sim_id
            policy.release(sim_id, now)
            oracle.locks.pop(sim_id, None)
            oracle.quarantined.discard(sim_id)
        elif op == "quarantine":
            sim_id = sims[step[1] % len(sims)].sim_id
            policy.quarantine(sim_id, ("test",), now)
            oracle.quarantined.add(sim_id)
        elif op == "balance":
            sim_id = sims[step[1] % len(sims)].sim_id
            lock = policy.record_balance(sim_id, step[2], now)
            assert (lock is not None) == (step[2] < 5.0)
            if lock is not None:
                oracle.locks.setdefault(sim_id, {})[lock.rule] = None
            else:
                oracle.locks.get(sim_id, {}).pop("low_balance", None)
        wake = policy.next_wakeup()
        assert wake is None or wake > now - DAY  # never a stale time from long ago
    # a snapshot survives JSON and reproduces the same answers
    import json

    copy = RotationPolicy(limits=limits, lock_rules=rules, operator_limits=op_limits, tz=tz)
    for s in sims:
        copy.add_sim(s, now=now)
    copy.restore(json.loads(json.dumps(policy.snapshot())), now)
    for ch in {s.channel_id for s in sims}:
        idle = ch not in oracle.in_flight
        copy.set_channel(ch, idle=idle, active_slot=oracle.active[ch], now=now)
    for s in sims:
        assert copy.state(s.sim_id, now) == policy.state(s.sim_id, now) or s.channel_id in oracle.in_flight
