"""Leftovers of issue 18's ingest work, on both stores: the wake-ups that come only with
work (the delivery worker when deliveries were queued, the dispatcher when capacity grew
or a new final result came), and the results table's index by callee, which every read
by callee keeps after results_shown went (schema version 4)."""
from __future__ import annotations

import asyncio
from typing import Any

from common.contract import Heartbeat, Result, Results
from controller.link import Link, LinkHub
from controller.reports import Reports
from controller.store import schema
from controller_harness import RawDb, query_plan


def _batch(final: bool) -> list[dict[str, Any]]:
    return [{"job_id": "j1", "kind": "call", "callee": "+48600100200", "attempt": 1, "outcome": "busy", "final": final, "seq": 1}]


def test_the_delivery_worker_is_woken_only_when_deliveries_were_queued(open_store):
    s = open_store()
    queued: list[int] = []
    rep = Reports(s, lambda: 1.0, on_queued=lambda: queued.append(1))
    assert rep.ingest_results("box", _batch(True), 1.0) and queued == []  # no webhook: nothing to deliver
    s.add_webhook("wh1", "https://crm.example/hook", "secret", ["result"], 1.0)
    assert rep.ingest_results("box", [{**_batch(True)[0], "seq": 2, "attempt": 2}], 1.0) and queued == [1]
    assert rep.ingest_results("box", [{**_batch(True)[0], "seq": 2, "attempt": 2}], 1.0) == [] and queued == [1]  # a repeat


class _Ws:
    closed = False

    async def send_str(self, data: str) -> None:
        pass


def test_the_dispatcher_is_woken_by_more_capacity_and_by_final_results(open_store):
    s = open_store()
    woken: list[int] = []
    hub = LinkHub(s, Reports(s, lambda: 1.0), lambda: 1.0, wake=lambda: woken.append(1))
    link = Link("box", _Ws())  # type: ignore[arg-type]
    link.capacity = 4

    async def scene() -> None:
        await hub.on_heartbeat(link, Heartbeat(capacity=4))
        await hub.on_heartbeat(link, Heartbeat(capacity=0))
        await hub.on_heartbeat(link, Heartbeat())
        assert woken == []  # same, smaller or no capacity: no room for a job
        await hub.on_heartbeat(link, Heartbeat(capacity=2))
        assert woken == [1] and link.capacity == 2
        await hub.on_results(link, Results(results=[Result(**b) for b in _batch(False)]))  # a call still running
        assert len(woken) == 1
        await hub.on_results(link, Results(results=[Result(**{**b, "seq": 2}) for b in _batch(True)]))  # its end
        assert len(woken) == 2
        await hub.on_results(link, Results(results=[Result(**{**b, "seq": 2}) for b in _batch(True)]))  # sent again
        assert len(woken) == 2
    asyncio.run(scene())


def test_every_read_of_results_by_callee_has_an_index(open_store):
    s = open_store()
    reads = [("SELECT contact_id, campaign_id, external_id FROM results WHERE callee = ? AND number_shown = ?"
              " AND contact_id IS NOT NULL ORDER BY seq DESC LIMIT 1", ("+48600100200", "+48690000001")),
             ("SELECT contact_id, campaign_id, external_id FROM results WHERE callee = ? AND contact_id IS NOT NULL"
              " AND number_shown IS NOT NULL ORDER BY seq DESC LIMIT 1", ("+48600100200",)),
             ("SELECT COUNT(*) FROM results WHERE callee = ? AND kind = 'call' AND counts_as_attempt = 1 AND at >= ?",
              ("+48600100200", 0.0))]
    for sql, args in reads:
        plan = query_plan(s, sql, args)
        assert "results_callee" in plan, (sql, plan)


def test_a_version_3_store_drops_results_shown(store_url, open_store):
    open_store().close()
    raw = RawDb(store_url)
    raw.script("CREATE INDEX results_shown ON results(callee, number_shown);"
               " UPDATE meta SET value = '3' WHERE key = 'schema';")
    raw.close()
    st = open_store()
    assert st.ping() == schema.SCHEMA_VERSION == 5  # through version 5 (text collation "C" on PostgreSQL)
    raw = RawDb(store_url)
    gone = (raw.one("SELECT to_regclass('results_shown') IS NULL") if raw.pg
            else raw.one("SELECT COUNT(*) = 0 FROM sqlite_master WHERE name = 'results_shown'"))
    raw.close()
    assert gone
