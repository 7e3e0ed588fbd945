"""Jobs and their leases: claim a waiting contact and lease its job to an appliance,
renew, re-lease after expiry, acknowledge, count and withdraw.

Hot path (every dispatch tick): raw SQL, each claim a conditional ``UPDATE … WHERE state =
'waiting'`` inside ``BEGIN IMMEDIATE``, so two dispatchers over one database never take the
same contact or re-lease the same job. On PostgreSQL the contact's row is first taken with
``SELECT … FOR UPDATE SKIP LOCKED``: a contact another controller is claiming right now is
passed over at once instead of waited for (its transaction would take it anyway).
"""
from __future__ import annotations

import contextlib
import json
import sqlite3
from collections import defaultdict
from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Final

from .backend import POSTGRESQL, PgConnection
from .base import CHUNK, StoreBase, dict_rows, encode, one_of


#: Jobs handed to an appliance and not yet done (its one argument: the appliance's id).
OPEN_JOBS_OF: Final = "SELECT COUNT(*) AS n FROM jobs WHERE appliance_id = ? AND state IN ('leased', 'accepted', 'started')"


def count_open_jobs(conn: sqlite3.Connection, appliance_id: str) -> int:
    """Jobs handed to ``appliance_id`` and not yet done."""
    return int(conn.execute(OPEN_JOBS_OF, (appliance_id,)).fetchone()[0])


@dataclass(frozen=True, slots=True)
class Lease:
    """A job a claim round leases: the contact it is for, the job (the dict the link
    carries), the appliance and batch it goes to, the lease's end."""

    contact_id: int
    campaign_id: str
    job: dict[str, Any]
    appliance_id: str
    batch_id: str
    deadline: float


@dataclass(frozen=True, slots=True)
class RuleAsk:
    """What the contact rules want counted for one planned job: the contact's attempts
    since ``window_start`` and last conversation, the calls to ``number`` since
    ``day_start`` (the callee's local midnight), and whether ``number`` opted out."""

    contact_id: int
    number: str
    window_start: float
    day_start: float


@dataclass(frozen=True, slots=True)
class RuleCounts:
    attempts: list[float]
    last_conversation: float | None
    attempts_today: int
    opted_out: bool
    #: open call jobs to the number with no placed attempt stored yet
    calls_in_flight: int = 0


