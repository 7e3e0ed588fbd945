"""A campaign's report and its CSV export add up to its results: a real campaign runs from
the CRM's API through the controller to an appliance on an emulated bank, and every figure
of GET /v1/campaigns/{id}/report and every row of GET /v1/results/export is checked
against what GET /v1/results returned. Also: what a report says of a campaign that cannot
run (no appliance), and the ETA's reckoning over calling hours."""
from __future__ import annotations

import csv
import io
import json
import time
from collections import Counter
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from controller_harness import FakeClock, enroll, running
from system_harness import appliance_config, clock_between, controller_sections

from appliance.config import parse_config
from appliance.runtime import Appliance
from controller import campaigns as cp
from controller.reporting import EXPORT_COLUMNS, window_seconds_until
from controller.reports import NOT_PLACED
from modem_drivers.emulator import Timing

STRATEGY = [
    {"kind": "call", "attempts": 2, "ring_seconds": 15, "retry_after_seconds": 60},
    {"kind": "sms", "text": "Dzień dobry {name}, prosimy o wpłatę {amount} {currency}."},
]
#: The emulated network's behaviour by the number's 7th character (tests/test_system_e2e.py):
#: 0 answers (a person), 2 busy, 3 no answer.
BEHAVIOURS = ("0", "2", "3")


def contacts_csv() -> str:
    rows = ["external_id,phones,name,amount,currency,due_date"]
    n = 0
    for b in BEHAVIOURS:
        for op in range(4):
            n += 1
            ext = "=SUM(1+2)" if n == 1 else f"D-{n}"  # a formula-like key: stored as given, neutralised in the export
            rows.append(f"{ext},+4860{op}{b}{n:05d},Klient {n},{100 + n}.50,PLN,2026-12-31")
    return "\n".join(rows) + "\n"


async def start_campaign(crm, cid: str, strategy: list, rules: dict | None = None) -> None:
    status, camp = await crm.call("POST", "/v1/campaigns", json={"id": cid, "strategy": strategy,
                                                                  "rules": rules or {"hours": ["00:00", "23:59"]}})
    assert status == 201, camp
    if camp["state"] == "draft":
        status, camp = await crm.call("POST", f"/v1/campaigns/{cid}/start")
        assert status == 200, camp


@pytest.fixture
def clock() -> FakeClock:
    return clock_between(1, 21)


@pytest.fixture
def controller_config(make_controller_config):
    return make_controller_config(**controller_sections())


