"""The API's reads on the event loop (``base.Read``): on PostgreSQL through an asyncio pool
of their own, so a request waits for the server without holding the loop (links, other
requests) and without a worker thread. A read in a thread (``asyncio.to_thread``, as
before) cost the controller ~0.25 ms of CPU a request more, and under 500 requests/s its
hand-offs of the interpreter lock between the thread and the loop gave a p99 of 16-28 ms
against 9-13 ms for the same reads made on the loop (bench, 1,000,000 contacts, two runs
each). On SQLite a read runs at once on the store's own connection: the local file does not
make it wait.
"""
from __future__ import annotations

import asyncio
from typing import Any, Final

import psycopg
import psycopg_pool

from .backend import PG_CHECKOUT_TIMEOUT, PG_CONNECT_TIMEOUT, POSTGRESQL, masked, pg_args, pg_sql
from .base import Read, StoreBase, T

#: Connections of the reads' pool: a read holds one for a round trip or two (~0.2-1 ms), so
#: a few serve hundreds of requests a second; more would only queue in the server. All
#: opened at start: a pool that grows under a burst makes the requests behind it wait for
#: a new server process (tens of ms on a busy machine).
POOL_SIZE: Final = 4


class LoopReads:
    """Runs ``Read``s for the API. ``open()`` on the loop before the first (the pool is an
    asyncio one), ``close()`` at the end; unopened (a store handed to an ``Api`` in a test)
    a PostgreSQL read goes to a thread as before."""

    def __init__(self, store: StoreBase) -> None:
        self.store = store
        self._pool: psycopg_pool.AsyncConnectionPool[Any] | None = None

    async def open(self) -> None:
        if self.store.dialect is not POSTGRESQL or self._pool is not None:
            return
        url = self.store.conn.url
        pool: psycopg_pool.AsyncConnectionPool[Any] = psycopg_pool.AsyncConnectionPool(
            url, min_size=POOL_SIZE, max_size=POOL_SIZE, open=False, timeout=PG_CHECKOUT_TIMEOUT,
            kwargs={"autocommit": True}, name="simrotor-api-reads")
        try:
            await pool.open(wait=True, timeout=PG_CONNECT_TIMEOUT)
        except psycopg_pool.PoolTimeout:
            await pool.close()
            raise ConnectionError(f"no connection to PostgreSQL at {masked(url)} within {PG_CONNECT_TIMEOUT:.0f} s") from None
        self._pool = pool

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    async def run(self, read: Read[T]) -> T:
        if self._pool is None:
            if self.store.dialect is POSTGRESQL:
                return await asyncio.to_thread(self.store.run, read)
            return self.store.run(read)
        async with self._pool.connection() as conn:
            rows: Any = None  # the first send starts the generator
            try:
                while True:
                    sql, args = read.send(rows)
                    rows = await _all(conn, sql, args)
            except StopIteration as done:
                return done.value  # type: ignore[no-any-return]


async def _all(conn: psycopg.AsyncConnection[Any], sql: str, args: Any) -> list[dict[str, Any]]:
    """``StoreBase._all`` on an asyncio connection: the same SQL translation and arguments,
    the same rows (dicts by column name)."""
    async with conn.cursor() as cur:
        if args:
            await cur.execute(pg_sql(sql), pg_args(args))  # type: ignore[arg-type]
        else:  # no parameters: psycopg sends the text as it is (a literal % stays single)
            await cur.execute(sql)  # type: ignore[arg-type]
        if cur.description is None:
            return []
        names = [c.name for c in cur.description]
        return [dict(zip(names, r)) for r in await cur.fetchall()]
