"""The appliance store's tables, and the migration of older stores.

The tables are written out as SQL: sqlite-utils' ``create()`` cannot say AUTOINCREMENT
(result cursors must never be reused after the outbox is trimmed) nor a partial index
(``jobs_open``). Migrations are sqlite-utils calls: they read the schema as it is
(``columns_dict``) and change it (``add_column``, ``drop``, ``create_index``,
``insert_all``), inside the store's write transaction (sqlite-utils nests its own as
savepoints)."""
from __future__ import annotations

import json
import time
from typing import Any

import sqlite_utils

from .base import Tx

#: 2: status-report waits in their own table (were one JSON value in kv); the numbers
#: shown to a callee are read from his attempts (was a ``shown`` table written beside them).
#: 3: an answered callback's menu choice on its inbound row (``inbound.choice``).
SCHEMA_VERSION = 3

SCHEMA = """
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
    acked INTEGER NOT NULL DEFAULT 0,
    choice TEXT                       -- an answered callback: callback | opt_out | none (3)
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
-- recorded calls' files not yet stored by the controller (appliance/recordings/store.py);
-- a new table needs no version: this DDL runs at every open
CREATE TABLE IF NOT EXISTS recordings (
    id TEXT PRIMARY KEY,              -- the file <store>.recordings/<id>.opus, until the controller has it
    job_id TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    format TEXT NOT NULL,
    seconds REAL NOT NULL,
    bytes INTEGER NOT NULL,
    created_at REAL NOT NULL,
    tries INTEGER NOT NULL DEFAULT 0,
    next_try_at REAL NOT NULL,
    last_error TEXT
);
-- technicians who may sign in to the page (common/webauth/accounts.py): argon2id hashes
CREATE TABLE IF NOT EXISTS technicians (
    name TEXT PRIMARY KEY,
    password_hash TEXT NOT NULL,      -- argon2-cffi's encoded hash (parameters and salt inside)
    created_at REAL NOT NULL,
    changed_at REAL NOT NULL          -- password set: sessions signed in before it end
);
"""


def create(db: sqlite_utils.Database) -> None:
    """The tables and indexes, where missing, then the migrations; records the version."""
    db.conn.executescript(SCHEMA)
    migrate(db)
    db.conn.execute("INSERT OR REPLACE INTO kv(key, value) VALUES ('schema_version', ?)", (json.dumps(SCHEMA_VERSION),))


def migrate(db: sqlite_utils.Database) -> None:
    """Bring a schema-1 or -2 store up to date, in one transaction:

    * every awaited status report was one JSON value (``kv.sms_pending``) rewritten
      whole on each SMS, O(pending) per SMS: its entries move to ``pending_reports``;
    * the numbers shown to each callee were a table of their own, one more row and
      index entry per attempt: attempts now carry the callee, and the table goes;
    * (3) inbound rows gain ``choice``: what an answered caller keyed at the callback menu."""
    attempts = db.table("attempts")
    inbound = db.table("inbound")
    row = db.conn.execute("SELECT value FROM kv WHERE key = 'sms_pending'").fetchone()
    old_pending: dict[str, Any] = (json.loads(row[0]) if row else None) or {}
    with Tx(db.conn):
        if "callee" not in attempts.columns_dict:
            attempts.add_column("callee", str)
            db.execute("UPDATE attempts SET callee = (SELECT callee FROM jobs WHERE jobs.id = attempts.job_id)")
        if "choice" not in inbound.columns_dict:
            inbound.add_column("choice", str)
        db.table("shown").drop(ignore=True)
        attempts.create_index(["callee", "started_at"], index_name="attempts_callee", if_not_exists=True)
        if old_pending:
            now = time.time()
            db.table("pending_reports").insert_all(
                ({"job_id": job_id, "attempt_id": item["attempt_id"], "detail": json.dumps(item), "created_at": now}
                 for job_id, item in old_pending.items()), ignore=True)
        db.table("kv").delete_where("key = ?", ["sms_pending"])