class ClaimRound:
    """One transaction of a dispatch round (``Jobs.claim_round``): the due contacts it
    holds (``contacts``), the contact rules' counts read in it (``rule_counts``) and the
    leases written in it (``lease``). A contact it holds and does not lease stays waiting,
    as it was, when the round ends.

    A round replaces a transaction per contact (7 statements each, a round trip apiece on
    PostgreSQL: 334-341 jobs/s with two controllers) by a handful of statements per
    ``CHUNK`` contacts."""

    def __init__(self, c: Any, contacts: list[dict[str, Any]], now: float) -> None:
        self._c = c
        self.contacts = contacts
        self.now = now

    def rule_counts(self, asks: Sequence[RuleAsk]) -> list[RuleCounts]:
        """The counts for each of ``asks``, as the database holds them in this transaction
        (whichever controller wrote them): four statements for the round, not several a
        contact: the contact's call attempts in the window and its last conversation, the
        placed calls to each number since the callee's midnight, the opt-outs; beside them
        the calls to each number in flight (leased to any appliance by any controller,
        no placed attempt stored yet), so two contacts sharing a number cannot pass its
        daily cap together."""
        if not asks:
            return []
        c = self._c
        ids = sorted({a.contact_id for a in asks})
        numbers = sorted({a.number for a in asks})
        since = min(a.window_start for a in asks)
        today = min(a.day_start for a in asks)
        attempts: dict[int, list[float]] = defaultdict(list)
        talks: dict[int, float] = {}
        calls: dict[str, list[float]] = defaultdict(list)
        opted: set[str] = set()
        for where, args in one_of(c, "contact_id", ids):
            for cid, at, outcome, is_attempt in c.execute(
                    "SELECT contact_id, at, outcome, kind = 'call' AND counts_as_attempt = 1 FROM results"
                    f" WHERE {where} AND ((kind = 'call' AND counts_as_attempt = 1 AND at > ?)"
                    " OR outcome = 'answered_human') ORDER BY contact_id, at", (*args, since)).fetchall():
                if is_attempt and at > since:
                    attempts[cid].append(at)
                if outcome == "answered_human":
                    talks[cid] = at  # rows come oldest first: the last one is the latest
        for where, args in one_of(c, "callee", numbers):
            for number, at in c.execute(f"SELECT callee, at FROM results WHERE {where} AND kind = 'call'"
                                        " AND counts_as_attempt = 1 AND at >= ?", (*args, today)).fetchall():
                calls[number].append(at)
        for where, args in one_of(c, "number", numbers):
            opted.update(r[0] for r in c.execute(f"SELECT number FROM optouts WHERE {where}", args).fetchall())
        flying: dict[str, int] = {}
        for where, args in one_of(c, "j.callee", numbers):
            flying.update((r[0], r[1]) for r in c.execute(_CALLS_IN_FLIGHT.format(where=where), args).fetchall())
        return [RuleCounts(attempts=[t for t in attempts.get(a.contact_id, ()) if t > a.window_start],
                           last_conversation=talks.get(a.contact_id),
                           attempts_today=sum(1 for t in calls.get(a.number, ()) if t >= a.day_start),
                           opted_out=a.number in opted, calls_in_flight=flying.get(a.number, 0)) for a in asks]

    def lease(self, leases: Sequence[Lease]) -> None:
        """The contacts of ``leases`` in flight and their jobs leased, in this transaction:
        one update a ``CHUNK``, the counts once, the jobs in one ``executemany``."""
        if not leases:
            return
        c, now = self._c, self.now
        moved: dict[tuple[str, str], int] = defaultdict(int)
        n = sum(c.execute(f"UPDATE contacts SET state = 'in_flight', updated_at = ? WHERE {where} AND state = 'waiting'",
                          (now, *args)).rowcount for where, args in one_of(c, "id", [lease.contact_id for lease in leases]))
        if n != len(leases):  # the round holds these rows: nobody else can have moved them
            raise RuntimeError(f"a claim round lost {len(leases) - n} of the contacts it held")
        for lease in leases:
            moved[(lease.campaign_id, "waiting")] -= 1
            moved[(lease.campaign_id, "in_flight")] += 1
        if isinstance(c, PgConnection):  # one statement, not a Bind/Execute a row
            c.execute(_LEASE_JOBS_PG, (now, now, encode([
                {"i": lease.job["id"], "cp": lease.campaign_id, "ct": lease.contact_id, "k": lease.job["kind"],
                 "ce": lease.job["callee"], "sp": lease.job, "ap": lease.appliance_id, "b": lease.batch_id,
                 "d": lease.deadline} for lease in leases]).decode()))
        else:
            c.executemany(_LEASE_JOB, [(lease.job["id"], lease.campaign_id, lease.contact_id, lease.job["kind"],
                                        lease.job["callee"], encode(lease.job).decode(), lease.appliance_id,
                                        lease.batch_id, lease.deadline, now, now) for lease in leases])
        # last: the counts' rows are the one thing every round of a campaign writes, so
        # their lock is held for the shortest time before the commit
        StoreBase._count(c, moved)


#: Open call jobs by number whose call has no placed attempt stored yet (a job reported
#: started may have one: it is counted among the results already). ``jobs_open_callee``.
_CALLS_IN_FLIGHT = ("SELECT j.callee, COUNT(*) FROM jobs j WHERE {where} AND j.kind = 'call'"
                    " AND j.state IN ('leased', 'accepted', 'started') AND NOT EXISTS (SELECT 1 FROM results r"
                    " WHERE r.contact_id = j.contact_id AND r.job_id = j.id AND r.counts_as_attempt = 1) GROUP BY j.callee")

