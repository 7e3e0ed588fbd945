"""The controller's schema, by table group, and the migrations that bring a database to it.

The base schema (version 1) is idempotent DDL (``CREATE … IF NOT EXISTS``) run at every
open, as it always was, so an index added to it since reaches an older database too; a
change that needs more than that is a numbered entry of ``MIGRATIONS``, run once, in order,
in one transaction under the write lock. A database written by a newer version of the code than this one
(``SCHEMA_VERSION``) is refused before anything touches it.

The DDL is written out, not built with sqlite-utils' ``create()``: that cannot say partial
indexes, ``AUTOINCREMENT`` (result and delivery cursors must never reuse an id) or a
table-level ``UNIQUE``, all of which the store rests on. sqlite-utils runs the script and
reads the version (cold path, once at open). The SQL is the portable subset (``ON CONFLICT``,
partial indexes, times as epoch seconds): on PostgreSQL (``migrate_pg``) the same DDL and
migrations run with their types translated (``Dialect.ddl``: identity columns, double
precision, bytea, text with the bytewise collation "C"), under an advisory lock instead of
SQLite's write lock; a step with no portable spelling is PostgreSQL's own (``PG_MIGRATIONS``).
"""
from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable
from typing import Any, Final

import sqlite_utils

from .backend import POSTGRESQL

#: The schema version this code writes; a database at a later one is refused.
SCHEMA_VERSION: Final = 5

#: API keys, enrollment tokens, appliances and their SIMs (store/fleet.py).
FLEET: Final = """
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
"""

#: Campaigns, contacts and the per-state counts (store/campaigns.py).
CAMPAIGNS: Final = """
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
    promise_date TEXT,               -- the voicebot's promise to pay (ISO date), version 2
    UNIQUE (campaign_id, external_id)
);
CREATE INDEX IF NOT EXISTS contacts_due ON contacts(next_at) WHERE state = 'waiting';
-- GET /v1/contacts?external_id=: the CRM's key across campaigns (one debtor may be in
-- several; within one campaign the UNIQUE above answers)
CREATE INDEX IF NOT EXISTS contacts_external ON contacts(external_id);
-- contacts per campaign and state, kept in the transactions that move contacts, so
-- reading a campaign never counts a million rows
CREATE TABLE IF NOT EXISTS campaign_counts (
    campaign_id TEXT NOT NULL, state TEXT NOT NULL, n INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (campaign_id, state)
);
"""

#: Jobs and their leases (store/jobs.py).
JOBS: Final = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY, campaign_id TEXT NOT NULL, contact_id INTEGER NOT NULL,
    kind TEXT NOT NULL, callee TEXT NOT NULL, spec TEXT NOT NULL,
    state TEXT NOT NULL,             -- leased | accepted | started | done | rejected | cancelled
    appliance_id TEXT, batch_id TEXT, lease_deadline REAL,
    created_at REAL NOT NULL, updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_open ON jobs(appliance_id, state) WHERE state IN ('leased', 'accepted', 'started');
