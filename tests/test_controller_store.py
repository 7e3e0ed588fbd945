"""The store's guarantees that do not rest on one process: two Store objects over one
database (two controller processes) never both claim a contact or re-lease a job, also
when they race in threads; migrations on both backends; the planner's capacity and on-net
choices; the campaign table and step decisions.

Tests that take ``open_store`` run on SQLite and on PostgreSQL (tests/conftest.py).
"""
from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
import time

import pytest

from controller import campaigns as cp
from controller.contacts import ContactRow
from controller.planner import Slot, assign, operator_of
from controller.reports import Reports
from controller.rules import JobKind
from controller.store import Store, StoreError, schema
from controller.store.jobs import RuleAsk, RuleCounts
from controller_harness import RawDb, stored_result


def job(cid="c1", contact=1, jid="c1.1.0.0"):
    return {"id": jid, "campaign": cid, "kind": "call", "callee": "+48600100200"}


def test_two_processes_cannot_claim_the_same_contact_or_lease(open_store):
    a, b = open_store(), open_store()
    a.create_campaign("c1", "c1", [{"kind": "call"}], {}, 0.0)
    created, updated = a.upsert_contacts("c1", [ContactRow("x", ("+48600100200",))], 0.0)
    assert (created, updated) == (1, 0)
    assert a.upsert_contacts("c1", [ContactRow("x", ("+48600100201",), name="X")], 1.0) == (0, 1)
    assert b.get_contact(1)["phones"] == ["+48600100201"]
    assert a.claim_and_lease(1, job(), "box-1", "b1", deadline=100.0, now=1.0)
    assert not b.claim_and_lease(1, job(), "box-2", "b2", deadline=100.0, now=1.0)
    assert b.campaign_counts("c1") == {"waiting": 0, "in_flight": 1, "done": 0, "total": 1}
    # before the deadline nobody may re-lease; after it, exactly one of the two
    assert not a.release("c1.1.0.0", "box-1", "b3", 200.0, now=50.0, spec=job())
    assert b.release("c1.1.0.0", "box-2", "b4", 300.0, now=101.0, spec=job())
    assert not a.release("c1.1.0.0", "box-1", "b5", 300.0, now=101.0, spec=job())
    assert a.get_job("c1.1.0.0")["appliance_id"] == "box-2"


def test_two_stores_racing_in_threads_lease_each_contact_once(open_store):
    """Two controllers' dispatchers at full speed over one database: each goes through the
    same due contacts and tries to claim every one; every contact is leased exactly once."""
    a, b = open_store(), open_store()
    n = 200
    a.create_campaign("c1", "c1", [{"kind": "call"}], {}, 0.0)
    a.upsert_contacts("c1", [ContactRow(f"x{i}", (f"+486001{i:05d}",)) for i in range(n)], 0.0)
    due = [c["id"] for c in a.list_contacts("c1", 0, n)]  # all waiting, due at the import
    assert len(due) == n
    won: dict[str, list[int]] = {"a": [], "b": []}
    start = threading.Barrier(2)

    def dispatch(name: str, store: Store, order: list[int]) -> None:
        start.wait()
        for cid in order:
            if store.claim_and_lease(cid, job(jid=f"c1.{cid}.0.0"), f"box-{name}", f"b-{name}", deadline=100.0, now=1.0):
                won[name].append(cid)

    threads = [threading.Thread(target=dispatch, args=("a", a, due)),
               threading.Thread(target=dispatch, args=("b", b, due[::-1]))]  # they meet in the middle
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads)
    assert sorted(won["a"] + won["b"]) == sorted(due)  # every contact once: none twice, none lost
    # (how they split depends on the scheduler: on SQLite one thread may take them all)
    assert a.campaign_counts("c1") == {"waiting": 0, "in_flight": n, "done": 0, "total": n}
    held = {box: len(ids) for box, ids in (("box-a", won["a"]), ("box-b", won["b"])) if ids}  # a box that won none holds none
    assert a.open_jobs_by_appliance() == held


