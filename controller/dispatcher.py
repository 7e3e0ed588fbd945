"""The dispatcher: turns due contacts into leased jobs on appliances (what a final result
does to its contact is controller/reports.py's, the next step itself campaigns.py's).

One ``tick``:

0. jobs an appliance holds and has not started get their lease renewed, with the same id,
   when a third of it is left, for at most ``MAX_HOLD_LEASES`` leases (a job waiting on
   the box for a SIM's cap or pause is not expired and re-minted every lease);
1. expired leases (no result before ``lease_deadline``) are leased again *with the same
   id* — to the same appliance when it is connected (it dedupes by id, so a job it
   already ran is not re-run), to another only when the first has been gone for
   ``stranded_after`` seconds (documented trade-off in docs/controller.md);
2. due contacts of running campaigns get their next job built from the strategy, are
   checked against the contact rules (a refusal becomes a ``refused_by_policy`` result
   with its reason and re-plans the contact at the rule's ``retry_at``), and are
   claimed and leased atomically in rounds of up to ``CLAIM_ROUND`` contacts
   (``Store.claim_round``: one transaction, a handful of statements), the rules checked
   inside the round's transaction on the counts the database holds then, so they hold
   across controllers sharing one database. A contact that cannot make the job its step asks
   for (a voicebot step without the contact's amount, say: ``campaigns.ContactDataError``)
   is refused for good with reason ``unusable_contact_data`` naming the field, instead of
   sending a job the appliance would reject;
3. batches are sent to the appliances; the appliance acknowledges after persisting.

Job ids are ``<campaign>.<contact>.<step>.<n>`` — stable across re-dispatch of the same
lease — with ``.g<k>`` appended after the appliance reported the job ``expired``
(certainly never started), since the appliance would treat the old id as done.
"""
from __future__ import annotations

import logging
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Generator, Mapping
from datetime import UTC, date, datetime
from typing import Any, Final

import msgspec

from common import contract
from common.contract import JobKind

from . import campaigns as cp
from . import planner, rules
from .campaigns import job_id
from .faults import fault
from .reports import Reports
from .store import CHUNK, Store
from .store.jobs import Lease, RuleAsk, RuleCounts

logger = logging.getLogger(__name__)

#: A job not started within this many seconds of dispatch expires on the appliance
#: (``deadline``), long enough for a queue of capacity + queue_depth jobs of ~90 s each.
DEFAULT_LEASE_SECONDS: Final = 300.0
#: An appliance gone this long gives up its expired leases to others. Long enough that a
#: link outage or a restart of a box that ran the job has delivered its outbox first.
DEFAULT_STRANDED_AFTER: Final = 900.0
#: Contacts looked at per tick beyond the free slots (refusals do not use a slot).
SCAN_FACTOR: Final = 4
#: Contacts one claim round holds (``Store.claim_round``, one transaction): the store's
#: ``CHUNK``, so each of its statements takes the round's ids in one ``IN (…)``.
CLAIM_ROUND: Final = CHUNK
#: A job its appliance holds and has not started (waiting for a SIM's cap or pause, say)
#: gets its lease renewed, under the same id, when a third of the lease is left ...
RENEW_WHEN_LEFT: Final = 1 / 3
#: ... until it has been held this many leases: then it expires on the appliance and is
#: planned again, possibly elsewhere (a job must not sit on one box for ever).
MAX_HOLD_LEASES: Final = 4
#: Renewals sent per tick, at most (each is one UPDATE and one line of a batch).
MAX_RENEWALS_PER_TICK: Final = 500

SendFn = Callable[[str, contract.LinkMessage], Awaitable[bool]]


def job_head(contact: dict[str, Any], campaign: dict[str, Any], steps: tuple[cp.Step, ...]) -> dict[str, Any]:
    """The job's id, kind and callee for the contact's current step (what a refusal names)."""
    step = steps[contact["step"]]
    phones = contact["phones"]
    callee = phones[contact["n"] % len(phones)] if step.kind is JobKind.CALL else phones[0]
    return {"id": job_id(campaign["id"], contact["id"], contact["step"], contact["n"], contact["gen"]),
            "kind": step.kind.value, "callee": callee}


