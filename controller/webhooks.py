"""Webhooks: signed deliveries with retries, and a dead-letter list that can be replayed.

Signature (the Stripe/GitHub scheme): ``X-Simrotor-Signature: sha256=<hex>`` is
HMAC-SHA256 over ``"<timestamp>.<body>"`` with the webhook's secret, and
``X-Simrotor-Timestamp`` carries the Unix time of the delivery attempt: a receiver
rejects a timestamp older than ``REPLAY_TOLERANCE`` so a captured request cannot be
replayed later. ``verify`` is what a receiver does (and what the tests do).

A delivery is a row written in the same transaction as the event it reports; the worker
posts due rows, marks 2xx ``delivered``, and on any other answer or a network error
schedules the next try after ``base * 2**attempts`` seconds (capped), until
``max_attempts`` — then the row goes to the dead-letter list (``GET
/v1/webhooks/dead-letters``) until replayed (``POST /v1/webhooks/dead-letters/replay``).
"""
from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
from collections.abc import Callable
from typing import Final

import aiohttp

from .store import Store

logger = logging.getLogger(__name__)

#: Stripe's default tolerance for webhook timestamps: five minutes.
REPLAY_TOLERANCE: Final = 300.0
#: Retry schedule: 10 s, 20 s, 40 s … capped at an hour, 10 tries ≈ 2.5 hours in all
#: (GitHub gives up at once, Stripe retries for 3 days; we keep the dead letter instead).
DEFAULT_BACKOFF: Final = 10.0
MAX_BACKOFF: Final = 3600.0
DEFAULT_MAX_ATTEMPTS: Final = 10
#: A receiver that does not answer within 10 s counts as failed (GitHub's timeout).
DELIVERY_TIMEOUT: Final = 10.0
SIGNATURE_HEADER: Final = "X-Simrotor-Signature"
TIMESTAMP_HEADER: Final = "X-Simrotor-Timestamp"


def sign(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(secret: str, signature: str, timestamp: str, body: bytes, now: float,
           tolerance: float = REPLAY_TOLERANCE) -> bool:
    try:
        ts = int(timestamp)
    except (TypeError, ValueError):
        return False
    if abs(now - ts) > tolerance:
        return False
    return hmac.compare_digest(sign(secret, ts, body), signature or "")


def next_delay(attempts: int, base: float, cap: float = MAX_BACKOFF) -> float:
    """Delay before try number ``attempts + 1`` (``attempts`` tries have failed)."""
    return min(cap, base * 2 ** max(0, attempts - 1))


class Deliverer:
    def __init__(self, store: Store, clock: Callable[[], float], *, backoff: float = DEFAULT_BACKOFF,
                 max_attempts: int = DEFAULT_MAX_ATTEMPTS, timeout: float = DELIVERY_TIMEOUT) -> None:
        self.store = store
        self.clock = clock
        self.backoff = backoff
        self.max_attempts = max_attempts
        self.timeout = timeout
        self.wake = asyncio.Event()
        self.delivered = 0
        self.failed = 0

    async def run_once(self, session: aiohttp.ClientSession, limit: int = 100) -> int:
        due = self.store.due_deliveries(self.clock(), limit)
        if due:
            await asyncio.gather(*(self._post(session, d) for d in due))
        return len(due)

    async def _post(self, session: aiohttp.ClientSession, d: dict[str, object]) -> None:
        body = str(d["payload"]).encode()
        ts = int(self.clock())
        headers = {"Content-Type": "application/json", SIGNATURE_HEADER: sign(str(d["secret"]), ts, body),
                   TIMESTAMP_HEADER: str(ts), "X-Simrotor-Event": str(d["event"]), "X-Simrotor-Delivery": str(d["id"])}
        error = None
        try:
            async with session.post(str(d["url"]), data=body, headers=headers,
                                    timeout=aiohttp.ClientTimeout(total=self.timeout)) as resp:
                if 200 <= resp.status < 300:
                    self.store.delivery_done(int(d["id"]), self.clock())  # type: ignore[call-overload]
                    self.delivered += 1
                    return
                error = f"HTTP {resp.status}"
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            error = f"{type(exc).__name__}: {exc}"
        attempts = int(d["attempts"]) + 1  # type: ignore[call-overload]
        next_at = None if attempts >= self.max_attempts else self.clock() + next_delay(attempts, self.backoff)
        self.store.delivery_failed(int(d["id"]), error or "failed", next_at, self.clock())  # type: ignore[call-overload]
        self.failed += 1
        logger.info("webhook delivery %s failed (%s), try %d%s", d["id"], error, attempts,
                    "; dead-lettered" if next_at is None else "")

    async def run_forever(self, poll: float = 1.0) -> None:
        async with aiohttp.ClientSession() as session:
            while True:
                try:
                    n = await self.run_once(session)
                except Exception:  # one bad row or a DB hiccup must not end deliveries
                    logger.exception("webhook worker")
                    n = 0
                if n:
                    continue
                nxt = self.store.next_delivery_at()
                wait = poll if nxt is None else max(0.0, min(poll, nxt - self.clock()))
                self.wake.clear()
                try:  # asyncio.timeout: 3.11's wait_for can swallow a cancel (see server.py)
                    async with asyncio.timeout(wait):
                        await self.wake.wait()
                except TimeoutError:
                    pass