def test_results_dedupe_by_appliance_seq_and_by_job_attempt_final(open_store):
    s = open_store()
    rep = Reports(s, lambda: 1.0)
    body = {"job_id": "j1", "kind": "call", "callee": "+48600100200", "attempt": 1, "outcome": "busy", "final": True}
    assert len(rep.ingest_results("box", [{**body, "seq": 1}], 1.0)) == 1
    assert rep.ingest_results("box", [{**body, "seq": 1}], 1.0) == []
    assert rep.ingest_results("box", [{**body, "seq": 2}], 1.0) == []
    assert len(rep.ingest_results("box", [{**body, "seq": 3, "attempt": 2}], 1.0)) == 1
    rows = s.results_after(0, 10)
    assert [r["detail"]["attempt"] for r in rows] == [1, 2] and rows[0]["seq"] < rows[1]["seq"]
    assert [r["contact_id"] for r in rows] == [None, None]  # results of unknown jobs are kept, but move no contact


def _ingest_scene(s: Store) -> list[dict]:
    """Six contacts leased their first call (a two-step campaign that retries busy once),
    and a results batch of the appliance's: new finals of several kinds, a non-final then
    its final, a repeat by seq, a second final of one attempt, results of unknown jobs (one
    with no job id), a late result of an older attempt, a promise to pay."""
    s.create_campaign("c1", "c1", [{"kind": "call", "attempts": 2, "retry_after_seconds": 60}, {"kind": "call"}], {}, 0.0)
    s.upsert_contacts("c1", [ContactRow(f"x{i}", (f"+4860010020{i}",)) for i in range(1, 7)], 0.0)
    for i in range(1, 7):
        assert s.claim_and_lease(i, {**job(jid=f"c1.{i}.0.0"), "callee": f"+4860010020{i}"}, "box", "b1", deadline=100.0, now=1.0)
    s.add_webhook("w1", "http://crm.example/hook", "secret", ["result"], 0.0)

    def r(seq, contact, outcome, final=True, attempt=1, **kw):
        return {"seq": seq, "job_id": f"c1.{contact}.0.0", "kind": "call", "callee": f"+4860010020{contact}", "attempt": attempt,
                "outcome": outcome, "final": final, "_at": 2.0, **kw}

    promise = {"identity": "confirmed", "promise_date": "2026-03-15", "callback_requested": False}
    return [r(1, 1, "busy"),                                     # retried: waiting, n 1
            r(2, 2, "ringing", final=False), r(3, 2, "answered_human"),  # started, then done
            r(1, 1, "busy"),                                     # a repeat of seq 1
            r(4, 3, "no_answer"), r(5, 3, "busy"),                # a second final of attempt 1: dropped
            r(6, 4, "answered_human", voicebot=promise),         # a promise: done, its date kept
            {"seq": 7, "job_id": "nope.9.0.0", "kind": "sms", "outcome": "delivered", "final": True},
            {"seq": 8, "outcome": "unknown", "final": True},
            r(9, 5, "network_error", final=False),               # open: started, still in flight
            r(10, 1, "busy", attempt=0),                          # an older attempt's late final: kept, moves nothing
            r(11, 6, "failed")]


def _ingest_outcome(s: Store) -> dict:
    def rows(sql):
        return [{k: v for k, v in r.items() if k not in ("id", "updated_at")} for r in s._all(sql)]

    return {"results": s.results_after(0, 100), "contacts": rows("SELECT * FROM contacts ORDER BY id"),
            "jobs": rows("SELECT * FROM jobs ORDER BY id"), "counts": s.campaign_counts("c1"),
            "deliveries": rows("SELECT webhook_id, event, payload, state, next_at FROM deliveries ORDER BY id")}


