"""The state every part of a ``Modem`` shares, and the ways they all talk to the port.

Holds what one modem knows (port, dialect, identity, SIM and call state, listeners) and
the primitives every part uses: commands with typed errors (``_cmd``, ``_try``, ``_run``,
``_read``), the hang-up owed before the next command, background tasks, and the event
fan-out (``subscribe``, ``next_event``, ``_emit``) with its backlog for the first listener.
The per-concern parts (lifecycle, SIM, network, calls, SMS, USSD, URC routing) build on
this class; ``modem_drivers.modem.Modem`` is their composition.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any, Final, TypeVar

from .. import pin as pinmod
from .. import sms as smsmod
from ..at import (
    AtPort,
    AtTimeout,
    CmeError,
    CmsError,
    CommandFailed,
    PortClosed,
    Response,
    TimeoutClass,
)
from ..background import Background
from ..call import Call
from ..dialects import GENERIC, CallUrc, Cmd, Dialect, Query
from ..errors import (
    CME_ERRORS,
    CMS_ERRORS,
    ModemError,
    PinError,
    SimPinRequired,
    SimPukRequired,
)
from ..types import (
    Identity,
    ModemEvent,
    PinState,
    PlaybackEnd,
    PortLost,
    PortRestored,
    RegDomain,
    Registration,
    UssdReply,
)

logger = logging.getLogger("modem_drivers.modem")

T = TypeVar("T")

#: Events kept for the first subscriber when nobody listens yet (a SIM's storage holds
#: tens of messages; 1,000 covers any SIM with margin).
BACKLOG_MAX: Final = 1000


def translate(exc: Exception) -> Exception:
    """A protocol error as the modem-layer error a person understands (or itself)."""
    if isinstance(exc, CmeError) and exc.code in CME_ERRORS:
        cls, text = CME_ERRORS[exc.code]
        return cls(text)
    if isinstance(exc, CmsError) and exc.code in CMS_ERRORS:
        cls, text = CMS_ERRORS[exc.code]
        return cls(text)
    return exc


class ModemCore:
    """What one modem knows, and the command and event primitives its parts share."""

    def __init__(self, port: AtPort, *, name: str | None = None, dialect: Dialect | None = None,
                 pin_marks: pinmod.PinMarks | None = None) -> None:
        self.port = port
        self.name = name or port.name
        self.dialect: Dialect = dialect or GENERIC
        self._forced_dialect = dialect
        self.identity: Identity | None = None
        #: The IMEI this object stands for once known: a reopen that finds another modem on
        #: the port refuses it (ForeignModem) before anything reaches its SIM.
        self.expected_imei: str | None = None
        self.pin_state = PinState.UNKNOWN
        self.call: Call | None = None
        self.call_progress_polled = False
        self.capabilities: dict[str, bool] = {}
        self._listeners: list[Callable[[ModemEvent], None]] = []
        self._backlog: list[ModemEvent] = []
        self._unsubscribe: list[Callable[[], None]] = []
        self._tasks = Background(self.name, logger, expected=(PortClosed, AtTimeout))
        self._storage_lock = asyncio.Lock()
        self._ussd_waiter: asyncio.Future[UssdReply] | None = None
        self._tts_waiter: asyncio.Future[PlaybackEnd] | None = None
        self._reassembler = smsmod.Reassembler()
        self._release_hint: int | None = None
        self._last_release = -1e9
        self._pin: str | None = None
        #: Where rejected PINs are remembered (the appliance passes its store).
        self.pin_marks: pinmod.PinMarks = pin_marks if pin_marks is not None else pinmod.MemoryPinMarks()
        #: Why the SIM stayed locked at the last (re)initialisation; None when it is not.
        self.pin_problem: PinError | None = None
        #: The active SIM slot as far as this driver switched it (0 after power-up).
        self.slot = 0
        #: How long ATD may take before the dial is given up (TimeoutClass.DIAL's source).
        self.dial_timeout = TimeoutClass.DIAL.seconds
        #: A dial or hang-up the modem never answered may have left a call up on it: the
        #: hang-up is sent before the next command (``_settle_owed_hangup``).
        self._hangup_owed = False
        self._paying_hangup = False
        #: Storage slots that answered +CMGR without a message (logged once, kept).
        self._kept_slots: set[tuple[str, int]] = set()
        #: The AT+CNMI setting the modem took (None: none, incoming SMS need polling).
        self.cnmi: str | None = None
        #: The report that decides whether the modem may work (``registration.decisive``),
        #: and every registration report last seen, by domain (+CREG, +CGREG, +CEREG).
        self.registration: Registration | None = None
        self.registrations: dict[RegDomain, Registration] = {}
        self._call_urcs: dict[str, CallUrc] = {}
        self._dtmf_urcs: dict[str, Callable[[str], str | None]] = {}
        self._use_dialect(self.dialect)

    def _use_dialect(self, dialect: Dialect) -> None:
        """Speak ``dialect`` from now on; URC name -> handler row, so each URC is one dict
        lookup (the per-line path)."""
        self.dialect = dialect
        self._call_urcs = {u.prefix: u for u in dialect.call_urcs}
        self._dtmf_urcs = dict(dialect.dtmf_urcs)

    # -- commands -------------------------------------------------------------------------
    async def _cmd(self, command: str, *, expect: str | None = None, timeout_class: TimeoutClass = TimeoutClass.DEFAULT, timeout: float | None = None) -> Response:
        if self._hangup_owed and not self._paying_hangup:
            await self._settle_owed_hangup()
        try:
            return await self.port.command(command, expect=expect, timeout_class=timeout_class, timeout=timeout)
        except (CmeError, CmsError) as exc:
            new = translate(exc)
            if new is exc:
                raise
            raise new from exc

    async def _try(self, command: str, **kw: object) -> Response | None:
        try:
            return await self._cmd(command, **kw)  # type: ignore[arg-type]
        except (CommandFailed, ModemError) as exc:
            logger.debug("%s: optional %s failed: %s", self.name, command, exc)
            return None

    async def _run(self, cmd: Cmd, *, optional: bool | None = None) -> bool:
        opt = cmd.optional if optional is None else optional
        try:
            await self._cmd(cmd.command, expect=cmd.expect)
            self.capabilities[cmd.command] = True
            return True
        except (CommandFailed, ModemError):
            known = self.capabilities.get(cmd.command) is False
            self.capabilities[cmd.command] = False
            if not opt:
                raise
            # once per modem at INFO: initialisation repeats on every slot switch and reopen
            logger.log(logging.DEBUG if known else logging.INFO, "%s: %s not supported (%s)",
                       self.name, cmd.command, cmd.doc or "optional")
            return False

    async def _read(self, row: Query[T], *, timeout_class: TimeoutClass = TimeoutClass.DEFAULT,
                    timeout: float | None = None) -> T:
        """Send a row's command and read its answer with the row's reader (``timeout``:
        this deadline instead of the class's)."""
        r = await self._cmd(row.query.command, expect=row.query.expect, timeout_class=timeout_class, timeout=timeout)
        return row.parse(r.lines)

    async def _try_read(self, row: Query[T], *, timeout_class: TimeoutClass = TimeoutClass.DEFAULT) -> T | None:
        """``_read`` of an optional row: None when the modem refused it."""
        r = await self._try(row.query.command, expect=row.query.expect, timeout_class=timeout_class)
        return row.parse(r.lines) if r is not None else None

    async def _settle_owed_hangup(self) -> None:
        """Send the hang-up a dial or hang-up the modem never answered left owed, before
        the next command of any kind (``_cmd``; 27.007 §6.5: harmless on an idle modem), so
        a call the modem may still hold is dropped as soon as it answers again. A modem
        still silent raises ``AtTimeout`` here: the command fails for that reason (not
        answering), never for a call."""
        self._paying_hangup = True
        try:
            await self._cmd(self.dialect.hangup)
        except (CommandFailed, ModemError):
            pass  # it answered: whatever was up is down, or nothing was
        finally:
            self._paying_hangup = False
        self._hangup_owed = False

    def _require_sim(self) -> None:
        if self.pin_state is PinState.SIM_PIN:
            raise SimPinRequired("the SIM needs its PIN (use --pin)")
        if self.pin_state is PinState.SIM_PUK:
            raise SimPukRequired("the SIM is PIN-locked: it needs its PUK")

    def _spawn(self, coro: Any, what: str) -> None:
        self._tasks.spawn(coro, what)

    # -- events ---------------------------------------------------------------------------
    def subscribe(self, callback: Callable[[ModemEvent], None]) -> Callable[[], None]:
        first = not self._listeners
        self._listeners.append(callback)
        if first and self._backlog:
            # Events that came before anyone listened (e.g. stored messages swept while
            # opening) go to the first subscriber, so none is lost.
            backlog, self._backlog = self._backlog, []
            for event in backlog:
                try:
                    callback(event)
                except Exception:
                    logger.exception("%s: event listener failed on %s", self.name, type(event).__name__)

        def unsubscribe() -> None:
            with contextlib.suppress(ValueError):
                self._listeners.remove(callback)

        return unsubscribe

    async def next_event(self, kind: type | tuple[type, ...], *, timeout: float | None = None, where: Callable[[ModemEvent], bool] | None = None) -> ModemEvent:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[ModemEvent] = loop.create_future()

        def cb(ev: ModemEvent) -> None:
            if not fut.done() and isinstance(ev, kind) and (where is None or where(ev)):
                fut.set_result(ev)

        unsub = self.subscribe(cb)
        try:
            async with asyncio.timeout(timeout):
                return await fut
        finally:
            unsub()

    def _emit(self, event: ModemEvent) -> None:
        if not self._listeners:
            if len(self._backlog) < BACKLOG_MAX and not isinstance(event, (PortLost, PortRestored)):
                self._backlog.append(event)
            return
        for cb in list(self._listeners):
            try:
                cb(event)
            except Exception:
                logger.exception("%s: event listener failed on %s", self.name, type(event).__name__)
