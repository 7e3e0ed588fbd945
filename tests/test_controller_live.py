"""Live-call steps in the controller (issue 14): a campaign's call step says what happens
after the answer (AMD, message, voicebot), checked at create with the field named; the
dispatcher sends it as the job's ``call`` options with the contact's debt, or refuses a
contact that cannot make such a job; a voicebot's promise to pay reaches the contact, the
results, the history and the webhooks, and holds further calls until it has passed."""
from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import aiohttp
import msgspec
import pytest
from controller_harness import FakeAppliance, FakeClock, enroll, running
from system_harness import receiver

from common import contract
from controller import campaigns as cp
from controller import rules
from controller.dispatcher import build_job

WARSAW = ZoneInfo("Europe/Warsaw")
T0 = datetime(2026, 3, 10, 10, 0, tzinfo=WARSAW).timestamp()  # a Tuesday, 10:00 in Warsaw
VOICEBOT = {"kind": "call", "on_answer": "amd", "on_human": "voicebot", "on_machine": "leave_message",
            "message": "Dzień dobry, tu {creditor}. Prosimy o pilny kontakt w sprawie {case_ref}."}
DEBTOR = {"external_id": "d1", "phones": ["+48600890111"], "name": "Jan Kowalski", "amount": "123.45",
          "currency": "PLN", "due_date": "2026-02-28", "case_ref": "K/1", "language": "pl"}


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


# -- the strategy, checked at create --------------------------------------------------------------
def test_a_voicebot_step_keeps_its_settings_and_the_campaigns_creditor() -> None:
    (step,) = cp.parse_strategy([{**VOICEBOT, "promise_window_days": 21, "after_promise": "wait", "record": True}],
                                "Kredyt Plus")
    assert step.voicebot and step.dialogue == "promise_to_pay" and step.creditor == "Kredyt Plus"
    out = step.to_json()
    assert out == {"kind": "call", "attempts": 1, "retry_after_seconds": 3600.0, "ring_seconds": 30.0, "on_answer": "amd",
                   "message": VOICEBOT["message"], "on_machine": "leave_message", "on_human": "voicebot",
                   "dialogue": "promise_to_pay", "promise_window_days": 21, "after_promise": "wait", "record": True,
                   "creditor": "Kredyt Plus"}
    assert cp.parse_strategy([out]) == (step,)  # what the store keeps parses back to the same step
    # a plain call step is today's: nothing after the answer is sent
    (plain,) = cp.parse_strategy([{"kind": "call"}], "Kredyt Plus")
    assert plain.to_json() == {"kind": "call", "attempts": 1, "retry_after_seconds": 3600.0, "ring_seconds": 30.0}


def test_the_shipped_dialogues_are_the_ones_the_controller_offers() -> None:
    from appliance.voicebot.load import shipped_names

    offered = {f"{name}.{lang}" for name, langs in cp.DIALOGUES.items() for lang in langs}
    assert offered == set(shipped_names())