def test_a_results_batch_gives_what_one_by_one_ingest_gives(open_store, store_backend, request, tmp_path):
    """ingest_results takes a batch set-based (a statement per batch, not per result): the
    rows, contacts, jobs, counts and webhook deliveries are those of the same results sent
    one message each, in order."""
    one = open_store()
    with contextlib.ExitStack() as stack:
        url = (str(tmp_path / "batch.db") if store_backend == "sqlite"
               else stack.enter_context(request.getfixturevalue("pg_server").database()))
        batch = Store(url)
        stack.callback(batch.close)
        new_one = []
        for item in _ingest_scene(one):
            new_one += Reports(one, lambda: 3.0).ingest_results("box", [item], 3.0)
        new_batch = Reports(batch, lambda: 3.0).ingest_results("box", _ingest_scene(batch), 3.0)
        assert new_batch == new_one
        assert [r["app_seq"] for r in new_batch] == [1, 2, 3, 4, 6, 7, 8, 9, 10, 11]
        got, want = _ingest_outcome(batch), _ingest_outcome(one)
        assert got == want
        assert [(c["state"], c["step"], c["n"], c["promise_date"]) for c in got["contacts"]] == [
            ("waiting", 0, 1, None), ("done", 0, 0, None), ("waiting", 0, 1, None), ("done", 0, 0, "2026-03-15"),
            ("in_flight", 0, 0, None), ("waiting", 0, 1, None)]
        assert got["counts"] == {"waiting": 3, "in_flight": 1, "done": 2, "total": 6}
        assert [j["state"] for j in got["jobs"]] == ["done", "done", "done", "done", "started", "done"]
        assert len(got["deliveries"]) == 10


def test_enroll_token_is_consumed_once_and_expires(open_store):
    s = open_store()
    s.add_enroll_token("h1", expires_at=100.0, now=0.0)
    s.add_enroll_token("h2", expires_at=100.0, now=0.0)
    assert s.enroll("h1", "box-1", "cred1", now=1.0) == "ok"
    assert s.enroll("h1", "box-2", "cred2", now=1.0) == "bad_token"
    assert s.enroll("h2", "box-1", "cred3", now=1.0) == "exists"
    assert s.enroll("h2", "box-3", "cred3", now=101.0) == "bad_token"
    assert s.appliance_for_credential("cred1") == "box-1"


def test_planner_prefers_on_net_then_free_capacity_and_respects_backpressure():
    prefixes = {"+4850": "26002", "+4860": "26001", "+48601": "26003"}
    assert operator_of("+48601000000", prefixes) == "26003"  # longest prefix wins
    assert operator_of("+48700000000", prefixes) is None
    slots = [Slot("a", capacity=2, open_jobs=0, operators={"26001": 2}, queue_depth=0),
             Slot("b", capacity=3, open_jobs=0, operators={"26002": 3}, queue_depth=0)]
    got = assign(["26001", "26001", "26001", None, "26002", "26002"], slots)
    assert got == ["a", "a", "b", "b", "b", None]


def test_campaign_state_table_and_next_step():
    assert cp.TRANSITIONS[cp.CampaignState.RUNNING]["pause"] is cp.CampaignState.PAUSED
    assert "resume" not in cp.TRANSITIONS[cp.CampaignState.CANCELLED]
    call = cp.Step(JobKind.CALL, attempts=3)
    assert cp.next_after(call, 0, "busy") is cp.Next.RETRY
    assert cp.next_after(call, 2, "busy") is cp.Next.NEXT_STEP
    assert cp.next_after(call, 0, "answered_human") is cp.Next.FINISH
    assert cp.next_after(call, 0, "expired") is cp.Next.REPLAN
    hlr = cp.Step(JobKind.HLR)
    assert cp.next_after(hlr, 0, "invalid") is cp.Next.FINISH
    assert cp.next_after(hlr, 0, "active") is cp.Next.NEXT_STEP
    assert cp.render("Hi {name}, {amount} {currency}", {"name": "Ola", "amount": "5.00", "currency": None}) == "Hi Ola, 5.00 "
    with pytest.raises(cp.CampaignError):
        cp.check_template("{name!r}", "t")


