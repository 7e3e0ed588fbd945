"""The appliance store: idempotent jobs, attempts written before acting, recovery after
a killed process (a real child process killed with SIGKILL mid-transaction stream)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

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
