"""The appliance's crash-safe store: SQLite in WAL mode, one connection, one class
(``Store``) made of one part per table group:

* ``jobs.py``    jobs, attempts and the results they write (the scheduler's hot path);
* ``outbox.py``  the results outbox as read and acknowledged (the link, the API, the page);
* ``inbound.py`` SMS and calls received (callbacks) until acknowledged;
* ``events.py``  channel and SIM events for the technician page, rate-bound and pruned;
* ``kv.py``      key/value rows (rotation snapshot, cursors, rejected PINs);
* ``schema.py``  the tables and the migration of older stores.

Raw SQL or sqlite-utils: every write the appliance acts on — the scheduler's start and
finish commits, the outbox, inbound rows, events, kv — is raw SQL on the connection, in
``BEGIN IMMEDIATE`` transactions (``base.Tx``), because that path runs per AT command and
per job. sqlite-utils (``Store.db``) does the rest: the migrations (schema introspection,
``add_column``, ``create_index``, ``insert_all``) and the look-ups made at start, by the
API and by the page, which return rows as dicts (``query``, ``rows_where``); tests may
read any table through ``store.db[...]``.

After ``kill -9``, the scheduler's recovery finds attempts still ``started``
(``interrupted_attempts``): they are closed as ``interrupted`` with what was known, and
their jobs are not redialed unless the retry policy says so — so no job is lost and none
is dialed twice.

Durability: ``synchronous=NORMAL`` in WAL mode survives a killed process (the case the
tests torture); ``full`` (the ``durability`` argument) also survives power loss at the
cost of an fsync per transaction (SQLite docs, "PRAGMA synchronous").
"""
from __future__ import annotations

from pathlib import Path

import sqlite_utils

from common.files import open_sqlite

from . import schema
from .events import (
    EVENTS_KEEP_SECONDS,
    EVENTS_MAX_ROWS,
    EVENTS_PER_SUBJECT,
    EVENTS_PRUNE_BATCH,
    EVENTS_WINDOW_SECONDS,
    EventRows,
    event_rate,
)
from .inbound import InboundRows
from .jobs import OPEN_STATES, JobRows
from .kv import PIN_MARK_PREFIX, KvRows
from .outbox import OutboxRows
from .schema import SCHEMA_VERSION

__all__ = [
    "CHECKPOINT_SECONDS", "EVENTS_KEEP_SECONDS", "EVENTS_MAX_ROWS", "EVENTS_PER_SUBJECT", "EVENTS_PRUNE_BATCH",
    "EVENTS_WINDOW_SECONDS", "OPEN_STATES", "PIN_MARK_PREFIX", "SCHEMA_VERSION", "Store",
]

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


class Store(JobRows, OutboxRows, InboundRows, EventRows, KvRows):
    def __init__(self, path: str | Path, *, durability: str = "normal") -> None:
        self.path = str(path)
        self.conn = open_sqlite(self.path, durability=durability)
        self.db = sqlite_utils.Database(self.conn)
        schema.create(self.db)
        # Checkpoints are run by the appliance at its own pace (``checkpoint``); SQLite's
        # automatic one stays as a safety net far above what that pace lets accumulate.
        self.conn.execute(f"PRAGMA wal_autocheckpoint={WAL_SAFETY_NET_PAGES}")
        self.conn.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT_BYTES}")
        self._event_rate = event_rate()

    def close(self) -> None:
        self._write_suppressed(self._event_rate.sweep(everything=True))
        self.conn.close()

    def checkpoint(self) -> tuple[int, int]:
        """Copy committed WAL frames into the database without waiting for readers
        (PASSIVE); returns (frames in the WAL, frames copied)."""
        _, log, done = self.conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        return int(log), int(done)
