"""``simrotor controller migrate``: a SQLite store built through the controller's API (a
campaign with contacts, results and an inbound reply over the link, opt-outs, keys, an
enrollment, a webhook and its deliveries, an Idempotency-Key, a recording, a page user)
copied into a database of the private PostgreSQL server; then a controller on it serves
the same results, the old key, fresh ids. A run stopped after some chunks continues and
copies nothing twice; a source changed between runs fails the count check; the CLI's
--json; and the refusals (a running controller, an unknown table, a newer schema, a
non-empty target, bad URLs).

The source is always SQLite and the target PostgreSQL, so these tests do not take the
``store_backend`` parameter of the other test_controller_*.py files.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import psycopg
import pytest
from click.testing import CliRunner
from controller_harness import FakeAppliance, FakeClock, enroll, make_config, running

from controller.cli import controller as controller_cli
from controller.migrate import (
    MIGRATION_LOCK,
    PROGRESS_TABLE,
    MigrateError,
    migrate_store,
    schema_indexes,
    schema_tables,
)
from controller.overview import overview_accounts
from controller.server import create_enroll_token
from controller.store import Store

T0 = datetime(2026, 1, 15, 10, 0, tzinfo=UTC).timestamp()  # 11:00 in Warsaw, a Thursday
CALL = [{"kind": "call", "attempts": 2, "retry_after_seconds": 600}]
#: What the CRM reads, the same before and after the move.
READS = ("/v1/results?after=0&limit=1000", "/v1/campaigns/c1/contacts?limit=1000", "/v1/inbound", "/v1/optouts",
         "/v1/webhooks", "/v1/webhooks/dead-letters", "/v1/campaigns/c1", "/v1/appliances/box-01")
#: A report's fields that depend on the instant it is read at (the clock moved on meanwhile).
NOW_DEPENDENT = {"generated_at", "eta", "throughput"}


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def target(pg_server):
    with pg_server.database() as url:
        yield url


async def get(s: aiohttp.ClientSession, url: str, key: str) -> tuple[int, object]:
    async with s.get(url, headers=auth(key)) as r:
        return r.status, await r.json()


async def build_source(path: Path, contacts: int = 40) -> dict[str, object]:
    """A controller store at ``path`` filled through the API and the link; what its CRM
    API answered (key, results page, report, contacts page) before it stopped."""
    clock = FakeClock(T0)
    async with running(make_config(path), clock) as (c, key), aiohttp.ClientSession() as s:
        c.store.add_webhook("wh_1", "http://127.0.0.1:9/hook", "s" * 16, ["result", "inbound"], clock())
        body = {"id": "c1", "strategy": CALL, "start": True}
        async with s.post(f"{c.url}/v1/campaigns", json=body, headers={**auth(key), "Idempotency-Key": "k-1"}) as r:
            assert r.status == 201, await r.text()
        rows = [{"external_id": f"d{i}", "phones": [f"+48600{100200 + i}"], "name": f"N{i}", "amount": "10.5",
                 "currency": "PLN"} for i in range(contacts)]
        async with s.post(f"{c.url}/v1/campaigns/c1/contacts", json=rows, headers=auth(key)) as r:
            assert r.status == 200 and (await r.json())["created"] == contacts
        for number in ("+48600999001", "+48600999002"):
            async with s.post(f"{c.url}/v1/optouts", json={"number": number, "reason": "asked"}, headers=auth(key)) as r:
                assert r.status == 201
        create_enroll_token(c.store, 600, clock())  # one never used
        overview_accounts(c.store, clock).add("anna", "correct horse battery")
        app = FakeAppliance(s, c.url, await enroll(s, c, "box-01"), clock=clock)
        await app.connect()
        job = await app.reach_then_text_back("+48690000001", "STOP", "in-1")
        c.store.add_recording({"id": "rec-1", "appliance_id": "box-01", "job_id": job["id"], "attempt": 1,
                               "campaign_id": "c1", "format": "wav", "seconds": 3.5, "bytes": 56000,
                               "path": "c1/rec-1.wav"}, clock())
        answered = 0
        while answered < 12:
            batch = await app.expect("jobs")
            await app.ack(batch)
            await app.send({"type": "results", "results": [app.result(j, "busy", final=True) for j in batch["jobs"]]})
            await app.expect("results_ack")
            answered += len(batch["jobs"])
        await app.close()
        answers = {path: await get(s, c.url + path, key) for path in READS}
        assert all(status == 200 for status, _ in answers.values()), answers
        assert len(answers[READS[0]][1]["items"]) > 12
        _, report = await get(s, f"{c.url}/v1/campaigns/c1/report", key)
    return {"key": key, "answers": answers, "report": report, "clock": clock}


def rows_of(conn, table: str, columns: list[str]) -> list[tuple]:
    cols = ", ".join(f'"{c}"' for c in columns)
    return sorted((tuple(bytes(v) if isinstance(v, memoryview) else v for v in r)
                   for r in conn.execute(f'SELECT {cols} FROM "{table}"').fetchall()), key=repr)


def assert_same_rows(source: Path, target: str, skip: set[str] = frozenset()) -> None:
    """Every table of the schema holds the same rows in both databases."""
    src = sqlite3.connect(f"{source.as_uri()}?mode=ro", uri=True)
    with psycopg.connect(target) as dst:
        for table in schema_tables():
            if table in skip:
                continue
            columns = [r[1] for r in src.execute(f'PRAGMA table_info("{table}")')]
            assert rows_of(src, table, columns) == rows_of(dst, table, columns), table
    src.close()


def run_sql(path: Path, statement: str, args: tuple = ()) -> None:
    """One statement on a SQLite file, committed (what another program did to it)."""
    conn = sqlite3.connect(path)
    with conn:
        conn.execute(statement, args)
    conn.close()


def altered_copy(db: Path, name: str, statement: str) -> Path:
    """A copy of ``db`` beside it, changed by ``statement``."""
    copy = db.with_name(name)
    copy.write_bytes(db.read_bytes())
    run_sql(copy, statement)
    return copy


def indexes(dst: psycopg.Connection) -> set[str]:
    return {r[0] for r in dst.execute("SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()")}


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


async def test_migrated_store_serves_the_same_answers_and_new_rows_get_fresh_ids(tmp_path, target):
    db = tmp_path / "c.db"
    before = await build_source(db)
    with sqlite3.connect(db) as raw:  # delivered rows are pruned after a week: the highest id may be gone
        top_delivery = raw.execute("SELECT max(id) FROM deliveries").fetchone()[0]
        raw.execute("DELETE FROM deliveries WHERE id = ?", (top_delivery,))
        top_contact = raw.execute("SELECT max(id) FROM contacts").fetchone()[0]
        empty = {t for t in schema_tables() if raw.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] == 0}
    raw.close()
    assert empty == set()  # every table of the schema holds rows: each one's copy is checked
    source_digest = digest(db)

    report = migrate_store(db, target, chunk_rows=2)  # chunks of 2: keys of two columns resume too (sims, counts)

    assert report.ok and not report.resumed and digest(db) == source_digest
    assert [t.table for t in report.tables] == list(schema_tables())
    assert all(t.source_rows == t.target_rows == t.copied for t in report.tables), report.as_dict()
    assert_same_rows(db, target)
    with psycopg.connect(target) as dst:
        assert dst.execute("SELECT to_regclass(%s)", (PROGRESS_TABLE,)).fetchone()[0] is None
    clock = before["clock"]
    async with running(make_config(target, recordings=tmp_path / "rec"), clock) as (c, _), aiohttp.ClientSession() as s:
        key = before["key"]  # the CRM's key, made on SQLite
        for path in READS:
            assert await get(s, c.url + path, key) == before["answers"][path], path
        status, report_after = await get(s, f"{c.url}/v1/campaigns/c1/report", key)
        differ = {k for k in {*report_after, *before["report"]} if report_after.get(k) != before["report"].get(k)}
        assert status == 200 and differ <= NOW_DEPENDENT, differ
        assert overview_accounts(c.store, clock).get("anna") is not None
        async with s.post(f"{c.url}/v1/campaigns/c1/contacts", json=[{"external_id": "new", "phones": ["+48600777000"]}],
                          headers=auth(key)) as r:
            assert r.status == 200, await r.text()
        fresh = c.store._one("SELECT id FROM contacts WHERE external_id = 'new'")["id"]
        assert fresh == top_contact + 1
        with c.store.tx() as conn:
            c.store.enqueue(conn, ["wh_1"], "result", {"n": 1}, clock())
        assert c.store._one("SELECT max(id) AS id FROM deliveries")["id"] == top_delivery + 1  # not the pruned id again
        async with s.post(f"{c.url}/v1/campaigns", json={"id": "c1", "strategy": CALL, "start": True},
                          headers={**auth(key), "Idempotency-Key": "k-1"}) as r:
            assert r.status == 201 and r.headers.get("Idempotent-Replayed") == "true"  # the stored first answer

    with pytest.raises(MigrateError, match=r"target is not empty \(.*contacts"):
        migrate_store(db, target)


async def test_a_stopped_run_continues_where_it_stopped_and_copies_nothing_twice(tmp_path, target):
    db = tmp_path / "c.db"
    await build_source(db, contacts=50)
    seen: list[tuple[str, int]] = []

    class Stop(Exception):
        pass

    def stop_in_contacts(table: str, done: int, total: int, seconds: float) -> None:
        seen.append((table, done))
        if table == "contacts" and done >= 21:
            raise Stop

    with pytest.raises(Stop):
        migrate_store(db, target, chunk_rows=7, progress=stop_in_contacts)
    assert seen[-1] == ("contacts", 21)
    with psycopg.connect(target) as dst:
        assert dst.execute("SELECT count(*) FROM contacts").fetchone()[0] == 21
        assert dst.execute(f"SELECT copied, done FROM {PROGRESS_TABLE} WHERE table_name = 'contacts'").fetchone() == (21, False)
        copied_before = dict(dst.execute(f"SELECT table_name, copied FROM {PROGRESS_TABLE}").fetchall())
        assert ("contacts_external", "contacts") in schema_indexes()
        assert indexes(dst).isdisjoint(name for name, _ in schema_indexes())  # built at the end, not row by row

    report = migrate_store(db, target, chunk_rows=7)

    assert report.ok and report.resumed
    by = {t.table: t for t in report.tables}
    assert (by["contacts"].before, by["contacts"].copied, by["contacts"].target_rows) == (21, 29, 50)
    for t in report.tables:  # tables finished before the stop are not copied again
        assert t.before == copied_before[t.table] and t.before + t.copied == t.source_rows, t
    assert sum(t.before for t in report.tables) > 21  # tables before contacts were done in the first run
    assert_same_rows(db, target)
    with psycopg.connect(target) as dst:
        assert indexes(dst) >= {name for name, _ in schema_indexes()}


def test_a_source_written_between_runs_fails_the_count_check(tmp_path, target):
    db = tmp_path / "c.db"
    store = Store(db)
    store.add_optouts([(f"+4860090000{i}", None) for i in range(6)], "api", T0)
    store.close()

    def stop_in_optouts(table: str, done: int, total: int, seconds: float) -> None:
        if table == "optouts" and done >= 4:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        migrate_store(db, target, chunk_rows=2, progress=stop_in_optouts)
    # a controller left running: a number sorting before those copied
    run_sql(db, "INSERT INTO optouts(number, source, reason, created_at) VALUES ('+12025550100', 'api', NULL, ?)", (T0,))

    result = CliRunner().invoke(controller_cli, ["migrate", "--from", str(db), "--to", target, "--chunk-rows", "2", "--json"])

    assert result.exit_code == 1, result.output
    summary = json.loads(result.stdout)
    assert summary["ok"] is False and summary["resumed"] is True and summary["mismatches"] == ["optouts"]
    (optouts,) = [t for t in summary["tables"] if t["table"] == "optouts"]
    assert (optouts["source_rows"], optouts["target_rows"]) == (7, 6)
    assert "optouts (source 7, target 6)" in result.stderr
    with psycopg.connect(target) as dst:  # kept: the mismatch is there to be looked at
        assert dst.execute("SELECT to_regclass(%s)", (PROGRESS_TABLE,)).fetchone()[0] is not None


def test_cli_json_summary_and_text(tmp_path, pg_server):
    db = tmp_path / "controller.db"
    cfg = tmp_path / "controller.toml"
    cfg.write_text('[controller]\nstore = "controller.db"\n')
    store = Store(db)
    from controller.server import create_key

    create_key(store, "crm", T0)
    store.close()
    (tmp_path / "controller.recordings").mkdir()
    with pg_server.database() as url:
        result = CliRunner().invoke(controller_cli, ["migrate", "--config", str(cfg), "--to", url, "--json"])
        assert result.exit_code == 0, result.output
        summary = json.loads(result.stdout)
        assert summary["ok"] is True and summary["mismatches"] == [] and summary["source"] == str(db.resolve())
        assert summary["recordings"] == str((tmp_path / "controller.recordings").resolve())
        assert {t["table"]: t["target_rows"] for t in summary["tables"]}["api_keys"] == 1
        assert "api_keys: 1/1 rows" in result.stderr  # plain progress lines when not a terminal
    with pg_server.database() as url:
        result = CliRunner().invoke(controller_cli, ["migrate", "--from", str(db), "--to", url])
        assert result.exit_code == 0, result.output
        assert "api_keys" in result.stdout and "counts match" in result.stdout and "MISMATCH" not in result.stdout
    result = CliRunner().invoke(controller_cli, ["migrate", "--to", url])
    assert result.exit_code == 2 and "--config FILE or --from PATH" in result.stderr


def test_a_killed_cli_run_continues(tmp_path, target):
    """kill -9 of the command mid-copy, then the same command again: every row once."""
    db = tmp_path / "c.db"
    store = Store(db)
    store.add_optouts([(f"+48{700000000 + i}", None) for i in range(30_000)], "api", T0)
    store.close()
    argv = [sys.executable, "-c", "from controller.cli import controller; controller()", "migrate", "--from", str(db),
            "--to", target, "--chunk-rows", "50", "--json"]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    with psycopg.connect(target, autocommit=True) as dst:
        copied = 0
        while copied < 500:  # wait for a part of the copy (reason: kill mid-copy, not before or after)
            assert proc.poll() is None and time.monotonic() < deadline, "the copy ended before it was killed"
            if dst.execute("SELECT to_regclass(%s)", (PROGRESS_TABLE,)).fetchone()[0] is not None:
                copied = dst.execute(f"SELECT copied FROM {PROGRESS_TABLE} WHERE table_name = 'optouts'").fetchone()[0]
            time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)
    with psycopg.connect(target) as dst:
        at_kill = dst.execute("SELECT count(*) FROM optouts").fetchone()[0]
    assert 500 <= at_kill < 30_000

    done = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False)

    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    (optouts,) = [t for t in summary["tables"] if t["table"] == "optouts"]
    assert summary["resumed"] and optouts["copied_before"] >= at_kill and optouts["target_rows"] == 30_000
    assert optouts["copied_before"] + optouts["copied"] == 30_000
    assert_same_rows(db, target)


def test_refusals_name_the_problem(tmp_path, pg_server, target):
    db = tmp_path / "c.db"
    Store(db).close()
    hold = ("import sqlite3, sys, time; c = sqlite3.connect(sys.argv[1]); c.execute('SELECT 1 FROM meta').fetchall();"
            " print('open', flush=True); time.sleep(60)")  # a controller's connection, idle between requests
    holder = subprocess.Popen([sys.executable, "-c", hold, str(db)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "open\n"
        with pytest.raises(MigrateError, match=rf"open in process {holder.pid} \(a running controller\?\); stop the controller"):
            migrate_store(db, target)
    finally:
        holder.kill()
        holder.wait()

    with psycopg.connect(target, autocommit=True) as other:  # a second run into the same database at once
        other.execute("SELECT pg_advisory_lock(hashtext(%s || current_schema()))", (MIGRATION_LOCK,))
        with pytest.raises(MigrateError, match="another migration into .* is running"):
            migrate_store(db, target)

    stray = altered_copy(db, "stray.db", "CREATE TABLE campaign_notes (id INTEGER PRIMARY KEY, text TEXT)")
    with pytest.raises(MigrateError, match="the copier does not know: campaign_notes"):
        migrate_store(stray, target)
    with psycopg.connect(target) as dst:  # refused before anything was written
        assert dst.execute("SELECT to_regclass('contacts')").fetchone()[0] is None

    newer = altered_copy(db, "newer.db", "UPDATE meta SET value = '99' WHERE key = 'schema'")
    with pytest.raises(MigrateError, match="schema version 99, newer than this controller's"):
        migrate_store(newer, target)
    other = tmp_path / "other.db"
    sqlite3.connect(other).execute("CREATE TABLE t (x)").connection.close()
    with pytest.raises(MigrateError, match="not a controller store"):
        migrate_store(other, target)
    (tmp_path / "text.db").write_text("hello")
    with pytest.raises(MigrateError, match="not a SQLite database"):
        migrate_store(tmp_path / "text.db", target)
    with pytest.raises(MigrateError, match="does not exist"):
        migrate_store(tmp_path / "none.db", target)

    with pytest.raises(MigrateError, match="must be a postgresql:// URL"):
        migrate_store(db, "mysql://u:secret@h/db")
    with pytest.raises(MigrateError, match="names no database"):
        migrate_store(db, "postgresql://u@127.0.0.1:1")
    with pytest.raises(MigrateError, match=r"cannot connect to postgresql://u:\*\*\*@127.0.0.1:1/db: the server cannot be reached"):
        migrate_store(db, "postgresql://u:secret@127.0.0.1:1/db")
    login = target.replace("postgresql://simrotor@", "postgresql://intruder:pw@")
    with pytest.raises(MigrateError, match="PostgreSQL refused the login"):
        migrate_store(db, login)
    with pytest.raises(MigrateError, match="database does not exist"):
        migrate_store(db, pg_server.url("no_such_db"))


def test_bench_migrate_smoke(pg_server):
    from bench.migrate import migrate as bench_migrate

    result = CliRunner().invoke(bench_migrate, ["--server", pg_server.url(), "--contacts", "300", "--chunk-rows", "100",
                                                "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["counts_match"] is True and out["tables"]["contacts"]["rows"] == 300
    assert out["tables"]["results"]["rows"] == 150 and out["rows_per_second"] > 0
    with psycopg.connect(pg_server.url(), autocommit=True) as admin:  # its database is dropped
        assert admin.execute("SELECT count(*) FROM pg_database WHERE datname LIKE 'simrotor_bench_%'").fetchone()[0] == 0


def test_a_login_without_rights_on_the_database_is_one_sentence(tmp_path, pg_server, target):
    db = tmp_path / "c.db"
    Store(db).close()
    with psycopg.connect(pg_server.url(), autocommit=True) as admin:
        admin.execute("DROP ROLE IF EXISTS reader")
        admin.execute("CREATE ROLE reader LOGIN")  # may connect, may not create tables in the test's schema
    try:
        with pytest.raises(MigrateError, match=r"the target postgresql://reader@[^:]*: (permission denied|no schema)"):
            migrate_store(db, target.replace("postgresql://simrotor@", "postgresql://reader@"))
    finally:
        with psycopg.connect(pg_server.url(), autocommit=True) as admin:
            admin.execute("DROP ROLE reader")


def test_a_source_left_by_a_killed_controller_is_copied_with_what_its_wal_holds(tmp_path, target):
    """kill -9 leaves committed rows in the -wal file only; the read-only copy reads them."""
    db = tmp_path / "c.db"
    Store(db).close()
    write = ("import sqlite3, sys, time; c = sqlite3.connect(sys.argv[1], isolation_level=None);"
             " c.execute('PRAGMA wal_autocheckpoint = 0');"
             " c.executemany(\"INSERT INTO optouts(number, source, created_at) VALUES (?, 'api', 0)\","
             " [(f'+48{700000000 + i}',) for i in range(500)]); print('written', flush=True); time.sleep(60)")
    writer = subprocess.Popen([sys.executable, "-c", write, str(db)], stdout=subprocess.PIPE, text=True)
    assert writer.stdout.readline() == "written\n"
    os.kill(writer.pid, signal.SIGKILL)
    writer.wait()
    assert Path(f"{db}-wal").stat().st_size > 0
    source_digest = digest(db)
    with contextlib.closing(sqlite3.connect(f"{db.as_uri()}?mode=ro&immutable=1", uri=True)) as file_only:
        assert file_only.execute("SELECT count(*) FROM optouts").fetchone()[0] == 0  # the rows are in the WAL only

    report = migrate_store(db, target)

    assert report.ok and {t.table: t.target_rows for t in report.tables}["optouts"] == 500
    assert digest(db) == source_digest