@pytest.mark.bank(modems=16, sims_per_modem=2, timing=Timing.FAST, seed=5)
async def test_report_and_export_of_a_finished_campaign_add_up_to_its_results(tmp_path, bank, controller, crm, clock, http):
    credential = await enroll(crm.s, controller.c, "box-01")
    (tmp_path / "cred").write_text(credential)
    link = controller.c.url.replace("http", "ws") + "/v1/link"
    app = Appliance(parse_config(appliance_config(tmp_path, bank.state, link, tmp_path / "cred")), seed=3)
    await app.start()
    try:
        await start_campaign(crm, "dec", STRATEGY)
        status, imported = await crm.call("POST", "/v1/campaigns/dec/contacts", data=contacts_csv().encode(),
                                          headers={"Content-Type": "text/csv"})
        assert status == 200 and imported["created"] == 12, imported

        await crm.wait_campaign_done_moving("dec", clock, timeout=150)
        status, report = await crm.call("GET", "/v1/campaigns/dec/report")
        assert status == 200, report
        results = await crm.all_results("dec")
        async with http.get(f"{controller.c.url}/v1/results/export?campaign_id=dec&format=csv", headers=crm.headers) as r:
            assert r.status == 200 and r.content_type == "text/csv"
            assert 'filename="results-dec.csv"' in r.headers["Content-Disposition"]
            text = await r.text()
    finally:
        await app.stop()

    # -- the report adds up to the results --------------------------------------------------
    finals = [x for x in results if x["final"]]
    calls = [x for x in results if x["kind"] == "call" and x["outcome"] not in NOT_PLACED]
    sms = [x for x in finals if x["kind"] == "sms" and x["outcome"] not in NOT_PLACED]
    reached = {x["contact_id"] for x in calls if x["outcome"] == "answered_human"}
    attempted = Counter(x["contact_id"] for x in calls)
    assert report["contacts"]["total"] == report["contacts"]["done"] == 12
    assert report["results"] == {"total": len(results), "final": len(finals)}
    assert sum(s["results"] for s in report["steps"]) == len(finals)
    for step in report["steps"]:
        want = Counter(x["outcome"] for x in finals if int(x["job_id"].split(".")[2]) == step["step"])
        assert step["outcomes"] == dict(want), step
        assert step["kind"] == STRATEGY[step["step"]]["kind"]
    assert report["spent"] == {"calls": len(calls), "sms": len(sms), "hlr": 0}
    assert report["attempted_contacts"] == len(attempted) == 12
    assert report["reached_contacts"] == len(reached) == 4  # the four numbers that answer
    assert report["right_party_contacts"] == len(reached)   # no voicebot: an answer is the debtor
    assert report["contact_rate"] == round(len(reached) / len(attempted), 4)
    assert report["attempts_per_contact"]["histogram"] == {str(k): v for k, v in sorted(Counter(attempted.values()).items())}
    assert report["attempts_per_contact"]["mean"] == round(len(calls) / len(attempted), 3)
    assert report["promises_to_pay"] == 0 and report["opt_outs"] == {"inbound": 0, "refused_opted_out": 0}
    assert sum(h["calls"] for h in report["by_hour"]) == len(calls)
    assert sum(h["results"] for h in report["by_hour"]) == len(results)
    assert sum(o["calls"] for o in report["by_operator"]) == len(calls)
    assert sum(o["answered_human"] for o in report["by_operator"]) == len([x for x in calls if x["outcome"] == "answered_human"])
    assert "unknown" not in {o["operator"] for o in report["by_operator"] if o["calls"]}  # every call's SIM is known
    assert report["eta"]["contacts_left"] == 0 and report["eta"]["at"] == report["generated_at"]
    assert report["state"] == "done" and {"code": "state", "detail": "the campaign is done"} in report["limits"]

    # -- the export is the results, row for row ---------------------------------------------
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    assert text.startswith(",".join(c for c, _ in EXPORT_COLUMNS) + "\r\n")
    assert [int(x["seq"]) for x in rows] == [x["seq"] for x in results]
    assert Counter((x["kind"], x["outcome"], x["final"]) for x in rows) == Counter(
        (x["kind"], x["outcome"], "true" if x["final"] else "false") for x in results)
    by_seq = {x["seq"]: x for x in results}
    for row in rows:
        res = by_seq[int(row["seq"])]
        assert (int(row["contact_id"]), row["callee"], row["job_id"]) == (res["contact_id"], res["callee"], res["job_id"])
        assert row["step"] == res["job_id"].split(".")[2]
        assert row["external_id"] == ("'" + res["external_id"] if res["external_id"].startswith("=") else res["external_id"])
    assert any(row["external_id"] == "'=SUM(1+2)" for row in rows)  # the formula cell is neutralised
    # no cell a spreadsheet would run, but the E.164 numbers (a + and digits: written as they are)
    assert all(not v.startswith(("=", "+", "-", "@")) for row in rows for k, v in row.items()
               if k not in ("callee", "number_shown"))
    assert all(row["callee"].startswith("+4860") and row["callee"][1:].isdigit() for row in rows)


async def test_a_report_says_what_holds_a_campaign_back_and_bad_requests_are_named(make_controller_config):
    clock = FakeClock(datetime(2026, 1, 15, 23, 30, tzinfo=ZoneInfo("Europe/Warsaw")).timestamp())
    async with running(make_controller_config(), clock, dispatch=False) as (c, key):
        import aiohttp
        from system_harness import Crm
        async with aiohttp.ClientSession() as s:
            crm = Crm(s, c.url, key)
            await start_campaign(crm, "jan", [{"kind": "call"}], {"hours": ["08:00", "21:00"]})
            status, _ = await crm.call("POST", "/v1/campaigns/jan/contacts",
                                       json=[{"external_id": "D-1", "phones": ["+48600100200"]}])
            assert status == 200
            status, report = await crm.call("GET", "/v1/campaigns/jan/report")
            assert status == 200
            codes = {lim["code"]: lim for lim in report["limits"]}
            assert "no_appliance" in codes
            assert codes["outside_hours"]["until"] == "2026-01-16T07:00:00Z"  # 08:00 in Warsaw
            assert report["time_zone"] == "Europe/Warsaw"
            assert report["eta"] == {"at": None, "contacts_left": 1, "due_now": 1, "basis": "none",
                                     "contacts_per_hour": 0.0, "connected_channels": 0}
            assert report["contact_rate"] is None and report["spent"] == {"calls": 0, "sms": 0, "hlr": 0}
            assert [s["outcomes"] for s in report["steps"]] == [{}]
            for path, status_want in (("/v1/campaigns/nope/report", 404), ("/v1/results/export?campaign_id=nope", 404),
                                      ("/v1/results/export", 400), ("/v1/results/export?campaign_id=jan&format=xlsx", 400)):
                status, problem = await crm.call("GET", path)
                assert status == status_want, (path, problem)
            async with s.get(f"{c.url}/v1/results/export?campaign_id=jan", headers=crm.headers) as r:
                assert r.status == 200 and (await r.text()) == ",".join(col for col, _ in EXPORT_COLUMNS) + "\r\n"


