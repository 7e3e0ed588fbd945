"""The fleet link, server side: one WebSocket per appliance at ``GET /v1/link``.

JSON text frames, one message each, read and written through the wire contract
(``common.contract``: ``decode_message`` / ``encode_message``); the message's type selects
the handler (``LinkHub.handlers``). The appliance authenticates with ``Authorization: Bearer <credential>`` from ``POST
/v1/enroll``. Every message that carries data is persisted before it is acknowledged:

* ``hello``     -> fleet row + SIMs updated, the appliance becomes a dispatch target
* ``ack``       -> jobs accepted / rejected (rejected jobs end their contact with the reason)
* ``results``   -> stored, deduplicated, next steps planned; reply ``results_ack`` upto
* ``inbound``   -> matched to contact and campaign, STOP words opt out; ``inbound_ack``
* ``heartbeat`` -> free capacity refreshed

A malformed message (one the contract refuses, or out of turn) is answered with
``{"type": "error", "detail": ...}`` naming the field, and the link stays up (one bad frame
never kills a link). A second connection of the same appliance
replaces the first.
"""
from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Final

import msgspec
from aiohttp import WSMsgType, web

from common import phone
from common.clock import iso, parse_iso
from common.contract import (
    Ack,
    Cancel,
    Error,
    Heartbeat,
    Hello,
    Inbound,
    InboundAck,
    Jobs,
    LinkMessage,
    Results,
    ResultsAck,
    decode_message,
    encode_message,
)

from . import auth
from .apikit import ApiError
from .faults import fault
from .reports import Reports
from .store import Store

logger = logging.getLogger(__name__)

#: Largest frame accepted from an appliance: a results batch of 1,000 bodies fits in 4 MiB.
MAX_FRAME: Final = 4 * 1024 * 1024
#: The controller's heartbeat to each appliance (appliance side may use it as liveness).
HEARTBEAT_SECONDS: Final = 15.0


def _epoch(value: Any) -> float | None:
    try:
        return parse_iso(value)
    except ValueError:
        return None


class LinkError(ValueError):
    pass


def _tag(msg: LinkMessage) -> str:
    return str(type(msg).__struct_config__.tag)


class Link:
    """One connected appliance."""

    def __init__(self, appliance_id: str, ws: web.WebSocketResponse) -> None:
        self.appliance_id = appliance_id
        self.ws = ws
        self.hello: Hello | None = None
        self.hello_at: float | None = None  # the controller's clock at the hello
        self.capacity = 0
        self.lock = asyncio.Lock()
        #: ids of jobs this link was told to cancel (the sweep tells each once)
        self.cancelled: set[str] = set()

    async def send(self, msg: LinkMessage) -> bool:
        if self.ws.closed:
            return False
        try:
            async with self.lock:
                await self.ws.send_str(encode_message(msg).decode())
            return True
        except (ConnectionError, RuntimeError):
            return False