def test_after_result_moves_the_cursor_by_the_next_step_table():
    steps = (cp.Step(JobKind.CALL, attempts=2, retry_after_seconds=600.0), cp.Step(JobKind.SMS, text="hi"))
    at = {"step": 0, "n": 0, "gen": 0}
    assert cp.after_result(at, steps, "busy", cancelled=False, now=10.0) == cp.Move("waiting", 0, 1, 0, 610.0, "busy")
    assert cp.after_result({**at, "n": 1}, steps, "busy", cancelled=False, now=10.0) == cp.Move("waiting", 1, 0, 0, 10.0, "busy")
    assert cp.after_result({**at, "gen": 2}, steps, "expired", cancelled=False, now=10.0) == cp.Move("waiting", 0, 0, 3, 10.0, None)
    assert cp.after_result(at, steps, "answered_human", cancelled=False, now=10.0).state == "done"
    assert cp.after_result({"step": 1, "n": 0, "gen": 0}, steps, "delivered", cancelled=False, now=10.0).state == "done"
    assert cp.after_result(at, steps, "busy", cancelled=True, now=10.0) == cp.Move("done", 0, 0, 0, 10.0, "cancelled")
    assert cp.job_id("c1", 7, 1, 2, 0) == "c1.7.1.2" and cp.job_id("c1", 7, 1, 2, 3) == "c1.7.1.2.g3"


def test_stop_words_fold_case_accents_and_punctuation():
    from controller.stopwords import DEFAULT_STOP_WORDS, stop_matcher
    is_stop = stop_matcher(DEFAULT_STOP_WORDS)
    for text in ("STOP", "stop.", "Rezygnuję", "REZYGNUJE!", "nie", "Wypisz mnie", "nie dzwoń więcej", "  Stop  "):
        assert is_stop(text), text
    for text in ("Zapłacę jutro", "niestety nie mam", "", None, "STOPIEŃ"):
        assert not is_stop(text), text


def test_a_version_1_store_is_migrated_and_a_newer_one_refused(store_url, open_store):
    raw = RawDb(store_url)  # the store as version 1 left it: base DDL without the later columns
    base = "".join(schema.BASE)
    for added in ("    promise_date TEXT,               -- the voicebot's promise to pay (ISO date), version 2\n",
                  "    external_id TEXT,                -- the contact's CRM key, copied at ingest (it never changes), version 3\n",
                  ",\n    choice TEXT,                     -- an answered callback's menu choice, version 2\n"
                  "    external_id TEXT                 -- the matched contact's CRM key, version 3"):
        assert added in base
        base = base.replace(added, "")
    raw.script(base + "INSERT INTO meta VALUES ('schema', '1');"
               " INSERT INTO campaigns VALUES ('c1', 'c1', 'running', '[]', '{}', 0, 0);"
               " INSERT INTO contacts(campaign_id, external_id, phones, state, next_at, created_at, updated_at)"
               " VALUES ('c1', 'debtor-7', '[]', 'waiting', 0, 0, 0);"
               " INSERT INTO results(dedupe, contact_id, outcome, final, at, body) VALUES ('d1', 1, 'busy', 1, 0, '{}');")
    assert "promise_date" not in raw.columns("contacts")
    open_store().close()
    open_store().close()  # a second open runs nothing again
    assert {"promise_date"} <= raw.columns("contacts")
    assert {"choice", "external_id"} <= raw.columns("inbound")
    assert raw.one("SELECT external_id FROM results") == "debtor-7"  # version 3 filled the rows stored before
    assert raw.one("SELECT value FROM meta WHERE key = 'schema'") == str(schema.SCHEMA_VERSION)
    raw.conn.execute(f"UPDATE meta SET value = '{schema.SCHEMA_VERSION + 1}' WHERE key = 'schema'")
    with pytest.raises(StoreError, match="newer than this controller"):
        open_store()
    raw.conn.close()


def test_two_stores_opening_a_new_database_at_once_migrate_it_once(open_store):
    """Two controllers starting together on an empty database: one creates the schema, the
    other waits for it (SQLite's write lock, PostgreSQL's advisory lock) and finds it done."""
    stores: list[Store] = []
    errors: list[BaseException] = []
    go = threading.Barrier(3)

    def start() -> None:
        go.wait()
        try:
            stores.append(open_store())
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == [] and len(stores) == 3
    assert all(s.ping() == schema.SCHEMA_VERSION for s in stores)


