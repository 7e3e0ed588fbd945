"""AtPort: one modem's AT channel in the asyncio loop.

One command in flight per port, a FIFO queue behind it (``asyncio.Lock`` wakes waiters in
order), URCs fanned out to subscribers at any time. Rules:

* The parser is told about the command (``begin``) *before* the bytes are written, so the
  reply can never be parsed in the wrong state (zigpy-znp: register the listener first).
* Every wait is bounded by the command's deadline, filed with the loop's coarse
  ``Deadlines`` (one loop timer per 50 ms bucket, not one per command: see
  ``modem_drivers/deadlines.py``); at the deadline the awaited future fails with
  ``AtTimeout`` — no task is cancelled, so nothing has to be shielded.
* A command whose caller gave up (timeout or cancellation) is *abandoned*, not forgotten:
  the parser stays in flight for it and the next command waits until its final result
  arrives or its hold expires (the original deadline, and at least ``ABANDONED_GRACE_S``
  after giving up), so a late ``OK`` is never taken as the next command's result. If it
  never comes the parser is reset to idle and a warning is logged.
* A command in ``ANSWER_WITHOUT_FINAL`` (``AT+CPIN?``: Wavecom sends ``+CPIN: READY`` and
  no ``OK``) succeeds once its information line has arrived and no final followed within
  ``IMPLIED_FINAL_S``: the parser is returned to idle and the next command goes out (a
  final that would come later than that is the one risk, bounded by the wait).
* A ``> `` prompt that reaches an abandoned command is answered with ESC (27.005 §3.5.1),
  as is a cancellation between the prompt and the payload, so the modem leaves the prompt.
* Losing the device (EOF/EIO/ENXIO) → state LOST, the waiting command fails with
  ``PortClosed``, state callbacks fire, and the same URL is reopened with capped
  exponential backoff until it is back (OPEN again, callbacks fire) or ``close()``.

State machine (table ``_TRANSITIONS``): OPEN → LOST | CLOSED; LOST → OPEN | CLOSED;
CLOSED is terminal.
"""

from __future__ import annotations

import asyncio
import enum
import functools
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from common.phone import mask

from ..deadlines import Deadlines, deadlines
from .errors import AtError, AtTimeout, PortClosed, PortUnavailable, failure_for
from .events import NEED_DATA, Final, FinalKind, InfoLine, Prompt, Urc
from .protocol import AtParser, default_expect
from .response import Response
from .tables import ANSWER_WITHOUT_FINAL
from .timeouts import TimeoutClass
from .transport import Transport, open_serial, start_transport

__all__ = ["AtPort", "PortState"]

logger = logging.getLogger(__name__)

# Reopen backoff after the device vanished: a USB modem re-enumerates within about a
# second of a glitch but needs 5-15 s after a reset (SIM800 Hardware Design V1.09: ~3 s
# power-on to "RDY"; SIM7600: ~10-15 s to USB enumeration), so start fast and cap at 8 s:
# at most 8 s of extra downtime once the device is back, and a few syscalls every 8 s
# while it is not.
RECONNECT_FIRST_S = 0.25
RECONNECT_FACTOR = 2.0
RECONNECT_MAX_S = 8.0
# How long after giving up on a command its late final is still expected: longer than the
# serial + USB latency of a busy modem (tens of ms), short enough not to stall the queue.
ABANDONED_GRACE_S = 2.0
# How long the port waits for the final result after the information line of a command
# that may come without one (tables.ANSWER_WITHOUT_FINAL). A modem writes the info line and
# its final in one burst (microseconds apart at 115200 baud); a USB-serial bridge delivers
# it within its latency timer (FTDI default 16 ms). 0.5 s is 30 times that, and the cost of
# a quirky modem's answer at each open.
IMPLIED_FINAL_S = 0.5
CTRL_Z = b"\x1a"  # ends the SMS payload after "> " (27.005 §3.5.1)
ESC = b"\x1b"  # cancels the SMS payload after "> " (27.005 §3.5.1)

