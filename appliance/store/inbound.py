"""The store's inbound rows: SMS and calls received (callbacks), kept until the controller
acknowledges them. Written with raw SQL (one row per event, from the bank's event
callback); listed through sqlite-utils' ``query`` (rows as dicts)."""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .base import Rows

_COLUMNS = 'id, kind, from_number AS "from", to_number AS "to", text, channel_id, sim_id, at'


class InboundRows(Rows):
    def add_inbound(self, event: dict[str, Any]) -> None:
        self.conn.execute(
            "INSERT OR IGNORE INTO inbound(id, kind, from_number, to_number, text, channel_id, sim_id, at)"
            " VALUES (?,?,?,?,?,?,?,?)",
            (event["id"], event["kind"], event.get("from"), event.get("to"), event.get("text"),
             event.get("channel_id"), event.get("sim_id"), event["at"]),
        )

    def unacked_inbound(self, limit: int = 100) -> list[dict[str, Any]]:
        return list(self.db.query(f"SELECT {_COLUMNS} FROM inbound WHERE acked = 0 ORDER BY at LIMIT ?", (limit,)))

    def ack_inbound(self, ids: Iterable[str]) -> None:
        self.conn.executemany("UPDATE inbound SET acked = 1 WHERE id = ?", [(i,) for i in ids])

    def inbound_after(self, after: float, limit: int = 100) -> list[dict[str, Any]]:
        return list(self.db.query(f"SELECT {_COLUMNS} FROM inbound WHERE at > ? ORDER BY at LIMIT ?", (after, limit)))
