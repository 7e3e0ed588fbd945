"""One async Modem API over every dialect.

``Modem.open(url)`` opens the AT port, brings the modem to a known state (echo off,
numeric errors), identifies it, picks its dialect from ``+CGMI``/``+CGMM``, and — when
the SIM is ready — configures PDU mode, message indications and call progress. Unsolicited
lines become typed events (``subscribe``) and drive the current ``Call``.

Rules that keep an SMS from ever being lost and a modem from ever going offline on a bad
line: every URC handler runs inside try/except and logs; a message PDU that cannot be
decoded is reported raw; a malformed index (``+CMTI: "SM",-1``) is logged and dropped.
"""
from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import enum
import logging
import re
import time
from collections.abc import Callable
from typing import Any, Final

from .at import (
    AtError,
    AtTimeout,
    PortClosed,
    AtPort,
    CmeError,
    CmsError,
    CommandFailed,
    FinalKind,
    PortState,
    Response,
    TimeoutClass,
    Urc,
)
from .background import Background
from .call import Call, CallState, parse_clcc
from .deadlines import coarse_timeout
from .dialects import DIALECTS, GENERIC, CallUrc, Cmd, Dialect, detect
from .errors import (
    CME_ERRORS,
    CMS_ERRORS,
    CallBusy,
    ModemError,
    NotRegistered,
    PinError,
    PlaybackFailed,
    SimError,
    SimPinRequired,
    SimPukRequired,
    SlotRefused,
    ForeignModem,
    WrongPin,
    SmsFailed,
    TtsUnsupported,
    Unsupported,
    UssdFailed,
)
from . import pin as pinmod
from . import sms as smsmod
from .registration import ENABLE as REG_ENABLE
from .registration import QUERY as REG_QUERY
from .registration import decisive, parse_registration
from .types import (
    DtmfReceived,
    Identity,
    IncomingCall,
    ModemEvent,
    PinState,
    PortLost,
    PortRestored,
    RegDomain,
    RegStat,
    Registration,
    RegistrationChanged,
    Signal,
    SimInfo,
    SmsReceived,
    SmsSubmission,
    SmsUndecodable,
    StatusReportReceived,
    UssdReply,
    rssi_to_dbm,
)
from .ussd import decode_reply, encode_request
from common.phone import mask

logger = logging.getLogger(__name__)

#: New-message indication settings, best first (27.005 §3.4.1). mt=1 stores an incoming
#: SMS and sends +CMTI, ds=2 stores a status report and sends +CDSI: what is stored
#: survives a missed URC or a restart, so those come first; ds=1 (+CDS direct) is the
#: fallback. Some modems refuse some combinations with +CMS ERROR (303).
CNMI_CHOICES: Final = ("AT+CNMI=2,1,0,2,0", "AT+CNMI=2,1,0,1,0", "AT+CNMI=2,1,0,0,0", "AT+CNMI=1,1,0,1,0")
#: After ATH the modem normally reports the release at once; if it does not, the call is
#: closed locally after this long (our own release, cause 16).
HANGUP_GRACE: Final = 1.0
#: Where the release cause comes in its own URC (Huawei ^CEND, no +CEER), a bare
#: NO CARRIER — a URC, or ATD's final result when the network refused at once — may
#: come before it: wait this long for the cause before releasing without one.
CAUSE_URC_GRACE: Final = 1.0
#: A USSD reply arrives as a +CUSD URC after OK; networks answer within seconds, the
#: 27.007 session timer is network-defined; 30 s matches common modem defaults.
USSD_REPLY_TIMEOUT: Final = 30.0

#: Events kept for the first subscriber when nobody listens yet (a SIM's storage holds
#: tens of messages; 1,000 covers any SIM with margin).
BACKLOG_MAX: Final = 1000
#: Trailing release reports of a finished call arrive within milliseconds to a second
#: (emulated and real Huawei dongles: ^CEND, then NO CARRIER); a bare release final seen
#: this soon after the previous release, before the new call progressed, is stale.
STALE_RELEASE_WINDOW: Final = 2.0
RELEASE_FINAL_NAMES: Final = frozenset({"NO CARRIER", "BUSY", "NO ANSWER"})
#: When reading a stored message timed out, the storage is swept after these delays
#: (seconds) until one sweep succeeds: the message stays on the SIM meanwhile.
SWEEP_RETRY_DELAYS: Final = (2.0, 5.0, 15.0, 60.0)
#: How long ``close`` waits for background work (reading a stored SMS) to finish.
CLOSE_GRACE: Final = 2.0
#: Set-up after a reopen is tried again after 1 s, doubling to 60 s: a USB modem answers
#: AT within a few seconds of enumerating but may need ~10-20 s before its SIM and
#: network commands do (SIM7600/EC25 boot times in their hardware design guides).
REINIT_BACKOFF: Final = (1.0, 60.0)
#: Longest pause between AT+CLCC polls of a modem that stopped answering them: the port's
#: reopen backoff cap (at.port.RECONNECT_MAX_S), so a stuck modem costs a timeout and a
#: log line at most every 8 s, not every poll interval.
POLL_BACKOFF_MAX: Final = 8.0



class PlaybackEnd(enum.Enum):
    """How a text-to-speech playback ended."""

    FINISHED = "finished"  # the modem's end URC: the whole text was spoken
    CALL_RELEASED = "call_released"  # the call ended first (the callee hung up)
    TIMED_OUT = "timed_out"  # still speaking at the caller's deadline; stopped


@dataclasses.dataclass(frozen=True, slots=True)
class Playback:
    """What ``Modem.play_tts`` did: how it ended and for how long the modem spoke."""

    end: PlaybackEnd
    seconds: float


