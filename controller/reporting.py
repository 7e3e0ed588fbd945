"""A campaign's report (``GET /v1/campaigns/{id}/report``) and its results as CSV
(``GET /v1/results/export``): what a collection agency's managers ask of a campaign —
what happened at each step, how many debtors were reached and promised, what it cost,
how fast it goes now, when it will end and what holds it back.

The numbers come from the store's grouped queries over one campaign
(``store/reporting.py``: a few rows each, never the results themselves); this module puts
them together and reasons about time: the calling window in the contacts' zone, the fleet
that is connected, the refusals and SIM waits of the last minutes.

Definitions (docs/controller.md, "Campaign report"):

* attempted contacts: contacts with at least one call placed (``counts_as_attempt``);
* contact rate: contacts a person answered (``answered_human``) / attempted contacts;
* right-party contacts: contacts with an answered call whose voicebot did not deny or
  leave unconfirmed the debtor's identity (a call without the voicebot counts as answered);
* promises to pay: contacts holding a voicebot ``promise_date``;
* opt-outs: inbound STOPs and callback 9s matched to the campaign, and jobs refused because
  the number was opted out;
* spent: calls placed, SMS sent, HLR checks made (a refusal, a cancelled job or one no
  SIM could serve costs nothing);
* throughput now: over the last ``RECENT_SECONDS``, or since the campaign last started
  running (created, started, resumed, reopened) when that is later; the ETA spreads the contacts left
  over the campaign's calling hours (blackout dates skipped) at that pace, or, before
  there is a pace, at what the connected channels can do.
"""
from __future__ import annotations

import asyncio
import csv
import io
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, Final
from zoneinfo import ZoneInfo

from . import campaigns as cp
from . import rules
from .contacts_csv import csv_cell
from .store import Store
from .store.reporting import ReportReader, ReportRows

#: "Throughput now" looks back this far: long enough to hold several calls of a one-box
#: fleet (8 channels x 2 minutes a call = ~60 calls), short enough to follow a pause.
RECENT_SECONDS: Final = 900.0
#: The shortest window a pace is read over (a report a moment after the start).
MIN_WINDOW_SECONDS: Final = 1.0
#: ``by_hour`` covers the last week: at most 168 rows in a report.
BY_HOUR_SECONDS: Final = 7 * 24 * 3600.0
#: A job's channel time before any was measured: a 30 s ring and half a minute's talk.
DEFAULT_JOB_SECONDS: Final = 60.0
#: The ETA is given up beyond this (a campaign that slow is stalled, not ending).
ETA_HORIZON_DAYS: Final = 366
#: A number as the controller writes it (E.164): a + and digits cannot carry a formula, and
#: a leading ' would change the number a CRM reads back, so such cells are written as they are.
_E164: Final = re.compile(r"\+[0-9]{1,15}")
#: Rows of the results table read per export page: ~1 MB of CSV, one short read at a time.
EXPORT_PAGE: Final = 2000

#: The columns of the results CSV, in order, each with what it holds (docs and OpenAPI).
EXPORT_COLUMNS: Final[tuple[tuple[str, str], ...]] = (
    ("seq", "the result's cursor (GET /v1/results after=)"),
    ("at", "when, UTC ISO 8601"),
    ("campaign_id", "the campaign"),
    ("contact_id", "the controller's contact id"),
    ("external_id", "the CRM's key of the contact"),
    ("job_id", "<campaign>.<contact>.<step>.<try>"),
    ("step", "the strategy step (0-based)"),
    ("kind", "hlr, call or sms"),
    ("callee", "the number, E.164"),
    ("outcome", "as in GET /v1/results"),
    ("reason", "a refusal's or failure's reason"),
    ("final", "true, or false when a later result of the same try follows"),
    ("number_shown", "the SIM number the callee saw"),
    ("talk_seconds", "calls: seconds of conversation"),
    ("identity", "voicebot: confirmed, denied or unknown"),
    ("promise_date", "voicebot: the promised date, YYYY-MM-DD"),
    ("callback_requested", "voicebot: true when the debtor asked to be called back"),
    ("appliance_id", "the appliance that ran the job"),
)


