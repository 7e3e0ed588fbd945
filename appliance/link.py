"""The appliance's side of the fleet link: one WebSocket, dialled out to the controller.

Messages are JSON text frames, each one of the wire contract's messages
(``common.contract``), built as its struct and written with ``encode_message``, read with
``decode_message`` (docs/controller.md has the whole protocol):

* we send ``hello`` on connect (identity, channels, operators, SIMs, free capacity),
  ``ack`` for each job batch *after* the jobs are in our store, ``results`` from the
  outbox (in order, from the last acknowledged ``seq``), ``inbound`` events (callbacks),
  and ``heartbeat``;
* we receive ``jobs`` (each job's ``deadline`` is its lease: we never start it later),
  ``results_ack`` (the outbox may forget up to ``upto``), ``inbound_ack``, ``cancel``,
  ``heartbeat`` and ``error`` (the controller refused one of ours), each handled by its
  row of ``Link.handlers``; a frame the contract refuses is logged and dropped, and the
  link stays up.

Nothing is lost across a dropped link or a restart: the outbox and the inbound table are
in SQLite and are resent from the last acknowledgement; the controller deduplicates.

The link is handed what it uses (``services.Core``: the bank, scheduler, store, rotation
policy and wall clock), not the whole appliance.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Final

import aiohttp
import msgspec

from common.clock import iso
from common.contract import (
    UNSET,
    Ack,
    Cancel,
    ContractError,
    Error,
    Heartbeat,
    Hello,
    Inbound,
    InboundAck,
    InboundEvent,
    Jobs,
    LinkMessage,
    Rejection,
    Result,
    Results,
    ResultsAck,
    SimInfo,
    decode_message,
    encode_message,
)
from modem_drivers.background import Background
from modem_drivers.types import IncomingCall, SmsReceived

from .channel import Channel
from .config import LinkSection
from .jobspec import JobError, validate_job
from .services import Core

logger = logging.getLogger(__name__)

#: Results per ``results`` message: keeps one frame well under aiohttp's 4 MiB default.
RESULTS_PER_MESSAGE: Final = 200
VERSION: Final = "0.1.0"
_RESULT_FIELDS: Final = frozenset(Result.__struct_fields__)


class LinkError(RuntimeError):
    pass


async def enroll(controller: str, token: str, appliance_id: str) -> str:
    """Trade a one-time enrollment token for this appliance's credential."""
    url = controller.rstrip("/") + "/v1/enroll"
    async with aiohttp.ClientSession() as s, s.post(url, json={"token": token, "appliance_id": appliance_id}) as r:
        body = await r.json(content_type=None)
        if r.status != 200:
            raise LinkError(f"enrollment refused ({r.status}): {body.get('detail') or body.get('error')}")
        return str(body["credential"])


