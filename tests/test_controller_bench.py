"""Smoke run of `simrotor bench controller` at a small size: it runs, prints JSON with
every figure, and the figures are consistent with the counts asked for."""
from __future__ import annotations

import json

from click.testing import CliRunner

from bench.controller import controller


def test_bench_controller_smoke():
    out = CliRunner().invoke(controller, ["--contacts", "2000", "--results", "300", "--batch", "100", "--seconds", "1",
                                          "--rate", "50", "--json"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    assert data["imported"] == 2000 and data["dispatched"] == 300 and data["ingested"] == 300
    assert data["import_per_second"] > 0 and data["ingest_per_second"] > 0
    assert data["api"]["requests"] == 50 and data["api"]["errors"] == 0
    assert 0 < data["api"]["p50_ms"] <= data["api"]["p99_ms"] <= data["api"]["max_ms"]
