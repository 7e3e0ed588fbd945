"""The overview page's accounts (table ``overview_users``): ``common.webauth``'s
``AccountRows`` over the controller's store, so ``Accounts`` hashes and checks passwords
the same way for the controller as for the appliance's technicians.

Not the CRM's API keys (``fleet``): a person signing in to a page, not a program calling
the API. Plain portable SQL through ``StoreBase``'s connection and ``tx()``, so it runs
on SQLite and PostgreSQL alike.
"""
from __future__ import annotations

from common.webauth import Account

from .base import StoreBase


class OverviewUsers:
    """``AccountRows`` for ``common.webauth.Accounts``: one row per name."""

    def __init__(self, store: StoreBase) -> None:
        self.store = store

    def account(self, name: str) -> Account | None:
        row = self.store._one("SELECT name, created_at, changed_at FROM overview_users WHERE name = ?", (name,))
        return Account(**row) if row else None

    def accounts(self) -> list[Account]:
        return [Account(**row) for row in
                self.store._all("SELECT name, created_at, changed_at FROM overview_users ORDER BY name")]

    def account_count(self) -> int:
        row = self.store._one("SELECT COUNT(*) AS n FROM overview_users")
        return int(row["n"]) if row else 0

    def password_hash(self, name: str) -> str | None:
        row = self.store._one("SELECT password_hash FROM overview_users WHERE name = ?", (name,))
        return str(row["password_hash"]) if row else None

    def insert_account(self, name: str, encoded: str, now: float) -> None:
        with self.store.tx() as c:
            c.execute("INSERT INTO overview_users(name, password_hash, created_at, changed_at) VALUES (?, ?, ?, ?)",
                      (name, encoded, now, now))

    def set_password(self, name: str, encoded: str, now: float) -> None:
        with self.store.tx() as c:
            c.execute("UPDATE overview_users SET password_hash = ?, changed_at = ? WHERE name = ?", (encoded, now, name))

    def rehash(self, name: str, fresh: str, old: str) -> None:
        with self.store.tx() as c:
            c.execute("UPDATE overview_users SET password_hash = ? WHERE name = ? AND password_hash = ?",
                      (fresh, name, old))

    def delete_account(self, name: str) -> bool:
        with self.store.tx() as c:
            return bool(c.execute("DELETE FROM overview_users WHERE name = ?", (name,)).rowcount > 0)
