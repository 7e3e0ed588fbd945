"""The rotation policy, one rule at a time, on a fake clock (``now`` is just a float)."""
from __future__ import annotations

import json
import random
from datetime import datetime, timezone

import pytest

from appliance.rotation import (
    AttemptSummary,
    Decision,
    JobKind,
    LockRules,
    Refusal,
    Request,
    RotationPolicy,
    SimLimits,
    SimRef,
    SimState,
    WindowCap,
)

T0 = 1_717_200_000.0  # 2024-06-01T00:00:00Z
ANSWERED = AttemptSummary(JobKind.CALL, alerted=True, answered=True, talk_seconds=30.0, failed=False)
NO_ANSWER = AttemptSummary(JobKind.CALL, alerted=True, answered=False, talk_seconds=0.0, failed=False)
NOT_ALERTING = AttemptSummary(JobKind.CALL, alerted=False, answered=False, talk_seconds=0.0, failed=False, cause=None)
FAILED = AttemptSummary(JobKind.CALL, alerted=False, answered=False, talk_seconds=0.0, failed=True, cause=21)
SHORT = AttemptSummary(JobKind.CALL, alerted=True, answered=True, talk_seconds=2.0, failed=False)
SMS_OK = AttemptSummary(JobKind.SMS, alerted=False, answered=False, talk_seconds=0.0, failed=False)


def utc(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc).timestamp()


def bank(
    sims: list[tuple[str, str, str, int]] | int = 3,
    *,
    now: float = T0,
    pools: dict[str, frozenset[str]] | None = None,
    per_sim: dict[str, SimLimits] | None = None,
    **kwargs,
) -> RotationPolicy:
    """A policy with SIMs (sim_id, operator, channel, slot), every modem idle on slot 0.
    An int n gives n one-slot modems s0..s{n-1}, all of operator 26001."""
    if isinstance(sims, int):
        sims = [(f"s{i}", "26001", f"m{i}", 0) for i in range(sims)]
    p = RotationPolicy(rng=kwargs.pop("rng", random.Random(7)), **kwargs)
    for sim_id, op, channel, slot in sims:
        ref = SimRef(sim_id, msisdn_of(sim_id), op, channel, slot, (pools or {}).get(sim_id, frozenset()))
        p.add_sim(ref, limits=(per_sim or {}).get(sim_id), now=now)
    for channel in {c for _, _, c, _ in sims}:
        p.set_channel(channel, idle=True, active_slot=0, now=now)
    return p


def msisdn_of(sim_id: str) -> str:
    return "48600" + "".join(str(ord(c) % 10) for c in sim_id).rjust(6, "0")


def place(p: RotationPolicy, req: Request, now: float, summary: AttemptSummary = ANSWERED, hold: float = 0.0) -> Decision:
    """choose, start, end after ``hold`` seconds and free the modem: one whole attempt."""
    d = p.choose(req, now)
    assert isinstance(d, Decision), d
    p.record_start(d.sim_id, req.kind, now)
    p.record_end(d.sim_id, summary, now + hold)
    p.set_channel(d.channel_id, idle=True, active_slot=0 if not d.needs_switch else _slot(p, d), now=now + hold)
    return d


def _slot(p: RotationPolicy, d: Decision) -> int:
    return p._sims[d.sim_id].ref.slot  # the bank switched to it


# ---------------------------------------------------------------- last number, spreading
def test_never_the_number_shown_last():
    p = bank(2)
    a, b = msisdn_of("s0"), msisdn_of("s1")
    for shown, expect in (((a,), b), ((b,), a), ((a, b), a), ((b, a), b)):
        d = p.choose(Request("c", shown=shown), T0)
        assert isinstance(d, Decision) and d.msisdn == expect, (shown, d)


def test_last_number_alone_is_refused_and_says_why():
    p = bank(2)
    p.record_start("s1", JobKind.CALL, T0)  # s1's modem busy: only s0 free
    r = p.choose(Request("c", shown=(msisdn_of("s0"),)), T0)
    assert isinstance(r, Refusal)
    assert "saw last" in r.reason and msisdn_of("s0")[-3:] in r.reason
    assert msisdn_of("s0")[:-3] not in r.reason  # masked but for the last 3 digits
    assert r.retry_at is None  # only an event (s1's modem idle) can help


