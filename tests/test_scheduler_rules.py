"""The scheduler core's rules, driven directly on a fake clock (plain floats), a fake
bank and a fake store (tests/scheduler_harness.py): the retry policy (which outcomes
retry, after how long, up to which cap, what is final), quarantine as a lock rule of the
rotation policy, and what a restart makes of an interrupted attempt."""
from __future__ import annotations

import pytest
from scheduler_harness import T0, Box

from appliance.config import RetrySection
from appliance.rotation import SimState
from appliance.rotation.locks import (
    Barring,
    BarringRuns,
    QuarantineRule,
    Step,
    barring_step,
)
from appliance.scheduler import CHANNEL_FAILURES
from appliance.scheduler.recovery import interrupted
from appliance.scheduler.retry import JobState, RetryRules, after_attempt, after_restart

DEFAULTS = RetryRules.of(RetrySection(), None)  # 3 attempts, 300 s doubling, 5 channel retries 5 s apart
BUSY, NO_ANSWER, ANSWERED, CHANNEL, NETWORK = "busy", "no_answer", "answered_human", "channel_error", "network_error"


# -- the retry policy, as a function ---------------------------------------------------------
def test_the_defaults_are_the_documented_ones():
    assert (DEFAULTS.max_attempts, DEFAULTS.backoff_seconds, DEFAULTS.backoff_factor) == (3, 300.0, 2.0)
    assert DEFAULTS.retry_outcomes == {BUSY, NO_ANSWER, NETWORK, CHANNEL}
    assert (DEFAULTS.max_channel_retries, DEFAULTS.channel_retry_seconds) == (5, 5.0)
    assert not DEFAULTS.retry_interrupted
    assert CHANNEL_FAILURES == {CHANNEL, NETWORK}


@pytest.mark.parametrize(("history", "delay"), [
    ([BUSY], 300.0),  # backoff_seconds after the first attempt
    ([NO_ANSWER, BUSY], 600.0),  # times backoff_factor after the second
])
def test_callee_outcomes_back_off_exponentially(history, delay):
    v = after_attempt(DEFAULTS, history, awaiting_report=False, now=T0)
    assert v.again and not v.final and v.state is JobState.WAITING_RETRY
    assert v.next_at == T0 + delay


def test_the_third_callee_attempt_is_final():
    v = after_attempt(DEFAULTS, [BUSY, NO_ANSWER, BUSY], awaiting_report=False, now=T0)
    assert (v.again, v.next_at, v.final, v.state) == (False, None, True, JobState.DONE)


@pytest.mark.parametrize("outcome", [ANSWERED, "answered_machine", "rejected", "unreachable", "invalid_number",
                                     "delivered", "failed", "active", "cancelled"])
def test_outcomes_not_listed_are_final_at_once(outcome):
    v = after_attempt(DEFAULTS, [outcome], awaiting_report=False, now=T0)
    assert (v.again, v.final, v.state) == (False, True, JobState.DONE)


@pytest.mark.parametrize("outcome", [CHANNEL, NETWORK])
def test_our_failures_are_tried_again_soon_without_using_the_callee_budget(outcome):
    # two callee attempts used, then four of ours: still tried again, 5 s later each time
    history = [BUSY, BUSY, CHANNEL, NETWORK, CHANNEL, outcome]
    v = after_attempt(DEFAULTS, history, awaiting_report=False, now=T0)
    assert v.again and v.next_at == T0 + 5.0 and v.state is JobState.WAITING_RETRY


def test_our_failures_have_their_own_cap():
    v = after_attempt(DEFAULTS, [CHANNEL] * 4 + [NETWORK], awaiting_report=False, now=T0)
    assert (v.again, v.final) == (False, True)
    # our failures do not count against the callee budget either way
    v = after_attempt(DEFAULTS, [CHANNEL] * 4 + [BUSY], awaiting_report=False, now=T0)
    assert v.again and v.next_at == T0 + 300.0


def test_an_attempt_awaiting_reports_is_neither_retried_nor_final():
    v = after_attempt(DEFAULTS, ["submitted"], awaiting_report=True, now=T0)
    assert (v.again, v.next_at, v.final, v.state) == (False, None, False, JobState.AWAITING_REPORT)
    v = after_attempt(DEFAULTS, [CHANNEL], awaiting_report=True, now=T0)
    assert not v.again and v.state is JobState.AWAITING_REPORT


