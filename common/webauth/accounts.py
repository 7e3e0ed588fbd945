"""Page accounts: who may sign in to a page (the appliance's technicians, the controller's
users), each kept as a row of its store with an argon2id hash of the password, never the
password. The rows are reached through ``AccountRows`` (each store says its own SQL:
``TableRows`` over a SQLite connection here, the controller's store group there).

Why argon2id: it is the first choice of the OWASP Password Storage Cheat Sheet and of
RFC 9106; argon2-cffi's ``PasswordHasher`` defaults are RFC 9106's second recommended
option (3 passes over 64 MiB, 4 lanes: ~50-100 ms on one core of a small box). That
cost is the point, so a check never runs in the event loop that drives the modems: it
runs in a worker thread, at most ``VERIFY_AT_ONCE`` at a time (each takes 64 MiB), and
the sign-in lockout (``lockout.py``) bounds how often an address may ask.

An unknown name is checked against a dummy hash, so a wrong name and a wrong password
take the same time and say the same thing (no list of names for a guesser). A hash made
with older parameters is replaced at the next good sign-in (``check_needs_rehash``).
"""
from __future__ import annotations

import asyncio
import dataclasses
import re
import sqlite3
import time
from collections.abc import Callable
from typing import Final, Protocol

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

#: An account's name: what its owner types and what the logs and events show beside
#: his actions. Lower-case, so "Jan" and "jan" are never two accounts.
NAME: Final = re.compile(r"[a-z][a-z0-9._-]{0,31}")
#: NIST SP 800-63B §5.1.1.2: a chosen secret of at least 8 characters, no other rules.
MIN_PASSWORD: Final = 8
#: Longer passwords are refused: the hash's input is bounded (a 1 MB "password" in a
#: sign-in form costs nothing to send); any passphrase fits.
MAX_PASSWORD: Final = 256
#: Password checks in flight at once: each holds 64 MiB and a core for ~0.1 s.
VERIFY_AT_ONCE: Final = 2


class AccountError(ValueError):
    """A name or password that cannot be used, or an account that is not there; ``str()``
    says which and what to do."""


@dataclasses.dataclass(frozen=True, slots=True)
class Account:
    name: str
    created_at: float  # UTC epoch seconds
    changed_at: float  # the password's last change; sessions from before it are ended


def check_name(name: str, who: str = "account") -> str:
    if not NAME.fullmatch(name):
        raise AccountError(f"{who} name {name[:40]!r}: use 1-32 lower-case letters, digits, '.', '_' or '-', "
                           "starting with a letter (e.g. 'jan.kowalski')")
    return name


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"password too short ({len(password)} characters): at least {MIN_PASSWORD}")
    if len(password) > MAX_PASSWORD:
        raise AccountError(f"password too long ({len(password)} characters): at most {MAX_PASSWORD}")
    return password


class AccountRows(Protocol):
    """Where a page's accounts are kept: one row per name with its hash and two times."""

    def account(self, name: str) -> Account | None: ...
    def accounts(self) -> list[Account]: ...
    def account_count(self) -> int: ...
    def password_hash(self, name: str) -> str | None: ...
    def insert_account(self, name: str, encoded: str, now: float) -> None: ...
    def set_password(self, name: str, encoded: str, now: float) -> None: ...
    def rehash(self, name: str, fresh: str, old: str) -> None:
        """Replace the hash only if it is still ``old`` (a new password set meanwhile wins)."""
    def delete_account(self, name: str) -> bool: ...


