"""``simrotor bench controller``: the controller's store and API under load.

The controller runs as a child process (``simrotor controller run`` on a temporary
store, loopback port); this process is the load: the CRM and one fake appliance over
the real WebSocket link. Bounded in count and time. Figures (one JSON document):

* ``import_per_second`` — contacts imported per second through ``POST
  /v1/campaigns/{id}/contacts`` (JSON, 100,000 rows per request): parse, validate
  (phonenumbers), upsert;
* ``dispatch_per_second`` — jobs built, checked against the contact rules and leased;
* ``ingest_per_second`` — final results persisted (dedupe, next step of the contact,
  results_ack) over the link, in batches of ``--batch``;
* ``api`` — latency percentiles of a mixed read load (results page, contact, history,
  campaign) sent open-loop at ``--rate`` requests/s for ``--seconds``.

Targets from issue 5: import ≥ 20,000/s, ingest ≥ 5,000/s, API p99 ≤ 50 ms at 200 req/s.
"""
from __future__ import annotations

import asyncio
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import click

from common.clikit import emit, json_option, run_async
from common.clock import iso

TARGETS = {"import_per_second": 20_000, "ingest_per_second": 5_000, "api_p99_ms": 50.0}
#: Rows per import request: the issue's "100,000 rows in one request".
IMPORT_CHUNK = 100_000


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


