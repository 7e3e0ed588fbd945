"""Signed-in sessions and their CSRF tokens, in memory.

A session is a random token (the cookie's value, 256 bits from ``secrets``) naming a
technician, with its own CSRF token (a second random value the page sends back in a
header with every action: another site can make the browser send the cookie, never read
the page's token). Sessions end after ``IDLE_SECONDS`` without a request, after
``MAX_AGE_SECONDS`` whatever happens, at sign-out, when the account is removed or its
password changed (the guard checks the account on each request), and at a restart
(memory only: a technician signs in again, a stolen cookie dies with the process).
"""
from __future__ import annotations

import dataclasses
import hmac
import secrets
from collections import OrderedDict
from collections.abc import Callable
from typing import Final

#: An hour without a request ends a session: an open page's event stream looks at the
#: session every second, so this only ends sessions of closed pages (OWASP Session Management Cheat Sheet:
#: idle timeouts of 15-30 min for high-value applications; a technician's phone in his
#: pocket between two racks is the case here).
IDLE_SECONDS: Final = 3600.0
#: A shift: twelve hours after signing in, sign in again.
MAX_AGE_SECONDS: Final = 12 * 3600.0
#: Sessions kept at most; the least recently used goes first.
MAX_SESSIONS: Final = 1000
#: Bytes of randomness of a session and a CSRF token (OWASP: at least 64 bits of entropy).
TOKEN_BYTES: Final = 32


@dataclasses.dataclass(slots=True)
class Session:
    token: str
    name: str
    csrf: str
    created_at: float
    last_seen: float


class Sessions:
    def __init__(self, clock: Callable[[], float], *, idle: float = IDLE_SECONDS, max_age: float = MAX_AGE_SECONDS,
                 max_sessions: int = MAX_SESSIONS) -> None:
        self.clock = clock
        self.idle, self.max_age, self.max_sessions = idle, max_age, max_sessions
        self._by_token: OrderedDict[str, Session] = OrderedDict()

    def new(self, name: str) -> Session:
        now = self.clock()
        s = Session(secrets.token_urlsafe(TOKEN_BYTES), name, secrets.token_urlsafe(TOKEN_BYTES), now, now)
        self._by_token[s.token] = s
        while len(self._by_token) > self.max_sessions:
            self._by_token.popitem(last=False)
        return s

    def get(self, token: str | None) -> Session | None:
        """The live session of ``token`` (and it is seen now), else None."""
        if not token:
            return None
        s = self._by_token.get(token)
        if s is None:
            return None
        now = self.clock()
        if now - s.last_seen > self.idle or now - s.created_at > self.max_age:
            del self._by_token[token]
            return None
        s.last_seen = now
        self._by_token.move_to_end(token)
        return s

    def end(self, token: str) -> None:
        self._by_token.pop(token, None)

    def end_all(self, name: str) -> int:
        gone = [t for t, s in self._by_token.items() if s.name == name]
        for t in gone:
            del self._by_token[t]
        return len(gone)

    def __len__(self) -> int:
        return len(self._by_token)


def same(given: str | None, expected: str) -> bool:
    """A token compared in constant time (no timing hint of how much of it matched)."""
    return bool(given) and hmac.compare_digest(given.encode(), expected.encode())  # type: ignore[union-attr]
