"""Dispatch: a freed channel is refilled by its own executor (no turn of the loop between
"free" and the next ATD), and when the store cannot record an attempt nothing is dialed
without one and nothing is lost."""
from __future__ import annotations

import sqlite3
from collections import Counter

import pytest

from appliance.config import parse_config
from appliance.runtime import Appliance
from modem_drivers.emulator import Timing


pytestmark = pytest.mark.bank(modems=4, sims_per_modem=1, timing=Timing.FAST, seed=3)


def config(tmp_path, state_file) -> dict:
    return {
        "emulator_state": str(state_file),
        "appliance": {"id": "d", "store": str(tmp_path / "a.db"), "listen": "", "token": "t"},
        "limits": {"calls_per_hour": None, "calls_per_day": None, "min_pause_seconds": 0.0,
                   "pause_after_call": [0.0, 0.0]},
        "lock": {"consecutive_failed": None, "consecutive_not_alerting": None},
        "retry": {"max_attempts": 1},
    }


async def run_until_final(app: Appliance, jobs: list[dict], timeout: float = 60) -> dict[str, dict]:
    import asyncio

    finals: dict[str, dict] = {}
    done = asyncio.Event()

    def on_result(r: dict) -> None:
        if r.get("final"):
            assert r["job_id"] not in finals, f"second final result for {r['job_id']}"
            finals[r["job_id"]] = r
            if len(finals) == len(jobs):
                done.set()

    app.scheduler.result_listeners.append(on_result)
    app.scheduler.submit(jobs)
    async with asyncio.timeout(timeout):
        await done.wait()
    return finals


def refuse_commits(app: Appliance, times: int, when=lambda: True, why: str = "database or disk is full") -> dict:
    """Make the store's refill commit fail ``times`` times once ``when()`` holds (SQLite
    errors as a full or failing disk raises them); returns the counter left."""
    real = app.store.finish_and_start
    failures = {"left": times}

    def flaky(*a, **kw):
        if failures["left"] and when():
            failures["left"] -= 1
            raise sqlite3.OperationalError(why)
        return real(*a, **kw)

    app.store.finish_and_start = flaky  # type: ignore[method-assign]
    return failures


async def test_store_failure_dials_nothing_unrecorded_and_loses_nothing(tmp_path, bank):
    emu, state_file = bank
    app = Appliance(parse_config(config(tmp_path, state_file)), seed=1)
    await app.start()
    failures = refuse_commits(app, 2, when=lambda: app.scheduler.decisions > 8)  # two commits mid-run
    jobs = [{"id": f"c{i}", "kind": "call", "callee": f"+486000{i:05d}"} for i in range(40)]
    try:
        finals = await run_until_final(app, jobs)
    finally:
        await app.stop()
    assert failures["left"] == 0, "the failure was never exercised"
    assert set(finals) == {j["id"] for j in jobs}
    assert all(r["outcome"] == "answered_human" for r in finals.values())
    dialed = Counter(c.callee for c in emu.network.calls)
    assert max(dialed.values()) == 1 and set(dialed) == {j["callee"] for j in jobs}
    db = sqlite3.connect(tmp_path / "a.db")
    attempts = Counter(r[0] for r in db.execute("SELECT j.callee FROM attempts a JOIN jobs j ON j.id = a.job_id"))
    assert attempts == dialed  # every dial had its attempt written first, and only one
    assert db.execute("SELECT COUNT(*) FROM results WHERE final = 1").fetchone()[0] == len(jobs)


async def test_freed_channels_are_refilled_without_waiting_for_the_loop(tmp_path, bank):
    _, state_file = bank
    app = Appliance(parse_config(config(tmp_path, state_file)), seed=2)
    await app.start()
    jobs = [{"id": f"c{i}", "kind": "call", "callee": f"+486010{i:04d}"} for i in range(60)]
    executors = []
    real_run = app.scheduler._run

    def counting_run(start):
        executors.append(start.spec["id"])
        return real_run(start)

    app.scheduler._run = counting_run  # type: ignore[method-assign]
    try:
        await run_until_final(app, jobs)
        # 4 channels, 60 jobs: the jobs after the first few started on a channel another
        # job had just freed, run by that job's executor; a new executor (task) is only
        # needed when the dispatch loop fills a channel nobody was finishing on.
        assert len(executors) < len(jobs) // 3, executors
        assert len(app.scheduler.dispatch_latencies) >= len(jobs) - 4
        assert len(app.scheduler._running) == 0
    finally:
        await app.stop()


async def test_a_result_kept_by_a_failed_commit_is_written_when_nothing_else_finishes(tmp_path, bank):
    _, state_file = bank
    app = Appliance(parse_config(config(tmp_path, state_file)), seed=4)
    await app.start()
    failures = refuse_commits(app, 1, why="disk I/O error")  # the only job's closing commit
    try:
        finals = await run_until_final(app, [{"id": "only", "kind": "call", "callee": "+48600099999"}], timeout=30)
    finally:
        await app.stop()
    assert failures["left"] == 0 and finals["only"]["outcome"] == "answered_human"
    db = sqlite3.connect(tmp_path / "a.db")
    assert db.execute("SELECT state FROM jobs WHERE id = 'only'").fetchone()[0] == "done"
    assert db.execute("SELECT COUNT(*) FROM attempts WHERE job_id = 'only'").fetchone()[0] == 1