def test_a_job_overrides_the_section_field_by_field():
    rules = RetryRules.of(RetrySection(), {"max_attempts": 5, "backoff_seconds": 10, "retry_outcomes": ["busy"]})
    assert (rules.max_attempts, rules.backoff_seconds, rules.backoff_factor) == (5, 10.0, 2.0)
    v = after_attempt(rules, [BUSY] * 4, awaiting_report=False, now=T0)
    assert v.again and v.next_at == T0 + 80.0  # 10 * 2**3
    assert after_attempt(rules, [BUSY] * 5, awaiting_report=False, now=T0).final
    assert after_attempt(rules, [NO_ANSWER], awaiting_report=False, now=T0).final  # no longer listed


def test_an_interrupted_attempt_is_retried_only_when_the_rules_say_so():
    assert not after_restart(DEFAULTS, 1)
    on = RetryRules.of(RetrySection(retry_interrupted=True), None)
    assert after_restart(on, 2) and not after_restart(on, 3)


def test_recovery_closes_an_interrupted_attempt():
    row = {"attempt_id": 7, "job_id": "j", "n": 1, "channel_id": "ch0", "sim_id": "s0", "msisdn": "+48600000001",
           "started_at": T0, "spec": {"id": "j", "kind": "call", "callee": "+48601000001"}}
    done = interrupted(row, RetrySection(), T0 + 10)
    assert done["result"]["outcome"] == "interrupted" and done["result"]["final"] is True
    assert (done["job_state"], done["next_attempt_at"], done["attempt_state"]) == ("done", None, "interrupted")
    again = interrupted({**row, "spec": {**row["spec"], "retry": {"retry_interrupted": True}}}, RetrySection(), T0 + 10)
    assert again["result"]["final"] is False
    assert (again["job_state"], again["next_attempt_at"]) == ("waiting_retry", T0 + 10)


# -- the retry policy, through the core ------------------------------------------------------
def test_a_busy_callee_is_called_again_after_the_backoff_and_then_given_up():
    box = Box(channels=1)
    box.job("j")
    t = T0
    for n, delay in enumerate((300.0, 600.0), start=1):
        assert box.round(t) == ["j"]
        c = box.finish("j", {"outcome": BUSY}, t)
        assert c.again and c.ready_at == t + delay and c.row["job_state"] == "waiting_retry"
        assert c.row["result"]["final"] is False and c.row["result"]["retry_at"]
        assert box.round(t + delay - 1) == []  # not before its time
        assert box.core.waiting("j")["waiting_for"] == "retry_backoff"
        assert box.core.next_time() == t + delay
        t += delay
    assert box.round(t) == ["j"]
    c = box.finish("j", {"outcome": BUSY}, t)
    assert not c.again and c.row["result"]["final"] is True and c.row["job_state"] == "done"
    assert "retry_at" not in c.row["result"] and "j" not in box.core.queue
    assert box.outcome_lookups == ["j"]  # the store's history is read once per job


def test_the_store_history_counts_after_a_restart():
    box = Box(channels=1)
    box.outcomes["j"] = [BUSY, NO_ANSWER]  # two attempts before the restart
    box.job("j")
    box.round(T0)
    box.attempts["j"] = 3
    c = box.finish("j", {"outcome": BUSY}, T0)
    assert not c.again and c.row["final"] is True


def test_an_sms_awaiting_reports_is_closed_but_not_final():
    box = Box(channels=1)
    box.job("m", kind="sms", text="hi")
    box.round(T0)
    c = box.finish("m", {"outcome": "submitted"}, T0, pending={"refs": [1]})
    assert not c.again and c.row["job_state"] == "awaiting_report" and c.row["final"] is False
    assert c.row["pending"] == {"refs": [1]} and box.outcome_lookups == []


# -- quarantine: a lock rule of the rotation policy --------------------------------------------
RULE = QuarantineRule(frozenset({8, 21, 50, 57}), 3)
REFUSED = {"outcome": CHANNEL, "cause": 50}  # a call refused before alerting
NO_RETRY = {"retry_outcomes": ()}  # each job one attempt: a round starts the job just queued


@pytest.mark.parametrize(("sign", "step"), [
    (Barring(voice=True, alerted=False, cause=50, sms_refused=False, channel_trouble=True), Step.COUNT),
    (Barring(voice=True, alerted=False, cause=21, sms_refused=False, channel_trouble=False), Step.COUNT),
    (Barring(voice=True, alerted=True, cause=50, sms_refused=False, channel_trouble=True), Step.BREAK),
    (Barring(voice=True, alerted=False, cause=17, sms_refused=False, channel_trouble=False), Step.BREAK),
    (Barring(voice=True, alerted=False, cause=None, sms_refused=False, channel_trouble=True), Step.BREAK),
    (Barring(voice=False, alerted=False, cause=None, sms_refused=True, channel_trouble=True), Step.COUNT),
    (Barring(voice=False, alerted=False, cause=None, sms_refused=False, channel_trouble=True), Step.KEEP),
    (Barring(voice=False, alerted=False, cause=None, sms_refused=False, channel_trouble=False), Step.BREAK),
])
def test_barring_steps(sign, step):
    assert barring_step(sign, RULE) is step