@pytest.mark.parametrize(("step", "creditor", "field", "words"), [
    ({"kind": "call", "on_answer": "ring"}, None, "strategy[0].on_answer", "hangup, hold, play, amd"),
    ({"kind": "call", "on_human": "voicebot"}, "K", "strategy[0].on_human", 'only with "on_answer": "amd"'),
    ({"kind": "call", "on_answer": "play", "on_machine": "hangup", "message": "x"}, None, "strategy[0].on_machine", "amd"),
    ({**VOICEBOT, "on_human": "robot"}, "K", "strategy[0].on_human", "play, voicebot, hangup"),
    ({**VOICEBOT, "dialogue": "collections"}, "K", "strategy[0].dialogue", "available: promise_to_pay (en/pl)"),
    ({**VOICEBOT, "dialogue": ["promise_to_pay"]}, "K", "strategy[0].dialogue", "available: promise_to_pay"),
    ({**VOICEBOT, "lang": "de"}, "K", "strategy[0].lang", "pl, en"),
    ({**VOICEBOT, "lang": ["pl"]}, "K", "strategy[0].lang", "pl, en"),
    ({**VOICEBOT, "message": ["x"]}, "K", "strategy[0].message", "the text the callee hears"),
    ({**VOICEBOT, "promise_window_days": 0}, "K", "strategy[0].promise_window_days", "1 to 60"),
    ({**VOICEBOT, "promise_window_days": 61}, "K", "strategy[0].promise_window_days", "1 to 60"),
    ({**VOICEBOT, "promise_window_days": True}, "K", "strategy[0].promise_window_days", "1 to 60"),
    ({**VOICEBOT, "after_promise": "later"}, "K", "strategy[0].after_promise", "finish, wait"),
    ({"kind": "call", "on_answer": "amd", "on_human": "hangup", "on_machine": "hangup", "after_promise": "wait"}, None,
     "strategy[0].after_promise", '"on_human": "voicebot"'),
    ({"kind": "call", "dialogue": "promise_to_pay"}, None, "strategy[0].dialogue", '"on_human": "voicebot"'),
    ({**VOICEBOT, "record": "yes"}, "K", "strategy[0].record", "true or false"),
    ({**VOICEBOT, "message": "Prosimy o kontakt."}, None, "creditor", "strategy[0] runs the voicebot"),
    ({"kind": "call", "on_answer": "play"}, None, "strategy[0].message", "play needs the message"),
    ({"kind": "call", "on_answer": "amd", "on_human": "hangup"}, None, "strategy[0].message", 'on_machine "leave_message"'),
    ({"kind": "call", "on_answer": "amd", "on_machine": "hangup"}, None, "strategy[0].message", 'on_human "play"'),
    ({"kind": "call", "on_answer": "play", "message": "Hi {nazwisko}"}, None, "strategy[0].message", "unknown field {nazwisko}"),
    ({"kind": "call", "on_answer": "play", "message": "Tu {creditor}"}, None, "strategy[0].message", 'campaign\'s "creditor"'),
    ({"kind": "call", "on_answer": "play", "message": "x" * 137}, None, "strategy[0].message", "at most 136"),
    ({"kind": "sms", "text": "Tu {creditor}"}, None, "strategy[0].text", 'campaign\'s "creditor"'),
    (VOICEBOT, "x" * 137, "creditor", "1-136 characters"),
    (VOICEBOT, "Kredyt {Plus}", "creditor", "no braces"),
    ({**VOICEBOT, "creditor": ""}, "K", "strategy[0].creditor", "creditor's name"),
])
def test_every_bad_setting_is_named(step, creditor, field, words) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(cp.CampaignError) as err:
        cp.parse_strategy([step], creditor)
    assert err.value.field == field and words in err.value.reason, err.value


def test_recording_retention_is_a_campaign_rule() -> None:
    assert cp.parse_rules(None).recording_retention_days == 30
    s = cp.parse_rules({"recording_retention_days": 90})
    assert s.recording_retention_days == 90 and cp.rules_to_json(s)["recording_retention_days"] == 90
    assert cp.parse_rules(cp.rules_to_json(s)) == s
    for bad in (0, 3651, 1.5, "30"):
        with pytest.raises(cp.CampaignError) as err:
            cp.parse_rules({"recording_retention_days": bad})
        assert err.value.field == "rules.recording_retention_days" and "1 to 3650" in err.value.reason


# -- the job ---------------------------------------------------------------------------------------
def _built(step: dict, contact: dict, now: float = T0) -> dict:
    steps = cp.parse_strategy([step], "Kredyt Plus")
    row = {"id": 7, "step": 0, "n": 0, "gen": 0, "time_zone": None, **contact}
    return build_job(row, {"id": "c1"}, steps, now + 300, {}, now=now)