def test_spreads_over_every_number_then_least_recently_shown():
    p = bank(5, limits=SimLimits(pause_after_call=(10.0, 10.0)))
    shown: tuple[str, ...] = ()
    now = T0
    for _ in range(5):
        d = place(p, Request("c", shown=shown), now, hold=20)
        shown += (d.msisdn,)
        now += 45
    assert len(set(shown)) == 5
    # all shown now: the least recently shown comes next, then the next oldest
    d1 = p.choose(Request("c", shown=shown), now)
    assert isinstance(d1, Decision) and d1.msisdn == shown[0] and "least recently shown" in d1.reason
    d2 = p.choose(Request("c", shown=shown[1:] + (shown[0],)), now)
    assert isinstance(d2, Decision) and d2.msisdn == shown[1]


def test_never_shown_beats_least_recently_used():
    p = bank(3)
    place(p, Request("x"), T0)  # s0 used: LRU order is now s1, s2, s0
    d = p.choose(Request("c", shown=(msisdn_of("s1"), msisdn_of("s2"))), T0 + 1)
    assert isinstance(d, Decision) and d.sim_id == "s0"


def test_many_callees_never_repeat_consecutively_under_caps():
    p = bank(6, limits=SimLimits(calls_per_hour=4, min_pause_seconds=30, pause_after_call=(5, 20)))
    history: dict[str, tuple[str, ...]] = {f"c{i}": () for i in range(10)}
    now = T0
    placed = refused = 0
    while placed < 400:
        callee = f"c{placed % 10}"
        d = p.choose(Request(callee, shown=history[callee]), now)
        if isinstance(d, Decision):
            assert not history[callee] or d.msisdn != history[callee][-1]
            p.record_start(d.sim_id, JobKind.CALL, now)
            p.record_end(d.sim_id, ANSWERED, now)
            p.set_channel(d.channel_id, idle=True, active_slot=0, now=now)
            history[callee] += (d.msisdn,)
            placed += 1
            now += 7
        else:  # every SIM paused or capped: the refusal says exactly when to come back
            assert d.retry_at is not None and d.retry_at > now
            now = d.retry_at
            refused += 1
    assert refused > 0 and refused < 400
    uses = [sum(s.count(msisdn_of(f"s{i}")) for s in history.values()) for i in range(6)]
    assert min(uses) >= 50 and sum(uses) == 400  # least-recently-used spreads the load
    assert all(len(set(shown)) >= 3 for shown in history.values())


# ---------------------------------------------------------------- caps
@pytest.mark.parametrize(
    "field, kind, span",
    [
        ("calls_per_hour", JobKind.CALL, 3600.0),
        ("calls_per_day", JobKind.CALL, 86400.0),
        ("sms_per_hour", JobKind.SMS, 3600.0),
        ("sms_per_day", JobKind.SMS, 86400.0),
    ],
)
def test_rolling_cap_and_exact_retry_at(field, kind, span):
    p = bank(1, limits=SimLimits(**{field: 3}))
    starts = [T0, T0 + 100, T0 + 200]
    for t in starts:
        d = p.choose(Request("c", kind=kind), t)
        assert isinstance(d, Decision)
        p.record_start(d.sim_id, kind, t)
        p.record_end(d.sim_id, SMS_OK if kind is JobKind.SMS else ANSWERED, t + 10)
        p.set_channel(d.channel_id, idle=True, active_slot=0, now=t + 10)
    r = p.choose(Request("c", kind=kind), T0 + 300)
    assert isinstance(r, Refusal) and r.retry_at == starts[0] + span
    assert p.state("s0", T0 + 300) is (SimState.CAPPED if kind is not JobKind.SMS else SimState.READY)
    assert isinstance(p.choose(Request("c", kind=kind), r.retry_at - 0.001), Refusal)
    assert isinstance(p.choose(Request("c", kind=kind), r.retry_at), Decision)
    other = JobKind.SMS if kind is not JobKind.SMS else JobKind.CALL
    assert isinstance(p.choose(Request("c", kind=other), T0 + 300), Decision)  # the other class is free


def test_hlr_counts_as_voice():
    p = bank(1, limits=SimLimits(calls_per_hour=1))
    place(p, Request("c", kind=JobKind.HLR), T0, summary=AttemptSummary(JobKind.HLR, True, False, 0.0, False))
    assert isinstance(p.choose(Request("c", kind=JobKind.CALL), T0 + 10), Refusal)