CREATE INDEX IF NOT EXISTS jobs_lease ON jobs(lease_deadline) WHERE state IN ('leased', 'accepted');
CREATE INDEX IF NOT EXISTS jobs_open_callee ON jobs(callee) WHERE state IN ('leased', 'accepted', 'started');
"""

#: Results and inbound events (store/results.py).
RESULTS: Final = """
CREATE TABLE IF NOT EXISTS results (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    dedupe TEXT NOT NULL UNIQUE,
    appliance_id TEXT, app_seq INTEGER,
    job_id TEXT, campaign_id TEXT, contact_id INTEGER,
    kind TEXT, callee TEXT, outcome TEXT NOT NULL, reason TEXT, final INTEGER NOT NULL,
    number_shown TEXT, counts_as_attempt INTEGER NOT NULL DEFAULT 0, at REAL NOT NULL,
    body TEXT NOT NULL,
    external_id TEXT,                -- the contact's CRM key, copied at ingest (it never changes), version 3
    UNIQUE (appliance_id, app_seq)
);
CREATE INDEX IF NOT EXISTS results_contact ON results(contact_id, at);
-- a number's results: its calls today (claims, contact rules: callee and at) and the contact
-- that was shown a number (inbound matching: callee, then the few rows of that number read)
CREATE INDEX IF NOT EXISTS results_callee ON results(callee, at);
-- a campaign's results in order: its report and CSV export (controller/reporting.py)
CREATE INDEX IF NOT EXISTS results_campaign ON results(campaign_id, seq);
CREATE TABLE IF NOT EXISTS inbound (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, appliance_id TEXT,
    kind TEXT NOT NULL, from_number TEXT NOT NULL, to_number TEXT, text TEXT, at REAL NOT NULL,
    contact_id INTEGER, campaign_id TEXT, opted_out INTEGER NOT NULL DEFAULT 0,
    choice TEXT,                     -- an answered callback's menu choice, version 2
    external_id TEXT                 -- the matched contact's CRM key, version 3
);
-- a contact's history (GET /v1/contacts/{id}/history): without it every call reads the whole table
CREATE INDEX IF NOT EXISTS inbound_contact ON inbound(contact_id, seq);
"""

#: The do-not-call list (store/optouts.py).
OPTOUTS: Final = """
CREATE TABLE IF NOT EXISTS optouts (
    number TEXT PRIMARY KEY, source TEXT NOT NULL, reason TEXT, created_at REAL NOT NULL
);
"""

#: Webhook targets and their deliveries (store/webhooks.py).
WEBHOOKS: Final = """
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
"""

#: Call recordings the appliances sent, kept per campaign's retention (store/recordings.py).
#: A new table: made by this DDL at every open, no migration.
RECORDINGS: Final = """
CREATE TABLE IF NOT EXISTS recordings (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, appliance_id TEXT NOT NULL,
    job_id TEXT NOT NULL, attempt INTEGER NOT NULL, campaign_id TEXT NOT NULL, contact_id INTEGER,
    format TEXT NOT NULL, seconds REAL, bytes INTEGER NOT NULL,
    path TEXT NOT NULL,              -- the file's name under the recordings folder
    created_at REAL NOT NULL, deleted_at REAL   -- deleted_at: swept after the campaign's retention
);
CREATE INDEX IF NOT EXISTS recordings_campaign ON recordings(campaign_id, created_at) WHERE deleted_at IS NULL;
"""

#: Idempotency-Key answers, kept 24 h (store/idempotency.py). A new table: made by this
#: DDL at every open, no migration. ``status`` null: the first request is still running.
IDEMPOTENCY: Final = """
CREATE TABLE IF NOT EXISTS idempotency_keys (
    scope TEXT NOT NULL,             -- the API key's id (keys of two clients never meet)
    key TEXT NOT NULL, fingerprint TEXT NOT NULL,   -- SHA-256 of method, path, query, type, body
    status INTEGER, content_type TEXT, body BLOB,
    created_at REAL NOT NULL,
    PRIMARY KEY (scope, key)
);
CREATE INDEX IF NOT EXISTS idempotency_keys_age ON idempotency_keys(created_at);
"""

#: Who may sign in to the overview page (store/accounts.py, common/webauth): an argon2id
#: hash, never the password. Not the CRM's API keys. A new table: made by this DDL at every
#: open, no migration.
OVERVIEW_USERS: Final = """
CREATE TABLE IF NOT EXISTS overview_users (
    name TEXT PRIMARY KEY, password_hash TEXT NOT NULL,
    created_at REAL NOT NULL, changed_at REAL NOT NULL   -- changed_at: the password's last change
);
"""

#: The schema's version.
META: Final = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""

#: Version 1, the base schema, in the order its tables were first created.
BASE: Final = (FLEET, CAMPAIGNS, JOBS, RESULTS, OPTOUTS, WEBHOOKS, RECORDINGS, IDEMPOTENCY, OVERVIEW_USERS, META)
#: Changes after version 1: version -> statements, run in one transaction. A column added
#: here is written into the base DDL above too (a new database gets it there and is stamped
#: with the latest version without running these).
MIGRATIONS: Final[dict[int, tuple[str, ...]]] = {
    # issue 14: the voicebot's promise to pay on the contact; an answered callback's choice
    2: ("ALTER TABLE contacts ADD COLUMN promise_date TEXT",
        "ALTER TABLE inbound ADD COLUMN choice TEXT"),
    # issue 16: the CRM's key beside the contact id on results and inbound events (what
    # the CRM reads and its webhooks carry); rows stored before are filled from their contact
    3: ("ALTER TABLE results ADD COLUMN external_id TEXT",
        "ALTER TABLE inbound ADD COLUMN external_id TEXT",
        ("UPDATE results SET external_id = (SELECT external_id FROM contacts WHERE contacts.id = results.contact_id)"
         " WHERE contact_id IS NOT NULL"),
        ("UPDATE inbound SET external_id = (SELECT external_id FROM contacts WHERE contacts.id = inbound.contact_id)"
         " WHERE contact_id IS NOT NULL")),
    # results_shown (callee, number_shown) led on callee like results_callee (callee, at):
    # every read by callee keeps results_callee's path, and a results batch's insert has
    # one index fewer to write (a batch of 500 on PostgreSQL: 33 -> 29 ms)
    4: ("DROP INDEX IF EXISTS results_shown",),
    # text compares bytewise on PostgreSQL too (Dialect.ddl): nothing portable to run; the
    # existing columns are PG_MIGRATIONS[5]'s, SQLite's BINARY collation is bytewise already
    5: (),
}

#: The store's own tables (a PostgreSQL schema it shares keeps the others as they are).
TABLES: Final = tuple(re.findall(r"CREATE TABLE IF NOT EXISTS (\w+)", "".join(BASE)))


def _text_collate_c(c: Any) -> None:
    """Version 5 on PostgreSQL: the store's text columns made before it, in the database's
    default (locale) collation, become ``COLLATE "C"`` like a new database's (``Dialect.ddl``
    says why). The columns are read from the catalog, not listed here, and each table gets
    one ALTER TABLE, so its indexes are rebuilt once: the type stays text, so the rows are
    not rewritten, but every index on a changed column is rebuilt (4.5 s for a store of
    1,000,000 contacts, under the migration's lock). ``format('%I')`` quotes the names."""
    statements = c.execute(
        "SELECT format('ALTER TABLE %I ', table_name) || string_agg("
        "format('ALTER COLUMN %I TYPE text COLLATE \"C\"', column_name), ', ' ORDER BY ordinal_position)"
        " FROM information_schema.columns WHERE table_schema = current_schema() AND table_name::text = ANY(?)"
        " AND data_type = 'text' AND collation_name IS DISTINCT FROM 'C' GROUP BY table_name ORDER BY table_name",
        (list(TABLES),)).fetchall()
    for (statement,) in statements:
        c.execute(statement)


#: Changes after version 1 that PostgreSQL alone needs, or that are read from its catalog
#: rather than written as one statement: version -> a step given the transaction's
#: connection, run by ``migrate_pg`` after that version's ``MIGRATIONS``. SQLite runs
#: ``MIGRATIONS`` only; a new database has these in its base DDL already.
PG_MIGRATIONS: Final[dict[int, Callable[[Any], None]]] = {
    5: _text_collate_c,
}


def schema_version(db: sqlite_utils.Database) -> int | None:
    row = next(db["meta"].rows_where("key = ?", ["schema"]), None) if "meta" in db.table_names() else None
    return int(row["value"]) if row else None


def migrate(db: sqlite_utils.Database, error: type[Exception]) -> None:
    """Bring the database to ``SCHEMA_VERSION``; ``error`` if it is at a later one.

    The version is read again under the write lock: two processes opening one new file
    at once must not both run a migration (the second would add a column twice)."""
    have = schema_version(db)
    if have is not None and have > SCHEMA_VERSION:
        raise error(f"the store is at schema version {have}, newer than this controller's {SCHEMA_VERSION}; "
                    "run the newer controller, or restore a backup taken before it ran")
    db.executescript("".join(BASE))
    conn = db.conn
    conn.execute("BEGIN IMMEDIATE")
    try:
        row = conn.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
        if row is None:  # a new file: the base DDL above is already the latest schema
            _set_version(conn, SCHEMA_VERSION)
        else:
            for version in range(int(row[0]) + 1, SCHEMA_VERSION + 1):
                for statement in MIGRATIONS[version]:
                    conn.execute(statement)
                _set_version(conn, version)
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


#: The advisory lock two controllers opening one PostgreSQL database take around their
#: migration (any constant of the application's own: "simrotor" in ASCII).
PG_MIGRATION_LOCK: Final = int.from_bytes(b"simrotor", "big") & 0x7FFF_FFFF_FFFF_FFFF


def migrate_pg(conn: Any, error: type[Exception]) -> None:
    """``migrate`` on PostgreSQL (a ``backend.PgConnection``): the version check, the base
    DDL and the numbered migrations in one transaction (DDL is transactional there), under
    an advisory lock so two controllers starting at once do not both run them."""
    with conn.transaction() as c:
        c.execute("SELECT pg_advisory_xact_lock(?)", (PG_MIGRATION_LOCK,))
        have = None
        if c.execute("SELECT to_regclass('meta')").fetchone()[0] is not None:
            row = c.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
            have = int(row[0]) if row else None
        if have is not None and have > SCHEMA_VERSION:
            raise error(f"the store is at schema version {have}, newer than this controller's {SCHEMA_VERSION}; "
                        "run the newer controller, or restore a backup taken before it ran")
        for part in BASE:
            c.execute(POSTGRESQL.ddl(part))
        if have is None:  # a new database: the base DDL above is already the latest schema
            _set_version(c, SCHEMA_VERSION)
        else:
            for version in range(have + 1, SCHEMA_VERSION + 1):
                for statement in MIGRATIONS[version]:
                    c.execute(POSTGRESQL.ddl(statement))
                if (step := PG_MIGRATIONS.get(version)) is not None:
                    step(c)
                _set_version(c, version)


def _set_version(conn: sqlite3.Connection | Any, version: int, *, overwrite: bool = True) -> None:
    conn.execute("INSERT INTO meta(key, value) VALUES ('schema', ?) ON CONFLICT(key) DO "
                 + ("UPDATE SET value = excluded.value" if overwrite else "NOTHING"), (str(version),))
