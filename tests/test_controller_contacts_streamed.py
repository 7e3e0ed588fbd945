"""An import stored slice by slice as its checks come back (``upsert_contact_slices``; the
API's ``_check_and_store`` on PostgreSQL): still all or nothing, in file order, counted
right when some rows are known, and never holding up the campaign's other writers while it
waits for its next slice (the API's loop thread feeds it: a wait on the loop would never end).

Tests that take ``open_store`` run on SQLite and on PostgreSQL (tests/conftest.py).
"""
from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Final

import pytest

from controller.contacts import ContactRow
from controller.store import Conflict, Store

#: Seconds a test waits for a thread before calling it stuck (each step takes milliseconds).
STUCK: Final = 10.0


def rows(first: int, last: int) -> list[ContactRow]:
    return [ContactRow(f"x{i}", (f"+486001{i:05d}",)) for i in range(first, last)]


def ids(store, cid: str = "c1") -> list[str]:
    return [c["external_id"] for c in store.list_contacts(cid, 0, 1000)]


def test_slices_store_like_one_list_in_file_order_with_known_rows_counted(open_store):
    s = open_store()
    s.create_campaign("c1", "c1", [{"kind": "call"}], {}, 0.0)
    assert s.upsert_contact_slices("c1", [rows(0, 3), rows(3, 6)], 1.0) == (6, 0)
    assert ids(s) == [f"x{i}" for i in range(6)]
    # a known row in the second slice: the first slice went by COPY already, then both again the known rows' way
    assert s.upsert_contact_slices("c1", [rows(6, 9), rows(9, 11) + rows(4, 5)], 2.0) == (5, 1)
    assert ids(s) == [f"x{i}" for i in range(11)]
    assert s.campaign_counts("c1")["waiting"] == 11


def test_a_slice_source_that_raises_stores_nothing(open_store):
    s = open_store()
    s.create_campaign("c1", "c1", [{"kind": "call"}], {}, 0.0)

    def slices() -> Iterator[list[ContactRow]]:
        yield rows(0, 5)
        raise ValueError("row 7: bad phone")

    with pytest.raises(ValueError, match="bad phone"):
        s.upsert_contact_slices("c1", slices(), 1.0)
    assert ids(s) == [] and s.campaign_counts("c1")["total"] == 0
    assert s.upsert_contact_slices("c1", [rows(0, 2)], 2.0) == (2, 0)  # nothing left locked


def test_on_postgresql_a_cancel_is_not_held_up_by_an_import_waiting_for_its_next_slice(pg_server):
    """The cancel (on the API's loop thread) goes through at once; the import, given its
    last slice, finds the campaign cancelled: 409 in the API, nothing stored. PostgreSQL
    only: on SQLite the API hands the store every slice at once, in the loop's thread."""
    with pg_server.database() as url:
        s = Store(url)
        try:
            _cancel_during_import(s)
        finally:
            s.close()


def _cancel_during_import(s: Store) -> None:
    s.create_campaign("c1", "c1", [{"kind": "call"}], {}, 0.0)
    sent, go = threading.Event(), threading.Event()
    out: dict[str, object] = {}

    def slices() -> Iterator[list[ContactRow]]:
        yield rows(0, 5)
        sent.set()  # the first slice is in the COPY (or SQLite's list): the transaction is open
        go.wait(STUCK)
        yield rows(5, 10)

    def run() -> None:
        try:
            out["stored"] = s.upsert_contact_slices("c1", slices(), 1.0, closed=("cancelled",))
        except Exception as exc:  # noqa: BLE001 - handed to the test's thread
            out["error"] = exc

    t = threading.Thread(target=run)
    t.start()
    try:
        assert sent.wait(STUCK)
        t0 = time.monotonic()
        assert s.set_campaign_state("c1", "running", "cancelled", 2.0)
        assert time.monotonic() - t0 < STUCK / 2
    finally:
        go.set()
        t.join(STUCK)
    assert isinstance(out.get("error"), Conflict)
    assert ids(s) == [] and s.campaign_counts("c1")["total"] == 0