def test_min_pause_between_call_starts():
    p = bank(1, limits=SimLimits(min_pause_seconds=120))
    place(p, Request("c"), T0, hold=30)
    r = p.choose(Request("c2"), T0 + 60)
    assert isinstance(r, Refusal) and r.retry_at == T0 + 120
    assert p.state("s0", T0 + 60) is SimState.PAUSED
    assert isinstance(p.choose(Request("c2"), T0 + 120), Decision)


def test_fixed_pause_after_call():
    p = bank(1, limits=SimLimits(pause_after_call=(45.0, 45.0)))
    place(p, Request("c"), T0, hold=100)
    r = p.choose(Request("c2"), T0 + 101)
    assert isinstance(r, Refusal) and r.retry_at == T0 + 145


def test_random_pause_after_call_within_bounds():
    p = bank(1, limits=SimLimits(pause_after_call=(20.0, 80.0)), rng=random.Random(3))
    pauses = []
    now = T0
    for _ in range(20):
        place(p, Request("c"), now, hold=10)
        r = p.choose(Request("c2"), now + 10)
        assert isinstance(r, Refusal) and r.retry_at is not None
        pauses.append(r.retry_at - (now + 10))
        now = r.retry_at
    assert all(20.0 <= x <= 80.0 for x in pauses)
    assert len({round(x, 6) for x in pauses}) == 20  # drawn, not fixed
    expected = random.Random(3)
    assert pauses == pytest.approx([expected.uniform(20.0, 80.0) for _ in range(20)])  # from the injected rng


def test_max_call_seconds_per_day():
    p = bank(1, limits=SimLimits(max_call_seconds_per_day=150))
    long = AttemptSummary(JobKind.CALL, True, True, 100.0, False)
    place(p, Request("c"), T0, summary=long, hold=100)  # ends T0+100
    place(p, Request("c2"), T0 + 200, summary=long, hold=100)  # ends T0+300, total 200 s
    r = p.choose(Request("c3"), T0 + 400)
    assert isinstance(r, Refusal) and "max_call_seconds_per_day" in r.reason
    assert r.retry_at == T0 + 100 + 86400  # the first call's 100 s leave the day: 100 < 150
    assert isinstance(p.choose(Request("c3"), r.retry_at), Decision)


def test_window_cap_in_local_time_across_utc_midnight():
    # 08:00–12:00 in Tokyo (UTC+9, no DST) is 23:00–03:00 UTC: the window spans UTC midnight.
    p = bank(1, tz="Asia/Tokyo", limits=SimLimits(windows=(WindowCap("08:00", "12:00", 2),)))
    t = utc("2024-06-03T23:30:00")  # 08:30 JST on June 4
    place(p, Request("a"), t)
    place(p, Request("b"), t + 3600)  # 01:30 UTC the next UTC day, same local window
    r = p.choose(Request("c"), t + 7200)
    assert isinstance(r, Refusal) and "window 08:00-12:00" in r.reason
    assert r.retry_at == utc("2024-06-04T03:00:00")  # 12:00 JST
    assert p.state("s0", t + 7200) is SimState.CAPPED
    assert isinstance(p.choose(Request("c"), r.retry_at), Decision)  # outside the window: no cap
    # the next day's window counts afresh
    d = p.choose(Request("c"), utc("2024-06-04T23:00:00"))
    assert isinstance(d, Decision)


def test_window_cap_on_a_dst_day_and_overnight():
    # Warsaw springs forward on 2024-03-31 at 02:00 -> 03:00; 01:00–05:00 local is 3 real hours.
    p = bank(1, tz="Europe/Warsaw", limits=SimLimits(windows=(WindowCap("01:00", "05:00", 1),)))
    place(p, Request("a"), utc("2024-03-31T00:30:00"))  # 01:30 CET
    r = p.choose(Request("b"), utc("2024-03-31T01:00:00"))  # 03:00 CEST
    assert isinstance(r, Refusal) and r.retry_at == utc("2024-03-31T03:00:00")  # 05:00 CEST
    q = bank(1, tz="Europe/Warsaw", limits=SimLimits(windows=(WindowCap("22:00", "06:00", 1),)))
    place(q, Request("a"), utc("2024-06-10T21:00:00"))  # 23:00 CEST
    r = q.choose(Request("b"), utc("2024-06-11T02:00:00"))  # 04:00 CEST, same overnight window
    assert isinstance(r, Refusal) and r.retry_at == utc("2024-06-11T04:00:00")  # 06:00 CEST