def build_job(contact: dict[str, Any], campaign: dict[str, Any], steps: tuple[cp.Step, ...], deadline: float,
              operator_prefixes: Mapping[str, str], *, now: float | None = None) -> dict[str, Any]:
    """The job (``common.contract.Job``, as the JSON-ready dict the store and the link
    carry) for the contact's current step, built at ``now`` (default: ``deadline``; a
    voicebot's promise window starts on that day in the contact's zone). Raises
    ``campaigns.ContactDataError`` when the contact lacks what the step needs."""
    step = steps[contact["step"]]
    head = job_head(contact, campaign, steps)
    callee = head["callee"]
    op = planner.operator_of(callee, operator_prefixes)
    part: dict[str, Any]
    if step.kind is JobKind.CALL:
        at = _utc(deadline if now is None else now)
        zone = rules.resolve_zones(rules.Request(JobKind.CALL, callee, at, contact.get("time_zone")))[0]
        part = {"call": cp.call_options(step, contact, at, zone)}
    elif step.kind is JobKind.SMS:
        part = {"text": cp.render(step.text or "", contact, step.creditor), "report": True}
    else:
        part = {"method": contract.HlrMethod(step.method)}
    job = contract.Job(
        id=head["id"], kind=step.kind, callee=callee, priority=0, deadline=deadline, campaign=campaign["id"], contact=contact["id"],
        hints=contract.Hints(operator=op) if op else contract.Hints(),
        # the controller owns the callee's attempts; the appliance only retries failures
        # on its side (channel/network) on another SIM
        retry=contract.Retry(max_attempts=1), **part)
    return msgspec.to_builtins(job)


def _utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def _promise_date(contact: dict[str, Any]) -> date | None:
    """The contact's promise to pay (``contacts.promise_date``, written from a voicebot result)."""
    raw = contact.get("promise_date")
    try:
        return date.fromisoformat(raw) if raw else None
    except ValueError:
        return None


