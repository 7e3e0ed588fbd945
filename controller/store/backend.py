"""The two databases the store runs on, behind one connection shape: SQLite (a file, the
embedded default for one box) and PostgreSQL (a server, for several controllers; issue 18).

The table groups write one set of SQL, in SQLite's spelling (``?`` and ``:name``
placeholders), and call ``execute`` / ``executemany`` on what ``StoreBase.conn`` and
``tx()`` hand them; on SQLite that is the ``sqlite3`` connection itself, on PostgreSQL a
``PgConnection`` that turns the placeholders into psycopg's (``%s``, ``%(name)s``), runs the
statement on a pooled connection (psycopg-pool) and hands back the rows read at once, as
``sqlite3.Row``-like tuples that also answer by column name. Where the SQL itself differs
(a JSON field, the strategy step in a job id, an hour bucket, the DDL's types), the store
asks its ``Dialect``.

Transactions: ``PgConnection.transaction()`` holds one pooled connection for the
transaction and makes it this thread's: reads through ``store.conn`` inside a ``tx()`` see
its writes, as they do on SQLite's single connection.

Wake-ups across controllers: a write that gives a dispatcher work (an import, an opt-out, a
campaign started) calls ``notify`` in its transaction; on PostgreSQL that is ``pg_notify``,
delivered to every controller's ``listen`` when the transaction commits (never when it
rolls back; repeats within one transaction are folded: PostgreSQL docs, NOTIFY). On SQLite
one process owns the file and wakes its own dispatcher: nothing to send.
"""
from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import re
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Self

import psycopg
import psycopg_pool

#: URL schemes of a PostgreSQL store (libpq's two spellings).
PG_SCHEMES: Final = ("postgresql://", "postgres://")
#: Errors of either database: a unique key refused a row / the database cannot be used.
INTEGRITY_ERRORS: Final = (sqlite3.IntegrityError, psycopg.IntegrityError)
DATABASE_ERRORS: Final = (sqlite3.Error, psycopg.Error, psycopg_pool.PoolTimeout)
#: The LISTEN/NOTIFY channel of the controllers' wake-ups.
WAKE_CHANNEL: Final = "simrotor_wake"
#: Backoff of the listener's reconnects: first wait, doubling up to the last (a server that
#: restarts is back within seconds; one that is down is retried twice a minute).
LISTEN_RETRY_FIRST: Final = 0.5
LISTEN_RETRY_MAX: Final = 30.0
#: Seconds a statement waits for a pooled connection when all are busy or the server is
#: gone: the callers run on the event loop, so a dead database is reported (an error, a
#: 503 from /healthz) rather than waited for.
PG_CHECKOUT_TIMEOUT: Final = 5.0
#: Seconds the store waits at open for its first PostgreSQL connection (a server that is
#: restarting answers within this; one that is not there is reported, not waited for).
PG_CONNECT_TIMEOUT: Final = 15.0


def is_postgresql(url: str | Path) -> bool:
    return str(url).startswith(PG_SCHEMES)


def sqlite_path(url: str | Path) -> str:
    """The file of a SQLite store given as ``sqlite:///path``, ``sqlite:relative`` or a bare path."""
    s = str(url)
    if s.startswith("sqlite://"):
        return s[len("sqlite://"):] or ":memory:"
    if s.startswith("sqlite:"):
        return s[len("sqlite:"):]
    return s


def masked(url: str) -> str:
    """``url`` without its password, for messages and logs."""
    return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", url)