def test_operator_cap_sends_calls_off_net_then_refuses_with_exact_time():
    sims = [("a1", "26001", "m1", 0), ("a2", "26001", "m2", 0), ("b1", "26002", "m3", 0)]
    p = bank(sims, operator_limits={"26001": SimLimits(calls_per_hour=2)})
    place(p, Request("c1", callee_operator="26001"), T0)
    place(p, Request("c2", callee_operator="26001"), T0 + 10)
    d = p.choose(Request("c3", callee_operator="26001"), T0 + 20)
    assert isinstance(d, Decision) and d.sim_id == "b1" and not d.on_net
    assert p.state("a1", T0 + 20) is SimState.CAPPED
    r = p.choose(Request("c3", required_operator="26001"), T0 + 20)
    assert isinstance(r, Refusal) and "operator 26001 capped" in r.reason and r.retry_at == T0 + 3600
    assert p.next_wakeup() == T0 + 3600
    assert isinstance(p.choose(Request("c3", required_operator="26001"), T0 + 3600), Decision)


# ---------------------------------------------------------------- locks
@pytest.mark.parametrize(
    "field, bad, good",
    [
        ("consecutive_failed", FAILED, ANSWERED),
        ("consecutive_not_alerting", NOT_ALERTING, NO_ANSWER),
        ("consecutive_unanswered", NO_ANSWER, ANSWERED),
        ("consecutive_short", SHORT, ANSWERED),
    ],
)
def test_each_lock_rule_with_evidence_and_expiry(field, bad, good):
    p = bank(1, lock_rules=LockRules(**{field: 3}, lock_seconds=600))
    now = T0
    locks = []
    for summary in (bad, bad, good, bad, bad):  # the good call breaks the streak
        p.record_start("s0", summary.kind, now)
        locks.append(p.record_end("s0", summary, now + 5))
        now += 10
    assert locks == [None] * 5
    p.record_start("s0", JobKind.CALL, now)
    lock = p.record_end("s0", bad, now + 5)
    p.set_channel("m0", idle=True, active_slot=0, now=now + 5)
    assert lock is not None and lock.rule == field and lock.until == now + 5 + 600
    assert len(lock.evidence) == 3 and all(f"cause={bad.cause if bad.cause is not None else '-'}" in e for e in lock.evidence)
    assert p.state("s0", now + 6) is SimState.LOCKED
    assert p.locks("s0", now + 6) == (lock,)
    r = p.choose(Request("c"), now + 6)
    assert isinstance(r, Refusal) and r.retry_at == lock.until
    assert p.state("s0", lock.until - 0.01) is SimState.LOCKED
    assert p.state("s0", lock.until) is SimState.READY
    assert isinstance(p.choose(Request("c"), lock.until), Decision)


def test_short_call_streak_ignores_unanswered_calls():
    p = bank(1, lock_rules=LockRules(consecutive_short=2))
    for s in (SHORT, NO_ANSWER, NOT_ALERTING):
        p.record_start("s0", JobKind.CALL, T0)
        assert p.record_end("s0", s, T0) is None
    p.record_start("s0", JobKind.CALL, T0)
    assert p.record_end("s0", SHORT, T0) is not None


def test_lock_until_released():
    p = bank(1, lock_rules=LockRules(consecutive_failed=1, lock_seconds=None))
    p.record_start("s0", JobKind.CALL, T0)
    lock = p.record_end("s0", FAILED, T0 + 1)
    p.set_channel("m0", idle=True, active_slot=0, now=T0 + 1)
    assert lock is not None and lock.until is None
    r = p.choose(Request("c"), T0 + 10 * 86400)
    assert isinstance(r, Refusal) and r.retry_at is None
    p.release("s0", T0 + 10 * 86400)
    assert isinstance(p.choose(Request("c"), T0 + 10 * 86400), Decision)


def test_low_balance_locks_until_topped_up_or_released():
    p = bank(2, lock_rules=LockRules(min_balance=5.0))
    assert p.record_balance("s0", 12.5, T0) is None
    lock = p.record_balance("s0", 3.2, T0)
    assert lock is not None and lock.rule == "low_balance" and lock.until is None and "3.2" in lock.evidence[0]
    assert p.state("s0", T0) is SimState.LOCKED
    for _ in range(3):
        d = p.choose(Request("c"), T0)
        assert isinstance(d, Decision) and d.sim_id == "s1"
    assert p.record_balance("s0", 20.0, T0 + 60) is None  # topped up
    assert p.state("s0", T0 + 60) is SimState.READY


