"""The store's events: channel moves, SIM locks, quarantines, balances — what the
technician page lists as recent trouble. Bounded three ways: a rate per (kind, subject),
an age and a row count, pruned a batch at a time. Raw SQL for the writes (a channel
move is logged twice per job); sqlite-utils' ``query`` for the page's look-up."""
from __future__ import annotations

import json
import time
from typing import Any

from common.logs import Throttle

from .base import Rows

#: The events table keeps a week, the span between a fault and a technician's look at it
#: (logrotate's weekly default is the same judgement for log files) …
EVENTS_KEEP_SECONDS = 7 * 86400.0
#: … and at most this many rows, whatever the rate: ~11 MB (a channel move takes 108
#: bytes a row: 100,000 of them made a 10.8 MB database file).
EVENTS_MAX_ROWS = 100_000
#: Rows deleted per prune (once a second): a short transaction in the event loop, and
#: 1,000 rows a second is well above what the event rate bound lets in (below).
EVENTS_PRUNE_BATCH = 1_000
#: Rows per (kind, subject) per window, as log lines (common/logs.py: the kernel's
#: printk_ratelimit, 10 per 5 s); the rest of a window becomes one row carrying the
#: last detail and ``suppressed``/``seconds``. With S subjects (channels, SIMs) the table
#: grows by at most S x 11 rows per 5 s: 256 flapping channels add ~560 rows a second,
#: not the 10,000 a hot loop wrote (issue 12 item 2), and the prune keeps up.
EVENTS_PER_SUBJECT = 10
EVENTS_WINDOW_SECONDS = 5.0


def event_rate() -> Throttle:
    """The rate bound of ``log_event`` (one per store)."""
    return Throttle(burst=EVENTS_PER_SUBJECT, interval=EVENTS_WINDOW_SECONDS, total_burst=None)


class EventRows(Rows):
    _event_rate: Throttle

    def log_event(self, kind: str, subject: str, detail: dict[str, Any], now: float | None = None) -> None:
        """One row of the events table, within the rate bound of (kind, subject): past
        ``EVENTS_PER_SUBJECT`` per window, events are counted and the window's last one
        is written when it closes, with ``suppressed`` and ``seconds`` in its detail."""
        now = time.time() if now is None else now
        ok, closed = self._event_rate.admit((kind, subject), (detail, now))
        self._write_suppressed(closed)
        if ok:
            self.conn.execute("INSERT INTO events(at, kind, subject, detail) VALUES (?,?,?,?)",
                              (now, kind, subject, json.dumps(detail)))

    def _write_suppressed(self, closed: list[Any]) -> None:
        for s in closed:
            kind, subject = s.key
            detail, at = s.last
            self.conn.execute("INSERT INTO events(at, kind, subject, detail) VALUES (?,?,?,?)",
                              (at, kind, subject, json.dumps({**detail, "suppressed": s.count, "seconds": s.seconds})))

    def prune_events(self, now: float | None = None, *, keep_seconds: float = EVENTS_KEEP_SECONDS,
                     max_rows: int = EVENTS_MAX_ROWS, batch: int = EVENTS_PRUNE_BATCH) -> int:
        """Delete up to ``batch`` of the oldest events that are older than
        ``keep_seconds`` or beyond the newest ``max_rows``; returns how many. Only the
        oldest ``batch`` rows are looked at (by rowid), so a prune costs O(batch) however
        big the table is. Windows of the rate bound that closed are written first."""
        now = time.time() if now is None else now
        self._write_suppressed(self._event_rate.sweep())
        newest = self.conn.execute("SELECT MAX(seq) FROM events").fetchone()[0]
        if newest is None:
            return 0
        return self.conn.execute(
            "DELETE FROM events WHERE seq IN (SELECT seq FROM (SELECT seq, at FROM events ORDER BY seq LIMIT ?)"
            " WHERE seq <= ? OR at < ?)",
            (batch, newest - max_rows, now - keep_seconds),
        ).rowcount

    def recent_events(self, limit: int) -> list[dict[str, Any]]:
        """The newest events first (the technician page's "recent trouble")."""
        return [{**e, "detail": json.loads(e["detail"])} for e in self.db.query(
            "SELECT at, kind, subject, detail FROM events ORDER BY seq DESC LIMIT ?", (limit,))]
