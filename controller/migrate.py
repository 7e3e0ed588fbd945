"""Copy a SQLite controller store into PostgreSQL (``simrotor controller migrate``, issue 18).

``migrate_store(source, target)`` does it, in this order:

1. checks: ``target`` is a ``postgresql://`` URL that answers and lets us in; ``source`` is
   a controller store (a SQLite file with the schema version in ``meta``) at this code's
   schema version, and no other process has it open (a running controller: the copy would
   miss what it writes after);
2. the target gets the current schema through the store's own migrations (``Store(url)``);
   it must be empty — no row in any of the store's tables — unless it holds the progress
   of an earlier run from the same source, which is then continued;
3. every table of the schema (the tables ``schema.BASE`` creates: a table added there is
   copied without a change here) is copied in primary-key order, in chunks of
   ``chunk_rows``, each with PostgreSQL's ``COPY … FROM STDIN`` (psycopg's ``cursor.copy()``)
   and the chunk's last key written to the progress table ``simrotor_migration`` in the same
   transaction: a run killed at any point continues after the last committed chunk and
   copies nothing twice. A table in the source that the schema does not name stops the copy
   before anything is written, naming it;
   The secondary indexes of the tables to copy are dropped first and made again at the
   end by the schema's DDL (which also runs at every open of a store);
4. identity columns (contact ids, result and delivery cursors …) are set past both the
   largest id copied and SQLite's ``sqlite_sequence`` (AUTOINCREMENT never reuses an id, even
   of a deleted row; the CRM's cursors rely on it), so new rows get fresh ids;
5. rows are counted per table in the source and in the target: ``MigrationReport.ok`` is
   False on any difference. On success the progress table is dropped; the target is then
   an ordinary store, and a second run refuses it as not empty.

The source is opened read-only (``mode=ro``), read in one snapshot per run, never written.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import sqlite3
import struct
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import psycopg
from psycopg import sql

from .store import Store, StoreError
from .store.backend import is_postgresql, masked, sqlite_path
from .store.schema import BASE, SCHEMA_VERSION

#: Rows per chunk: one COPY and one progress update per transaction. 10,000 contacts are
#: ~3 MB of COPY text; a killed run loses at most one chunk's work.
DEFAULT_CHUNK_ROWS: Final = 10_000
#: The progress table in the target, dropped when a run ends with equal counts.
PROGRESS_TABLE: Final = "simrotor_migration"
#: Tables the target's own migrations fill (the schema version): their rows are inserted
#: with ON CONFLICT DO NOTHING, not copied, and do not make the target "not empty".
PRESEEDED: Final = frozenset({"meta"})
#: Seconds to wait for the server to answer a connection (libpq's connect_timeout).
CONNECT_TIMEOUT: Final = 10
#: The advisory lock of a migration into a database's schema (its key: this text and the
#: schema's name, hashed): a second run at once is refused.
MIGRATION_LOCK: Final = "simrotor migrate into "
#: SQLite's WAL index: every connection holds a read lock on the "DMS" byte of the -shm file
#: while the database is open (sqlite os_unix.c, UNIX_SHM_DMS = (22 + 8) * 4 + 8).
_SHM_DMS_BYTE: Final = 128

_CREATE_TABLE: Final = re.compile(r"CREATE TABLE IF NOT EXISTS (\w+)")
_CREATE_INDEX: Final = re.compile(r"CREATE INDEX IF NOT EXISTS (\w+) ON (\w+)")


class MigrateError(RuntimeError):
    """The migration cannot start or continue; the message says why and what to do."""


def schema_tables() -> tuple[str, ...]:
    """The store's tables, in the order the schema creates them."""
    return tuple(name for part in BASE for name in _CREATE_TABLE.findall(part))


def schema_indexes() -> tuple[tuple[str, str], ...]:
    """(index, table) of the schema's secondary indexes (its unique keys are constraints)."""
    return tuple((m[0], m[1]) for part in BASE for m in _CREATE_INDEX.findall(part))


@dataclass(slots=True)
class TableReport:
    table: str
    source_rows: int
    target_rows: int = 0
    copied: int = 0              # rows copied by this run
    before: int = 0              # rows an earlier run had copied
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.source_rows == self.target_rows

    @property
    def rows_per_second(self) -> float:
        return round(self.copied / self.seconds, 1) if self.seconds > 0 else 0.0