def test_on_postgresql_a_contact_another_controller_is_claiming_is_passed_over_not_waited_for(pg_server):
    """SKIP LOCKED: while controller A's transaction holds contact 1, B's claim of it says
    no at once (the other contact it takes), and takes it once A let it go unclaimed."""
    with pg_server.database() as url:
        a, b = Store(url), Store(url)
        try:
            a.create_campaign("c1", "c1", [{"kind": "call"}], {}, 0.0)
            a.upsert_contacts("c1", [ContactRow("x", ("+48600100200",)), ContactRow("y", ("+48600100201",))], 0.0)
            got: list[bool] = []
            with a.tx() as c:
                c.execute("SELECT 1 FROM contacts WHERE id = 1 FOR UPDATE")
                # B in another thread: were it to wait for A's lock, this thread (holding it) would never see it end
                t = threading.Thread(target=lambda: got.extend(
                    b.claim_and_lease(i, job(jid=f"c1.{i}.0.0"), "box-b", "b1", deadline=100.0, now=1.0) for i in (1, 2)))
                t.start()
                t.join(timeout=30)
                assert not t.is_alive(), "B waited for A's lock instead of skipping the contact"
            assert got == [False, True]
            assert b.claim_and_lease(1, job(jid="c1.1.0.0"), "box-b", "b2", deadline=100.0, now=2.0)
            assert a.campaign_counts("c1")["in_flight"] == 2
        finally:
            a.close(), b.close()


async def test_on_postgresql_an_import_an_opt_out_or_a_start_wakes_every_controller_once_committed(pg_server):
    """LISTEN/NOTIFY: controller B hears what A's store committed (an import, an opt-out, a
    campaign started), not what A rolled back (an import into a cancelled campaign)."""
    import asyncio

    from controller.store import Conflict

    with pg_server.database() as url:
        a, b = Store(url), Store(url)
        heard: asyncio.Queue[str] = asyncio.Queue()
        listener = asyncio.create_task(b.listen_for_wakeups(heard.put_nowait))
        try:
            assert await asyncio.wait_for(heard.get(), 10) == "listening"
            a.create_campaign("c1", "c1", [{"kind": "call"}], {}, 0.0, state="draft")
            a.create_campaign("gone", "gone", [{"kind": "call"}], {}, 0.0, state="cancelled")
            with pytest.raises(Conflict):
                a.upsert_contacts("gone", [ContactRow("x", ("+48600100200",))], 1.0, closed=("cancelled",))
            a.upsert_contacts("c1", [ContactRow("x", ("+48600100200",))], 1.0)
            a.upsert_contacts("c1", [ContactRow("x", ("+48600100200",))], 2.0)  # an update only: no new work
            assert a.set_campaign_state("c1", "draft", "running", 3.0)
            assert a.add_optout("+48600100200", "api", None, 4.0)
            assert not a.add_optout("+48600100200", "api", None, 5.0)  # listed already: nothing new
            got = [await asyncio.wait_for(heard.get(), 10) for _ in range(3)]
            assert got == ["contacts:c1", "campaign:c1", "optouts"]
            await asyncio.sleep(0.3)  # what would have followed (the rolled-back import, the repeats) never comes
            assert heard.empty()
        finally:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener
            a.close(), b.close()


async def test_on_sqlite_there_is_no_one_else_to_wake(tmp_path):
    store = Store(tmp_path / "c.db")
    heard: list[str] = []
    await store.listen_for_wakeups(heard.append)  # returns at once: one process owns the file
    store.add_optout("+48600100200", "api", None, 1.0)
    assert heard == []
    store.close()


