"""The opt-out (do-not-call) list: numbers that asked us to stop, by SMS or through the
CRM. Read by the contact rules before every dispatch (a primary-key look-up)."""
from __future__ import annotations

import sqlite3
from typing import Any

from .backend import notify
from .base import Read, StoreBase


class OptOuts(StoreBase):
    def add_optout(self, number: str, source: str, reason: str | None, now: float) -> bool:
        with self.tx() as c:
            return self.opt_out(c, number, source, reason, now)

    def add_optouts(self, rows: list[tuple[str, str | None]], source: str, now: float) -> int:
        """Add every (number, reason) in one transaction (all or nothing); how many were new
        (a number listed already keeps its first source and reason)."""
        with self.tx() as c:
            return sum(self.opt_out(c, number, source, reason, now) for number, reason in rows)

    @staticmethod
    def opt_out(c: sqlite3.Connection, number: str, source: str, reason: str | None, now: float) -> bool:
        """Add ``number`` in the caller's transaction; False when it was there already.
        Every controller's dispatcher is woken when it commits (jobs for the number may wait)."""
        added = c.execute("INSERT INTO optouts(number, source, reason, created_at) VALUES (?, ?, ?, ?)"
                          " ON CONFLICT(number) DO NOTHING", (number, source, reason, now)).rowcount == 1
        if added:
            notify(c, "optouts")
        return added

    def remove_optout(self, number: str) -> bool:
        with self.tx() as c:
            return c.execute("DELETE FROM optouts WHERE number = ?", (number,)).rowcount == 1

    def list_optouts(self, after: str, limit: int) -> list[dict[str, Any]]:
        return self.run(self.list_optouts_read(after, limit))

    def list_optouts_read(self, after: str, limit: int) -> Read[list[dict[str, Any]]]:
        return (yield ("SELECT number, source, reason, created_at FROM optouts WHERE number > ? ORDER BY number LIMIT ?",
                       (after, limit)))

    def is_opted_out(self, number: str) -> bool:
        return self.conn.execute("SELECT 1 FROM optouts WHERE number = ?", (number,)).fetchone() is not None

