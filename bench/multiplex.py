"""``simrotor bench multiplex``: the appliance's multiplexer under load.

The emulator runs in its own process (or ``--ports GLOB`` points at any bank of AT
ports); the appliance runs in this process so its internals can be timed. Figures:

* ``open_seconds`` — bank start: every modem opened, identified, SIMs read;
* ``at_rtt_ms`` p50/p99 — AT+CSQ round trips during the workload (fast timing injects
  no delay, so this is overhead);
* ``appliance_cpu_us_per_at`` — this process's user+sys CPU over the job workload
  divided by the AT transactions all ports completed: *everything* a job costs (store
  commits, rotation, call state machine, results) charged to its ~3 AT transactions;
  ``appliance_cpu_split_us_per_at`` splits it into user and system time;
* ``multiplexer_cpu_us_per_at`` — after the jobs, an AT-only phase through the same
  running appliance (bank supervision live, every port sending ``--at-rounds`` AT+CSQ at
  once): the CPU the bank and its ports spend per AT transaction, without job work;
* ``decision_us`` — mean cost of one rotation decision in the scheduler;
* ``dispatch_ms`` p50/p99 — channel free → the job's executor running (its first AT
  command is written from there);
* ``rss_kib_per_channel`` — peak RSS growth over the run, per channel;
* ``answer_seen_ms`` p50/p99 — the emulator signals an answer (its CLOCK_MONOTONIC stamp,
  read back from its control API) → this process has the call ACTIVE (same clock): the
  URC's trip through the pty, the parser, the port and the modem's call state machine;
* in realistic timing, ``calls_per_minute`` achieved and ``theoretical_calls_per_minute``
  (channels × 60 / mean call hold time as the results report it) and their ratio — the
  share of channel time spent in calls (dial to release) rather than between them, over
  the steady window from the first dispatch to the last (the tail, when channels idle
  because the queue is empty, is not the multiplexer's doing). Only calls count as busy
  channel time, so measure it with ``--sms-per-modem 0`` (SMS in the mix would show up as
  idle time).
"""
from __future__ import annotations

import asyncio
import contextlib
import glob
import random
import resource
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import click

from common.clikit import emit, fail, install_event_loop_policy, json_option, raise_nofile_limit
from common.clock import parse_iso


def _cpu() -> tuple[float, float]:
    """(user, system) CPU seconds of this process: system time is mostly the kernel's tty
    layer (one write per command, one read per burst), user time is ours."""
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime, ru.ru_stime


def _q(values: list[float], p: float) -> float | None:
    if not values:
        return None
    v = sorted(values)
    return v[min(len(v) - 1, int(p * len(v)))]


def _ts(s: str | None) -> float | None:
    return parse_iso(s) if s else None


async def answer_latencies(control: str | None, finals: dict[str, dict[str, Any]], polled: set[str]) -> list[float]:
    """Emulator's answer stamp → this process' answer stamp, per answered call (same host:
    both are CLOCK_MONOTONIC). Matched by callee: each bench callee is called once. Modems
    without call-progress URCs (``polled``: paced AT+CLCC) are left out: their answer is
    seen at the next poll by design."""
    if not control:
        return []
    import aiohttp

    async with aiohttp.ClientSession() as s, s.get(control + "/calls") as r:
        calls = await r.json()
    sent = {c["callee"]: c.get("answered_monotonic") for c in calls if c.get("answered_monotonic")}
    out = []
    for r in finals.values():
        seen = r.get("answered_monotonic")
        if seen is not None and r.get("callee") in sent and r.get("channel_id") not in polled:
            out.append(seen - sent[r["callee"]])
    return out


async def at_only_phase(ports: list[Any], rounds: int) -> dict[str, Any] | None:
    """Every port sends ``rounds`` AT+CSQ back to back, all ports at once, through the
    running appliance; CPU of this process per completed transaction."""
    if rounds <= 0:
        return None

    async def one(port: Any) -> None:
        for _ in range(rounds):
            with contextlib.suppress(Exception):
                await port.command("AT+CSQ", expect="+CSQ")

    n0 = sum(p.commands_done for p in ports)
    c0 = _cpu()
    t0 = time.perf_counter()
    await asyncio.gather(*(one(p) for p in ports))
    wall = time.perf_counter() - t0
    c1 = _cpu()
    n = max(sum(p.commands_done for p in ports) - n0, 1)
    return {"transactions": n, "seconds": round(wall, 3),
            "total": round((c1[0] - c0[0] + c1[1] - c0[1]) / n * 1e6, 1),
            "user": round((c1[0] - c0[0]) / n * 1e6, 1), "system": round((c1[1] - c0[1]) / n * 1e6, 1)}