class TableRows:
    """``AccountRows`` as raw SQL on a SQLite connection in autocommit mode (each statement
    its own transaction): a table of ``name, password_hash, created_at, changed_at``."""

    def __init__(self, conn: sqlite3.Connection, table: str) -> None:
        if not re.fullmatch(r"[a-z_]+", table):
            raise ValueError(f"TableRows: table name {table!r} is not a plain lower-case identifier")
        self.conn, self.table = conn, table

    def account(self, name: str) -> Account | None:
        row = self.conn.execute(f"SELECT name, created_at, changed_at FROM {self.table} WHERE name = ?",
                                (name,)).fetchone()
        return Account(*row) if row else None

    def accounts(self) -> list[Account]:
        return [Account(*row) for row in
                self.conn.execute(f"SELECT name, created_at, changed_at FROM {self.table} ORDER BY name")]

    def account_count(self) -> int:
        return int(self.conn.execute(f"SELECT COUNT(*) FROM {self.table}").fetchone()[0])

    def password_hash(self, name: str) -> str | None:
        row = self.conn.execute(f"SELECT password_hash FROM {self.table} WHERE name = ?", (name,)).fetchone()
        return row[0] if row else None

    def insert_account(self, name: str, encoded: str, now: float) -> None:
        self.conn.execute(f"INSERT INTO {self.table}(name, password_hash, created_at, changed_at) VALUES (?,?,?,?)",
                          (name, encoded, now, now))

    def set_password(self, name: str, encoded: str, now: float) -> None:
        self.conn.execute(f"UPDATE {self.table} SET password_hash = ?, changed_at = ? WHERE name = ?",
                          (encoded, now, name))

    def rehash(self, name: str, fresh: str, old: str) -> None:
        self.conn.execute(f"UPDATE {self.table} SET password_hash = ? WHERE name = ? AND password_hash = ?",
                          (fresh, name, old))

    def delete_account(self, name: str) -> bool:
        return self.conn.execute(f"DELETE FROM {self.table} WHERE name = ?", (name,)).rowcount > 0


class Accounts:
    """A page's accounts (``rows``) and the hasher. ``who`` names an account in messages
    ("technician", "user") and ``cli`` is the command group that manages them."""

    def __init__(self, rows: AccountRows, *, who: str, cli: str, hasher: PasswordHasher | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.rows = rows
        self.who, self.cli = who, cli
        self.hasher = hasher or PasswordHasher()
        self.clock = clock
        self._dummy: str | None = None  # a hash to check unknown names against (made once)
        self._verifying: asyncio.Semaphore | None = None

    # -- the CLI's side ------------------------------------------------------------------------
    def add(self, name: str, password: str, *, replace: bool = False) -> Account:
        """Create an account, or set a new password with ``replace``."""
        check_name(name, self.who)
        encoded = self.hasher.hash(check_password(password))
        now = self.clock()
        old = self.get(name)
        if old is not None and not replace:
            raise AccountError(f"{self.who} {name!r} exists; to set a new password: {self.cli} add {name} --replace")
        if old is None:
            self.rows.insert_account(name, encoded, now)
            return Account(name, now, now)
        self.rows.set_password(name, encoded, now)
        return Account(name, old.created_at, now)

    def remove(self, name: str) -> None:
        if not self.rows.delete_account(name):
            raise AccountError(f"no {self.who} {name!r}; `{self.cli} list` shows the accounts")

    def list(self) -> list[Account]:
        return self.rows.accounts()

    def get(self, name: str) -> Account | None:
        return self.rows.account(name)

    def count(self) -> int:
        return self.rows.account_count()

    # -- the sign-in's side ----------------------------------------------------------------------
    async def verify(self, name: str, password: str) -> Account | None:
        """The account when ``password`` is its password, else None; the hash is checked
        in a worker thread (see the module docstring)."""
        if self._verifying is None:
            self._verifying = asyncio.Semaphore(VERIFY_AT_ONCE)
        encoded = None
        if NAME.fullmatch(name) and len(password) <= MAX_PASSWORD:
            encoded = self.rows.password_hash(name)
        async with self._verifying:
            if encoded is None:
                if self._dummy is None:
                    self._dummy = await asyncio.to_thread(self.hasher.hash, "not an account's password")
                await asyncio.to_thread(self._matches, self._dummy, password[:MAX_PASSWORD])
                return None
            if not await asyncio.to_thread(self._matches, encoded, password):
                return None
            if self.hasher.check_needs_rehash(encoded):
                fresh = await asyncio.to_thread(self.hasher.hash, password)
                self.rows.rehash(name, fresh, encoded)
        return self.get(name)

    def _matches(self, encoded: str, password: str) -> bool:
        try:
            return self.hasher.verify(encoded, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False
