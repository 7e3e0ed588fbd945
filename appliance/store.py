"""The appliance's crash-safe store (SQLite in WAL mode through sqlite-utils).

The rule: write before acting. A job is stored before it is acknowledged; an attempt is
stored (state ``started``, with the SIM and number it will show) before ``ATD`` is
written; its result goes to the outbox in the same transaction that closes the attempt.
After ``kill -9``, ``recover()`` finds attempts still ``started``: they are closed as
``interrupted`` with what was known, and their jobs are not redialed unless the retry
policy says so — so no job is lost and none is dialed twice.

Durability: ``synchronous=NORMAL`` in WAL mode survives a killed process (the case the
tests torture); ``full`` (the ``durability`` argument) also survives power loss at the
cost of an fsync per transaction (SQLite docs, "PRAGMA synchronous").
"""
from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import sqlite_utils

from common.files import open_sqlite
from common.logs import Throttle
from common.clock import iso

#: 2: status-report waits in their own table (were one JSON value in kv); the numbers
#: shown to a callee are read from his attempts (was a ``shown`` table written beside them).
SCHEMA_VERSION = 2

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    callee TEXT NOT NULL,
    spec TEXT NOT NULL,              -- the job as submitted (JSON)
    priority INTEGER NOT NULL DEFAULT 0,
    not_before REAL,
    deadline REAL,
    state TEXT NOT NULL,             -- queued | running | waiting_retry | done | cancelled | expired
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_open ON jobs(state) WHERE state IN ('queued', 'running', 'waiting_retry');
CREATE TABLE IF NOT EXISTS attempts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id TEXT NOT NULL REFERENCES jobs(id),
    n INTEGER NOT NULL,
    sim_id TEXT,
    msisdn TEXT,                      -- the number shown to the callee
    callee TEXT,                      -- the job's callee: the per-callee number memory
    channel_id TEXT,
    state TEXT NOT NULL,             -- started | finished | interrupted
    started_at REAL NOT NULL,
    ended_at REAL,
    result TEXT
);
DROP INDEX IF EXISTS attempts_open;  -- schema 1; open attempts are found through jobs_open
CREATE INDEX IF NOT EXISTS attempts_job ON attempts(job_id);
CREATE TABLE IF NOT EXISTS results (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id TEXT NOT NULL,
    attempt_id INTEGER,
    final INTEGER NOT NULL,
    body TEXT NOT NULL,
    created_at REAL NOT NULL,
    acked INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS inbound (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,               -- sms | call
    from_number TEXT,
    to_number TEXT,
    text TEXT,
    channel_id TEXT,
    sim_id TEXT,
    at REAL NOT NULL,
    acked INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS pending_reports (
    job_id TEXT PRIMARY KEY,          -- an SMS or HLR ping whose status report(s) are awaited
    attempt_id INTEGER NOT NULL,
    detail TEXT NOT NULL,             -- refs, deadline, placement, spec (JSON)
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS kv (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    at REAL NOT NULL,
    kind TEXT NOT NULL,
    subject TEXT NOT NULL,
    detail TEXT NOT NULL
);
"""

OPEN_STATES = ("queued", "running", "waiting_retry")
#: kv key prefix of a rejected PIN's mark (modem_drivers.pin): one row per SIM key.
PIN_MARK_PREFIX = "pin_mark:"

#: How often the appliance copies the WAL back into the database. SQLite's default
#: (automatically, inside whichever commit crosses 1,000 pages) put a checkpoint and
#: its fsyncs in the path of one dispatch in ~115: at 256 modems in fast timing the
#: dispatch p99 was 3.9-4.2 ms with it and 0.6 ms without (bench multiplex, two runs
#: each). Once a second, the pause hits one refill a second instead.
CHECKPOINT_SECONDS = 1.0
#: SQLite's own checkpoint only if ours stopped running (80 MB of WAL at 4 KiB pages).
WAL_SAFETY_NET_PAGES = 20_000
#: After a checkpoint the WAL file is cut back to this size (it is reused, not grown).
WAL_SIZE_LIMIT_BYTES = 64 * 1024 * 1024
#: The events table (channel moves, SIM locks, quarantines, balances: what the technician
#: page lists) keeps a week, the span between a fault and a technician's look at it
#: (logrotate's weekly default is the same judgement for log files) …
EVENTS_KEEP_SECONDS = 7 * 86400.0
#: … and at most this many rows, whatever the rate: ~11 MB (a channel move takes 108
#: bytes a row: 100,000 of them made a 10.8 MB database file).
EVENTS_MAX_ROWS = 100_000
#: Rows deleted per prune (once a second): a short transaction in the event loop, and
#: 1,000 rows a second is well above what the event rate bound lets in (below).
EVENTS_PRUNE_BATCH = 1_000
#: Rows per (kind, subject) per window, as log lines (common/logs.py: the kernel's
#: printk_ratelimit, 10 per 5 s); the rest of a window becomes one row carrying the
#: last detail and ``suppressed``/``seconds``. With S subjects (channels, SIMs) the table
#: grows by at most S x 11 rows per 5 s: 256 flapping channels add ~560 rows a second,
#: not the 10,000 a hot loop wrote (issue 12 item 2), and the prune keeps up.
EVENTS_PER_SUBJECT = 10
EVENTS_WINDOW_SECONDS = 5.0


class Store:
    def __init__(self, path: str | Path, *, durability: str = "normal") -> None:
        self.path = str(path)
        conn = open_sqlite(self.path, durability=durability)
        self.db = sqlite_utils.Database(conn)
        self.conn = conn
        conn.executescript(_SCHEMA)
        self._lock = threading.Lock()
        self._migrate()
        self.set_kv("schema_version", SCHEMA_VERSION)
        # Checkpoints are run by the appliance at its own pace (``checkpoint``); SQLite's
        # automatic one stays as a safety net far above what that pace lets accumulate.
        conn.execute(f"PRAGMA wal_autocheckpoint={WAL_SAFETY_NET_PAGES}")
        conn.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT_BYTES}")
        self._event_rate = Throttle(burst=EVENTS_PER_SUBJECT, interval=EVENTS_WINDOW_SECONDS, total_burst=None)

    def _migrate(self) -> None:
        """Bring a schema-1 store up to date, in one transaction:

        * every awaited status report was one JSON value (``kv.sms_pending``) rewritten
          whole on each SMS, O(pending) per SMS: its entries move to ``pending_reports``;
        * the numbers shown to each callee were a table of their own, one more row and
          index entry per attempt: attempts now carry the callee, and the table goes."""
        cols = {r[1] for r in self.conn.execute("PRAGMA table_info(attempts)")}
        old_pending = self.get_kv("sms_pending")
        with self._tx():
            if "callee" not in cols:
                self.conn.execute("ALTER TABLE attempts ADD COLUMN callee TEXT")
                self.conn.execute("UPDATE attempts SET callee = (SELECT callee FROM jobs WHERE jobs.id = attempts.job_id)")
            self.conn.execute("DROP TABLE IF EXISTS shown")
            self.conn.execute("CREATE INDEX IF NOT EXISTS attempts_callee ON attempts(callee, started_at)")
            for job_id, item in (old_pending or {}).items():
                self.conn.execute(
                    "INSERT OR IGNORE INTO pending_reports(job_id, attempt_id, detail, created_at) VALUES (?,?,?,?)",
                    (job_id, item["attempt_id"], json.dumps(item), time.time()),
                )
            self.conn.execute("DELETE FROM kv WHERE key = 'sms_pending'")

    def close(self) -> None:
        self._write_suppressed(self._event_rate.sweep(everything=True))
        self.conn.close()

    def checkpoint(self) -> tuple[int, int]:
        """Copy committed WAL frames into the database without waiting for readers
        (PASSIVE); returns (frames in the WAL, frames copied)."""
        _, log, done = self.conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        return int(log), int(done)

    # -- transactions ---------------------------------------------------------------
    def _tx(self):  # type: ignore[no-untyped-def]
        return _Tx(self.conn)

    # -- key/value (rotation snapshot, cursors) ------------------------------------------
    def set_kv(self, key: str, value: Any) -> None:
        self.conn.execute("INSERT OR REPLACE INTO kv(key, value) VALUES (?, ?)", (key, json.dumps(value)))

    def get_kv(self, key: str, default: Any = None) -> Any:
        row = self.conn.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else default

    # -- rejected PINs (modem_drivers.pin.PinMarks): kv rows "pin_mark:<sim key>" ---------
    def pin_mark(self, sim_key: str) -> dict[str, Any] | None:
        """The salted hash of the PIN this SIM rejected, with its tries left then."""
        return self.get_kv(PIN_MARK_PREFIX + sim_key)

    def set_pin_mark(self, sim_key: str, mark: dict[str, Any]) -> None:
        self.set_kv(PIN_MARK_PREFIX + sim_key, mark)

    def clear_pin_mark(self, sim_key: str) -> bool:
        cur = self.conn.execute("DELETE FROM kv WHERE key = ?", (PIN_MARK_PREFIX + sim_key,))
        return cur.rowcount > 0

    def has_pin_marks(self) -> bool:
        # A range on the primary key (an index seek), not LIKE: "pin_mark;" is the next prefix.
        return self.conn.execute("SELECT 1 FROM kv WHERE key >= ? AND key < ? LIMIT 1",
                                 (PIN_MARK_PREFIX, PIN_MARK_PREFIX[:-1] + ";")).fetchone() is not None

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
        row = self.conn.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None:
            return None
        cols = [d[0] for d in self.conn.execute("SELECT * FROM jobs LIMIT 0").description]
        job = dict(zip(cols, row))
        job["spec"] = json.loads(job["spec"])
        job["attempt_list"] = [
            {**dict(zip(("id", "n", "sim_id", "msisdn", "channel_id", "state", "started_at", "ended_at"), a)),
             "result": json.loads(a[8]) if a[8] else None}
            for a in self.conn.execute(
                "SELECT id, n, sim_id, msisdn, channel_id, state, started_at, ended_at, result FROM attempts"
                " WHERE job_id = ? ORDER BY n", (job_id,)
            )
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
        rows = self.conn.execute(
            "SELECT a.sim_id, j.kind, a.started_at, a.ended_at, a.result FROM attempts a JOIN jobs j ON j.id = a.job_id"
            " WHERE a.started_at > ? ORDER BY a.started_at, a.id",
            (since,),
        ).fetchall()
        return [{"sim_id": r[0], "kind": r[1], "started_at": r[2], "ended_at": r[3],
                 "result": json.loads(r[4]) if r[4] else None} for r in rows]

    def attempt_outcomes(self, job_id: str) -> list[str]:
        """Outcomes of the job's closed attempts, oldest first."""
        rows = self.conn.execute(
            "SELECT json_extract(result, '$.outcome') FROM attempts WHERE job_id = ? AND state != 'started' ORDER BY n",
            (job_id,),
        ).fetchall()
        return [r[0] for r in rows]

    def interrupted_attempts(self) -> list[dict[str, Any]]:
        """Attempts left ``started`` by a process that died."""
        rows = self.conn.execute(
            "SELECT a.id, a.job_id, a.n, a.sim_id, a.msisdn, a.channel_id, a.started_at, j.spec"
            # A started attempt's job is 'running' (same transaction), so the search goes
            # through the small jobs_open index: no index on attempts(state) to keep up
            # on every start and finish (one page less per commit).
            " FROM jobs j CROSS JOIN attempts a ON a.job_id = j.id"
            " WHERE j.state IN ('queued', 'running', 'waiting_retry') AND j.state = 'running' AND a.state = 'started'"
        ).fetchall()
        return [
            {"attempt_id": r[0], "job_id": r[1], "n": r[2], "sim_id": r[3], "msisdn": r[4],
             "channel_id": r[5], "started_at": r[6], "spec": json.loads(r[7])}
            for r in rows
        ]

    def shown_numbers(self, callee: str, limit: int = 50) -> tuple[str, ...]:
        rows = self.conn.execute(
            "SELECT msisdn FROM attempts WHERE callee = ? ORDER BY started_at DESC, id DESC LIMIT ?", (callee, limit)
        ).fetchall()
        return tuple(r[0] for r in reversed(rows))

    # -- results outbox ----------------------------------------------------------------
    def results_after(self, cursor: int, limit: int = 100) -> tuple[list[dict[str, Any]], int]:
        rows = self.conn.execute(
            "SELECT seq, body FROM results WHERE seq > ? ORDER BY seq LIMIT ?", (cursor, limit)
        ).fetchall()
        items = [{"seq": r[0], **json.loads(r[1])} for r in rows]
        return items, (rows[-1][0] if rows else cursor)

    def ack_results(self, upto: int) -> None:
        self.conn.execute("UPDATE results SET acked = 1 WHERE seq <= ? AND acked = 0", (upto,))

    # -- inbound (callbacks) ---------------------------------------------------------------
    def add_inbound(self, event: dict[str, Any]) -> None:
        self.conn.execute(
            "INSERT OR IGNORE INTO inbound(id, kind, from_number, to_number, text, channel_id, sim_id, at)"
            " VALUES (?,?,?,?,?,?,?,?)",
            (event["id"], event["kind"], event.get("from"), event.get("to"), event.get("text"),
             event.get("channel_id"), event.get("sim_id"), event["at"]),
        )

    def unacked_inbound(self, limit: int = 100) -> list[dict[str, Any]]:
        rows = self.conn.execute(
            "SELECT id, kind, from_number, to_number, text, channel_id, sim_id, at FROM inbound WHERE acked = 0"
            " ORDER BY at LIMIT ?", (limit,)
        ).fetchall()
        return [{"id": r[0], "kind": r[1], "from": r[2], "to": r[3], "text": r[4], "channel_id": r[5],
                 "sim_id": r[6], "at": r[7]} for r in rows]

    def ack_inbound(self, ids: Iterable[str]) -> None:
        self.conn.executemany("UPDATE inbound SET acked = 1 WHERE id = ?", [(i,) for i in ids])

    def inbound_after(self, after: float, limit: int = 100) -> list[dict[str, Any]]:
        rows = self.conn.execute(
            "SELECT id, kind, from_number, to_number, text, channel_id, sim_id, at FROM inbound WHERE at > ?"
            " ORDER BY at LIMIT ?", (after, limit)
        ).fetchall()
        return [{"id": r[0], "kind": r[1], "from": r[2], "to": r[3], "text": r[4], "channel_id": r[5],
                 "sim_id": r[6], "at": r[7]} for r in rows]

    # -- events ---------------------------------------------------------------------------
    def log_event(self, kind: str, subject: str, detail: dict[str, Any], now: float | None = None) -> None:
        """One row of the events table, within the rate bound of (kind, subject): past
        ``EVENTS_PER_SUBJECT`` per window, events are counted and the window's last one
        is written when it closes, with ``suppressed`` and ``seconds`` in its detail."""
        now = time.time() if now is None else now
        ok, closed = self._event_rate.admit((kind, subject), (detail, now))
        self._write_suppressed(closed)
        if ok:
            self.conn.execute("INSERT INTO events(at, kind, subject, detail) VALUES (?,?,?,?)",
                              (now, kind, subject, json.dumps(detail)))

    def _write_suppressed(self, closed: list[Any]) -> None:
        for s in closed:
            kind, subject = s.key
            detail, at = s.last
            self.conn.execute("INSERT INTO events(at, kind, subject, detail) VALUES (?,?,?,?)",
                              (at, kind, subject, json.dumps({**detail, "suppressed": s.count, "seconds": s.seconds})))

    def prune_events(self, now: float | None = None, *, keep_seconds: float = EVENTS_KEEP_SECONDS,
                     max_rows: int = EVENTS_MAX_ROWS, batch: int = EVENTS_PRUNE_BATCH) -> int:
        """Delete up to ``batch`` of the oldest events that are older than
        ``keep_seconds`` or beyond the newest ``max_rows``; returns how many. Only the
        oldest ``batch`` rows are looked at (by rowid), so a prune costs O(batch) however
        big the table is. Windows of the rate bound that closed are written first."""
        now = time.time() if now is None else now
        self._write_suppressed(self._event_rate.sweep())
        newest = self.conn.execute("SELECT MAX(seq) FROM events").fetchone()[0]
        if newest is None:
            return 0
        return self.conn.execute(
            "DELETE FROM events WHERE seq IN (SELECT seq FROM (SELECT seq, at FROM events ORDER BY seq LIMIT ?)"
            " WHERE seq <= ? OR at < ?)",
            (batch, newest - max_rows, now - keep_seconds),
        ).rowcount

    def recent_events(self, limit: int) -> list[dict[str, Any]]:
        """The newest events first (the technician page's "recent trouble")."""
        return [{**e, "detail": json.loads(e["detail"])} for e in self.db.query(
            "SELECT at, kind, subject, detail FROM events ORDER BY seq DESC LIMIT ?", (limit,))]

    def final_outcomes(self) -> list[dict[str, Any]]:
        """Final results by kind and outcome, the most frequent first."""
        return list(self.db.query(
            "SELECT json_extract(body, '$.kind') AS kind, json_extract(body, '$.outcome') AS outcome,"
            " COUNT(*) AS count FROM results WHERE final = 1 GROUP BY 1, 2 ORDER BY 3 DESC"))

    def counts(self) -> dict[str, int]:
        return {
            state: n for state, n in self.conn.execute("SELECT state, COUNT(*) FROM jobs GROUP BY state")
        }


class _Tx:
    """BEGIN IMMEDIATE … COMMIT, rolled back on error (autocommit connection)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> sqlite3.Connection:
        self.conn.execute("BEGIN IMMEDIATE")
        return self.conn

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self.conn.execute("COMMIT")
        else:
            self.conn.execute("ROLLBACK")