async def run_multiplex(modems: list[dict[str, Any]], *, calls_per_modem: int, sms_per_modem: int, hold: float,
                        numbers: list[str] | None, seed: int, csq_rounds: int, control: str | None = None,
                        at_rounds: int = 20) -> dict[str, Any]:
    from appliance.config import parse_config
    from appliance.runtime import Appliance
    from common.heap import freeze_startup_heap, tune_gc

    tmp = tempfile.mkdtemp(prefix="simrotor-bench-")
    cfg = parse_config({
        "appliance": {"id": "bench", "store": f"{tmp}/a.db", "listen": "", "token": "x"},
        "modem": [{"id": m["id"], "port": m["port"], "slots": 1} for m in modems],
        "limits": {"calls_per_hour": None, "calls_per_day": None, "sms_per_hour": None, "sms_per_day": None,
                   "min_pause_seconds": 0.0, "pause_after_call": [0.0, 0.0], "max_call_seconds_per_day": None},
        "lock": {"consecutive_failed": None, "consecutive_not_alerting": None},
        # hangup at answer unless the bench holds calls (max_talk_seconds only bounds a hold)
        "calls": {"max_ring_seconds": 30.0, "max_talk_seconds": hold if hold > 0 else 60.0,
                  "on_answer": "hold" if hold > 0 else "hangup"},
        "retry": {"max_attempts": 1},
        "sms": {"report_timeout_seconds": 120.0},
        "supervision": {"check_interval_seconds": 3600.0},
        "ussd": {"balance_code": ""},
        "operator_prefixes": {"+4860": "26001"},
    })
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    app = Appliance(cfg, seed=seed)
    tune_gc()  # the appliance process' collector settings (appliance/runtime.py)
    t0 = time.perf_counter()
    await app.bank.start()
    await app.scheduler.start()
    open_seconds = time.perf_counter() - t0
    freeze_startup_heap()  # as ``Appliance.run_forever`` does
    rng = random.Random(seed)
    n = len(modems)
    jobs: list[dict[str, Any]] = []
    for i in range(calls_per_modem * n):
        callee = numbers[i % len(numbers)] if numbers else f"+4860{rng.randrange(4)}0{i:05d}"
        jobs.append({"id": f"c{i}", "kind": "call", "callee": callee})
    for i in range(sms_per_modem * n):
        callee = numbers[i % len(numbers)] if numbers else f"+4860{rng.randrange(4)}0{i + 50000:05d}"
        jobs.append({"id": f"s{i}", "kind": "sms", "callee": callee, "text": "Przypomnienie o płatności."})
    from appliance.jobspec import validate_batch

    good, errors = validate_batch(jobs)
    assert not errors, errors
    ports = [m.port for m in app.bank.modems.values()]
    polled = {cid for cid, m in app.bank.modems.items() if m.call_progress_polled}
    at0 = sum(p.commands_done for p in ports)
    cpu0 = _cpu()
    w0 = time.perf_counter()
    w0_wall = time.time()
    done = asyncio.Event()
    finals: dict[str, dict[str, Any]] = {}

    def on_result(r: dict[str, Any]) -> None:
        if r.get("final"):
            finals[r["job_id"]] = r
            if len(finals) >= len(good):
                done.set()

    app.scheduler.result_listeners.append(on_result)
    rtts: list[float] = []

    async def csq_probe() -> None:
        # AT round trips measured on idle moments of the bank, one modem at a time.
        for i in range(csq_rounds):
            m = list(app.bank.modems.values())[i % n]
            s = time.perf_counter()
            with contextlib.suppress(Exception):
                await m.port.command("AT+CSQ", expect="+CSQ")
                rtts.append(time.perf_counter() - s)
            await asyncio.sleep(0)

    app.scheduler.submit(good)
    probe = asyncio.ensure_future(csq_probe())
    await done.wait()
    await probe
    wall = time.perf_counter() - w0
    cpu1 = _cpu()
    user, system = cpu1[0] - cpu0[0], cpu1[1] - cpu0[1]
    cpu = user + system
    at_done = sum(p.commands_done for p in ports) - at0
    rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    stats = app.scheduler.stats()
    lat = list(app.scheduler.dispatch_latencies)
    last_dispatch = app.scheduler.last_dispatch_at
    mux = await at_only_phase(ports, at_rounds)
    await app.scheduler.close()
    await app.bank.close()
    app.store.close()
    calls = [r for r in finals.values() if r.get("kind") == "call"]
    answers = await answer_latencies(control, finals, polled)
    holds = [(_ts(r.get("ended_at")) or 0) - (_ts(r.get("dialed_at")) or 0) for r in calls if r.get("ended_at") and r.get("dialed_at")]
    out: dict[str, Any] = {
        "channels": n,
        "jobs": len(good),
        "outcomes": dict(sorted({o: sum(1 for r in finals.values() if r.get("outcome") == o) for o in {r.get("outcome") for r in finals.values()}}.items())),
        "open_seconds": round(open_seconds, 3),
        "workload_seconds": round(wall, 3),
        "at_transactions": at_done,
        "appliance_cpu_us_per_at": round(cpu / max(at_done, 1) * 1e6, 1),
        "appliance_cpu_split_us_per_at": {"user": round(user / max(at_done, 1) * 1e6, 1),
                                          "system": round(system / max(at_done, 1) * 1e6, 1)},
        "appliance_cpu_us_per_job": round(cpu / max(len(good), 1) * 1e6, 1),
        "multiplexer_cpu_us_per_at": mux,
        "at_rtt_ms": {"p50": round((_q(rtts, 0.5) or 0) * 1e3, 3), "p99": round((_q(rtts, 0.99) or 0) * 1e3, 3)},
        "decision_us": stats["decision_us"],
        "decisions": stats["decisions"],
        "dispatch_ms": {"p50": round((_q(lat, 0.5) or 0) * 1e3, 3), "p99": round((_q(lat, 0.99) or 0) * 1e3, 3),
                        "samples": len(lat)},
        "rss_kib_per_channel": round((rss1 - rss0) / n, 1),
        "answer_seen_ms": {"p50": round((_q(answers, 0.5) or 0) * 1e3, 3), "p99": round((_q(answers, 0.99) or 0) * 1e3, 3),
                           "samples": len(answers), "polled_modems_left_out": len(polled)},
    }
    if holds:
        mean_hold = statistics.fmean(holds)
        theoretical = n * 60.0 / mean_hold if mean_hold > 0 else None
        # Steady state: calls completed while the queue still had work (up to the last
        # dispatch), so the tail of the run — channels idle because nothing is left —
        # does not count against the multiplexer.
        # The share of channel time spent in calls over that window (each call's
        # [dialed, ended] clipped to it) is achieved / theoretical.
        end = last_dispatch or (w0_wall + wall)
        window = max(end - w0_wall, 1e-9)
        busy = 0.0
        for r in calls:
            a, b = _ts(r.get("dialed_at")), _ts(r.get("ended_at"))
            if a is not None and b is not None:
                busy += max(0.0, min(b, end) - max(a, w0_wall))
        utilisation = busy / (n * window)
        achieved = (theoretical or 0.0) * utilisation if window > mean_hold else len(calls) / wall * 60.0
        out["steady_window_seconds"] = round(window, 3)
        out["calls_per_minute"] = round(achieved, 1)
        out["mean_call_seconds"] = round(mean_hold, 3)
        if theoretical:
            out["theoretical_calls_per_minute"] = round(theoretical, 1)
            out["calls_ratio"] = round(achieved / theoretical, 4)
    return out


