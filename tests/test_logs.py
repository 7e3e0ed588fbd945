"""Logs are machine-readable and bounded (issue 12 item 8 and "Structured logs"): every
line a real appliance run writes is one JSON object, exceptions included; the text
format is one line per event; a hot loop of log calls cannot flood the stream."""
from __future__ import annotations

import asyncio
import io
import json
import logging
import signal
import subprocess
import sys
from datetime import datetime

import aiohttp
import pytest

from appliance.store import Store
from modem_drivers.emulator import Timing
from common.logs import (OVERFLOW, RATE_BURST, RATE_INTERVAL_SECONDS, RATE_TOTAL_BURST, Throttle,
                               setup_logging)
from system_harness import free_port

TOKEN = "logs-token-0123456789"
CALLEE = "+48600000123"


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def capture():
    """Route the process' logging into a buffer through ``setup_logging``, and put the
    root logger back afterwards."""
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    buf = io.StringIO()
    clock = FakeClock()
    handlers = []

    def install(fmt: str = "json", **kw):
        root.handlers[:] = []  # pytest's capture handler (added for the call) would re-raise what ours handles
        throttle = kw.pop("throttle", None) or Throttle(clock=clock)
        handlers.append(setup_logging(fmt, "DEBUG", stream=buf, throttle=throttle, hooks=False, **kw))
        return buf, clock

    yield install
    for h in handlers:
        h.close()
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])
    logging.captureWarnings(False)


def lines(buf: io.StringIO) -> list[str]:
    return buf.getvalue().splitlines()


def test_json_line_carries_fields_and_the_traceback_as_one_string(capture):
    buf, _ = capture("json")
    log = logging.getLogger("appliance.bank")
    try:
        raise RuntimeError(f"modem rejected ATD{CALLEE};\nsecond line")
    except RuntimeError:
        log.exception("call to %s failed", CALLEE, extra={"channel": "m1", "callee": CALLEE, "tries": 3})
    log.info("bad arguments %d", "not a number")  # would be a traceback from logging.handleError
    out = lines(buf)
    assert len(out) == 2
    first, second = (json.loads(x) for x in out)
    assert first["level"] == "ERROR" and first["logger"] == "appliance.bank"
    assert datetime.fromisoformat(first["ts"].replace("Z", "+00:00")).utcoffset().total_seconds() == 0
    assert first["channel"] == "m1" and first["tries"] == 3
    assert "Traceback" in first["exc"] and "RuntimeError" in first["exc"] and "second line" in first["exc"]
    # docs/architecture.md: numbers masked but for the last 3 digits, in the message, fields and traceback
    assert CALLEE[1:] not in buf.getvalue() and first["callee"].endswith("123") and "123" in first["msg"]
    assert "do not fit" in second["msg"]


def test_text_format_is_one_line_per_event(capture):
    buf, _ = capture("text")
    log = logging.getLogger("controller.link")
    try:
        {}["missing"]
    except KeyError:
        log.exception("hello from %s failed", "box-01", extra={"appliance": "box-01"})
    log.warning("a message\nwith a newline", extra={"n": 2})
    log.info("plain")
    out = lines(buf)
    assert len(out) == 3, out
    assert " ERROR controller.link: hello from box-01 failed" in out[0]
    assert 'appliance="box-01"' in out[0] and 'exc="Traceback' in out[0] and "KeyError" in out[0]
    assert out[1].endswith("a message\\nwith a newline n=2")
    assert out[2].endswith(" INFO controller.link: plain")


def test_a_tight_loop_of_one_call_site_is_bounded(capture):
    """The issue's hot loop: 1.6 million failures in 5 minutes. Here 100,000 calls in
    one window give RATE_BURST lines, and one line saying how many were held back."""
    buf, clock = capture("json")
    log = logging.getLogger("appliance.bank")
    for i in range(100_000):
        log.warning("channel %s: slot switch to %d failed: %s", "m1", i % 2, "cannot switch SIM during a call")
    assert len(lines(buf)) == RATE_BURST
    clock.t += RATE_INTERVAL_SECONDS
    log.warning("channel %s: slot switch to %d failed: %s", "m1", 0, "cannot switch SIM during a call")
    out = [json.loads(x) for x in lines(buf)]
    summary = out[RATE_BURST]
    assert summary["suppressed"] == 100_000 - RATE_BURST and summary["seconds"] == RATE_INTERVAL_SECONDS
    assert summary["msg"] == f"suppressed {100_000 - RATE_BURST} similar lines in the last {RATE_INTERVAL_SECONDS:g} s"
    assert summary["like"] == "channel %s: slot switch to %d failed: %s" and summary["logger"] == "appliance.bank"
    assert summary["subject"] == "m1"
    assert summary["level"] == "WARNING"
    assert out[-1]["msg"].startswith("channel m1: slot switch")  # the new window's first line passes
    assert len(out) == RATE_BURST + 2


