"""`kill -9` of the controller process: what it acknowledged is on disk, and after a
restart no job is handed out again before its lease has expired."""
from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time

import aiohttp

from controller.server import create_enroll_token, create_key
from controller.store import Store
from controller_harness import FakeAppliance
from system_harness import free_port

HOURS = {"hours": ["00:00", "23:59"]}  # real clock: any hour of the day will do



async def start(cfg, port):
    proc = subprocess.Popen([sys.executable, "-c", "from controller.cli import controller; controller()", "run",
                             "--config", str(cfg), "--log-level", "WARNING"])
    async with aiohttp.ClientSession() as s:
        for _ in range(200):
            try:
                async with s.get(f"http://127.0.0.1:{port}/openapi.json") as r:
                    if r.status == 200:
                        return proc
            except aiohttp.ClientError:
                await asyncio.sleep(0.05)
    proc.kill()
    raise AssertionError("controller did not start")


async def test_kill_9_loses_no_acked_result_and_respects_leases(tmp_path, store_url):
    port = free_port()
    cfg = tmp_path / "controller.toml"
    cfg.write_text(f'[controller]\nlisten = "127.0.0.1:{port}"\n[store]\nurl = "{store_url}"\n'
                   '[dispatch]\ninterval_seconds = 0.05\nlease_seconds = 20.0\n')
    store = Store(store_url)
    key = create_key(store, "t", time.time())["key"]
    token = create_enroll_token(store, 600, time.time())["token"]
    store.close()
    url = f"http://127.0.0.1:{port}"
    h = {"Authorization": f"Bearer {key}"}
    proc = await start(cfg, port)
    try:
        async with aiohttp.ClientSession() as s:
            async with s.post(f"{url}/v1/campaigns", json={"id": "c1", "start": True, "strategy": [{"kind": "call"}], "rules": HOURS},
                              headers=h) as r:
                assert r.status == 201
            contacts = [{"external_id": f"d{i}", "phones": [f"+4860010020{i}"]} for i in range(4)]
            async with s.post(f"{url}/v1/campaigns/c1/contacts", json=contacts, headers=h) as r:
                assert (await r.json())["created"] == 4
            async with s.post(f"{url}/v1/enroll", json={"token": token, "appliance_id": "box-01"}) as r:
                cred = (await r.json())["credential"]
            app = FakeAppliance(s, url, cred)
            await app.connect(capacity=4)
            batch = await app.expect("jobs")
            jobs = sorted(batch["jobs"], key=lambda j: j["id"])
            assert len(jobs) == 4
            await app.ack(batch)
            await app.send({"type": "results", "results": [app.result(j, "no_answer") for j in jobs[:2]]})
            assert (await app.expect("results_ack"))["upto"] == 2
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(5)
            await app.close()
            proc = await start(cfg, port)
            async with s.get(f"{url}/v1/results", headers=h) as r:
                got = (await r.json())["items"]
            assert sorted(r["job_id"] for r in got) == [j["id"] for j in jobs[:2]]
            app = FakeAppliance(s, url, cred)
            await app.connect(capacity=4)
            # the two unfinished jobs are still leased: nothing is handed out again
            try:
                extra = await app.expect("jobs", timeout=1.0)
            except TimeoutError:
                extra = None
            assert extra is None, extra
            # the appliance delivers its outbox after reconnecting (a duplicate included)
            await app.send({"type": "results", "results": [app.result(jobs[1], "no_answer", seq=2),
                                                            app.result(jobs[2], "answered_human", seq=3),
                                                            app.result(jobs[3], "busy", seq=4)]})
            await app.expect("results_ack")
            async with s.get(f"{url}/v1/results", headers=h) as r:
                got = (await r.json())["items"]
            assert [r["job_id"] for r in got] == [j["id"] for j in jobs]
            async with s.get(f"{url}/v1/campaigns/c1", headers=h) as r:
                assert (await r.json())["contacts"]["done"] == 4
            await app.close()
    finally:
        proc.terminate()
        proc.wait(10)
