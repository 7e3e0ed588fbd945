"""The appliance store: idempotent jobs, attempts written before acting, recovery after
a killed process (a real child process killed with SIGKILL mid-transaction stream)."""
from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time

import pytest

from appliance.store import Store


def test_resubmit_is_idempotent_and_cancel_only_before_start(tmp_path):
    s = Store(tmp_path / "a.db")
    assert s.add_jobs([{"id": "j1", "kind": "call", "callee": "+48600000123"}]) == [("j1", True)]
    assert s.add_jobs([{"id": "j1", "kind": "call", "callee": "+48600000999"}]) == [("j1", False)]
    assert s.get_job("j1")["callee"] == "+48600000123"
    s.add_jobs([{"id": "j2", "kind": "call", "callee": "+48600000124"}])
    s.start_attempt("j2", sim_id="s", msisdn="+48690000001", channel_id="m", callee="+48600000124", now=1)
    assert s.cancel_job("j1") == "cancelled"
    assert s.cancel_job("j2") == "running"
    assert s.cancel_job("nope") == "unknown"
    items, cursor = s.results_after(0)
    assert [i["outcome"] for i in items] == ["cancelled"] and cursor == items[-1]["seq"]


def test_attempt_result_and_outbox_in_one_transaction(tmp_path):
    s = Store(tmp_path / "a.db")
    s.add_jobs([{"id": "j", "kind": "call", "callee": "+48600000123"}])
    aid, n = s.start_attempt("j", sim_id="s1", msisdn="+48690000001", channel_id="m1", callee="+48600000123", now=1)
    assert n == 1 and s.interrupted_attempts()[0]["attempt_id"] == aid
    s.finish_attempt(aid, "j", result={"outcome": "busy"}, job_state="waiting_retry", next_attempt_at=10,
                     final=False, now=2)
    assert s.interrupted_attempts() == []
    job = s.get_job("j")
    assert job["state"] == "waiting_retry" and job["attempt_list"][0]["result"] == {"outcome": "busy"}
    assert s.shown_numbers("+48600000123") == ("+48690000001",)