def test_debug_lines_are_not_bounded(capture):
    """DEBUG is a person's choice to read the whole AT transcript (one template for
    every command of every modem); the bound is for INFO and above."""
    buf, _ = capture("json")
    log = logging.getLogger("modem_drivers.at.port")
    for i in range(500):
        log.debug("%s: %s -> %s (%d lines)", f"emu{i % 8:03d}", "AT+CSQ", "OK", 1)
    assert len(lines(buf)) == 500


def test_other_call_sites_keep_logging_during_a_hot_loop(capture):
    buf, _ = capture("json")
    hot, calm = logging.getLogger("appliance.scheduler"), logging.getLogger("appliance.runtime")
    for i in range(5_000):
        hot.error("dispatch round failed")
        if i % 1000 == 0:
            calm.info("appliance %s up", "box-01")
    msgs = [json.loads(x)["msg"] for x in lines(buf)]
    assert msgs.count("dispatch round failed") == RATE_BURST
    assert msgs.count("appliance box-01 up") == 5


def test_a_stuck_channel_does_not_silence_the_healthy_ones(capture):
    """The kind of a line includes its subject (the first argument): one channel in a
    hot loop is held back, 100 channels moving normally on the same template are not."""
    buf, _ = capture("json")
    log = logging.getLogger("appliance.bank")
    for i in range(10_000):
        log.info("channel %s: %s -> %s (%s)", "emu007", "idle", "switching_sim", "planned")
    for ch in range(100):
        for old, new in (("idle", "busy"), ("busy", "cooling_down"), ("cooling_down", "idle")):
            log.info("channel %s: %s -> %s (%s)", f"emu{ch:03d}", old, new, "call")
    msgs = [json.loads(x)["msg"] for x in lines(buf)]
    assert sum("emu007: idle -> switching_sim" in m for m in msgs) == RATE_BURST
    # every healthy channel's lines, the stuck one's (same kind) held back with its loop
    assert sum(m.endswith("(call)") for m in msgs) == 99 * 3
    assert not any(m.startswith("channel emu007: idle -> busy") for m in msgs)


def test_a_bug_writing_a_new_message_each_time_is_bounded_too(capture):
    """An f-string in a loop makes every line its own template: the process-wide bound
    and the bounded key table hold it (lines and memory)."""
    throttle = Throttle(clock=FakeClock())
    buf, _ = capture("json", throttle=throttle)
    log = logging.getLogger("appliance.jobs")
    for i in range(50_000):
        log.warning(f"job j{i} failed")  # noqa: G004 - the bug under test
        assert len(throttle._windows) <= throttle.max_keys + 1
    assert len(lines(buf)) == RATE_TOTAL_BURST
    throttle.clock.t += RATE_INTERVAL_SECONDS
    log.warning("after")
    out = [json.loads(x) for x in lines(buf)]
    overflow = [o for o in out if o.get("suppressed")]
    assert len(overflow) == 1 and overflow[0]["suppressed"] == 50_000 - RATE_TOTAL_BURST
    assert OVERFLOW[1] in overflow[0]["like"] or "process-wide" in overflow[0]["like"]


def test_held_back_lines_are_reported_when_the_process_stops(capture):
    buf, _ = capture("json")
    log = logging.getLogger("modem_drivers.at.port")
    for _ in range(RATE_BURST + 7):
        log.warning("garbage on the line")
    logging.getLogger().handlers[-1].close()  # what logging.shutdown() does at exit
    out = [json.loads(x) for x in lines(buf)]
    assert out[-1]["suppressed"] == 7