def test_the_eta_spends_work_only_inside_calling_hours_and_skips_blackout_dates():
    tz = ZoneInfo("Europe/Warsaw")
    settings = cp.parse_rules({"hours": ["08:00", "20:00"], "blackout_dates": ["2026-01-16"]})
    start = datetime(2026, 1, 15, 19, 0, tzinfo=tz).timestamp()  # one hour of window left today
    # 3 hours of work: 1 h today, none on the 16th (blackout), 2 h on the 17th from 08:00
    end = window_seconds_until(start, 3 * 3600, settings, tz)
    assert end is not None and datetime.fromtimestamp(end, tz) == datetime(2026, 1, 17, 10, 0, tzinfo=tz)
    inside = window_seconds_until(datetime(2026, 1, 15, 9, 0, tzinfo=tz).timestamp(), 1800, settings, tz)
    assert inside is not None and datetime.fromtimestamp(inside, UTC) == datetime(2026, 1, 15, 8, 30, tzinfo=UTC)
    assert window_seconds_until(time.time(), 10**9, settings, tz) is None  # beyond the horizon: no ETA


def test_right_party_promises_opt_outs_and_sim_caps_in_a_report(open_store):
    """The figures the emulated run cannot show: a voicebot that confirmed or was denied
    the debtor's identity, a promise to pay, an opt-out by SMS, jobs no SIM could serve."""
    from controller.reporting import campaign_report

    now = datetime(2026, 1, 15, 12, 0, tzinfo=ZoneInfo("Europe/Warsaw")).timestamp()
    st = open_store()
    try:
        st.create_campaign("feb", "feb", [{"kind": "call", "attempts": 3}], {"hours": ["08:00", "21:00"]}, now - 3600)
        rows = [cp_row(i) for i in range(1, 6)]
        st.upsert_contacts("feb", rows, now - 3600)
        seq = 0

        def result(contact: int, outcome: str, body: dict, **kw) -> None:
            nonlocal seq
            seq += 1
            with st.tx() as c:
                st.insert_result(c, {"dedupe": f"d{seq}", "appliance_id": "box-01", "app_seq": seq,
                                     "job_id": f"feb.{contact}.0.{kw.get('n', 0)}", "campaign_id": "feb",
                                     "contact_id": contact, "external_id": f"E-{contact}", "kind": "call",
                                     "callee": f"+4860010020{contact}", "outcome": outcome, "reason": kw.get("reason"),
                                     "final": 1, "number_shown": "+48690000001",
                                     "counts_as_attempt": int(outcome not in NOT_PLACED), "at": now - 60,
                                     "body": json.dumps(body)})

        result(1, "answered_human", {"voicebot": {"identity": "confirmed", "promise_date": "2026-01-20"}})
        result(2, "answered_human", {"voicebot": {"identity": "denied"}})
        result(3, "answered_human", {})                                   # no voicebot: the answer counts
        result(4, "no_answer", {})
        result(4, "no_eligible_sim", {"waiting_for": "calls_per_hour"}, n=1)
        result(5, "refused_by_policy", {}, reason="opted_out")
        with st.tx() as c:
            st.set_promise_date(c, 1, "2026-01-20", now)
            st.insert_inbound(c, {"id": "in-1", "appliance_id": "box-01", "kind": "sms", "from_number": "+48600100205",
                                  "to_number": "+48690000001", "text": "STOP", "at": now - 30, "contact_id": 5,
                                  "campaign_id": "feb", "opted_out": 1})
        report = campaign_report(st, st.get_campaign("feb"), now)
    finally:
        st.close()
    assert (report["attempted_contacts"], report["reached_contacts"], report["right_party_contacts"]) == (4, 3, 2)
    assert report["contact_rate"] == 0.75 and report["promises_to_pay"] == 1
    assert report["opt_outs"] == {"inbound": 1, "refused_opted_out": 1}
    assert report["spent"]["calls"] == 4 and report["steps"][0]["outcomes"] == {
        "answered_human": 3, "no_answer": 1, "no_eligible_sim": 1, "refused_by_policy": 1}
    caps = [lim for lim in report["limits"] if lim["code"] == "sim_caps"]
    assert [(lim["reason"], lim["count"]) for lim in caps] == [("calls_per_hour", 1)]
    assert [lim["reason"] for lim in report["limits"] if lim["code"] == "rules"] == ["opted_out"]
    assert "no_appliance" in {lim["code"] for lim in report["limits"]}


def cp_row(i: int):
    from controller.contacts import ContactRow
    return ContactRow(f"E-{i}", (f"+4860010020{i}",))
