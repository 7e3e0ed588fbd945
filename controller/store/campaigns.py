"""Campaigns, their contacts and the per-state counts kept beside them: create and move
campaigns, import contacts (one transaction per import: all or nothing), read the due ones,
and move one contact's cursor inside a caller's transaction.

``upsert_contacts`` is a hot path (100,000 rows a request): raw SQL, one ``executemany``
of a portable ``INSERT … ON CONFLICT … DO UPDATE`` on SQLite, COPY straight into the table
on PostgreSQL (or, when some rows are known, into a temporary table then one ``INSERT …
SELECT … ON CONFLICT``); phone lists encoded with msgspec.
"""
from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from typing import Any, Final

from ..contacts import ContactRow
from .backend import INTEGRITY_ERRORS, POSTGRESQL, PgConnection, notify
from .base import COUNT_UPSERT, Conflict, Read, StoreBase, dict_rows, encode, in_chunks, one_of


#: An import this big or more may refresh the contacts' statistics on PostgreSQL (one
#: below it cannot mislead the planner much; ANALYZE samples 30,000 rows: ~0.1 s) ...
ANALYZE_AFTER_ROWS: Final = 1_000
#: ... when it grew the table by this share of its rows (autovacuum's default scale factor).
ANALYZE_SCALE: Final = 0.1

_CONTACT_COLUMNS: Final = ("campaign_id, external_id, name, case_ref, amount, currency, due_date, time_zone, language, phones,"
                           " state, next_at, created_at, updated_at")
#: What a final result moves a contact by (``campaigns.after_result``, ``Reports._advance``).
_CURSOR_COLUMNS: Final = "id, state, step, n, gen, time_zone"
#: The advisory lock of a campaign's imports on PostgreSQL: this text and the campaign id,
#: hashed to 64 bits (``hashtextextended``; two campaigns sharing a key only wait in turn).
_IMPORT_LOCK: Final = "simrotor contacts import:"
#: A results batch's contact moves on PostgreSQL (``Campaigns.advance_contacts``): one
#: statement whatever the batch's size, the moves and then the per-state counts' deltas
#: each as one JSON document (an array a field would have psycopg quote every text
#: element in Python); the counts' rows in key order, as ``_count`` takes them.
_PG_ADVANCE: Final = ("WITH moved AS (UPDATE contacts ct SET state = m.state, step = m.step, n = m.n, gen = m.gen,"
                      " next_at = m.next_at, outcome = COALESCE(m.outcome, ct.outcome), updated_at = ?"
                      " FROM json_to_recordset(?::json) AS m(contact_id BIGINT, state TEXT, step INTEGER, n INTEGER, gen INTEGER,"
                      " next_at DOUBLE PRECISION, outcome TEXT) WHERE ct.id = m.contact_id AND ct.state = 'in_flight')"
                      " INSERT INTO campaign_counts(campaign_id, state, n) SELECT d.campaign_id, d.state, d.n"
                      " FROM ROWS FROM (json_to_recordset(?::json) AS (campaign_id TEXT, state TEXT, n BIGINT)) WITH ORDINALITY"
                      " AS d(campaign_id, state, n, ord)"
                      " ORDER BY d.ord" + COUNT_UPSERT)
_MOVE_FIELDS: Final = ("contact_id", "state", "step", "n", "gen", "next_at", "outcome")
#: An imported contact known by its external_id keeps its progress: only its data changes.
_CONTACT_UPSERT: Final = ("ON CONFLICT(campaign_id, external_id) DO UPDATE SET name = excluded.name, case_ref = excluded.case_ref,"
                          " amount = excluded.amount, currency = excluded.currency, due_date = excluded.due_date,"
                          " time_zone = excluded.time_zone, language = excluded.language, phones = excluded.phones,"
                          " updated_at = excluded.updated_at")


