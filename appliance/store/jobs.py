"""The store's jobs and their attempts — the scheduler's hot path, all raw SQL.

The rule: write before acting. A job is stored before it is acknowledged; an attempt is
stored (state ``started``, with the SIM and number it will show) before ``ATD`` is
written; its result goes to the outbox (``results``) in the same transaction that closes
the attempt, and a dispatch round's closes and starts share one commit
(``finish_and_start``). ``interrupted_attempts`` finds what a killed process left
``started``. The look-ups made at start or by the API (``get_job``, ``attempts_since``,
``interrupted_attempts``) go through sqlite-utils' ``query``/``rows_where``, rows as dicts.
"""
from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator
from typing import Any

from common.clock import iso

from .base import Rows

OPEN_STATES = ("queued", "running", "waiting_retry")


class JobRows(Rows):
    # -- jobs ---------------------------------------------------------------------------
    def add_jobs(self, jobs: Iterable[dict[str, Any]], now: float | None = None) -> list[tuple[str, bool]]:
        """Insert jobs; an id already stored is left as it is (idempotent resubmit)."""
        now = time.time() if now is None else now
        out = []
        with self._tx():
            for job in jobs:
                cur = self.conn.execute(
                    "INSERT OR IGNORE INTO jobs(id, kind, callee, spec, priority, not_before, deadline, state,"
                    " attempts, next_attempt_at, created_at, updated_at) VALUES (?,?,?,?,?,?,?,'queued',0,?,?,?)",
                    (
                        job["id"], job["kind"], job["callee"], json.dumps(job), int(job.get("priority", 0)),
                        job.get("not_before"), job.get("deadline"), job.get("not_before"), now, now,
                    ),
                )
                out.append((job["id"], cur.rowcount == 1))
        return out

    def get_job(self, job_id: str) -> dict[str, Any] | None:
        """The job as stored, its spec parsed, with its attempts (``attempt_list``)."""
        job = next(self.db.table("jobs").rows_where("id = ?", [job_id]), None)
        if job is None:
            return None
        job["spec"] = json.loads(job["spec"])
        job["attempt_list"] = [
            {**a, "result": json.loads(a["result"]) if a["result"] else None}
            for a in self.db.query(
                "SELECT id, n, sim_id, msisdn, channel_id, state, started_at, ended_at, result FROM attempts"
                " WHERE job_id = ? ORDER BY n", [job_id])
        ]
        return job

    def open_jobs(self) -> Iterator[dict[str, Any]]:
        for row in self.conn.execute(
            "SELECT spec, state, attempts, next_attempt_at FROM jobs WHERE state IN ('queued','waiting_retry')"
            " ORDER BY created_at"
        ):
            spec = json.loads(row[0])
            yield {"spec": spec, "state": row[1], "attempts": row[2], "next_attempt_at": row[3]}

    def cancel_job(self, job_id: str, now: float | None = None, *, body: dict[str, Any] | None = None) -> str:
        """Cancel a job that has not started; returns its state after the call. ``body``
        is its result (the scheduler's, which says who withdrew it); a bare one otherwise."""
        now = time.time() if now is None else now
        with self._tx():
            row = self.conn.execute("SELECT state FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if row is None:
                return "unknown"
            if row[0] in ("queued", "waiting_retry"):
                self.conn.execute("UPDATE jobs SET state='cancelled', updated_at=? WHERE id=?", (now, job_id))
                if body is None:
                    body = {"job_id": job_id, "outcome": "cancelled", "final": True,
                            "at": iso(now)}
                self.conn.execute(
                    "INSERT INTO results(job_id, attempt_id, final, body, created_at) VALUES (?,?,1,?,?)",
                    (job_id, None, json.dumps(body), now),
                )
                return "cancelled"
            return row[0]

    def renew_job(self, job_id: str, deadline: float, now: float) -> bool:
        """A later deadline for a job not yet started (the controller renewed its lease)."""
        with self._tx():
            row = self.conn.execute("SELECT spec FROM jobs WHERE id = ? AND state IN ('queued', 'waiting_retry')"
                                    " AND deadline IS NOT NULL AND deadline < ?", (job_id, deadline)).fetchone()
            if row is None:
                return False
            spec = {**json.loads(row[0]), "deadline": deadline}
            self.conn.execute("UPDATE jobs SET deadline = ?, spec = ?, updated_at = ? WHERE id = ?",
                              (deadline, json.dumps(spec), now, job_id))
            return True

    def finish_job_without_attempt(self, job_id: str, state: str, body: dict[str, Any], now: float) -> None:
        """A job ended before any attempt (deadline passed, refused): outbox + state together."""
        with self._tx():
            self.conn.execute("UPDATE jobs SET state=?, updated_at=? WHERE id=?", (state, now, job_id))
            self.conn.execute(
                "INSERT INTO results(job_id, attempt_id, final, body, created_at) VALUES (?,?,1,?,?)",
                (job_id, None, json.dumps(body), now),
            )

    def add_result(self, job_id: str, attempt_id: int | None, body: dict[str, Any], *, final: bool,
                   job_state: str | None, now: float) -> int:
        """A result that arrives after its attempt closed (a delivery report); a final one
        ends the job's wait for reports in the same transaction."""
        with self._tx():
            if final:
                self.conn.execute("DELETE FROM pending_reports WHERE job_id = ?", (job_id,))
            if job_state is not None:
                self.conn.execute("UPDATE jobs SET state=?, updated_at=? WHERE id=?", (job_state, now, job_id))
            cur = self.conn.execute(
                "INSERT INTO results(job_id, attempt_id, final, body, created_at) VALUES (?,?,?,?,?)",
                (job_id, attempt_id, 1 if final else 0, json.dumps(body), now),
            )
            return int(cur.lastrowid or 0)

    # -- attempts -------------------------------------------------------------------------
    def start_attempt(
        self, job_id: str, *, sim_id: str, msisdn: str, channel_id: str, callee: str, now: float,
    ) -> tuple[int, int]:
        """Record an attempt before it is placed; returns (attempt id, attempt number)."""
        return self.start_attempts([{"job_id": job_id, "sim_id": sim_id, "msisdn": msisdn, "channel_id": channel_id,
                                     "callee": callee}], now)[0]

    def start_attempts(self, items: list[dict[str, Any]], now: float) -> list[tuple[int, int]]:
        """Record several attempts in one transaction (a dispatch round's worth: one
        commit instead of one per job); returns (attempt id, attempt number) for each."""
        with self._tx():
            return self._start_rows(items, now)

    def _start_rows(self, items: list[dict[str, Any]], now: float) -> list[tuple[int, int]]:
        out = []
        for it in items:
            row = self.conn.execute(
                "UPDATE jobs SET state='running', attempts=attempts+1, updated_at=? WHERE id=? RETURNING attempts",
                (now, it["job_id"]),
            ).fetchone()
            if row is None:
                raise KeyError(f"no job {it['job_id']!r} to start an attempt for")
            cur = self.conn.execute(
                "INSERT INTO attempts(job_id, n, sim_id, msisdn, callee, channel_id, state, started_at)"
                " VALUES (?,?,?,?,?,?,'started',?)",
                (it["job_id"], row[0], it["sim_id"], it["msisdn"], it["callee"], it["channel_id"], now),
            )
            out.append((int(cur.lastrowid or 0), row[0]))
        return out

    def finish_attempt(
        self, attempt_id: int, job_id: str, *, result: dict[str, Any], job_state: str,
        next_attempt_at: float | None, final: bool, now: float, attempt_state: str = "finished",
    ) -> int:
        """Close an attempt, queue its result in the outbox, move the job; one transaction."""
        return self.finish_attempts([{"attempt_id": attempt_id, "job_id": job_id, "result": result, "job_state": job_state,
                                      "next_attempt_at": next_attempt_at, "final": final,
                                      "attempt_state": attempt_state}], now)[0]

    def finish_attempts(self, items: list[dict[str, Any]], now: float) -> list[int]:
        """Close several attempts in one transaction; returns each result's outbox seq."""
        with self._tx():
            return self._finish_rows(items, now)

    def finish_and_start(self, finished: list[dict[str, Any]], started: list[dict[str, Any]],
                         now: float) -> tuple[list[int], list[tuple[int, int]]]:
        """Close attempts and record the next ones in one transaction: a channel that
        comes free is refilled at the cost of one commit, not two."""
        with self._tx():
            return self._finish_rows(finished, now), self._start_rows(started, now)

    def _finish_rows(self, items: list[dict[str, Any]], now: float) -> list[int]:
        seqs = []
        for it in items:
            body = json.dumps(it["result"])
            self.conn.execute(
                "UPDATE attempts SET state=?, ended_at=?, result=? WHERE id=?",
                (it.get("attempt_state", "finished"), now, body, it["attempt_id"]),
            )
            self.conn.execute(
                "UPDATE jobs SET state=?, next_attempt_at=?, updated_at=? WHERE id=?",
                (it["job_state"], it["next_attempt_at"], now, it["job_id"]),
            )
            cur = self.conn.execute(
                "INSERT INTO results(job_id, attempt_id, final, body, created_at) VALUES (?,?,?,?,?)",
                (it["job_id"], it["attempt_id"], 1 if it["final"] else 0, body, now),
            )
            seqs.append(int(cur.lastrowid or 0))
            if it.get("pending") is not None:
                self.conn.execute(
                    "INSERT OR REPLACE INTO pending_reports(job_id, attempt_id, detail, created_at) VALUES (?,?,?,?)",
                    (it["job_id"], it["attempt_id"], json.dumps(it["pending"]), now),
                )
        return seqs

    def pending_reports(self) -> dict[str, dict[str, Any]]:
        """Jobs whose status reports are awaited (stored with the attempt that sent them)."""
        return {r[0]: json.loads(r[1]) for r in self.conn.execute("SELECT job_id, detail FROM pending_reports")}

    def attempts_since(self, since: float) -> list[dict[str, Any]]:
        """Attempts started after ``since`` (the rotation replays them after a restart)."""
        return [{**a, "result": json.loads(a["result"]) if a["result"] else None} for a in self.db.query(
            "SELECT a.sim_id AS sim_id, j.kind AS kind, a.started_at AS started_at, a.ended_at AS ended_at,"
            " a.result AS result FROM attempts a JOIN jobs j ON j.id = a.job_id"
            " WHERE a.started_at > ? ORDER BY a.started_at, a.id", (since,))]

    def attempt_outcomes(self, job_id: str) -> list[str]:
        """Outcomes of the job's closed attempts, oldest first."""
        rows = self.conn.execute(
            "SELECT json_extract(result, '$.outcome') FROM attempts WHERE job_id = ? AND state != 'started' ORDER BY n",
            (job_id,),
        ).fetchall()
        return [r[0] for r in rows]

    def interrupted_attempts(self) -> list[dict[str, Any]]:
        """Attempts left ``started`` by a process that died."""
        return [{**a, "spec": json.loads(a["spec"])} for a in self.db.query(
            "SELECT a.id AS attempt_id, a.job_id AS job_id, a.n AS n, a.sim_id AS sim_id, a.msisdn AS msisdn,"
            " a.channel_id AS channel_id, a.started_at AS started_at, j.spec AS spec"
            # A started attempt's job is 'running' (same transaction), so the search goes
            # through the small jobs_open index: no index on attempts(state) to keep up
            # on every start and finish (one page less per commit).
            " FROM jobs j CROSS JOIN attempts a ON a.job_id = j.id"
            " WHERE j.state IN ('queued', 'running', 'waiting_retry') AND j.state = 'running' AND a.state = 'started'")]

    def shown_numbers(self, callee: str, limit: int = 50) -> tuple[str, ...]:
        rows = self.conn.execute(
            "SELECT msisdn FROM attempts WHERE callee = ? ORDER BY started_at DESC, id DESC LIMIT ?", (callee, limit)
        ).fetchall()
        return tuple(r[0] for r in reversed(rows))

    def counts(self) -> dict[str, int]:
        return {
            state: n for state, n in self.conn.execute("SELECT state, COUNT(*) FROM jobs GROUP BY state")
        }
