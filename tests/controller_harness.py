"""The controller under test: a controller on an ephemeral port with a movable clock, a
fresh API key and enrolment, and a scripted fake appliance that speaks the link protocol
over a real WebSocket. Test code, so it lives in tests/ (it was controller/testing.py);
tests/conftest.py builds its ``controller`` and ``crm`` fixtures from it.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import psycopg

from common.clock import iso
from controller.config import ControllerConfig, parse_config
from controller.server import Controller, create_enroll_token, create_key
from controller.store import Store
from controller.store.backend import POSTGRESQL, is_postgresql


class FakeClock:
    """Wall time plus an offset the test moves forward."""

    def __init__(self, start: float | None = None) -> None:
        self.offset = 0.0 if start is None else start - time.time()

    def __call__(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


def make_config(store: Path | str, *, recordings: Path | None = None, **sections: dict[str, Any]) -> ControllerConfig:
    """A controller on 127.0.0.1:0 storing in ``store`` (a SQLite file or a PostgreSQL URL;
    recordings in ``recordings``, else beside a SQLite file), dispatching every 50 ms with
    30 s leases (short, so tests see dispatch at once); ``sections`` update the defaults."""
    data: dict[str, Any] = {"controller": {"listen": "127.0.0.1:0"}, "store": {"url": str(store)},
                            "dispatch": {"interval_seconds": 0.05, "lease_seconds": 30.0}}
    if recordings is not None:
        data["store"]["recordings"] = str(recordings)
    for name, values in sections.items():
        data.setdefault(name, {}).update(values)
    return parse_config(data, source="test")


def stored_result(i: int, contact: int, callee: str, outcome: str, at: float, *, counts: int = 1, final: int = 1,
                  job_id: str | None = None) -> dict[str, Any]:
    """A row for ``Store.insert_result``: result ``i`` of a call to ``callee`` for contact
    ``contact`` of campaign c1 (``counts``: a placed attempt)."""
    return {"dedupe": f"r{i}", "appliance_id": "box", "app_seq": i, "job_id": job_id or f"c1.{contact}.0.{i}",
            "campaign_id": "c1", "contact_id": contact, "external_id": None, "kind": "call", "callee": callee,
            "outcome": outcome, "reason": None, "final": final, "number_shown": None, "counts_as_attempt": counts, "at": at,
            "body": "{}"}


class RawDb:
    """The database under a store, without the store (what an older controller left), on
    either backend: a DDL script in SQLite's spelling, a value, a table's columns."""

    def __init__(self, url: str) -> None:
        self.pg = is_postgresql(url)
        self.conn: Any = psycopg.connect(url, autocommit=True) if self.pg else sqlite3.connect(url, isolation_level=None)

    def script(self, sql: str) -> None:
        if self.pg:
            self.conn.execute(POSTGRESQL.ddl(sql))
        else:
            self.conn.executescript(sql)

    def one(self, sql: str) -> Any:
        return self.conn.execute(sql).fetchone()[0]

    def columns(self, table: str) -> set[str]:
        if self.pg:
            return {r[0] for r in self.conn.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = %s",
                (table,))}
        return {r[1] for r in self.conn.execute(f"PRAGMA table_info({table})")}

    def close(self) -> None:
        self.conn.close()


def query_plan(store: Store, sql: str, args: tuple[Any, ...]) -> str:
    """The plan the store's database makes for ``sql``, as text. On PostgreSQL sequential
    scans are priced out for the question (a test's table is small enough that a scan
    would win, and the question is whether an index can answer at all)."""
    with store.tx() as c:
        if store.dialect is POSTGRESQL:
            c.execute("SET LOCAL enable_seqscan = off")
            return " ".join(str(tuple(r)) for r in c.execute(f"EXPLAIN {sql}", args))
        return " ".join(str(tuple(r)) for r in c.execute(f"EXPLAIN QUERY PLAN {sql}", args))


@contextlib.asynccontextmanager
async def running(cfg: ControllerConfig, clock: Any = time.time, *, dispatch: bool = True) -> AsyncIterator[tuple[Controller, str]]:
    """A started controller and a fresh API key."""
    c = Controller(cfg, clock=clock)
    await c.start(dispatch=dispatch)
    key = create_key(c.store, "test", clock())["key"]
    try:
        yield c, key
    finally:
        await c.stop()


async def enroll(session: aiohttp.ClientSession, c: Controller, appliance_id: str) -> str:
    token = create_enroll_token(c.store, 600, c.clock())["token"]
    async with session.post(f"{c.url}/v1/enroll", json={"token": token, "appliance_id": appliance_id}) as r:
        assert r.status == 200, await r.text()
        return str((await r.json())["credential"])


class FakeAppliance:
    """The appliance's side of the link, driven step by step by a test."""

    def __init__(self, session: aiohttp.ClientSession, url: str, credential: str, appliance_id: str = "box-01",
                 clock: Any = time.time) -> None:
        self.session = session
        self.clock = clock
        self.url = url
        self.credential = credential
        self.appliance_id = appliance_id
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.seq = 0
        self.inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.held: list[dict[str, Any]] = []
        self._reader: asyncio.Task[None] | None = None

    async def connect(self, *, capacity: int = 4, operators: dict[str, int] | None = None,
                      sims: list[dict[str, Any]] | None = None) -> None:
        self.ws = await self.session.ws_connect(f"{self.url}/v1/link", headers={"Authorization": f"Bearer {self.credential}"})
        self._reader = asyncio.create_task(self._read())
        await self.send({"type": "hello", "appliance_id": self.appliance_id, "version": "0.1.0", "channels": capacity,
                         "idle": capacity, "capacity": capacity, "operators": operators or {"26001": capacity},
                         "sims": sims or [{"sim_id": f"s{i}", "msisdn": f"+4869000000{i}", "operator": "26001",
                                           "channel_id": f"m{i}", "state": "ready"} for i in range(capacity)]})

    async def _read(self) -> None:
        assert self.ws is not None
        async for msg in self.ws:
            if msg.type == aiohttp.WSMsgType.TEXT:
                data = json.loads(msg.data)
                if data.get("type") != "heartbeat":
                    await self.inbox.put(data)

    async def send(self, msg: dict[str, Any]) -> None:
        assert self.ws is not None
        await self.ws.send_str(json.dumps(msg))

    async def expect(self, mtype: str, timeout: float = 5.0) -> dict[str, Any]:
        """The next message of ``mtype``; messages of other types wait for their turn."""
        for i, msg in enumerate(self.held):
            if msg.get("type") == mtype:
                return self.held.pop(i)
        async with asyncio.timeout(timeout):
            while True:
                msg = await self.inbox.get()
                if msg.get("type") == mtype:
                    return msg
                self.held.append(msg)

    async def ack(self, batch: dict[str, Any], reject: dict[str, str] | None = None) -> None:
        reject = reject or {}
        await self.send({"type": "ack", "batch_id": batch["batch_id"],
                         "accepted": [j["id"] for j in batch["jobs"] if j["id"] not in reject],
                         "rejected": [{"id": i, "reason": r} for i, r in reject.items()]})

    def result(self, job: dict[str, Any], outcome: str, *, attempt: int = 1, final: bool = True,
               number_shown: str = "+48690000001", seq: int | None = None, **extra: Any) -> dict[str, Any]:
        if seq is None:
            self.seq += 1
            seq = self.seq
        now = iso(self.clock(), ms=False)
        return {"job_id": job["id"], "kind": job["kind"], "callee": job["callee"], "attempt": attempt, "outcome": outcome,
                "final": final, "number_shown": number_shown, "sim_id": "s1", "channel_id": "m1", "dialed_at": now,
                "seq": seq, **extra}

    async def reach_then_text_back(self, shown: str, text: str, inbound_id: str) -> dict[str, Any]:
        """Take the next batch, answer its first job ``answered_human`` from ``shown``, then
        have the callee text ``shown`` back; each step acknowledged. The job."""
        batch = await self.expect("jobs")
        await self.ack(batch)
        job = batch["jobs"][0]
        await self.send({"type": "results", "results": [self.result(job, "answered_human", number_shown=shown)]})
        await self.expect("results_ack")
        await self.send({"type": "inbound", "events": [{"id": inbound_id, "kind": "sms", "from": job["callee"],
                                                        "to": shown, "text": text}]})
        await self.expect("inbound_ack")
        return job

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