# -- the SQL that differs ---------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Dialect:
    name: str

    def json_text(self, column: str, *path: str) -> str:
        """A string field of a JSON text column, at ``path`` (keys, outermost first)."""
        if self.name == "postgresql":
            return f"({column}::jsonb #>> '{{{','.join(path)}}}')"
        return f"json_extract({column}, '$.{'.'.join(path)}')"

    def hour_start(self, column: str) -> str:
        """Epoch seconds of the UTC hour an epoch-seconds column falls in (truncated, not rounded)."""
        if self.name == "postgresql":
            return f"CAST(FLOOR({column} / 3600) * 3600 AS BIGINT)"
        return f"CAST({column} / 3600 AS INTEGER) * 3600"

    def job_step(self) -> str:
        """The strategy step in a result's job id ``<campaign>.<contact>.<step>.<n>[.g<k>]``
        (a campaign id holds no dot)."""
        tail = "substr(job_id, length(campaign_id) + 2)"
        if self.name == "postgresql":
            return f"CAST(split_part({tail}, '.', 2) AS INTEGER)"
        rest = f"substr({tail}, instr({tail}, '.') + 1)"
        return f"CAST(substr({rest}, 1, instr({rest}, '.') - 1) AS INTEGER)"

    @property
    def for_update(self) -> str:
        """The row lock a read inside ``tx()`` takes to serialise the writers of one row (a
        campaign's imports): PostgreSQL's ``FOR UPDATE``; SQLite's ``BEGIN IMMEDIATE`` has
        serialised every writer already."""
        return " FOR UPDATE" if self.name == "postgresql" else ""

    def ddl(self, sql: str) -> str:
        """SQLite's DDL in this database's types: ids that are never reused become identity
        columns, epoch seconds double precision (PostgreSQL's REAL is 4 bytes), blobs bytea,
        and text compares bytewise (``COLLATE "C"``), as SQLite's default BINARY collation
        does. The database's default collation is its locale's: every btree step on a text
        key (the contacts' unique key, results' dedupe, job ids) then goes through strcoll;
        a 100,000-contact COPY took 1.11 s of server CPU on a C.UTF-8 database and 1.36 s in
        ICU's en-US, 1.03 / 0.97 s in "C" (medians). No query needs a linguistic order, and
        with "C" both backends sort text alike. Only the upper-case type word is
        rewritten (the DDL's column names, e.g. inbound's ``text``, are lower case); what
        goes through here is the store's CREATE TABLE / ADD COLUMN DDL and migrations."""
        if self.name != "postgresql":
            return sql
        sql = re.sub(r"\bINTEGER PRIMARY KEY AUTOINCREMENT\b", "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY", sql)
        sql = re.sub(r"\bREAL\b", "DOUBLE PRECISION", sql)
        sql = re.sub(r"\bTEXT\b(?! COLLATE)", 'TEXT COLLATE "C"', sql)
        return re.sub(r"\bBLOB\b", "BYTEA", sql)


SQLITE: Final = Dialect("sqlite")
POSTGRESQL: Final = Dialect("postgresql")


# -- PostgreSQL behind sqlite3's connection shape -----------------------------------------

_TOKEN: Final = re.compile(r"'(?:[^']|'')*'|\"[^\"]*\"|--[^\n]*|\?|(?<![:\w]):([A-Za-z_]\w*)|%")


@functools.lru_cache(maxsize=1024)
def pg_sql(sql: str) -> str:
    """SQLite's placeholders as psycopg's; every literal ``%`` doubled (psycopg reads the
    whole text for its placeholders); a ``?`` or ``:name`` in quotes or a comment is text."""
    def sub(m: re.Match[str]) -> str:
        t = m.group(0)
        if t == "?":
            return "%s"
        if m.group(1):
            return f"%({m.group(1)})s"
        return t.replace("%", "%%")
    return _TOKEN.sub(sub, sql)


def pg_array(values: Sequence[Any]) -> tuple[str, str] | None:
    """``values`` as an array literal and its element type (``{"a","b"}``, ``text``;
    ``{1,2}``, ``bigint``) when all are text or all are whole numbers; None otherwise.
    psycopg adapts a list element by element in Python (~0.8 ms for 500 ids against
    ~0.2 ms for this text), and a batch of results or a claim round sends several."""
    if all(type(v) is str for v in values):
        return "{" + ",".join(['"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"' for v in values]) + "}", "text"
    if all(type(v) is int for v in values):
        return "{" + ",".join(map(str, values)) + "}", "bigint"
    return None