class Link:
    def __init__(self, cfg: LinkSection, appliance_id: str, deps: Core) -> None:
        self.cfg = cfg
        self.bank = deps.bank
        self.scheduler = deps.scheduler
        self.store = deps.store
        self.policy = deps.policy
        self.appliance_id = appliance_id
        self.clock = deps.clock
        self.urls = cfg.urls
        #: The controller the link is on, or tries next (the first listed until one answers).
        self.url = self.urls[0]
        self.connected = asyncio.Event()
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._tasks = Background("link", logger)
        self._wake = asyncio.Event()
        #: Inbound rows sent in this session: id -> the choice they carried (None: none yet).
        #: A row whose choice came after it was sent goes again; an ack counts only for
        #: the version sent (an answered call's first send must not ack its choice).
        self._inbound_sent: dict[str, str | None] = {}
        self.sent_results = 0
        # What the controller may send us; hello, ack, results and inbound go the other way.
        self.handlers: dict[type[LinkMessage], Callable[[Any], Awaitable[None]]] = {
            Jobs: self._on_jobs, ResultsAck: self._on_results_ack, InboundAck: self._on_inbound_ack,
            Cancel: self._on_cancel, Heartbeat: self._on_heartbeat, Error: self._on_error,
        }

    # -- lifecycle -------------------------------------------------------------------
    def start(self) -> None:
        self.bank.on_event(self._on_bank_event)
        self.scheduler.result_listeners.append(lambda _r: self._wake.set())
        self._tasks.spawn(self._run(), "the fleet link")

    async def stop(self) -> None:
        await self._tasks.cancel_all()

    def state(self) -> dict[str, Any]:
        """For the status: where to, whether up, how many results sent."""
        return {"url": self.url, "urls": list(self.urls), "connected": self.connected.is_set(),
                "results_sent": self.sent_results}

    def _credential(self) -> str:
        path = Path(self.cfg.credential_file)
        try:
            return path.read_text().strip()
        except FileNotFoundError:
            raise LinkError(f"no credential at {path}: run `simrotor provision enroll` first") from None

    async def _run(self) -> None:
        """Connect, and again after every drop. With several controllers listed, a failed
        or dropped one hands over to the next at once: the backoff grows only after a
        whole round of them failed, and a link that was up starts the count again."""
        delay, cap = self.cfg.reconnect_backoff
        backoff = delay
        index = failed_in_round = 0
        while True:
            self.url = self.urls[index]
            was_up = False
            try:
                credential = self._credential()
                headers = {"Authorization": f"Bearer {credential}"}
                async with aiohttp.ClientSession() as session, session.ws_connect(
                        self.url, headers=headers, heartbeat=self.cfg.heartbeat_seconds * 3) as ws:
                    await self._session(ws)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # Only a session that got its hello out resets the backoff: a bug on our
                # side before that must not be retried at the first step's pace for ever.
                was_up = self.connected.is_set()
                expected = isinstance(exc, (TimeoutError, aiohttp.ClientError, OSError, LinkError, ConnectionError))
                self.connected.clear()
                self._ws = None
                if was_up:
                    backoff, failed_in_round = delay, 0
                else:
                    failed_in_round += 1
                index = (index + 1) % len(self.urls)
                if len(self.urls) > 1 and failed_in_round < len(self.urls):
                    wait, why = delay, f"trying {self.urls[index]} next"
                else:
                    wait, why = backoff, f"reconnecting to {self.urls[index]}"
                    backoff, failed_in_round = min(cap, backoff * 2), 0
                if expected:
                    logger.warning("link to %s: %s; %s in %.1f s", self.url, exc, why, wait)
                else:
                    logger.exception("link to %s failed; %s in %.1f s", self.url, why, wait)
            await asyncio.sleep(wait)

    async def _session(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self._ws = ws
        await self._send(self._hello())
        self.connected.set()
        logger.info("link: connected to %s", self.url)
        pump = asyncio.ensure_future(self._pump())
        try:
            async for msg in ws:
                if msg.type is aiohttp.WSMsgType.TEXT:
                    try:
                        await self._handle(msg.data)
                    except (KeyError, TypeError, ValueError) as exc:  # ContractError is a ValueError
                        logger.warning("link: bad message dropped (%s): %.200s", exc, msg.data)
                elif msg.type in (aiohttp.WSMsgType.ERROR, aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED):
                    break
        finally:
            pump.cancel()
            with contextlib.suppress(BaseException):
                await pump
        raise LinkError(f"link closed ({ws.close_code})")

    async def _send(self, message: LinkMessage) -> None:
        if self._ws is None:
            raise LinkError("not connected")
        await self._ws.send_str(encode_message(message).decode())

    # -- what we send ----------------------------------------------------------------
    def capacity(self) -> int:
        """How many open jobs the controller may hold on us. The controller counts every
        job without a final result as open, including SMS and pings whose channel work is
        done and which only wait for a status report: those are added back, so waiting
        reports never starve the channels."""
        stats = self.scheduler.stats()
        wanted = int(self.cfg.queue_per_channel * max(1, len(self.bank.channels)))
        return wanted + stats["awaiting_report"]

    def _hello(self) -> Hello:
        operators: dict[str, int] = {}
        sims = []
        for ch, slot in self.bank.sims():
            info = slot.info
            op = info.mcc_mnc if info and info.mcc_mnc else ""
            if op and slot.slot == ch.active_slot:
                operators[op] = operators.get(op, 0) + 1
            sims.append(SimInfo(sim_id=slot.sim_id, msisdn=info.msisdn if info else None, operator=op, channel_id=ch.id,
                                slot=slot.slot, active=slot.slot == ch.active_slot, state=self._sim_state(slot.sim_id)))
        stats = self.scheduler.stats()
        return Hello(appliance_id=self.appliance_id, version=VERSION, channels=len(self.bank.channels),
                     idle=stats["idle_channels"], capacity=self.capacity(), operators=operators, sims=sims)

    def _sim_state(self, sim_id: str | None) -> str | None:
        """The SIM's standing in the rotation, or ``not_in_rotation`` for a SIM the bank has
        read but not offered (locked, or its modem not yet settled)."""
        if not sim_id:
            return None
        if not self.policy.knows(sim_id):
            return "not_in_rotation"
        return self.policy.state(sim_id, self.clock()).value

    async def _pump(self) -> None:
        """Results and inbound events out, in order; heartbeats between. On a new session
        everything not yet acknowledged is sent again (the controller deduplicates)."""
        sent_upto = int(self.store.get_kv("link_results_acked", 0))
        inbound_sent = self._inbound_sent = {}
        next_beat = 0.0
        while True:
            self._wake.clear()
            while True:
                items, nxt = self.store.results_after(sent_upto, RESULTS_PER_MESSAGE)
                if not items:
                    break
                await self._send(Results(results=_results(items)))
                self.sent_results += len(items)
                sent_upto = nxt
            inbound = [e for e in self.store.unacked_inbound()
                       if e["id"] not in inbound_sent or inbound_sent[e["id"]] != e["choice"]]
            if inbound:
                await self._send(Inbound(events=[
                    InboundEvent(id=e["id"], kind=e["kind"], from_=e["from"], to=e["to"], text=e["text"],
                                 channel_id=e["channel_id"], sim_id=e["sim_id"], at=iso(e["at"]),
                                 choice=e["choice"] if e["choice"] else UNSET) for e in inbound]))
                inbound_sent.update((e["id"], e["choice"]) for e in inbound)
            now = time.monotonic()
            if now >= next_beat:
                stats = self.scheduler.stats()
                await self._send(Heartbeat(at=iso(self.clock()), idle=stats["idle_channels"], capacity=self.capacity(),
                                           queued=stats["queued"], running=stats["running"]))
                next_beat = now + self.cfg.heartbeat_seconds
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(0.05, next_beat - time.monotonic())):
                    await self._wake.wait()

    # -- what we receive ------------------------------------------------------------
    async def _handle(self, data: str) -> None:
        try:
            msg = decode_message(data)
        except ContractError as exc:
            if exc.field == "type" and exc.reason.startswith("unknown message type"):
                # A newer controller's message: not ours to answer.
                logger.info("link: %s ignored", exc.reason.partition(";")[0])
                return
            raise
        handler = self.handlers.get(type(msg))
        if handler is None:
            logger.info("link: unknown message type %r ignored", type(msg).__struct_config__.tag)
            return
        await handler(msg)

    async def _on_jobs(self, msg: Jobs) -> None:
        good, rejected = [], []
        now = self.clock()
        for raw in msg.jobs:
            try:
                spec = validate_job(raw)
            except JobError as exc:
                job_id = raw.get("id") if isinstance(raw, dict) else None
                rejected.append(Rejection(id=job_id if isinstance(job_id, str) else None, reason=str(exc)))
                continue
            if spec.get("deadline") is not None and spec["deadline"] <= now:
                rejected.append(Rejection(id=spec["id"], reason="lease already expired"))
                continue
            good.append(spec)
        created = self.scheduler.submit(good) if good else []  # persisted before the ack
        await self._send(Ack(batch_id=msg.batch_id, accepted=[i for i, _ in created], rejected=rejected))

    async def _on_results_ack(self, msg: ResultsAck) -> None:
        if msg.upto is None:  # the batch carried no seq: nothing to forget
            return
        self.store.ack_results(msg.upto)
        if msg.upto > int(self.store.get_kv("link_results_acked", 0)):
            self.store.set_kv("link_results_acked", msg.upto)

    async def _on_inbound_ack(self, msg: InboundAck) -> None:
        self.store.ack_inbound([(i, self._inbound_sent.get(i)) for i in msg.ids])

    async def _on_cancel(self, msg: Cancel) -> None:
        # Withdrawn by the controller (campaign paused or cancelled): jobs not yet on a
        # channel end ``cancelled`` with the reason; a call under way runs to its end.
        for job_id in msg.ids:
            self.scheduler.cancel(job_id, reason=msg.reason)

    async def _on_heartbeat(self, msg: Heartbeat) -> None:
        pass

    async def _on_error(self, msg: Error) -> None:
        logger.warning("link: the controller refused a message: %s", msg.detail)

    # -- inbound events (callbacks) --------------------------------------------------------
    def wake(self) -> None:
        """Something new to send (an answered callback's choice): send it now, not at the
        next heartbeat."""
        self._wake.set()

    def _on_bank_event(self, ch: Channel, ev: Any) -> None:
        # The runtime's InboundRecorder stored it already (it subscribed first).
        if isinstance(ev, (SmsReceived, IncomingCall)):
            self._wake.set()


def _results(items: list[dict[str, Any]]) -> list[Result]:
    """Outbox rows -> the contract's results. A field the contract does not declare is
    dropped on the wire, and a body it refuses would make the controller refuse the whole
    batch (and the next ack pass over it): both are bugs of ours, logged; such a body is
    skipped, its row stays in the outbox's table."""
    out = []
    for item in items:
        if extra := item.keys() - _RESULT_FIELDS:
            logger.error("link: result of job %s has fields the contract does not declare, not sent: %s",
                         item.get("job_id"), sorted(extra))
        try:
            out.append(msgspec.convert(item, Result))
        except msgspec.ValidationError as exc:
            logger.error("link: result seq %s breaks the contract, not sent (%s): %.300s", item.get("seq"), exc, item)
    return out