def _iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _rate(n: float, seconds: float) -> float:
    return round(n * 3600.0 / seconds, 1)


def campaign_zone(store: Store, campaign_id: str) -> ZoneInfo:
    """The zone the campaign's calling hours are read in: its first contact's time_zone,
    or the zone of that contact's first number (a campaign's contacts are one country's
    in practice; each call is still checked in its own callee's zone by the rules)."""
    first = store.list_contacts(campaign_id, 0, 1)
    if not first:
        return ZoneInfo("UTC")
    c = first[0]
    return rules.resolve_zones(rules.Request(rules.JobKind.CALL, c["phones"][0], datetime.now(UTC), c.get("time_zone")))[0]


def window_seconds_until(now: float, work_seconds: float, settings: rules.Settings, tz: ZoneInfo) -> float | None:
    """When ``work_seconds`` of calling time, spent only inside the calling hours of
    ``settings`` in ``tz`` (not on blackout dates), is used up, from ``now``; None past
    ``ETA_HORIZON_DAYS``."""
    start_t, end_t = settings.hours
    t = datetime.fromtimestamp(now, UTC)
    left = work_seconds
    day = t.astimezone(tz).date()
    for _ in range(ETA_HORIZON_DAYS + 1):
        if day not in settings.blackout_dates:
            opens = datetime.combine(day, start_t, tz).astimezone(UTC)
            closes = datetime.combine(day, end_t, tz).astimezone(UTC)
            begin = max(opens, t)
            if closes > begin:
                span = (closes - begin).total_seconds()
                if left <= span:
                    return (begin + timedelta(seconds=left)).timestamp()
                left -= span
        day += timedelta(days=1)
    return None


def _limits(campaign: dict[str, Any], settings: rules.Settings, tz: ZoneInfo, now: float, fleet: list[dict[str, Any]],
            recent: dict[str, Any], due: int, next_due_at: float | None, left: int,
            window: float = RECENT_SECONDS) -> list[dict[str, Any]]:
    """What holds the campaign back now, most blocking first: each a ``code`` and words."""
    out: list[dict[str, Any]] = []
    state = campaign["state"]
    if state != "running":
        out.append({"code": "state", "detail": f"the campaign is {state}"})
    if left and not any(a["connected"] for a in fleet):
        out.append({"code": "no_appliance", "detail": "no appliance is connected to the controller"})
    at = datetime.fromtimestamp(now, UTC)
    today = at.astimezone(tz).date()
    if today in settings.blackout_dates:
        out.append({"code": "blackout_date", "detail": f"{today.isoformat()} is a blackout date of the campaign"})
    opens = rules.next_window_start(at, tz, *settings.hours)
    if opens is not None:
        out.append({"code": "outside_hours", "until": _iso(opens.timestamp()),
                    "detail": f"{at.astimezone(tz):%H:%M} in {tz.key} is outside the calling hours "
                              f"{settings.hours[0]:%H:%M}-{settings.hours[1]:%H:%M}"})
    for h in recent["held"]:
        if h["outcome"] == "no_eligible_sim":
            out.append({"code": "sim_caps", "reason": h["why"], "count": h["n"],
                        "detail": f"{h['n']} jobs in the last {window / 60:.0f} min found no SIM free to serve them "
                                  f"(waiting for {h['why']}: per-SIM caps, pauses or a SIM's operator)"})
        elif h["why"] == rules.Reason.QUIET_AFTER_CONVERSATION.value:
            out.append({"code": "quiet_period", "reason": h["why"], "count": h["n"],
                        "detail": f"{h['n']} jobs in the last {window / 60:.0f} min waited out the quiet days after "
                                  "a conversation"})
        elif h["why"] != rules.Reason.OUTSIDE_CALLING_HOURS.value:
            out.append({"code": "rules", "reason": h["why"], "count": h["n"],
                        "detail": f"{h['n']} jobs in the last {window / 60:.0f} min refused by the rule {h['why']}"})
    if left and due == 0 and next_due_at is not None:
        out.append({"code": "retry_delay", "until": _iso(next_due_at),
                    "detail": "no contact is due now: each waits for its step's retry delay or its next window"})
    connected = [a for a in fleet if a["connected"]]
    if left and due and connected and all((a.get("idle") or 0) == 0 for a in connected):
        out.append({"code": "fleet_busy", "detail": "every channel of the connected appliances is busy"})
    return out