def test_a_voicebot_job_carries_the_contacts_debt_and_passes_the_appliances_check() -> None:
    from appliance.jobspec import validate_job

    job = _built(VOICEBOT, DEBTOR)
    assert job["call"] == {
        "max_ring_seconds": 30.0, "on_answer": "amd", "lang": "pl",
        "message": "Dzień dobry, tu Kredyt Plus. Prosimy o pilny kontakt w sprawie K/1.",
        "on_machine": "leave_message", "on_human": "voicebot", "dialogue": "promise_to_pay",
        "voicebot": {"creditor": "Kredyt Plus", "debtor_name": "Jan Kowalski", "amount": "123.45", "currency": "PLN",
                     "due_date": "2026-02-28", "window_end": "2026-03-24", "window_start": "2026-03-10"}}
    raw = msgspec.json.decode(msgspec.json.encode(job))
    assert msgspec.to_builtins(contract.job_from(raw)) == raw
    assert validate_job(raw)["call"]["voicebot"]["debtor_name"] == "Jan Kowalski"


def test_the_window_and_the_language_are_the_contacts() -> None:
    # 23:30 UTC on the 10th is already the 11th in Warsaw, still the 10th in New York
    late = datetime(2026, 3, 10, 23, 30, tzinfo=UTC).timestamp()
    vb = _built({**VOICEBOT, "promise_window_days": 7}, DEBTOR, late)["call"]["voicebot"]
    assert (vb["window_start"], vb["window_end"]) == ("2026-03-11", "2026-03-18")
    ny = _built(VOICEBOT, {**DEBTOR, "time_zone": "America/New_York"}, late)["call"]["voicebot"]
    assert ny["window_start"] == "2026-03-10"
    assert _built(VOICEBOT, {**DEBTOR, "language": "en-GB"})["call"]["lang"] == "en"
    assert _built(VOICEBOT, {**DEBTOR, "language": "de"})["call"]["lang"] == "pl"
    assert _built({**VOICEBOT, "lang": "en"}, DEBTOR)["call"]["lang"] == "en"
    assert _built({"kind": "call", "record": True}, DEBTOR)["call"] == {"max_ring_seconds": 30.0, "record": True}


@pytest.mark.parametrize(("change", "field"), [
    ({"amount": None}, "amount"), ({"currency": ""}, "currency"), ({"due_date": None}, "due_date"),
    ({"name": None}, "name"), ({"name": "J" * 137}, "name"), ({"case_ref": "K" * 120}, "message"),
])
def test_a_contact_that_cannot_make_the_job_is_named(change, field) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(cp.ContactDataError) as err:
        _built(VOICEBOT, {**DEBTOR, **change})
    assert err.value.field == field, err.value


# -- the promise rule, on a fake clock -------------------------------------------------------------
def test_no_call_while_a_promise_holds() -> None:
    settings = rules.Settings()
    history = rules.History(promise_date=date(2026, 3, 15))

    def at(local: datetime) -> rules.Decision:
        return rules.check(rules.Request(rules.JobKind.CALL, "+48600100200", local.astimezone(UTC),
                                         "Europe/Warsaw"), settings, history)

    held = at(datetime(2026, 3, 15, 20, 0, tzinfo=WARSAW))
    assert not held.allowed and held.reason is rules.Reason.PROMISE_HOLDS
    assert held.retry_at == datetime(2026, 3, 16, 8, 0, tzinfo=WARSAW)
    assert "promised to pay by 2026-03-15" in held.detail and "2026-03-16 08:00 Europe/Warsaw" in held.detail
    assert at(datetime(2026, 3, 16, 8, 0, tzinfo=WARSAW)).allowed
    # an SMS is not a call: the rule holds calls only
    sms = rules.check(rules.Request(rules.JobKind.SMS, "+48600100200", datetime(2026, 3, 12, 9, tzinfo=UTC)),
                      settings, history)
    assert sms.allowed


