"""Idempotency keys: the first answer to a POST sent with ``Idempotency-Key``, kept so that a
retry (the client timed out, the network dropped the reply) gets that answer again instead
of a second campaign or a 409 (controller/idempotency.py decides; this stores).

A key is claimed before the request runs (a row without an answer), so two requests with
one key at once cannot both run: the second finds the claim. Rows older than the keep time
are swept when a new key is claimed; a claim whose request failed with a 500 is released.
"""
from __future__ import annotations

from typing import Any

from .base import StoreBase


class IdempotencyKeys(StoreBase):
    def claim_idempotency_key(self, scope: str, key: str, fingerprint: str, now: float,
                              expired_before: float) -> dict[str, Any] | None:
        """Claim ``key`` for a request; ``None`` when claimed now, else the row already there
        (``status`` null while its request is still running). Keys older than
        ``expired_before`` are swept first, so an expired key is claimed afresh."""
        with self.tx() as c:
            c.execute("DELETE FROM idempotency_keys WHERE created_at < ?", (expired_before,))
            # ON CONFLICT, not a caught IntegrityError: on PostgreSQL an error ends the transaction
            if c.execute("INSERT INTO idempotency_keys(scope, key, fingerprint, created_at) VALUES (?, ?, ?, ?)"
                         " ON CONFLICT(scope, key) DO NOTHING", (scope, key, fingerprint, now)).rowcount == 1:
                return None
            row = c.execute("SELECT fingerprint, status, content_type, body, created_at FROM idempotency_keys"
                            " WHERE scope = ? AND key = ?", (scope, key)).fetchone()
            return dict(row) if row is not None else None

    def take_over_idempotency_key(self, scope: str, key: str, fingerprint: str, claimed_at: float, now: float) -> bool:
        """Claim afresh a key whose request was never answered (its controller died while
        answering): True for the one caller whose conditional update found it as read."""
        with self.tx() as c:
            return c.execute("UPDATE idempotency_keys SET created_at = ? WHERE scope = ? AND key = ? AND fingerprint = ?"
                             " AND status IS NULL AND created_at = ?", (now, scope, key, fingerprint, claimed_at)).rowcount == 1

    def keep_idempotent_answer(self, scope: str, key: str, status: int, content_type: str, body: bytes) -> None:
        with self.tx() as c:
            c.execute("UPDATE idempotency_keys SET status = ?, content_type = ?, body = ? WHERE scope = ? AND key = ?",
                      (status, content_type, body, scope, key))

    def release_idempotency_key(self, scope: str, key: str) -> None:
        """Forget a claim whose request did not finish (a 500): a retry runs it again."""
        with self.tx() as c:
            c.execute("DELETE FROM idempotency_keys WHERE scope = ? AND key = ? AND status IS NULL", (scope, key))

    def idempotency_key_count(self) -> int:
        return int(self.conn.execute("SELECT COUNT(*) FROM idempotency_keys").fetchone()[0])
