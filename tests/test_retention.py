"""The appliance's events table is bounded (issue 12 item 2: a stuck modem wrote 3.2 million
rows, 375 MB, in 5 minutes): a rate bound per (kind, subject) at write time, and a prune
by age and by row count, in small batches, from the scheduler's periodic task."""
from __future__ import annotations

import asyncio
import json
import time

import pytest

from appliance.config import parse_config
from appliance.runtime import Appliance
from appliance.store import (EVENTS_KEEP_SECONDS, EVENTS_PER_SUBJECT, EVENTS_PRUNE_BATCH, Store)
from modem_drivers.emulator import Timing


def rows(store: Store, where: str = "1", *args) -> list[tuple]:
    return store.conn.execute(f"SELECT seq, at, kind, subject, detail FROM events WHERE {where} ORDER BY seq",
                              args).fetchall()


def test_a_hot_loop_of_events_writes_a_bounded_number_of_rows(tmp_path):
    """200,000 state moves of one channel inside one window: the first
    EVENTS_PER_SUBJECT rows, then one row with the last move and how many were held."""
    store = Store(tmp_path / "a.db")
    store._event_rate.clock = lambda: 0.0  # one window however slow the machine is
    for i in range(200_000):
        store.log_event("channel", "emu003", {"from": "idle", "to": "faulty" if i % 2 else "idle", "n": i}, now=1000.0 + i)
    store.log_event("channel", "emu004", {"from": "busy", "to": "idle"}, now=5000.0)
    assert len(rows(store)) == EVENTS_PER_SUBJECT + 1  # the other channel is not held back
    path = store.path
    store.close()  # closing writes the window held back
    db = Store(path)
    got = rows(db, "subject = 'emu003'")
    assert len(got) == EVENTS_PER_SUBJECT + 1
    last = json.loads(got[-1][4])
    assert last["n"] == 199_999 and last["to"] == "faulty" and last["suppressed"] == 200_000 - EVENTS_PER_SUBJECT
    assert got[-1][1] == 1000.0 + 199_999  # at: the time of the last move it stands for
    db.close()


def test_prune_drops_rows_beyond_the_count_oldest_first_in_batches(tmp_path):
    store = Store(tmp_path / "a.db")
    now = time.time()
    for i in range(2_500):
        store.log_event("sim_locked", f"sim{i:05d}", {"i": i}, now=now)
    deleted = [store.prune_events(now, max_rows=1_000, batch=400) for _ in range(6)]
    assert deleted == [400, 400, 400, 300, 0, 0]
    left = rows(store)
    assert len(left) == 1_000 and json.loads(left[0][4])["i"] == 1_500 and json.loads(left[-1][4])["i"] == 2_499
    store.close()


def test_prune_drops_rows_older_than_the_age_bound(tmp_path):
    store = Store(tmp_path / "a.db")
    now = time.time()
    for i in range(30):
        store.log_event("balance", f"sim{i}", {"i": i}, now=now - EVENTS_KEEP_SECONDS - 60 + i)
    for i in range(30, 40):
        store.log_event("balance", f"sim{i}", {"i": i}, now=now - 60)
    assert store.prune_events(now, batch=25) == 25
    assert store.prune_events(now, batch=25) == 5  # only the old ones
    assert store.prune_events(now, batch=25) == 0
    assert [json.loads(r[4])["i"] for r in rows(store)] == list(range(30, 40))
    store.close()


def test_a_prune_looks_at_one_batch_only(tmp_path):
    """The cost of a prune does not grow with the table: it reads the oldest ``batch``
    rows by rowid, so a fresh row behind a million old ones is never scanned for."""
    store = Store(tmp_path / "a.db")
    plan = store.conn.execute(
        "EXPLAIN QUERY PLAN SELECT seq FROM (SELECT seq, at FROM events ORDER BY seq LIMIT ?) WHERE seq <= ? OR at < ?",
        (10, 0, 0.0)).fetchall()
    assert not any("TEMP B-TREE" in str(r) for r in plan), plan  # rowid order, no sort of the table
    store.close()


@pytest.mark.bank(modems=2, timing=Timing.FAST, seed=5)
async def test_a_running_appliance_prunes_its_events(tmp_path, bank):
    """The scheduler's periodic task prunes (EVENTS_PRUNE_BATCH a second): events older
    than a week, left by an earlier run, are gone a few seconds after start; recent
    ones stay."""
    db = tmp_path / "a.db"
    store = Store(db)
    old = time.time() - EVENTS_KEEP_SECONDS - 3600
    n_old = EVENTS_PRUNE_BATCH + 200
    store.conn.executemany("INSERT INTO events(at, kind, subject, detail) VALUES (?, 'channel', ?, '{}')",
                           [(old, f"gone{i}") for i in range(n_old)])
    store.conn.executemany("INSERT INTO events(at, kind, subject, detail) VALUES (?, 'channel', ?, '{}')",
                           [(time.time() - 3600, f"kept{i}") for i in range(5)])
    store.close()
    app = Appliance(parse_config({
        "emulator_state": str(bank.state),
        "appliance": {"id": "box-ret", "store": str(db), "listen": "", "token": "t"},
    }))
    await app.start()
    try:
        async with asyncio.timeout(30):
            while app.store.conn.execute("SELECT COUNT(*) FROM events WHERE subject LIKE 'gone%'").fetchone()[0]:
                await asyncio.sleep(0.2)
        kept = app.store.conn.execute("SELECT COUNT(*) FROM events WHERE subject LIKE 'kept%'").fetchone()[0]
        assert kept == 5
    finally:
        await app.stop()