def test_two_stores_importing_overlapping_files_into_one_campaign_count_each_contact_once(open_store):
    """Two controllers take imports for one campaign at once, half of the rows in both
    files: the per-state counts equal the contacts stored (the known rows are counted
    under the campaign's lock, not before the other's import commits)."""
    a, b = open_store(), open_store()
    a.create_campaign("c1", "c1", [{"kind": "call"}], {}, 0.0)
    files = {"a": [ContactRow(f"x{i}", (f"+486001{i:05d}",)) for i in range(0, 300)],
             "b": [ContactRow(f"x{i}", (f"+486001{i:05d}",)) for i in range(150, 450)]}
    answers: dict[str, tuple[int, int]] = {}
    go = threading.Barrier(2)

    def load(name: str, store: Store) -> None:
        go.wait()
        for i in range(0, 300, 50):  # in parts, so the two interleave
            created, updated = store.upsert_contacts("c1", files[name][i:i + 50], 1.0)
            got = answers.get(name, (0, 0))
            answers[name] = (got[0] + created, got[1] + updated)

    threads = [threading.Thread(target=load, args=(n, s)) for n, s in (("a", a), ("b", b))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads)
    assert answers["a"][0] + answers["b"][0] == 450  # each contact created once, by one of them
    assert answers["a"][1] + answers["b"][1] == 150
    assert a.campaign_counts("c1") == {"waiting": 450, "in_flight": 0, "done": 0, "total": 450}