@dataclass(slots=True)
class MigrationReport:
    source: str
    target: str                  # without its password
    schema_version: int
    resumed: bool
    tables: list[TableReport] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return all(t.ok for t in self.tables)

    @property
    def copied(self) -> int:
        return sum(t.copied for t in self.tables)

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "source": self.source, "target": self.target, "schema_version": self.schema_version,
                "resumed": self.resumed, "rows_copied": self.copied, "seconds": round(self.seconds, 3),
                "rows_per_second": round(self.copied / self.seconds, 1) if self.seconds > 0 else 0.0,
                "tables": [{"table": t.table, "source_rows": t.source_rows, "target_rows": t.target_rows,
                            "ok": t.ok, "copied": t.copied, "copied_before": t.before,
                            "seconds": round(t.seconds, 3), "rows_per_second": t.rows_per_second}
                           for t in self.tables],
                "mismatches": [t.table for t in self.tables if not t.ok]}


#: ``progress(table, rows_done, rows_total, seconds)``: at a table's start and after each
#: committed chunk (an exception raised here stops the run after that chunk).
Progress = Callable[[str, int, int, float], None]


# -- the source ---------------------------------------------------------------------------

def holder_pid(path: Path) -> int | None:
    """The id of another process that has the SQLite database ``path`` open (WAL mode: it
    holds a read lock on the -shm file), or None. Asks with F_GETLK: takes no lock."""
    try:
        fd = os.open(f"{path}-shm", os.O_RDONLY)
    except OSError:
        return None  # no -shm: no connection has the database open in WAL mode
    try:
        ask = struct.pack("@hhqqi", fcntl.F_WRLCK, os.SEEK_SET, _SHM_DMS_BYTE, 1, 0)
        got = fcntl.fcntl(fd, fcntl.F_GETLK, ask + bytes(32))  # room for any struct flock padding
        l_type, _, _, _, pid = struct.unpack("@hhqqi", got[:len(ask)])
    except OSError:
        return None  # a file system without POSIX locks: nothing to learn
    finally:
        os.close(fd)
    return None if l_type == fcntl.F_UNLCK else pid


def open_source(source: str | Path) -> tuple[sqlite3.Connection, Path, int]:
    """The source store read-only, its absolute path and schema version; MigrateError when
    it is not a controller store, is at another schema version, or is open elsewhere."""
    path = Path(sqlite_path(source)).resolve()
    if is_postgresql(str(source)):
        raise MigrateError(f"the source {masked(str(source))} is a PostgreSQL URL; migrate copies a SQLite store")
    if not path.is_file():
        raise MigrateError(f"the source {path} does not exist (give the controller's SQLite file, or --config)")
    if (pid := holder_pid(path)) is not None:
        raise MigrateError(f"the source {path} is open in process {pid} (a running controller?); stop the "
                           "controller first: rows it wrote during the copy would be missing from the target")
    conn = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True, isolation_level=None)
    try:
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        row = conn.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone() if "meta" in names else None
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise MigrateError(f"the source {path} is not a SQLite database ({exc})") from None
    if row is None:
        conn.close()
        raise MigrateError(f"the source {path} is not a controller store (no schema version in a meta table)")
    version = int(row[0])
    if version != SCHEMA_VERSION:
        conn.close()
        if version > SCHEMA_VERSION:
            raise MigrateError(f"the source {path} is at schema version {version}, newer than this controller's "
                               f"{SCHEMA_VERSION}; migrate with the controller that wrote it")
        raise MigrateError(f"the source {path} is at schema version {version}, older than this controller's "
                           f"{SCHEMA_VERSION}; open it once with this controller (e.g. `simrotor controller keys "
                           "list --config …`, which migrates it), then migrate")
    return conn, path, version


def _source_columns(src: sqlite3.Connection, table: str) -> tuple[list[str], list[str]]:
    """The table's columns and its primary key's columns (in key order)."""
    info = src.execute(f'PRAGMA table_info("{table}")').fetchall()
    columns = [r[1] for r in info]
    key = [r[1] for r in sorted((r for r in info if r[5]), key=lambda r: r[5])]
    if not key:
        raise MigrateError(f"the source's table {table} has no primary key: the copier cannot copy it in chunks")
    return columns, key