#: A job leased: a new row, or the same id leased again (a contact planned again after its
#: job was rejected or expired keeps the id until its generation changes).
_LEASE_JOB = ("INSERT INTO jobs(id, campaign_id, contact_id, kind, callee, spec, state, appliance_id, batch_id,"
              " lease_deadline, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, 'leased', ?, ?, ?, ?, ?)"
              " ON CONFLICT(id) DO UPDATE SET state = 'leased', appliance_id = excluded.appliance_id,"
              " batch_id = excluded.batch_id, lease_deadline = excluded.lease_deadline, updated_at = excluded.updated_at")


#: ``_LEASE_JOB`` for a round's jobs at once on PostgreSQL, its rows as one JSON document:
#: one parameter the server reads in C, where arrays of text cost psycopg an escaping pass
#: a value in Python (50-60 ms per 500 jobs against ~10 ms).
_LEASE_JOBS_PG = _LEASE_JOB.replace(
    " VALUES (?, ?, ?, ?, ?, ?, 'leased', ?, ?, ?, ?, ?)",
    " SELECT i, cp, ct, k, ce, sp::text, 'leased', ap, b, d, ?, ? FROM json_to_recordset(?::json)"
    " AS t(i text, cp text, ct bigint, k text, ce text, sp json, ap text, b text, d float8)")
assert _LEASE_JOBS_PG != _LEASE_JOB


