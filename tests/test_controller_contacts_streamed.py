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


ODD_VALUES: Final = ("back\\slash", "\\N", "tab\there", "line\nbreak", "cr\rhere", "Łódź \u2028 ok", "")


@pytest.mark.parametrize("sent_as", ["rows", "copy text"])
def test_on_postgresql_copy_text_keeps_every_value_as_given(pg_server, sent_as):
    """``contacts_copy_text`` (made in the import's worker processes) against what the
    server stores: a backslash, a literal ``\\N`` (COPY's NULL), a tab, a line break, a CR
    and an empty text come back as given; a missing value is NULL. Both the new rows' COPY
    and the known rows' way (a re-import) read it."""
    from controller.store import contacts_copy_text

    odd = [ContactRow(f"k{i}{v}", (f"+486001{i:05d}",), v, v or None, None, None, None, None, None)
           for i, v in enumerate(ODD_VALUES)]
    plain = [ContactRow("k-plain", ("+48600100099", "+48600100098"), "Jan", None, "12.50", "PLN", "2026-03-01",
                        "Europe/Warsaw", "pl")]
    with pg_server.database() as url:
        s = Store(url)
        try:
            s.create_campaign("c1", "c1", [{"kind": "call"}], {}, 0.0)

            def send(part: list[ContactRow], now: float) -> list[ContactRow] | bytes:
                return part if sent_as == "rows" else contacts_copy_text(part, "c1", now)

            assert s.upsert_contact_slices("c1", [send(odd, 1.5), send(plain, 1.5)], 1.5) == (len(odd) + 1, 0)
            stored = {c["external_id"]: c for c in s.list_contacts("c1", 0, 100)}
            assert [c["external_id"] for c in s.list_contacts("c1", 0, 100)] == [r.external_id for r in odd + plain]
            for r in odd + plain:
                c = stored[r.external_id]
                assert (c["name"], c["case_ref"], c["amount"], c["currency"], c["due_date"], c["time_zone"], c["language"],
                        tuple(c["phones"])) == (r.name, r.case_ref, r.amount, r.currency, r.due_date, r.time_zone,
                                                r.language, r.phones)
                assert (c["state"], c["next_at"], c["created_at"]) == ("waiting", 1.5, 1.5)
            # a re-import: every row known, its new data taken, its progress kept
            again = [ContactRow(r.external_id, r.phones, "changed", None, None, None, None, None, None) for r in odd]
            assert s.upsert_contact_slices("c1", [send(again, 2.5)], 2.5) == (0, len(odd))
            assert {c["name"] for c in s.list_contacts("c1", 0, 100) if c["external_id"] != "k-plain"} == {"changed"}
        finally:
            s.close()
