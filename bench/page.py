"""``simrotor bench page``: what one look of the technician page costs as the bank grows.

Every open page's event stream looks at the status up to 2 times a second
(appliance/technician/live.py), in the appliance's event loop, so a look must stay small
beside the modems' work. Built in this process, nothing emulated (no port is opened):
N modems with 2 SIM slots, each SIM with ``--calls-per-sim`` call starts and a few SMS in
the rolling day in the rotation policy, a few SIMs quarantined and locked with evidence,
and an events table in a real SQLite store filled with ``--events`` rows (a third of them
routine balance checks and slot switches). Figures (one JSON document):

* ``sims_ms`` — every SIM of every slot with its usage and standing (``sim_rows``);
* ``events_ms`` — the newest 500 events read and put in words (``trouble``);
* ``traffic_ms`` — one reading of the last hour (``Traffic.read``: ``--calls-per-hour``
  finished call attempts per modem in the store's attempts, behind a day of older ones,
  summed per SIM, operator and modem, and both SVG charts drawn); a page keeps a reading
  5 s (``REFRESH_SECONDS``), so a look pays a tenth of it at 2 looks a second;
* ``look_ms`` — the SIMs and events per look plus that share of the last hour (medians of
  ``--looks``); ``core_share_at_2_looks`` — a core's share one open page takes at the
  stream's most frequent looks.
"""
from __future__ import annotations

import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import click

from common.clikit import emit, json_option

OPERATORS = ("26001", "26002", "26003", "26006")


def build(modems: int, calls_per_sim: int, events: int, store_path: Path, rng: random.Random,
          calls_per_hour: int = 0) -> tuple[Any, ...]:
    from appliance.bank import Bank
    from appliance.channel import Channel, SlotSim
    from appliance.rotation import JobKind, RotationPolicy, SimLimits, SimRef
    from appliance.store import Store
    from modem_drivers.types import PinState, SimInfo

    now = 1_800_000_000.0
    policy = RotationPolicy(limits=SimLimits(calls_per_day=max(150, calls_per_sim), sms_per_day=200))
    channels = []
    for m in range(modems):
        ch = Channel(f"m{m:04d}", f"/dev/ttyUSB{m}", 2)
        for slot in range(2):
            iccid = f"8948{m:08d}{slot:08d}"
            op = OPERATORS[(m + slot) % len(OPERATORS)]
            info = SimInfo(PinState.READY, iccid, None, op, "Operator", f"+48600{m:05d}{slot}")
            ch.sims[slot] = SlotSim(slot, iccid, info)
            policy.add_sim(SimRef(iccid, info.msisdn or iccid, op, ch.id, slot), now=now - 86_000)
            for k in range(calls_per_sim):
                policy.record_start(iccid, JobKind.CALL, now - 86_000 + k * (86_000 / calls_per_sim))
            for k in range(5):
                policy.record_start(iccid, JobKind.SMS, now - 3_000 + k)
            if rng.random() < 0.05:
                policy.quarantine(iccid, (f"job j{m}: cause 21 without alerting at 2026-12-07T02:00:00Z",), now)
        channels.append(ch)
    bank = Bank(channels)
    store = Store(store_path)
    kinds = [("balance", {"balance": 12.5}), ("channel", {"from": "idle", "to": "switching_sim", "reason": "planned"}),
             ("channel", {"from": "idle", "to": "faulty", "reason": "not answering"}),
             ("sim_locked", {"rule": "consecutive_failed", "until": now + 3600, "evidence": ["job j: failed"]})]
    with store.conn:
        store.conn.executemany("INSERT INTO events(at, kind, subject, detail) VALUES (?,?,?,?)",
                               ((now - events + i, *_row(kinds[i % len(kinds)], i)) for i in range(events)))
        rows = list(_attempts(channels, calls_per_hour, now, rng))  # the last 24 h, oldest first (ids grow with time)
        store.conn.executemany("INSERT INTO jobs(id, kind, callee, spec, state, created_at, updated_at)"
                               " VALUES (?, 'call', '+48600000100', '{}', 'done', ?, ?)", ((r[0], r[3], r[4]) for r in rows))
        store.conn.executemany("INSERT INTO attempts(job_id, n, sim_id, channel_id, state, started_at, ended_at, result)"
                               " VALUES (?,1,?,?,'finished',?,?,?)", rows)
    return bank, policy, store, now


