"""Webhooks: signed deliveries with retries, and a dead-letter list that can be replayed.

Signature (the Stripe/GitHub scheme): ``X-Simrotor-Signature: sha256=<hex>`` is
HMAC-SHA256 over ``"<timestamp>.<body>"`` with the webhook's secret, and
``X-Simrotor-Timestamp`` carries the Unix time of the delivery attempt: a receiver
rejects a timestamp older than ``REPLAY_TOLERANCE`` so a captured request cannot be
replayed later. ``verify`` is what a receiver does (and what the tests do).

A delivery is a row written in the same transaction as the event it reports; the worker
claims due rows for a lease (``LEASE_TIMEOUTS`` timeouts: with several controllers on one
database each delivery is posted by the one worker that holds it, and one that dies
mid-delivery leaves it due again when the lease ends — at least once, each post carrying
the delivery's id in ``X-Simrotor-Delivery`` so a receiver drops repeats), posts them,
marks 2xx ``delivered``, and on any other answer or a network error schedules the next try
after ``base * 2**attempts`` seconds (capped), until ``max_attempts`` — then the row goes
to the dead-letter list (``GET /v1/webhooks/dead-letters``) until replayed (``POST
/v1/webhooks/dead-letters/replay``).

Targets: anyone with an API key registers webhook URLs, so a URL must not aim the
controller's deliveries at hosts only it can reach (server-side request forgery, OWASP
SSRF cheat sheet). Unless ``[webhooks] allow_private = true``, a target must resolve only
to globally reachable addresses — loopback, private, shared (CGNAT), link-local,
multicast, unspecified and reserved ranges of IPv4 and IPv6 are refused, IPv4 inside IPv6
(mapped, NAT64, 6to4) judged as the IPv4 it carries. The host name is resolved when the
webhook is registered (``check_target``) and again on every connection of a delivery
(``GuardedResolver``: the addresses connected to are the ones checked, so a DNS answer
that changes after registration — DNS rebinding — cannot slip through); redirects are not
followed.
"""
from __future__ import annotations

import asyncio
import errno
import hashlib
import hmac
import ipaddress
import logging
import socket
from collections.abc import Callable
from typing import Any, Final

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver
from yarl import URL

from .faults import fault
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
#: Delivered rows are kept a week (a CRM re-reads results from GET /v1/results, not from
#: here; the week is for a person asking "did the hook fire?"), pruned 1,000 at a time,
#: once a minute: a week of traffic at most, whatever the rate.
DELIVERED_RETENTION_SECONDS: Final = 7 * 86400.0
PRUNE_BATCH: Final = 1000
PRUNE_EVERY_SECONDS: Final = 60.0
#: A claimed delivery is this worker's for this many delivery timeouts: the posts of one
#: claim run at once, each bounded by the timeout; the rest is room for a busy event loop
#: and the store's write. A controller killed mid-delivery holds its rows no longer.
LEASE_TIMEOUTS: Final = 3
SIGNATURE_HEADER: Final = "X-Simrotor-Signature"
TIMESTAMP_HEADER: Final = "X-Simrotor-Timestamp"
#: How long registration waits for a target's host name to resolve: glibc's resolver
#: gives up on a server after 5 s (resolv.conf(5), ``timeout`` default).
RESOLVE_TIMEOUT: Final = 5.0
#: A webhook URL at most this long (browsers and proxies handle URLs of 2,000 characters).
MAX_URL: Final = 2000
#: IPv6 prefixes that carry an IPv4 address in their last 32 bits: NAT64's well-known
#: prefix (RFC 6052 §2.1); 6to4 (RFC 3056) is read with ``IPv6Address.sixtofour``.
_NAT64: Final = ipaddress.IPv6Network("64:ff9b::/96")


class TargetRefused(ValueError):
    """A webhook URL the controller will not deliver to; the message says why."""


def address_problem(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    """Why deliveries may not go to ``ip`` (a loopback, private, … address), or None when
    it is globally reachable (Python's ``is_global``: the IANA special-purpose registries)."""
    if isinstance(ip, ipaddress.IPv6Address):
        inner = ip.ipv4_mapped or ip.sixtofour or (
            ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF) if ip in _NAT64 else None)
        if inner is not None:
            return address_problem(inner)
    for kind, yes in (("loopback", ip.is_loopback), ("unspecified", ip.is_unspecified), ("link-local", ip.is_link_local),
                      ("multicast", ip.is_multicast), ("private", ip.is_private), ("reserved", ip.is_reserved)):
        if yes:
            return f"{ip} is {'an' if kind[0] in 'aeiou' else 'a'} {kind} address"
    if not ip.is_global:
        return f"{ip} is not a globally reachable address"
    return None


async def _addresses(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


async def check_target(url: str, *, allow_private: bool, timeout: float = RESOLVE_TIMEOUT) -> None:
    """Refuse (``TargetRefused``) a webhook URL that is not http(s), or whose host is or
    resolves to an address ``address_problem`` refuses (unless ``allow_private``)."""
    try:
        parsed = URL(url)
    except (ValueError, TypeError):
        raise TargetRefused("an http(s) URL, e.g. https://crm.example.com/hooks/simrotor") from None
    if parsed.scheme not in ("http", "https") or not parsed.host or len(url) > MAX_URL:
        raise TargetRefused(f"an http(s) URL of at most {MAX_URL} characters, e.g. https://crm.example.com/hooks/simrotor")
    if allow_private:
        return
    host = parsed.host
    try:
        addresses = [host.strip("[]").split("%")[0]] if _is_ip(host) else None
        if addresses is None:
            async with asyncio.timeout(timeout):
                addresses = await _addresses(host, parsed.port or 443)
    except (OSError, UnicodeError, TimeoutError):
        raise TargetRefused(f"the host {host!r} does not resolve; webhooks need a host the controller can look up") from None
    for addr in addresses:
        problem = address_problem(ipaddress.ip_address(addr.split("%")[0]))
        if problem is not None:
            raise TargetRefused(f"{host} -> {problem}; deliveries go only to public addresses "
                                "(set [webhooks] allow_private = true for a receiver on a private network)")


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]").split("%")[0])
    except ValueError:
        return False
    return True