#: +CMTI / +CDSI: [<mem>,]<index> (27.005 §3.4.1). <mem> is a quoted name ("SM", "ME"),
#: unquoted on some firmware, a number on others (chan_dongle test/parse.c: "+CMTI: 0,111")
#: or absent ("+CMTI: 3"); extra fields after <index> are ignored.
_STORED_INDICATION = re.compile(
    r'^\+(?:CMTI|CDSI):\s*(?:(?:"(?P<quoted>[A-Za-z]{2})"\s*|(?P<bare>[A-Za-z]{2})|\d+)\s*,\s*)?'
    r'(?P<index>-?\d+)\s*(?:,.*)?$'
)
_CLIP = re.compile(r'^\+CLIP:\s*"([^"]*)"')
_CUSD = re.compile(r'^\+CUSD:\s*(\d+)(?:\s*,\s*"(.*)"\s*(?:,\s*(\d+))?)?\s*$', re.S)
_CMGS = re.compile(r"^\+CMGS:\s*(\d+)")


def _body(line: str) -> str:
    return line.split(":", 1)[1].strip() if ":" in line else line.strip()


def _fields(line: str) -> list[str]:
    return [f.strip().strip('"') for f in _body(line).split(",")]


def translate(exc: Exception) -> Exception:
    """A protocol error as the modem-layer error a person understands (or itself)."""
    if isinstance(exc, CmeError) and exc.code in CME_ERRORS:
        cls, text = CME_ERRORS[exc.code]
        return cls(text)
    if isinstance(exc, CmsError) and exc.code in CMS_ERRORS:
        cls, text = CMS_ERRORS[exc.code]
        return cls(text)
    return exc


