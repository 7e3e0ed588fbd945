"""The store's key/value rows: the rotation snapshot, the link's cursors, balance-check
times, and the marks of rejected PINs (``modem_drivers.pin.PinMarks``). Values are JSON.
Raw SQL: ``set_kv`` is on the scheduler's path (rotation checkpoints)."""
from __future__ import annotations

import json
from typing import Any

from .base import Rows

#: kv key prefix of a rejected PIN's mark (modem_drivers.pin): one row per SIM key.
PIN_MARK_PREFIX = "pin_mark:"


class KvRows(Rows):
    def set_kv(self, key: str, value: Any) -> None:
        self.conn.execute("INSERT OR REPLACE INTO kv(key, value) VALUES (?, ?)", (key, json.dumps(value)))

    def get_kv(self, key: str, default: Any = None) -> Any:
        row = self.conn.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else default

    # -- rejected PINs: kv rows "pin_mark:<sim key>" -----------------------------------------
    def pin_mark(self, sim_key: str) -> dict[str, Any] | None:
        """The salted hash of the PIN this SIM rejected, with its tries left then."""
        return self.get_kv(PIN_MARK_PREFIX + sim_key)

    def set_pin_mark(self, sim_key: str, mark: dict[str, Any]) -> None:
        self.set_kv(PIN_MARK_PREFIX + sim_key, mark)

    def clear_pin_mark(self, sim_key: str) -> bool:
        cur = self.conn.execute("DELETE FROM kv WHERE key = ?", (PIN_MARK_PREFIX + sim_key,))
        return cur.rowcount > 0

    def has_pin_marks(self) -> bool:
        # A range on the primary key (an index seek), not LIKE: "pin_mark;" is the next prefix.
        return self.conn.execute("SELECT 1 FROM kv WHERE key >= ? AND key < ? LIMIT 1",
                                 (PIN_MARK_PREFIX, PIN_MARK_PREFIX[:-1] + ";")).fetchone() is not None
