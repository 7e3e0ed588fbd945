"""The store's outbox as read: results in order from a cursor (the link and the API),
acknowledgements (the controller's), and counts by outcome (the technician page). The
rows are written by the job transactions (``jobs.py``). Raw SQL for the cursor reads and
acks (the link reads after every result); sqlite-utils' ``query`` for the page's counts."""
from __future__ import annotations

import json
from typing import Any

from .base import Rows


class OutboxRows(Rows):
    def results_after(self, cursor: int, limit: int = 100) -> tuple[list[dict[str, Any]], int]:
        rows = self.conn.execute(
            "SELECT seq, body FROM results WHERE seq > ? ORDER BY seq LIMIT ?", (cursor, limit)
        ).fetchall()
        items = [{"seq": r[0], **json.loads(r[1])} for r in rows]
        return items, (rows[-1][0] if rows else cursor)

    def ack_results(self, upto: int) -> None:
        self.conn.execute("UPDATE results SET acked = 1 WHERE seq <= ? AND acked = 0", (upto,))

    def final_outcomes(self) -> list[dict[str, Any]]:
        """Final results by kind and outcome, the most frequent first."""
        return list(self.db.query(
            "SELECT json_extract(body, '$.kind') AS kind, json_extract(body, '$.outcome') AS outcome,"
            " COUNT(*) AS count FROM results WHERE final = 1 GROUP BY 1, 2 ORDER BY 3 DESC"))
