"""Claim rounds (``Store.claim_round``): the dispatcher leases due contacts in rounds of up
to ``CHUNK`` contacts in one transaction. What a round guarantees, on both backends: two
controllers' rounds racing over one database lease every contact once; the contact rules'
counts a round reads, for several contacts and numbers at once; a contact a round holds and
does not lease stays waiting; on PostgreSQL a round passes over the contacts another
round holds (SKIP LOCKED) instead of waiting for them.

Tests that take ``open_store`` run on SQLite and on PostgreSQL (tests/conftest.py).
"""
from __future__ import annotations

import threading

from controller.contacts import ContactRow
from controller.store import Store
from controller.store.jobs import Lease, RuleAsk, RuleCounts
from controller_harness import stored_result


def _campaign(s: Store, n: int, *, phones=lambda i: (f"+486001{i:05d}",)) -> None:
    s.create_campaign("c1", "c1", [{"kind": "call"}], {}, 0.0)
    s.upsert_contacts("c1", [ContactRow(f"x{i}", phones(i)) for i in range(n)], 0.0)


def _lease_all(rnd, box: str) -> list[int]:
    rnd.lease([Lease(c["id"], c["campaign_id"], {"id": f"c1.{c['id']}.0.0", "kind": "call", "callee": c["phones"][0],
                                                  "campaign": "c1"}, box, f"b-{box}", 100.0)
               for c in rnd.contacts])
    return [c["id"] for c in rnd.contacts]


def test_two_stores_leasing_in_rounds_in_threads_lease_each_contact_once(open_store):
    a, b = open_store(), open_store()
    n = 600
    _campaign(a, n)
    won: dict[str, list[int]] = {"a": [], "b": []}
    start = threading.Barrier(2)
    errors: list[BaseException] = []

    def dispatch(name: str, store: Store) -> None:
        try:
            start.wait()
            while True:
                with store.claim_round(1.0, 25) as rnd:
                    if not rnd.contacts:
                        return
                    won[name] += _lease_all(rnd, f"box-{name}")
        except BaseException as exc:  # noqa: BLE001 - reported below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=dispatch, args=(name, s)) for name, s in (("a", a), ("b", b))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads) and errors == []
    assert sorted(won["a"] + won["b"]) == list(range(1, n + 1))  # every contact once: none twice, none lost
    assert a.campaign_counts("c1") == {"waiting": 0, "in_flight": n, "done": 0, "total": n}
    assert a.open_jobs_by_appliance() == {f"box-{k}": len(v) for k, v in won.items() if v}
    assert a.get_job("c1.1.0.0")["spec"]["callee"] == "+48600100000"


def test_a_contact_a_round_holds_and_does_not_lease_stays_waiting(open_store):
    s = open_store()
    _campaign(s, 3)
    with s.claim_round(1.0, 10) as rnd:
        assert [c["id"] for c in rnd.contacts] == [1, 2, 3]
        assert rnd.contacts[0]["phones"] == ["+48600100000"]
        rnd.lease([Lease(2, "c1", {"id": "c1.2.0.0", "kind": "call", "callee": "+48600100001", "campaign": "c1"},
                         "box", "b1", 100.0)])
    assert s.campaign_counts("c1") == {"waiting": 2, "in_flight": 1, "done": 0, "total": 3}
    assert [c["id"] for c in s.list_contacts("c1", 0, 10) if c["state"] == "waiting"] == [1, 3]
    with s.claim_round(-1.0, 10) as rnd:  # none due before the import's time
        assert rnd.contacts == []


