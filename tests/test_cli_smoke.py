"""The demo and the AT benchmark run end to end as real processes (smoke: their figures
are checked for shape and sanity, not for speed — speed belongs to bench/)."""
from __future__ import annotations

import json
import subprocess
import sys


def run_cli(*args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "simrotor", *args], capture_output=True, text=True, timeout=timeout)


def test_demo_runs_a_campaign_to_the_end():
    proc = run_cli("demo", "--until-done", "--json", "--contacts", "60", "--modems", "8", "--api-port", "0",
                   "--page-port", "0")
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout)
    assert out["contacts"] == 60
    kinds = {k.split(":")[0] for k in out["outcomes"]}
    assert kinds == {"hlr", "call", "sms"}
    assert out["outcomes"]["call:answered_human"] > 0 and out["outcomes"]["hlr:invalid"] > 0
    assert out["technician_page"].startswith("http://127.0.0.1:")
    assert out["technician"]["name"] == "demo" and len(out["technician"]["password"]) >= 8  # the page's sign-in


def test_bench_at_smoke():
    proc = run_cli("bench", "at", "--modems", "8", "--rounds", "10", "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["modems_opened"] == 8 and out["transactions"] == 80, out["open_failures"]
    assert out["threads"] == 1
    assert 0 < out["parser_us_per_line"] < 1000
    assert out["driver_cpu_us_per_transaction"] > 0


def test_modem_cli_errors_are_words_with_exit_codes():
    proc = run_cli("modem", "probe", "/dev/ttyNOPE7", "--json")
    assert proc.returncode == 69
    assert json.loads(proc.stdout)["error"].startswith("no such port")
    proc = run_cli("modem", "at", "/dev/ttyNOPE7", "ATI")
    assert proc.returncode == 69 and "no such port" in proc.stderr
    proc = run_cli("modem", "at", "/dev/ttyNOPE7", "hello")
    assert proc.returncode == 2 and "must start with AT" in proc.stderr


def test_bench_multiplex_smoke():
    proc = run_cli("bench", "multiplex", "--modems", "8", "--calls-per-modem", "2", "--sms-per-modem", "1",
                   "--csq-rounds", "20", "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["channels"] == 8 and out["jobs"] == 24
    assert sum(out["outcomes"].values()) == 24
    assert out["dispatch_ms"]["samples"] > 0 and out["decision_us"] > 0
    assert out["at_transactions"] > 24