class Jobs(StoreBase):
    # -- dispatch: claims, jobs, leases ------------------------------------------------------
    @contextlib.contextmanager
    def claim_round(self, now: float, limit: int) -> Iterator[ClaimRound]:
        """A transaction holding up to ``limit`` due contacts of running campaigns, oldest
        due first, for the dispatcher to plan, check and lease (``ClaimRound``). On
        PostgreSQL the rows are taken ``FOR UPDATE SKIP LOCKED``: two controllers' rounds
        take different contacts at once, neither waits for the other; on SQLite the round
        is the one writer (``BEGIN IMMEDIATE``)."""
        lock = " FOR UPDATE SKIP LOCKED" if self.dialect is POSTGRESQL else ""
        with self.tx() as c:
            running = [r[0] for r in c.execute("SELECT id FROM campaigns WHERE state = 'running' ORDER BY id").fetchall()]
            if not running:
                yield ClaimRound(c, [], now)
                return
            # The running campaigns by id, not a join: PostgreSQL estimates a join with the
            # small campaigns table at a few hundred rows, sorts every waiting contact for
            # each round (100-200 ms at 100,000) instead of walking ``contacts_due`` in order.
            # SQLite's planner, offered the campaign's unique index for ``campaign_id IN (…)``,
            # took it and sorted the whole campaign (100 ms a round at 200,000 contacts, 1,011
            # jobs/s at 1,000,000): ``+campaign_id`` is SQLite's way to say "not by an index".
            column = "campaign_id" if self.dialect is POSTGRESQL else "+campaign_id"
            if len(running) <= CHUNK:
                where, args = next(one_of(c, column, running))
            else:  # more running campaigns than one IN (…) holds
                where, args = f"{column} IN (SELECT id FROM campaigns WHERE state = 'running')", []
            cur = c.execute(f"SELECT * FROM contacts WHERE state = 'waiting' AND next_at <= ? AND {where}"
                            f" ORDER BY next_at LIMIT ?{lock}", (now, *args, limit))
            rows = dict_rows(cur)
            for r in rows:
                r["phones"] = json.loads(r["phones"])
            yield ClaimRound(c, rows, now)

    def claim_and_lease(self, contact_id: int, job: dict[str, Any], appliance_id: str, batch_id: str,
                        deadline: float, now: float) -> bool:
        """One contact, named by id, taken and its job leased, atomically: a claim round of
        one (the dispatcher claims in rounds, ``claim_round``). False when the contact is not
        waiting, or another controller's transaction holds it (PostgreSQL's SKIP LOCKED)."""
        lock = " FOR UPDATE SKIP LOCKED" if self.dialect is POSTGRESQL else ""
        with self.tx() as c:
            if c.execute(f"SELECT 1 FROM contacts WHERE id = ? AND state = 'waiting'{lock}", (contact_id,)).fetchone() is None:
                return False
            ClaimRound(c, [], now).lease([Lease(contact_id, job["campaign"], job, appliance_id, batch_id, deadline)])
            return True

    def expired_leases(self, now: float, limit: int) -> list[dict[str, Any]]:
        """Jobs whose lease ran out before any result came back (never started, as far as we know)."""
        # Only jobs of running campaigns: a paused campaign's jobs wait for resume, a
        # cancelled one's are never handed out again.
        rows = self._all("SELECT j.*, a.connected AS appliance_connected, a.last_seen AS appliance_last_seen FROM jobs j"
                         " LEFT JOIN appliances a ON a.id = j.appliance_id JOIN campaigns cp ON cp.id = j.campaign_id"
                         " WHERE j.state IN ('leased', 'accepted') AND j.lease_deadline < ? AND cp.state = 'running'"
                         " ORDER BY j.lease_deadline LIMIT ?",
                         (now, limit))
        for r in rows:
            r["spec"] = json.loads(r["spec"])
        return rows

    def unacked_jobs(self, appliance_id: str, now: float) -> list[dict[str, Any]]:
        """Specs of jobs leased to ``appliance_id`` (running campaigns, lease not over) that
        it has not acknowledged."""
        return [json.loads(r[0]) for r in self.conn.execute(
            "SELECT j.spec FROM jobs j JOIN campaigns cp ON cp.id = j.campaign_id WHERE j.appliance_id = ?"
            " AND j.state = 'leased' AND j.lease_deadline > ? AND cp.state = 'running' ORDER BY j.lease_deadline",
            (appliance_id, now)).fetchall()]

    def renewable_leases(self, now: float, within: float, held_since: float, limit: int) -> list[dict[str, Any]]:
        """Jobs an appliance holds (acknowledged, not started) of running campaigns whose
        lease ends within ``within`` seconds and that were first leased after ``held_since``."""
        rows = self._all("SELECT j.* FROM jobs j JOIN campaigns cp ON cp.id = j.campaign_id"
                         " WHERE j.state = 'accepted' AND j.lease_deadline >= ? AND j.lease_deadline < ?"
                         " AND j.created_at > ? AND cp.state = 'running' ORDER BY j.lease_deadline LIMIT ?",
                         (now, now + within, held_since, limit))
        for r in rows:
            r["spec"] = json.loads(r["spec"])
        return rows

    def renew_lease(self, job_id: str, old_deadline: float, deadline: float, now: float, spec: dict[str, Any]) -> bool:
        """A later lease for a job its appliance still holds; conditional on nothing having moved it."""
        with self.tx() as c:
            return c.execute("UPDATE jobs SET lease_deadline = ?, spec = ?, updated_at = ? WHERE id = ? AND state = 'accepted'"
                             " AND lease_deadline = ?", (deadline, json.dumps(spec), now, job_id, old_deadline)).rowcount == 1

    def release(self, job_id: str, appliance_id: str, batch_id: str, deadline: float, now: float, spec: dict[str, Any]) -> bool:
        """Lease an expired job again (same id); conditional on it still being expired."""
        with self.tx() as c:
            return c.execute("UPDATE jobs SET appliance_id = ?, batch_id = ?, lease_deadline = ?, state = 'leased',"
                             " spec = ?, updated_at = ? WHERE id = ? AND state IN ('leased', 'accepted') AND lease_deadline < ?",
                             (appliance_id, batch_id, deadline, json.dumps(spec), now, job_id, now)).rowcount == 1

    @staticmethod
    def jobs_reported(c: sqlite3.Connection, done: Collection[str], started: Collection[str], now: float) -> None:
        """Results of these jobs came back (in the caller's transaction): a final one of each
        of ``done``, others only of ``started``; an open job becomes done or started (one
        statement per state and ``CHUNK`` ids; on PostgreSQL per state)."""
        for state, ids in (("done", sorted(done)), ("started", sorted(started))):
            for where, args in one_of(c, "id", ids):
                c.execute(f"UPDATE jobs SET state = ?, updated_at = ? WHERE {where}"
                          " AND state IN ('leased', 'accepted', 'started')", (state, now, *args))

    @staticmethod
    def accept_jobs(c: sqlite3.Connection, appliance_id: str, job_ids: Iterable[str], now: float) -> None:
        """The appliance stored these jobs of its batch (in the caller's transaction)."""
        for where, args in one_of(c, "id", sorted(set(job_ids))):  # one statement a CHUNK (PostgreSQL: one), not one a job
            c.execute(f"UPDATE jobs SET state = 'accepted', updated_at = ? WHERE {where} AND appliance_id = ? AND state = 'leased'",
                      (now, *args, appliance_id))

    @staticmethod
    def reject_job(c: sqlite3.Connection, job_id: str, appliance_id: str, now: float) -> dict[str, Any] | None:
        """The appliance refused the job (in the caller's transaction): the job as it was,
        or None when it is not this appliance's open job."""
        row = c.execute("SELECT * FROM jobs WHERE id = ? AND appliance_id = ? AND state IN ('leased', 'accepted')",
                        (job_id, appliance_id)).fetchone()
        if row is None:
            return None
        c.execute("UPDATE jobs SET state = 'rejected', updated_at = ? WHERE id = ?", (now, job_id))
        return dict(row)

    def open_jobs(self, appliance_id: str) -> int:
        return count_open_jobs(self.conn, appliance_id)

    def open_jobs_by_appliance(self) -> dict[str, int]:
        return {r[0]: r[1] for r in self.conn.execute(
            "SELECT appliance_id, COUNT(*) FROM jobs WHERE state IN ('leased', 'accepted', 'started') GROUP BY appliance_id")}

    def get_job(self, job_id: str) -> dict[str, Any] | None:
        row = self._one("SELECT * FROM jobs WHERE id = ?", (job_id,))
        if row:
            row["spec"] = json.loads(row["spec"])
        return row

    def unstarted_jobs(self, campaign_id: str | None = None, *, appliance_id: str | None = None,
                       campaign_states: tuple[str, ...] = ()) -> list[tuple[str, str]]:
        """(job id, appliance id) of jobs handed out and not reported started: of one
        campaign, or of one appliance's campaigns in ``campaign_states``."""
        sql = ("SELECT j.id, j.appliance_id FROM jobs j JOIN campaigns cp ON cp.id = j.campaign_id"
               " WHERE j.state IN ('leased', 'accepted')")
        args: list[Any] = []
        if campaign_id is not None:
            sql += " AND j.campaign_id = ?"
            args.append(campaign_id)
        if appliance_id is not None:
            sql += " AND j.appliance_id = ?"
            args.append(appliance_id)
        if campaign_states:
            sql += f" AND cp.state IN ({', '.join('?' * len(campaign_states))})"
            args.extend(campaign_states)
        return [(r[0], r[1]) for r in self.conn.execute(sql, args).fetchall()]

    def cancel_open_jobs(self, campaign_id: str, now: float) -> list[tuple[str, str]]:
        """(job id, appliance id) of jobs to cancel on their appliances; contacts end."""
        with self.tx() as c:
            rows = [(r[0], r[1]) for r in c.execute(
                "SELECT id, appliance_id FROM jobs WHERE campaign_id = ? AND state IN ('leased', 'accepted', 'started')",
                (campaign_id,)).fetchall()]
            c.execute("UPDATE contacts SET state = 'done', outcome = COALESCE(outcome, 'cancelled'), updated_at = ?"
                      " WHERE campaign_id = ? AND state <> 'done'", (now, campaign_id))
            self._recount(c, campaign_id)
            return rows

