"""Secrets: API keys, appliance credentials and enrollment tokens are shown once and
stored only as SHA-256 hashes.

The secrets are 256-bit random (``secrets.token_urlsafe(32)``), so a plain SHA-256 is
enough to make a stolen database useless (no dictionary to attack; a slow KDF would only
slow every request — the reasoning of GitHub's and Stripe's API-token designs). A key
carries a visible prefix (``sr_``…) so it is recognisable in logs and secret scanners.
"""
from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable
from typing import Final

KEY_PREFIX: Final = "sr_"
CREDENTIAL_PREFIX: Final = "sra_"
TOKEN_PREFIX: Final = "sre_"
#: 32 random bytes = 256 bits (NIST SP 800-63B asks ≥ 112 bits for look-up secrets).
SECRET_BYTES: Final = 32


def new_secret(prefix: str) -> str:
    return prefix + secrets.token_urlsafe(SECRET_BYTES)


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_id(prefix: str) -> str:
    return prefix + secrets.token_hex(6)


def bearer(header: str | None) -> str | None:
    if not header or not header.startswith("Bearer "):
        return None
    value = header[7:].strip()
    return value or None


#: Seconds a controller keeps believing an API key it found valid before asking the store
#: again. Every API request presents its key; without this each paid a statement (a
#: round trip on PostgreSQL: over a quarter of a read's time on the event loop). The
#: price: a key revoked (``keys revoke``, possibly on another controller) keeps working
#: here for up to this long. An unknown or revoked key is never kept: it is asked each time.
KEY_CACHE_SECONDS: Final = 5.0
#: Keys kept at most (a controller serves a handful of CRM keys; only valid keys enter).
KEY_CACHE_SIZE: Final = 256


class KeyCache:
    """API keys found valid recently: the key's digest -> (its id, when it was checked)."""

    def __init__(self, lookup: Callable[[str], str | None], *, ttl: float = KEY_CACHE_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.lookup, self.ttl, self.clock = lookup, ttl, clock
        self._seen: dict[str, tuple[str, float]] = {}

    def key_id(self, secret: str) -> str | None:
        """The id of the API key ``secret``, None for an unknown or revoked one."""
        h = digest(secret)
        now = self.clock()
        hit = self._seen.get(h)
        if hit is not None and now - hit[1] < self.ttl:
            return hit[0]
        key_id = self.lookup(h)
        if key_id is None:
            self._seen.pop(h, None)
        else:
            if len(self._seen) >= KEY_CACHE_SIZE:
                self._seen.clear()
            self._seen[h] = (key_id, now)
        return key_id
