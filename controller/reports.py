"""What the appliances report, and the dispatcher's refusals, written down — and what
follows from each: a result's contact takes its next step, a rejected job ends its
contact, a STOP by SMS opts its sender out, every new row is queued for the webhooks.

Each method is one store transaction that this module opens (``Store.tx``) and fills with
the store's small in-transaction functions; the decisions (is the result new, which step
comes next — ``campaigns.after_result`` —, does the text opt out, what a webhook carries)
are made here, between those calls, so the store only reads and writes rows. The link
acknowledges only after a method returns: nothing is acknowledged before it is committed.
"""
from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, date, datetime
from typing import Any, Final

import msgspec

from . import campaigns as cp
from . import rules
from .stopwords import DEFAULT_STOP_WORDS, stop_matcher
from .store import Store

#: Outcomes of a call result that did not reach the callee's network: not an "attempt"
#: in the sense of Reg F 1006.14(b) (no telephone call was placed to him).
NOT_PLACED: Final = frozenset({"channel_error", "network_error", "expired", "refused_by_policy", "cancelled", "no_eligible_sim"})


def _body_text(body: dict[str, Any]) -> str:
    """A result's body as stored: compact JSON by msgspec (~1 µs a body against json.dumps'
    ~8; a batch of 500 is on the controller's event loop). Its text is not ASCII-escaped:
    the column is UTF-8 text on both databases."""
    return msgspec.json.encode(body).decode()


def result_event(row: dict[str, Any]) -> dict[str, Any]:
    """The webhook payload of a result (the same shape as GET /v1/results items): the
    contact's id and the CRM's own key for it (``external_id``). A call
    that ran the voicebot carries its outcome on top (``voicebot``: identity, promise_date,
    callback_requested; the path and digits stay in ``detail.voicebot``)."""
    detail = json.loads(row["body"]) if isinstance(row.get("body"), str) else row.get("body")
    event = {"type": "result", "seq": row.get("seq"), "job_id": row["job_id"], "campaign_id": row["campaign_id"],
             "contact_id": row["contact_id"], "external_id": row.get("external_id"), "kind": row["kind"], "callee": row["callee"], "outcome": row["outcome"],
             "reason": row["reason"], "final": bool(row["final"]), "number_shown": row["number_shown"], "at": row["at"],
             "detail": detail}
    if (vb := cp.voicebot_outcome(detail)) is not None:
        event["voicebot"] = vb
    return event


def inbound_event(row: dict[str, Any]) -> dict[str, Any]:
    """The webhook payload of an inbound event (the shape of GET /v1/inbound items, with
    the matched contact's ``external_id``)."""
    return {"type": "inbound", **row}


