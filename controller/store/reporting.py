"""The aggregates a campaign report reads (controller/reporting.py) and the rows a CSV
export streams: every query is bounded by one campaign (the ``results_campaign`` index,
the contacts' ``UNIQUE (campaign_id, external_id)``) and answers a handful of grouped rows,
never the results themselves; an export reads them a page at a time by ``seq``.

A report over a big campaign reads for seconds (300,000 results: ~2-3 s on the development
machine), so it runs on its own read-only connection in a worker thread (``ReportReader``;
SQLite in WAL mode lets it read while the controller writes, and releases the GIL while it
steps), never on the event loop's connection.

A result's strategy step is in its job id (``<campaign>.<contact>.<step>.<n>[.g<k>]``,
campaigns.job_id; a campaign id holds no dot), read with ``substr``/``instr`` on SQLite and
``split_part`` on PostgreSQL (``Dialect.job_step``). The voicebot's identity is in the
result body (``Dialect.json_text``, evaluated only on answered calls). Conditions are
counted as ``SUM(CASE WHEN … THEN 1 ELSE 0 END)``, which both databases read (PostgreSQL
has no sum of booleans).
"""
from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any, Final

from .backend import SQLITE
from .base import StoreBase

#: Outcomes that cost nothing: the job never reached the network (reports.NOT_PLACED,
#: repeated here: the store does not import the layer above it).
NOT_SPENT: Final = ("channel_error", "network_error", "expired", "refused_by_policy", "cancelled", "no_eligible_sim")
_NOT_SPENT_SQL: Final = ", ".join(f"'{o}'" for o in NOT_SPENT)

_CALL: Final = "kind = 'call' AND counts_as_attempt = 1"
_SMS: Final = f"kind = 'sms' AND final = 1 AND outcome NOT IN ({_NOT_SPENT_SQL})"
_HLR: Final = f"kind = 'hlr' AND final = 1 AND outcome NOT IN ({_NOT_SPENT_SQL})"

_HUMAN: Final = " AND outcome = 'answered_human'"
_REFUSED_OPTED_OUT: Final = "outcome = 'refused_by_policy' AND reason = 'opted_out'"
_DONE_SINCE: Final = "state = 'done' AND updated_at >= ?"
_R_CALL: Final = "r.kind = 'call' AND r.counts_as_attempt = 1"
_R_HUMAN: Final = " AND r.outcome = 'answered_human'"
_R_SMS: Final = f"r.kind = 'sms' AND r.final = 1 AND r.outcome NOT IN ({_NOT_SPENT_SQL})"


def _n(condition: str) -> str:
    """How many rows meet ``condition`` (0 for none)."""
    return f"COALESCE(SUM(CASE WHEN {condition} THEN 1 ELSE 0 END), 0)"