class PortState(enum.Enum):
    OPEN = "open"
    LOST = "lost"  # device vanished; reopening (if reconnect) until close()
    CLOSED = "closed"  # close() was called; terminal


_TRANSITIONS = MappingProxyType(
    {
        PortState.OPEN: frozenset({PortState.LOST, PortState.CLOSED}),
        PortState.LOST: frozenset({PortState.OPEN, PortState.CLOSED}),
        PortState.CLOSED: frozenset(),
    }
)


@dataclass(slots=True, eq=False)
class _Pending:
    """The command in flight: what it waits for and what it has collected."""

    command: str
    final: asyncio.Future[Final]
    deadline: float
    seconds: float
    prompt: asyncio.Future[None] | None = None
    lines: list[str] = field(default_factory=list)
    abandoned: bool = False
    payload_sent: bool = False
    #: Set when the caller gives up: resolved by the late final (or a port failure), so
    #: the next command knows when the wire is quiet. ``final`` may be failed by then.
    settled: asyncio.Future[None] | None = None
    #: Prefix of the line that answers the command even without a final (tables.
    #: ANSWER_WITHOUT_FINAL), and the timer that takes it as the answer.
    enough: str | None = None
    implied: asyncio.TimerHandle | None = None


@dataclass(slots=True, eq=False)
class _Subscription:
    callback: Callable[[Urc], None]
    names: frozenset[str] | None