def test_quarantine_and_release():
    p = bank(2)
    p.quarantine("s0", ("3 calls failed with cause 21 without alerting",), T0)
    assert p.state("s0", T0) is SimState.QUARANTINED
    assert p.snapshot()["sims"]["s0"]["quarantine"] == ["3 calls failed with cause 21 without alerting"]
    for t in (T0, T0 + 86400 * 30):
        d = p.choose(Request("c"), t)
        assert isinstance(d, Decision) and d.sim_id == "s1"
    p.release("s0", T0 + 86400 * 30)
    assert p.state("s0", T0 + 86400 * 30) is SimState.READY
    assert isinstance(p.choose(Request("c", fixed_msisdn=msisdn_of("s0")), T0 + 86400 * 30), Decision)


# ---------------------------------------------------------------- preferences and hints
def test_on_net_preferred_when_free_otherwise_any():
    sims = [("a", "26001", "m1", 0), ("b", "26002", "m2", 0), ("c", "26003", "m3", 0)]
    p = bank(sims)
    d = p.choose(Request("x", callee_operator="26002"), T0)
    assert isinstance(d, Decision) and d.sim_id == "b" and d.on_net and "on-net" in d.reason
    p.record_start("b", JobKind.CALL, T0)  # b busy
    d = p.choose(Request("x", callee_operator="26002"), T0)
    assert isinstance(d, Decision) and d.sim_id == "a" and not d.on_net
    # a never-shown off-net number beats an on-net number the callee has seen
    p.set_channel("m2", idle=True, active_slot=0, now=T0)
    p.record_end("b", ANSWERED, T0)
    d = p.choose(Request("x", callee_operator="26002", shown=(msisdn_of("b"), msisdn_of("a"))), T0 + 1)
    assert isinstance(d, Decision) and d.sim_id == "c"


def test_required_operator_and_pool_hints():
    sims = [("a", "26001", "m1", 0), ("b", "26002", "m2", 0), ("c", "26002", "m3", 0)]
    p = bank(sims, pools={"a": frozenset({"acme"}), "c": frozenset({"acme", "zeta"})})
    for _ in range(3):
        d = p.choose(Request("x", required_operator="26002", callee_operator="26001"), T0)
        assert isinstance(d, Decision) and d.sim_id in {"b", "c"}
        d = p.choose(Request("x", pool="acme", callee_operator="26002"), T0)
        assert isinstance(d, Decision) and d.sim_id == "c"
        d = p.choose(Request("x", pool="acme", required_operator="26001"), T0)
        assert isinstance(d, Decision) and d.sim_id == "a"
    r = p.choose(Request("x", pool="zeta", required_operator="26001"), T0)
    assert isinstance(r, Refusal) and "pool 'zeta' of operator 26001" in r.reason and r.retry_at is None
    r = p.choose(Request("x", pool="nope"), T0)
    assert isinstance(r, Refusal) and r.retry_at is None


def test_fixed_number_overrides_the_last_number_rule():
    p = bank(3, limits=SimLimits(min_pause_seconds=300))
    a = msisdn_of("s1")
    d = p.choose(Request("x", fixed_msisdn=a, shown=(a,)), T0)
    assert isinstance(d, Decision) and d.sim_id == "s1" and "fixes" in d.reason
    place(p, Request("x", fixed_msisdn=a), T0)
    r = p.choose(Request("x", fixed_msisdn=a), T0 + 10)
    assert isinstance(r, Refusal) and r.retry_at == T0 + 300 and "paused" in r.reason
    r = p.choose(Request("x", fixed_msisdn="48999999999"), T0)
    assert isinstance(r, Refusal) and r.retry_at is None and "not a SIM" in r.reason
    r = p.choose(Request("x", fixed_msisdn=a, pool="acme"), T0 + 400)
    assert isinstance(r, Refusal) and "not in pool 'acme'" in r.reason