class GuardedResolver(AbstractResolver):
    """Resolves like aiohttp's default and keeps only the addresses ``address_problem``
    allows: the connection goes to an address checked at the moment of connecting."""

    def __init__(self) -> None:
        self._inner = ThreadedResolver()

    async def resolve(self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        allowed = [r for r in results if address_problem(ipaddress.ip_address(r["host"])) is None]
        if not allowed:
            problem = address_problem(ipaddress.ip_address(results[0]["host"])) if results else "no address"
            # errno and strerror both set: aiohttp shows the strerror of a failed lookup
            raise OSError(errno.EACCES, f"{host} refused: {problem} (webhooks go only to public addresses)")
        return allowed

    async def close(self) -> None:
        await self._inner.close()


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
                 max_attempts: int = DEFAULT_MAX_ATTEMPTS, timeout: float = DELIVERY_TIMEOUT,
                 allow_private: bool = False) -> None:
        self.store = store
        self.clock = clock
        self.backoff = backoff
        self.max_attempts = max_attempts
        self.timeout = timeout
        self.allow_private = allow_private
        self.wake = asyncio.Event()
        self.delivered = 0
        self.failed = 0
        self._pruned_at = float("-inf")

    async def run_once(self, session: aiohttp.ClientSession, limit: int = 100) -> int:
        """Post the due deliveries this worker could claim (leased for ``LEASE_TIMEOUTS``
        timeouts: every controller's worker claims from the same table, none waits for
        another's rows, and rows of a worker that died come due again when its lease ends)."""
        now = self.clock()
        due = self.store.claim_deliveries(now, now + self.timeout * LEASE_TIMEOUTS, limit)
        if due:
            await asyncio.gather(*(self._post(session, d) for d in due))
        return len(due)

    async def _post(self, session: aiohttp.ClientSession, d: dict[str, object]) -> None:
        body = str(d["payload"]).encode()
        ts = int(self.clock())
        headers = {"Content-Type": "application/json", SIGNATURE_HEADER: sign(str(d["secret"]), ts, body),
                   TIMESTAMP_HEADER: str(ts), "X-Simrotor-Event": str(d["event"]), "X-Simrotor-Delivery": str(d["id"])}
        error = self._literal_problem(str(d["url"]))
        try:
            if error is not None:
                raise OSError(error)
            async with session.post(str(d["url"]), data=body, headers=headers, allow_redirects=False,
                                    timeout=aiohttp.ClientTimeout(total=self.timeout)) as resp:
                if 200 <= resp.status < 300:
                    fault("webhook.posted")
                    self.store.delivery_done(int(d["id"]), self.clock())  # type: ignore[call-overload]
                    self.delivered += 1
                    return
                error = f"HTTP {resp.status}"
        except (aiohttp.ClientError, TimeoutError, OSError, ValueError) as exc:
            error = f"{type(exc).__name__}: {exc}"
        attempts = int(d["attempts"]) + 1  # type: ignore[call-overload]
        next_at = None if attempts >= self.max_attempts else self.clock() + next_delay(attempts, self.backoff)
        self.store.delivery_failed(int(d["id"]), error or "failed", next_at, self.clock())  # type: ignore[call-overload]
        self.failed += 1
        logger.info("webhook delivery %s failed (%s), try %d%s", d["id"], error, attempts,
                    "; dead-lettered" if next_at is None else "")

    def _literal_problem(self, url: str) -> str | None:
        """An address written into the URL never meets the resolver: judged here."""
        if self.allow_private:
            return None
        host = URL(url).host or ""
        if not _is_ip(host):
            return None
        problem = address_problem(ipaddress.ip_address(host.strip("[]").split("%")[0]))
        return None if problem is None else f"refused: {problem} (webhooks go only to public addresses)"

    def session(self) -> aiohttp.ClientSession:
        """The delivery session: name lookups through ``GuardedResolver`` unless private
        targets are allowed; no proxy from the environment (trust_env off, the default)."""
        connector: Any = aiohttp.TCPConnector(resolver=GuardedResolver()) if not self.allow_private else None
        return aiohttp.ClientSession(connector=connector)

    def prune(self) -> int:
        """Delivered rows older than ``DELIVERED_RETENTION_SECONDS`` go, a batch at a time,
        at most once a ``PRUNE_EVERY_SECONDS``: the table stays bounded by a week's traffic."""
        now = self.clock()
        if now - self._pruned_at < PRUNE_EVERY_SECONDS:
            return 0
        self._pruned_at = now
        return self.store.prune_deliveries(now - DELIVERED_RETENTION_SECONDS, PRUNE_BATCH)

    async def run_forever(self, poll: float = 1.0) -> None:
        async with self.session() as session:
            while True:
                try:
                    self.prune()
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