class Dispatcher:
    """Plans and leases jobs; a refusal is written through ``reports`` (the result and the
    contact's new due time in one transaction)."""

    def __init__(self, store: Store, reports: Reports, clock: Callable[[], float], *,
                 lease_seconds: float = DEFAULT_LEASE_SECONDS, stranded_after: float = DEFAULT_STRANDED_AFTER,
                 queue_depth: int = planner.DEFAULT_QUEUE_DEPTH, operator_prefixes: Mapping[str, str] | None = None) -> None:
        self.store = store
        self.reports = reports
        self.clock = clock
        self.lease_seconds = lease_seconds
        self.stranded_after = stranded_after
        self.queue_depth = queue_depth
        self.operator_prefixes = dict(operator_prefixes or {})
        self.refusals = 0
        self.dispatched = 0

    # -- planning ----------------------------------------------------------------------------
    def _rule_ask(self, contact: dict[str, Any], job: dict[str, Any], settings: rules.Settings, now: float) -> RuleAsk:
        day0 = rules.day_start_utc(_utc(now), contact.get("time_zone"), job["callee"]).timestamp()
        return RuleAsk(contact["id"], job["callee"], now - settings.attempt_window.total_seconds(), day0)

    @staticmethod
    def _decide(contact: dict[str, Any], job: dict[str, Any], settings: rules.Settings, counts: RuleCounts,
                leased_now: int, now: float) -> rules.Decision:
        """The rules for ``job`` on ``counts``, with ``leased_now`` calls to its number
        leased earlier in the same round (not in the database's counts yet)."""
        history = rules.History(opted_out=counts.opted_out, recent_attempts=[_utc(t) for t in counts.attempts],
                                last_conversation=_utc(counts.last_conversation) if counts.last_conversation else None,
                                attempts_today=counts.attempts_today, calls_in_flight=counts.calls_in_flight + leased_now,
                                promise_date=_promise_date(contact))
        return rules.check(rules.Request(rules.JobKind(job["kind"]), job["callee"], _utc(now), contact.get("time_zone")),
                           settings, history)

    def _plan(self, now: float, slots: list[planner.Slot], batch_for: Callable[[str], str],
              batches: dict[str, list[dict[str, Any]]]) -> Generator[None, None, tuple[int, int]]:
        """Due contacts into leased jobs, round by round (``Store.claim_round``: up to
        ``CLAIM_ROUND`` contacts in one transaction), until the slots are full, the due
        contacts run out or ``SCAN_FACTOR`` x the free slots were looked at. The contact
        rules are checked inside each round on the counts the database holds then, so they
        hold across controllers sharing one database. Refusals are written after their
        round (``Reports.record_refusal``: the result and the contact's new due time).
        A step a round (``Store.off_loop_steps``); returns (leased, refused)."""
        by_id = {s.appliance_id: s for s in slots}
        free = planner.total_free(slots)
        campaigns: dict[str, tuple[dict[str, Any], tuple[cp.Step, ...], rules.Settings] | None] = {}
        planned = refused = looked = 0
        deadline = now + self.lease_seconds
        while planned < free and looked < free * SCAN_FACTOR:
            want = free - planned
            refusals: list[tuple[dict[str, Any], dict[str, Any], str, str, float | None]] = []
            full = False
            with self.store.claim_round(now, min(CLAIM_ROUND, want * SCAN_FACTOR)) as rnd:
                if not rnd.contacts:
                    break
                looked += len(rnd.contacts)
                pending: list[tuple[dict[str, Any], dict[str, Any], rules.Settings, str]] = []
                for contact in rnd.contacts:
                    if len(pending) >= want:
                        break
                    cid = contact["campaign_id"]
                    if cid not in campaigns:
                        camp = self.store.get_campaign(cid)
                        campaigns[cid] = None if camp is None else (camp, cp.parse_strategy(camp["strategy"]),
                                                                    cp.parse_rules(camp["rules"]))
                    if (known := campaigns[cid]) is None:
                        continue
                    camp, steps, settings = known
                    try:
                        job = build_job(contact, camp, steps, deadline, self.operator_prefixes, now=now)
                    except cp.ContactDataError as exc:
                        refusals.append((contact, job_head(contact, camp, steps), rules.Reason.UNUSABLE_CONTACT_DATA.value,
                                         f"strategy[{contact['step']}] cannot run for this contact: {exc.field}: {exc.reason}",
                                         None))
                        continue
                    target_id = planner.assign([(job.get("hints") or {}).get("operator")], slots)[0]
                    if target_id is None:
                        full = True
                        break
                    pending.append((contact, job, settings, target_id))
                counts = rnd.rule_counts([self._rule_ask(contact, job, settings, now) for contact, job, settings, _ in pending])
                leases = []
                calls: Counter[str] = Counter()  # this round's calls by number
                for (contact, job, settings, target_id), got in zip(pending, counts, strict=True):
                    decision = self._decide(contact, job, settings, got, calls[job["callee"]], now)
                    if not decision.allowed:
                        by_id[target_id].open_jobs -= 1
                        assert decision.reason is not None
                        refusals.append((contact, job, decision.reason.value, decision.detail,
                                         decision.retry_at.timestamp() if decision.retry_at else None))
                        continue
                    if job["kind"] == JobKind.CALL.value:
                        calls[job["callee"]] += 1
                    leases.append(Lease(contact["id"], contact["campaign_id"], job, target_id, batch_for(target_id), deadline))
                rnd.lease(leases)
            for lease in leases:
                batches.setdefault(lease.appliance_id, []).append(lease.job)
            planned += len(leases)
            for contact, job, reason, detail, retry_at in refusals:
                self.reports.record_refusal(contact, job, reason, detail, retry_at, now)
            refused += len(refusals)
            if full:
                break
            yield
        return planned, refused

    async def tick(self, slots: list[planner.Slot], send: SendFn) -> dict[str, int]:
        """One round of dispatch over the connected appliances' ``slots``. With none
        connected there is nothing to renew (only a connected appliance's jobs are), no one
        to release an expired lease to and no room to plan: the tick reads nothing (it ran
        every 0.2 s: two reads of the jobs on the event loop for nothing). The leases are
        written by ``Store.off_loop_steps`` (PostgreSQL: in a worker thread; SQLite: a claim
        round at a time on the loop), the batches sent on the loop."""
        if not slots:
            return {"planned": 0, "released": 0, "renewed": 0, "refused": 0, "sent": 0}
        now = self.clock()
        batches: dict[str, list[dict[str, Any]]] = {}
        batch_ids: dict[str, str] = {}
        renewed, released, planned, refused = await self.store.off_loop_steps(self._lease(now, slots, batches, batch_ids))
        if planned or released:
            fault("dispatch.leased")
        sent = 0
        for appliance_id, jobs in batches.items():
            if await send(appliance_id, contract.Jobs(batch_id=batch_ids[appliance_id], jobs=jobs)):
                sent += len(jobs)
        self.refusals += refused
        self.dispatched += planned + released
        return {"planned": planned, "released": released, "renewed": renewed, "refused": refused, "sent": sent}

    def _lease(self, now: float, slots: list[planner.Slot], batches: dict[str, list[dict[str, Any]]],
               batch_ids: dict[str, str]) -> Generator[None, None, tuple[int, int, int, int]]:
        """The tick's writes: leases renewed, expired ones released to a slot, due contacts
        planned (``_plan``, a step a claim round); each job into ``batches`` by appliance,
        each batch's id into ``batch_ids``. Returns (renewed, released, planned, refused)."""
        by_id = {s.appliance_id: s for s in slots}

        def batch_for(appliance_id: str) -> str:
            if appliance_id not in batch_ids:  # an id a batch, made once (not a uuid4 a job)
                batch_ids[appliance_id] = f"b-{uuid.uuid4().hex[:16]}"
            return batch_ids[appliance_id]

        renewed = 0
        for job in self.store.renewable_leases(now, self.lease_seconds * RENEW_WHEN_LEFT,
                                               now - self.lease_seconds * MAX_HOLD_LEASES, MAX_RENEWALS_PER_TICK):
            # The controller's lease moves first, then the appliance hears of it: the
            # appliance's deadline is never later than ours, so a renewal lost on the link
            # only lets the job expire there (reported, planned again), never run twice.
            if job["appliance_id"] not in by_id:
                continue
            deadline = now + self.lease_seconds
            spec = {**job["spec"], "deadline": deadline}
            if self.store.renew_lease(job["id"], job["lease_deadline"], deadline, now, spec):
                batches.setdefault(job["appliance_id"], []).append(spec)
                batch_for(job["appliance_id"])
                renewed += 1

        released = 0
        for job in self.store.expired_leases(now, limit=max(1, planner.total_free(slots))):
            home = by_id.get(job["appliance_id"] or "")
            target: planner.Slot | None = None
            if home is not None and home.free > 0:
                target = home
            elif home is None and (job["appliance_last_seen"] is None or now - job["appliance_last_seen"] > self.stranded_after):
                others = [s for s in slots if s.free > 0]
                target = max(others, key=lambda s: s.free) if others else None
            if target is None:
                continue
            deadline = now + self.lease_seconds
            spec = {**job["spec"], "deadline": deadline}
            if self.store.release(job["id"], target.appliance_id, batch_for(target.appliance_id), deadline, now, spec):
                target.open_jobs += 1
                batches.setdefault(target.appliance_id, []).append(spec)
                released += 1

        planned, refused = (yield from self._plan(now, slots, batch_for, batches)) if planner.total_free(slots) > 0 else (0, 0)
        return renewed, released, planned, refused
