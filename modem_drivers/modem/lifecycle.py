"""A modem's life: open, set up, identify, configure, restart, re-initialise, close.

``Modem.open(url)`` opens the AT port, brings the modem to a known state (echo off,
numeric errors), identifies it, picks its dialect from ``+CGMI``/``+CGMM``, and — when the
SIM is ready — configures PDU mode, message indications and call progress. After a USB
loss the port reopens by itself; the set-up is then run again here with backoff.
"""
from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Final, Self

from .. import pin as pinmod
from ..at import AtError, AtPort, CommandFailed, PortState, TimeoutClass, Urc
from ..dialects import Dialect, detect
from ..dialects import standard as std
from ..errors import ForeignModem, ModemError
from ..types import Identity, PinState, PortLost, PortRestored
from .core import ModemCore, logger

#: New-message indication settings, best first (27.005 §3.4.1). mt=1 stores an incoming
#: SMS and sends +CMTI, ds=2 stores a status report and sends +CDSI: what is stored
#: survives a missed URC or a restart, so those come first; ds=1 (+CDS direct) is the
#: fallback. Some modems refuse some combinations with +CMS ERROR (303).
CNMI_CHOICES: Final = ("AT+CNMI=2,1,0,2,0", "AT+CNMI=2,1,0,1,0", "AT+CNMI=2,1,0,0,0", "AT+CNMI=1,1,0,1,0")
#: How long ``close`` waits for background work (reading a stored SMS) to finish.
CLOSE_GRACE: Final = 2.0
#: Set-up after a reopen is tried again after 1 s, doubling to 60 s: a USB modem answers
#: AT within a few seconds of enumerating but may need ~10-20 s before its SIM and
#: network commands do (SIM7600/EC25 boot times in their hardware design guides).
REINIT_BACKOFF: Final = (1.0, 60.0)
#: Attempts to get the modem's attention on open (``_sync``), ESC between them.
SYNC_ATTEMPTS: Final = 3


class Lifecycle(ModemCore):
    """Open, initialise, identify, configure, reset, re-initialise after reopen, close."""

    if TYPE_CHECKING:  # provided by the other parts of the composed Modem
        async def sim_status(self) -> PinState: ...
        async def sweep_storage(self) -> int: ...
        def _forget_registration(self) -> None: ...
        def _on_urc(self, urc: Urc) -> None: ...

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
    ) -> Self:
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

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _sync(self) -> None:
        """Get the modem's attention: a stray prompt or half-typed line is cleared by ESC."""
        for attempt in range(SYNC_ATTEMPTS):
            try:
                await self.port.command("AT", timeout=2.0)
                return
            except (CommandFailed, TimeoutError, AtError):
                if attempt == SYNC_ATTEMPTS - 1:
                    raise
                with contextlib.suppress(AtError):
                    await self.port.write_raw(b"\x1b\r")

    async def identify(self) -> Identity:
        manufacturer = await self._read(std.MANUFACTURER)
        model = await self._read(std.MODEL)
        self._use_dialect(self._forced_dialect or detect(manufacturer, model))
        self.port.add_urc_prefixes(self.dialect.urc_prefixes())
        revision = await self._try_read(std.REVISION) or ""
        imei = await self._try_read(std.IMEI) or ""
        self.identity = Identity(manufacturer, model, revision, imei, self.dialect.name)
        return self.identity

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

    async def reset(self) -> None:
        """Restart the modem (the dialect's reset, AT+CFUN=1,1: 27.007 §8.2 resets the MT,
        which drops any call). An owed hang-up is not sent first: a stuck modem would time
        out on it and never get the restart that unsticks it."""
        owed, self._hangup_owed = self._hangup_owed, False
        try:
            await self._cmd(self.dialect.reset, timeout_class=TimeoutClass.SIM)
        except (AtError, ModemError):
            self._hangup_owed = owed  # not restarted: a call it held may still be up

    # -- the port's life --------------------------------------------------------------------
    def _wire_urcs(self) -> None:
        self._unsubscribe.append(self.port.subscribe(self._on_urc))
        self._unsubscribe.append(self.port.on_state(self._on_port_state))

    def _on_port_state(self, state: PortState) -> None:
        if state is PortState.LOST:
            self._forget_registration()
            call = self.call
            if call is not None and not call.released:
                self._hangup_owed = True  # a USB glitch need not end the call on the modem
                call.channel_failed()
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