def test_a_run_of_barring_signs_quarantines_with_one_evidence_line_each():
    runs = BarringRuns()
    sign = Barring(voice=True, alerted=False, cause=50, sms_refused=False, channel_trouble=True)
    assert runs.observe("s0", "a", T0, sign, RULE) is None
    assert runs.observe("s0", "b", T0 + 1, sign, RULE) is None
    evidence = runs.observe("s0", "c", T0 + 2, sign, RULE)
    assert evidence == ("job a: cause 50 without alerting at 2024-06-01T00:00:00.000Z",
                        "job b: cause 50 without alerting at 2024-06-01T00:00:01.000Z",
                        "job c: cause 50 without alerting at 2024-06-01T00:00:02.000Z")
    assert runs.runs["s0"] == []  # the quarantine consumed the run


def _calls(box: Box, results: list[dict], start: float = T0) -> list:
    closings = []
    for i, result in enumerate(results):
        box.job(f"q{start}-{i}")
        assert box.round(start + i)
        closings.append(box.finish(f"q{start}-{i}", result, start + i))
    return closings


def test_three_refused_calls_in_a_row_quarantine_the_sim():
    box = Box(channels=1, retry=NO_RETRY)
    closings = _calls(box, [REFUSED] * 3)
    assert [c.quarantined is not None for c in closings] == [False, False, True]
    assert len(closings[-1].quarantined) == 3
    assert box.policy.state("s0", T0 + 3) is SimState.QUARANTINED
    box.job("after")
    assert box.round(T0 + 10) == [] and box.core.waiting("after")["waiting_for"] == "sims_locked"


def test_an_alerted_call_breaks_the_run():
    box = Box(channels=1, retry=NO_RETRY)
    _calls(box, [REFUSED, REFUSED, {"outcome": NO_ANSWER, "alerting_at": "x"}, REFUSED, REFUSED])
    assert box.policy.state("s0", T0 + 5) is not SimState.QUARANTINED


def test_the_rule_follows_the_section():
    box = Box(channels=1, retry=NO_RETRY, quarantine={"causes": (8,), "consecutive": 2})
    _calls(box, [REFUSED, REFUSED])  # cause 50 is not one of this section's
    assert box.policy.state("s0", T0 + 2) is not SimState.QUARANTINED
    _calls(box, [{"outcome": CHANNEL, "cause": 8}] * 2, start=T0 + 100)
    assert box.policy.state("s0", T0 + 200) is SimState.QUARANTINED


def test_sms_refused_as_not_subscribed_count_and_other_sms_trouble_does_not_break():
    box = Box(channels=1, retry=NO_RETRY)
    blocked = {"outcome": CHANNEL, "sim_blocked": True}
    for i, result in enumerate([blocked, {"outcome": CHANNEL}, {"outcome": NETWORK}, blocked, blocked]):
        box.job(f"m{i}", kind="sms", text="x")
        assert box.round(T0 + i)
        c = box.finish(f"m{i}", result, T0 + i)
    assert c.quarantined is not None and all("SMS refused" in line for line in c.quarantined)
    assert box.policy.state("s0", T0 + 9) is SimState.QUARANTINED


def test_a_submitted_sms_breaks_the_run():
    box = Box(channels=1, retry=NO_RETRY)
    blocked = {"outcome": CHANNEL, "sim_blocked": True}
    for i, result in enumerate([blocked, blocked, {"outcome": "submitted"}, blocked, blocked]):
        box.job(f"m{i}", kind="sms", text="x")
        assert box.round(T0 + i)
        box.finish(f"m{i}", result, T0 + i)
    assert box.policy.state("s0", T0 + 9) is not SimState.QUARANTINED


def test_a_probe_call_speaks_by_its_cause_and_an_sms_ping_does_not():
    box = Box(channels=1, retry=NO_RETRY)
    methods = ["sms_ping"] * 3 + ["probe_call", "sms_ping", "probe_call", "sms_ping", "probe_call"]
    for i, method in enumerate(methods):
        box.job(f"h{i}", kind="hlr", method=method)
        assert box.round(T0 + i)
        c = box.finish(f"h{i}", REFUSED, T0 + i)  # (an SMS ping's result never carries a cause)
        assert (c.quarantined is not None) == (i == len(methods) - 1)
    assert box.policy.state("s0", T0 + 9) is SimState.QUARANTINED