def pace_window(campaign: dict[str, Any], now: float, first_contact_at: float | None) -> float:
    """Seconds "throughput now" is read over: the last ``RECENT_SECONDS``, or, for a
    running campaign, since it could last start dialling when that is later — since it
    last started running (its ``updated_at``: a paused hour is no time it ran) and had a
    contact (its first import)."""
    if campaign["state"] != "running":
        return RECENT_SECONDS
    began = max(float(campaign["updated_at"]), first_contact_at or 0.0)
    return max(MIN_WINDOW_SECONDS, min(RECENT_SECONDS, now - began))


def figures(rows: ReportRows, campaign: dict[str, Any], now: float) -> dict[str, Any]:
    """The report's grouped queries over the campaign (the slow part: a worker thread's);
    "recent" is the last ``pace_window`` seconds."""
    campaign_id = campaign["id"]
    window = pace_window(campaign, now, rows.first_contact_at(campaign_id))
    return {"window": window, "steps": rows.step_outcomes(campaign_id), "totals": rows.campaign_totals(campaign_id),
            "histogram": rows.attempts_histogram(campaign_id), "contacts": rows.contact_totals(campaign_id, now - window),
            "recent": rows.recent(campaign_id, now - window), "due": rows.due_now(campaign_id, now),
            "inbound_opt_outs": rows.inbound_opt_outs(campaign_id), "by_hour": rows.by_hour(campaign_id, now - BY_HOUR_SECONDS),
            "by_operator": rows.by_operator(campaign_id)}


async def campaign_report_async(store: Store, campaign: dict[str, Any], now: float) -> dict[str, Any]:
    """``campaign_report`` with its queries on a read-only connection in a worker thread,
    so a campaign of a million results does not stop the event loop (links, API) while
    it is read; in the loop's thread only for a store in memory (tests). On PostgreSQL the
    worker thread reads through the store's pool (a connection of its own per query)."""
    if store.dialect.name == "postgresql":
        return campaign_report(store, campaign, now, await asyncio.to_thread(figures, store, campaign, now))
    path = ReportReader.path_of(store.conn)
    if path is None:
        return campaign_report(store, campaign, now)

    def read() -> dict[str, Any]:
        reader = ReportReader(path)
        try:
            return figures(reader, campaign, now)
        finally:
            reader.conn.close()

    return campaign_report(store, campaign, now, await asyncio.to_thread(read))