def test_needs_switch_only_as_a_last_resort():
    sims = [("m1a", "26001", "m1", 0), ("m1b", "26001", "m1", 1), ("m2a", "26001", "m2", 0)]
    p = bank(sims, limits=SimLimits(calls_per_hour=1))
    # m2a was shown to the callee before but sits in an active slot: it beats a switch
    d = p.choose(Request("x", shown=(msisdn_of("m2a"), msisdn_of("m1a"))), T0)
    assert isinstance(d, Decision) and d.sim_id == "m2a" and not d.needs_switch
    place(p, Request("y", fixed_msisdn=msisdn_of("m1a")), T0)
    place(p, Request("y", fixed_msisdn=msisdn_of("m2a")), T0)
    # both active-slot SIMs capped: the inactive slot of idle m1 is the last resort
    d = p.choose(Request("x"), T0 + 5)
    assert isinstance(d, Decision) and d.sim_id == "m1b" and d.needs_switch and "switching" in d.reason
    p.set_channel("m1", idle=False, active_slot=0, now=T0 + 5)  # the bank starts switching
    r = p.choose(Request("x"), T0 + 6)
    assert isinstance(r, Refusal) and r.retry_at == T0 + 3600
    p.set_channel("m1", idle=True, active_slot=1, now=T0 + 40)  # re-registered on slot 1
    d = p.choose(Request("x"), T0 + 40)
    assert isinstance(d, Decision) and d.sim_id == "m1b" and not d.needs_switch


def test_plan_switches_for_idle_modems_with_a_blocked_active_sim():
    sims = [("m1a", "26001", "m1", 0), ("m1b", "26001", "m1", 1), ("m2a", "26001", "m2", 0), ("m2b", "26001", "m2", 1)]
    p = bank(sims, limits=SimLimits(calls_per_hour=1))
    assert p.plan_switches(T0) == []
    place(p, Request("x", fixed_msisdn=msisdn_of("m1a")), T0)
    assert p.plan_switches(T0 + 1) == [("m1", 1)]
    p.quarantine("m2a", ("blocked",), T0 + 1)
    assert p.plan_switches(T0 + 1) == [("m1", 1), ("m2", 1)]
    p.set_channel("m2", idle=False, active_slot=0, now=T0 + 2)  # busy modems are never switched
    assert p.plan_switches(T0 + 2) == [("m1", 1)]
    assert p.plan_switches(T0 + 3600) == []  # m1a's hour has rolled: no reason to switch


def test_record_start_busies_the_modem_for_every_slot():
    sims = [("a", "26001", "m1", 0), ("b", "26001", "m1", 1)]
    p = bank(sims)
    p.record_start("a", JobKind.SMS, T0)
    r = p.choose(Request("x"), T0)
    assert isinstance(r, Refusal)
    assert p.state("a", T0) is SimState.BUSY
    p.record_end("a", SMS_OK, T0 + 2)
    assert isinstance(p.choose(Request("x"), T0 + 2), Refusal)  # still busy until the bank says idle
    p.set_channel("m1", idle=True, active_slot=0, now=T0 + 3)
    assert isinstance(p.choose(Request("x"), T0 + 3), Decision)


# ---------------------------------------------------------------- persistence, validation
def test_snapshot_restore_round_trip():
    limits = SimLimits(calls_per_hour=2, pause_after_call=(30, 30), max_call_seconds_per_day=1000)
    rules = LockRules(consecutive_unanswered=3)
    ops = {"26001": SimLimits(calls_per_day=3)}
    p = bank(4, limits=limits, lock_rules=rules, operator_limits=ops)
    place(p, Request("a", fixed_msisdn=msisdn_of("s0")), T0)
    place(p, Request("a", fixed_msisdn=msisdn_of("s0")), T0 + 100)
    p.record_start("s1", JobKind.CALL, T0 + 200)
    p.record_end("s1", NO_ANSWER, T0 + 230)
    p.record_start("s1", JobKind.CALL, T0 + 300)
    p.record_end("s1", NO_ANSWER, T0 + 330)
    p.quarantine("s2", ("cause 21 x3",), T0 + 400)
    p.remove_sim("s3")  # its (empty) state is kept aside
    data = json.loads(json.dumps(p.snapshot()))

    q = bank(3, limits=limits, lock_rules=rules, operator_limits=ops, now=T0 + 500)
    q.restore(data, T0 + 500)
    assert json.loads(json.dumps(q.snapshot())) == data
    assert q.state("s0", T0 + 500) is SimState.CAPPED
    assert q.state("s2", T0 + 500) is SimState.QUARANTINED
    r = q.choose(Request("b", required_operator="26001"), T0 + 500)
    assert isinstance(r, Refusal) and "operator 26001 capped" in r.reason and r.retry_at == T0 + 100 + 86400  # the 3rd most recent of 4 starts leaves the day
    # the unanswered streak survived: one more unanswered call locks s1
    q.record_start("s1", JobKind.CALL, T0 + 600)
    lock = q.record_end("s1", NO_ANSWER, T0 + 630)
    assert lock is not None and len(lock.evidence) == 3
    with pytest.raises(ValueError, match="version"):
        q.restore({"version": 99}, T0)


