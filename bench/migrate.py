"""``simrotor bench migrate``: how fast ``simrotor controller migrate`` copies a SQLite store
into PostgreSQL.

A SQLite store with one campaign of ``--contacts`` contacts (imported by the store's own
``upsert_contacts``) and ``--results`` results (the ingest's ``insert_result``) is built in a
temporary folder, then copied by ``migrate_store`` into a database the bench creates on
``--server`` and drops afterwards. Figures (one JSON document): the build's and the copy's
seconds, rows/s over the whole copy (schema, every table, identities, count check) and per
table, and whether the counts matched.
"""
from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import click

from common.clikit import emit, fail, json_option

#: Rows per import transaction while building the source (the API's 100,000-row requests).
BUILD_CHUNK = 100_000


def _build(path: Path, contacts: int, results: int) -> None:
    from controller.contacts import ContactRow
    from controller.store import Store

    now = time.time()
    store = Store(path)
    try:
        store.create_campaign("c1", "bench", [{"kind": "call", "attempts": 2}], {}, now)
        for start in range(0, contacts, BUILD_CHUNK):
            rows = [ContactRow(external_id=f"d{i}", phones=(f"+48{600000000 + i}",), name=f"Debtor {i}",
                               case_ref=f"K/{i}", amount="120.50", currency="PLN", due_date="2026-02-01",
                               time_zone="Europe/Warsaw", language="pl")
                    for i in range(start, min(contacts, start + BUILD_CHUNK))]
            store.upsert_contacts("c1", rows, now)
        with store.tx() as c:
            for i in range(results):
                store.insert_result(c, {"dedupe": f"c1.{i + 1}.0.0|1|1", "appliance_id": "box-01", "app_seq": i + 1,
                                        "job_id": f"c1.{i + 1}.0.0", "campaign_id": "c1", "contact_id": i + 1,
                                        "external_id": f"d{i}", "kind": "call", "callee": f"+48{600000000 + i}",
                                        "outcome": "busy", "reason": None, "final": 1, "number_shown": "+48690000001",
                                        "counts_as_attempt": 1, "at": now,
                                        "body": json.dumps({"outcome": "busy", "cause": 17, "seq": i + 1})})
    finally:
        store.close()


def _database_url(server: str, name: str) -> str:
    parts = urlsplit(server)
    return urlunsplit(parts._replace(path=f"/{name}"))


@click.command()
@click.option("--server", required=True,
              help="postgresql://… of a server where the bench may create (and then drops) a database of its own.")
@click.option("--contacts", type=click.IntRange(min=1), default=200_000, show_default=True)
@click.option("--results", type=click.IntRange(min=0), default=None, help="Results in the store (default: contacts / 2).")
@click.option("--chunk-rows", type=click.IntRange(min=1), default=None, help="migrate's chunk (default: its own).")
@json_option
def migrate(server: str, contacts: int, results: int | None, chunk_rows: int | None, as_json: bool) -> None:
    """Copy a built SQLite store of N contacts into PostgreSQL and print rows/s.

    \b
    Example:
      simrotor bench migrate --server postgresql://simrotor@db.example/postgres --contacts 200000 --json
    """
    import psycopg

    from controller.migrate import (
        DEFAULT_CHUNK_ROWS,
        MigrateError,
        connect_target,
        migrate_store,
    )
    from controller.store.backend import masked

    results = contacts // 2 if results is None else results
    name = f"simrotor_bench_{os.getpid()}"
    try:
        admin = connect_target(server)
    except MigrateError as exc:
        fail(str(exc), as_json=as_json)
    with tempfile.TemporaryDirectory(prefix="simrotor-bench-migrate-") as tmp:
        source = Path(tmp) / "controller.db"
        t0 = time.perf_counter()
        _build(source, contacts, results)
        built = time.perf_counter() - t0
        size = source.stat().st_size
        admin.execute(f"CREATE DATABASE {name}")
        try:
            report = migrate_store(source, _database_url(server, name), chunk_rows=chunk_rows or DEFAULT_CHUNK_ROWS)
        finally:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            admin.close()
    copied = report.as_dict()
    out: dict[str, Any] = {
        "server": masked(server), "contacts": contacts, "results": results, "source_bytes": size,
        "chunk_rows": chunk_rows or DEFAULT_CHUNK_ROWS, "build_seconds": round(built, 2),
        "copy_seconds": copied["seconds"], "rows_copied": copied["rows_copied"], "rows_per_second": copied["rows_per_second"],
        "tables": {t["table"]: {"rows": t["copied"], "rows_per_second": t["rows_per_second"]}
                   for t in copied["tables"] if t["copied"]},
        "counts_match": copied["ok"], "psycopg": psycopg.__version__,
    }
    emit(out, as_json)