class Reports:
    def __init__(self, store: Store, clock: Callable[[], float], *, stop_words: Iterable[str] = DEFAULT_STOP_WORDS,
                 on_queued: Callable[[], None] = lambda: None) -> None:
        """``on_queued`` is called after a transaction that queued webhook deliveries
        commits (the controller wakes its delivery worker: only then has it work)."""
        self.store = store
        self.clock = clock
        self.on_queued = on_queued
        self.is_stop = stop_matcher(tuple(stop_words))
        self._strategies: dict[str, tuple[cp.Step, ...]] = {}

    def _steps(self, campaign: dict[str, Any]) -> tuple[cp.Step, ...]:
        """A campaign's strategy never changes after create: parse it once."""
        steps = self._strategies.get(campaign["id"])
        if steps is None:
            steps = self._strategies[campaign["id"]] = cp.parse_strategy(campaign["strategy"])
        return steps

    # -- results ----------------------------------------------------------------------------
    def ingest_results(self, appliance_id: str, items: Sequence[dict[str, Any]], now: float) -> list[dict[str, Any]]:
        """Store a batch of the appliance's results, deduplicated, in one transaction; a new
        final result moves its contact on. Returns the new rows.

        Set-based, a handful of statements a batch whatever its size (each is a round trip
        on PostgreSQL): its jobs read at once, its rows inserted at once, then the jobs'
        states, the promises, the webhook deliveries and the contacts' moves — the same
        rows and moves as taking the results one by one in their order."""
        s = self.store
        hooks = s.webhooks_for("result")
        with s.tx() as c:
            jobs = s.jobs_for_results(c, [str(body.get("job_id") or "") for body in items])
            rows = []
            for body in items:
                job_id = str(body.get("job_id") or "")
                job = jobs.get(job_id)
                final = bool(body.get("final"))
                outcome = str(body.get("outcome") or "unknown")
                at = body.pop("_at", now)
                kind = body.get("kind") or (job["kind"] if job else None)
                rows.append({"dedupe": f"{job_id}|{body.get('attempt')}|{int(final)}", "appliance_id": appliance_id,
                             "app_seq": body.get("seq"), "job_id": job_id or None,
                             "campaign_id": job["campaign_id"] if job else None, "contact_id": job["contact_id"] if job else None,
                             "external_id": job["external_id"] if job else None,
                             "kind": kind, "callee": body.get("callee"), "outcome": outcome, "reason": body.get("reason"),
                             "final": int(final), "number_shown": body.get("number_shown"),
                             "counts_as_attempt": int(kind == "call" and outcome not in NOT_PLACED), "at": at,
                             "body": _body_text(body)})
            new: list[dict[str, Any]] = []
            done: set[str] = set()
            started: set[str] = set()
            finals: list[tuple[Any, str, date | None]] = []
            for body, row, seq in zip(items, rows, s.insert_results(c, rows), strict=True):
                if seq is None:
                    continue
                row["seq"] = seq
                new.append(row)
                job = jobs.get(row["job_id"] or "")
                if job is None:
                    continue
                (done if row["final"] else started).add(job["id"])
                promise = None
                if isinstance(body.get("voicebot"), dict):  # the job's spec is read only then: a hot path
                    promise = cp.valid_promise(body, json.loads(job["spec"]) if job["spec"] else None)
                if promise is not None:
                    s.set_promise_date(c, job["contact_id"], promise.isoformat(), now)
                if row["final"]:
                    finals.append((job, row["outcome"], promise))
            s.jobs_reported(c, done, started - done, now)  # a final result ends its job whatever came before
            if hooks:  # the payloads are built only for a webhook to take them (each parses its body again)
                s.enqueue_all(c, hooks, "result", [result_event(row) for row in new], now)
            # last: the campaign's counts are the rows every controller's batches and claims
            # write, so their locks (taken by the moves) are held the shortest time before the commit
            self._advance(c, finals)
        if hooks and new:
            self.on_queued()
        return new

    def _advance(self, c: sqlite3.Connection, finals: Sequence[tuple[Any, str, date | None]]) -> None:
        """In the results' transaction: move the contacts of the batch's new final results
        (job, outcome, promise to pay) in their order (a promise: per the step's
        ``after_promise``). A contact moves once: the first of its jobs' results that is its
        current job's takes it out of flight, and the others find it moved on."""
        if not finals:
            return
        contacts = self.store.contact_cursors_in_tx(c, [job["contact_id"] for job, _, _ in finals])
        campaigns = self.store.campaigns_in_tx(c, [job["campaign_id"] for job, _, _ in finals])
        moves = []
        for job, outcome, promise in finals:
            contact, campaign = contacts.get(job["contact_id"]), campaigns.get(job["campaign_id"])
            if contact is None or campaign is None or contact["state"] != "in_flight":
                continue
            if job["id"] != cp.job_id(campaign["id"], contact["id"], contact["step"], contact["n"], contact["gen"]):
                continue  # a late result of an older job: recorded, but the contact has moved on
            now = self.clock()
            over = None
            if promise is not None:
                spec = json.loads(job["spec"]) if job["spec"] else {}
                at = datetime.fromtimestamp(now, UTC)
                zone = rules.resolve_zones(rules.Request(rules.JobKind.CALL, str(spec.get("callee") or ""), at,
                                                         contact.get("time_zone")))[0]
                over = rules.promise_over_at(promise, zone, cp.parse_rules(campaign["rules"]).hours).timestamp()
            m = cp.after_result(contact, self._steps(campaign), outcome,
                                cancelled=campaign["state"] == cp.CampaignState.CANCELLED.value, now=now, promise_over=over)
            contact["state"] = m.state  # out of flight: a later result of the batch finds it moved on
            moves.append({"contact_id": contact["id"], "campaign_id": campaign["id"], "state": m.state, "step": m.step,
                          "n": m.n, "gen": m.gen, "next_at": m.next_at, "outcome": m.outcome})
        self.store.advance_contacts(c, moves, self.clock())

    def record_refusal(self, contact: dict[str, Any], job: dict[str, Any], reason: str, detail: str,
                       next_at: float | None, now: float) -> dict[str, Any]:
        """A refused_by_policy result, and the contact planned again at ``next_at`` (or
        finished when no retry is possible), in one transaction."""
        body = {"job_id": job["id"], "kind": job["kind"], "callee": job["callee"], "outcome": "refused_by_policy",
                "reason": reason, "detail": detail, "retry_at": next_at, "final": True}
        row: dict[str, Any] = {
            "dedupe": f"refused|{job['id']}|{now:.6f}", "appliance_id": None, "app_seq": None, "job_id": job["id"],
            "campaign_id": contact["campaign_id"], "contact_id": contact["id"],
            "external_id": contact.get("external_id"), "kind": job["kind"],
            "callee": job["callee"], "outcome": "refused_by_policy", "reason": reason, "final": 1, "number_shown": None,
            "counts_as_attempt": 0, "at": now, "body": _body_text(body)}
        s = self.store
        hooks = s.webhooks_for("result")
        with s.tx() as c:
            row["seq"] = s.insert_result(c, row)
            if next_at is None:
                s.finish_waiting(c, contact["id"], contact["campaign_id"], f"refused_by_policy:{reason}", now)
            else:
                s.defer_waiting(c, contact["id"], next_at, now)
            s.enqueue(c, hooks, "result", result_event(row), now)
        if hooks:
            self.on_queued()
        return row

    # -- acknowledgements -------------------------------------------------------------------
    def ack_batch(self, appliance_id: str, accepted: Iterable[str], rejected: Iterable[tuple[str, str]], now: float) -> None:
        """The appliance stored ``accepted`` and refused ``rejected`` (id, reason) as invalid:
        retrying the same job cannot help, so a rejected job ends its contact."""
        s = self.store
        with s.tx() as c:
            s.accept_jobs(c, appliance_id, accepted, now)
            for job_id, reason in rejected:
                job = s.reject_job(c, job_id, appliance_id, now)
                if job is not None:
                    s.advance_contact(c, job["contact_id"], job["campaign_id"], state="done", step=0, n=0, gen=0,
                                      next_at=self.clock(), outcome=f"rejected_by_appliance: {reason}"[:200], now=self.clock())

    # -- inbound ----------------------------------------------------------------------------
    def add_inbound(self, appliance_id: str, events: Sequence[dict[str, Any]], now: float) -> list[dict[str, Any]]:
        """Store inbound calls and SMS (deduplicated by id), each matched to the contact
        that was shown the number it called; an SMS that says STOP opts its sender out.

        An answered callback carries the caller's menu choice (``choice``), in the call's
        first send or in a later one of the same id (the appliance sends the call at its
        first ring, the choice once he keyed): "opt_out" (9) opts the caller's number out
        (source "callback"), "callback" (1) is kept on the row as his request to be called
        back, matched to the contact and campaign like the call; each reaches the webhook
        once, the choice with the event it completes."""
        s = self.store
        hooks = s.webhooks_for("inbound")
        new = []
        with s.tx() as c:
            for e in events:
                choice = e.get("choice") if e["kind"] == "call" else None
                opt_out = (e["kind"] == "sms" and self.is_stop(e.get("text"))) or choice == "opt_out"
                contact_id, campaign_id, external_id = s.match_shown(c, e["from"], e.get("to"))
                row = {"id": e["id"], "appliance_id": appliance_id, "kind": e["kind"], "from_number": e["from"],
                       "to_number": e.get("to"), "text": e.get("text"), "at": e.get("_at", now), "contact_id": contact_id,
                       "external_id": external_id, "campaign_id": campaign_id, "opted_out": int(opt_out), "choice": choice}
                out = s.insert_inbound(c, row)
                if out is None and choice is not None:
                    out = s.set_inbound_choice(c, e["id"], choice, opt_out)
                if out is None:
                    continue
                if opt_out and e["kind"] == "sms":
                    s.opt_out(c, e["from"], "sms", (e.get("text") or "")[:100], now)
                elif opt_out:
                    s.opt_out(c, e["from"], "callback", "keyed 9 (stop calling this number) on an answered callback", now)
                new.append(out)
                s.enqueue(c, hooks, "inbound", inbound_event(out), now)
        if hooks and new:
            self.on_queued()
        return new