def _source_sequences(src: sqlite3.Connection) -> dict[str, int]:
    """SQLite's AUTOINCREMENT high-water marks, by table."""
    try:
        return {r[0]: int(r[1]) for r in src.execute("SELECT name, seq FROM sqlite_sequence")}
    except sqlite3.OperationalError:  # no AUTOINCREMENT table has had a row
        return {}


# -- the target ---------------------------------------------------------------------------

def connect_target(url: str) -> psycopg.Connection[Any]:
    """A connection to ``url``; MigrateError naming what went wrong (URL, server, login)."""
    if not is_postgresql(url):
        raise MigrateError(f"--to must be a postgresql:// URL (postgresql://user[:password]@host[:port]/database), "
                           f"not {masked(url)!r}")
    try:
        params = psycopg.conninfo.conninfo_to_dict(url)
    except psycopg.ProgrammingError as exc:
        raise MigrateError(f"the target URL {masked(url)!r} cannot be read: {exc}") from None
    if not params.get("dbname"):
        raise MigrateError(f"the target URL {masked(url)!r} names no database (postgresql://user@host/DATABASE)")
    try:
        return psycopg.connect(url, autocommit=True, connect_timeout=CONNECT_TIMEOUT)
    except psycopg.OperationalError as exc:
        raise MigrateError(_connect_problem(url, str(exc))) from None


#: What libpq says, in words: (pattern in its message, what it means and what to do).
_CONNECT_PROBLEMS: Final = (
    (r"password authentication failed|no password supplied|role .* does not exist|pg_hba\.conf",
     "PostgreSQL refused the login; check the user and password in the URL (and pg_hba.conf)"),
    (r"database .* does not exist", "the database does not exist; create it first (createdb -O USER NAME)"),
    (r"Connection refused|No such file or directory|could not translate host name|timeout expired|Network is unreachable",
     "the server cannot be reached; check host and port, and that PostgreSQL is running"),
)


def _connect_problem(url: str, message: str) -> str:
    reason = " ".join(message.split())
    for pattern, words in _CONNECT_PROBLEMS:
        if re.search(pattern, message):
            return f"cannot connect to {masked(url)}: {words} ({reason})"
    return f"cannot connect to {masked(url)}: {reason}"


def _target_columns(dst: psycopg.Connection[Any], table: str) -> list[str]:
    return [r[0] for r in dst.execute("SELECT column_name FROM information_schema.columns WHERE table_schema ="
                                      " current_schema() AND table_name = %s", (table,))]


def _count(dst: psycopg.Connection[Any], table: str) -> int:
    return int(dst.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))).fetchone()[0])


def _progress_rows(dst: psycopg.Connection[Any]) -> dict[str, tuple[str, Any, int, bool]]:
    """Table -> (source, last key, rows copied, done) of an earlier run; {} when none."""
    if dst.execute("SELECT to_regclass(%s)", (PROGRESS_TABLE,)).fetchone()[0] is None:
        return {}
    return {r[0]: (r[1], None if r[2] is None else json.loads(r[2]), int(r[3]), bool(r[4]))
            for r in dst.execute(f"SELECT table_name, source, last_key, copied, done FROM {PROGRESS_TABLE}")}


