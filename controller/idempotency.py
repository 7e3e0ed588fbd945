"""``Idempotency-Key`` on every POST of the CRM API (IETF draft-ietf-httpapi-idempotency-key-
header; Stripe's practice): a client that retries a POST after a timeout sends the same key,
and gets the first answer again — status and body — instead of a second effect or a 409.

* the key is the client's (a UUID is typical): 1-255 visible ASCII characters, scoped to
  the API key that sent it, so two CRMs never meet on one;
* the request is fingerprinted (method, path and query, Content-Type, body: SHA-256); the
  same key with another fingerprint is a 422 ``idempotency_key_reused``, never a replay of
  an answer to something else;
* a key whose first request is still running is a 409 ``idempotency_key_in_use`` with
  ``Retry-After`` (two retries at once run the request once); one left unanswered for
  ``ABANDONED_SECONDS`` (its controller died) is taken over by the next request;
* answers below 500 are kept (a 4xx is the answer to that request, as the draft says); a
  500 releases the key so the retry runs again; keys are swept after ``KEEP_SECONDS``.

A replayed answer carries ``Idempotent-Replayed: true``.
"""
from __future__ import annotations

import hashlib
import re
from collections.abc import Awaitable, Callable
from typing import Final

from aiohttp import web

from .apikit import ApiError
from .store import Store

HEADER: Final = "Idempotency-Key"
REPLAYED_HEADER: Final = "Idempotent-Replayed"
#: 24 h: the IETF draft's example and Stripe's keep time; a retry comes within minutes.
KEEP_SECONDS: Final = 24 * 3600.0
#: Visible ASCII, at most Stripe's 255 characters (a UUID is 36): safe to store and log.
KEY_PATTERN: Final = re.compile(r"[\x21-\x7e]{1,255}")
#: A key claimed this long ago and still unanswered was abandoned — its controller died
#: while answering (several controllers on one database: the retry goes to another) — and
#: the next request with it runs. Far longer than any request runs (an import of 1,000,000
#: contacts takes under a minute), far shorter than ``KEEP_SECONDS``.
ABANDONED_SECONDS: Final = 600.0
#: Seconds a client should wait before asking again about a key still being answered.
RETRY_AFTER_SECONDS: Final = 1


def fingerprint(method: str, path_qs: str, content_type: str, body: bytes) -> str:
    h = hashlib.sha256()
    for part in (method.encode(), path_qs.encode(), content_type.encode()):
        h.update(part + b"\0")
    h.update(body)
    return h.hexdigest()


class Idempotency:
    """Runs a POST once per (API key, Idempotency-Key) and replays its answer."""

    def __init__(self, store: Store, clock: Callable[[], float], keep_seconds: float = KEEP_SECONDS) -> None:
        self.store = store
        self.clock = clock
        self.keep_seconds = keep_seconds

    async def run(self, request: web.Request, scope: str,
                  answer: Callable[[], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
        key = request.headers.get(HEADER)
        if key is None or request.method != "POST":
            return await answer()
        if not KEY_PATTERN.fullmatch(key):
            raise ApiError(400, "bad_idempotency_key", {"field": HEADER, "reason": "1-255 visible ASCII characters "
                                                        "(a UUID is a good key)"})
        body = await request.read()  # aiohttp keeps it: the handler reads the same bytes
        fp = fingerprint(request.method, request.rel_url.raw_path_qs, request.content_type, body)
        now = self.clock()
        first = self.store.claim_idempotency_key(scope, key, fp, now, now - self.keep_seconds)
        if first is not None:
            if first["fingerprint"] != fp:
                raise ApiError(422, "idempotency_key_reused", {
                    "field": HEADER, "reason": f"{key!r} was sent with another request (method, path, query or body "
                                               f"differ); a key names one request for {self.keep_seconds / 3600:g} h: "
                                               "use a new key for a new request"})
            if first["status"] is None and not (
                    now - first["created_at"] > ABANDONED_SECONDS
                    and self.store.take_over_idempotency_key(scope, key, fp, first["created_at"], now)):
                raise ApiError(409, "idempotency_key_in_use", {
                    "field": HEADER, "reason": f"the first request with {key!r} is still being answered; "
                                               f"ask again in {RETRY_AFTER_SECONDS} s"},
                               headers={"Retry-After": str(RETRY_AFTER_SECONDS)})
            if first["status"] is not None:
                return web.Response(body=first["body"], status=first["status"],
                                    headers={"Content-Type": first["content_type"], REPLAYED_HEADER: "true"})
        try:
            resp = await answer()
        except BaseException:
            self.store.release_idempotency_key(scope, key)
            raise
        if resp.status >= 500 or not isinstance(resp, web.Response) or not isinstance(resp.body, bytes):
            self.store.release_idempotency_key(scope, key)
            return resp
        self.store.keep_idempotent_answer(scope, key, resp.status, resp.headers.get("Content-Type", resp.content_type),
                                          resp.body)
        return resp
