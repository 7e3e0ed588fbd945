"""The scheduler's core driven directly: no event loop, no emulator, a clock that is a
float (tests/scheduler_harness.py). Queue order, one job per callee, why jobs wait,
deadlines, the no-eligible-SIM dead end, slot switches, and report waits."""
from __future__ import annotations

from scheduler_harness import T0, Box

from appliance.config import SmsSection
from appliance.jobs import Placement
from appliance.scheduler import (
    MAX_CHOICES_PER_ROUND,
    NO_ELIGIBLE_GRACE_SECONDS,
    JobWait,
    reports,
)


def test_jobs_go_by_priority_then_arrival_while_channels_are_idle():
    box = Box(channels=2)
    box.job("a")
    box.job("b", priority=5)
    box.job("c")
    assert box.round() == ["b", "a"]
    assert box.core.idle == 0 and list(box.core.queue.jobs) == ["c"]
    assert box.core.waiting("c") == {"waiting_for": JobWait.NO_IDLE_CHANNEL.value,
                                     "waiting_detail": "every channel is busy, cooling down, switching or down",
                                     "waiting_since": None}
    box.finish("b", {"outcome": "answered_human"}, T0 + 1)
    assert box.round(T0 + 1) == ["c"]
    assert box.core.waiting("c") is None  # not queued any more


def test_one_job_per_callee_the_next_waits_behind_it():
    box = Box(channels=2)
    box.job("first", callee="+48601000001")
    box.job("second", callee="+48601000001")
    assert box.round() == ["first"]
    w = box.core.waiting("second")
    assert w["waiting_for"] == JobWait.CALLEE_BUSY.value and w["waiting_since"] == "2024-06-01T00:00:00.000Z"
    assert box.round(T0 + 1) == []  # still blocked: it is not in the ready heap
    box.finish("first", {"outcome": "answered_human"}, T0 + 2)
    assert box.round(T0 + 2) == ["second"]


def test_a_job_waits_for_its_own_start_time():
    box = Box(channels=1)
    box.job("later", not_before=T0 + 60)
    assert box.round() == []
    assert box.core.waiting("later")["waiting_for"] == JobWait.NOT_BEFORE.value
    assert box.core.next_time() == T0 + 60
    assert box.round(T0 + 59.9) == []
    assert box.round(T0 + 60) == ["later"]


def test_a_job_past_its_deadline_never_starts():
    box = Box(channels=1)
    box.job("busy")
    box.job("late", deadline=T0 + 5)
    assert box.round() == ["busy"]
    assert box.round(T0 + 5) == []
    assert box.ended == []  # no idle channel: not looked at
    box.finish("busy", {"outcome": "answered_human"}, T0 + 6)
    assert box.round(T0 + 6) == []
    [body] = box.ended
    assert body["job_id"] == "late" and body["outcome"] == "expired" and body["final"] is True
    assert body["detail"] == "deadline passed before the job could start"  # it was never looked at
    assert "late" not in box.core.queue


def test_the_expiry_says_what_the_job_waited_for():
    box = Box(channels=2)
    box.job("a", callee="+48601000001")
    box.job("b", callee="+48601000001", deadline=T0 + 5)
    box.round()
    box.finish("a", {"outcome": "answered_human"}, T0 + 6)
    box.round(T0 + 6)
    assert box.ended[0]["detail"] == ("deadline passed before the job could start (waiting for callee_busy: "
                                      "another job for this callee is running)")


def _all_quarantined(box: Box, now: float = T0) -> None:
    for sim_id in ("s0", "s1"):
        box.policy.quarantine(sim_id, ("test",), now)


def test_a_dead_end_ends_the_job_no_eligible_sim_after_the_grace():
    box = Box(channels=2)
    _all_quarantined(box)
    box.job("j")
    assert box.round(T0) == [] and box.ended == []
    w = box.core.waiting("j")
    assert w["waiting_for"] == "sims_locked" and "quarantined" in w["waiting_detail"]
    assert box.core.recheck_at == T0 + NO_ELIGIBLE_GRACE_SECONDS  # no event may come: the loop looks again
    assert box.core.next_time() == T0 + NO_ELIGIBLE_GRACE_SECONDS
    box.round(T0 + NO_ELIGIBLE_GRACE_SECONDS - 0.5)
    assert box.ended == [] and "j" in box.core.queue
    box.round(T0 + NO_ELIGIBLE_GRACE_SECONDS)
    [body] = box.ended
    assert body["outcome"] == "no_eligible_sim" and body["waiting_for"] == "sims_locked" and body["final"] is True
    assert "j" not in box.core.queue


def test_a_dead_end_waits_while_a_modem_is_still_settling():
    box = Box(channels=2)
    _all_quarantined(box)
    box.job("j")
    box.channels.unsettled_now = True
    box.round(T0)
    box.round(T0 + NO_ELIGIBLE_GRACE_SECONDS + 30)
    assert box.ended == [] and box.core.recheck_at is None  # its settling is an event of its own
    box.channels.unsettled_now = False
    box.round(T0 + NO_ELIGIBLE_GRACE_SECONDS + 31)
    assert box.ended[0]["outcome"] == "no_eligible_sim"


def test_a_wait_that_is_not_a_dead_end_never_ends_the_job():
    box = Box(channels=1)
    box.job("a")
    box.job("b")
    box.round()
    box.core.idle = 1  # a channel looks idle, but the policy has no SIM free: not a dead end
    box.round(T0 + 10 * NO_ELIGIBLE_GRACE_SECONDS)
    assert box.ended == [] and box.core.waiting("b")["waiting_for"] == "channels_busy"