def test_after_promise_finishes_or_waits_for_the_promised_day() -> None:
    steps = cp.parse_strategy([{**VOICEBOT, "after_promise": "wait"}, {"kind": "sms", "text": "Przypomnienie"}], "K")
    contact = {"step": 0, "n": 0, "gen": 0}
    over = datetime(2026, 3, 16, 8, 0, tzinfo=WARSAW).timestamp()
    m = cp.after_result(contact, steps, "answered_human", cancelled=False, now=T0, promise_over=over)
    assert (m.state, m.step, m.n, m.next_at) == ("waiting", 1, 0, over)
    assert cp.after_result(contact, steps, "answered_human", cancelled=False, now=T0).state == "done"  # no promise
    finish = cp.parse_strategy([VOICEBOT, {"kind": "sms", "text": "x"}], "K")
    assert cp.after_result(contact, finish, "answered_human", cancelled=False, now=T0, promise_over=over).state == "done"
    last = cp.parse_strategy([{**VOICEBOT, "after_promise": "wait"}], "K")
    assert cp.after_result(contact, last, "answered_human", cancelled=False, now=T0, promise_over=over).state == "done"


def test_only_a_promise_inside_the_offered_window_counts() -> None:
    spec = {"call": {"voicebot": {"window_start": "2026-03-10", "window_end": "2026-03-24"}}}
    assert cp.valid_promise({"voicebot": {"promise_date": "2026-03-15"}}, spec) == date(2026, 3, 15)
    for bad in ("2026-03-25", "2026-03-09", "2026-02-30", None, 20260315):
        assert cp.valid_promise({"voicebot": {"promise_date": bad}}, spec) is None
    assert cp.valid_promise({"outcome": "answered_human"}, spec) is None


