"""The store's inbound rows: SMS and calls received (callbacks), kept until the controller
acknowledges them. Written with raw SQL (one row per event, from the bank's event
callback); listed through sqlite-utils' ``query`` (rows as dicts).

An answered call's row is written at its first ring and sent at once; the caller's menu
choice comes later (``set_inbound_choice``), and makes the row unacknowledged again so the
link sends it once more, with its choice (the controller takes the choice of an id it
knows)."""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .base import Rows

_COLUMNS = 'id, kind, from_number AS "from", to_number AS "to", text, channel_id, sim_id, at, choice'


class InboundRows(Rows):
    def add_inbound(self, event: dict[str, Any]) -> None:
        self.conn.execute(
            "INSERT OR IGNORE INTO inbound(id, kind, from_number, to_number, text, channel_id, sim_id, at)"
            " VALUES (?,?,?,?,?,?,?,?)",
            (event["id"], event["kind"], event.get("from"), event.get("to"), event.get("text"),
             event.get("channel_id"), event.get("sim_id"), event["at"]),
        )

    def set_inbound_choice(self, inbound_id: str, choice: str) -> bool:
        """Record an answered caller's menu choice on his call's row, to be sent again;
        False when no such row is stored."""
        cur = self.conn.execute("UPDATE inbound SET choice = ?, acked = 0 WHERE id = ?", (choice, inbound_id))
        return cur.rowcount == 1

    def unacked_inbound(self, limit: int = 100) -> list[dict[str, Any]]:
        return list(self.db.query(f"SELECT {_COLUMNS} FROM inbound WHERE acked = 0 ORDER BY at LIMIT ?", (limit,)))

    def ack_inbound(self, acks: Iterable[tuple[str, str | None]]) -> None:
        """The controller has these rows, each as sent: (id, the choice it carried). A row
        whose choice was recorded after that send stays unacknowledged (sent again)."""
        self.conn.executemany("UPDATE inbound SET acked = 1 WHERE id = ? AND choice IS ?", list(acks))

    def inbound_after(self, after: float, limit: int = 100) -> list[dict[str, Any]]:
        return list(self.db.query(f"SELECT {_COLUMNS} FROM inbound WHERE at > ? ORDER BY at LIMIT ?", (after, limit)))