def _arg(v: Any) -> Any:
    # flags are INTEGER columns on both databases; psycopg would send a Python bool as boolean
    return int(v) if isinstance(v, bool) else v


def pg_args(args: Sequence[Any] | Mapping[str, Any]) -> Sequence[Any] | Mapping[str, Any]:
    """A statement's arguments as psycopg takes them (each value through ``_arg``); the
    store's blocking connection and its reads on the event loop (``loop_reads``) alike."""
    if isinstance(args, Mapping):
        return {k: _arg(v) for k, v in args.items()}
    return [_arg(v) for v in args]


class Row(tuple):  # type: ignore[type-arg]
    """A row by position and by column name, and ``dict(row)``, like ``sqlite3.Row``."""

    _index: dict[str, int]

    def __new__(cls, values: Sequence[Any], index: dict[str, int]) -> Self:
        row = super().__new__(cls, values)
        row._index = index
        return row

    def __getitem__(self, key: Any) -> Any:  # type: ignore[override]
        if isinstance(key, str):
            return tuple.__getitem__(self, self._index[key])
        return tuple.__getitem__(self, key)

    def keys(self) -> list[str]:
        return list(self._index)


class Result:
    """A statement's outcome, read at once: its rows, ``rowcount`` and ``lastrowid`` (None:
    PostgreSQL has no row id; the store asks for ``RETURNING`` instead).

    The rows are kept as psycopg hands them (plain tuples) with their column names; a
    ``Row`` is made only for the caller that fetches one, and ``dicts()`` zips names and
    values in C: most reads end as dicts (``StoreBase._all``), and a ``Row`` per row then
    ``dict(row)`` (a Python ``__getitem__`` per column) cost ~3x as much on a 100-row page."""

    __slots__ = ("_at", "_index", "_names", "_raw", "rowcount")
    lastrowid = None

    def __init__(self, cur: psycopg.Cursor[Any]) -> None:
        self.rowcount = cur.rowcount
        description = cur.description  # a new list of Column objects at every read of it
        if description is None:
            self._names: tuple[str, ...] = ()
            self._raw: list[tuple[Any, ...]] = []
        else:
            self._names = tuple(c.name for c in description)
            self._raw = cur.fetchall()
        self._at = 0
        self._index: dict[str, int] | None = None  # a Row's by-name lookup, made at the first Row

    def _rows(self, raw: list[tuple[Any, ...]]) -> list[Row]:
        if self._index is None:
            self._index = {n: i for i, n in enumerate(self._names)}
        return [Row(v, self._index) for v in raw]

    def fetchone(self) -> Row | None:
        if self._at >= len(self._raw):
            return None
        self._at += 1
        return self._rows(self._raw[self._at - 1:self._at])[0]

    def fetchall(self) -> list[Row]:
        raw, self._at = self._raw[self._at:], len(self._raw)
        return self._rows(raw)

    def dicts(self) -> list[dict[str, Any]]:
        """The rows not fetched yet, each as a dict by column name (``dict(row)`` of each)."""
        raw, self._at = self._raw[self._at:], len(self._raw)
        names = self._names
        return [dict(zip(names, v)) for v in raw]

    def dict_one(self) -> dict[str, Any] | None:
        """The next row as a dict by column name (``dict(fetchone())``), None past the last."""
        if self._at >= len(self._raw):
            return None
        self._at += 1
        return dict(zip(self._names, self._raw[self._at - 1]))

    def __iter__(self) -> Iterator[Row]:
        return iter(self.fetchall())


def _execute(conn: psycopg.Connection[Any], sql: str, args: Sequence[Any] | Mapping[str, Any]) -> Result:
    with conn.cursor() as cur:
        if args:
            cur.execute(pg_sql(sql), pg_args(args))  # type: ignore[arg-type]
        else:  # no parameters: psycopg sends the text as it is (a literal % stays single)
            cur.execute(sql)  # type: ignore[arg-type]
        return Result(cur)


