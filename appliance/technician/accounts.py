"""Technician accounts: who may sign in to the page, kept in the store's ``technicians``
table with an argon2id hash of the password, never the password.

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
from typing import Final

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

#: A technician's name: what he types and what the logs and events show beside his
#: actions. Lower-case, so "Jan" and "jan" are never two accounts.
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
class Technician:
    name: str
    created_at: float  # UTC epoch seconds
    changed_at: float  # the password's last change; sessions from before it are ended


def check_name(name: str) -> str:
    if not NAME.fullmatch(name):
        raise AccountError(f"technician name {name[:40]!r}: use 1-32 lower-case letters, digits, '.', '_' or '-', "
                           "starting with a letter (e.g. 'jan.kowalski')")
    return name


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"password too short ({len(password)} characters): at least {MIN_PASSWORD}")
    if len(password) > MAX_PASSWORD:
        raise AccountError(f"password too long ({len(password)} characters): at most {MAX_PASSWORD}")
    return password


class Accounts:
    """The ``technicians`` table (raw SQL on the store's connection) and the hasher."""

    def __init__(self, conn: sqlite3.Connection, *, hasher: PasswordHasher | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.conn = conn
        self.hasher = hasher or PasswordHasher()
        self.clock = clock
        self._dummy: str | None = None  # a hash to check unknown names against (made once)
        self._verifying: asyncio.Semaphore | None = None

    # -- the CLI's side ------------------------------------------------------------------------
    def add(self, name: str, password: str, *, replace: bool = False) -> Technician:
        """Create an account, or set a new password with ``replace``."""
        check_name(name)
        encoded = self.hasher.hash(check_password(password))
        now = self.clock()
        old = self.get(name)
        if old is not None and not replace:
            raise AccountError(f"technician {name!r} exists; to set a new password: "
                               f"simrotor appliance user add {name} --replace")
        if old is None:
            self.conn.execute("INSERT INTO technicians(name, password_hash, created_at, changed_at) VALUES (?,?,?,?)",
                              (name, encoded, now, now))
            return Technician(name, now, now)
        self.conn.execute("UPDATE technicians SET password_hash = ?, changed_at = ? WHERE name = ?", (encoded, now, name))
        return Technician(name, old.created_at, now)

    def remove(self, name: str) -> None:
        if self.conn.execute("DELETE FROM technicians WHERE name = ?", (name,)).rowcount == 0:
            raise AccountError(f"no technician {name!r}; `simrotor appliance user list` shows the accounts")

    def list(self) -> list[Technician]:
        return [Technician(*row) for row in
                self.conn.execute("SELECT name, created_at, changed_at FROM technicians ORDER BY name")]

    def get(self, name: str) -> Technician | None:
        row = self.conn.execute("SELECT name, created_at, changed_at FROM technicians WHERE name = ?", (name,)).fetchone()
        return Technician(*row) if row else None

    def count(self) -> int:
        return int(self.conn.execute("SELECT COUNT(*) FROM technicians").fetchone()[0])

    # -- the sign-in's side ----------------------------------------------------------------------
    async def verify(self, name: str, password: str) -> Technician | None:
        """The account when ``password`` is its password, else None; the hash is checked
        in a worker thread (see the module docstring)."""
        if self._verifying is None:
            self._verifying = asyncio.Semaphore(VERIFY_AT_ONCE)
        row = None
        if NAME.fullmatch(name) and len(password) <= MAX_PASSWORD:
            row = self.conn.execute("SELECT password_hash FROM technicians WHERE name = ?", (name,)).fetchone()
        async with self._verifying:
            if row is None:
                if self._dummy is None:
                    self._dummy = await asyncio.to_thread(self.hasher.hash, "not an account's password")
                await asyncio.to_thread(self._matches, self._dummy, password[:MAX_PASSWORD])
                return None
            encoded = row[0]
            if not await asyncio.to_thread(self._matches, encoded, password):
                return None
            if self.hasher.check_needs_rehash(encoded):
                fresh = await asyncio.to_thread(self.hasher.hash, password)
                self.conn.execute("UPDATE technicians SET password_hash = ? WHERE name = ? AND password_hash = ?",
                                  (fresh, name, encoded))
        return self.get(name)

    def _matches(self, encoded: str, password: str) -> bool:
        try:
            return self.hasher.verify(encoded, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False
