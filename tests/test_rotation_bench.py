"""Smoke run of ``bench.rotation`` (benchmarks are not tests; this only checks it runs and
reports figures that hang together)."""
from __future__ import annotations

import json

from click.testing import CliRunner

from bench.rotation import rotation


def test_bench_rotation_prints_one_json_document():
    result = CliRunner().invoke(rotation, ["--modems", "10,40", "--per-modem", "20", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    small, large = data["sizes"]
    assert (small["sims"], large["sims"]) == (40, 160)
    assert small["placed"] == 200 and large["placed"] == 800
    for size in (small, large):
        assert size["us_per_decision"] > 0 and size["us_per_choose"] > 0
        assert 0 <= size["refused_share"] < 1
        assert abs(size["decisions_per_second"] * size["us_per_decision"] / 1e6 - 1) < 0.01
    assert data["scaling"]["sims_ratio"] == 4.0


def test_bench_rotation_help_has_an_example():
    result = CliRunner().invoke(rotation, ["--help"])
    assert result.exit_code == 0 and "Example" in result.output


def test_bench_rotation_rejects_empty_sizes():
    result = CliRunner().invoke(rotation, ["--modems", ",", "--json"])
    assert result.exit_code != 0
