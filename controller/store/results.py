"""Results and inbound events: stored once each (deduplicated by unique keys, not by a
check first), read back by cursor, matched to the contact that was shown a number, and
the history the contact rules read.

Hot path (a results batch from an appliance, one transaction): raw SQL, a statement per
batch (not per result: each is a round trip on PostgreSQL). The writes run in
the caller's transaction (``controller/reports.py`` opens it): which rows to write and what
follows from them is decided there.
"""
from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, Final

import msgspec

from ..campaigns import voicebot_outcome
from .backend import POSTGRESQL, PgConnection
from .base import Read, StoreBase, dict_rows, encode, in_chunks, one_of

_RESULT_COLUMNS: Final = ("dedupe", "appliance_id", "app_seq", "job_id", "campaign_id", "contact_id", "external_id", "kind",
                          "callee", "outcome", "reason", "final", "number_shown", "counts_as_attempt", "at", "body")
_RESULT_MARKS: Final = f"({', '.join('?' * len(_RESULT_COLUMNS))})"
#: PostgreSQL's batch insert: the rows as one JSON document (``json_populate_recordset``,
#: the table's own column types), a statement of one parameter whatever the batch's size.
#: One ``VALUES`` row a result was 8,000 parameters a batch of 500, a text psycopg parses
#: again at every call (it caches statements of at most 50 parameters); an array a column
#: has psycopg quote every text element in Python. A batch of 500 (/tmp driver, loaded
#: 2-core machine): ``VALUES`` 105 ms, arrays 58, JSON 28. ``ORDER BY ordinality``: the
#: rows go in in the batch's order, so of two that share a key the first is stored.
_PG_INSERT: Final = (f"INSERT INTO results({', '.join(_RESULT_COLUMNS)}) SELECT {', '.join(_RESULT_COLUMNS)}"
                     " FROM json_populate_recordset(NULL::results, ?::json) WITH ORDINALITY AS u ORDER BY u.ordinality"
                     " ON CONFLICT DO NOTHING RETURNING seq, dedupe, app_seq")

#: A contact's history on PostgreSQL in one statement (``Results.contact_history``): its
#: results as rows, each beside its inbound events as one JSON array (``json_agg``, NULL
#: when none); the LEFT JOIN gives one row of NULL results when it has no result, so the
#: inbound comes back all the same. Both reads by their ``contact_id`` index.
_PG_HISTORY: Final = ("SELECT r.*, h.inbound_json FROM (SELECT (SELECT json_agg(i ORDER BY i.seq) FROM inbound i"
                      " WHERE i.contact_id = ?)::text AS inbound_json) h LEFT JOIN results r ON r.contact_id = ? ORDER BY r.seq")


def _pg_inbound(row: dict[str, Any]) -> dict[str, Any]:
    """An inbound row of ``_PG_HISTORY``'s JSON as the row a ``SELECT *`` gives: JSON
    writes a whole ``at`` (double precision) as an integer."""
    row["at"] = float(row["at"])
    return row