def campaign_report(store: Store, campaign: dict[str, Any], now: float,
                    read: dict[str, Any] | None = None) -> dict[str, Any]:
    """The report of one campaign at ``now`` (the OpenAPI ``CampaignReport``), from
    ``read`` (``figures``; read here when not given) and the store's small reads."""
    cid = campaign["id"]
    f = read if read is not None else figures(store, campaign, now)
    window = f["window"]
    steps = cp.parse_strategy(campaign["strategy"])
    settings = cp.parse_rules(campaign["rules"])
    counts = store.campaign_counts(cid)
    totals, contacts, recent = f["totals"], f["contacts"], f["recent"]
    due, next_due_at = f["due"]
    fleet = store.list_appliances()
    tz = campaign_zone(store, cid)

    by_step: dict[int, dict[str, Any]] = {i: {"step": i, "kind": s.kind.value, "results": 0, "outcomes": {}}
                                          for i, s in enumerate(steps)}
    for r in f["steps"]:
        entry = by_step.setdefault(r["step"], {"step": r["step"], "kind": r["kind"], "results": 0, "outcomes": {}})
        entry["results"] += r["n"]
        entry["outcomes"][r["outcome"]] = entry["outcomes"].get(r["outcome"], 0) + r["n"]
    attempted = totals["attempted"]
    hist = f["histogram"]

    left = counts["waiting"] + counts["in_flight"]
    done_recently = contacts["done_recently"]
    channels = sum(a.get("channels") or 0 for a in fleet if a["connected"])
    per_contact = totals["final_results"] / counts["done"] if counts["done"] else float(len(steps))
    if done_recently >= max(channels, 1):  # a pace once as many contacts ended as run at once: past the ramp-up
        pace, basis = done_recently / window, "recent"
    elif channels:
        pace, basis = channels / DEFAULT_JOB_SECONDS / max(per_contact, 1.0), "capacity"
    else:
        pace, basis = 0.0, "none"
    eta = None
    if left == 0:
        eta = now
    elif pace > 0 and campaign["state"] in ("running", "paused", "draft"):
        start = max(now, next_due_at) if due == 0 and next_due_at is not None else now
        eta = window_seconds_until(start, left / pace, settings, tz)
    return {
        "campaign_id": cid, "state": campaign["state"], "generated_at": _iso(now), "time_zone": tz.key,
        "contacts": counts,
        "steps": [by_step[k] for k in sorted(by_step)],
        "attempted_contacts": attempted,
        "reached_contacts": totals["reached"],
        "contact_rate": round(totals["reached"] / attempted, 4) if attempted else None,
        "right_party_contacts": totals["right_party"],
        "promises_to_pay": contacts["promises"],
        "opt_outs": {"inbound": f["inbound_opt_outs"], "refused_opted_out": totals["refused_opted_out"]},
        "spent": {"calls": totals["calls"], "sms": totals["sms"], "hlr": totals["hlr"]},
        "attempts_per_contact": {"mean": round(totals["calls"] / attempted, 3) if attempted else None,
                                 "histogram": {str(k): v for k, v in hist.items()}},
        "results": {"total": totals["results"], "final": totals["final_results"]},
        "by_hour": [{**h, "hour": _iso(h["hour"])} for h in f["by_hour"]],
        "by_operator": f["by_operator"],
        "throughput": {"window_seconds": round(window, 1), "results_per_hour": _rate(recent["final_results"], window),
                       "calls_per_hour": _rate(recent["calls"], window), "sms_per_hour": _rate(recent["sms"], window),
                       "contacts_done_per_hour": _rate(done_recently, window)},
        "eta": {"at": _iso(eta), "contacts_left": left, "due_now": due, "basis": basis,
                "contacts_per_hour": round(pace * 3600.0, 1), "connected_channels": channels},
        "limits": _limits(campaign, settings, tz, now, fleet, recent, due, next_due_at, left, window),
    }


def _step_of(job_id: str | None, campaign_id: str) -> int | None:
    if not job_id or not job_id.startswith(campaign_id + "."):
        return None
    parts = job_id[len(campaign_id) + 1:].split(".")
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None


def export_row(r: dict[str, Any]) -> list[Any]:
    """One result as the export's cells (``EXPORT_COLUMNS``), formula-like text neutralised."""
    body = json.loads(r["body"]) if r.get("body") else {}
    vb = cp.voicebot_outcome(body) or {}
    talk = body.get("talk_seconds") if isinstance(body, dict) else None
    cells = [r["seq"], _iso(r["at"]), r["campaign_id"], r["contact_id"], r["external_id"], r["job_id"],
             _step_of(r["job_id"], r["campaign_id"] or ""), r["kind"], r["callee"], r["outcome"], r["reason"],
             "true" if r["final"] else "false", r["number_shown"], talk, vb.get("identity"), vb.get("promise_date"),
             None if not vb else ("true" if vb.get("callback_requested") else "false"), r["appliance_id"]]
    return [csv_cell(c) if isinstance(c, str) and not _E164.fullmatch(c) else c for c in cells]


def export_chunks(store: Store, campaign_id: str) -> Iterator[str]:
    """The campaign's results as CSV text, a page at a time (header first, RFC 4180 line
    ends): a million results never sit in memory at once."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\r\n")
    w.writerow([c for c, _ in EXPORT_COLUMNS])
    after = 0
    while True:
        rows = store.export_page(campaign_id, after, EXPORT_PAGE)
        w.writerows(export_row(r) for r in rows)
        yield out.getvalue()
        out.seek(0)
        out.truncate()
        if len(rows) < EXPORT_PAGE:
            return
        after = rows[-1]["seq"]