def _attempts(channels: list[Any], calls_per_hour: int, now: float, rng: random.Random) -> Any:
    import json

    from common.clock import iso

    total = 24 * calls_per_hour
    for k in range(total):
        t = now - 86_400 + k * 86_400 / max(total, 1)
        for ch in channels:
            sim = ch.sims[0].sim_id
            answered = rng.random() < 0.45
            result = {"kind": "call", "outcome": "answered_human" if answered else "no_answer", "dialed_at": iso(t),
                      "alerting_at": iso(t + rng.uniform(1, 4)), "answered_at": iso(t + 6) if answered else None,
                      "talk_seconds": rng.uniform(5, 60) if answered else 0.0}
            yield f"j{k}-{ch.id}", sim, ch.id, t, t + 40, json.dumps(result)


def _row(kind_detail: tuple[str, dict[str, Any]], i: int) -> tuple[str, str, str]:
    import json

    kind, detail = kind_detail
    return kind, f"m{i % 500:04d}" if kind == "channel" else f"8948{i:016d}", json.dumps(detail)


@click.command()
@click.option("--modems", type=click.IntRange(1, 4096), default=256, show_default=True, help="Modems (2 SIM slots each).")
@click.option("--calls-per-sim", type=click.IntRange(0, 10_000), default=150, show_default=True,
              help="Call starts per SIM in the rolling day (the default per-day cap).")
@click.option("--events", type=click.IntRange(0, 1_000_000), default=100_000, show_default=True,
              help="Rows in the events table (its bound is 100,000).")
@click.option("--calls-per-hour", type=click.IntRange(0, 600), default=30, show_default=True,
              help="Finished call attempts per modem per hour in the store (the last hour's charts and ASR/ACD/PDD).")
@click.option("--looks", type=click.IntRange(1, 1000), default=20, show_default=True)
@json_option
def page(modems: int, calls_per_sim: int, events: int, calls_per_hour: int, looks: int, as_json: bool) -> None:
    """Time one look of the technician page (its SIM table and its events in words).

    \b
    Example:
      simrotor bench page --modems 256 --calls-per-sim 150 --json
    """
    from appliance.technician.sims import sim_rows
    from appliance.technician.traffic import REFRESH_SECONDS, Traffic
    from appliance.technician.words import SCAN_ROWS, trouble

    with tempfile.TemporaryDirectory() as tmp:
        bank, policy, store, now = build(modems, calls_per_sim, events, Path(tmp) / "bench.db", random.Random(1),
                                         calls_per_hour)
        sims_ms, events_ms, traffic_ms = [], [], []
        traffic = Traffic(store, bank, clock=lambda: now)
        for _ in range(looks):
            t0 = time.perf_counter()
            hour = traffic.read(now)
            traffic_ms.append((time.perf_counter() - t0) * 1e3)
        for _ in range(looks):
            t0 = time.perf_counter()
            rows = sim_rows(bank, policy, now)
            t1 = time.perf_counter()
            shown = trouble(store.recent_events(SCAN_ROWS), 20)
            t2 = time.perf_counter()
            sims_ms.append((t1 - t0) * 1e3)
            events_ms.append((t2 - t1) * 1e3)
        store.close()
    hour_share = statistics.median(traffic_ms) * 0.5 / REFRESH_SECONDS  # one reading per 10 looks at 2 a second
    look = statistics.median(s + e for s, e in zip(sims_ms, events_ms, strict=True)) + hour_share
    emit({
        "modems": modems, "sims": len(rows), "calls_per_sim": calls_per_sim, "events": events, "looks": looks,
        "events_shown": len(shown), "calls_last_hour": hour["calls"],
        "sims_ms": round(statistics.median(sims_ms), 2),
        "events_ms": round(statistics.median(events_ms), 2),
        "traffic_ms": round(statistics.median(traffic_ms), 2),
        "look_ms": round(look, 2),
        "core_share_at_2_looks": round(2 * look / 1000, 3),
    }, as_json)