def _begin(dst: psycopg.Connection[Any], tables: Sequence[str], source: Path) -> tuple[dict[str, Any], bool]:
    """The progress of an earlier run from ``source`` (and True), or a new progress table
    in an empty target (and False); MigrateError for any other target."""
    earlier = _progress_rows(dst)
    if earlier:
        others = {row[0] for row in earlier.values()} - {str(source)}
        if others:
            raise MigrateError(f"the target holds an unfinished migration from another source ({', '.join(sorted(others))}); "
                               "finish that one, or migrate into an empty database")
        with dst.transaction():  # a table the schema gained since that run
            for t in tables:
                dst.execute(f"INSERT INTO {PROGRESS_TABLE}(table_name, source) VALUES (%s, %s) ON CONFLICT DO NOTHING",
                            (t, str(source)))
        return _progress_rows(dst), True
    filled = [t for t in tables if t not in PRESEEDED and dst.execute(
        sql.SQL("SELECT EXISTS (SELECT 1 FROM {})").format(sql.Identifier(t))).fetchone()[0]]
    if filled:
        raise MigrateError(f"the target is not empty ({', '.join(filled)} {'has' if len(filled) == 1 else 'have'} rows); "
                           "migrate into an empty database (createdb), never over a store in use")
    with dst.transaction():
        dst.execute(f"CREATE TABLE IF NOT EXISTS {PROGRESS_TABLE} (table_name TEXT PRIMARY KEY, source TEXT NOT NULL,"
                    " last_key TEXT, copied BIGINT NOT NULL DEFAULT 0, done BOOLEAN NOT NULL DEFAULT false)")
        for t in tables:
            dst.execute(f"INSERT INTO {PROGRESS_TABLE}(table_name, source) VALUES (%s, %s)", (t, str(source)))
    return {t: (str(source), None, 0, False) for t in tables}, False


@contextlib.contextmanager
def _migration_lock(dst: psycopg.Connection[Any], target: str) -> Iterator[None]:
    key = "hashtext(%s || coalesce(current_schema(), ''))"
    if not dst.execute(f"SELECT pg_try_advisory_lock({key})", (MIGRATION_LOCK,)).fetchone()[0]:
        raise MigrateError(f"another migration into {masked(target)} is running; wait for it to end")
    try:
        yield
    finally:
        dst.execute(f"SELECT pg_advisory_unlock({key})", (MIGRATION_LOCK,))


# -- the copy -----------------------------------------------------------------------------

def _copy_table(src: sqlite3.Connection, dst: psycopg.Connection[Any], rep: TableReport, last: Any,
                chunk_rows: int, progress: Progress) -> None:
    columns, key = _source_columns(src, rep.table)
    missing = set(columns) - set(_target_columns(dst, rep.table))
    if missing:
        raise MigrateError(f"the target's table {rep.table} lacks column(s) {', '.join(sorted(missing))} of the source")
    cols = ", ".join(f'"{c}"' for c in columns)
    order = ", ".join(f'"{k}"' for k in key)
    at = [columns.index(k) for k in key]
    after = f"WHERE ({order}) > ({', '.join('?' * len(key))}) " if len(key) > 1 else f'WHERE "{key[0]}" > ? '
    ident = sql.Identifier(rep.table)
    copy = sql.SQL("COPY {} ({}) FROM STDIN").format(ident, sql.SQL(", ").join(map(sql.Identifier, columns)))
    insert = sql.SQL("INSERT INTO {} ({}) VALUES ({}) ON CONFLICT DO NOTHING").format(
        ident, sql.SQL(", ").join(map(sql.Identifier, columns)), sql.SQL(", ").join(sql.Placeholder() * len(columns)))
    started = time.monotonic()
    progress(rep.table, rep.before, rep.source_rows, 0.0)
    while True:
        rows = src.execute(f'SELECT {cols} FROM "{rep.table}" {after if last is not None else ""}ORDER BY {order} LIMIT ?',
                           (*(last or ()), chunk_rows)).fetchall()
        if rows:
            last = [rows[-1][i] for i in at]
        done = len(rows) < chunk_rows
        with dst.transaction(), dst.cursor() as cur:
            if rep.table in PRESEEDED:
                cur.executemany(insert, rows)
            elif rows:
                with cur.copy(copy) as cp:
                    for row in rows:
                        cp.write_row(row)
            cur.execute(f"UPDATE {PROGRESS_TABLE} SET last_key = %s, copied = copied + %s, done = %s"
                        " WHERE table_name = %s", (json.dumps(last), len(rows), done, rep.table))
        rep.copied += len(rows)
        rep.seconds = time.monotonic() - started
        progress(rep.table, rep.before + rep.copied, rep.source_rows, rep.seconds)
        if done:
            return


