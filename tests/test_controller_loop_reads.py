"""The API's hot reads written once (``store.base.Read``) and run two ways: on the store's
own connection (``Store.run``) and on the event loop (``LoopReads``: on PostgreSQL an
asyncio pool of its own, no thread). Both give the same answers, on both backends, for a
campaign with its counts, a contact, a contact's history (results and inbound events, two
statements on SQLite, one on PostgreSQL) and a page of results.

Tests that take ``open_store`` run on SQLite and on PostgreSQL (tests/conftest.py).
"""
from __future__ import annotations

import threading

from controller_harness import stored_result

from controller.contacts import ContactRow
from controller.store.loop_reads import LoopReads


def filled(open_store):
    s = open_store()
    s.create_campaign("c1", "c1", [{"kind": "call"}], {}, 1.0)
    s.create_campaign("c2", "c2", [{"kind": "call"}], {}, 1.5)
    s.upsert_contacts("c1", [ContactRow(f"e{i}", (f"+4860010000{i}",), f"Name {i}") for i in range(3)], 2.0)
    with s.tx() as c:
        s.insert_results(c, [stored_result(i, 1 + i % 2, "+48600100000", "no_answer", 3.0 + i) for i in range(5)])
        s.insert_inbound(c, {"id": "in-1", "appliance_id": "box", "kind": "sms", "from_number": "+48600100000",
                             "to_number": "+48690000001", "text": "STOP", "at": 9.5, "contact_id": 1, "campaign_id": "c1",
                             "opted_out": 1})
    return s


def reads_of(s):
    """The hot reads first (asserted one by one below), then every other read the API makes."""
    return [s.campaign_with_counts_read("c1"), s.campaign_with_counts_read("nope"), s.get_contact_read(1),
            s.get_contact_read(99), s.contact_history_read(1), s.contact_history_read(3), s.results_after_read(0, 3),
            s.results_after_read(2, 10, "c1"), s.results_after_read(0, 10, "other"), s.campaigns_with_counts_read(),
            s.list_contacts_read("c1", 1, 10), s.contacts_by_external_id_read("e1", None, 0, 10),
            s.contacts_by_external_id_read("e1", "c2", 0, 10), s.inbound_after_read(0, 10), s.list_optouts_read("", 10),
            s.list_webhooks_read(), s.dead_letters_read(0, 10), s.list_appliances_read(), s.get_appliance_read("nope")]


async def test_a_read_gives_the_same_answer_on_the_loop_as_on_the_store(open_store, store_backend):
    s = filled(open_store)
    reads = LoopReads(s)
    await reads.open()
    try:
        assert (reads._pool is not None) == (store_backend == "postgresql")  # SQLite: its own connection, at once
        threads = threading.active_count()
        on_loop = [await reads.run(r) for r in reads_of(s)]
        assert threading.active_count() == threads  # no thread taken for them
    finally:
        await reads.close()
    on_store = [s.run(r) for r in reads_of(s)]
    assert on_loop == on_store
    camp, counts = on_store[0]
    assert camp["id"] == "c1" and counts["waiting"] == 3 and on_store[1] is None
    assert on_store[2]["external_id"] == "e0" and on_store[2]["phones"] == ["+48600100000"] and on_store[3] is None
    history = on_store[4]
    assert [r["app_seq"] for r in history["results"]] == [0, 2, 4]
    assert [(e["id"], e["from"], e["opted_out"], e["at"]) for e in history["inbound"]] == [("in-1", "+48600100000", True, 9.5)]
    assert on_store[5] == {"results": [], "inbound": []}
    assert [r["app_seq"] for r in on_store[6]] == [0, 1, 2] and [r["app_seq"] for r in on_store[7]] == [2, 3, 4]
    assert on_store[8] == []
    assert [(camp["id"], counts["total"]) for camp, counts in on_store[9]] == [("c1", 3), ("c2", 0)]
    assert [c["id"] for c in on_store[10]] == [2, 3] and [c["external_id"] for c in on_store[11]] == ["e1"]
    assert on_store[12] == [] and [e["id"] for e in on_store[13]] == ["in-1"] and on_store[18] is None


async def test_an_unopened_loop_reads_still_answers(open_store):
    """An ``Api`` made without its application (a test's) reads as before: in a thread on
    PostgreSQL, at once on SQLite."""
    s = filled(open_store)
    assert await LoopReads(s).run(s.get_contact_read(2)) == s.get_contact(2)
