"""Webhooks and their deliveries: the CRM's targets, the queue of signed deliveries with
retry times, the dead letters, and the pruning of delivered rows.

``enqueue`` runs inside the caller's transaction (a result and its deliveries commit
together); the rest are single statements of the delivery worker, whose claim leases the
rows it takes (``claim_deliveries``: a controller that dies mid-delivery leaves them due
again when the lease ends). Raw SQL.
"""
from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from typing import Any

from .backend import POSTGRESQL
from .base import Read, StoreBase


class Webhooks(StoreBase):
    # -- webhooks --------------------------------------------------------------------------
    def add_webhook(self, webhook_id: str, url: str, secret: str, events: list[str], now: float) -> None:
        with self.tx() as c:
            c.execute("INSERT INTO webhooks(id, url, secret, events, created_at) VALUES (?, ?, ?, ?, ?)",
                      (webhook_id, url, secret, json.dumps(events), now))

    def list_webhooks(self) -> list[dict[str, Any]]:
        return self.run(self.list_webhooks_read())

    def list_webhooks_read(self) -> Read[list[dict[str, Any]]]:
        rows = yield ("SELECT id, url, events, created_at FROM webhooks ORDER BY created_at", ())
        for r in rows:
            r["events"] = json.loads(r["events"])
        return rows

    def delete_webhook(self, webhook_id: str) -> bool:
        with self.tx() as c:
            # pending rows and dead letters could go nowhere now (delivered rows stay their week)
            c.execute("DELETE FROM deliveries WHERE webhook_id = ? AND state IN ('pending', 'dead')", (webhook_id,))
            return c.execute("DELETE FROM webhooks WHERE id = ?", (webhook_id,)).rowcount == 1

    def webhook_secret(self, webhook_id: str) -> tuple[str, str] | None:
        row = self.conn.execute("SELECT url, secret FROM webhooks WHERE id = ?", (webhook_id,)).fetchone()
        return (row[0], row[1]) if row else None

    def webhooks_for(self, event: str) -> list[str]:
        """Ids of the webhooks that take ``event`` (read before the transaction that enqueues)."""
        return [r["id"] for r in self.list_webhooks() if event in r["events"]]

    @staticmethod
    def enqueue(c: sqlite3.Connection, hooks: list[str], event: str, payload: dict[str, Any], now: float) -> None:
        """A delivery of ``payload`` to each of ``hooks``, due now (in the caller's transaction)."""
        Webhooks.enqueue_all(c, hooks, event, [payload], now)

    @staticmethod
    def enqueue_all(c: sqlite3.Connection, hooks: list[str], event: str, payloads: Sequence[dict[str, Any]], now: float) -> None:
        """A delivery of each of ``payloads``, in order, to each of ``hooks``, due now (in the
        caller's transaction; one ``executemany``)."""
        if hooks and payloads:
            rows = []
            for payload in payloads:
                data = json.dumps(payload, ensure_ascii=False)
                rows += [(h, event, data, now, now, now) for h in hooks]
            c.executemany("INSERT INTO deliveries(webhook_id, event, payload, state, next_at, created_at, updated_at)"
                          " VALUES (?, ?, ?, 'pending', ?, ?, ?)", rows)

    def due_deliveries(self, now: float, limit: int) -> list[dict[str, Any]]:
        return self._all("SELECT d.*, w.url, w.secret FROM deliveries d JOIN webhooks w ON w.id = d.webhook_id"
                         " WHERE d.state = 'pending' AND d.next_at <= ? ORDER BY d.next_at LIMIT ?", (now, limit))

    def claim_deliveries(self, now: float, lease_until: float, limit: int) -> list[dict[str, Any]]:
        """Take up to ``limit`` due deliveries for one worker: their ``next_at`` moves to
        ``lease_until`` in the claim's transaction, so no other controller's worker sees
        them due until then — and sees them again if this one dies before it is done (at
        least once). On PostgreSQL the rows are taken ``FOR UPDATE SKIP LOCKED``: a row
        another worker is claiming is passed over, not waited for."""
        lock = " FOR UPDATE OF d SKIP LOCKED" if self.dialect is POSTGRESQL else ""
        with self.tx() as c:
            rows = [dict(r) for r in c.execute(
                "SELECT d.*, w.url, w.secret FROM deliveries d JOIN webhooks w ON w.id = d.webhook_id"
                " WHERE d.state = 'pending' AND d.next_at <= ? ORDER BY d.next_at LIMIT ?" + lock, (now, limit)).fetchall()]
            if rows:
                c.executemany("UPDATE deliveries SET next_at = ? WHERE id = ? AND state = 'pending'",
                              [(lease_until, r["id"]) for r in rows])
            return rows

    def next_delivery_at(self) -> float | None:
        # joined like due_deliveries: a row without its webhook (enqueued while it was deleted)
        # is never due, and a past next_at of such a row would make the worker spin
        return self.conn.execute("SELECT MIN(d.next_at) FROM deliveries d JOIN webhooks w ON w.id = d.webhook_id"
                                 " WHERE d.state = 'pending'").fetchone()[0]

    def delivery_done(self, delivery_id: int, now: float) -> None:
        with self.tx() as c:
            c.execute("UPDATE deliveries SET state = 'delivered', attempts = attempts + 1, updated_at = ? WHERE id = ?",
                      (now, delivery_id))

    def delivery_failed(self, delivery_id: int, error: str, next_at: float | None, now: float) -> None:
        """Schedule the next try at ``next_at``, or move to the dead-letter list (None)."""
        with self.tx() as c:
            # only a pending row: a late failure of a worker whose lease ran out must not
            # undo another's success
            c.execute("UPDATE deliveries SET state = ?, attempts = attempts + 1, next_at = COALESCE(?, next_at),"
                      " last_error = ?, updated_at = ? WHERE id = ? AND state = 'pending'",
                      ("pending" if next_at is not None else "dead", next_at, error[:500], now, delivery_id))

    def prune_deliveries(self, before: float, limit: int) -> int:
        """Forget up to ``limit`` deliveries that reached the CRM before ``before`` (the
        result itself stays in ``results``; a delivered payload is only a copy of it).
        Dead letters stay until replayed: a person has to see them."""
        with self.tx() as c:
            return c.execute("DELETE FROM deliveries WHERE id IN (SELECT id FROM deliveries WHERE state = 'delivered'"
                             " AND updated_at < ? ORDER BY updated_at LIMIT ?)", (before, limit)).rowcount

    def dead_letters(self, after: int, limit: int) -> list[dict[str, Any]]:
        return self.run(self.dead_letters_read(after, limit))

    def dead_letters_read(self, after: int, limit: int) -> Read[list[dict[str, Any]]]:
        rows = yield ("SELECT id, webhook_id, event, payload, attempts, last_error, created_at, updated_at FROM deliveries"
                      " WHERE state = 'dead' AND id > ? ORDER BY id LIMIT ?", (after, limit))
        for r in rows:
            r["payload"] = json.loads(r["payload"])
        return rows

    def replay_dead(self, ids: Sequence[int] | None, now: float) -> int:
        with self.tx() as c:
            if ids is None:
                return c.execute("UPDATE deliveries SET state = 'pending', attempts = 0, next_at = ?, updated_at = ?"
                                 " WHERE state = 'dead' AND webhook_id IN (SELECT id FROM webhooks)", (now, now)).rowcount
            return sum(c.execute("UPDATE deliveries SET state = 'pending', attempts = 0, next_at = ?, updated_at = ?"
                                 " WHERE state = 'dead' AND id = ? AND webhook_id IN (SELECT id FROM webhooks)",
                                 (now, now, i)).rowcount for i in ids)

    def delivery(self, delivery_id: int) -> dict[str, Any] | None:
        return self._one("SELECT * FROM deliveries WHERE id = ?", (delivery_id,))