def test_kill_9_during_writes_loses_nothing_acknowledged(tmp_path):
    db = tmp_path / "k.db"
    code = textwrap.dedent(f"""
        import sys, time
        from appliance.store import Store
        s = Store({str(db)!r})
        i = 0
        while True:
            jid = f"j{{i}}"
            s.add_jobs([{{"id": jid, "kind": "call", "callee": "+48600000123"}}])
            a, _ = s.start_attempt(jid, sim_id="s", msisdn="+48690000001", channel_id="m", callee="+48600000123", now=i)
            print(jid, flush=True)   # acknowledged only after the commit
            i += 1
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    acked = []
    deadline = time.monotonic() + 30
    while len(acked) < 200 and time.monotonic() < deadline:
        acked.append(proc.stdout.readline().strip())
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    s = Store(db)
    for jid in acked:
        job = s.get_job(jid)
        assert job is not None and job["state"] == "running", jid
    interrupted = {a["job_id"] for a in s.interrupted_attempts()}
    assert set(acked) <= interrupted


def test_finish_and_start_is_one_transaction(tmp_path):
    s = Store(tmp_path / "a.db")
    s.add_jobs([{"id": "a", "kind": "call", "callee": "+48600000123"}, {"id": "b", "kind": "sms", "callee": "+48600000124"}])
    aid, _ = s.start_attempt("a", sim_id="s1", msisdn="+48690000001", channel_id="m1", callee="+48600000123", now=1)
    bad = [{"job_id": "missing", "sim_id": "s1", "msisdn": "+48690000001", "channel_id": "m1", "callee": "+48600000124"}]
    finished = [{"attempt_id": aid, "job_id": "a", "result": {"outcome": "busy"}, "job_state": "done",
                 "next_attempt_at": None, "final": True}]
    with pytest.raises(KeyError, match="no job 'missing'"):
        s.finish_and_start(finished, bad, 2)  # the start fails: the finish must not stay either
    assert s.get_job("a")["state"] == "running" and s.results_after(0)[0] == []
    ok = [{"job_id": "b", "sim_id": "s1", "msisdn": "+48690000001", "channel_id": "m1", "callee": "+48600000124"}]
    seqs, ids = s.finish_and_start(finished, ok, 2)
    assert len(seqs) == 1 and ids[0][1] == 1
    assert s.get_job("a")["state"] == "done" and s.get_job("b")["state"] == "running"


def test_awaited_reports_live_in_their_table_and_old_stores_migrate(tmp_path):
    db = tmp_path / "old.db"
    s = Store(db)
    s.add_jobs([{"id": "sms1", "kind": "sms", "callee": "+48600000123"}])
    aid, _ = s.start_attempt("sms1", sim_id="s1", msisdn="+48690000001", channel_id="m1", callee="+48600000123", now=1)
    s.finish_attempts([{"attempt_id": aid, "job_id": "sms1", "result": {"outcome": "submitted"}, "job_state": "awaiting_report",
                        "next_attempt_at": None, "final": False, "pending": {"refs": [7], "attempt_id": aid}}], 2)
    assert s.pending_reports() == {"sms1": {"refs": [7], "attempt_id": aid}}
    s.add_result("sms1", aid, {"outcome": "delivered"}, final=True, job_state="done", now=3)
    assert s.pending_reports() == {}  # the final result ends the wait in the same transaction
    # A store written by schema 1 kept the waits as one JSON value in kv.
    s.set_kv("sms_pending", {"old1": {"refs": [1, 2], "attempt_id": 5}})
    s.close()
    s = Store(db)
    assert s.pending_reports() == {"old1": {"refs": [1, 2], "attempt_id": 5}}
    assert s.get_kv("sms_pending") is None and s.get_kv("schema_version") == 3


def test_schema_1_store_keeps_its_callees_memory(tmp_path):
    """A store from before attempts carried the callee: the numbers each callee was
    shown come back from the attempts after the upgrade, and the old table is gone."""
    db = tmp_path / "v1.db"
    conn = sqlite3.connect(db)
    conn.executescript("""
        CREATE TABLE jobs (id TEXT PRIMARY KEY, kind TEXT NOT NULL, callee TEXT NOT NULL, spec TEXT NOT NULL,
            priority INTEGER NOT NULL DEFAULT 0, not_before REAL, deadline REAL, state TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0, next_attempt_at REAL, created_at REAL NOT NULL, updated_at REAL NOT NULL);
        CREATE TABLE attempts (id INTEGER PRIMARY KEY AUTOINCREMENT, job_id TEXT NOT NULL REFERENCES jobs(id),
            n INTEGER NOT NULL, sim_id TEXT, msisdn TEXT, channel_id TEXT, state TEXT NOT NULL,
            started_at REAL NOT NULL, ended_at REAL, result TEXT);
        CREATE INDEX attempts_open ON attempts(state) WHERE state = 'started';
        CREATE TABLE shown (callee TEXT NOT NULL, msisdn TEXT NOT NULL, shown_at REAL NOT NULL);
        CREATE TABLE kv (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        INSERT INTO jobs VALUES ('j1', 'call', '+48600000123', '{"id": "j1", "kind": "call", "callee": "+48600000123"}',
            0, NULL, NULL, 'done', 2, NULL, 1, 3);
        INSERT INTO attempts(job_id, n, sim_id, msisdn, channel_id, state, started_at) VALUES
            ('j1', 1, 's1', '+48690000001', 'm1', 'finished', 1), ('j1', 2, 's2', '+48690000002', 'm2', 'finished', 2);
        INSERT INTO shown VALUES ('+48600000123', '+48690000001', 1), ('+48600000123', '+48690000002', 2);
        INSERT INTO kv VALUES ('schema_version', '1');
    """)
    conn.close()
    s = Store(db)
    assert s.shown_numbers("+48600000123") == ("+48690000001", "+48690000002")
    tables = {r[0] for r in s.conn.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'index')")}
    assert "shown" not in tables and "attempts_open" not in tables and "attempts_callee" in tables
    aid, n = s.start_attempt("j1", sim_id="s1", msisdn="+48690000003", channel_id="m1", callee="+48600000123", now=4)
    assert n == 3 and s.shown_numbers("+48600000123")[-1] == "+48690000003"


def test_checkpoint_is_ours_and_copies_the_wal(tmp_path):
    s = Store(tmp_path / "c.db")
    assert s.conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] >= 10_000  # only a safety net
    s.add_jobs([{"id": f"j{i}", "kind": "call", "callee": f"+486000{i:05d}"} for i in range(500)])
    log, done = s.checkpoint()
    assert log > 0 and done == log
    reader = sqlite3.connect(tmp_path / "c.db")  # another process sees the jobs
    assert reader.execute("SELECT COUNT(*) FROM jobs").fetchone()[0] == 500
