"""The store's connection and its transaction: what every table group builds on.

One SQLite connection in autocommit mode (``common.files.open_sqlite``: WAL,
``synchronous=NORMAL`` — a killed process loses nothing committed, SQLite docs "PRAGMA
synchronous"); every write is an explicit ``tx()``. A caller that must make several writes
atomic (a result, its contact's next step and its webhook deliveries) opens ``tx()`` itself
and calls the groups' ``…(c, …)`` functions inside it; every other method opens its own.

On PostgreSQL (a ``postgresql://`` URL, issue 18) the connection is a psycopg pool behind
the same shape (``backend.PgConnection``) and ``tx()`` a transaction on one pooled
connection; what differs in the SQL is asked of ``self.dialect``.

Also here: the per-state contact counts (``campaign_counts``), which every group that moves
a contact keeps in step inside its own transaction.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
from collections.abc import Callable, Generator, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import msgspec
import sqlite_utils

from common.files import open_sqlite

from .backend import POSTGRESQL, SQLITE, Dialect, PgConnection, Result, is_postgresql, listen, masked, pg_array, sqlite_path
from .schema import migrate, migrate_pg

T = TypeVar("T")
#: A read written once for the store's two ways of running it, without I/O of its own (as
#: h11 writes a protocol): a generator that yields each statement as (SQL, arguments), is
#: sent that statement's rows (dicts by column name) and returns the answer.
#: ``StoreBase.run`` runs it on the store's connection, blocking; ``loop_reads.LoopReads``
#: on an asyncio connection, so that an API read on PostgreSQL waits for the server
#: without holding the event loop or handing the work to a thread and back.
Read = Generator[tuple[str, Sequence[Any]], list[dict[str, Any]], T]

#: Chunk size of multi-row statements: SQLite's default SQLITE_MAX_VARIABLE_NUMBER is
#: 32,766 since 3.32; 500 rows x 16 columns (a result's) stays far below it.
CHUNK = 500


def in_chunks(items: Sequence[Any]) -> Iterator[tuple[Sequence[Any], str]]:
    """``items`` in parts of ``CHUNK``, each with its placeholders (``?,?,…``) for ``IN (…)``."""
    for i in range(0, len(items), CHUNK):
        part = items[i:i + CHUNK]
        yield part, ",".join("?" * len(part))


def dict_rows(cur: Any) -> list[dict[str, Any]]:
    """A statement's rows (a ``sqlite3.Cursor`` or a ``backend.Result``) as dicts by column
    name: on PostgreSQL zipped in C (``Result.dicts``: a ``Row``'s by-name lookup is Python
    code, ~3x the cost on a 100-row page)."""
    if isinstance(cur, Result):
        return cur.dicts()
    return [dict(r) for r in cur.fetchall()]


def one_of(c: Any, column: str, values: Sequence[Any], sql_type: str = "") -> Iterator[tuple[str, list[Any]]]:
    """``column`` is one of ``values``, as SQL and its arguments, for the connection ``c``
    (a transaction's): on PostgreSQL one ``= ANY(?)`` with an array, sent as its literal text
    when its values are all text or all whole numbers (``backend.pg_array``), cast to
    ``sql_type[]`` or their type (one statement text whatever the count, so psycopg prepares it once; a text
    of 500 placeholders is parsed again at every call), on SQLite ``IN (?,…)`` in parts of
    ``CHUNK`` (its variable limit). Nothing for no values."""
    if not values:
        return
    if isinstance(c, PgConnection):
        literal = pg_array(values)
        if literal is not None:  # the array as its text, cast to its type
            yield f"{column} = ANY(?::{sql_type or literal[1]}[])", [literal[0]]
        else:
            yield f"{column} = ANY(?{'::' + sql_type + '[]' if sql_type else ''})", [list(values)]
        return
    for part, marks in in_chunks(values):
        yield f"{column} IN ({marks})", list(part)


#: How ``campaign_counts`` takes a delta (``_count``): added to its campaign and state's row.
COUNT_UPSERT = " ON CONFLICT(campaign_id, state) DO UPDATE SET n = campaign_counts.n + excluded.n"


class StoreError(RuntimeError):
    pass


class Conflict(StoreError):
    """A unique key or a state precondition refused the write (HTTP 409 upstairs)."""


encode = msgspec.json.Encoder().encode


def loads(v: str | None) -> Any:
    return None if v is None else json.loads(v)


def _finish(steps: Generator[None, None, T]) -> T:
    """Run ``steps`` to its end; its value."""
    while True:
        try:
            next(steps)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]


class StoreBase:
    """The connection, ``tx()`` and the small helpers every table group uses."""

    def __init__(self, url: str | Path, *, durability: str = "normal", pool_size: int = 8) -> None:
        """A store at ``url``: ``postgresql://user@host/db``, or a SQLite file as
        ``sqlite:///path`` or a bare path. Brings the schema up to date (``schema``)."""
        self.url = str(url)
        self.conn: Any
        if is_postgresql(url):
            self.dialect: Dialect = POSTGRESQL
            try:
                self.conn = PgConnection(self.url, max_size=pool_size)
            except ConnectionError as exc:
                raise StoreError(str(exc)) from None
            try:
                migrate_pg(self.conn, StoreError)
            except BaseException:
                self.conn.close()
                raise
            return
        self.dialect = SQLITE
        conn = open_sqlite(sqlite_path(url), durability=durability)
        conn.row_factory = sqlite3.Row
        self.conn = conn
        self.db = sqlite_utils.Database(conn)
        migrate(self.db, StoreError)

    async def listen_for_wakeups(self, on_wake: Callable[[str], None]) -> None:
        """Run for ever calling ``on_wake(what)`` when any controller on this database made
        work for the dispatchers (``backend.notify``); returns at once on SQLite (one
        process: its own API wakes its dispatcher)."""
        if self.dialect is POSTGRESQL:
            await listen(self.url, on_wake)

    async def off_loop(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)``, a write of this store's, where it does not hold the event loop: on
        PostgreSQL in a worker thread (the pool gives the thread a connection of its own,
        and while the server works the loop serves links and API requests: a results batch
        of 500 held it 25-50 ms, a claim round of 500 more); on SQLite here at once (one
        connection, and its writers take turns whatever the threads)."""
        if self.dialect is POSTGRESQL:
            return await asyncio.to_thread(fn, *args)
        return fn(*args)

    async def off_loop_steps(self, steps: Generator[None, None, T]) -> T:
        """The value of ``steps``, a long write in steps, each a transaction of its own (a
        dispatch tick's claim rounds): on PostgreSQL all in a worker thread (``off_loop``);
        on SQLite on the event loop, handed back to it between steps, so links and API
        requests wait one step, not all (a tick leasing 10,000 jobs held the loop 1.9 s)."""
        if self.dialect is POSTGRESQL:
            return await self.off_loop(_finish, steps)
        while True:
            try:
                next(steps)
            except StopIteration as done:
                return done.value  # type: ignore[no-any-return]
            await asyncio.sleep(0)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {masked(self.url)}>"

    def close(self) -> None:
        self.conn.close()

    @contextlib.contextmanager
    def tx(self) -> Iterator[Any]:
        """One write transaction. SQLite: taken at its start (``BEGIN IMMEDIATE``) so two
        processes never deadlock upgrading read locks. PostgreSQL: READ COMMITTED on one
        pooled connection; claims are conditional updates, whose row locks make a second
        writer wait and then see the first one's change (PostgreSQL docs, 13.2.1)."""
        if self.dialect is POSTGRESQL:
            with self.conn.transaction() as c:
                yield c
            return
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    def _all(self, sql: str, args: Sequence[Any] = ()) -> list[dict[str, Any]]:
        return dict_rows(self.conn.execute(sql, args))

    def run(self, read: Read[T]) -> T:
        """A ``Read``'s answer, its statements run here, one after the other."""
        rows: Any = None  # the first send starts the generator
        try:
            while True:
                sql, args = read.send(rows)
                rows = self._all(sql, args)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]

    def _one(self, sql: str, args: Sequence[Any] = ()) -> dict[str, Any] | None:
        cur = self.conn.execute(sql, args)
        if self.dialect is POSTGRESQL:
            return cur.dict_one()  # type: ignore[no-any-return]
        row = cur.fetchone()
        return dict(row) if row is not None else None

    @staticmethod
    def _move(c: sqlite3.Connection, campaign_id: str, from_state: str | None, to_state: str | None, n: int = 1) -> None:
        """Keep ``campaign_counts`` in step with contacts moving between states."""
        if from_state == to_state or n == 0:
            return
        StoreBase._count(c, {(campaign_id, state): delta for state, delta in ((from_state, -n), (to_state, n)) if state is not None})

    @staticmethod
    def _count(c: sqlite3.Connection, deltas: dict[tuple[str, str], int]) -> None:
        """Add ``deltas`` (by campaign and state) to ``campaign_counts``, in key order."""
        rows = StoreBase._count_rows(deltas)
        if rows:
            c.executemany("INSERT INTO campaign_counts(campaign_id, state, n) VALUES (?, ?, ?)" + COUNT_UPSERT, rows)

    @staticmethod
    def _count_rows(deltas: dict[tuple[str, str], int]) -> list[tuple[str, str, int]]:
        """``deltas`` as (campaign, state, delta) rows in key order (the order their rows
        are locked in), the zeros left out; what ``_count`` writes."""
        return [(campaign_id, state, n) for (campaign_id, state), n in sorted(deltas.items()) if n]

    def recount(self, campaign_id: str) -> None:
        """Rebuild a campaign's counts from the contacts (after bulk changes, or repair)."""
        with self.tx() as c:
            self._recount(c, campaign_id)

    @staticmethod
    def _recount(c: sqlite3.Connection, campaign_id: str) -> None:
        c.execute("DELETE FROM campaign_counts WHERE campaign_id = ?", (campaign_id,))
        c.execute("INSERT INTO campaign_counts(campaign_id, state, n) SELECT campaign_id, state, COUNT(*) FROM contacts"
                  " WHERE campaign_id = ? GROUP BY campaign_id, state", (campaign_id,))