class Modem:
    """A modem behind one AT port. Create with ``await Modem.open(url)``."""

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
        #: The report that decides whether the modem may work (``registration.decisive``),
        #: and every registration report last seen, by domain (+CREG, +CGREG, +CEREG).
        self.registration: Registration | None = None
        self.registrations: dict[RegDomain, Registration] = {}
        self._call_urcs: dict[str, CallUrc] = {u.prefix: u for u in self.dialect.call_urcs}
        self._dtmf_urcs = dict(self.dialect.dtmf_urcs)

    # -- lifecycle ------------------------------------------------------------------
    @classmethod
    async def open(
        cls,
        url: str,
        *,
        pin: str | None = None,
        name: str | None = None,
        dialect: Dialect | None = None,
        reconnect: bool = True,
        pin_marks: pinmod.PinMarks | None = None,
        expected_imei: str | None = None,
    ) -> "Modem":
        port = await AtPort.open(url, name=name, reconnect=reconnect)
        modem = cls(port, name=name, dialect=dialect, pin_marks=pin_marks)
        modem.expected_imei = expected_imei
        try:
            await modem.initialize(pin=pin)
        except BaseException:
            await port.close()
            raise
        return modem

    async def initialize(self, *, pin: str | None = None) -> None:
        self._pin = pin if pin is not None else self._pin
        await self._sync()
        for cmd in ("ATE0", "ATV1"):
            await self._cmd(cmd)
        await self._try("AT+CMEE=1")
        ident = await self.identify()
        if self.expected_imei and ident.imei and ident.imei != self.expected_imei:
            raise ForeignModem(f"another modem answers on {self.port.url} (IMEI …{ident.imei[-4:]}, "
                               f"expected …{self.expected_imei[-4:]}): its SIMs are not used here")
        if not self._unsubscribe:
            self._wire_urcs()
        state = await self.sim_status()
        # The configured PIN goes at most once per person's action (modem_drivers.pin):
        # this runs on every open, reopen after USB loss and slot switch.
        self.pin_problem = None
        if state in (PinState.SIM_PIN, PinState.SIM_PUK):
            self.pin_problem = await pinmod.unlock_on_open(self, self._pin, self.pin_marks)
        elif state is PinState.READY:
            await pinmod.forget_on_ready(self, self.pin_marks)
        if self.pin_state is PinState.READY:
            await self._configure()

    async def close(self) -> None:
        # Let a message being read from storage finish (CMGR/CMGD), so nothing is left
        # half-read on the SIM; bounded so a stuck modem cannot hold the close.
        await self._tasks.drain(CLOSE_GRACE)
        for unsub in self._unsubscribe:
            unsub()
        self._unsubscribe.clear()
        await self._tasks.cancel_all()
        await self.port.close()

    async def __aenter__(self) -> "Modem":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _sync(self) -> None:
        """Get the modem's attention: a stray prompt or half-typed line is cleared by ESC."""
        for attempt in range(3):
            try:
                await self.port.command("AT", timeout=2.0)
                return
            except (CommandFailed, asyncio.TimeoutError, AtError):
                if attempt == 2:
                    raise
                with contextlib.suppress(AtError):
                    await self.port.write_raw(b"\x1b\r")

    async def _configure(self) -> None:
        d = self.dialect
        for cmd in d.init:
            await self._run(cmd)
        await self._choose_cnmi()
        self.call_progress_polled = False
        if d.call_progress_on is not None:
            ok = await self._run(d.call_progress_on, optional=True)
            self.call_progress_polled = not ok
        if d.dtmf_receive_on is not None:
            await self._run(d.dtmf_receive_on, optional=True)
        if d.tts is not None and d.tts.setup is not None:
            await self._run(d.tts.setup, optional=True)
        await self.sweep_storage()

    async def sweep_storage(self) -> int:
        """Read and delete every message stored on the SIM: status reports that reached
        it while another slot was active, SMS that arrived while nobody listened (a
        restart), anything whose URC was lost. Returns how many were found."""
        found = 0
        async with self._storage_lock:
            for mem in ("SR", "SM"):
                if await self._try(f'AT+CPMS="{mem}"') is None:
                    continue
                r = await self._try("AT+CMGL=4", expect="+CMGL", timeout_class=TimeoutClass.SIM)
                lines = list(r.lines) if r is not None else []
                indexes = []
                for head, pdu in zip(lines, lines[1:]):
                    if head.startswith("+CMGL:") and not pdu.startswith("+CMGL:"):
                        f = _fields(head)
                        if f and f[0].isdigit():
                            indexes.append(int(f[0]))
                            self._deliver_pdu(pdu)
                            found += 1
                for index in indexes:
                    await self._try(f"AT+CMGD={index}")
            await self._try('AT+CPMS="SM"')
        if found:
            logger.info("%s: %d stored message(s) picked up from the SIM", self.name, found)
        return found

    async def _choose_cnmi(self) -> None:
        for cmd in CNMI_CHOICES:
            try:
                await self._cmd(cmd)
                self.capabilities["cnmi"] = True
                self.cnmi = cmd
                return
            except (CommandFailed, ModemError):
                continue
        self.capabilities["cnmi"] = False
        self.cnmi = None
        logger.warning("%s: modem accepts no AT+CNMI setting; incoming SMS need polling", self.name)

    # -- low-level helpers ------------------------------------------------------------
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

    def _spawn(self, coro: Any, what: str) -> None:
        self._tasks.spawn(coro, what)

    # -- identity, SIM, network ----------------------------------------------------------
    async def identify(self) -> Identity:
        manufacturer = _plain((await self._cmd("AT+CGMI")).lines)
        model = _plain((await self._cmd("AT+CGMM")).lines)
        self.dialect = self._forced_dialect or detect(manufacturer, model)
        # URC name -> handler row, so each URC is one dict lookup (the per-line path).
        self._call_urcs = {u.prefix: u for u in self.dialect.call_urcs}
        self._dtmf_urcs = dict(self.dialect.dtmf_urcs)
        self.port.add_urc_prefixes(self.dialect.urc_prefixes())
        revision = _plain(((await self._try("AT+CGMR")) or _EMPTY).lines)
        imei = _plain(((await self._try("AT+CGSN")) or _EMPTY).lines)
        imei_digits = re.sub(r"\D", "", imei)
        self.identity = Identity(manufacturer, model, revision, imei_digits or imei, self.dialect.name)
        return self.identity

    async def sim_status(self) -> PinState:
        try:
            r = await self._cmd("AT+CPIN?", expect="+CPIN", timeout_class=TimeoutClass.SIM)
        except ModemError as exc:
            from .errors import SimNotInserted

            if isinstance(exc, SimNotInserted):
                self.pin_state = PinState.NOT_INSERTED
                return self.pin_state
            raise
        value = (r.value("+CPIN") or "").strip().strip('"').upper()
        self.pin_state = next((s for s in PinState if s.value == value), PinState.UNKNOWN)
        return self.pin_state

    async def unlock(self, pin: str, *, puk: str | None = None, last_try: bool = False) -> PinState:
        """A person's unlock: the PIN, or the PUK and a new PIN (``pin``). The tries left
        are read first and the last one is refused unless ``last_try``; configures the
        modem once READY. Raises ``WrongPin``/``SimPukRequired`` with the tries left after."""
        _check_code(pin, "a PIN" if puk is None else "the new PIN", 4, 8)
        if puk is not None:
            _check_code(puk, "a PUK", 8, 8)
        state = await self.sim_status()
        if state is PinState.READY:
            await pinmod.forget_on_ready(self, self.pin_marks)
            await self._configure()
            return state
        tries = await self.pin_tries()
        if state is PinState.SIM_PUK:
            if puk is None:
                raise SimPukRequired(f"{pinmod.puk_required(tries.puk)}: give the PUK and a new PIN (--puk P --new-pin N)",
                                     tries.puk)
            if not pinmod.may_send(tries.puk, last_try=last_try):
                raise pinmod.PinWithheld(f"PUK not sent: {pinmod.tries_text(tries.puk)}, a wrong one blocks the SIM for good;"
                                         " add --last-try to send it", tries.puk)
            try:
                await self._cmd(f'AT+CPIN="{puk}","{pin}"', timeout_class=TimeoutClass.SIM)
            except WrongPin:
                after = (await self.pin_tries()).puk
                raise SimPukRequired(f"wrong PUK ({pinmod.tries_text(after)})", after) from None
        elif state is PinState.SIM_PIN:
            if puk is not None:
                raise SimPinRequired(f"{pinmod.pin_required(tries.pin)}, not its PUK: give --pin", tries.pin)
            if not pinmod.may_send(tries.pin, last_try=last_try):
                raise pinmod.PinWithheld(f"{pinmod.pin_withheld(tries.pin)}; add --last-try to send it", tries.pin)
            try:
                await self.send_pin(pin)
            except WrongPin:
                raise pinmod.wrong_pin((await self.pin_tries()).pin) from None
        else:
            raise SimError(f"the SIM asks for {state.value}, which this tool does not enter")
        self._pin = pin
        state = await self.sim_status()
        if state is PinState.READY:
            self.pin_problem = None
            await pinmod.forget_on_ready(self, self.pin_marks)
            await self._configure()
        return state

    async def send_pin(self, pin: str) -> None:
        """Send the PIN once (27.007 §8.3 ``AT+CPIN="<pin>"``); ``WrongPin`` when the SIM
        refuses it (+CME ERROR: 16)."""
        _check_code(pin, "a PIN", 4, 8)
        await self._cmd(f'AT+CPIN="{pin}"', timeout_class=TimeoutClass.SIM)

    async def change_pin(self, old: str, new: str, *, last_try: bool = False) -> None:
        """Change the SIM's PIN (27.007 §7.5 ``AT+CPWD="SC",<old>,<new>``). A wrong old PIN
        costs a try like ``AT+CPIN``, so the last one is refused unless ``last_try``."""
        _check_code(old, "the old PIN", 4, 8)
        _check_code(new, "the new PIN", 4, 8)
        state = await self.sim_status()
        tries = await self.pin_tries()
        if state is PinState.SIM_PUK:
            raise pinmod.puk_required(tries.puk)
        if state is not PinState.READY:
            raise SimPinRequired(f"{pinmod.pin_required(tries.pin)}: unlock it first (simrotor modem unlock)", tries.pin)
        if not pinmod.may_send(tries.pin, last_try=last_try):
            raise pinmod.PinWithheld(f"old PIN not sent: {pinmod.tries_text(tries.pin)}, a wrong one would lock the SIM;"
                                     " add --last-try to send it", tries.pin)
        try:
            await self._cmd(f'AT+CPWD="SC","{old}","{new}"', timeout_class=TimeoutClass.SIM)
        except WrongPin:
            raise pinmod.wrong_pin((await self.pin_tries()).pin) from None
        except CallBusy:  # +CME ERROR: 3, operation not allowed
            raise SimError("the modem refused the PIN change (operation not allowed: is the SIM's PIN lock off?)") from None
        self._pin = new

    async def pin_tries(self) -> pinmod.PinTries:
        """The SIM's PIN and PUK tries left, by the dialect's counter row (no try spent);
        unknown counts are None (no row, or the modem refused it)."""
        row = self.dialect.pin_counter
        if row is None:
            return pinmod.PinTries()
        r = await self._try(row.query.command, expect=row.query.expect, timeout_class=TimeoutClass.SIM)
        return row.parse(r.lines) if r is not None else pinmod.PinTries()

    async def sim_keys(self) -> tuple[str, ...]:
        """Names of the active SIM for remembering a rejected PIN: its ICCID when the modem
        reads it (most do while the SIM is locked), and the modem's IMEI with the slot."""
        iccid = await self._iccid()
        imei = self.identity.imei if self.identity and self.identity.imei else self.name
        fallback = f"imei:{imei}/slot:{self.slot}"
        return (f"iccid:{iccid}", fallback) if iccid else (fallback,)

    def _require_sim(self) -> None:
        if self.pin_state is PinState.SIM_PIN:
            raise SimPinRequired("the SIM needs its PIN (use --pin)")
        if self.pin_state is PinState.SIM_PUK:
            raise SimPukRequired("the SIM is PIN-locked: it needs its PUK")

    async def sim_info(self) -> SimInfo:
        state = await self.sim_status()
        if state is not PinState.READY:
            return SimInfo(pin_state=state)
        iccid = await self._iccid()
        imsi = _plain(((await self._try("AT+CIMI", timeout_class=TimeoutClass.SIM)) or _EMPTY).lines)
        imsi = re.sub(r"\D", "", imsi) or None
        mcc_mnc = name = None
        if await self._try("AT+COPS=3,2"):
            r = await self._try("AT+COPS?", expect="+COPS", timeout_class=TimeoutClass.NETWORK)
            f = _fields(r.value("+COPS") or "") if r else []
            mcc_mnc = f[2] if len(f) > 2 and f[2] else None
        if await self._try("AT+COPS=3,0"):
            r = await self._try("AT+COPS?", expect="+COPS", timeout_class=TimeoutClass.NETWORK)
            f = _fields(r.value("+COPS") or "") if r else []
            name = f[2] if len(f) > 2 and f[2] else None
        msisdn = None
        r = await self._try("AT+CNUM", expect="+CNUM", timeout_class=TimeoutClass.SIM)
        if r is not None:
            for line in r.values("+CNUM"):
                f = [x.strip().strip('"') for x in line.split(",")]
                if len(f) > 1 and f[1]:
                    msisdn = f[1]
                    break
        return SimInfo(PinState.READY, iccid, imsi, mcc_mnc, name, msisdn)

    async def _iccid(self) -> str | None:
        cmd = self.dialect.iccid
        r = await self._try(cmd.command, expect=cmd.expect, timeout_class=TimeoutClass.SIM)
        if r is None:
            return None
        raw = ""
        for line in r.lines:
            body = _body(line) if ":" in line else line
            f = [x.strip().strip('"') for x in body.split(",")]
            raw = f[-1]
            if raw:
                break
        if cmd.command.startswith("AT+CRSM"):
            f = [x.strip().strip('"') for x in _body(r.lines[0]).split(",")] if r.lines else []
            if len(f) < 3 or f[0] not in ("144", "145"):
                return None
            raw = f[2]
        if self.dialect.iccid_swapped:
            raw = "".join(raw[i + 1 : i + 2] + raw[i : i + 1] for i in range(0, len(raw), 2))
        return raw.rstrip("Ff") or None

    async def signal(self) -> Signal:
        r = await self._cmd("AT+CSQ", expect="+CSQ")
        f = _fields(r.value("+CSQ") and "+CSQ: " + (r.value("+CSQ") or "") or "")
        rssi = int(f[0]) if f and f[0].isdigit() else 99
        ber = int(f[1]) if len(f) > 1 and f[1].isdigit() else 99
        return Signal(rssi, rssi_to_dbm(rssi), ber)

    async def registration_status(self) -> Registration:
        """Ask +CREG and, when it does not say registered, +CEREG and +CGREG on a modem that
        took their set commands (an LTE-only network registers the modem in +CEREG only).
        Returns the deciding report (``registration.decisive``); its ``domain`` says which."""
        await self._query_registration(RegDomain.CS, optional=False)
        if not self.registrations[RegDomain.CS].registered:
            for domain in (RegDomain.EPS, RegDomain.GPRS):
                if self.capabilities.get(REG_ENABLE[domain]):
                    await self._query_registration(domain, optional=True)
        reg = decisive(self.registrations)
        assert reg is not None  # the +CREG answer is in
        self.registration = reg
        return reg

    async def _query_registration(self, domain: RegDomain, *, optional: bool) -> None:
        """One read command (``AT+CREG?``...); an unreadable answer counts as UNKNOWN. An
        optional domain's failure (the modem took the set command, refuses the read) is
        logged and leaves its last report out."""
        prefix = domain.value
        try:
            r = await self._cmd(REG_QUERY[domain], expect=prefix)
        except (CommandFailed, ModemError) as exc:
            if not optional:
                raise
            logger.debug("%s: %s failed: %s", self.name, REG_QUERY[domain], exc)
            self.registrations.pop(domain, None)
            return
        line = next((ln for ln in r.lines if ln.startswith(prefix)), "")
        reg = parse_registration(line)
        if reg is None:
            logger.warning("%s: unreadable %s answer %r", self.name, REG_QUERY[domain], line[:80])
            reg = Registration(RegStat.UNKNOWN, domain=domain)
        self.registrations[domain] = reg

    def _forget_registration(self) -> None:
        """A new SIM (slot switch) or a lost port: the old reports say nothing any more."""
        self.registrations.clear()
        self.registration = None

    async def require_registered(self) -> Registration:
        self._require_sim()
        reg = await self.registration_status()
        if reg.stat is RegStat.DENIED:
            raise NotRegistered("registration denied by the network (SIM blocked or not allowed here)")
        if not reg.registered:
            states = "; ".join(f"{d.value}: {r.stat.name.lower().replace('_', ' ')}"
                               for d, r in self.registrations.items())
            raise NotRegistered(f"not registered on a network ({states})")
        return reg

    # -- calls ----------------------------------------------------------------------------
    async def dial(self, number: str) -> Call:
        """Start a voice call. Returns at once; follow the ``Call`` for its progress."""
        if not re.fullmatch(r"\+?[0-9*#]{3,20}", number):
            raise ValueError(f"not a dialable number: {number!r} (digits, optional leading +)")
        self._require_sim()
        if self.call is not None and not self.call.released:
            raise CallBusy("a call is already up on this modem")
        call = Call(number, on_change=self._on_call_change)
        call.hangup_cb = self.hangup
        self.call = call
        self._release_hint = None
        handed_over = False
        answered = False  # the modem gave ATD a final result: it says whether a call is up
        try:
            try:
                await self._cmd(f"ATD{number};", timeout=self.dial_timeout)
            except (CommandFailed, ModemError) as exc:
                answered = True
                kind = exc.final.kind if isinstance(exc, CommandFailed) else None
                if kind is FinalKind.NO_DIALTONE:
                    raise NotRegistered("no dial tone: the modem is not registered on a network") from None
                if kind in (FinalKind.BUSY, FinalKind.NO_CARRIER, FinalKind.NO_ANSWER):
                    hint = {FinalKind.BUSY: 17, FinalKind.NO_ANSWER: 19}.get(kind)
                    await self._finish_release(call, hint)
                    handed_over = True
                    return call
                raise
            logger.info("%s: dialing %s", self.name, mask(number))
            if self.call_progress_polled:
                self._spawn(self._poll_call(call), "call polling")
            handed_over = True
            return call
        finally:
            if not handed_over:
                # Every other way out (refused, timed out, cancelled, port lost, a bug):
                # no call of ours is up, and if the modem never answered ATD one may be.
                self._drop_call(call, owe_hangup=not answered,
                                why="refused" if answered else "ATD got no answer")

    def _on_call_change(self, call: Call, event: object) -> None:
        if call.released:
            self._last_release = time.monotonic()
            self._end_playback(PlaybackEnd.CALL_RELEASED)

    def _drop_call(self, call: Call, *, owe_hangup: bool, why: str) -> None:
        """End ``call`` here, whatever the modem does: released (a channel error unless
        it was answered), no longer the modem's call, and — when the modem may still hold
        it — a hang-up owed, sent before the modem's next command."""
        if not call.released:
            call.channel_lost = True
            call.advance(CallState.RELEASED, None)
        if self.call is call:
            self.call = None
        if owe_hangup:
            self._hangup_owed = True
            logger.warning("%s: call to %s ended here (%s); hang-up owed to the modem", self.name,
                           mask(call.number), why)

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

    async def hangup(self) -> None:
        """Hang up the current call. Afterwards the call is released: by the modem's report,
        after ``HANGUP_GRACE`` as our release (cause 16), or — when the modem does not
        answer the hang-up (stuck, port lost) or the wait is cancelled — here, as a channel
        error with the hang-up owed to the modem (sent before its next command)."""
        call = self.call
        answered = False
        released_by_modem = False
        failure: str = "cancelled"
        self._hangup_owed = False  # this hang-up is the one owed; set again if unanswered
        try:
            try:
                await self._cmd(self.dialect.hangup)
            except (CommandFailed, ModemError):
                pass  # the modem answered; its release report (or the grace) follows
            answered = True
            if call is not None and not call.released:
                with contextlib.suppress(TimeoutError):
                    await call.wait_released(HANGUP_GRACE)
                released_by_modem = call.released
        except AtError as exc:
            failure = str(exc)
        finally:
            if not answered:
                if call is not None:
                    self._drop_call(call, owe_hangup=False, why=failure)
                self._hangup_owed = True
                logger.warning("%s: hang-up got no answer (%s); call ended here, hang-up owed",
                               self.name, failure)
            elif call is not None and (released_by_modem or not call.released):
                call.local_release = True
                if call.released:
                    call.cause = 16 if call.cause is None else call.cause
                else:
                    call.advance(CallState.RELEASED, 16)

    async def send_dtmf(self, digits: str) -> None:
        if self.call is None or self.call.state is not CallState.ACTIVE:
            raise ModemError("DTMF needs an answered call")
        for digit in digits:
            if digit.upper() not in "0123456789*#ABCD":
                raise ValueError(f"not a DTMF digit: {digit!r}")
            await self._cmd(self.dialect.dtmf_send.format(digit=digit.upper(), call=1))

    async def play_tts(self, text: str, *, timeout: float) -> Playback:
        """Speak ``text`` to the far end of the answered call with the dialect's TTS command,
        and wait until the modem says it finished, the call ends, or ``timeout`` seconds
        pass (then the playback is stopped). Raises ``TtsUnsupported`` when the modem has
        no TTS, ``PlaybackFailed`` without an answered call or when the modem refuses."""
        tts = self.dialect.tts
        if tts is None:
            raise TtsUnsupported(f"{self.dialect.name} modems have no text-to-speech command: the message cannot be played")
        call = self.call
        if call is None or call.state is not CallState.ACTIVE or call.releasing:
            raise PlaybackFailed("a message can only be played during an answered call")
        if self._tts_waiter is not None:
            raise PlaybackFailed("a message is already playing on this modem")
        try:
            line = tts.command_for(text)
        except ValueError as exc:
            raise PlaybackFailed(str(exc)) from None
        # The end URC may follow OK at once: listen before writing (docs/architecture.md, Style 6).
        waiter: asyncio.Future[PlaybackEnd] = asyncio.get_running_loop().create_future()
        self._tts_waiter = waiter
        started = time.monotonic()
        try:
            try:
                await self._cmd(line)
            except (CommandFailed, ModemError) as exc:
                raise PlaybackFailed(f"the modem refused to play the message: {exc}") from exc
            try:
                async with coarse_timeout(timeout):
                    end = await waiter
            except TimeoutError:
                end = PlaybackEnd.TIMED_OUT
                await self._try(tts.stop)
        finally:
            self._tts_waiter = None
        seconds = round(time.monotonic() - started, 3)
        logger.info("%s: message played to %s: %s after %.1f s", self.name, mask(call.number), end.value, seconds)
        return Playback(end, seconds)

    def _end_playback(self, end: PlaybackEnd) -> None:
        waiter = self._tts_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(end)

    async def _poll_call(self, call: Call) -> None:
        """Generic modems without call auto-report: paced AT+CLCC while the call is up; a
        modem that stops answering is asked less and less often (``POLL_BACKOFF_MAX``)."""
        interval = self.dialect.poll_interval
        seen_call = False
        failures = 0
        while not call.released:
            try:
                r = await self._cmd("AT+CLCC", expect="+CLCC")
            except (AtError, ModemError):
                failures += 1
                with contextlib.suppress(TimeoutError):
                    await call.wait_released(min(interval * 2 ** failures, POLL_BACKOFF_MAX))
                continue
            failures = 0
            states = [parse_clcc("+CLCC: " + v) for v in r.values("+CLCC")]
            states = [s for s in states if s is not None]
            if states:
                seen_call = True
                call.advance(states[0][0])
            elif seen_call or call.state is not CallState.DIALING:
                await self._finish_release(call, self._release_hint)
                return
            if call.released:
                return
            try:
                await call.wait_released(interval)
            except TimeoutError:
                pass

    async def _finish_release(self, call: Call, hint: int | None) -> None:
        """Release without a cause in the URC: ask +CEER (or, where the cause has its own
        URC, wait for it), fall back to the hint."""
        if call.released:
            return
        cause = None
        try:
            if self.dialect.ceer is None:
                with contextlib.suppress(TimeoutError):
                    await call.wait_released(CAUSE_URC_GRACE)
            else:
                r = await self._try(self.dialect.ceer.command, expect=self.dialect.ceer.expect)
                if r is not None and r.lines:
                    cause = self.dialect.ceer_parse(r.lines[0])
        except AtError as exc:  # no answer to +CEER: the release stands without its cause
            logger.debug("%s: no release cause: %s", self.name, exc)
        finally:
            # released on every way out (a cancelled or failed +CEER too), so the modem
            # never keeps a call that ended
            if not call.released:
                if cause is None or (cause in (16, 31) and hint is not None):
                    cause = hint if hint is not None else cause
                call.advance(CallState.RELEASED, cause)

    # -- SMS ------------------------------------------------------------------------------
    async def send_sms(self, to: str, text: str, *, report: bool = False, pid: int = 0, reference: int = 0) -> SmsSubmission:
        self._require_sim()
        parts = smsmod.encode_submit(to, text, report=report, reference=reference, pid=pid)
        refs: list[int] = []
        for part in parts:
            try:
                r = await self.port.command_with_prompt(
                    f"AT+CMGS={part.tpdu_length}", part.pdu, expect="+CMGS", timeout_class=TimeoutClass.SMS
                )
            except CmsError as exc:
                new = translate(exc)
                if new is exc:
                    raise SmsFailed(f"the modem refused part {part.part}/{part.parts}: {exc}") from exc
                raise new from exc
            m = _CMGS.match(next((ln for ln in r.lines if ln.startswith("+CMGS")), ""))
            refs.append(int(m.group(1)) if m else -1)
        logger.info("%s: SMS to %s sent in %d part(s)", self.name, mask(to), len(parts))
        return SmsSubmission(to, len(parts), tuple(refs))

    async def _read_stored(self, mem: str, index: int, *, report: bool) -> None:
        async with self._storage_lock:
            switched = False
            try:
                if mem.upper() != "SM" or report:
                    await self._cmd(f'AT+CPMS="{mem}"')
                    switched = True
                try:
                    r = await self._cmd(f"AT+CMGR={index}", expect="+CMGR")
                except CmsError as exc:
                    if exc.code == 321:  # 27.005: invalid memory index — a sweep already took it
                        logger.debug("%s: %s slot %d already read", self.name, mem, index)
                        return
                    raise
                pdu = next((ln for ln in r.lines if not ln.startswith("+CMGR")), "")
                if not pdu:
                    self._keep_unread(mem, index, r.lines)
                    return
                self._deliver_pdu(pdu)
                await self._try(f"AT+CMGD={index}")
            finally:
                if switched:
                    await self._try('AT+CPMS="SM"')

    def _keep_unread(self, mem: str, index: int, lines: tuple[str, ...]) -> None:
        """A +CMGR answer without its PDU line (an empty slot, ``+CMGR: 0,,0`` on Siemens
        MC35 as Gammu's AT driver notes, or a modem that sent only the header): nothing was
        read, so the slot is kept — a later sweep (AT+CMGL) picks up what is in it. Logged
        once per slot."""
        key = (mem, index)
        if key in self._kept_slots:
            return
        if len(self._kept_slots) >= BACKLOG_MAX:
            self._kept_slots.clear()  # bounded memory; at worst a slot is logged again
        self._kept_slots.add(key)
        logger.warning("%s: %s slot %d answered without a message (%r); slot kept, not deleted",
                       self.name, mem, index, lines[0][:40] if lines else "no lines")

    async def _read_or_sweep(self, mem: str, index: int, *, report: bool) -> None:
        """Read a stored message; if the modem is too slow to answer (an overloaded bank),
        sweep its storage later instead, so the message is still picked up."""
        try:
            await self._read_stored(mem, index, report=report)
            return
        except AtTimeout as exc:
            logger.warning("%s: reading %s %d timed out (%s); sweeping storage later", self.name, mem, index, exc)
        for delay in SWEEP_RETRY_DELAYS:
            await asyncio.sleep(delay)
            try:
                await self.sweep_storage()
                return
            except AtTimeout:
                continue

    def _deliver_pdu(self, pdu: str) -> None:
        decoded = smsmod.decode(pdu)
        if isinstance(decoded, smsmod.StatusReport):
            self._emit(StatusReportReceived(decoded))
        elif isinstance(decoded, smsmod.IncomingSms):
            whole = self._reassembler.add(decoded, time.monotonic())
            if whole is not None:
                self._emit(SmsReceived(whole))
        else:
            self._emit(SmsUndecodable(decoded))

    # -- USSD ---------------------------------------------------------------------------
    async def ussd(self, code: str, *, timeout: float = USSD_REPLY_TIMEOUT) -> UssdReply:
        self._require_sim()
        if not re.fullmatch(r"[0-9*#]{1,160}", code):
            raise ValueError(f"not a USSD code: {code!r} (digits, * and #)")
        loop = asyncio.get_running_loop()
        if self._ussd_waiter is not None and not self._ussd_waiter.done():
            raise UssdFailed("a USSD session is already open on this modem")
        self._ussd_waiter = loop.create_future()
        form = self.dialect.ussd_form
        try:
            await self._cmd(f'AT+CUSD=1,"{encode_request(code, form)}",15', timeout_class=TimeoutClass.USSD)
            async with asyncio.timeout(timeout):
                reply = await self._ussd_waiter
        except TimeoutError:
            raise UssdFailed(f"no USSD reply within {timeout:g} s") from None
        except CommandFailed as exc:
            raise UssdFailed(f"the modem refused the USSD request: {exc}") from exc
        finally:
            self._ussd_waiter = None
        if reply.status == 4:
            raise UssdFailed("the network does not support this USSD code")
        return reply

    # -- SIM slots -----------------------------------------------------------------------
    async def switch_slot(self, slot: int) -> None:
        if self.dialect.slot_switch is None:
            raise Unsupported(f"{self.dialect.name} modems have one SIM slot")
        if self.call is not None and not self.call.released:
            raise CallBusy("cannot switch SIM during a call")
        try:
            await self._cmd(self.dialect.slot_switch.format(slot=slot), timeout_class=TimeoutClass.SIM)
        except CommandFailed as exc:
            raise SlotRefused(f"the modem refused SIM slot {slot}: {exc}") from exc
        self.pin_state = PinState.UNKNOWN
        self.slot = slot
        self._forget_registration()

    async def active_slot(self) -> int | None:
        """The SIM slot the modem says is active (the dialect's slot query: 27.007 +CSUS?,
        Quectel +QDSIM?), or None when it has no such query or does not answer it. A
        modem power-cycled behind our back comes up on its default slot, whatever slot
        we switched it to before."""
        cmd = self.dialect.slot_query
        if cmd is None:
            return None
        r = await self._try(cmd.command, expect=cmd.expect, timeout_class=TimeoutClass.SIM)
        for line in r.lines if r is not None else ():
            value = _fields(line)[0] if ":" in line else ""
            if value.isdigit():
                self.slot = int(value)
                return self.slot
        return None

    async def reset(self) -> None:
        """Restart the modem (the dialect's reset, AT+CFUN=1,1: 27.007 §8.2 resets the MT,
        which drops any call). An owed hang-up is not sent first: a stuck modem would time
        out on it and never get the restart that unsticks it."""
        owed, self._hangup_owed = self._hangup_owed, False
        try:
            await self._cmd(self.dialect.reset, timeout_class=TimeoutClass.SIM)
        except (AtError, ModemError):
            self._hangup_owed = owed  # not restarted: a call it held may still be up

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

    def _wire_urcs(self) -> None:
        self._unsubscribe.append(self.port.subscribe(self._on_urc))
        self._unsubscribe.append(self.port.on_state(self._on_port_state))

    def _on_port_state(self, state: PortState) -> None:
        if state is PortState.LOST:
            self._forget_registration()
            if self.call is not None and not self.call.released:
                self._hangup_owed = True  # a USB glitch need not end the call on the modem
                self.call.channel_lost = True
                self.call.advance(CallState.RELEASED, None)
            self._emit(PortLost("device lost"))
        elif state is PortState.OPEN:
            self._spawn(self._reinit(), "re-initialisation after reopen")

    async def _reinit(self) -> None:
        """Set the modem up again after the port came back. A modem still booting after a
        USB reset may not answer yet: try again with backoff (``REINIT_BACKOFF``) while the
        port stays open, instead of leaving the channel "port lost" for good."""
        delay, cap = REINIT_BACKOFF
        while True:
            try:
                await self.initialize()
                break
            except (AtError, ModemError) as exc:
                if self.port.state is not PortState.OPEN:
                    return  # lost again (or closed): the next reopen starts another
                if isinstance(exc, ForeignModem):
                    # Re-initialising on this fd would talk to the stranger for ever: the
                    # owner closes us and opens the port's name afresh until ours is back.
                    self._emit(PortRestored(problem=str(exc)))
                    return
                logger.warning("%s: set-up after reopen failed (%s); next try in %.0f s", self.name, exc, delay)
                await asyncio.sleep(delay)
                delay = min(cap, delay * 2)
        self._emit(PortRestored())

    def _on_urc(self, urc: Urc) -> None:
        try:
            self._handle_urc(urc)
        except Exception:
            logger.exception("%s: URC %r dropped after an error", self.name, urc.text[:80])

    def _handle_urc(self, urc: Urc) -> None:
        name, text = urc.name, urc.text
        cu = self._call_urcs.get(name)
        if cu is not None:
            self._on_call_urc(cu, text)
            return
        parse = self._dtmf_urcs.get(name)
        if parse is not None:
            digit = parse(text)
            if digit:
                self._emit(DtmfReceived(digit))
            return
        handler = _URC_HANDLERS.get(name)
        if handler is not None:
            handler(self, urc)
        else:
            logger.debug("%s: unhandled URC %s", self.name, text[:80])

    def _on_call_urc(self, cu: CallUrc, text: str) -> None:
        call = self.call
        parsed = cu.parse(text)
        if parsed is None:
            return
        state, cause = parsed
        if call is None or call.released:
            return
        if (
            state is CallState.RELEASED
            and cu.prefix in RELEASE_FINAL_NAMES
            and not self.call_progress_polled  # polled modems have nothing else to go by
            and call.state is CallState.DIALING
            and time.monotonic() - self._last_release < STALE_RELEASE_WINDOW
        ):
            # A bare NO CARRIER/BUSY trailing the previous call's own release report
            # (Huawei sends ^CEND, then NO CARRIER) must not end the call just dialed.
            logger.debug("%s: stale %s ignored", self.name, cu.prefix)
            return
        if state is CallState.RELEASED and not cu.cause_is_final:
            if cause is not None:
                self._release_hint = cause
            if not call.releasing:
                call.releasing = True
                self._end_playback(PlaybackEnd.CALL_RELEASED)
                hint = cause if cause is not None else self._release_hint
                self._spawn(self._finish_release(call, hint), "call release")
            return
        call.advance(state, cause)

    def _urc_stored(self, urc: Urc) -> None:
        """+CMTI (an SMS) / +CDSI (a status report) stored at <index>: read it. Without a
        named storage (absent or a number) the message is read where the modem stores
        it now: the storage this driver selects ("SM"), "SR" for a status report."""
        report = urc.name == "+CDSI"
        m = _STORED_INDICATION.match(urc.text)
        if not m or int(m.group("index")) < 0:
            logger.warning("%s: malformed URC dropped: %r", self.name, urc.text[:80])
            return
        mem = (m.group("quoted") or m.group("bare") or ("SR" if report else "SM")).upper()
        what = "reading status report" if report else "reading stored SMS"
        self._spawn(self._read_or_sweep(mem, int(m.group("index")), report=report), what)

    def _urc_pdu(self, urc: Urc) -> None:
        if not urc.pdu:
            logger.warning("%s: %s without its PDU line dropped", self.name, urc.name)
            return
        self._deliver_pdu(urc.pdu)

    def _urc_ring(self, urc: Urc) -> None:
        if urc.name == "+CLIP":
            m = _CLIP.match(urc.text)
            self._emit(IncomingCall(m.group(1) if m else None))

    def _urc_cusd(self, urc: Urc) -> None:
        m = _CUSD.match(urc.text)
        if not m:
            logger.warning("%s: malformed +CUSD dropped: %r", self.name, urc.text[:80])
            return
        status = int(m.group(1))
        dcs = int(m.group(3)) if m.group(3) else None
        text = decode_reply(m.group(2) or "", dcs, self.dialect.ussd_form)
        reply = UssdReply(status, text, dcs)
        if self._ussd_waiter is not None and not self._ussd_waiter.done():
            self._ussd_waiter.set_result(reply)
        else:
            logger.info("%s: unsolicited USSD: %s", self.name, text[:80])

    def _urc_tts(self, urc: Urc) -> None:
        tts = self.dialect.tts
        if tts is None or urc.name != tts.end_urc or _body(urc.text) != tts.end_value:
            return
        call = self.call
        # A release already reported (its cause still being asked) cut the message short.
        cut = call is not None and (call.released or call.releasing)
        self._end_playback(PlaybackEnd.CALL_RELEASED if cut else PlaybackEnd.FINISHED)

    def _urc_registration(self, urc: Urc) -> None:
        """+CREG/+CEREG/+CGREG URC: kept by domain; the deciding report is emitted (a
        +CGREG change alone decides nothing and emits nothing)."""
        reg = parse_registration(urc.text)
        if reg is None:
            logger.warning("%s: malformed registration URC dropped: %r", self.name, urc.text[:80])
            return
        self.registrations[reg.domain] = reg
        if reg.domain is RegDomain.GPRS:
            return
        decided = decisive(self.registrations)
        if decided is not None:
            self.registration = decided
            self._emit(RegistrationChanged(decided))