class ReportRows(StoreBase):
    @property
    def _right_party(self) -> str:
        """A call that reached the debtor himself: answered by a person, and the voicebot
        (when it ran) did not hear the identity denied or left unconfirmed."""
        identity = self.dialect.json_text("body", "voicebot", "identity")
        return f"outcome = 'answered_human' AND COALESCE({identity}, 'confirmed') = 'confirmed'"

    def step_outcomes(self, campaign_id: str) -> list[dict[str, Any]]:
        """(step, kind, outcome, n) of the campaign's final results."""
        return self._all(f"SELECT {self.dialect.job_step()} AS step, kind, outcome, COUNT(*) AS n FROM results"
                         " WHERE campaign_id = ? AND final = 1 AND job_id IS NOT NULL GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
                         (campaign_id,))

    def campaign_totals(self, campaign_id: str) -> dict[str, Any]:
        """Contacts attempted, reached by a person, right-party; calls, SMS and HLR checks spent."""
        row = self._one(
            f"SELECT COUNT(DISTINCT CASE WHEN {_CALL} THEN contact_id END) AS attempted,"
            " COUNT(DISTINCT CASE WHEN outcome = 'answered_human' THEN contact_id END) AS reached,"
            f" COUNT(DISTINCT CASE WHEN {self._right_party} THEN contact_id END) AS right_party,"
            f" {_n(_CALL)} AS calls, {_n(_SMS)} AS sms, {_n(_HLR)} AS hlr,"
            f" COUNT(*) AS results, {_n('final = 1')} AS final_results,"
            f" {_n(_REFUSED_OPTED_OUT)} AS refused_opted_out"
            " FROM results WHERE campaign_id = ?", (campaign_id,))
        assert row is not None
        return row

    def attempts_histogram(self, campaign_id: str) -> dict[int, int]:
        """Call attempts per attempted contact -> how many contacts had that many."""
        return {r[0]: r[1] for r in self.conn.execute(
            f"SELECT n, COUNT(*) FROM (SELECT contact_id, COUNT(*) AS n FROM results WHERE campaign_id = ? AND {_CALL}"
            " GROUP BY contact_id) AS per_contact GROUP BY n ORDER BY n", (campaign_id,))}

    def contact_totals(self, campaign_id: str, since: float) -> dict[str, Any]:
        """Promises to pay on the contacts, and contacts finished since ``since``."""
        row = self._one(f"SELECT {_n('promise_date IS NOT NULL')} AS promises,"
                        f" {_n(_DONE_SINCE)} AS done_recently"
                        " FROM contacts WHERE campaign_id = ?", (since, campaign_id))
        assert row is not None
        return row

    def first_contact_at(self, campaign_id: str) -> float | None:
        """When the campaign's first contact was imported (dialling cannot start before)."""
        return self.conn.execute("SELECT MIN(created_at) FROM contacts WHERE campaign_id = ?", (campaign_id,)).fetchone()[0]

    def due_now(self, campaign_id: str, now: float) -> tuple[int, float | None]:
        """Waiting contacts due at ``now``, and when the next not yet due one is."""
        row = self.conn.execute(f"SELECT {_n('next_at <= ?')}, MIN(CASE WHEN next_at > ? THEN next_at END)"
                                " FROM contacts WHERE campaign_id = ? AND state = 'waiting'",
                                (now, now, campaign_id)).fetchone()
        return int(row[0]), row[1]

    def inbound_opt_outs(self, campaign_id: str) -> int:
        """Inbound STOPs and callback 9s matched to the campaign."""
        return int(self.conn.execute("SELECT COUNT(*) FROM inbound WHERE campaign_id = ? AND opted_out = 1",
                                     (campaign_id,)).fetchone()[0])

    def by_hour(self, campaign_id: str, since: float) -> list[dict[str, Any]]:
        """Per clock hour (UTC, epoch seconds of its start) since ``since``: calls, people
        reached, right-party contacts, SMS."""
        return self._all(
            f"SELECT {self.dialect.hour_start('at')} AS hour, {_n(_CALL)} AS calls,"
            f" {_n(_CALL + _HUMAN)} AS answered_human,"
            f" {_n(f'{_CALL} AND {self._right_party}')} AS right_party, {_n(_SMS)} AS sms,"
            " COUNT(*) AS results FROM results WHERE campaign_id = ? AND at >= ? GROUP BY 1 ORDER BY 1",
            (campaign_id, since))

    def by_operator(self, campaign_id: str) -> list[dict[str, Any]]:
        """Per operator of the SIM that placed the job (the fleet's ``sims``): calls, people
        reached, SMS; ``unknown`` when no SIM is named (a refusal, an HLR by the network)."""
        return self._all(
            "SELECT COALESCE(s.operator, 'unknown') AS operator,"
            f" {_n(_R_CALL)} AS calls, {_n(_R_CALL + _R_HUMAN)} AS answered_human,"
            f" {_n(_R_SMS)} AS sms,"
            " COUNT(*) AS results FROM results r LEFT JOIN sims s ON s.appliance_id = r.appliance_id"
            f" AND s.sim_id = {self.dialect.json_text('r.body', 'sim_id')}"
            " WHERE r.campaign_id = ? GROUP BY 1 ORDER BY 1", (campaign_id,))

    def recent(self, campaign_id: str, since: float) -> dict[str, Any]:
        """What happened since ``since``: final results, calls, and the refusals and SIM waits
        by reason (``refused_by_policy`` reason, ``no_eligible_sim`` detail.waiting_for)."""
        row = self._one(f"SELECT {_n('final = 1')} AS final_results, {_n(_CALL)} AS calls,"
                        f" {_n(_SMS)} AS sms FROM results WHERE campaign_id = ? AND at >= ?",
                        (campaign_id, since))
        assert row is not None
        row["held"] = self._all(
            f"SELECT outcome, COALESCE(reason, {self.dialect.json_text('body', 'waiting_for')}, 'unknown') AS why, COUNT(*) AS n"
            " FROM results WHERE campaign_id = ? AND at >= ? AND outcome IN ('refused_by_policy', 'no_eligible_sim')"
            " GROUP BY 1, 2 ORDER BY 3 DESC", (campaign_id, since))
        return row

    def export_page(self, campaign_id: str, after: int, limit: int) -> list[dict[str, Any]]:
        """A page of the campaign's results by ``seq`` for the CSV export."""
        return self._all("SELECT seq, at, campaign_id, contact_id, external_id, job_id, kind, callee, outcome, reason, final,"
                         " number_shown, appliance_id, body FROM results WHERE campaign_id = ? AND seq > ? ORDER BY seq LIMIT ?",
                         (campaign_id, after, limit))


class ReportReader(ReportRows):
    """The report's queries on a read-only connection of their own, for a worker thread
    (``reporting.campaign_report_async``): nothing here writes, so no migration and no
    write lock at open."""

    def __init__(self, path: str | Path) -> None:  # StoreBase.__init__ (migrate, write lock) is not run
        conn = sqlite3.connect(f"file:{Path(path).resolve()}?mode=ro", uri=True, check_same_thread=False)
        conn.row_factory = sqlite3.Row
        self.conn = conn
        self.dialect = SQLITE

    @staticmethod
    def path_of(conn: sqlite3.Connection) -> str | None:
        """The file of a connection's main database, or None (in memory, or not SQLite: a
        PostgreSQL store's report reads through its pool)."""
        if not isinstance(conn, sqlite3.Connection):
            return None
        row = next((r for r in conn.execute("PRAGMA database_list") if r[1] == "main"), None)
        return row[2] or None if row else None