@click.command()
@click.option("--modems", type=int, default=64, show_default=True, help="Emulated modems (ignored with --ports).")
@click.option("--timing", type=click.Choice(["fast", "realistic"]), default="fast", show_default=True)
@click.option("--ports", "ports_glob", default=None, help="Run against existing AT ports (a glob), not the emulator.")
@click.option("--to", "numbers", default=None, help="With --ports: comma-separated test numbers you own to call/text.")
@click.option("--calls-per-modem", type=int, default=4, show_default=True)
@click.option("--sms-per-modem", type=int, default=1, show_default=True)
@click.option("--hold", type=float, default=0.0, show_default=True, help="Seconds to hold an answered call (0: hang up on answer).")
@click.option("--csq-rounds", type=int, default=500, show_default=True, help="AT+CSQ round trips measured during the run.")
@click.option("--at-rounds", type=int, default=20, show_default=True,
              help="AT+CSQ per port in the AT-only phase after the jobs (0: skip it).")
@click.option("--seed", type=int, default=1, show_default=True)
@json_option
def multiplex(modems: int, timing: str, ports_glob: str | None, numbers: str | None, calls_per_modem: int,
              sms_per_modem: int, hold: float, csq_rounds: int, at_rounds: int, seed: int, as_json: bool) -> None:
    """The appliance's multiplexer under load: AT cost, decision cost, dispatch latency,
    memory per channel, and in realistic timing calls per minute against the maximum.

    \b
    Examples:
      simrotor bench multiplex --modems 256 --timing fast --json
      simrotor bench multiplex --modems 64 --timing realistic --hold 5 --json
      simrotor bench multiplex --ports '/dev/serial/by-id/*if02*' --to +48600000123 --json
    """
    from bench._emulated import emulator_process

    raise_nofile_limit()
    out: dict[str, Any] = {"benchmark": "multiplex", "timing": timing}
    number_list = [n.strip() for n in numbers.split(",")] if numbers else None
    if ports_glob:
        paths = sorted(glob.glob(ports_glob))
        if not paths:
            fail(f"no port matches {ports_glob!r}", code=2, as_json=as_json)
        if not number_list:
            calls_per_modem = sms_per_modem = 0  # never call a real network without numbers we own
        bank = [{"id": Path(p).name, "port": p} for p in paths]
        out["loop"] = install_event_loop_policy()
        out.update(asyncio.run(run_multiplex(bank, calls_per_modem=calls_per_modem, sms_per_modem=sms_per_modem,
                                             hold=hold, numbers=number_list, seed=seed, csq_rounds=csq_rounds,
                                             at_rounds=at_rounds)))
    else:
        with emulator_process(modems, timing=timing, seed=seed) as state:
            out["loop"] = install_event_loop_policy()
            out.update(asyncio.run(run_multiplex(state["modems"], calls_per_modem=calls_per_modem,
                                                 sms_per_modem=sms_per_modem, hold=hold, numbers=None, seed=seed,
                                                 csq_rounds=csq_rounds, control=state.get("control"),
                                                 at_rounds=at_rounds)))
    emit(out, as_json)