def test_an_uncaught_exception_is_one_json_line():
    code = ("from common.logs import setup_logging; setup_logging('json', 'INFO'); "
            f"raise RuntimeError('port lost while dialling {CALLEE}')")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    out = proc.stderr.splitlines()
    assert len(out) == 1, proc.stderr
    doc = json.loads(out[0])
    assert doc["level"] == "CRITICAL" and "RuntimeError" in doc["exc"] and CALLEE not in proc.stderr



@pytest.mark.timeout(180)
@pytest.mark.bank(modems=2, sims_per_modem=1, timing=Timing.FAST, seed=3)
async def test_every_line_of_an_appliance_run_with_an_exception_parses_as_json(tmp_path, bank):
    """A real `simrotor appliance run` on an emulated bank, its store holding a corrupt
    rotation snapshot (logged with its traceback at start), at DEBUG (every AT command),
    placing a call: each stderr line is one JSON object with ts/level/logger/msg, the
    traceback is a field, and the callee's number never appears whole. The config names
    the bank's state file (tmp_path/bank.json)."""
    store = Store(tmp_path / "a.db")
    store.set_kv("rotation", {"at": 0.0, "policy": "not a snapshot"})
    store.close()
    port = free_port()
    (tmp_path / "a.toml").write_text(f"""
emulator_state = "bank.json"
[appliance]
id = "logs"
store = "{tmp_path / 'a.db'}"
listen = "127.0.0.1:{port}"
token = "{TOKEN}"
[limits]
min_pause_seconds = 0.0
pause_after_call = [0.0, 0.0]
""")
    err = open(tmp_path / "stderr.log", "wb")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "simrotor", "appliance", "run", "--config", str(tmp_path / "a.toml"),
        "--log-format", "json", "--log-level", "DEBUG", stdout=err, stderr=err)
    base, headers = f"http://127.0.0.1:{port}", {"Authorization": f"Bearer {TOKEN}"}
    try:
        async with aiohttp.ClientSession() as s, asyncio.timeout(90):
            while True:
                assert proc.returncode is None, (tmp_path / "stderr.log").read_text()[-2000:]
                try:
                    async with s.get(f"{base}/api/status", headers=headers) as r:
                        if r.status == 200 and (await r.json())["channels"].get("idle", 0) > 0:
                            break
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)
            job = {"id": "c1", "kind": "call", "callee": CALLEE}
            async with s.post(f"{base}/api/jobs", json={"jobs": [job]}, headers=headers) as r:
                assert r.status == 200
            while True:
                async with s.get(f"{base}/api/results?after=0&limit=10", headers=headers) as r:
                    if any(x.get("final") for x in (await r.json())["results"]):
                        break
                await asyncio.sleep(0.1)
    finally:
        proc.send_signal(signal.SIGTERM)
        await proc.wait()
        err.close()
    text = (tmp_path / "stderr.log").read_text()
    docs = [json.loads(line) for line in text.splitlines()]  # every line, or this raises
    assert len(docs) > 10
    for d in docs:
        assert {"ts", "level", "logger", "msg"} <= set(d) and d["ts"].endswith("Z")
    snapshot = [d for d in docs if "rotation snapshot unreadable" in d["msg"]]
    assert snapshot and "Traceback" in snapshot[0]["exc"] and "\n" in snapshot[0]["exc"]
    assert any("up:" in d["msg"] for d in docs)
    assert CALLEE[1:] not in text


def test_windows_that_close_together_are_reported_in_one_line(capture):
    """After a busy spell many kinds close at once: one summary line names them all (a
    line each was a burst of its own in the soak test's quiet end)."""
    buf, clock = capture("json")
    for ch in range(8):
        for _ in range(RATE_BURST + 3 + ch):
            logging.getLogger("appliance.bank").info("channel %s: %s", f"emu{ch:03d}", "busy -> idle")
    before = len(lines(buf))
    clock.t += RATE_INTERVAL_SECONDS
    logging.getLogger("appliance.link").info("link: connected")
    out = [json.loads(x) for x in lines(buf)[before:]]
    summaries = [o for o in out if o.get("suppressed")]
    assert len(summaries) == 1 and len(out) == 2
    s = summaries[0]
    assert s["suppressed"] == sum(3 + ch for ch in range(8)) and len(s["kinds"]) == 8
    assert s["kinds"][0]["subject"] == "emu007" and s["kinds"][0]["suppressed"] == 10
    assert s["msg"] == f"suppressed {s['suppressed']} lines of 8 kinds in the last {RATE_INTERVAL_SECONDS:g} s"