class AtPort:
    """An AT command channel over any pyserial URL, driven by the running event loop."""

    def __init__(self, url: str, *, name: str | None = None, baudrate: int = 115200,
                 reconnect: bool = True) -> None:
        self.url = url
        self.name = name or url
        self.baudrate = baudrate
        self.reconnect = reconnect
        self.state = PortState.CLOSED
        self.reconnect_first = RECONNECT_FIRST_S
        self.reconnect_max = RECONNECT_MAX_S
        self.abandoned_grace = ABANDONED_GRACE_S
        self.commands_done = 0
        self.bytes_in = 0
        self.bytes_out = 0
        self._parser = AtParser()
        self._lock = asyncio.Lock()
        self._transport: Transport | None = None
        self._pending: _Pending | None = None
        self._subs: tuple[_Subscription, ...] = ()
        self._state_cbs: tuple[Callable[[PortState], None], ...] = ()
        self._reconnect_task: asyncio.Task[None] | None = None
        self._closing = False
        self._wheel: Deadlines | None = None
        self._dispatch: dict[type, Callable[[Any], None]] = {
            Final: self._on_final,
            InfoLine: self._on_info,
            Urc: self._on_urc,
            Prompt: self._on_prompt,
        }

    # -- opening and closing -------------------------------------------------------

    @classmethod
    async def open(cls, url: str, *, name: str | None = None, baudrate: int = 115200,
                   reconnect: bool = True) -> AtPort:
        """Open ``url``; raise ``PortUnavailable`` (in words) when it cannot be opened."""
        port = cls(url, name=name, baudrate=baudrate, reconnect=reconnect)
        await port._connect()
        port.state = PortState.OPEN
        # DEBUG: the owner logs what the port is for (a channel up, a probe); a modem that
        # is probed every few seconds while stuck must not cost two lines a probe here.
        logger.debug("%s: opened %s", port.name, url)
        return port

    async def _connect(self) -> None:
        loop = asyncio.get_running_loop()
        if "://" in self.url:
            # network URLs connect synchronously inside pyserial; keep that off the loop
            ser = await loop.run_in_executor(None, open_serial, self.url, self.baudrate)
        else:
            ser = open_serial(self.url, self.baudrate)
        self._parser.reset()
        self._transport = start_transport(loop, ser, self._on_data, self._on_lost)

    async def close(self) -> None:
        """Close for good: fail the waiting command, stop reopening, release the fd."""
        if self.state is PortState.CLOSED:
            return
        self._closing = True
        task, self._reconnect_task = self._reconnect_task, None
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
        if self._transport is not None:
            self._transport.close()
            self._transport = None
        self._fail_pending(PortClosed(f"{self.name}: port closed"))
        self._set_state(PortState.CLOSED)
        logger.debug("%s: closed", self.name)

    # -- public API ----------------------------------------------------------------

    @property
    def lines_in(self) -> int:
        """Lines received (stats for the benchmark)."""
        return self._parser.lines_in

    @property
    def waiters(self) -> int:
        """Commands the port still waits on (in flight or abandoned): 0 when settled."""
        return 0 if self._pending is None else 1

    @property
    def subscribers(self) -> int:
        return len(self._subs)

    async def command(self, command: str, *, expect: str | tuple[str, ...] | None = None,
                      timeout: float | None = None,
                      timeout_class: TimeoutClass = TimeoutClass.DEFAULT) -> Response:
        """Send ``command`` + CR, return its ``Response`` on OK/CONNECT.

        Raises ``CommandFailed``/``CmeError``/``CmsError`` on an error final, ``AtTimeout``
        past the deadline (``timeout`` or the class's seconds), ``PortClosed`` if the port
        is or goes down. ``expect`` defaults to the command's own prefix (``default_expect``).
        """
        return await self._run(command, None, expect, timeout, timeout_class)

    async def command_with_prompt(self, command: str, payload: str, *,
                                  expect: str | tuple[str, ...] | None = None,
                                  timeout: float | None = None,
                                  timeout_class: TimeoutClass = TimeoutClass.SMS) -> Response:
        """``AT+CMGS=<n>`` → wait for ``> `` → payload + Ctrl-Z → final result.

        One deadline covers the prompt and the final. Cancelled after the prompt and
        before the payload, the port sends ESC so the modem leaves the prompt.
        """
        return await self._run(command, payload, expect, timeout, timeout_class)

    async def write_raw(self, data: bytes) -> None:
        """Write bytes as they are (no CR added, no queueing behind the command lock)."""
        transport = self._require_transport()
        self.bytes_out += len(data)
        transport.write(data)
        await transport.drain()

    def subscribe(self, callback: Callable[[Urc], None], *,
                  prefixes: Iterable[str] | None = None) -> Callable[[], None]:
        """Call ``callback(urc)`` for URCs named in ``prefixes`` (None: all); returns unsubscribe."""
        names = None if prefixes is None else frozenset(
            p.strip().rstrip(":").rstrip() for p in prefixes
        )
        sub = _Subscription(callback, names)
        self._subs = (*self._subs, sub)

        def unsubscribe() -> None:
            self._subs = tuple(s for s in self._subs if s is not sub)

        return unsubscribe

    def on_state(self, callback: Callable[[PortState], None]) -> Callable[[], None]:
        """Call ``callback(state)`` on every state change; returns the remover."""
        self._state_cbs = (*self._state_cbs, callback)

        def remove() -> None:
            self._state_cbs = tuple(c for c in self._state_cbs if c is not callback)

        return remove

    def add_urc_prefixes(self, prefixes: Iterable[str], *, two_line: bool = False) -> None:
        """Teach the parser a dialect's own URC prefixes (``two_line``: PDU on next line)."""
        self._parser.add_urc_prefixes(prefixes, two_line=two_line)

    def add_multiline_prefixes(self, prefixes: Iterable[str]) -> None:
        """Lines with these prefixes may carry CR LF inside a quoted string."""
        self._parser.add_multiline_prefixes(prefixes)

    # -- the command cycle -----------------------------------------------------------

    async def _run(self, command: str, payload: str | None,
                   expect: str | tuple[str, ...] | None, timeout: float | None,
                   timeout_class: TimeoutClass) -> Response:
        seconds = timeout_class.value if timeout is None else timeout
        if expect is None:
            prefixes = default_expect(command)
        elif isinstance(expect, str):
            prefixes = (expect,)
        else:
            prefixes = tuple(expect)
        loop = asyncio.get_running_loop()
        async with self._lock:
            await self._settle_abandoned()
            transport = self._require_transport()
            pending = _Pending(
                command=command,
                final=loop.create_future(),
                deadline=loop.time() + seconds,
                seconds=seconds,
                prompt=None if payload is None else loop.create_future(),
                enough=ANSWER_WITHOUT_FINAL.get(command.strip().upper()),
            )
            self._parser.begin(command, expect=prefixes, prompt=payload is not None)
            self._pending = pending
            data = command.encode() + b"\r"
            self.bytes_out += len(data)
            wheel = self._wheel if self._wheel is not None else self._bind_wheel()
            token = wheel.add(pending.deadline, functools.partial(self._expire, pending))
            try:
                transport.write(data)
                if pending.prompt is not None:
                    await pending.prompt
                    body = payload.encode() + CTRL_Z  # type: ignore[union-attr]
                    self.bytes_out += len(body)
                    pending.payload_sent = True
                    transport.write(body)
                final = await pending.final
            except asyncio.CancelledError:
                self._abandon(pending, "cancelled")
                raise
            finally:
                wheel.cancel(token)
                if pending.implied is not None:
                    pending.implied.cancel()
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("%s: %s -> %s (%d lines)", self.name, mask(repr(command)), final.text,
                         len(pending.lines))
        if final.is_error:
            raise failure_for(command, final)
        return Response(command, tuple(pending.lines), final)

    def _bind_wheel(self) -> Deadlines:
        self._wheel = deadlines()  # a port lives on one loop
        return self._wheel

    def _expire(self, pending: _Pending) -> None:
        """The deadline passed: the caller's wait fails with ``AtTimeout``; the command is
        abandoned (the port still expects its final)."""
        if self._pending is not pending or pending.abandoned:
            return  # answered, failed or given up already
        if pending.implied is not None:
            self._imply_final(pending)  # its answer line came: that is the answer
            return
        waiting = pending.prompt if pending.prompt is not None and not pending.prompt.done() else pending.final
        self._abandon(pending, "timed out")
        if not waiting.done():
            waiting.set_exception(AtTimeout(pending.command, pending.seconds))

    def _abandon(self, pending: _Pending, why: str) -> None:
        if self._pending is not pending or pending.abandoned:
            return  # already finished (final arrived or the port failed it)
        pending.abandoned = True
        loop = asyncio.get_running_loop()
        pending.settled = loop.create_future()
        pending.deadline = max(pending.deadline, loop.time() + self.abandoned_grace)
        prompt = pending.prompt
        prompt_seen = (prompt is not None and prompt.done() and not prompt.cancelled()
                       and prompt.exception() is None)
        if prompt_seen and not pending.payload_sent:
            self._write_quiet(ESC)  # leave the "> " prompt (27.005 §3.5.1)
        logger.warning("%s: %s %s; holding the port for its late final", self.name,
                       mask(repr(pending.command)), why)

    async def _settle_abandoned(self) -> None:
        """Wait for an abandoned command's final (or its hold to expire) before the next."""
        pending = self._pending
        if pending is None:
            return
        # asyncio.wait never raises the future's outcome: a port failure while waiting
        # cancels the abandoned future and the state check that follows reports it.
        remaining = max(0.0, pending.deadline - asyncio.get_running_loop().time())
        await asyncio.wait((pending.settled or pending.final,), timeout=remaining)
        if self._pending is pending:
            self._pending = None
            self._parser.abort()
            # DEBUG: the timeout itself was logged as a warning when it happened.
            logger.debug("%s: no final for abandoned %s; parser reset to idle",
                         self.name, mask(repr(pending.command)))

    def _require_transport(self) -> Transport:
        if self.state is not PortState.OPEN or self._transport is None:
            raise PortClosed(f"{self.name}: port is {self.state.value}")
        return self._transport

    def _write_quiet(self, data: bytes) -> None:
        if self._transport is not None:
            self.bytes_out += len(data)
            self._transport.write(data)

    # -- events from the parser ------------------------------------------------------

    def _on_data(self, data: bytes) -> None:
        self.bytes_in += len(data)
        parser = self._parser
        parser.receive_data(data)
        dispatch = self._dispatch
        while True:
            event = parser.next_event()
            if event is NEED_DATA:
                return
            try:
                dispatch[type(event)](event)
            except Exception:  # one bad handler never kills the port
                logger.exception("%s: handling %s failed", self.name, mask(repr(event)))

    def _on_final(self, event: Final) -> None:
        pending, self._pending = self._pending, None
        self.commands_done += 1
        if pending is None:
            return
        if pending.abandoned:
            logger.info("%s: late %s for abandoned %s", self.name, event.text,
                        mask(repr(pending.command)))
            if pending.settled is not None and not pending.settled.done():
                pending.settled.set_result(None)
        if not pending.final.done():
            pending.final.set_result(event)

    def _on_info(self, event: InfoLine) -> None:
        pending = self._pending
        if pending is None:
            return
        pending.lines.append(event.text)
        enough = pending.enough
        if (enough is not None and pending.implied is None and not pending.abandoned
                and event.text.startswith(enough)):
            pending.implied = asyncio.get_running_loop().call_later(
                IMPLIED_FINAL_S, self._imply_final, pending)

    def _imply_final(self, pending: _Pending) -> None:
        """No final came after the answer line (Wavecom's AT+CPIN?): take the line as the
        answer and return the parser to idle, so the next command is read afresh."""
        if self._pending is not pending or pending.abandoned or pending.final.done():
            return
        self._pending = None
        self._parser.abort()
        self.commands_done += 1
        logger.info("%s: %s answered %s without a final result code; taken as the answer",
                    self.name, mask(repr(pending.command)), mask(repr(pending.lines[-1][:40])))
        pending.final.set_result(Final(FinalKind.OK, "(none: answer line taken)"))

    def _on_prompt(self, event: Prompt) -> None:
        pending = self._pending
        if pending is None or pending.prompt is None:
            return
        if pending.abandoned:
            self._write_quiet(ESC)
        elif not pending.prompt.done():
            pending.prompt.set_result(None)

    def _on_urc(self, urc: Urc) -> None:
        for sub in self._subs:
            if sub.names is None or urc.name in sub.names:
                try:
                    sub.callback(urc)
                except Exception:
                    logger.exception("%s: URC subscriber %r failed on %s", self.name,
                                     sub.callback, mask(repr(urc)))

    # -- losing and regaining the device --------------------------------------------

    def _fail_pending(self, exc: AtError) -> None:
        pending, self._pending = self._pending, None
        self._parser.abort()
        if pending is None:
            return
        for fut in (pending.final, pending.prompt, pending.settled):
            if fut is not None and not fut.done():
                if pending.abandoned:
                    fut.cancel()
                else:
                    fut.set_exception(exc)

    def _on_lost(self, exc: BaseException | None) -> None:
        self._transport = None
        why = "end of file" if exc is None else str(exc)
        logger.warning("%s: device lost (%s)", self.name, why)
        self._fail_pending(PortClosed(f"{self.name}: device lost ({why})"))
        self._set_state(PortState.LOST)
        if self.reconnect and not self._closing:
            self._reconnect_task = asyncio.get_running_loop().create_task(
                self._reopen(), name=f"reopen {self.name}"
            )

    async def _reopen(self) -> None:
        delay = self.reconnect_first
        while self.state is PortState.LOST:
            await asyncio.sleep(delay)
            try:
                await self._connect()
            except PortUnavailable as exc:
                logger.debug("%s: reopen failed (%s); next try in %.2f s", self.name, exc,
                             min(delay * RECONNECT_FACTOR, self.reconnect_max))
                delay = min(delay * RECONNECT_FACTOR, self.reconnect_max)
                continue
            self._reconnect_task = None
            logger.info("%s: reopened %s", self.name, self.url)
            self._set_state(PortState.OPEN)

    def _set_state(self, state: PortState) -> None:
        if state is self.state:
            return
        if state not in _TRANSITIONS[self.state]:
            raise AtError(f"{self.name}: no transition {self.state.value} -> {state.value}") from None
        self.state = state
        for callback in self._state_cbs:
            try:
                callback(state)
            except Exception:
                logger.exception("%s: state callback %r failed", self.name, callback)
