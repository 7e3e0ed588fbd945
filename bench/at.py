"""``simrotor bench at``: the AT layer's cost, with the emulator in another process.

Figures (printed as one JSON document):

* ``parser_us_per_line`` — AtParser alone on a prepared byte stream (no I/O);
* ``open_identify_seconds`` — time to open N ports and identify N modems (``Modem.open``:
  AT, ATE0, ATV1, CMEE, CGMI, CGMM, CGMR, CGSN, CPIN?, and the dialect's set-up);
* ``rtt_ms`` p50/p99 of ``AT+CSQ`` transactions with every modem busy at once (this
  includes queueing: N modems share 2 cores), and ``rtt_ms_single_modem`` with one
  command at a time; in fast timing the emulator injects no delay, so both are all
  overhead (both processes' software, the pty and the scheduler);
* ``driver_cpu_us_per_transaction`` — user+sys CPU of this process (``resource``) over
  the workload, divided by the transactions done;
* ``rss_kib_per_modem`` — growth of peak RSS from before opening to after, per modem;
* ``threads`` — threads in this process (one: no thread per port).
"""
from __future__ import annotations

import asyncio
import resource
import statistics
import threading
import time
from typing import Any

import click

from common.clikit import emit, json_option


def parser_cost(lines: int = 20000) -> float:
    from modem_drivers.at import NEED_DATA, AtParser

    chunk = (
        b"\r\n+CSQ: 20,99\r\n\r\nOK\r\n"
        b"\r\n+CMTI: \"SM\",3\r\n"
        b'\r\n+CLCC: 1,0,3,0,0,"+48600000123",145\r\n'
    )
    per_chunk_lines = 4
    data = chunk * (lines // per_chunk_lines)
    parser = AtParser()
    t0 = time.perf_counter()
    pos = 0
    step = 4096
    count = 0
    parser.begin("AT+CSQ", expect=("+CSQ",))
    while pos < len(data):
        parser.receive_data(data[pos : pos + step])
        pos += step
        while True:
            ev = parser.next_event()
            if ev is NEED_DATA:
                break
            count += 1
            if type(ev).__name__ == "Final":
                parser.begin("AT+CSQ", expect=("+CSQ",))
    elapsed = time.perf_counter() - t0
    return elapsed / max(count, 1) * 1e6


def _cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def _rss_kib() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


async def run_at_bench(ports: list[str], rounds: int, concurrency_open: int = 256) -> dict[str, Any]:
    from modem_drivers.modem import Modem

    rss0 = _rss_kib()
    sem = asyncio.Semaphore(concurrency_open)

    async def open_one(url: str) -> Modem:
        async with sem:
            return await Modem.open(url, reconnect=False)

    t0 = time.perf_counter()
    results = await asyncio.gather(*(open_one(p) for p in ports), return_exceptions=True)
    open_seconds = time.perf_counter() - t0
    modems = [m for m in results if not isinstance(m, BaseException)]
    failures = [repr(e) for e in results if isinstance(e, BaseException)]

    rtts: list[float] = []

    async def worker(m: Modem) -> None:
        for _ in range(rounds):
            s = time.perf_counter()
            await m.port.command("AT+CSQ", expect="+CSQ")
            rtts.append(time.perf_counter() - s)

    cpu0 = _cpu()
    w0 = time.perf_counter()
    await asyncio.gather(*(worker(m) for m in modems))
    wall = time.perf_counter() - w0
    cpu = _cpu() - cpu0
    transactions = len(rtts)
    # One modem alone, one command at a time: the per-transaction overhead without
    # queueing behind the other modems' traffic.
    solo: list[float] = []
    if modems:
        for _ in range(200):
            s = time.perf_counter()
            await modems[0].port.command("AT+CSQ", expect="+CSQ")
            solo.append(time.perf_counter() - s)
        solo.sort()
    rss1 = _rss_kib()
    threads = threading.active_count()
    await asyncio.gather(*(m.close() for m in modems), return_exceptions=True)
    rtts.sort()
    q = statistics.quantiles(rtts, n=100) if len(rtts) >= 2 else [0.0] * 99
    return {
        "modems_requested": len(ports),
        "modems_opened": len(modems),
        "open_failures": failures[:5],
        "open_identify_seconds": round(open_seconds, 3),
        "transactions": transactions,
        "workload_seconds": round(wall, 3),
        "transactions_per_second": round(transactions / wall, 1) if wall else None,
        "rtt_ms": {"p50": round(q[49] * 1e3, 3), "p99": round(q[98] * 1e3, 3)},
        "rtt_ms_single_modem": {"p50": round(solo[len(solo) // 2] * 1e3, 3), "p99": round(solo[int(len(solo) * 0.99)] * 1e3, 3)} if solo else None,
        "rtt_note": "fast timing injects no delay, so RTT is all overhead; rtt_ms is with every modem busy at once (queueing on 2 cores), rtt_ms_single_modem one command at a time",
        "driver_cpu_us_per_transaction": round(cpu / max(transactions, 1) * 1e6, 1),
        "rss_kib_per_modem": round((rss1 - rss0) / max(len(modems), 1), 1),
        "threads": threads,
    }


@click.command()
@click.option("--modems", type=int, default=64, show_default=True)
@click.option("--timing", type=click.Choice(["fast", "realistic"]), default="fast", show_default=True)
@click.option("--rounds", type=int, default=50, show_default=True, help="AT+CSQ transactions per modem.")
@click.option("--vendors", default=None, help="Vendors of the emulated modems (default: all four, round-robin).")
@json_option
def at(modems: int, timing: str, rounds: int, vendors: str | None, as_json: bool) -> None:
    """AT layer cost: parser µs/line, open+identify time, RTT p50/p99, driver CPU per
    transaction, RSS per modem, threads — emulator in a separate process.

    \b
    Example:
      simrotor bench at --modems 256 --timing fast --json
    """
    from bench._emulated import emulator_process
    from common.clikit import install_event_loop_policy, raise_nofile_limit

    soft, hard = raise_nofile_limit()
    out: dict[str, Any] = {"benchmark": "at", "modems": modems, "timing": timing, "nofile_limit": soft}
    out["parser_us_per_line"] = round(parser_cost(), 3)
    with emulator_process(modems, timing=timing, vendors=vendors) as state:
        ports = [m["port"] for m in state["modems"]]
        out["loop"] = install_event_loop_policy()
        out.update(asyncio.run(run_at_bench(ports, rounds)))
    emit(out, as_json)