class PgConnection:
    """A psycopg pool behind ``execute`` / ``executemany``: each statement outside a
    transaction on a pooled connection in autocommit, inside one on the transaction's."""

    def __init__(self, url: str, *, max_size: int = 8) -> None:
        self.url = url
        self._local = threading.local()
        self.pool = psycopg_pool.ConnectionPool(url, min_size=1, max_size=max_size, num_workers=1, open=False,
                                                timeout=PG_CHECKOUT_TIMEOUT, kwargs={"autocommit": True},
                                                name="simrotor-store")
        try:
            self.pool.open(wait=True, timeout=PG_CONNECT_TIMEOUT)
        except psycopg_pool.PoolTimeout:
            self.pool.close()
            raise ConnectionError(f"no connection to PostgreSQL at {masked(url)} within {PG_CONNECT_TIMEOUT:.0f} s") from None

    def _current(self) -> psycopg.Connection[Any] | None:
        return getattr(self._local, "conn", None)

    def execute(self, sql: str, args: Sequence[Any] | Mapping[str, Any] = ()) -> Result:
        if (conn := self._current()) is not None:
            return _execute(conn, sql, args)
        with self.pool.connection() as conn:
            return _execute(conn, sql, args)

    def executemany(self, sql: str, rows: Iterable[Sequence[Any] | Mapping[str, Any]]) -> Result:
        def run(conn: psycopg.Connection[Any]) -> Result:
            with conn.cursor() as cur:
                cur.executemany(pg_sql(sql), [pg_args(r) for r in rows])  # type: ignore[arg-type]
                return Result(cur)
        if (conn := self._current()) is not None:
            return run(conn)
        with self.pool.connection() as conn:
            return run(conn)

    def copy_text(self, sql: str, chunks: Iterable[bytes]) -> None:
        """``COPY … FROM STDIN`` of ``chunks`` already in COPY's text format (lines of
        tab-separated values, escaped: ``campaigns.contacts_copy_text``), sent as they are:
        no row is formatted here."""
        conn = self._current()
        if conn is None:
            raise RuntimeError("copy_text runs inside a store transaction")
        with conn.cursor() as cur, cur.copy(sql) as copy:  # type: ignore[arg-type]
            for chunk in chunks:
                copy.write(chunk)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[PgConnection]:
        """One transaction on one pooled connection, this thread's until it ends."""
        if self._current() is not None:
            raise RuntimeError("a store transaction is open already in this thread (no nesting)")
        with self.pool.connection() as conn, conn.transaction():
            self._local.conn = conn
            try:
                yield self
            finally:
                self._local.conn = None

    def close(self) -> None:
        self.pool.close()


# -- wake-ups across controllers (LISTEN/NOTIFY) -----------------------------------------

log = logging.getLogger("simrotor.controller.store")


def notify(c: Any, what: str) -> None:
    """Wake every controller's dispatcher once the caller's transaction commits (``c`` is
    the transaction's connection); nothing on SQLite."""
    if isinstance(c, PgConnection):
        c.execute("SELECT pg_notify(?, ?)", (WAKE_CHANNEL, what))


async def listen(url: str, on_wake: Callable[[str], None]) -> None:
    """Call ``on_wake(payload)`` for every wake-up sent on ``url``'s database, for ever, on a
    connection of its own; ``on_wake("listening")`` each time the listener (re)connects,
    since what was sent while it was away is lost. Reconnects with a doubling backoff."""
    delay = LISTEN_RETRY_FIRST
    while True:
        try:
            async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
                await conn.execute(f"LISTEN {WAKE_CHANNEL}")
                delay = LISTEN_RETRY_FIRST
                on_wake("listening")
                async for note in conn.notifies():
                    on_wake(note.payload)
        except psycopg.OperationalError as exc:
            log.warning("wake-up listener on %s lost its connection (%s); retrying in %.1f s", masked(url), exc, delay)
        await asyncio.sleep(delay)
        delay = min(delay * 2, LISTEN_RETRY_MAX)
