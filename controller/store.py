"""The controller's store: every SQL statement of the controller lives in this module.

SQLite through sqlite-utils is the embedded default (WAL, ``synchronous=NORMAL``: a
killed process loses nothing committed — SQLite docs, "PRAGMA synchronous"). The rest of
the controller sees only the ``Store`` methods and plain dicts, so a PostgreSQL store is
this module rewritten, nothing else:

* only portable SQL: ``INSERT … ON CONFLICT … DO NOTHING / DO UPDATE``, partial indexes,
  no ``INSERT OR REPLACE``, no ``rowid`` tricks, times as epoch seconds (REAL, UTC);
* correctness never rests on an in-process lock: claims and leases are conditional
  updates (``UPDATE … WHERE state = 'waiting'``) inside ``BEGIN IMMEDIATE`` transactions,
  so two controller processes over one database cannot both take a contact or a job;
* deduplication is a unique key (results by ``(appliance_id, app_seq)`` and by
  ``job_id|attempt|final``; inbound events by id), not a check-then-insert.

Write before acknowledging: ``ingest_results`` and ``add_inbound`` commit the rows, the
contact's next step and the webhook deliveries in one transaction, and the link replies
only after it returns.
"""
from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import msgspec
import sqlite_utils

from common.files import open_sqlite

from .contacts import ContactRow

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS api_keys (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, hash TEXT NOT NULL UNIQUE,
    created_at REAL NOT NULL, revoked_at REAL
);
CREATE TABLE IF NOT EXISTS enroll_tokens (
    hash TEXT PRIMARY KEY, created_at REAL NOT NULL, expires_at REAL NOT NULL,
    used_at REAL, appliance_id TEXT
);
CREATE TABLE IF NOT EXISTS appliances (
    id TEXT PRIMARY KEY, credential_hash TEXT NOT NULL UNIQUE, enrolled_at REAL NOT NULL,
    version TEXT, channels INTEGER, idle INTEGER, capacity INTEGER, queued INTEGER,
    operators TEXT, connected INTEGER NOT NULL DEFAULT 0, last_seen REAL, connected_at REAL
);
CREATE TABLE IF NOT EXISTS sims (
    appliance_id TEXT NOT NULL, sim_id TEXT NOT NULL, msisdn TEXT, operator TEXT,
    channel_id TEXT, state TEXT, PRIMARY KEY (appliance_id, sim_id)
);
CREATE TABLE IF NOT EXISTS campaigns (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, state TEXT NOT NULL, strategy TEXT NOT NULL,
    rules TEXT NOT NULL, created_at REAL NOT NULL, updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS contacts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    campaign_id TEXT NOT NULL, external_id TEXT NOT NULL,
    name TEXT, case_ref TEXT, amount TEXT, currency TEXT, due_date TEXT, time_zone TEXT,
    language TEXT, phones TEXT NOT NULL,
    state TEXT NOT NULL,             -- waiting | in_flight | done
    step INTEGER NOT NULL DEFAULT 0, n INTEGER NOT NULL DEFAULT 0, gen INTEGER NOT NULL DEFAULT 0,
    next_at REAL NOT NULL, outcome TEXT,
    created_at REAL NOT NULL, updated_at REAL NOT NULL,
    UNIQUE (campaign_id, external_id)
);
CREATE INDEX IF NOT EXISTS contacts_due ON contacts(next_at) WHERE state = 'waiting';
-- contacts per campaign and state, kept in the transactions that move contacts, so
-- reading a campaign never counts a million rows
CREATE TABLE IF NOT EXISTS campaign_counts (
    campaign_id TEXT NOT NULL, state TEXT NOT NULL, n INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (campaign_id, state)
);
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY, campaign_id TEXT NOT NULL, contact_id INTEGER NOT NULL,
    kind TEXT NOT NULL, callee TEXT NOT NULL, spec TEXT NOT NULL,
    state TEXT NOT NULL,             -- leased | accepted | started | done | rejected | cancelled
    appliance_id TEXT, batch_id TEXT, lease_deadline REAL,
    created_at REAL NOT NULL, updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_open ON jobs(appliance_id, state) WHERE state IN ('leased', 'accepted', 'started');
