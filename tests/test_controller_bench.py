"""Smoke runs of `simrotor bench controller` at a small size: it runs, prints JSON with
every figure per backend, and the figures are consistent with the counts asked for — on
SQLite alone, and on SQLite and PostgreSQL (two controller processes) in one run on the
tests' private server, whose schema of its own the bench drops at the end."""
from __future__ import annotations

import json

import psycopg
from click.testing import CliRunner

from bench.controller import controller, with_search_path

SMALL = ["--contacts", "2000", "--results", "300", "--batch", "100", "--seconds", "1", "--rate", "50", "--json"]


def check_backend(data: dict, *, controllers: int) -> None:
    assert data["controllers"] == controllers
    assert data["imported"] == 2000 and data["dispatched"] == 300 and data["ingested"] == 300
    assert sum(data["dispatched_by_controller"]) == 300 and len(data["dispatched_by_controller"]) == controllers
    assert data["import_per_second"] > 0 and data["dispatch_per_second"] > 0 and data["ingest_per_second"] > 0
    assert data["api"]["requests"] == 50 and data["api"]["errors"] == 0
    assert 0 < data["api"]["p50_ms"] <= data["api"]["p99_ms"] <= data["api"]["max_ms"]
    assert 0 < data["api"]["controller_cpu_ms_per_request"] < 1000  # a request costs some CPU, not seconds
    assert len(data["load_average_before"]) == 3 and len(data["load_average_after"]) == 3
    for phase in ("dispatch", "ingest"):  # the probe read during each: at least its first answer
        probe = data["api_during"][phase]
        assert probe["n"] >= 1 and 0 < probe["p50_ms"] <= probe["max_ms"], (phase, probe)


def test_bench_controller_smoke():
    out = CliRunner().invoke(controller, SMALL)
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    assert list(data["backends"]) == ["sqlite"]
    check_backend(data["backends"]["sqlite"], controllers=1)
    assert set(data["backends"]["sqlite"]["ok"]) == set(data["targets"]["sqlite"])


def test_bench_controller_on_postgresql_beside_sqlite(pg_server):
    url = pg_server.url("simrotor_tests")
    out = CliRunner().invoke(controller, ["--store", url, *SMALL])
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    assert list(data["backends"]) == ["sqlite", "postgresql"]
    check_backend(data["backends"]["sqlite"], controllers=1)
    pg = data["backends"]["postgresql"]
    check_backend(pg, controllers=2)
    assert all(n > 0 for n in pg["dispatched_by_controller"])  # both controllers leased jobs
    assert pg["server"]["fsync"] in ("on", "off") and set(pg["ok"]) == set(data["targets"]["postgresql"])
    with psycopg.connect(url, autocommit=True) as admin:  # its schema is dropped
        assert admin.execute("SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'simrotor_bench_%'").fetchone()[0] == 0


def test_bench_controller_refuses_what_it_cannot_use(pg_server):
    out = CliRunner().invoke(controller, ["--store", "/tmp/c.db", *SMALL])
    assert out.exit_code != 0 and "is not a postgresql:// URL" in out.output
    out = CliRunner().invoke(controller, ["--no-sqlite", *SMALL])
    assert out.exit_code != 0 and "nothing to bench" in out.output
    out = CliRunner().invoke(controller, ["--store", pg_server.url("no_such_db"), "--no-sqlite", *SMALL])
    assert out.exit_code != 0 and "cannot make the bench's schema" in out.output and "no_such_db" in out.output


def test_search_path_is_added_to_the_url_once():
    assert with_search_path("postgresql://u@h/db", "s1") == "postgresql://u@h/db?options=-csearch_path%3Ds1"
    assert with_search_path("postgresql://u@/db?host=/tmp/x&port=5", "s1").endswith("&port=5&options=-csearch_path%3Ds1")