class StoredJSON(Mapping[str, Any]):
    """A stored JSON object (a result's ``body``) as its text, read (decoded) only when a
    caller looks inside it. The API's reply (``apikit.reply``) splices the text in as it is
    (``msgspec.Raw``): decoding each body of a page and encoding it again was half the CPU
    of a page of 100 results (2.1 ms on a loaded 2-core machine). Equal to the dict it holds
    (a ``Mapping``), so store callers read it as before."""

    __slots__ = ("_value", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self._value: dict[str, Any] | None = None

    @property
    def value(self) -> Any:
        """The decoded object (msgspec, ~2x as fast as json on a result's body)."""
        if self._value is None:
            try:
                self._value = msgspec.json.decode(self.text)
            except msgspec.MsgspecError:  # NaN, an integer past 64 bits: json reads them as it did before
                self._value = json.loads(self.text)
        return self._value

    def encoded(self) -> Any:
        """What an encoder writes for it: the text as it is, unless it holds a number JSON
        has no spelling for (``json.dumps`` writes ``NaN``/``Infinity``): then the decoded
        value, which msgspec writes as ``null`` as it did before."""
        if "NaN" in self.text or "Infinity" in self.text:
            return self.value
        return msgspec.Raw(self.text)

    def __getitem__(self, key: str) -> Any:
        return self.value[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.value)

    def __len__(self) -> int:
        return len(self.value)

    def __repr__(self) -> str:
        return repr(self.value)


class Results(StoreBase):
    # -- results ---------------------------------------------------------------------------
    def _result(self, r: dict[str, Any]) -> dict[str, Any]:
        """A ``results`` row as the API shows it: the body as ``detail``, not decoded
        (``StoredJSON``) unless it holds a voicebot's dialogue, whose outcome goes on top."""
        text = r.pop("body")
        r["final"] = bool(r["final"])
        r.pop("dedupe", None)
        r.pop("counts_as_attempt", None)
        body = r["detail"] = StoredJSON(text)
        # bodies are written by json.dumps, which spells the key so: without it there is
        # no voicebot part to read, and the body stays undecoded
        if '"voicebot"' in text and (vb := voicebot_outcome(body.value)) is not None:
            r["voicebot"] = vb  # the dialogue's outcome on top, as in the result webhook
        return r

    @staticmethod
    def jobs_for_results(c: sqlite3.Connection, job_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """The jobs a batch of results names (in the caller's transaction), each with its
        contact's ``external_id`` (a primary-key join: the CRM's key travels with the
        result), by id, in one query (per ``CHUNK`` ids on SQLite); an unknown id is left out (its
        result is kept all the same)."""
        ids = sorted({j for j in job_ids if j})
        found: dict[str, dict[str, Any]] = {}
        for where, args in one_of(c, "j.id", ids, "text"):
            # the contact's key by a subquery, not a join: a lookup by primary key each, where
            # PostgreSQL planned the join as a hash of every contact (15 ms a batch at 10,000)
            cur = c.execute("SELECT j.id, j.campaign_id, j.contact_id, j.kind, j.spec, j.state,"
                            " (SELECT ct.external_id FROM contacts ct WHERE ct.id = j.contact_id) AS external_id"
                            f" FROM jobs j WHERE {where}", args)
            # dicts: the batch reads each job's fields several times, and a PostgreSQL row's
            # by-name lookup is Python code (backend.Result.dicts zips them in C)
            for job in dict_rows(cur):
                found[job["id"]] = job
        return found

    @staticmethod
    def insert_result(c: sqlite3.Connection, row: dict[str, Any]) -> int | None:
        """Store a result row (the ``results`` columns but ``seq``) in the caller's
        transaction; its ``seq``, or None when a unique key says it is stored already."""
        return Results.insert_results(c, [row])[0]

    @staticmethod
    def insert_results(c: sqlite3.Connection, rows: Sequence[dict[str, Any]]) -> list[int | None]:
        """Store result rows (the ``results`` columns but ``seq``) in the caller's
        transaction, one multi-row ``INSERT … ON CONFLICT DO NOTHING`` a batch on PostgreSQL,
        per ``CHUNK`` rows on SQLite;
        each row's ``seq``, or None when a unique key says it is stored already. Rows are
        inserted in order, so of two in one batch that share a key the first is stored, as
        one statement per row would. A stored row is told by its ``dedupe`` (unique) and
        ``app_seq`` (a row whose dedupe another row of the batch took, but which was itself
        refused by its ``(appliance_id, app_seq)``, is not taken for it)."""
        seqs: list[int | None] = []
        parts = ([rows] if rows else []) if isinstance(c, PgConnection) else [part for part, _ in in_chunks(rows)]
        for part in parts:
            stored = Results._insert(c, part)
            for r in part:
                hit = stored.get(r["dedupe"])
                if hit is not None and str(hit[1]) == str(r["app_seq"]):  # str: SQLite may store "5" as 5
                    del stored[r["dedupe"]]
                    seqs.append(hit[0])
                else:
                    seqs.append(None)
        return seqs

    @staticmethod
    def _insert(c: sqlite3.Connection, rows: Sequence[dict[str, Any]]) -> dict[str, tuple[int, Any]]:
        """One statement's insert of ``rows``: the stored ones' ``dedupe`` -> (seq, app_seq).
        PostgreSQL: ``_PG_INSERT``, the rows as JSON; SQLite: a ``VALUES`` row each."""
        if isinstance(c, PgConnection):
            # a flag goes as 1/0, as PgConnection sends a bool argument (the columns are INTEGER)
            doc = [{k: int(v) if type(v) is bool else v for k in _RESULT_COLUMNS if (v := r[k]) is not None} for r in rows]
            cur = c.execute(_PG_INSERT, (encode(doc).decode(),))
        else:
            cur = c.execute(f"INSERT INTO results({', '.join(_RESULT_COLUMNS)}) VALUES {', '.join([_RESULT_MARKS] * len(rows))}"
                            " ON CONFLICT DO NOTHING RETURNING seq, dedupe, app_seq", [r[k] for r in rows for k in _RESULT_COLUMNS])
        return {r[1]: (int(r[0]), r[2]) for r in cur}

    def results_after(self, after: int, limit: int, campaign_id: str | None = None) -> list[dict[str, Any]]:
        return self.run(self.results_after_read(after, limit, campaign_id))

    def results_after_read(self, after: int, limit: int, campaign_id: str | None = None) -> Read[list[dict[str, Any]]]:
        if campaign_id is None:
            rows = yield ("SELECT * FROM results WHERE seq > ? ORDER BY seq LIMIT ?", (after, limit))
        else:
            rows = yield ("SELECT * FROM results WHERE seq > ? AND campaign_id = ? ORDER BY seq LIMIT ?",
                          (after, campaign_id, limit))
        return [self._result(r) for r in rows]

    # -- inbound and opt-outs ----------------------------------------------------------------
    def _inbound(self, r: dict[str, Any]) -> dict[str, Any]:
        r["opted_out"] = bool(r["opted_out"])
        r["from"], r["to"] = r.pop("from_number"), r.pop("to_number")
        return r

    def match_shown(self, c: sqlite3.Connection, from_number: str,
                    to_number: str | None) -> tuple[int | None, str | None, str | None]:
        """The contact (its id, campaign and CRM key) that was last shown ``to_number`` when
        we called or texted ``from_number``; failing that, the last contact we reached at
        ``from_number``."""
        row = None
        if to_number:
            row = c.execute("SELECT contact_id, campaign_id, external_id FROM results WHERE callee = ? AND number_shown = ?"
                            " AND contact_id IS NOT NULL ORDER BY seq DESC LIMIT 1", (from_number, to_number)).fetchone()
        if row is None:
            row = c.execute("SELECT contact_id, campaign_id, external_id FROM results WHERE callee = ?"
                            " AND contact_id IS NOT NULL AND number_shown IS NOT NULL ORDER BY seq DESC LIMIT 1",
                            (from_number,)).fetchone()
        return (row[0], row[1], row[2]) if row else (None, None, None)

    def insert_inbound(self, c: sqlite3.Connection, row: dict[str, Any]) -> dict[str, Any] | None:
        """Store an inbound row (the ``inbound`` columns but ``seq``; ``choice`` may be left
        out) in the caller's transaction; the stored event as the API shows it, or None when
        its id is known."""
        row = {"choice": None, "external_id": None, **row}
        cur = c.execute("INSERT INTO inbound(id, appliance_id, kind, from_number, to_number, text, at, contact_id,"
                        " external_id, campaign_id, opted_out, choice) VALUES (:id, :appliance_id, :kind, :from_number,"
                        " :to_number, :text, :at, :contact_id, :external_id, :campaign_id, :opted_out, :choice)"
                        " ON CONFLICT DO NOTHING RETURNING seq", row).fetchone()
        if cur is None:
            return None
        return self._inbound({**row, "seq": int(cur[0])})

    def set_inbound_choice(self, c: sqlite3.Connection, inbound_id: str, choice: str,
                           opted_out: bool) -> dict[str, Any] | None:
        """An answered callback's menu choice for a stored call (the appliance sends the
        call at its first ring, and again with the choice), in the caller's transaction;
        the event as the API shows it now, or None when the id is unknown or has its
        choice already (a repeated send)."""
        cur = c.execute("UPDATE inbound SET choice = ?, opted_out = CASE WHEN ? = 1 THEN 1 ELSE opted_out END WHERE id = ? AND choice IS NULL",
                        (choice, int(opted_out), inbound_id))
        if cur.rowcount != 1:
            return None
        return self._inbound(dict(c.execute("SELECT * FROM inbound WHERE id = ?", (inbound_id,)).fetchone()))

    def inbound_after(self, after: int, limit: int) -> list[dict[str, Any]]:
        return self.run(self.inbound_after_read(after, limit))

    def inbound_after_read(self, after: int, limit: int) -> Read[list[dict[str, Any]]]:
        rows = yield ("SELECT * FROM inbound WHERE seq > ? ORDER BY seq LIMIT ?", (after, limit))
        return [self._inbound(r) for r in rows]

    def contact_history(self, contact_id: int) -> dict[str, Any]:
        return self.run(self.contact_history_read(contact_id))

    def contact_history_read(self, contact_id: int) -> Read[dict[str, Any]]:
        """The contact's results and inbound events, each in ``seq`` order. PostgreSQL: one
        statement (``_PG_HISTORY``), not two: each is a round trip, and the history is read
        at every GET of it."""
        if self.dialect is POSTGRESQL:
            rows = yield (_PG_HISTORY, (contact_id, contact_id))  # one row at least: the inbound's
            inbound_json = rows[0]["inbound_json"]
            results = []
            for r in rows:
                del r["inbound_json"]
                if r["seq"] is not None:  # None: the contact has no result (the join's empty side)
                    results.append(self._result(r))
            events = msgspec.json.decode(inbound_json) if inbound_json is not None else []
            return {"results": results, "inbound": [self._inbound(_pg_inbound(r)) for r in events]}
        rows = yield ("SELECT * FROM results WHERE contact_id = ? ORDER BY seq", (contact_id,))
        results = [self._result(r) for r in rows]
        inbound_rows = yield ("SELECT * FROM inbound WHERE contact_id = ? ORDER BY seq", (contact_id,))
        return {"results": results, "inbound": [self._inbound(r) for r in inbound_rows]}
