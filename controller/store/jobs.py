"""Jobs and their leases: claim a waiting contact and lease its job to an appliance,
renew, re-lease after expiry, acknowledge, count and withdraw.

Hot path (every dispatch tick): raw SQL, each claim a conditional ``UPDATE … WHERE state =
'waiting'`` inside ``BEGIN IMMEDIATE``, so two dispatchers over one database never take the
same contact or re-lease the same job. On PostgreSQL the contact's row is first taken with
``SELECT … FOR UPDATE SKIP LOCKED``: a contact another controller is claiming right now is
passed over at once instead of waited for (its transaction would take it anyway).
"""
from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Collection, Iterable
from typing import Any

from .backend import POSTGRESQL
from .base import StoreBase, in_chunks


def count_open_jobs(conn: sqlite3.Connection, appliance_id: str) -> int:
    """Jobs handed to ``appliance_id`` and not yet done."""
    return int(conn.execute("SELECT COUNT(*) FROM jobs WHERE appliance_id = ? AND state IN ('leased', 'accepted', 'started')",
                            (appliance_id,)).fetchone()[0])


class Jobs(StoreBase):
    # -- dispatch: claims, jobs, leases ------------------------------------------------------
    def claim_and_lease(self, contact_id: int, job: dict[str, Any], appliance_id: str, batch_id: str,
                        deadline: float, now: float, check: Callable[[], None] | None = None) -> bool:
        """Take a waiting contact and lease its job to an appliance, atomically; False if
        another dispatcher took the contact first. ``check`` runs inside the transaction
        once the contact is taken (the store's reads in it see the transaction: the
        contact rules' counts); an exception it raises rolls the claim back and propagates."""
        with self.tx() as c:
            if self.dialect is POSTGRESQL and c.execute(
                    "SELECT 1 FROM contacts WHERE id = ? AND state = 'waiting' FOR UPDATE SKIP LOCKED", (contact_id,)).fetchone() is None:
                return False
            if c.execute("UPDATE contacts SET state = 'in_flight', updated_at = ? WHERE id = ? AND state = 'waiting'",
                         (now, contact_id)).rowcount != 1:
                return False
            if check is not None:
                check()
            self._move(c, job["campaign"], "waiting", "in_flight")
            c.execute("INSERT INTO jobs(id, campaign_id, contact_id, kind, callee, spec, state, appliance_id, batch_id,"
                      " lease_deadline, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, 'leased', ?, ?, ?, ?, ?)"
                      " ON CONFLICT(id) DO UPDATE SET state = 'leased', appliance_id = excluded.appliance_id,"
                      " batch_id = excluded.batch_id, lease_deadline = excluded.lease_deadline, updated_at = excluded.updated_at",
                      (job["id"], job["campaign"], contact_id, job["kind"], job["callee"], json.dumps(job), appliance_id,
                       batch_id, deadline, now, now))
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
        statement per state and ``CHUNK`` ids)."""
        for state, ids in (("done", sorted(done)), ("started", sorted(started))):
            for part, marks in in_chunks(ids):
                c.execute(f"UPDATE jobs SET state = ?, updated_at = ? WHERE id IN ({marks})"
                          " AND state IN ('leased', 'accepted', 'started')", (state, now, *part))

    @staticmethod
    def accept_jobs(c: sqlite3.Connection, appliance_id: str, job_ids: Iterable[str], now: float) -> None:
        """The appliance stored these jobs of its batch (in the caller's transaction)."""
        c.executemany("UPDATE jobs SET state = 'accepted', updated_at = ? WHERE id = ? AND appliance_id = ? AND state = 'leased'",
                      [(now, j, appliance_id) for j in job_ids])

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

