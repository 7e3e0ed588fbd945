"""Call recordings the appliances sent (issue 14): one row per file under the controller's
data directory, listed per campaign while retained; a swept recording keeps its row with
``deleted_at`` so a late fetch is told when and why it went, not just "not found".

``seq`` is the list cursor (``after``), never reused (AUTOINCREMENT); ``id`` is the
appliance's (a uuid4 hex), unique, so a retried upload is recognised, not stored twice.
"""
from __future__ import annotations

from typing import Any, Final

from .base import StoreBase

_COLUMNS: Final = ("seq, id, appliance_id, job_id, attempt, campaign_id, contact_id, format, seconds, bytes, path,"
                   " created_at, deleted_at")


class RecordingRows(StoreBase):
    def add_recording(self, rec: dict[str, Any], now: float) -> bool:
        """Store a recording's row; False when that id is already stored (a retried upload)."""
        with self.tx() as c:
            cur = c.execute(
                "INSERT INTO recordings(id, appliance_id, job_id, attempt, campaign_id, contact_id, format, seconds,"
                " bytes, path, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO NOTHING",
                (rec["id"], rec["appliance_id"], rec["job_id"], rec["attempt"], rec["campaign_id"], rec.get("contact_id"),
                 rec["format"], rec.get("seconds"), rec["bytes"], rec["path"], now))
            return cur.rowcount == 1

    def get_recording(self, rec_id: str) -> dict[str, Any] | None:
        """A recording's row, swept or not."""
        return self._one(f"SELECT {_COLUMNS} FROM recordings WHERE id = ?", (rec_id,))

    def list_recordings(self, campaign_id: str | None, after: int, limit: int) -> list[dict[str, Any]]:
        """Retained recordings in the order they arrived, of one campaign or all."""
        if campaign_id is None:
            return self._all(f"SELECT {_COLUMNS} FROM recordings WHERE deleted_at IS NULL AND seq > ? ORDER BY seq LIMIT ?",
                             (after, limit))
        return self._all(f"SELECT {_COLUMNS} FROM recordings WHERE campaign_id = ? AND deleted_at IS NULL AND seq > ?"
                         " ORDER BY seq LIMIT ?", (campaign_id, after, limit))

    def recording_campaigns(self) -> list[str]:
        """Campaigns that have recordings still retained."""
        return [r["campaign_id"] for r in self._all(
            "SELECT DISTINCT campaign_id FROM recordings WHERE deleted_at IS NULL")]

    def recordings_older(self, campaign_id: str, before: float, limit: int) -> list[dict[str, Any]]:
        """Retained recordings of a campaign made before ``before`` (epoch seconds)."""
        return self._all(f"SELECT {_COLUMNS} FROM recordings WHERE campaign_id = ? AND deleted_at IS NULL"
                         " AND created_at < ? ORDER BY seq LIMIT ?", (campaign_id, before, limit))

    def mark_recordings_deleted(self, ids: list[str], now: float) -> None:
        with self.tx() as c:
            c.executemany("UPDATE recordings SET deleted_at = ? WHERE id = ? AND deleted_at IS NULL",
                          [(now, i) for i in ids])