def test_removed_sim_keeps_its_counters():
    p = bank(2, limits=SimLimits(calls_per_hour=1))
    place(p, Request("a", fixed_msisdn=msisdn_of("s0")), T0)
    p.remove_sim("s0")
    assert all(isinstance(d, Decision) and d.sim_id == "s1" for d in [p.choose(Request("c"), T0 + 1)])
    p.add_sim(SimRef("s0", msisdn_of("s0"), "26001", "m0"), now=T0 + 2)
    p.set_channel("m0", idle=True, active_slot=0, now=T0 + 2)
    assert p.state("s0", T0 + 2) is SimState.CAPPED


def test_next_wakeup_is_the_earliest_ready_time():
    p = bank(2, limits=SimLimits(pause_after_call=(60, 60)))
    assert p.next_wakeup() is None
    place(p, Request("a", fixed_msisdn=msisdn_of("s0")), T0, hold=10)
    place(p, Request("a", fixed_msisdn=msisdn_of("s1")), T0 + 5, hold=10)
    assert p.next_wakeup() == T0 + 70
    p.choose(Request("x"), T0 + 70)
    assert p.next_wakeup() == T0 + 75


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda: WindowCap("8:00", "12:00", 1) and WindowCap("08-00", "12:00", 1), "HH:MM"),
        (lambda: WindowCap("08:00", "08:00", 1), "empty"),
        (lambda: WindowCap("24:00", "08:00", 1), "time of day"),
        (lambda: SimLimits(calls_per_hour=-1), "calls_per_hour"),
        (lambda: SimLimits(pause_after_call=(10, 5)), "pause_after_call"),
        (lambda: LockRules(consecutive_failed=0), "consecutive_failed"),
        (lambda: bank([("a", "1", "m", 0), ("b", "1", "m", 0)]), "slot 0"),
        (lambda: bank([("a", "1", "m", 0), ("a", "1", "n", 0)]), "already"),
    ],
)
def test_bad_input_is_named(build, message):
    with pytest.raises(ValueError, match=message):
        build()


def test_unknown_sim_is_a_key_error():
    with pytest.raises(KeyError, match="nope"):
        bank(1).record_start("nope", JobKind.CALL, T0)


@pytest.mark.parametrize("cause", [1, 3, 16, 17, 18, 19, 20, 22, 27, 28])
def test_not_alerting_calls_to_the_callees_side_do_not_lock_the_sim(cause):
    """Busy, absent, unassigned … numbers end without ringing, and a generic modem sees no
    ringing at all: their causes show the network routed the call, so the SIM is fine.
    Counted, the default rule (5 in a row) locked 6 of 16 healthy SIMs in the soak test."""
    p = bank(1, lock_rules=LockRules(consecutive_not_alerting=3))
    callee = AttemptSummary(JobKind.CALL, alerted=False, answered=False, talk_seconds=0.0, failed=False, cause=cause)
    t = T0
    for _ in range(6):
        p.record_start("s0", JobKind.CALL, t)
        assert p.record_end("s0", callee, t + 1) is None
        p.set_channel("m0", idle=True, active_slot=0, now=t + 1)
        t += 60
    assert p.state("s0", t) is SimState.READY


def test_call_rejected_neither_counts_nor_breaks_a_not_alerting_streak():
    p = bank(1, lock_rules=LockRules(consecutive_not_alerting=3))
    rejected = AttemptSummary(JobKind.CALL, alerted=False, answered=False, talk_seconds=0.0, failed=False, cause=21)
    t = T0
    locks = []
    for a in (NOT_ALERTING, rejected, NOT_ALERTING, rejected, NOT_ALERTING):
        p.record_start("s0", JobKind.CALL, t)
        locks.append(p.record_end("s0", a, t + 1))
        p.set_channel("m0", idle=True, active_slot=0, now=t + 1)
        t += 60
    assert locks[:4] == [None] * 4 and locks[4] is not None and locks[4].rule == "consecutive_not_alerting"
    assert len(locks[4].evidence) == 3