_URC_HANDLERS: Final[dict[str, Callable[[Modem, Urc], None]]] = {
    "+CMTI": Modem._urc_stored,
    "+CDSI": Modem._urc_stored,
    "+CMT": Modem._urc_pdu,
    "+CDS": Modem._urc_pdu,
    "+CLIP": Modem._urc_ring,
    "+CUSD": Modem._urc_cusd,
    "+CREG": Modem._urc_registration,
    "+CEREG": Modem._urc_registration,
    "+CGREG": Modem._urc_registration,
    # every dialect's text-to-speech end URC (+CTTS: 0, +QTTS: 0)
    **{d.tts.end_urc: Modem._urc_tts for d in DIALECTS if d.tts is not None},
}


class _Empty:
    lines: tuple[str, ...] = ()


_EMPTY = _Empty()


def _check_code(code: str, what: str, shortest: int, longest: int) -> None:
    """A PIN is 4 to 8 digits, a PUK 8 (3GPP TS 51.011 §9.3, 31.101): anything else is
    refused before it reaches the SIM, where a malformed code would cost a try."""
    if not re.fullmatch(rf"\d{{{shortest},{longest}}}", code or ""):
        size = f"{shortest} digits" if shortest == longest else f"{shortest} to {longest} digits"
        raise ValueError(f"{what} is {size}, got {len(code or '')} character(s)")


def _plain(lines: tuple[str, ...]) -> str:
    """The first answer line, without an optional ``+CGMI:``-style prefix."""
    for line in lines:
        line = line.strip()
        if not line:
            continue
        m = re.match(r"^\+?[A-Z]+:\s*(.*)$", line)
        if m and line[0] == "+":
            return m.group(1).strip().strip('"')
        if line.lower().startswith("revision:"):
            return line.split(":", 1)[1].strip()
        return line.strip('"')
    return ""