def test_a_rounds_rule_counts_for_several_contacts_and_numbers_at_once(open_store):
    """Attempts in the window, the last conversation, today's calls to the number (results
    of every contact), the opt-out: for several contacts and numbers in one round, each
    with its own window and day."""
    s = open_store()
    result = stored_result
    with s.tx() as c:
        for row in (result(1, 1, "+48600000001", "busy", 10.0), result(2, 1, "+48600000001", "answered_human", 50.0),
                    result(3, 1, "+48600000001", "channel_error", 60.0, counts=0), result(4, 2, "+48600000001", "busy", 70.0),
                    result(5, 1, "+48600000002", "no_answer", 80.0), result(6, 2, "+48600000002", "answered_human", 30.0),
                    result(7, 2, "+48600000002", "answered_human", 20.0)):
            assert s.insert_result(c, row) is not None
        s.opt_out(c, "+48600000003", "sms", "STOP", 90.0)
    asks = [RuleAsk(1, "+48600000001", 20.0, 40.0), RuleAsk(1, "+48600000002", 0.0, 75.0),
            RuleAsk(2, "+48600000001", 5.0, 0.0), RuleAsk(3, "+48600000003", 0.0, 0.0)]
    _campaign(s, 0)
    with s.claim_round(1.0, 10) as rnd:
        got = rnd.rule_counts(asks)
    assert got == [RuleCounts(attempts=[50.0, 80.0], last_conversation=50.0, attempts_today=2, opted_out=False),
                   RuleCounts(attempts=[10.0, 50.0, 80.0], last_conversation=50.0, attempts_today=1, opted_out=False),
                   RuleCounts(attempts=[20.0, 30.0, 70.0], last_conversation=30.0, attempts_today=3, opted_out=False),
                   RuleCounts(attempts=[], last_conversation=None, attempts_today=0, opted_out=True)]


def test_a_rounds_counts_have_the_calls_in_flight_to_each_number(open_store):
    """Open call jobs to a number count until their placed attempt is stored (then the
    result counts); jobs done, SMS and other numbers do not."""
    s = open_store()
    _campaign(s, 5, phones=lambda i: ("+48600100200",) if i < 4 else ("+48600100299",))
    with s.claim_round(1.0, 3) as rnd:  # contacts 1-3 share a number with 4
        rnd.lease([Lease(c["id"], "c1", {"id": f"c1.{c['id']}.0.0", "kind": kind, "callee": c["phones"][0], "campaign": "c1"},
                         "box", "b1", 100.0) for c, kind in zip(rnd.contacts, ("call", "call", "sms"), strict=True)])
    with s.tx() as c:  # contact 1's call was placed (a non-final result that counts), then ends
        s.insert_result(c, stored_result(1, 1, "+48600100200", "ringing", 2.0, final=0, job_id="c1.1.0.0"))
    with s.claim_round(1.0, 10) as rnd:
        assert [c["id"] for c in rnd.contacts] == [4, 5]
        got = rnd.rule_counts([RuleAsk(4, "+48600100200", 0.0, 0.0), RuleAsk(5, "+48600100299", 0.0, 0.0)])
    assert [(g.attempts_today, g.calls_in_flight) for g in got] == [(1, 1), (0, 0)]  # contact 2's call is still to come
    with s.tx() as c:
        s.jobs_reported(c, {"c1.2.0.0"}, (), 3.0)
    with s.claim_round(1.0, 10) as rnd:
        assert rnd.rule_counts([RuleAsk(4, "+48600100200", 0.0, 0.0)])[0].calls_in_flight == 0


def test_on_postgresql_a_round_passes_over_the_contacts_another_round_holds(pg_server):
    with pg_server.database() as url:
        a, b = Store(url), Store(url)
        try:
            _campaign(a, 4)
            seen: list[list[int]] = []
            with a.claim_round(1.0, 2) as held:
                assert [c["id"] for c in held.contacts] == [1, 2]
                # B in another thread: were it to wait for A's locks, this thread (holding them) would never see it end
                t = threading.Thread(target=lambda: seen.append(_in_a_round(b)))
                t.start()
                t.join(timeout=30)
                assert not t.is_alive(), "B's round waited for A's instead of passing its contacts over"
            assert seen == [[3, 4]]
            assert a.campaign_counts("c1") == {"waiting": 2, "in_flight": 2, "done": 0, "total": 4}
        finally:
            a.close(), b.close()


def _in_a_round(s: Store) -> list[int]:
    with s.claim_round(1.0, 10) as rnd:
        return _lease_all(rnd, "box-b")


