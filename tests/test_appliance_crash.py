"""kill -9 at a random moment, then restart: no job lost, none dialed twice.

The appliance runs as a real child process on a real emulated bank (realistic timing,
so calls are ringing when it dies). The emulator's network log is the witness of what
was really dialed."""
from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import sys
from collections import Counter

import aiohttp
import pytest

from modem_drivers.emulator import Timing
from system_harness import free_port

TOKEN = "crash-token"



async def start_appliance(config_path, log):
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "simrotor", "appliance", "run", "--config", str(config_path), "--log-level", "WARNING",
        stdout=log, stderr=log,
    )
    return proc


async def wait_api(base: str, proc, timeout: float = 30) -> None:
    async with asyncio.timeout(timeout):
        while True:
            assert proc.returncode is None, "appliance exited"
            try:
                async with aiohttp.ClientSession() as s, s.get(f"{base}/api/status", headers={"Authorization": f"Bearer {TOKEN}"}) as r:
                    if r.status == 200 and (await r.json())["channels"].get("idle", 0) > 0:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)


def witness(emu, db, callee: str, dialed: int, recorded: int) -> str:
    """What the network and the store say of one callee, for a failure's message."""
    calls = [(c.modem_id, c.slot, c.caller_msisdn, c.started.isoformat(timespec="milliseconds"), c.outcome)
             for c in emu.network.calls if c.callee == callee]
    rows = db.execute("SELECT a.id, a.job_id, a.sim_id, a.channel_id, a.state, a.started_at, a.result FROM attempts a"
                      " JOIN jobs j ON j.id = a.job_id WHERE j.callee = ?", (callee,)).fetchall()
    return f"{callee}: dialed {dialed}x, {recorded} attempt(s); network: {calls}; attempts: {rows}"


@pytest.mark.timeout(240)
@pytest.mark.bank(modems=8, sims_per_modem=1, timing=Timing.REALISTIC, seed=11)
async def test_kill_9_and_restart_loses_and_repeats_nothing(tmp_path, bank):
    emu = bank.emu  # its state file is tmp_path/bank.json, as the config says
    port = free_port()
    (tmp_path / "a.toml").write_text(f"""
emulator_state = "bank.json"
[appliance]
id = "crash"
store = "{tmp_path / 'a.db'}"
listen = "127.0.0.1:{port}"
token = "{TOKEN}"
[limits]
calls_per_hour = 1000
min_pause_seconds = 0.0
pause_after_call = [0.0, 0.0]
[lock]
consecutive_not_alerting = 1000
consecutive_failed = 1000
[retry]
max_attempts = 1
retry_interrupted = false
[calls]
max_ring_seconds = 20
""")
    base = f"http://127.0.0.1:{port}"
    log = open(tmp_path / "appliance.log", "ab")
    proc = await start_appliance(tmp_path / "a.toml", log)
    await wait_api(base, proc)
    behaviours = [0, 2, 6, 0, 3]
    jobs = [{"id": f"k{i}", "kind": "call", "callee": f"+4860{i % 4}{behaviours[i % 5]}{i:05d}",
             "call": {"max_ring_seconds": 8}} for i in range(24)]
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with aiohttp.ClientSession() as s:
        async with s.post(f"{base}/api/jobs", json={"jobs": jobs}, headers=headers) as r:
            assert r.status == 200 and len((await r.json())["accepted"]) == 24
    await asyncio.sleep(3.5)  # calls are ringing now
    in_flight = sum(1 for c in emu.network.calls if c.outcome is None)
    os.kill(proc.pid, signal.SIGKILL)
    await proc.wait()
    proc = await start_appliance(tmp_path / "a.toml", log)
    try:
        await wait_api(base, proc)
        finals: dict[str, dict] = {}
        async with aiohttp.ClientSession() as s:
            async with asyncio.timeout(150):
                while len(finals) < len(jobs):
                    async with s.get(f"{base}/api/results?after=0&limit=1000", headers=headers) as r:
                        page = await r.json()
                    finals = {}
                    for item in page["results"]:
                        if item.get("final"):
                            assert item["job_id"] not in finals, f"two final results for {item['job_id']}"
                            finals[item["job_id"]] = item
                    await asyncio.sleep(0.2)
    finally:
        proc.send_signal(signal.SIGTERM)
        await proc.wait()
        log.close()
    dialed = Counter(c.callee for c in emu.network.calls)
    assert set(dialed) <= {j["callee"] for j in jobs}
    db = sqlite3.connect(tmp_path / "a.db")
    recorded = Counter(row[0] for row in db.execute("SELECT j.callee FROM attempts a JOIN jobs j ON j.id = a.job_id"))
    # Every real call had its attempt written first, and no attempt was dialed twice:
    # the network saw at most as many calls to a callee as attempts were recorded
    # (max_attempts = 1: more than one attempt only after a failure on our side).
    for callee, n in dialed.items():
        assert n <= recorded[callee], witness(emu, db, callee, n, recorded[callee])
    ours = {row[0] for row in db.execute(
        "SELECT j.callee FROM attempts a JOIN jobs j ON j.id = a.job_id"
        " WHERE json_extract(a.result, '$.outcome') IN ('channel_error', 'network_error')")}
    assert all(n == 1 for c, n in dialed.items() if c not in ours), dialed
    interrupted = [f for f in finals.values() if f["outcome"] == "interrupted"]
    assert in_flight == 0 or interrupted, "calls were up at the kill; their attempts must end interrupted"
    for f in interrupted:
        assert dialed[f["callee"]] <= 1 and f["number_shown"]  # not redialed after the restart
    assert len(finals) == len(jobs)