# -- through the controller: a fake appliance over the link -----------------------------------------
async def test_the_crm_sees_the_promise_and_no_call_is_placed_while_it_holds(tmp_path, make_controller_config) -> None:  # type: ignore[no-untyped-def]
    clock = FakeClock(T0)
    cfg = make_controller_config(webhooks={"backoff_seconds": 0.2, "allow_private": True})
    async with running(cfg, clock) as (c, key), aiohttp.ClientSession() as s, receiver(clock) as hooks:
        async with s.post(f"{c.url}/v1/webhooks", json={"url": hooks.url}, headers=auth(key)) as r:
            hooks.secret = (await r.json())["secret"]
        body = {"id": "mar", "creditor": "Kredyt Plus", "start": True,
                "strategy": [{**VOICEBOT, "after_promise": "wait"}, {"kind": "call", "on_answer": "hangup"}]}
        async with s.post(f"{c.url}/v1/campaigns", json=body, headers=auth(key)) as r:
            assert r.status == 201, await r.text()
            assert (await r.json())["strategy"][0]["creditor"] == "Kredyt Plus"
        contacts = [DEBTOR, {**DEBTOR, "external_id": "d2", "phones": ["+48600890222"], "amount": None}]
        async with s.post(f"{c.url}/v1/campaigns/mar/contacts", json=contacts, headers=auth(key)) as r:
            assert r.status == 200, await r.text()
        app = FakeAppliance(s, c.url, await enroll(s, c, "box-01"), clock=clock)
        await app.connect()
        batch = await app.expect("jobs")
        (job,) = batch["jobs"]  # d2 has no amount: refused, never sent
        assert job["call"]["voicebot"]["debtor_name"] == "Jan Kowalski" and job["call"]["dialogue"] == "promise_to_pay"
        await app.ack(batch)
        outcome = {"identity": "confirmed", "promise_date": "2026-03-15", "callback_requested": False,
                   "path": ["greet", "identity", "debt", "ask_date", "read_back", "thanks"],
                   "digits": [{"key": "1", "at": 4.2}], "end_state": "thanks", "hung_up": False}
        await app.send({"type": "results", "results": [app.result(job, "answered_human", voicebot=outcome)]})
        await app.expect("results_ack")

        async with s.get(f"{c.url}/v1/results", headers=auth(key)) as r:
            items = (await r.json())["items"]
        refused = next(i for i in items if i["outcome"] == "refused_by_policy")
        assert refused["reason"] == "unusable_contact_data" and "amount" in refused["detail"]["detail"], refused
        answered = next(i for i in items if i["outcome"] == "answered_human")
        summary = {"identity": "confirmed", "promise_date": "2026-03-15", "callback_requested": False}
        assert answered["voicebot"] == summary and answered["detail"]["voicebot"]["path"][-1] == "thanks"
        cid = answered["contact_id"]
        async with s.get(f"{c.url}/v1/contacts/{cid}/history", headers=auth(key)) as r:
            history = await r.json()
        assert history["contact"]["promise_date"] == "2026-03-15" and history["results"][-1]["voicebot"] == summary
        # after_promise "wait": the next step once the promised day has passed, at 08:00 local
        assert history["contact"]["state"] == "waiting" and history["contact"]["step"] == 1
        assert history["contact"]["next_at"] == datetime(2026, 3, 16, 8, 0, tzinfo=WARSAW).timestamp()
        async with s.get(f"{c.url}/v1/contacts/{refused['contact_id']}", headers=auth(key)) as r:
            assert (await r.json())["state"] == "done"
        async with asyncio.timeout(10):  # the webhook: the same outcome on top
            while not any(e.get("outcome") == "answered_human" for e in hooks.events):
                await asyncio.sleep(0.1)
        hooked = next(e for e in hooks.events if e.get("outcome") == "answered_human")
        assert hooked["voicebot"] == summary and hooks.bad_signatures == 0

        # The contact rules hold the promise too: made due at once (as a step that came
        # sooner would), the contact is refused until 16 March 08:00 Warsaw, never called.
        with c.store.tx() as tx:
            tx.execute("UPDATE contacts SET next_at = ? WHERE id = ?", (clock(), cid))
        clock.advance(3600)
        c.wake()
        async with asyncio.timeout(10):
            while True:
                async with s.get(f"{c.url}/v1/results?campaign_id=mar", headers=auth(key)) as r:
                    items = (await r.json())["items"]
                if held := [i for i in items if i["reason"] == "promise_holds"]:
                    break
                await asyncio.sleep(0.1)
        assert held and held[0]["detail"]["retry_at"] == datetime(2026, 3, 16, 8, 0, tzinfo=WARSAW).timestamp(), items
        with pytest.raises(TimeoutError):
            await app.expect("jobs", timeout=0.5)
        # 16 March 08:00: the promise has passed; the conversation of 10 March still keeps
        # the 7 quiet days (Reg F) until 17 March 10:00, and then the next step runs
        clock.advance(datetime(2026, 3, 16, 8, 0, tzinfo=WARSAW).timestamp() - clock())
        async with asyncio.timeout(10):
            while True:
                async with s.get(f"{c.url}/v1/results?campaign_id=mar", headers=auth(key)) as r:
                    items = (await r.json())["items"]
                if items[-1]["reason"] == "quiet_after_conversation":
                    break
                await asyncio.sleep(0.1)
        clock.advance(datetime(2026, 3, 17, 10, 0, tzinfo=WARSAW).timestamp() - clock())
        batch = await app.expect("jobs", timeout=10)
        assert [j["contact"] for j in batch["jobs"]] == [cid] and batch["jobs"][0]["call"] == {
            "max_ring_seconds": 30.0, "on_answer": "hangup", "lang": "pl"}
        await app.close()


def test_the_documented_campaign_is_accepted() -> None:
    import json
    import re
    from pathlib import Path

    doc = (Path(__file__).resolve().parent.parent / "docs" / "controller.md").read_text()
    section = doc.split("### Live-call steps", 1)[1]
    body = json.loads(re.search(r"```json\n(.*?)```", section, re.DOTALL).group(1))  # type: ignore[union-attr]
    steps = cp.parse_strategy(body["strategy"], body["creditor"])
    assert steps[0].voicebot and steps[0].after_promise == "wait" and steps[1].creditor == "Kredyt Plus"
    assert cp.parse_rules(body["rules"]).recording_retention_days == 30