async def _bench(contacts: int, results: int, batch: int, seconds: float, rate: float, workdir: Path) -> dict[str, Any]:
    import aiohttp

    from controller.server import create_enroll_token, create_key
    from controller.store import Store

    port = _free_port()
    cfg = workdir / "controller.toml"
    cfg.write_text(f'[controller]\nstore = "c.db"\nlisten = "127.0.0.1:{port}"\n'
                   f'[dispatch]\ninterval_seconds = 0.2\nlease_seconds = 3600.0\nqueue_depth = 0\n')
    store = Store(workdir / "c.db")
    key = create_key(store, "bench", time.time())["key"]
    token = create_enroll_token(store, 600, time.time())["token"]
    store.close()
    proc = subprocess.Popen([sys.executable, "-c", "from controller.cli import controller; controller()", "run",
                             "--config", str(cfg), "--log-level", "WARNING"], stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    h = {"Authorization": f"Bearer {key}"}
    out: dict[str, Any] = {"contacts": contacts, "results": results, "batch": batch}
    try:
        async with aiohttp.ClientSession() as s:
            for _ in range(200):
                try:
                    async with s.get(f"{url}/openapi.json") as r:
                        if r.status == 200:
                            break
                except aiohttp.ClientError:
                    await asyncio.sleep(0.05)
            camp = {"id": "bench", "strategy": [{"kind": "call", "attempts": 3}],
                    "rules": {"hours": ["00:00", "23:59"], "daily_cap_per_number": 100, "max_attempts": 100}}
            async with s.post(f"{url}/v1/campaigns", json=camp, headers=h) as r:
                assert r.status == 201, await r.text()
            # -- import ------------------------------------------------------------------
            rng = random.Random(1)
            bodies = []
            for start in range(0, contacts, IMPORT_CHUNK):
                rows = [{"external_id": f"e{i}", "phones": [f"+48{rng.choice('5678')}{i % 100_000_000:08d}"],
                         "name": f"Dłużnik {i}", "case_ref": f"K/{i}", "amount": f"{rng.randint(100, 99999) / 100:.2f}",
                         "currency": "PLN", "due_date": "2026-03-01", "language": "pl"}
                        for i in range(start, min(contacts, start + IMPORT_CHUNK))]
                bodies.append(json.dumps(rows).encode())
            t0 = time.perf_counter()
            created = 0
            for body in bodies:
                async with s.post(f"{url}/v1/campaigns/bench/contacts", data=body,
                                  headers={**h, "Content-Type": "application/json"}) as r:
                    rep = await r.json()
                    created += rep["created"]
            took = time.perf_counter() - t0
            out["imported"] = created
            out["import_per_second"] = round(created / took)
            # -- dispatch then ingest --------------------------------------------------------
            async with s.post(f"{url}/v1/enroll", json={"token": token, "appliance_id": "bench-box"}) as r:
                cred = (await r.json())["credential"]
            ws = await s.ws_connect(f"{url}/v1/link", headers={"Authorization": f"Bearer {cred}"}, max_msg_size=0)
            await ws.send_str(json.dumps({"type": "hello", "appliance_id": "bench-box", "version": "bench", "channels": results,
                                          "idle": results, "capacity": results, "operators": {"26001": results}, "sims": []}))
            async with s.post(f"{url}/v1/campaigns/bench/start", headers=h) as r:  # a draft until now
                assert r.status == 200
            jobs: list[dict[str, Any]] = []
            t0 = time.perf_counter()
            deadline = time.monotonic() + 120
            while len(jobs) < results and time.monotonic() < deadline:
                msg = await ws.receive(timeout=30)
                data = json.loads(msg.data)
                if data["type"] == "jobs":
                    jobs.extend(data["jobs"])
                    await ws.send_str(json.dumps({"type": "ack", "batch_id": data["batch_id"],
                                                  "accepted": [j["id"] for j in data["jobs"]], "rejected": []}))
            # no new work while results stream in: ingest is measured alone
            await ws.send_str(json.dumps({"type": "heartbeat", "idle": 0, "capacity": 0, "queued": len(jobs)}))
            out["dispatched"] = len(jobs)
            out["dispatch_per_second"] = round(len(jobs) / (time.perf_counter() - t0))
            outcomes = ("no_answer", "busy", "answered_machine", "answered_human", "rejected")
            now_iso = iso(time.time(), ms=False)
            seq = 0
            frames = []
            for i in range(0, len(jobs), batch):
                chunk = []
                for j in jobs[i:i + batch]:
                    seq += 1
                    chunk.append({"job_id": j["id"], "kind": "call", "callee": j["callee"], "attempt": 1,
                                  "outcome": outcomes[seq % len(outcomes)], "cause": 19, "final": True, "seq": seq,
                                  "number_shown": "+48690000001", "sim_id": "s1", "channel_id": "m1",
                                  "dialed_at": now_iso, "ended_at": now_iso, "talk_seconds": 0.0})
                frames.append(json.dumps({"type": "results", "results": chunk}))
            t0 = time.perf_counter()
            for f in frames:
                await ws.send_str(f)
            acked = 0
            while acked < seq:
                data = json.loads((await ws.receive(timeout=60)).data)
                if data["type"] == "results_ack":
                    acked = data["upto"]
            took = time.perf_counter() - t0
            out["ingested"] = seq
            out["ingest_per_second"] = round(seq / took)
            await ws.close()
            # -- API latency ---------------------------------------------------------------
            latencies: list[float] = []
            errors = 0
            n_contacts = max(1, created)

            by_kind: dict[str, list[float]] = {}

            async def one(kind: str, path: str) -> None:
                nonlocal errors
                t = time.perf_counter()
                try:
                    async with s.get(url + path, headers=h) as r:
                        await r.read()
                        if r.status != 200:
                            errors += 1
                except aiohttp.ClientError:
                    errors += 1
                latencies.append((time.perf_counter() - t) * 1000)
                by_kind.setdefault(kind, []).append(latencies[-1])

            paths = [("results", lambda: f"/v1/results?after={rng.randint(0, max(1, seq))}&limit=100"),
                     ("contact", lambda: f"/v1/contacts/{rng.randint(1, n_contacts)}"),
                     ("history", lambda: f"/v1/contacts/{rng.randint(1, n_contacts)}/history"),
                     ("campaign", lambda: "/v1/campaigns/bench")]
            total = int(seconds * rate)
            tasks = []
            t_start = time.perf_counter()
            for i in range(total):
                delay = t_start + i / rate - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                kind, make = paths[i % len(paths)]
                tasks.append(asyncio.create_task(one(kind, make())))
            await asyncio.gather(*tasks)
            out["api"] = {"rate": rate, "requests": total, "errors": errors,
                          "achieved_rate": round(total / (time.perf_counter() - t_start), 1),
                          "p50_ms": round(_pct(latencies, 50), 2), "p99_ms": round(_pct(latencies, 99), 2),
                          "max_ms": round(max(latencies), 2),
                          "p99_ms_by_kind": {k: round(_pct(v, 99), 2) for k, v in sorted(by_kind.items())}}
    finally:
        proc.terminate()
        proc.wait(10)
    out["targets"] = TARGETS
    out["ok"] = (out.get("import_per_second", 0) >= TARGETS["import_per_second"]
                 and out.get("ingest_per_second", 0) >= TARGETS["ingest_per_second"]
                 and out.get("api", {}).get("p99_ms", 1e9) <= TARGETS["api_p99_ms"])
    out["cpu_count"] = os.cpu_count()
    return out


@click.command()
@click.option("--contacts", type=click.IntRange(1, 1_000_000), default=100_000, show_default=True,
              help="Contacts to import (in requests of 100,000).")
@click.option("--results", type=click.IntRange(1, 200_000), default=20_000, show_default=True,
              help="Jobs dispatched and results ingested.")
@click.option("--batch", type=click.IntRange(1, 5000), default=500, show_default=True, help="Results per link message.")
@click.option("--seconds", type=click.FloatRange(1, 120), default=10.0, show_default=True, help="API load duration.")
@click.option("--rate", type=click.FloatRange(1, 2000), default=200.0, show_default=True, help="API requests per second.")
@json_option
def controller(contacts: int, results: int, batch: int, seconds: float, rate: float, as_json: bool) -> None:
    """Controller throughput: import, dispatch, result ingest, API latency under load.

    \b
    Example:
      simrotor bench controller --json
      simrotor bench controller --contacts 1000000 --results 50000 --json
    """
    results = min(results, contacts)
    with tempfile.TemporaryDirectory(prefix="simrotor-bench-") as d:
        emit(run_async(_bench(contacts, results, batch, seconds, rate, Path(d))), as_json)
