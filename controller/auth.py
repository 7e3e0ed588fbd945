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