CREATE INDEX IF NOT EXISTS jobs_lease ON jobs(lease_deadline) WHERE state IN ('leased', 'accepted');
CREATE TABLE IF NOT EXISTS results (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    dedupe TEXT NOT NULL UNIQUE,
    appliance_id TEXT, app_seq INTEGER,
    job_id TEXT, campaign_id TEXT, contact_id INTEGER,
    kind TEXT, callee TEXT, outcome TEXT NOT NULL, reason TEXT, final INTEGER NOT NULL,
    number_shown TEXT, counts_as_attempt INTEGER NOT NULL DEFAULT 0, at REAL NOT NULL,
    body TEXT NOT NULL,
    UNIQUE (appliance_id, app_seq)
);
CREATE INDEX IF NOT EXISTS results_contact ON results(contact_id, at);
CREATE INDEX IF NOT EXISTS results_callee ON results(callee, at);
CREATE INDEX IF NOT EXISTS results_shown ON results(callee, number_shown);
CREATE TABLE IF NOT EXISTS inbound (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, appliance_id TEXT,
    kind TEXT NOT NULL, from_number TEXT NOT NULL, to_number TEXT, text TEXT, at REAL NOT NULL,
    contact_id INTEGER, campaign_id TEXT, opted_out INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS optouts (
    number TEXT PRIMARY KEY, source TEXT NOT NULL, reason TEXT, created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS webhooks (
    id TEXT PRIMARY KEY, url TEXT NOT NULL, secret TEXT NOT NULL, events TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT, webhook_id TEXT NOT NULL, event TEXT NOT NULL,
    payload TEXT NOT NULL, state TEXT NOT NULL,   -- pending | delivered | dead
    attempts INTEGER NOT NULL DEFAULT 0, next_at REAL NOT NULL, last_error TEXT,
    created_at REAL NOT NULL, updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries(next_at) WHERE state = 'pending';
CREATE INDEX IF NOT EXISTS deliveries_dead ON deliveries(id) WHERE state = 'dead';
CREATE INDEX IF NOT EXISTS deliveries_done ON deliveries(updated_at) WHERE state = 'delivered';
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""

#: Outcomes of a call result that did not reach the callee's network: not an "attempt"
#: in the sense of Reg F 1006.14(b) (no telephone call was placed to him).
NOT_PLACED = frozenset({"channel_error", "network_error", "expired", "refused_by_policy", "cancelled", "no_eligible_sim"})
#: Chunk size of multi-row statements: SQLite's default SQLITE_MAX_VARIABLE_NUMBER is
#: 32,766 since 3.32; 500 rows x 14 columns stays far below it.
CHUNK = 500


class StoreError(RuntimeError):
    pass


class Conflict(StoreError):
    """A unique key or a state precondition refused the write (HTTP 409 upstairs)."""


_encode = msgspec.json.Encoder().encode


def _loads(v: str | None) -> Any:
    return None if v is None else json.loads(v)


class Store:
    """All persistence of the controller. Methods take and return plain values; times are
    epoch seconds (UTC) passed in by the caller (the injected clock)."""

    def __init__(self, path: str | Path, *, durability: str = "normal") -> None:
        conn = open_sqlite(path, durability=durability)
        conn.row_factory = sqlite3.Row
        self.db = sqlite_utils.Database(conn)
        self.conn = conn
        conn.executescript(_SCHEMA)
        with self.tx():
            conn.execute("INSERT INTO meta(key, value) VALUES ('schema', ?) ON CONFLICT(key) DO NOTHING",
                         (str(SCHEMA_VERSION),))

    def close(self) -> None:
        self.conn.close()

    @contextlib.contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, taken at its start (``BEGIN IMMEDIATE``) so two processes
        never deadlock upgrading read locks."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    def _all(self, sql: str, args: Sequence[Any] = ()) -> list[dict[str, Any]]:
        return [dict(r) for r in self.conn.execute(sql, args).fetchall()]

    def _one(self, sql: str, args: Sequence[Any] = ()) -> dict[str, Any] | None:
        row = self.conn.execute(sql, args).fetchone()
        return dict(row) if row is not None else None

    @staticmethod
    def _move(c: sqlite3.Connection, campaign_id: str, from_state: str | None, to_state: str | None, n: int = 1) -> None:
        """Keep ``campaign_counts`` in step with contacts moving between states."""
        if from_state == to_state or n == 0:
            return
        for state, delta in ((from_state, -n), (to_state, n)):
            if state is not None:
                c.execute("INSERT INTO campaign_counts(campaign_id, state, n) VALUES (?, ?, ?)"
                          " ON CONFLICT(campaign_id, state) DO UPDATE SET n = campaign_counts.n + excluded.n",
                          (campaign_id, state, delta))

    def recount(self, campaign_id: str) -> None:
        """Rebuild a campaign's counts from the contacts (after bulk changes, or repair)."""
        with self.tx() as c:
            self._recount(c, campaign_id)

    @staticmethod
    def _recount(c: sqlite3.Connection, campaign_id: str) -> None:
        c.execute("DELETE FROM campaign_counts WHERE campaign_id = ?", (campaign_id,))
        c.execute("INSERT INTO campaign_counts(campaign_id, state, n) SELECT campaign_id, state, COUNT(*) FROM contacts"
                  " WHERE campaign_id = ? GROUP BY campaign_id, state", (campaign_id,))

    # -- API keys ---------------------------------------------------------------------------
    def add_api_key(self, key_id: str, name: str, key_hash: str, now: float) -> None:
        with self.tx() as c:
            c.execute("INSERT INTO api_keys(id, name, hash, created_at) VALUES (?, ?, ?, ?)", (key_id, name, key_hash, now))

    def list_api_keys(self) -> list[dict[str, Any]]:
        return self._all("SELECT id, name, created_at, revoked_at FROM api_keys ORDER BY created_at")

    def revoke_api_key(self, key_id: str, now: float) -> bool:
        with self.tx() as c:
            return c.execute("UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", (now, key_id)).rowcount == 1

    def api_key_for_hash(self, key_hash: str) -> str | None:
        row = self._one("SELECT id FROM api_keys WHERE hash = ? AND revoked_at IS NULL", (key_hash,))
        return row["id"] if row else None

    # -- enrollment and appliances ----------------------------------------------------------
    def add_enroll_token(self, token_hash: str, expires_at: float, now: float) -> None:
        with self.tx() as c:
            c.execute("INSERT INTO enroll_tokens(hash, created_at, expires_at) VALUES (?, ?, ?)", (token_hash, now, expires_at))

    def enroll(self, token_hash: str, appliance_id: str, credential_hash: str, now: float) -> str:
        """Consume the token and register the appliance in one transaction. Returns
        ``"ok"``, ``"bad_token"`` (unknown, used or expired) or ``"exists"``."""
        with self.tx() as c:
            if c.execute("SELECT 1 FROM appliances WHERE id = ?", (appliance_id,)).fetchone():
                return "exists"
            took = c.execute("UPDATE enroll_tokens SET used_at = ?, appliance_id = ? WHERE hash = ? AND used_at IS NULL"
                             " AND expires_at > ?", (now, appliance_id, token_hash, now)).rowcount
            if took != 1:
                return "bad_token"
            c.execute("INSERT INTO appliances(id, credential_hash, enrolled_at) VALUES (?, ?, ?)",
                      (appliance_id, credential_hash, now))
            return "ok"

    def appliance_for_credential(self, credential_hash: str) -> str | None:
        row = self._one("SELECT id FROM appliances WHERE credential_hash = ?", (credential_hash,))
        return row["id"] if row else None

    def appliance_hello(self, appliance_id: str, hello: dict[str, Any], now: float) -> None:
        with self.tx() as c:
            c.execute("UPDATE appliances SET version = ?, channels = ?, idle = ?, capacity = ?, operators = ?,"
                      " connected = 1, last_seen = ?, connected_at = ? WHERE id = ?",
                      (hello.get("version"), hello.get("channels"), hello.get("idle"), hello.get("capacity"),
                       json.dumps(hello.get("operators") or {}), now, now, appliance_id))
            c.execute("DELETE FROM sims WHERE appliance_id = ?", (appliance_id,))
            c.executemany("INSERT INTO sims(appliance_id, sim_id, msisdn, operator, channel_id, state) VALUES (?, ?, ?, ?, ?, ?)"
                          " ON CONFLICT(appliance_id, sim_id) DO NOTHING",
                          [(appliance_id, s.get("sim_id"), s.get("msisdn"), s.get("operator"), s.get("channel_id"), s.get("state"))
                           for s in hello.get("sims") or [] if isinstance(s, dict) and s.get("sim_id")])

    def appliance_heartbeat(self, appliance_id: str, hb: dict[str, Any], now: float) -> None:
        with self.tx() as c:
            c.execute("UPDATE appliances SET idle = COALESCE(?, idle), capacity = COALESCE(?, capacity),"
                      " queued = COALESCE(?, queued), last_seen = ? WHERE id = ?",
                      (hb.get("idle"), hb.get("capacity"), hb.get("queued"), now, appliance_id))

    def appliance_disconnected(self, appliance_id: str, now: float) -> None:
        with self.tx() as c:
            c.execute("UPDATE appliances SET connected = 0, last_seen = ? WHERE id = ?", (now, appliance_id))

    def mark_all_disconnected(self, now: float) -> None:
        """At start: links of a previous run of this process are gone."""
        with self.tx() as c:
            c.execute("UPDATE appliances SET connected = 0 WHERE connected = 1")

    def list_appliances(self) -> list[dict[str, Any]]:
        rows = self._all("SELECT id, version, channels, idle, capacity, queued, operators, connected, last_seen,"
                         " connected_at, enrolled_at FROM appliances ORDER BY id")
        for r in rows:
            r["operators"] = _loads(r["operators"]) or {}
            r["connected"] = bool(r["connected"])
        return rows

    def get_appliance(self, appliance_id: str) -> dict[str, Any] | None:
        rows = [r for r in self.list_appliances() if r["id"] == appliance_id]
        if not rows:
            return None
        app = rows[0]
        app["sims"] = self._all("SELECT sim_id, msisdn, operator, channel_id, state FROM sims WHERE appliance_id = ?"
                                " ORDER BY channel_id, sim_id", (appliance_id,))
        app["open_jobs"] = self.open_jobs(appliance_id)
        return app

    # -- campaigns -------------------------------------------------------------------------
    def create_campaign(self, campaign_id: str, name: str, strategy: list[Any], rules: dict[str, Any], now: float) -> None:
        with self.tx() as c:
            try:
                c.execute("INSERT INTO campaigns(id, name, state, strategy, rules, created_at, updated_at)"
                          " VALUES (?, ?, 'running', ?, ?, ?, ?)",
                          (campaign_id, name, json.dumps(strategy), json.dumps(rules), now, now))
            except sqlite3.IntegrityError:
                raise Conflict(f"campaign {campaign_id!r} exists") from None

    def _campaign(self, row: dict[str, Any] | None) -> dict[str, Any] | None:
        if row is None:
            return None
        row["strategy"], row["rules"] = json.loads(row["strategy"]), json.loads(row["rules"])
        return row

    def get_campaign(self, campaign_id: str) -> dict[str, Any] | None:
        return self._campaign(self._one("SELECT * FROM campaigns WHERE id = ?", (campaign_id,)))

    def list_campaigns(self) -> list[dict[str, Any]]:
        return [c for r in self._all("SELECT * FROM campaigns ORDER BY created_at") if (c := self._campaign(r))]

    def campaign_counts(self, campaign_id: str) -> dict[str, int]:
        rows = self._all("SELECT state, n FROM campaign_counts WHERE campaign_id = ?", (campaign_id,))
        counts = {"waiting": 0, "in_flight": 0, "done": 0}
        counts.update({r["state"]: r["n"] for r in rows})
        counts["total"] = sum(counts.values())
        return counts

    def set_campaign_state(self, campaign_id: str, from_state: str, to_state: str, now: float) -> bool:
        with self.tx() as c:
            return c.execute("UPDATE campaigns SET state = ?, updated_at = ? WHERE id = ? AND state = ?",
                             (to_state, now, campaign_id, from_state)).rowcount == 1

    def running_campaigns(self) -> list[dict[str, Any]]:
        return [c for r in self._all("SELECT * FROM campaigns WHERE state = 'running'") if (c := self._campaign(r))]

    def finish_idle_campaigns(self, now: float) -> list[str]:
        """Running campaigns whose every contact is done become ``done``."""
        with self.tx() as c:
            ids = [r[0] for r in c.execute(
                "SELECT id FROM campaigns WHERE state = 'running'"
                " AND EXISTS (SELECT 1 FROM campaign_counts WHERE campaign_id = campaigns.id AND state = 'done' AND n > 0)"
                " AND NOT EXISTS (SELECT 1 FROM campaign_counts WHERE campaign_id = campaigns.id AND state <> 'done' AND n > 0)"
            ).fetchall()]
            for cid in ids:
                c.execute("UPDATE campaigns SET state = 'done', updated_at = ? WHERE id = ? AND state = 'running'", (now, cid))
            return ids

    # -- contacts --------------------------------------------------------------------------
    def upsert_contacts(self, campaign_id: str, rows: Sequence[ContactRow], now: float, *,
                        closed: Collection[str] = (), reopen: Mapping[str, str] | None = None) -> tuple[int, int]:
        """Insert new contacts (due now) and update known ones by external_id (unique within
        ``rows``), keeping their progress, in one transaction: an import is all or nothing.
        Refuses (``Conflict``) when the campaign is gone or in a ``closed`` state; moves it
        by ``reopen`` (state -> state) when contacts were created. Returns (created, updated)."""
        with self.tx() as c:
            state = c.execute("SELECT state FROM campaigns WHERE id = ?", (campaign_id,)).fetchone()
            if state is None or state[0] in closed:
                raise Conflict(f"campaign {campaign_id!r} is {state[0] if state else 'gone'}")
            known = 0
            ids = [r.external_id for r in rows]
            for i in range(0, len(ids), CHUNK):
                part = ids[i:i + CHUNK]
                known += c.execute(f"SELECT COUNT(*) FROM contacts WHERE campaign_id = ? AND external_id IN ({','.join('?' * len(part))})",
                                   (campaign_id, *part)).fetchone()[0]
            c.executemany(
                "INSERT INTO contacts(campaign_id, external_id, name, case_ref, amount, currency, due_date, time_zone,"
                " language, phones, state, next_at, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'waiting', ?, ?, ?)"
                " ON CONFLICT(campaign_id, external_id) DO UPDATE SET name = excluded.name, case_ref = excluded.case_ref,"
                " amount = excluded.amount, currency = excluded.currency, due_date = excluded.due_date,"
                " time_zone = excluded.time_zone, language = excluded.language, phones = excluded.phones,"
                " updated_at = excluded.updated_at",
                # msgspec encodes a phone list in ~0.3 µs, json.dumps in ~2.3: a fifth of a big import's commit
                [(campaign_id, r.external_id, r.name, r.case_ref, r.amount, r.currency, r.due_date, r.time_zone,
                  r.language, _encode(r.phones).decode(), now, now, now) for r in rows])
            self._move(c, campaign_id, None, "waiting", len(rows) - known)
            to = (reopen or {}).get(state[0])
            if to is not None and len(rows) > known:
                c.execute("UPDATE campaigns SET state = ?, updated_at = ? WHERE id = ? AND state = ?",
                          (to, now, campaign_id, state[0]))
        return len(rows) - known, known

    def _contact(self, row: dict[str, Any] | None) -> dict[str, Any] | None:
        if row is not None:
            row["phones"] = json.loads(row["phones"])
        return row

    def get_contact(self, contact_id: int) -> dict[str, Any] | None:
        return self._contact(self._one("SELECT * FROM contacts WHERE id = ?", (contact_id,)))

    def list_contacts(self, campaign_id: str, after: int, limit: int) -> list[dict[str, Any]]:
        return [c for r in self._all("SELECT * FROM contacts WHERE campaign_id = ? AND id > ? ORDER BY id LIMIT ?",
                                     (campaign_id, after, limit)) if (c := self._contact(r))]

    def due_contacts(self, now: float, limit: int) -> list[dict[str, Any]]:
        rows = self._all("SELECT ct.* FROM contacts ct JOIN campaigns cp ON cp.id = ct.campaign_id"
                         " WHERE ct.state = 'waiting' AND ct.next_at <= ? AND cp.state = 'running'"
                         " ORDER BY ct.next_at LIMIT ?", (now, limit))
        return [c for r in rows if (c := self._contact(r))]

    def contact_history_counts(self, contact_id: int, number: str, window_start: float, day_start: float) -> dict[str, Any]:
        """What the contact rules need: attempt times in the window, last conversation,
        today's attempts to this number, opt-out."""
        attempts = [r[0] for r in self.conn.execute(
            "SELECT at FROM results WHERE contact_id = ? AND kind = 'call' AND counts_as_attempt = 1 AND at > ? ORDER BY at",
            (contact_id, window_start)).fetchall()]
        talk = self.conn.execute("SELECT MAX(at) FROM results WHERE contact_id = ? AND outcome = 'answered_human'",
                                 (contact_id,)).fetchone()[0]
        today = self.conn.execute("SELECT COUNT(*) FROM results WHERE callee = ? AND kind = 'call' AND counts_as_attempt = 1"
                                  " AND at >= ?", (number, day_start)).fetchone()[0]
        opted = self.conn.execute("SELECT 1 FROM optouts WHERE number = ?", (number,)).fetchone() is not None
        return {"attempts": attempts, "last_conversation": talk, "attempts_today": today, "opted_out": opted}

    def contact_history(self, contact_id: int) -> dict[str, Any]:
        results = [self._result(r) for r in self._all("SELECT * FROM results WHERE contact_id = ? ORDER BY seq", (contact_id,))]
        inbound = self._all("SELECT * FROM inbound WHERE contact_id = ? ORDER BY seq", (contact_id,))
        return {"results": results, "inbound": [self._inbound(r) for r in inbound]}

    # -- dispatch: claims, jobs, leases ------------------------------------------------------
    def claim_and_lease(self, contact_id: int, job: dict[str, Any], appliance_id: str, batch_id: str,
                        deadline: float, now: float) -> bool:
        """Take a waiting contact and lease its job to an appliance, atomically; False if
        another dispatcher took the contact first."""
        with self.tx() as c:
            if c.execute("UPDATE contacts SET state = 'in_flight', updated_at = ? WHERE id = ? AND state = 'waiting'",
                         (now, contact_id)).rowcount != 1:
                return False
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

    def ack_batch(self, appliance_id: str, accepted: Iterable[str], rejected: Iterable[tuple[str, str]], now: float,
                  on_rejected: Callable[[sqlite3.Connection, dict[str, Any], str], None]) -> None:
        with self.tx() as c:
            c.executemany("UPDATE jobs SET state = 'accepted', updated_at = ? WHERE id = ? AND appliance_id = ? AND state = 'leased'",
                          [(now, j, appliance_id) for j in accepted])
            for job_id, reason in rejected:
                row = c.execute("SELECT * FROM jobs WHERE id = ? AND appliance_id = ? AND state IN ('leased', 'accepted')",
                                (job_id, appliance_id)).fetchone()
                if row is None:
                    continue
                c.execute("UPDATE jobs SET state = 'rejected', updated_at = ? WHERE id = ?", (now, job_id))
                on_rejected(c, dict(row), reason)

    def open_jobs(self, appliance_id: str) -> int:
        return self.conn.execute("SELECT COUNT(*) FROM jobs WHERE appliance_id = ? AND state IN ('leased', 'accepted', 'started')",
                                 (appliance_id,)).fetchone()[0]

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

    # -- results ---------------------------------------------------------------------------
    def _result(self, r: dict[str, Any]) -> dict[str, Any]:
        body = json.loads(r.pop("body"))
        r["final"] = bool(r["final"])
        r.pop("dedupe", None)
        r.pop("counts_as_attempt", None)
        r["detail"] = body
        return r

    def ingest_results(self, appliance_id: str, items: Sequence[dict[str, Any]], now: float,
                       advance: Callable[[sqlite3.Connection, dict[str, Any], dict[str, Any]], None],
                       webhook_event: Callable[[dict[str, Any]], dict[str, Any]]) -> list[dict[str, Any]]:
        """Persist a batch of the appliance's results, deduplicated; for each new final
        result call ``advance(conn, job, result)`` inside the same transaction (the next
        step of the contact). Returns the new rows."""
        new: list[dict[str, Any]] = []
        hooks = self._webhooks_for("result")
        with self.tx() as c:
            for body in items:
                job_id = str(body.get("job_id") or "")
                job = c.execute("SELECT id, campaign_id, contact_id, kind, spec, state FROM jobs WHERE id = ?", (job_id,)).fetchone()
                final = bool(body.get("final"))
                outcome = str(body.get("outcome") or "unknown")
                dedupe = f"{job_id}|{body.get('attempt')}|{int(final)}"
                at = body.pop("_at", now)
                kind = body.get("kind") or (job["kind"] if job else None)
                row = {"dedupe": dedupe, "appliance_id": appliance_id, "app_seq": body.get("seq"), "job_id": job_id or None,
                       "campaign_id": job["campaign_id"] if job else None, "contact_id": job["contact_id"] if job else None,
                       "kind": kind, "callee": body.get("callee"), "outcome": outcome, "reason": body.get("reason"),
                       "final": int(final), "number_shown": body.get("number_shown"),
                       "counts_as_attempt": int(kind == "call" and outcome not in NOT_PLACED), "at": at,
                       "body": json.dumps(body)}
                cur = c.execute("INSERT INTO results(dedupe, appliance_id, app_seq, job_id, campaign_id, contact_id, kind, callee,"
                                " outcome, reason, final, number_shown, counts_as_attempt, at, body)"
                                " VALUES (:dedupe, :appliance_id, :app_seq, :job_id, :campaign_id, :contact_id, :kind, :callee,"
                                " :outcome, :reason, :final, :number_shown, :counts_as_attempt, :at, :body)"
                                " ON CONFLICT DO NOTHING", row)
                if cur.rowcount != 1:
                    continue
                row["seq"] = cur.lastrowid
                new.append(row)
                if job is not None:
                    c.execute("UPDATE jobs SET state = ?, updated_at = ? WHERE id = ? AND state IN ('leased', 'accepted', 'started')",
                              ("done" if final else "started", now, job_id))
                    if final:
                        advance(c, {**dict(job), "spec": json.loads(job["spec"])}, row)
                self._enqueue(c, hooks, "result", webhook_event(row), now)
        return new

    def record_refusal(self, contact: dict[str, Any], job: dict[str, Any], reason: str, detail: str,
                       next_at: float | None, now: float, webhook_event: Callable[[dict[str, Any]], dict[str, Any]]) -> dict[str, Any]:
        """A refused_by_policy result, and the contact re-planned (or finished when no
        retry is possible), in one transaction."""
        body = {"job_id": job["id"], "kind": job["kind"], "callee": job["callee"], "outcome": "refused_by_policy",
                "reason": reason, "detail": detail, "retry_at": next_at, "final": True}
        row = {"dedupe": f"refused|{job['id']}|{now:.6f}", "appliance_id": None, "app_seq": None, "job_id": job["id"],
               "campaign_id": contact["campaign_id"], "contact_id": contact["id"], "kind": job["kind"],
               "callee": job["callee"], "outcome": "refused_by_policy", "reason": reason, "final": 1, "number_shown": None,
               "counts_as_attempt": 0, "at": now, "body": json.dumps(body)}
        hooks = self._webhooks_for("result")
        with self.tx() as c:
            cur = c.execute("INSERT INTO results(dedupe, appliance_id, app_seq, job_id, campaign_id, contact_id, kind, callee,"
                            " outcome, reason, final, number_shown, counts_as_attempt, at, body)"
                            " VALUES (:dedupe, :appliance_id, :app_seq, :job_id, :campaign_id, :contact_id, :kind, :callee,"
                            " :outcome, :reason, :final, :number_shown, :counts_as_attempt, :at, :body)"
                            " ON CONFLICT DO NOTHING", row)
            row["seq"] = cur.lastrowid
            if next_at is None:
                if c.execute("UPDATE contacts SET state = 'done', outcome = ?, updated_at = ? WHERE id = ? AND state = 'waiting'",
                             (f"refused_by_policy:{reason}", now, contact["id"])).rowcount == 1:
                    self._move(c, contact["campaign_id"], "waiting", "done")
            else:
                c.execute("UPDATE contacts SET next_at = ?, updated_at = ? WHERE id = ? AND state = 'waiting'",
                          (next_at, now, contact["id"]))
            self._enqueue(c, hooks, "result", webhook_event(row), now)
        return row

    @classmethod
    def advance_contact(cls, c: sqlite3.Connection, contact_id: int, campaign_id: str, *, state: str, step: int, n: int,
                        gen: int, next_at: float, outcome: str | None, now: float) -> None:
        """Move an in-flight contact's cursor (inside ``ingest_results``' or ``ack_batch``'s transaction)."""
        if c.execute("UPDATE contacts SET state = ?, step = ?, n = ?, gen = ?, next_at = ?, outcome = COALESCE(?, outcome),"
                     " updated_at = ? WHERE id = ? AND state = 'in_flight'",
                     (state, step, n, gen, next_at, outcome, now, contact_id)).rowcount == 1:
            cls._move(c, campaign_id, "in_flight", state)

    @staticmethod
    def contact_in_tx(c: sqlite3.Connection, contact_id: int) -> dict[str, Any] | None:
        row = c.execute("SELECT * FROM contacts WHERE id = ?", (contact_id,)).fetchone()
        if row is None:
            return None
        d = dict(row)
        d["phones"] = json.loads(d["phones"])
        return d

    @staticmethod
    def campaign_in_tx(c: sqlite3.Connection, campaign_id: str) -> dict[str, Any] | None:
        row = c.execute("SELECT * FROM campaigns WHERE id = ?", (campaign_id,)).fetchone()
        if row is None:
            return None
        d = dict(row)
        d["strategy"], d["rules"] = json.loads(d["strategy"]), json.loads(d["rules"])
        return d

    def results_after(self, after: int, limit: int, campaign_id: str | None = None) -> list[dict[str, Any]]:
        if campaign_id is None:
            rows = self._all("SELECT * FROM results WHERE seq > ? ORDER BY seq LIMIT ?", (after, limit))
        else:
            rows = self._all("SELECT * FROM results WHERE seq > ? AND campaign_id = ? ORDER BY seq LIMIT ?",
                             (after, campaign_id, limit))
        return [self._result(r) for r in rows]

    # -- inbound and opt-outs ----------------------------------------------------------------
    def _inbound(self, r: dict[str, Any]) -> dict[str, Any]:
        r["opted_out"] = bool(r["opted_out"])
        r["from"], r["to"] = r.pop("from_number"), r.pop("to_number")
        return r

    def match_shown(self, c: sqlite3.Connection, from_number: str, to_number: str | None) -> tuple[int | None, str | None]:
        """The contact (and campaign) that was last shown ``to_number`` when we called or
        texted ``from_number``; failing that, the last contact we reached at ``from_number``."""
        row = None
        if to_number:
            row = c.execute("SELECT contact_id, campaign_id FROM results WHERE callee = ? AND number_shown = ?"
                            " AND contact_id IS NOT NULL ORDER BY seq DESC LIMIT 1", (from_number, to_number)).fetchone()
        if row is None:
            row = c.execute("SELECT contact_id, campaign_id FROM results WHERE callee = ? AND contact_id IS NOT NULL"
                            " AND number_shown IS NOT NULL ORDER BY seq DESC LIMIT 1", (from_number,)).fetchone()
        return (row[0], row[1]) if row else (None, None)

    def add_inbound(self, appliance_id: str, events: Sequence[dict[str, Any]], now: float,
                    is_stop: Callable[[str | None], bool], webhook_event: Callable[[dict[str, Any]], dict[str, Any]]) -> list[dict[str, Any]]:
        hooks = self._webhooks_for("inbound")
        new = []
        with self.tx() as c:
            for e in events:
                contact_id, campaign_id = self.match_shown(c, e["from"], e.get("to"))
                stop = e["kind"] == "sms" and is_stop(e.get("text"))
                row = {"id": e["id"], "appliance_id": appliance_id, "kind": e["kind"], "from_number": e["from"],
                       "to_number": e.get("to"), "text": e.get("text"), "at": e.get("_at", now), "contact_id": contact_id,
                       "campaign_id": campaign_id, "opted_out": int(stop)}
                cur = c.execute("INSERT INTO inbound(id, appliance_id, kind, from_number, to_number, text, at, contact_id,"
                                " campaign_id, opted_out) VALUES (:id, :appliance_id, :kind, :from_number, :to_number, :text,"
                                " :at, :contact_id, :campaign_id, :opted_out) ON CONFLICT DO NOTHING", row)
                if cur.rowcount != 1:
                    continue
                row["seq"] = cur.lastrowid
                if stop:
                    c.execute("INSERT INTO optouts(number, source, reason, created_at) VALUES (?, 'sms', ?, ?)"
                              " ON CONFLICT(number) DO NOTHING", (e["from"], (e.get("text") or "")[:100], now))
                out = self._inbound(dict(row))
                new.append(out)
                self._enqueue(c, hooks, "inbound", webhook_event(out), now)
        return new

    def inbound_after(self, after: int, limit: int) -> list[dict[str, Any]]:
        return [self._inbound(r) for r in self._all("SELECT * FROM inbound WHERE seq > ? ORDER BY seq LIMIT ?", (after, limit))]

    def add_optout(self, number: str, source: str, reason: str | None, now: float) -> bool:
        with self.tx() as c:
            return c.execute("INSERT INTO optouts(number, source, reason, created_at) VALUES (?, ?, ?, ?)"
                             " ON CONFLICT(number) DO NOTHING", (number, source, reason, now)).rowcount == 1

    def remove_optout(self, number: str) -> bool:
        with self.tx() as c:
            return c.execute("DELETE FROM optouts WHERE number = ?", (number,)).rowcount == 1

    def list_optouts(self, after: str, limit: int) -> list[dict[str, Any]]:
        return self._all("SELECT number, source, reason, created_at FROM optouts WHERE number > ? ORDER BY number LIMIT ?",
                         (after, limit))

    def is_opted_out(self, number: str) -> bool:
        return self.conn.execute("SELECT 1 FROM optouts WHERE number = ?", (number,)).fetchone() is not None

    # -- webhooks --------------------------------------------------------------------------
    def add_webhook(self, webhook_id: str, url: str, secret: str, events: list[str], now: float) -> None:
        with self.tx() as c:
            c.execute("INSERT INTO webhooks(id, url, secret, events, created_at) VALUES (?, ?, ?, ?, ?)",
                      (webhook_id, url, secret, json.dumps(events), now))

    def list_webhooks(self) -> list[dict[str, Any]]:
        rows = self._all("SELECT id, url, events, created_at FROM webhooks ORDER BY created_at")
        for r in rows:
            r["events"] = json.loads(r["events"])
        return rows

    def delete_webhook(self, webhook_id: str) -> bool:
        with self.tx() as c:
            c.execute("DELETE FROM deliveries WHERE webhook_id = ? AND state = 'pending'", (webhook_id,))
            return c.execute("DELETE FROM webhooks WHERE id = ?", (webhook_id,)).rowcount == 1

    def webhook_secret(self, webhook_id: str) -> tuple[str, str] | None:
        row = self.conn.execute("SELECT url, secret FROM webhooks WHERE id = ?", (webhook_id,)).fetchone()
        return (row[0], row[1]) if row else None

    def _webhooks_for(self, event: str) -> list[str]:
        return [r["id"] for r in self.list_webhooks() if event in r["events"]]

    @staticmethod
    def _enqueue(c: sqlite3.Connection, hooks: list[str], event: str, payload: dict[str, Any], now: float) -> None:
        if hooks:
            data = json.dumps(payload, ensure_ascii=False)
            c.executemany("INSERT INTO deliveries(webhook_id, event, payload, state, next_at, created_at, updated_at)"
                          " VALUES (?, ?, ?, 'pending', ?, ?, ?)", [(h, event, data, now, now, now) for h in hooks])

    def due_deliveries(self, now: float, limit: int) -> list[dict[str, Any]]:
        return self._all("SELECT d.*, w.url, w.secret FROM deliveries d JOIN webhooks w ON w.id = d.webhook_id"
                         " WHERE d.state = 'pending' AND d.next_at <= ? ORDER BY d.next_at LIMIT ?", (now, limit))

    def next_delivery_at(self) -> float | None:
        return self.conn.execute("SELECT MIN(next_at) FROM deliveries WHERE state = 'pending'").fetchone()[0]

    def delivery_done(self, delivery_id: int, now: float) -> None:
        with self.tx() as c:
            c.execute("UPDATE deliveries SET state = 'delivered', attempts = attempts + 1, updated_at = ? WHERE id = ?",
                      (now, delivery_id))

    def delivery_failed(self, delivery_id: int, error: str, next_at: float | None, now: float) -> None:
        """Schedule the next try at ``next_at``, or move to the dead-letter list (None)."""
        with self.tx() as c:
            c.execute("UPDATE deliveries SET state = ?, attempts = attempts + 1, next_at = COALESCE(?, next_at),"
                      " last_error = ?, updated_at = ? WHERE id = ?",
                      ("pending" if next_at is not None else "dead", next_at, error[:500], now, delivery_id))

    def prune_deliveries(self, before: float, limit: int) -> int:
        """Forget up to ``limit`` deliveries that reached the CRM before ``before`` (the
        result itself stays in ``results``; a delivered payload is only a copy of it).
        Dead letters stay until replayed: a person has to see them."""
        with self.tx() as c:
            return c.execute("DELETE FROM deliveries WHERE id IN (SELECT id FROM deliveries WHERE state = 'delivered'"
                             " AND updated_at < ? ORDER BY updated_at LIMIT ?)", (before, limit)).rowcount

    def dead_letters(self, after: int, limit: int) -> list[dict[str, Any]]:
        rows = self._all("SELECT id, webhook_id, event, payload, attempts, last_error, created_at, updated_at FROM deliveries"
                         " WHERE state = 'dead' AND id > ? ORDER BY id LIMIT ?", (after, limit))
        for r in rows:
            r["payload"] = json.loads(r["payload"])
        return rows

    def replay_dead(self, ids: Sequence[int] | None, now: float) -> int:
        with self.tx() as c:
            if ids is None:
                return c.execute("UPDATE deliveries SET state = 'pending', attempts = 0, next_at = ?, updated_at = ?"
                                 " WHERE state = 'dead'", (now, now)).rowcount
            return sum(c.execute("UPDATE deliveries SET state = 'pending', attempts = 0, next_at = ?, updated_at = ?"
                                 " WHERE state = 'dead' AND id = ?", (now, now, i)).rowcount for i in ids)

    def delivery(self, delivery_id: int) -> dict[str, Any] | None:
        return self._one("SELECT * FROM deliveries WHERE id = ?", (delivery_id,))