def test_on_postgresql_an_import_waits_for_another_import_into_its_campaign_before_counting(pg_server):
    """The race above made certain: import A is held inside its transaction (a row it
    inserts is locked by an open transaction), import B of overlapping rows starts; B must
    count what is known only after A commits, or it counts A's rows as its own new ones."""
    import psycopg

    with pg_server.database() as url:
        a, b = Store(url), Store(url)
        held = psycopg.connect(url)  # not autocommit: its insert stays uncommitted until rollback
        try:
            a.create_campaign("c1", "c1", [{"kind": "call"}], {}, 0.0)
            held.execute("INSERT INTO contacts(campaign_id, external_id, phones, state, next_at, created_at, updated_at)"
                         " VALUES ('c1', 'x299', '[]', 'waiting', 0, 0, 0)")
            rows = [ContactRow(f"x{i}", (f"+486001{i:05d}",)) for i in range(450)]
            answers: dict[str, tuple[int, int]] = {}

            def load(name: str, store: Store, part: list[ContactRow]) -> None:
                answers[name] = store.upsert_contacts("c1", part, 1.0)

            def lock_waiters(n: int) -> None:
                for _ in range(300):  # until n sessions wait on a lock: each import reached its wait
                    if a.conn.execute("SELECT COUNT(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                                      " AND datname = current_database()").fetchone()[0] >= n:
                        return
                    threading.Event().wait(0.05)
                raise AssertionError(f"{n} imports never waited on a lock")

            ta = threading.Thread(target=load, args=("a", a, rows[:300]))
            ta.start()
            lock_waiters(1)  # A waits for the held row
            tb = threading.Thread(target=load, args=("b", b, rows[150:]))
            tb.start()
            lock_waiters(2)  # B waits too: for A's campaign lock (or, without it, for A's rows)
            held.rollback()
            for t in (ta, tb):
                t.join(timeout=60)
            assert answers == {"a": (300, 0), "b": (150, 150)}
            assert a.campaign_counts("c1") == {"waiting": 450, "in_flight": 0, "done": 0, "total": 450}
        finally:
            held.close()
            a.close(), b.close()


async def test_on_postgresql_an_import_on_one_controller_wakes_the_dispatcher_of_another(pg_server, tmp_path):
    """Two controllers on one database, dispatch ticks an hour apart: a campaign started and
    filled through A's API reaches the appliance linked to B at once (B's listener), not at
    B's next tick."""
    import aiohttp

    from controller_harness import FakeAppliance, FakeClock, enroll, make_config, running

    clock = FakeClock(1768471200.0)  # 2026-01-15 10:00 UTC: inside the default calling hours in Warsaw
    with pg_server.database() as url:
        slow = {"interval_seconds": 3600.0}
        async with running(make_config(url, recordings=tmp_path / "a", dispatch=slow), clock) as (a, key), \
                running(make_config(url, recordings=tmp_path / "b", dispatch=slow), clock) as (b, _), \
                aiohttp.ClientSession() as s:
            app = FakeAppliance(s, b.url, await enroll(s, b, "box-01"), clock=clock)
            await app.connect()
            await asyncio.sleep(0.5)  # B's dispatcher ran for the hello and found nothing to do
            h = {"Authorization": f"Bearer {key}"}
            async with s.post(f"{a.url}/v1/campaigns", json={"id": "c1", "strategy": [{"kind": "call"}], "start": True},
                              headers=h) as r:
                assert r.status == 201, await r.text()
            async with s.post(f"{a.url}/v1/campaigns/c1/contacts", json=[{"external_id": "d1", "phones": ["+48600100200"]}],
                              headers=h) as r:
                assert r.status == 200, await r.text()
            batch = await app.expect("jobs", timeout=10.0)
            assert [j["callee"] for j in batch["jobs"]] == ["+48600100200"]
            await app.close()


def test_sqlite_placeholders_become_psycopgs_and_quoted_text_stays_text():
    from controller.store.backend import pg_sql

    assert pg_sql("SELECT * FROM t WHERE a = ? AND b = :bee AND c::text LIKE '50%?:x' -- :y ? 5%\n AND d = ?") == (
        "SELECT * FROM t WHERE a = %s AND b = %(bee)s AND c::text LIKE '50%%?:x' -- :y ? 5%%\n AND d = %s")
    assert pg_sql("SELECT 'it''s ?', \"col?\" FROM t WHERE x = ?") == "SELECT 'it''s ?', \"col?\" FROM t WHERE x = %s"


def test_a_percent_sign_in_a_query_with_parameters_reaches_postgresql_as_one(pg_server):
    with pg_server.database() as url:
        s = Store(url)
        try:
            s.add_optout("+48600100200", "api", "50% sure", 1.0)
            assert s.conn.execute("SELECT reason FROM optouts WHERE reason LIKE '50%' AND number = ?",
                                  ("+48600100200",)).fetchone()[0] == "50% sure"
            assert s.conn.execute("SELECT COUNT(*) FROM optouts WHERE reason LIKE '%sure'").fetchone()[0] == 1  # no parameters
        finally:
            s.close()


def test_a_postgresql_server_that_went_away_is_a_503_from_healthz_and_its_return_is_seen():
    """The server stops under a running store: /healthz's read fails within the pool's
    checkout timeout and is reported as the database failing; once the server is back the
    same store answers and writes again."""
    from controller.metrics import health
    from pg_harness import pg_server

    with pg_server() as server:
        s = Store(server.url())  # its own server, so stopping it disturbs no other test
        try:
            assert health(s, 0)[0] == 200
            server.stop(signal.SIGINT)  # a fast shutdown: what was committed stays for the restart below
            done: list[tuple[int, dict]] = []
            t = threading.Thread(target=lambda: done.append(health(s, 0)))
            t.start()
            t.join(timeout=60)
            assert not t.is_alive(), "/healthz waited for the database for a minute"
            status, body = done[0]
            assert status == 503 and body["database"]["ok"] is False, body
            server.restart()  # back (as after a crash): the pool drops its dead connections and makes new ones
            answers = [health(s, 0) for _ in range(3)]  # at most one more error per dead pooled connection
            assert answers[-1][0] == 200, answers
            s.add_optout("+48600100200", "api", None, 1.0)
            assert s.is_opted_out("+48600100200")
        finally:
            s.close()


def test_a_claim_rounds_counts_are_what_the_rules_read(open_store):
    """The contact rules' reads: attempts in the window, the last conversation, today's
    attempts to the number, the opt-out."""
    s = open_store()
    result = stored_result
    with s.tx() as c:
        for row in (result(1, 1, "+48600000001", "busy", 10.0), result(2, 1, "+48600000001", "answered_human", 50.0),
                    result(3, 1, "+48600000001", "channel_error", 60.0, counts=0), result(4, 2, "+48600000001", "busy", 70.0),
                    result(5, 1, "+48600000002", "no_answer", 80.0)):
            assert s.insert_result(c, row) is not None

    def counts(contact: int, number: str, window_start: float, day_start: float) -> RuleCounts:
        with s.claim_round(0.0, 1) as rnd:
            return rnd.rule_counts([RuleAsk(contact, number, window_start, day_start)])[0]

    assert counts(1, "+48600000001", window_start=20.0, day_start=40.0) == RuleCounts(
        attempts=[50.0, 80.0], last_conversation=50.0, attempts_today=2, opted_out=False)
    with s.tx() as c:
        s.opt_out(c, "+48600000001", "sms", "STOP", 90.0)
    assert counts(3, "+48600000001", window_start=0.0, day_start=0.0) == RuleCounts(
        attempts=[], last_conversation=None, attempts_today=3, opted_out=True)


def test_two_enrolls_of_one_id_at_once_one_wins_and_the_losers_token_stays_unused(open_store):
    """Two controllers enrolling one appliance id with two tokens at the same moment: one
    is enrolled, the other answers "exists" (not a 500 from the unique index, as on
    PostgreSQL, where the loser's look saw no committed row) and its token is not spent."""
    a, b = open_store(), open_store()
    now = time.time()
    a.add_enroll_token("t1", now + 600, now)
    answers: dict[str, object] = {}

    def enroll_on_a() -> None:
        try:
            answers["a"] = a.enroll("t1", "box-01", "h-a", now)
        except Exception as exc:  # what the API would have answered 500 for
            answers["a"] = exc

    with b.tx() as c:  # B's enroll, inserted and not yet committed
        c.execute("INSERT INTO appliances(id, credential_hash, enrolled_at) VALUES (?, ?, ?)", ("box-01", "h-b", now))
        racer = threading.Thread(target=enroll_on_a)
        racer.start()
        time.sleep(0.5)  # A looks now: PostgreSQL shows it no row; SQLite makes it wait for B
    racer.join(10)
    assert answers == {"a": "exists"}
    assert a.appliance_for_credential("h-b") == "box-01" and a.appliance_for_credential("h-a") is None
    assert a.enroll("t1", "box-02", "h-2", now) == "ok"  # t1 was not spent by the lost race


#: Ids a CRM or an appliance may send: the characters an array literal quotes or escapes.
_AWKWARD_IDS = ['plain', 'a"b', 'back\\slash', '\\"', 'comma,here', '{braces}', ' lead', 'trail ', 'NULL', 'null', '',
                'tab\there', 'new\nline', 'zażółć', '日本']


def test_one_of_finds_every_value_and_no_other_on_both_backends(open_store):
    """``one_of`` sends PostgreSQL an array as its literal text (``backend.pg_array``):
    quoted and escaped, each value must come back as itself, and an int array as ints."""
    from controller.store.base import one_of

    s = open_store()
    with s.tx() as c:
        c.execute("CREATE TEMPORARY TABLE one_of_probe (v TEXT, n INTEGER)")
        for i, v in enumerate(_AWKWARD_IDS):
            c.execute("INSERT INTO one_of_probe (v, n) VALUES (?, ?)", (v, i * 100_003))
        c.execute("INSERT INTO one_of_probe (v, n) VALUES (?, ?)", ("not asked", -1))
        for values in (_AWKWARD_IDS, _AWKWARD_IDS[1:4], ["absent", '"']):
            found = [r[0] for where, args in one_of(c, "v", values) for r in c.execute(f"SELECT v FROM one_of_probe WHERE {where}", args)]
            assert sorted(found) == sorted(v for v in values if v in _AWKWARD_IDS), values
        numbers = [i * 100_003 for i in (0, 3, 14)] + [5]
        found = [r[0] for where, args in one_of(c, "n", numbers) for r in c.execute(f"SELECT n FROM one_of_probe WHERE {where}", args)]
        assert sorted(found) == [0, 300_009, 1_400_042]
        c.execute("DROP TABLE one_of_probe")


def test_pg_array_literal_reads_back_as_the_values(pg_server):
    """Any text but NUL (which PostgreSQL text cannot hold) survives the array literal."""
    import psycopg
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from controller.store.backend import pg_array

    with pg_server.database() as url, psycopg.connect(url, autocommit=True) as conn:
        @settings(max_examples=200, deadline=None)
        @given(st.lists(st.text(st.characters(blacklist_characters="\x00", codec="utf-8")), min_size=1, max_size=8))
        def round_trip(values: list[str]) -> None:
            literal, kind = pg_array(values)  # type: ignore[misc]
            assert kind == "text"
            assert conn.execute("SELECT %s::text[]", (literal,)).fetchone()[0] == values

        round_trip()