def _set_identities(dst: psycopg.Connection[Any], tables: Sequence[str], high: dict[str, int]) -> None:
    """Every identity column's next value past the largest id in the table and past
    SQLite's high-water mark for it."""
    for table, column in dst.execute("SELECT table_name, column_name FROM information_schema.columns WHERE"
                                     " table_schema = current_schema() AND is_identity = 'YES'").fetchall():
        if table not in tables:
            continue
        top = dst.execute(sql.SQL("SELECT max({}) FROM {}").format(sql.Identifier(column), sql.Identifier(table))).fetchone()[0]
        top = max(int(top or 0), high.get(table, 0))
        if top > 0:
            dst.execute("SELECT setval(pg_get_serial_sequence(%s, %s), %s)", (table, column, top))


def migrate_store(source: str | Path, target: str, *, chunk_rows: int = DEFAULT_CHUNK_ROWS,
                  progress: Progress | None = None) -> MigrationReport:
    """Copy the SQLite store ``source`` into the PostgreSQL database ``target`` (module
    docstring); the report holds both counts per table (``ok`` False on a difference).
    Raises MigrateError when the copy cannot start or a chunk fails (a run again continues)."""
    if chunk_rows < 1:
        raise MigrateError(f"chunk rows must be at least 1, not {chunk_rows}")
    say = progress or (lambda *_: None)
    started = time.monotonic()
    dst = connect_target(target)
    try:
        src, path, version = open_source(source)
    except BaseException:
        dst.close()
        raise
    try:
        report = _run(src, path, version, dst, target, chunk_rows, say)
    except psycopg.Error as exc:
        raise MigrateError(f"the target {masked(target)}: {' '.join(str(exc).split())}") from None
    except sqlite3.Error as exc:
        raise MigrateError(f"the source {path}: {exc}") from None
    finally:
        src.close()
        dst.close()
    report.seconds = time.monotonic() - started
    return report


def _run(src: sqlite3.Connection, path: Path, version: int, dst: psycopg.Connection[Any], target: str,
         chunk_rows: int, say: Progress) -> MigrationReport:
    tables = schema_tables()
    present = {r[0] for r in src.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    unknown = sorted(t for t in present - set(tables) if not t.startswith("sqlite_"))
    if unknown:
        raise MigrateError(f"the source {path} has table(s) the copier does not know: {', '.join(unknown)} "
                           "(not in this controller's schema); nothing was copied")
    absent = [t for t in tables if t not in present]
    if absent:
        raise MigrateError(f"the source {path} lacks table(s) of schema version {version}: {', '.join(absent)}")
    with _migration_lock(dst, target):
        try:
            Store(target, pool_size=1).close()  # the current schema, by the store's own migrations
        except StoreError as exc:
            raise MigrateError(f"the target {masked(target)}: {exc}") from None
        state, resumed = _begin(dst, tables, path)
        report = MigrationReport(str(path), masked(target), version, resumed)
        # Secondary indexes of the tables still to copy are built once at the end, not row
        # by row (1,000,000 contacts and 500,000 results: 46 s instead of 64 s). The schema's
        # DDL makes them, as at every open of a store: a run killed meanwhile leaves none
        # missing for a controller started on the database.
        for index, table in schema_indexes():
            if not state[table][3]:
                dst.execute(sql.SQL("DROP INDEX IF EXISTS {}").format(sql.Identifier(index)))
        src.execute("BEGIN")  # one snapshot of the source for the whole run
        try:
            for t in tables:
                _, last, before, done = state[t]
                rep = TableReport(t, int(src.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0]), before=before)
                report.tables.append(rep)
                if not done:
                    try:
                        _copy_table(src, dst, rep, last, chunk_rows, say)
                    except psycopg.Error as exc:
                        raise MigrateError(f"copying {t} failed after {rep.before + rep.copied} rows: "
                                           f"{' '.join(str(exc).split())}; run the migration again to continue "
                                           "after the last chunk copied") from None
            _set_identities(dst, tables, _source_sequences(src))
            Store(target, pool_size=1).close()  # the indexes, by the schema's DDL
        finally:
            if src.in_transaction:
                src.execute("COMMIT")
        for rep in report.tables:
            rep.target_rows = _count(dst, rep.table)
        if report.ok:
            dst.execute(f"DROP TABLE {PROGRESS_TABLE}")
    return report
