"""Failed sign-ins, counted per account and per address, with backoff (pure: the clock
is handed in).

A key (an account's name, a client's address) may fail ``free`` times; each failure
after that locks it for ``first`` seconds, doubling per further failure up to ``cap``.
While a key is locked a sign-in for it is refused before the password is looked at,
and the refusal does not count (so waiting it out always works). A good sign-in clears
the account's and the address's counts; a key with no failure for ``forget`` seconds
starts afresh. At most ``max_keys`` keys are kept (the oldest failure dropped first),
so a scan from many addresses cannot grow memory without bound.

Why both: per account stops a guesser trying one technician's password from many
addresses; per address stops one address trying one password on every account. A locked
account also locks its owner out for a while — bounded by ``cap``, which is the price
OWASP's Authentication Cheat Sheet names for account lockout. Counts live in memory: a
restart forgets them, as it ends every session.
"""
from __future__ import annotations

import dataclasses
from collections import OrderedDict
from collections.abc import Callable
from typing import Final

#: Failures before the first lock: a technician mistyping on a phone keyboard gets
#: five tries per account (OWASP: lock after "a number of" failures; 3-5 is usual) …
ACCOUNT_FREE: Final = 5
#: … and an address ten, over all accounts (two technicians sharing a phone).
ADDRESS_FREE: Final = 10
#: The first lock and its cap: 30 s stops a script (2 tries a minute at most after the
#: free ones), 15 min bounds what a guesser can make a technician wait.
FIRST_LOCK_SECONDS: Final = 30.0
MAX_LOCK_SECONDS: Final = 900.0
#: An hour without failures and a key's count starts over.
FORGET_SECONDS: Final = 3600.0
#: Keys kept at most (each ~200 bytes): a sweep of addresses stays bounded.
MAX_KEYS: Final = 10_000


@dataclasses.dataclass(slots=True)
class _Count:
    failures: int = 0
    locked_until: float = 0.0
    last_failure: float = 0.0


class Lockout:
    def __init__(self, clock: Callable[[], float], *, free: int, first: float = FIRST_LOCK_SECONDS,
                 cap: float = MAX_LOCK_SECONDS, forget: float = FORGET_SECONDS, max_keys: int = MAX_KEYS) -> None:
        if free < 0 or first <= 0 or cap < first:
            raise ValueError(f"Lockout needs free >= 0 and 0 < first <= cap, got {free}, {first}, {cap}")
        self.clock = clock
        self.free, self.first, self.cap, self.forget, self.max_keys = free, first, cap, forget, max_keys
        self._counts: OrderedDict[str, _Count] = OrderedDict()

    def _get(self, key: str) -> _Count | None:
        c = self._counts.get(key)
        if c is not None and self.clock() - c.last_failure >= self.forget and self.clock() >= c.locked_until:
            del self._counts[key]
            return None
        return c

    def locked_for(self, key: str) -> float:
        """Seconds until ``key`` may try again (0: it may now)."""
        c = self._get(key)
        return max(0.0, c.locked_until - self.clock()) if c is not None else 0.0

    def failures(self, key: str) -> int:
        c = self._get(key)
        return c.failures if c is not None else 0

    def failed(self, key: str) -> float:
        """Count one failure; returns the lock it started, in seconds (0: none)."""
        now = self.clock()
        c = self._get(key) or _Count()
        c.failures += 1
        c.last_failure = now
        lock = 0.0
        if c.failures > self.free:
            lock = min(self.cap, self.first * 2 ** (c.failures - self.free - 1))
            c.locked_until = now + lock
        self._counts[key] = c
        self._counts.move_to_end(key)
        while len(self._counts) > self.max_keys:
            self._counts.popitem(last=False)
        return lock

    def succeeded(self, key: str) -> None:
        self._counts.pop(key, None)