async def test_contacts_sharing_a_number_do_not_pass_its_daily_cap_together(open_store):
    """Two controllers dispatch five contacts sharing one number, on the shipped rules
    (cap 3 a day, calling hours in the callee's zone: noon in Warsaw): three calls are
    leased between them, in one round and across the two; the other two are refused for
    the cap with the calls in flight named, and looked at again in 10 minutes."""
    from datetime import UTC, datetime

    from controller import planner
    from controller.dispatcher import Dispatcher
    from controller.reports import Reports
    from controller.rules import IN_FLIGHT_RECHECK

    a, b = open_store(), open_store()
    now = datetime(2026, 1, 15, 11, tzinfo=UTC).timestamp()
    a.create_campaign("c1", "c1", [{"kind": "call"}], {}, 0.0)
    a.upsert_contacts("c1", [ContactRow(f"x{i}", ("+48600100200",)) for i in range(5)]
                      + [ContactRow("other", ("+48600100299",))], 0.0)
    sent: list[str] = []

    async def send(appliance_id, msg) -> bool:
        sent.extend(f"{appliance_id}:{j['callee']}" for j in msg.jobs)
        return True

    for store, box, capacity in ((a, "box-a", 2), (b, "box-b", 10)):
        d = Dispatcher(store, Reports(store, lambda: now), lambda: now, queue_depth=0)
        await d.tick([planner.Slot(box, capacity, 0, {}, 0)], send)
    assert sorted(x.split(":")[1] for x in sent) == ["+48600100200"] * 3 + ["+48600100299"]
    assert sorted(x.split(":")[0] for x in sent) == ["box-a", "box-a", "box-b", "box-b"]
    refused = [r for r in a.results_after(0, 100) if r["outcome"] == "refused_by_policy"]
    assert [r["reason"] for r in refused] == ["daily_cap_per_number"] * 2
    assert all("0 call attempts to this number today and 3 in flight (cap 3)" in r["detail"]["detail"] for r in refused)
    assert {r["detail"]["retry_at"] for r in refused} == {now + IN_FLIGHT_RECHECK.total_seconds()}
    assert a.campaign_counts("c1") == {"waiting": 2, "in_flight": 4, "done": 0, "total": 6}


def test_on_postgresql_a_big_import_refreshes_the_planners_counts_at_once(pg_server):
    """ANALYZE after an import that grew the contacts by a tenth or more, not a minute
    later by autovacuum: before it the planner believed the table empty and sorted every
    waiting contact for each claim round. A small import leaves the counts as they were."""
    with pg_server.database() as url:
        s = Store(url)
        try:
            def planner_count() -> float:
                return s.conn.execute("SELECT reltuples FROM pg_class WHERE oid = 'contacts'::regclass").fetchone()[0]

            assert planner_count() < 0  # never analyzed
            _campaign(s, 3000)
            assert planner_count() == 3000
            s.upsert_contacts("c1", [ContactRow(f"y{i}", (f"+486002{i:05d}",)) for i in range(200)], 1.0)
            assert planner_count() == 3000  # 200 new rows: below both thresholds
            plan = " ".join(r[0] for r in s.conn.execute(
                "EXPLAIN SELECT * FROM contacts WHERE state = 'waiting' AND next_at <= 2.0 AND campaign_id = ANY(ARRAY['c1'])"
                " ORDER BY next_at LIMIT 500 FOR UPDATE SKIP LOCKED").fetchall())
            assert "contacts_due" in plan and "Sort" not in plan, plan
        finally:
            s.close()


def test_on_sqlite_a_round_walks_the_due_index_not_a_sort_of_the_campaign(tmp_path):
    """The round's read, as SQLite runs it, takes the due contacts in ``contacts_due``'s
    order: offered the campaign's unique index it used to sort the whole campaign each
    round (1,011 jobs/s at 1,000,000 contacts)."""
    s = Store(str(tmp_path / "c.db"))
    try:
        _campaign(s, 10)
        seen: list[str] = []
        s.conn.set_trace_callback(seen.append)  # the statements with their values, as run
        with s.claim_round(1.0, 5) as rnd:
            assert len(rnd.contacts) == 5
        s.conn.set_trace_callback(None)
        read = next(sql for sql in seen if sql.startswith("SELECT * FROM contacts"))
        plan = " ".join(str(tuple(r)) for r in s.conn.execute(f"EXPLAIN QUERY PLAN {read}"))
        assert "contacts_due" in plan and "TEMP B-TREE" not in plan, plan
    finally:
        s.close()
