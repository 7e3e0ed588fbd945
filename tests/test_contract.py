"""The wire contract (common/contract.py): every job kind, every outcome and every link
message survives JSON both ways unchanged; the controller's jobs pass the appliance's
check; bad input names the field and the reason; and the enums the layers use are the
contract's own."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

import msgspec
import pytest

from common import contract as c
from common.contract import ContractError, Job, JobKind, Outcome

CALLEE = "+48600100200"


def jobs() -> list[Job]:
    """One job of every kind, each with every part it can carry."""
    common = dict(callee=CALLEE, priority=5, not_before=1.0, deadline=2_000_000_000.0, campaign="c1", contact=7,
                  hints=c.Hints(operator="26001", require=["operator"], pool="creditor-a", fixed_number="+48690000001",
                                callee_operator="26002"),
                  retry=c.Retry(max_attempts=3, backoff_seconds=300, backoff_factor=2, retry_outcomes=["busy"],
                                retry_interrupted=True, max_channel_retries=2, channel_retry_seconds=5.5))
    return [
        Job(id="call-1", kind=JobKind.CALL, call=c.CallOptions(max_ring_seconds=30, max_talk_seconds=60.0,
                                                               on_answer=c.OnAnswer.PLAY, message="Dzień dobry"), **common),
        Job(id="call-amd", kind=JobKind.CALL, call=c.CallOptions(on_answer=c.OnAnswer.AMD, on_machine=c.OnMachine.LEAVE_MESSAGE,
                                                                 on_human=c.OnHuman.HANGUP, message="Prosimy o kontakt",
                                                                 lang="en"), **common),
        Job(id="call-bot", kind=JobKind.CALL, call=c.CallOptions(
            on_answer=c.OnAnswer.AMD, on_human=c.OnHuman.VOICEBOT, dialogue="promise_to_pay",
            voicebot=c.VoicebotVars(creditor="Kredyt Plus", debtor_name="Jan Kowalski", amount=Decimal("123.45"),
                                    currency="PLN", due_date=dt.date(2026, 2, 28), window_end=dt.date(2026, 3, 31),
                                    window_start=dt.date(2026, 3, 1))), **common),
        Job(id="sms-1", kind=JobKind.SMS, text="Prosimy o wpłatę", report=False, **common),
        Job(id="hlr-1", kind=JobKind.HLR, method=c.HlrMethod.PROBE_CALL, **common),
        Job(id="bare", kind=JobKind.HLR, callee=CALLEE),
    ]


@pytest.mark.parametrize("job", jobs(), ids=lambda j: j.id)
def test_every_job_kind_round_trips_through_json(job):
    data = msgspec.json.encode(job)
    assert msgspec.json.decode(data, type=Job) == job
    assert c.job_from(msgspec.json.decode(data)) == job
    assert msgspec.json.encode(c.job_from(msgspec.json.decode(data))) == data


def test_unset_fields_stay_off_the_wire():
    assert msgspec.json.decode(msgspec.json.encode(Job(id="j", kind=JobKind.HLR, callee=CALLEE))) == {
        "id": "j", "kind": "hlr", "callee": CALLEE}


@pytest.mark.parametrize("outcome", list(Outcome), ids=lambda o: o.value)
def test_every_outcome_round_trips_in_a_result(outcome):
    result = c.Result(job_id="j", outcome=outcome, kind=JobKind.CALL, final=True)
    assert msgspec.json.decode(msgspec.json.encode(result), type=c.Result) == result


def test_the_outcome_enum_covers_what_every_layer_produces_and_expects():
    from appliance.config import RetrySection
    from controller.campaigns import NEXT
    from modem_drivers.q850 import CAUSES

    values = {o.value for o in Outcome}
    assert {o.value for _, o in CAUSES.values()} <= values  # calls, by release cause
    assert {o for table in NEXT.values() for o in table} | set(RetrySection().retry_outcomes) <= values
    # appliance/jobs/ (HlrStatus, SMS), appliance/scheduler/ (its own endings), the
    # controller's store (NOT_PLACED) and its refusals:
    assert {"active", "absent", "invalid", "unknown", "submitted", "delivered", "failed", "no_report", "interrupted",
            "expired", "cancelled", "no_eligible_sim", "channel_error", "network_error", "refused_by_policy"} <= values


# Result bodies as the appliance writes them (appliance/jobs/, appliance/scheduler/) and
# the controller's refusal: decoded and encoded again, each is the same JSON.
RESULTS = [
    {"job_id": "c1.7.1.0", "kind": "call", "callee": CALLEE, "attempt": 1, "channel_id": "m1", "sim_id": "8948",
     "number_shown": "+48690000001", "outcome": "answered_human", "cause": 16, "cause_name": "Normal call clearing",
     "local_release": True, "dialed_at": "2026-01-01T10:00:00.000Z", "alerting_at": "2026-01-01T10:00:02.000Z",
     "answered_at": "2026-01-01T10:00:05.000Z", "ended_at": "2026-01-01T10:00:35.500Z", "talk_seconds": 30.5,
     "answered_monotonic": 1234.5, "message_played": False, "message_seconds": 0.0, "message_error": "no TTS",
     "final": True, "seq": 3},
    {"job_id": "c", "kind": "call", "callee": CALLEE, "attempt": 2, "channel_id": "m1", "sim_id": "s", "number_shown": "+4869",
     "outcome": "channel_error", "cause": None, "error": "port gone", "dialed_at": "2026-01-01T10:00:00.000Z",
     "retry_at": "2026-01-01T10:00:05.000Z", "final": False},
    {"job_id": "s", "kind": "sms", "callee": CALLEE, "attempt": 1, "channel_id": "m1", "sim_id": "s", "number_shown": "+4869",
     "outcome": "submitted", "parts": 2, "references": [7, 8], "submitted_at": "2026-01-01T10:00:00.000Z", "final": False},
    {"job_id": "s", "kind": "sms", "callee": CALLEE, "attempt": 1, "channel_id": "m1", "sim_id": "s", "number_shown": "+4869",
     "final": True, "tp_status": [0, 0], "at": "2026-01-01T10:00:09.000Z", "outcome": "delivered"},
    {"job_id": "s", "kind": "sms", "callee": CALLEE, "outcome": "channel_error", "error": "+CMS ERROR: 50",
     "sim_blocked": True, "submitted_at": "2026-01-01T10:00:00.000Z"},
    {"job_id": "h", "kind": "hlr", "callee": CALLEE, "attempt": 1, "channel_id": "m1", "sim_id": "s", "number_shown": "+4869",
     "outcome": "active", "method": "probe_call", "cause": 16, "cause_name": "Normal call clearing", "alerted": True,
     "seconds": 3.25, "operator": "26002"},
    {"job_id": "h", "kind": "hlr", "callee": CALLEE, "outcome": "unknown", "method": "sms_ping", "tp_status": None, "seconds": 60},
    {"job_id": "x", "kind": "call", "callee": CALLEE, "outcome": "no_eligible_sim", "detail": "every SIM quarantined",
     "final": True, "at": "2026-01-01T10:00:00.000Z", "waiting_for": "sims_locked"},
    {"job_id": "x", "kind": "call", "callee": CALLEE, "attempt": 1, "channel_id": "m1", "sim_id": "s", "number_shown": "+4869",
     "outcome": "interrupted", "started_at": "2026-01-01T10:00:00.000Z", "detail": "the appliance stopped", "final": True},
    {"job_id": "x", "outcome": "cancelled", "final": True, "at": "2026-01-01T10:00:00.000Z"},
    {"job_id": "a", "kind": "call", "callee": CALLEE, "outcome": "answered_machine", "cause": 16,
     "amd": {"decision": "human", "rule": "greeting_then_silence", "decided_ms": 1240, "revised": True,
             "revised_ms": 3100, "revised_rule": "long_greeting"},
     "beep_ms": 5320, "message_played": True, "message_seconds": 4.2},
    {"job_id": "a", "kind": "call", "callee": CALLEE, "outcome": "answered_human",
     "amd": {"decision": "unsure", "rule": "too_long", "decided_ms": 5000, "revised": False},
     "message_played": False, "message_seconds": 1.1, "message_error": "the callee hung up before the message ended"},
    {"job_id": "b", "kind": "call", "callee": CALLEE, "outcome": "answered_human",
     "amd": {"decision": "human", "rule": "question_then_silence", "decided_ms": 900, "revised": False},
     "voicebot": {"identity": "confirmed", "promise_date": "2026-03-12", "callback_requested": False,
                  "path": ["greet", "identity", "debt", "ask_date", "confirm", "thanks"],
                  "digits": [{"key": "1", "at": 4.1}], "end_state": "thanks", "hung_up": False}},
    {"job_id": "a", "kind": "call", "callee": CALLEE, "outcome": "audio_fault", "error": "no frames within 500 ms"},
    {"job_id": "x", "kind": "sms", "callee": CALLEE, "outcome": "refused_by_policy", "reason": "opted_out",
     "detail": "opted out", "retry_at": None, "final": True},
]


@pytest.mark.parametrize("body", RESULTS, ids=lambda r: r["outcome"])
def test_result_bodies_round_trip_unchanged(body):
    result = msgspec.convert(body, c.Result)
    assert msgspec.to_builtins(result) == body
    assert msgspec.json.decode(msgspec.json.encode(result)) == body


# -- the controller's jobs on the appliance ------------------------------------------------------
def built(kind_step: int, prefixes=None) -> dict:
    from controller import campaigns as cp
    from controller.dispatcher import build_job
    from controller.rules import (
        JobKind as Kind,  # the contract's (test_the_layers_use_the_contracts_enums_and_bounds)
    )

    steps = (cp.Step(Kind.HLR, method="probe_call"), cp.Step(Kind.CALL, attempts=3, ring_seconds=25),
             cp.Step(Kind.SMS, text="Dzień dobry {name}"))
    contact = {"id": 7, "step": kind_step, "n": 1, "gen": 2, "phones": [CALLEE, "+48600100201"], "name": "Jan"}
    return build_job(contact, {"id": "c1"}, steps, 1_767_225_900.0, prefixes or {})


def test_build_job_keeps_todays_json():
    base = {"priority": 0, "deadline": 1_767_225_900.0, "campaign": "c1", "contact": 7, "retry": {"max_attempts": 1}}
    assert built(0) == {**base, "id": "c1.7.0.1.g2", "kind": "hlr", "callee": CALLEE, "method": "probe_call", "hints": {}}
    assert built(1) == {**base, "id": "c1.7.1.1.g2", "kind": "call", "callee": "+48600100201",
                        "call": {"max_ring_seconds": 25}, "hints": {}}
    assert built(2) == {**base, "id": "c1.7.2.1.g2", "kind": "sms", "callee": CALLEE, "text": "Dzień dobry Jan",
                        "report": True, "hints": {}}


@pytest.mark.parametrize("step", [0, 1, 2])
def test_a_job_the_controller_builds_passes_the_appliances_check(step):
    from appliance.jobspec import validate_job

    raw = msgspec.json.decode(msgspec.json.encode(built(step, {"+48600": "26001"})))
    job = c.job_from(raw)
    assert msgspec.to_builtins(job) == raw  # nothing added, nothing lost
    spec = validate_job(raw)
    assert spec["id"] == raw["id"] and spec["kind"] == raw["kind"] and spec["hints"] == {"operator": "26001"}


def test_the_appliance_spec_fills_the_defaults_the_scheduler_reads():
    from appliance.jobspec import validate_job

    assert validate_job({"id": "j", "kind": "call", "callee": "600 100 200", "region": "PL"}) == {
        "id": "j", "kind": "call", "callee": CALLEE, "priority": 0, "not_before": None, "deadline": None,
        "call": {}, "hints": {}}
    assert validate_job({"id": "j", "kind": "sms", "callee": CALLEE, "text": "x", "call": {"bogus": 1}, "not_before": 5}) == {
        "id": "j", "kind": "sms", "callee": CALLEE, "priority": 0, "not_before": 5.0, "deadline": None,
        "text": "x", "report": True, "hints": {}}  # another kind's part is ignored, unchecked
    assert validate_job({"id": "j", "kind": "hlr", "callee": CALLEE, "contact": None})["method"] == "sms_ping"


# -- bad input -------------------------------------------------------------------------------------
GOOD = {"id": "j", "kind": "call", "callee": CALLEE}
VB = {"creditor": "Kredyt Plus", "debtor_name": "Jan Kowalski", "amount": "123.45", "currency": "PLN",
      "due_date": "2026-02-28", "window_end": "2026-03-31"}


@pytest.mark.parametrize("change, field, words", [
    ({"id": "  "}, "id", "non-empty string of at most 128"),
    ({"kind": "fax"}, "kind", "expected one of call, sms, hlr, got 'fax'"),
    ({"kind": None}, "kind", "got None"),
    ({"callee": "+48 60a bcd"}, "callee", "letters are never read as keypad digits"),
    ({"callee": None}, "callee", "E.164"),
    ({"region": "POL"}, "region", "ISO 3166"),
    ({"priority": 2**70}, "priority", "out of range: at least -2,147,483,648"),
    ({"priority": 1.5}, "priority", "expected an integer, got 1.5"),
    ({"not_before": 10, "deadline": 5}, "deadline", "must be after not_before"),
    ({"deadline": -1}, "deadline", "UTC epoch seconds"),
    ({"call": {"max_ring_seconds": 0}}, "call.max_ring_seconds", "above 0 and at most 180"),
    ({"call": {"ring_secs": 3}}, "call.ring_secs", "unknown field (a typo?); known: max_ring_seconds"),
    ({"call": {"on_answer": "dance"}}, "call.on_answer", "hangup, hold, play, amd, got 'dance'"),
    ({"call": {"on_answer": "amd", "on_machine": "wait"}}, "call.on_machine", "leave_message, hangup, got 'wait'"),
    ({"call": {"on_answer": "amd", "on_human": "sing"}}, "call.on_human", "play, voicebot, hangup, got 'sing'"),
    ({"call": {"on_answer": "amd", "on_human": "voicebot", "dialogue": "promise_to_pay"}}, "call.voicebot",
     "needs the dialogue's variables"),
    ({"call": {"on_answer": "amd", "on_human": "voicebot", "voicebot": VB}}, "call.dialogue", "needs the dialogue to run"),
    ({"call": {"voicebot": {**VB, "currency": "zł"}}}, "call.voicebot.currency", "ISO 4217"),
    ({"call": {"voicebot": {**VB, "due_date": "31.02.2026"}}}, "call.voicebot.due_date", "ISO 8601 date"),
    ({"call": {"voicebot": {**VB, "window_start": "2026-04-01"}}}, "call.voicebot.window_end", "before window_start"),
    ({"call": {"on_answer": "amd", "lang": "de"}}, "call.lang", "pl, en, got 'de'"),
    ({"call": {"on_answer": "play"}}, "call.message", 'on_answer "play" needs the message'),
    ({"call": {"message": "x" * 137}}, "call.message", "137 characters is more than 136"),
    ({"call": []}, "call", "expected an object"),
    ({"kind": "sms"}, "text", "an SMS needs a non-empty text"),
    ({"kind": "sms", "text": "x" * 1531}, "text", "1531 characters is more than 1530"),
    ({"kind": "hlr", "method": "ask"}, "method", "sms_ping, probe_call"),
    ({"hints": {"colour": "red"}}, "hints", "expected an object with operator"),
    ({"hints": {"require": ["operator"]}}, "hints.require", "requires hints.operator"),
    ({"hints": {"require": ["pool"]}}, "hints.require", "must hold"),
    ({"hints": {"operator": "Plus"}}, "hints.operator", "MCC+MNC"),
    ({"hints": {"callee_operator": "26001\n"}}, "hints.callee_operator", "MCC+MNC"),
    ({"hints": {"pool": ""}}, "hints.pool", "pool name of 1-128"),
    ({"hints": {"fixed_number": "+48 690 ABC"}}, "hints.fixed_number", "not a phone number"),
    ({"retry": {"max_attempts": "three"}}, "retry.max_attempts", "expected an integer, got 'three'"),
    ({"retry": {"backoff_factor": 1e308}}, "retry.backoff_factor", "at most 10"),
    ({"retry": {"retry_outcomes": "busy"}}, "retry.retry_outcomes", "list of outcomes"),
    ({"retry": {"retry_outcomes": ["x" * 41]}}, "retry.retry_outcomes", "list of outcomes"),
    ({"retry": {"retry_interrupted": "yes"}}, "retry.retry_interrupted", "true or false"),
    ({"retry": {"tries": 3}}, "retry", "expected an object with max_attempts"),
    ({"contact": 2**63}, "contact", "non-negative 64-bit integer"),
    ({"colour": 1}, "colour", "unknown field (a typo?)"),
])
def test_bad_jobs_name_the_field_and_the_reason(change, field, words):
    with pytest.raises(ContractError) as err:
        c.job_from({**GOOD, **change})
    assert err.value.field == field and words in err.value.reason, (err.value.field, err.value.reason)


def test_a_missing_field_and_a_non_object_are_named():
    for missing in ("id", "kind", "callee"):
        with pytest.raises(ContractError) as err:
            c.job_from({k: v for k, v in GOOD.items() if k != missing})
        assert err.value.field == missing
    with pytest.raises(ContractError) as err:
        c.job_from(["not", "a", "job"])
    assert (err.value.field, err.value.reason) == ("job", "expected a JSON object")


# -- the link's messages ---------------------------------------------------------------------------
MESSAGES = [
    c.Hello(appliance_id="box-1", version="0.1.0", channels=4, idle=3, capacity=8, operators={"26001": 2},
            sims=[c.SimInfo(sim_id="8948", msisdn="+48690000001", operator="26001", channel_id="m1", slot=0, active=True,
                            state="ready"),
                  c.SimInfo(sim_id="8949", msisdn=None, operator="", channel_id="m1", slot=1, active=False,
                            state="not_in_rotation")]),
    c.Jobs(batch_id="b-1", jobs=[msgspec.to_builtins(j) for j in jobs()]),
    c.Ack(batch_id="b-1", accepted=["call-1"], rejected=[c.Rejection(id="sms-1", reason="lease already expired"),
                                                         c.Rejection(id=None, reason="job: expected a JSON object")]),
    c.Results(results=[msgspec.convert(r, c.Result) for r in RESULTS]),
    c.ResultsAck(upto=12, count=3),
    c.ResultsAck(upto=None, count=0),
    c.Inbound(events=[c.InboundEvent(id="in-1", kind="sms", from_=CALLEE, to="+48690000001", text="STOP", channel_id="m1",
                                     sim_id="8948", at="2026-01-01T10:00:00.000Z")]),
    c.InboundAck(ids=["in-1"]),
    c.Heartbeat(at="2026-01-01T10:00:00.000Z", idle=3, capacity=8, queued=1, running=1),
    c.Heartbeat(at="2026-01-01T10:00:00Z"),
    c.Cancel(ids=["c1.7.1.0"], reason="campaign paused or cancelled"),
    c.Error(detail="send hello first"),
]


@pytest.mark.parametrize("msg", MESSAGES, ids=lambda m: type(m).__name__)
def test_every_link_message_round_trips(msg):
    data = c.encode_message(msg)
    assert c.decode_message(data) == msg
    assert c.decode_message(data.decode()) == msg


def test_link_messages_keep_todays_field_names():
    inbound = msgspec.json.decode(c.encode_message(MESSAGES[6]))
    assert inbound["type"] == "inbound" and set(inbound["events"][0]) == {
        "id", "kind", "from", "to", "text", "channel_id", "sim_id", "at"}
    assert msgspec.json.decode(c.encode_message(c.Heartbeat(at="t"))) == {"type": "heartbeat", "at": "t"}
    hello = {"type": "hello", "appliance_id": "a", "version": "0.1.0", "channels": 1, "idle": 1, "capacity": 2,
             "operators": {}, "sims": []}
    assert msgspec.json.decode(c.encode_message(c.decode_message(msgspec.json.encode(hello)))) == hello


@pytest.mark.parametrize("frame, field, words", [
    (b'{"type": "hello", "channels": -1}', "hello.channels", "non-negative integer"),
    (b'{"type": "teleport"}', "type", "unknown message type 'teleport'"),
    (b'{"channels": 1}', "type", "missing; expected one of hello, jobs"),
    (b'{"type": "results", "results": [{"job_id": "j", "outcome": "exploded"}]}', "results.results.outcome", "invalid enum"),
    (b'{"type": "cancel", "ids": [1]}', "cancel.ids", "expected `str`"),
    (b'{"type": "hello", "operators": [], "sims": []}', "hello.operators", "expected an object of operator"),
    (b'{"type": "hello", "sims": {}}', "hello.sims", "expected a list"),
    (b'{"type": "hello", "sims": [1]}', "hello.sims", "every SIM is an object"),
    (b'{"type": "results", "results": {}}', "results.results", "expected a list"),
    (b'{"type": "results", "results": [{"outcome": "busy"}]}', "results.results.job_id", "object with job_id"),
    (b'{"type": "results", "results": [{"job_id": "j", "outcome": "busy", "seq": "1"}]}', "results.results.seq",
     "seq must be an integer"),
    (b'{"type": "inbound", "events": {}}', "inbound.events", "expected events"),
    (b'{"type": "inbound", "events": [{"id": "e", "kind": "fax"}]}', "inbound.events.kind", "kind sms or call"),
    (b"[1]", "message", "JSON object"),
    (b"{", "message", "not JSON"),
])
def test_bad_link_frames_name_the_field(frame, field, words):
    with pytest.raises(ContractError) as err:
        c.decode_message(frame)
    assert err.value.field == field and words.lower() in err.value.reason.lower(), (err.value.field, err.value.reason)


def test_a_result_without_seq_or_with_a_null_one_is_kept_as_sent():
    frame = b'{"type":"results","results":[{"job_id":"j","outcome":"busy","seq":null},{"job_id":"k","outcome":"busy"}]}'
    assert msgspec.json.decode(c.encode_message(c.decode_message(frame))) == msgspec.json.decode(frame)


# -- one definition ---------------------------------------------------------------------------------
def test_the_layers_use_the_contracts_enums_and_bounds():
    from appliance import jobspec
    from appliance.rotation import JobKind as RotationKind
    from controller.rules import JobKind as RulesKind
    from modem_drivers.dialects import TTS_MAX_CHARS
    from modem_drivers.emulator import Outcome as EmulatorOutcome

    assert RotationKind is RulesKind is JobKind
    assert EmulatorOutcome is Outcome
    assert c.MAX_MESSAGE_LENGTH == TTS_MAX_CHARS == jobspec.MAX_MESSAGE_LENGTH
    assert jobspec.JobError is ContractError