def test_the_grace_counts_from_when_the_same_wait_began():
    box = Box(channels=2)
    box.job("j")
    _all_quarantined(box)
    box.round(T0)
    box.round(T0 + 50)
    assert box.core.waiting("j")["waiting_since"] == "2024-06-01T00:00:00.000Z"
    box.round(T0 + NO_ELIGIBLE_GRACE_SECONDS)
    assert box.ended and box.ended[0]["outcome"] == "no_eligible_sim"


def test_a_sim_in_an_inactive_slot_waits_for_its_switch():
    box = Box(channels=0)
    box.add_channel("ch0", ["a0", "a1"], T0)
    box.policy.quarantine("a0", ("test",), T0)
    box.job("j")
    assert box.round() == []
    assert ("ch0", 1, "for job j") in box.channels.switches or ("ch0", 1, "planned by rotation") in box.channels.switches
    w = box.core.waiting("j")
    assert w["waiting_for"] == JobWait.SLOT_SWITCH.value and w["waiting_detail"] == "channel ch0 is switching to slot 1"
    assert "j" in box.core.queue  # back in the ready heap for the next round


def test_a_refused_switch_says_when_the_next_try_comes():
    box = Box(channels=0)
    box.add_channel("ch0", ["a0", "a1"], T0)
    box.policy.quarantine("a0", ("test",), T0)
    box.channels.refuse_switch = True
    box.job("j")
    box.round()
    w = box.core.waiting("j")
    assert w["waiting_for"] == JobWait.SLOT_SWITCH_BACKOFF.value
    assert "next try after 2024-06-01T00:01:00.000Z" in w["waiting_detail"]


def test_a_round_asks_the_policy_a_bounded_number_of_times():
    box = Box(channels=1)
    box.policy.quarantine("s0", ("test",), T0)
    for i in range(MAX_CHOICES_PER_ROUND + 10):
        box.job(f"j{i}")
    box.round()
    assert box.core.decisions == MAX_CHOICES_PER_ROUND
    assert box.core.waiting_counts() == {"sims_locked": MAX_CHOICES_PER_ROUND, "dispatch": 10}


def test_withdrawn_jobs_are_skipped():
    box = Box(channels=1)
    box.job("a")
    box.job("b")
    body = box.core.unstarted("a", "cancelled", "campaign paused", T0)
    assert body["outcome"] == "cancelled" and body["final"] is True
    box.core.queue.remove("a")
    assert box.round() == ["b"]
    assert box.core.unstarted("a", "cancelled", "again", T0) is None


def test_shown_numbers_come_from_the_store_once_then_from_memory():
    box = Box(channels=2)
    box.shown["+48601000001"] = (box.msisdn["s0"],)  # the callee saw s0's number last
    box.job("a", callee="+48601000001")
    box.round()
    [(_, d)] = box.channels.taken
    assert d.sim_id == "s1"
    box.shown["+48601000001"] = ()  # the cache, not the store, answers now
    box.core.note_shown("+48601000001", d.msisdn)
    assert box.core.shown("+48601000001") == (box.msisdn["s0"], d.msisdn)


def test_hints_shape_the_request():
    box = Box(channels=1)
    req = box.core.request({"id": "x", "kind": "sms", "callee": "+48601000001",
                            "hints": {"operator": "26002", "require": ["operator"], "pool": "p", "fixed_number": "+4860"}})
    assert (req.callee_operator, req.required_operator, req.pool, req.fixed_msisdn) == ("26002", "26002", "p", "+4860")
    req = box.core.request({"id": "y", "kind": "call", "callee": "+48601000001", "hints": {"operator": "26002"}})
    assert req.required_operator is None and req.callee_operator == "26002"


# -- report waits ----------------------------------------------------------------------------------
SMS = SmsSection()
P = Placement("ch0", "s0", "+48600000001", 1)
SPEC = {"id": "m", "kind": "sms", "callee": "+48601000001"}


def test_an_sms_waits_for_its_reports_a_day_a_ping_a_minute():
    sms = reports.pending(P, 3, SPEC, [7, 8], False, sms=SMS, now=T0)
    assert sms["deadline"] == T0 + 86400.0 and sms["refs"] == [7, 8] and sms["placement"] == ["ch0", "s0", "+48600000001", 1]
    ping = reports.pending(P, 3, SPEC, [9], True, sms=SMS, now=T0)
    assert ping["deadline"] == T0 + 60.0
    # re-armed after a restart: only what is left of the stored deadline, never negative
    assert reports.time_left(T0 + 60.0, True, sms=SMS, now=T0 + 45) == 15.0
    assert reports.time_left(T0 + 60.0, True, sms=SMS, now=T0 + 75) == 0.0
    assert reports.time_left(None, False, sms=SMS, now=T0) == 86400.0


def test_final_bodies_from_reports():
    kw = {"now": T0 + 3, "sent_at": T0, "extras": {}}
    assert reports.final_body(SPEC, P, first_only=False, state="delivered", statuses=[0], **kw)["outcome"] == "delivered"
    assert reports.final_body(SPEC, P, first_only=False, state="failed", statuses=[0x41], **kw)["outcome"] == "failed"
    assert reports.final_body(SPEC, P, first_only=False, state="pending", statuses=[0x20], **kw)["outcome"] == "no_report"
    ping = {**SPEC, "kind": "hlr"}
    body = reports.final_body(ping, P, first_only=True, state="delivered", statuses=[0], now=T0 + 3, sent_at=T0,
                              extras={"operator": "26001"})
    assert (body["outcome"], body["method"], body["seconds"], body["operator"]) == ("active", "sms_ping", 3.0, "26001")
    for statuses, outcome in (([0x20], "absent"), ([0x61], "absent"), ([0x41], "invalid"), ([], "unknown")):
        assert reports.final_body(ping, P, first_only=True, state="x", statuses=statuses, **kw)["outcome"] == outcome