class LinkHub:
    """The connected appliances, and what their messages do: handed the store (fleet rows,
    jobs to send again), ``reports`` (results, acks and inbound events written, each in one
    transaction, before the reply), the clock and ``wake`` (more capacity or final
    results: dispatch again now)."""

    def __init__(self, store: Store, reports: Reports, clock: Callable[[], float], *, wake: Callable[[], None],
                 heartbeat_seconds: float = HEARTBEAT_SECONDS) -> None:
        self.store = store
        self.reports = reports
        self.clock = clock
        self.wake = wake
        self.heartbeat_seconds = heartbeat_seconds
        self.links: dict[str, Link] = {}
        # What an appliance may send; the contract's other messages go the other way.
        self.handlers: dict[type[LinkMessage], Callable[[Link, Any], Awaitable[None]]] = {
            Hello: self.on_hello, Ack: self.on_ack, Results: self.on_results,
            Inbound: self.on_inbound, Heartbeat: self.on_heartbeat,
        }

    async def send(self, appliance_id: str, msg: LinkMessage) -> bool:
        link = self.links.get(appliance_id)
        return await link.send(msg) if link is not None else False

    async def withdraw(self, jobs: Iterable[tuple[str, str]], reason: str) -> None:
        """Cancel (job id, appliance id) jobs on their appliances; one that is off the link
        gets them again when it says hello (``on_hello``)."""
        by_app: dict[str, list[str]] = {}
        for job_id, appliance_id in jobs:
            if appliance_id:
                by_app.setdefault(appliance_id, []).append(job_id)
        for appliance_id, ids in by_app.items():
            await self.send(appliance_id, Cancel(ids=ids, reason=reason))
            if (link := self.links.get(appliance_id)) is not None:
                link.cancelled.update(ids)

    async def cancel_withdrawn(self) -> int:
        """Tell each appliance on this controller's links to cancel its unstarted jobs of
        paused and cancelled campaigns that it was not told of yet: the pause or cancel may
        have come to another controller sharing the database, whose ``withdraw`` reaches
        only its own links. Returns how many jobs were sent."""
        sent = 0
        for link in list(self.links.values()):
            if link.hello is not None:
                sent += await self._cancel_withdrawn(link)
        return sent

    async def _cancel_withdrawn(self, link: Link) -> int:
        stale = {j for j, _ in self.store.unstarted_jobs(appliance_id=link.appliance_id, campaign_states=("paused", "cancelled"))}
        link.cancelled &= stale  # a job gone from the list (came back cancelled, or resumed) may be cancelled again later
        ids = sorted(stale - link.cancelled)
        if ids and await link.send(Cancel(ids=ids, reason="campaign paused or cancelled")):
            link.cancelled.update(ids)
            return len(ids)
        return 0

    async def close_all(self) -> None:
        for link in list(self.links.values()):
            await link.ws.close()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        secret = auth.bearer(request.headers.get("Authorization"))
        appliance_id = self.store.appliance_for_credential(auth.digest(secret)) if secret else None
        if appliance_id is None:
            raise ApiError(401, "unauthorized", "send Authorization: Bearer <credential from POST /v1/enroll>")
        # WebSocket pings (RFC 6455 §5.5.2) detect a silently dead peer (a cut cable keeps
        # TCP open for hours): no pong within half the interval closes the link.
        ws = web.WebSocketResponse(heartbeat=self.heartbeat_seconds, max_msg_size=MAX_FRAME)
        await ws.prepare(request)
        old = self.links.get(appliance_id)
        if old is not None:
            await old.ws.close(code=4000, message=b"replaced by a new connection")
        link = Link(appliance_id, ws)
        self.links[appliance_id] = link
        logger.info("link up: %s", appliance_id)
        beat = asyncio.create_task(self._heartbeat(link))
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    if msg.type == WSMsgType.BINARY:
                        await link.send(Error(detail="binary frames are not part of the protocol"))
                    continue
                await self._dispatch(link, msg.data)
                # frames already buffered are read without a pause: a burst of results
                # messages would hold the loop (API, other links) until the last was stored
                await asyncio.sleep(0)
        finally:
            beat.cancel()
            if self.links.get(appliance_id) is link:
                del self.links[appliance_id]
                # not if it said hello to another controller since (it moved on first)
                self.store.appliance_disconnected(appliance_id, self.clock(), hello_at=link.hello_at)
            logger.info("link down: %s", appliance_id)
        return ws

    async def _dispatch(self, link: Link, data: str) -> None:
        try:
            msg = decode_message(data)  # ContractError (a ValueError) names the field
            handler = self.handlers.get(type(msg))
            if handler is None:
                raise LinkError(f"unknown message type {_tag(msg)!r}")
            if not isinstance(msg, Hello) and link.hello is None:
                raise LinkError("send hello first")
            await handler(link, msg)
        except (LinkError, ValueError, KeyError, TypeError) as exc:
            logger.warning("bad message from %s: %s", link.appliance_id, exc)
            await link.send(Error(detail=str(exc)))

    async def _heartbeat(self, link: Link) -> None:
        while not link.ws.closed:
            await asyncio.sleep(self.heartbeat_seconds)
            await link.send(Heartbeat(at=iso(self.clock(), ms=False)))

    # -- handlers (the contract has checked each message's shape and types) -------------------
    async def on_hello(self, link: Link, msg: Hello) -> None:
        if msg.appliance_id not in (None, link.appliance_id):
            raise LinkError(f"this credential belongs to {link.appliance_id!r}")
        link.hello_at = self.clock()
        self.store.appliance_hello(link.appliance_id, msgspec.to_builtins(msg), link.hello_at)
        link.hello = msg
        link.capacity = msg.capacity
        # Pauses and cancels that happened while this appliance was away reach it now.
        await self._cancel_withdrawn(link)
        # Jobs leased to it whose batch it never acknowledged (the link or one of the two
        # processes died in between) go again, same ids and deadlines: it dedupes by id, so
        # a job it did store is not doubled, and one it never got is not left to wait out
        # its lease (5 minutes) before anyone notices.
        unacked = self.store.unacked_jobs(link.appliance_id, self.clock())
        if unacked:
            await link.send(Jobs(batch_id=f"b-{uuid.uuid4().hex[:16]}", jobs=unacked))
            logger.info("link %s: %d unacknowledged job(s) sent again", link.appliance_id, len(unacked))
        self.wake()

    async def on_heartbeat(self, link: Link, msg: Heartbeat) -> None:
        """Refresh the appliance's row and capacity; dispatch now only when its capacity
        grew (new room for jobs): a tick for an unchanged or smaller one finds nothing to
        send, and it runs on the event loop, ahead of the results waiting there (a
        heartbeat's tick held a controller's first results batch ~400 ms)."""
        grew = False
        if not isinstance(msg.capacity, msgspec.UnsetType):
            grew = msg.capacity > link.capacity
            link.capacity = msg.capacity
        self.store.appliance_heartbeat(link.appliance_id, msgspec.to_builtins(msg), self.clock())
        if grew:
            self.wake()

    async def on_ack(self, link: Link, msg: Ack) -> None:
        rejected = [(str(r.id), r.reason or "rejected") for r in msg.rejected]
        await self.store.off_loop(self.reports.ack_batch, link.appliance_id, msg.accepted, rejected, self.clock())

    async def on_results(self, link: Link, msg: Results) -> None:
        # Stored as the appliance sent them (the fields the contract declares), as dicts.
        bodies: list[dict[str, Any]] = msgspec.to_builtins(msg.results)
        upto = None
        for r in bodies:
            at = next((t for k in ("dialed_at", "submitted_at", "started_at", "at", "ended_at") if (t := _epoch(r.get(k)))), None)
            r["_at"] = at if at is not None else self.clock()
            seq = r.get("seq")
            if seq is not None:
                upto = seq if upto is None else max(upto, seq)
        new = await self.store.off_loop(self.reports.ingest_results, link.appliance_id, bodies, self.clock())
        fault("ingest.stored")
        await link.send(ResultsAck(upto=upto, count=len(bodies)))
        # only a new final result ends its job (room on the appliance, its contact moved on):
        # a repeated batch or one of calls still running gives the dispatcher nothing new
        if any(r["final"] for r in new):
            self.wake()

    async def on_inbound(self, link: Link, msg: Inbound) -> None:
        good = []
        for e in msgspec.to_builtins(msg.events):
            try:
                frm = phone.normalise(e.get("from"))
                to = phone.normalise(e["to"]) if e.get("to") else None
            except phone.NumberError as exc:
                frm, to = str(e.get("from")), e.get("to")
                logger.info("inbound %s: %s", e["id"], exc)
            good.append({**e, "from": frm, "to": to, "_at": _epoch(e.get("at")) or self.clock()})
        self.reports.add_inbound(link.appliance_id, good, self.clock())
        await link.send(InboundAck(ids=[e["id"] for e in good]))
