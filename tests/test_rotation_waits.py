"""Why the rotation policy refuses: every refusal names one reason a technician and a CRM
can count by (``Refusal.waiting_for``) and says whether anything but a person can lift it
(``dead_end``). The scheduler ends dead-end jobs ``no_eligible_sim`` instead of letting
them wait for ever (issue 12, item 1)."""
from __future__ import annotations

from appliance.rotation import JobKind, LockRules, Refusal, Request, SimLimits, WaitingFor
from test_rotation import NOT_ALERTING, T0, bank, msisdn_of


def refusal(p, req: Request, now: float = T0) -> Refusal:
    r = p.choose(req, now)
    assert isinstance(r, Refusal), r
    return r


def test_no_sim_of_a_required_operator_is_a_dead_end():
    p = bank([("a", "26001", "m0", 0)])
    r = refusal(p, Request("+48601000001", required_operator="26003"))
    assert r.waiting_for is WaitingFor.NO_SIM and r.dead_end


def test_operator_sims_locked_until_released_are_a_dead_end_only_when_required():
    rules = LockRules(consecutive_not_alerting=1, lock_seconds=None)  # locked until released
    p = bank([("a", "26001", "m0", 0), ("b", "26002", "m1", 0)], lock_rules=rules)
    p.record_start("a", JobKind.CALL, T0)
    p.record_end("a", NOT_ALERTING, T0 + 1)
    p.set_channel("m0", idle=True, active_slot=0, now=T0 + 1)
    required = refusal(p, Request("+48601000001", required_operator="26001"), T0 + 2)
    assert required.waiting_for is WaitingFor.OPERATOR_SIMS_LOCKED and required.dead_end
    assert "locked until released" in required.reason
    # The same operator as a preference: the other operator's SIM places it.
    d = p.choose(Request("+48601000001", callee_operator="26001"), T0 + 2)
    assert not isinstance(d, Refusal) and d.sim_id == "b"


def test_a_timed_lock_is_a_wait_with_a_time_not_a_dead_end():
    rules = LockRules(consecutive_not_alerting=1, lock_seconds=600.0)
    p = bank([("a", "26001", "m0", 0)], lock_rules=rules)
    p.record_start("a", JobKind.CALL, T0)
    p.record_end("a", NOT_ALERTING, T0 + 1)
    p.set_channel("m0", idle=True, active_slot=0, now=T0 + 1)
    r = refusal(p, Request("+48601000001"), T0 + 2)
    assert r.waiting_for is WaitingFor.SIMS_LOCKED and r.retry_at == T0 + 601 and not r.dead_end


def test_the_callees_last_number_as_the_only_sim_is_a_dead_end():
    p = bank(1)
    r = refusal(p, Request("+48601000001", shown=(msisdn_of("s0"),)))
    assert r.waiting_for is WaitingFor.CALLEE_LAST_NUMBER and r.dead_end


def test_busy_sims_are_a_wait_for_an_event_not_a_dead_end():
    p = bank(1)
    p.record_start("s0", JobKind.CALL, T0)
    r = refusal(p, Request("+48601000001"))
    assert r.waiting_for is WaitingFor.CHANNELS_BUSY and r.retry_at is None and not r.dead_end
    # busy beats "last number": the busy SIM may free up for him (it is not his last)
    p2 = bank(2)
    p2.record_start("s1", JobKind.CALL, T0)
    r2 = refusal(p2, Request("+48601000001", shown=(msisdn_of("s0"),)))
    assert r2.waiting_for is WaitingFor.CHANNELS_BUSY and not r2.dead_end


def test_caps_say_caps_with_their_time():
    p = bank(1, per_sim={"s0": SimLimits(calls_per_hour=1)})
    p.record_start("s0", JobKind.CALL, T0)
    p.record_end("s0", NOT_ALERTING, T0 + 1)
    p.set_channel("m0", idle=True, active_slot=0, now=T0 + 1)
    r = refusal(p, Request("+48601000001"), T0 + 2)
    assert r.waiting_for is WaitingFor.CAPS and r.retry_at is not None and not r.dead_end


def test_the_census_follows_the_sims_after_a_release():
    rules = LockRules(consecutive_not_alerting=1, lock_seconds=None)
    p = bank(1, lock_rules=rules)
    p.record_start("s0", JobKind.CALL, T0)
    p.record_end("s0", NOT_ALERTING, T0 + 1)
    p.set_channel("m0", idle=True, active_slot=0, now=T0 + 1)
    assert refusal(p, Request("+48601000001"), T0 + 2).waiting_for is WaitingFor.SIMS_LOCKED
    p.release("s0", T0 + 3)
    assert not isinstance(p.choose(Request("+48601000001"), T0 + 4), Refusal)
    p.record_start("s0", JobKind.CALL, T0 + 4)
    assert refusal(p, Request("+48601000002"), T0 + 5).waiting_for is WaitingFor.CHANNELS_BUSY