class Campaigns(StoreBase):
    # -- campaigns -------------------------------------------------------------------------
    def create_campaign(self, campaign_id: str, name: str, strategy: list[Any], rules: dict[str, Any], now: float, *,
                        state: str = "running") -> None:
        """A new campaign in ``state`` (the API creates drafts unless asked to start)."""
        with self.tx() as c:
            try:
                c.execute("INSERT INTO campaigns(id, name, state, strategy, rules, created_at, updated_at)"
                          " VALUES (?, ?, ?, ?, ?, ?, ?)",
                          (campaign_id, name, state, json.dumps(strategy), json.dumps(rules), now, now))
            except INTEGRITY_ERRORS:
                raise Conflict(f"campaign {campaign_id!r} exists") from None

    def _campaign(self, row: dict[str, Any] | None) -> dict[str, Any] | None:
        if row is None:
            return None
        row["strategy"], row["rules"] = json.loads(row["strategy"]), json.loads(row["rules"])
        return row

    def get_campaign(self, campaign_id: str) -> dict[str, Any] | None:
        return self._campaign(self._one("SELECT * FROM campaigns WHERE id = ?", (campaign_id,)))

    def list_campaigns(self) -> list[dict[str, Any]]:
        return [c for r in self._all("SELECT * FROM campaigns ORDER BY created_at") if (c := self._campaign(r))]

    def campaigns_with_counts_read(self) -> Read[list[tuple[dict[str, Any], dict[str, int]]]]:
        """Every campaign in the order made, each with its counts (``campaign_with_counts``
        of them all): one statement, not one more per campaign."""
        rows = yield ("SELECT cp.*, cc.state AS count_state, cc.n AS count_n FROM campaigns cp"
                      " LEFT JOIN campaign_counts cc ON cc.campaign_id = cp.id ORDER BY cp.created_at, cp.id", ())
        by_id: dict[str, list[dict[str, Any]]] = {}
        for r in rows:
            by_id.setdefault(r["id"], []).append(r)
        return [self._with_counts(part) for part in by_id.values()]

    def campaign_counts(self, campaign_id: str) -> dict[str, int]:
        rows = self._all("SELECT state, n FROM campaign_counts WHERE campaign_id = ?", (campaign_id,))
        return _counts((r["state"], r["n"]) for r in rows)

    def campaign_with_counts(self, campaign_id: str) -> tuple[dict[str, Any], dict[str, int]] | None:
        return self.run(self.campaign_with_counts_read(campaign_id))

    def campaign_with_counts_read(self, campaign_id: str) -> Read[tuple[dict[str, Any], dict[str, int]] | None]:
        """``get_campaign`` and ``campaign_counts`` in one statement (a row per state; a
        campaign without counts yet is one row of NULLs there): ``GET /v1/campaigns/{id}``
        pays one round trip on PostgreSQL, not two."""
        rows = yield ("SELECT cp.*, cc.state AS count_state, cc.n AS count_n FROM campaigns cp"
                      " LEFT JOIN campaign_counts cc ON cc.campaign_id = cp.id WHERE cp.id = ?", (campaign_id,))
        return self._with_counts(rows) if rows else None

    def _with_counts(self, rows: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, int]]:
        """One campaign's rows of its join with its counts (a row per state, or one of NULLs)."""
        counts = _counts((r["count_state"], r["count_n"]) for r in rows if r["count_state"] is not None)
        camp = self._campaign({k: v for k, v in rows[0].items() if k not in ("count_state", "count_n")})
        assert camp is not None
        return camp, counts

    def set_campaign_state(self, campaign_id: str, from_state: str, to_state: str, now: float) -> bool:
        with self.tx() as c:
            moved = c.execute("UPDATE campaigns SET state = ?, updated_at = ? WHERE id = ? AND state = ?",
                              (to_state, now, campaign_id, from_state)).rowcount == 1
            if moved:
                notify(c, f"campaign:{campaign_id}")
            return moved

    def running_campaigns(self) -> list[dict[str, Any]]:
        return [c for r in self._all("SELECT * FROM campaigns WHERE state = 'running'") if (c := self._campaign(r))]

    def finish_idle_campaigns(self, now: float) -> list[str]:
        """Running campaigns whose every contact is done become ``done``."""
        with self.tx() as c:
            ids = [r[0] for r in c.execute(
                "SELECT id FROM campaigns WHERE state = 'running'"
                " AND EXISTS (SELECT 1 FROM campaign_counts WHERE campaign_id = campaigns.id AND state = 'done' AND n > 0)"
                " AND NOT EXISTS (SELECT 1 FROM campaign_counts WHERE campaign_id = campaigns.id AND state <> 'done' AND n > 0)"
            ).fetchall()]
            for cid in ids:
                c.execute("UPDATE campaigns SET state = 'done', updated_at = ? WHERE id = ? AND state = 'running'", (now, cid))
            return ids

    # -- contacts --------------------------------------------------------------------------
    def upsert_contacts(self, campaign_id: str, rows: Sequence[ContactRow], now: float, *,
                        closed: Collection[str] = (), reopen: Mapping[str, str] | None = None) -> tuple[int, int]:
        """Insert new contacts (due now) and update known ones by external_id (unique within
        ``rows``), keeping their progress, in one transaction: an import is all or nothing.
        Refuses (``Conflict``) when the campaign is gone or in a ``closed`` state; moves it
        by ``reopen`` (state -> state) when contacts were created. Returns (created, updated)."""
        return self.upsert_contact_slices(campaign_id, (rows,), now, closed=closed, reopen=reopen)

    def upsert_contact_slices(self, campaign_id: str, slices: Iterable[Sequence[ContactRow] | bytes], now: float, *,
                              closed: Collection[str] = (), reopen: Mapping[str, str] | None = None) -> tuple[int, int]:
        """``upsert_contacts`` of the rows of ``slices``, in their order, read one slice at a
        time inside the transaction. ``slices`` may be a generator that waits for each slice
        (an import's checks coming back from the worker processes: on PostgreSQL each is sent
        to the server by COPY while the next one is checked) and raises to abandon the import:
        the exception leaves the transaction, rolled back, nothing stored.

        Two controllers importing into one campaign count the known rows in turn. SQLite:
        ``BEGIN IMMEDIATE`` serialises them. PostgreSQL: an advisory lock of the campaign's
        imports taken first, and the campaign's row lock (its state checked, its reopening)
        only once every slice is in: a transition of the campaign in the event loop's thread
        (pause, cancel) never waits for a transaction that waits for that loop's slices.

        On PostgreSQL a slice may also be its rows' COPY text (``contacts_copy_text`` with
        this ``campaign_id`` and ``now``), made where the rows were checked."""
        with self.tx() as c:
            if self.dialect is POSTGRESQL:
                c.execute("SELECT pg_advisory_xact_lock(hashtextextended(?, 0))", (f"{_IMPORT_LOCK}{campaign_id}",))
                total, known = self._copy_contacts(c, campaign_id, slices, now)
            state = c.execute(f"SELECT state FROM campaigns WHERE id = ?{self.dialect.for_update}", (campaign_id,)).fetchone()
            if state is None or state[0] in closed:
                raise Conflict(f"campaign {campaign_id!r} is {state[0] if state else 'gone'}")
            # msgspec encodes a phone list in ~0.3 µs, json.dumps in ~2.3: a fifth of a big import's commit
            if self.dialect is not POSTGRESQL:
                rows = [r for part in slices for r in part]
                total, known = len(rows), 0
                ids = [r.external_id for r in rows]
                for part, marks in in_chunks(ids):
                    known += c.execute(f"SELECT COUNT(*) FROM contacts WHERE campaign_id = ? AND external_id IN ({marks})",
                                       (campaign_id, *part)).fetchone()[0]
                c.executemany(f"INSERT INTO contacts({_CONTACT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'waiting', ?, ?, ?)"
                              f" {_CONTACT_UPSERT}",
                              [(campaign_id, r.external_id, r.name, r.case_ref, r.amount, r.currency, r.due_date, r.time_zone,
                                r.language, encode(r.phones).decode(), now, now, now) for r in rows])
            self._move(c, campaign_id, None, "waiting", total - known)
            to = (reopen or {}).get(state[0])
            if to is not None and total > known:
                c.execute("UPDATE campaigns SET state = ?, updated_at = ? WHERE id = ? AND state = ?",
                          (to, now, campaign_id, state[0]))
            if total > known:
                notify(c, f"contacts:{campaign_id}")
        if self.dialect is POSTGRESQL:
            self._refresh_contact_statistics(total - known)
        return total - known, known

    def _refresh_contact_statistics(self, created: int) -> None:
        """``ANALYZE`` of the contacts after an import that grew the table by a tenth or more
        (autovacuum's own rule, ``autovacuum_analyze_scale_factor``, but at once: it
        looks only once a minute). Until then the planner believes the old counts: after
        a first import into a new table, or 1,000,000 new waiting contacts where few
        waited, it sorted every waiting contact for each dispatch round and scanned them
        all to update 500 (0.2 + 0.5 s a round at 100,000 contacts, where the index takes
        a few ms). PostgreSQL docs, "Populating a Database": run ANALYZE afterwards."""
        if created < ANALYZE_AFTER_ROWS:
            return
        known = self.conn.execute("SELECT reltuples FROM pg_class WHERE oid = 'contacts'::regclass").fetchone()[0]
        if known < 0 or created >= ANALYZE_SCALE * known:  # -1: never analyzed
            # the columns the claim round filters and orders by: ~110 ms at 1,000,000 rows, all
            # sixteen ~280 ms (the row count is refreshed either way; autovacuum does the rest)
            self.conn.execute("ANALYZE contacts (state, next_at, campaign_id)")

    @staticmethod
    def _copy_contacts(c: PgConnection, campaign_id: str, slices: Iterable[Sequence[ContactRow] | bytes],
                       now: float) -> tuple[int, int]:
        """PostgreSQL's import. First the rows by one COPY straight into ``contacts``, slice
        after slice as ``slices`` hands them (rows, or their COPY text already made by
        ``contacts_copy_text`` for this campaign and ``now``), inside a savepoint: an import
        of new contacts (the usual one) is then done, one stream and each index updated once
        per row, the server's work done while the next slice is checked. A row the campaign
        knows already breaks the COPY on the unique key; back to the savepoint (nothing of it
        stays), the same text (of the slices sent and those still to come) goes by COPY into
        a temporary table, then one count of the known ones and one INSERT … SELECT … ON
        CONFLICT, in file order. Returns (rows, known ones). Store alone, 100,000 rows, 2-core
        machine at load 2.5: new ones 1.0-1.1 s where the temporary table's way took 2.0-2.2
        s; known ones 2.5 s (the COPY runs until its first known row)."""
        parts = (part if isinstance(part, bytes) else contacts_copy_text(part, campaign_id, now) for part in slices)
        taken: list[bytes] = []  # every slice read so far: the known rows' way needs them again

        def stream() -> Iterator[bytes]:
            for part in parts:
                taken.append(part)
                yield part

        c.execute("SAVEPOINT contacts_import")
        try:
            c.copy_text(f"COPY contacts({_CONTACT_COLUMNS}) FROM STDIN", stream())
        except INTEGRITY_ERRORS:
            c.execute("ROLLBACK TO SAVEPOINT contacts_import")
        else:
            c.execute("RELEASE SAVEPOINT contacts_import")
            return sum(t.count(b"\n") for t in taken), 0  # a row a line (COPY escapes a newline in a value)
        taken += parts
        # the same columns as ``contacts`` in COPY's order, and the file's order (an identity)
        c.execute("CREATE TEMP TABLE IF NOT EXISTS contacts_incoming (ord BIGINT GENERATED ALWAYS AS IDENTITY,"
                  ' campaign_id TEXT COLLATE "C", external_id TEXT COLLATE "C", name TEXT, case_ref TEXT, amount TEXT,'
                  " currency TEXT, due_date TEXT, time_zone TEXT, language TEXT, phones TEXT, state TEXT,"
                  " next_at DOUBLE PRECISION, created_at DOUBLE PRECISION, updated_at DOUBLE PRECISION) ON COMMIT DELETE ROWS")
        c.copy_text(f"COPY contacts_incoming({_CONTACT_COLUMNS}) FROM STDIN", taken)
        c.execute("ANALYZE contacts_incoming")  # a temporary table has no statistics until asked (no autovacuum)
        known = int(c.execute("SELECT COUNT(*) FROM contacts_incoming s JOIN contacts ct"
                              " ON ct.campaign_id = s.campaign_id AND ct.external_id = s.external_id").fetchone()[0])
        c.execute(f"INSERT INTO contacts({_CONTACT_COLUMNS}) SELECT {_CONTACT_COLUMNS} FROM contacts_incoming ORDER BY ord"
                  f" {_CONTACT_UPSERT}")
        return sum(t.count(b"\n") for t in taken), known

    def _contact(self, row: dict[str, Any] | None) -> dict[str, Any] | None:
        if row is not None:
            row["phones"] = json.loads(row["phones"])
        return row

    def get_contact(self, contact_id: int) -> dict[str, Any] | None:
        return self.run(self.get_contact_read(contact_id))

    def get_contact_read(self, contact_id: int) -> Read[dict[str, Any] | None]:
        rows = yield ("SELECT * FROM contacts WHERE id = ?", (contact_id,))
        return self._contact(rows[0] if rows else None)

    def list_contacts(self, campaign_id: str, after: int, limit: int) -> list[dict[str, Any]]:
        return self.run(self.list_contacts_read(campaign_id, after, limit))

    def list_contacts_read(self, campaign_id: str, after: int, limit: int) -> Read[list[dict[str, Any]]]:
        rows = yield ("SELECT * FROM contacts WHERE campaign_id = ? AND id > ? ORDER BY id LIMIT ?", (campaign_id, after, limit))
        return [c for r in rows if (c := self._contact(r))]

    def contacts_by_external_id(self, external_id: str, campaign_id: str | None, after: int,
                                limit: int) -> list[dict[str, Any]]:
        return self.run(self.contacts_by_external_id_read(external_id, campaign_id, after, limit))

    def contacts_by_external_id_read(self, external_id: str, campaign_id: str | None, after: int,
                                     limit: int) -> Read[list[dict[str, Any]]]:
        """The contacts the CRM keys ``external_id`` (in every campaign, or one), by id after
        ``after``: the ``contacts_external`` index, or the campaign's unique key."""
        if campaign_id is None:
            rows = yield ("SELECT * FROM contacts WHERE external_id = ? AND id > ? ORDER BY id LIMIT ?", (external_id, after, limit))
        else:
            rows = yield ("SELECT * FROM contacts WHERE external_id = ? AND campaign_id = ? AND id > ? ORDER BY id LIMIT ?",
                          (external_id, campaign_id, after, limit))
        return [c for r in rows if (c := self._contact(r))]

    @classmethod
    def finish_waiting(cls, c: sqlite3.Connection, contact_id: int, campaign_id: str, outcome: str, now: float) -> None:
        """A waiting contact ends with ``outcome`` (in the caller's transaction)."""
        if c.execute("UPDATE contacts SET state = 'done', outcome = ?, updated_at = ? WHERE id = ? AND state = 'waiting'",
                     (outcome, now, contact_id)).rowcount == 1:
            cls._move(c, campaign_id, "waiting", "done")

    @staticmethod
    def defer_waiting(c: sqlite3.Connection, contact_id: int, next_at: float, now: float) -> None:
        """A waiting contact is due again at ``next_at`` (in the caller's transaction)."""
        c.execute("UPDATE contacts SET next_at = ?, updated_at = ? WHERE id = ? AND state = 'waiting'", (next_at, now, contact_id))

    @classmethod
    def advance_contact(cls, c: sqlite3.Connection, contact_id: int, campaign_id: str, *, state: str, step: int, n: int,
                        gen: int, next_at: float, outcome: str | None, now: float) -> None:
        """Move an in-flight contact's cursor (in the caller's transaction: a result's or an ack's)."""
        if c.execute("UPDATE contacts SET state = ?, step = ?, n = ?, gen = ?, next_at = ?, outcome = COALESCE(?, outcome),"
                     " updated_at = ? WHERE id = ? AND state = 'in_flight'",
                     (state, step, n, gen, next_at, outcome, now, contact_id)).rowcount == 1:
            cls._move(c, campaign_id, "in_flight", state)

    @classmethod
    def advance_contacts(cls, c: sqlite3.Connection, moves: Sequence[Mapping[str, Any]], now: float) -> None:
        """Move in-flight contacts' cursors after a results batch (in its transaction), each
        ``moves`` item the ``advance_contact`` arguments by name (``contact_id``,
        ``campaign_id``, ``state``, ``step``, ``n``, ``gen``, ``next_at``, ``outcome``), at
        most one a contact: on PostgreSQL one statement (``_PG_ADVANCE``: the moves and the
        counts), on SQLite an ``executemany`` and one count update per campaign and state.
        The contacts were read in this transaction by ``contacts_in_tx`` (locked, in
        flight), so each update finds its row."""
        if not moves:
            return
        deltas: dict[tuple[str, str], int] = {}
        for m in moves:
            if m["state"] != "in_flight":
                for key, d in (((m["campaign_id"], "in_flight"), -1), ((m["campaign_id"], m["state"]), 1)):
                    deltas[key] = deltas.get(key, 0) + d
        if isinstance(c, PgConnection):
            # one statement, moves and counts (psycopg pipelines an executemany, but the
            # server still runs a statement per contact, and the counts were a round trip more)
            counts = [{"campaign_id": cid, "state": state, "n": n} for cid, state, n in cls._count_rows(deltas)]
            c.execute(_PG_ADVANCE, (now, encode([{k: m[k] for k in _MOVE_FIELDS} for m in moves]).decode(), encode(counts).decode()))
            return
        c.executemany("UPDATE contacts SET state = ?, step = ?, n = ?, gen = ?, next_at = ?, outcome = COALESCE(?, outcome),"
                      " updated_at = ? WHERE id = ? AND state = 'in_flight'",
                      [(m["state"], m["step"], m["n"], m["gen"], m["next_at"], m["outcome"], now, m["contact_id"]) for m in moves])
        cls._count(c, deltas)

    @staticmethod
    def set_promise_date(c: sqlite3.Connection, contact_id: int, promise_date: str, now: float) -> None:
        """The contact promised to pay by ``promise_date`` (ISO date; in the result's transaction)."""
        c.execute("UPDATE contacts SET promise_date = ?, updated_at = ? WHERE id = ?", (promise_date, now, contact_id))

    def contact_cursors_in_tx(self, c: sqlite3.Connection, contact_ids: Iterable[int]) -> dict[int, dict[str, Any]]:
        """Contacts' cursors by id: what a results batch moves them by (``id``, ``state``,
        ``step``, ``n``, ``gen``, ``time_zone``), in the caller's transaction, one query (per
        ``CHUNK`` ids on SQLite, one array parameter on PostgreSQL), their rows locked until
        it ends (PostgreSQL's ``FOR UPDATE``, taken in id order; SQLite's ``BEGIN IMMEDIATE``
        holds the whole database): what is read here is what ``advance_contacts`` updates.
        Not the whole row: its other fields were sent, read and decoded (the phones' JSON)
        for nothing, ~5 µs a result on PostgreSQL (the read took 4.2-4.9 ms a batch of 500,
        now 1.5-2.1)."""
        ids = sorted(set(contact_ids))
        found: dict[int, dict[str, Any]] = {}
        for where, args in one_of(c, "id", ids, "bigint"):
            cur = c.execute(f"SELECT {_CURSOR_COLUMNS} FROM contacts WHERE {where} ORDER BY id" + self.dialect.for_update, args)
            # PostgreSQL: dicts zipped in C (backend.Result.dicts); a row's by-name lookup is Python code
            for d in dict_rows(cur):
                found[d["id"]] = d
        return found

    @staticmethod
    def campaigns_in_tx(c: sqlite3.Connection, campaign_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """Campaigns by id (in the caller's transaction), strategy and rules parsed."""
        ids = sorted(set(campaign_ids))
        found: dict[str, dict[str, Any]] = {}
        for part, marks in in_chunks(ids):
            for row in c.execute(f"SELECT * FROM campaigns WHERE id IN ({marks})", part):
                d = dict(row)
                d["strategy"], d["rules"] = json.loads(d["strategy"]), json.loads(d["rules"])
                found[d["id"]] = d
        return found


def _counts(by_state: Iterable[tuple[str, int]]) -> dict[str, int]:
    """A campaign's contacts by state, the three states always present, and their total."""
    counts = {"waiting": 0, "in_flight": 0, "done": 0}
    counts.update(by_state)
    counts["total"] = sum(counts.values())
    return counts


#: What COPY's text format escapes in a value (PostgreSQL docs, COPY, "Text Format"): its
#: escape character and its column and row separators; ``\\N`` is its NULL.
_COPY_SPECIAL: Final = re.compile(r"[\\\t\n\r]")
_COPY_ESCAPES: Final = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
_NULL: Final = "\\N"


def contacts_copy_text(rows: Sequence[ContactRow], campaign_id: str, now: float) -> bytes:
    """``rows`` as ``COPY contacts(<_CONTACT_COLUMNS>) FROM STDIN`` reads them: new waiting
    contacts of ``campaign_id`` due ``now``. Pure, so an import's worker processes make it
    (``contacts.check_slice``) and the main process only forwards it: psycopg's
    ``write_row`` spent ~3.8 µs a row there, on the event loop's process; this takes ~2.2
    in a worker. Values are looked at once for a character to escape (the checks refuse
    control characters, so it is rare: a backslash); if one has it, every value is escaped."""
    stamp = repr(float(now))
    tail = f"\twaiting\t{stamp}\t{stamp}\t{stamp}"
    phones = [encode(r.phones).decode() for r in rows]
    if (_COPY_SPECIAL.search(campaign_id) or _COPY_SPECIAL.search("".join(phones))
            or _COPY_SPECIAL.search("".join([v for r in rows for v in (r.external_id, r.name, r.case_ref, r.amount, r.currency,
                                                                       r.due_date, r.time_zone, r.language) if v]))):
        return _escaped_copy_text(rows, phones, campaign_id, tail)
    text = "\n".join([f"{campaign_id}\t{r.external_id}\t{_NULL if (v1 := r.name) is None else v1}"
                      f"\t{_NULL if (v2 := r.case_ref) is None else v2}\t{_NULL if (v3 := r.amount) is None else v3}"
                      f"\t{_NULL if (v4 := r.currency) is None else v4}\t{_NULL if (v5 := r.due_date) is None else v5}"
                      f"\t{_NULL if (v6 := r.time_zone) is None else v6}\t{_NULL if (v7 := r.language) is None else v7}"
                      f"\t{p}{tail}" for r, p in zip(rows, phones, strict=True)])
    return (text + "\n").encode() if rows else b""


def _escaped_copy_text(rows: Sequence[ContactRow], phones: list[str], campaign_id: str, tail: str) -> bytes:
    lines = []
    for r, p in zip(rows, phones, strict=True):
        values = (campaign_id, r.external_id, r.name, r.case_ref, r.amount, r.currency, r.due_date, r.time_zone, r.language, p)
        lines.append("\t".join(_NULL if v is None else v.translate(_COPY_ESCAPES) for v in values) + tail + "\n")
    return "".join(lines).encode()
