"""The SIM behind a modem: its lock state and PIN, what it says about itself, its slot.

A person's unlock and PIN change read the tries left first and keep the last try for a
person's explicit word (``modem_drivers.pin`` has the rules); the automatic unlock on open
is ``pin.unlock_on_open``. Slot switching takes the modem's SIM away, so what was known
about the old one (PIN state, registration) is forgotten.
"""
from __future__ import annotations

import re
from typing import TYPE_CHECKING

from .. import pin as pinmod
from ..at import CommandFailed, TimeoutClass
from ..dialects import standard as std
from ..errors import (
    CallBusy,
    ModemError,
    SimError,
    SimNotInserted,
    SimPinRequired,
    SimPukRequired,
    SlotRefused,
    Unsupported,
    WrongPin,
)
from ..types import PinState, SimInfo
from .core import ModemCore


def _check_code(code: str, what: str, shortest: int, longest: int) -> None:
    """A PIN is 4 to 8 digits, a PUK 8 (3GPP TS 51.011 §9.3, 31.101): anything else is
    refused before it reaches the SIM, where a malformed code would cost a try."""
    if not re.fullmatch(rf"\d{{{shortest},{longest}}}", code or ""):
        size = f"{shortest} digits" if shortest == longest else f"{shortest} to {longest} digits"
        raise ValueError(f"{what} is {size}, got {len(code or '')} character(s)")


class Sim(ModemCore):
    """PIN state and entry, tries left, ICCID/IMSI/operator/number, SIM slots."""

    if TYPE_CHECKING:  # provided by the other parts of the composed Modem
        async def _configure(self) -> None: ...
        def _forget_registration(self) -> None: ...

    async def sim_status(self) -> PinState:
        try:
            self.pin_state = await self._read(std.PIN_STATE, timeout_class=TimeoutClass.SIM)
        except ModemError as exc:
            if isinstance(exc, SimNotInserted):
                self.pin_state = PinState.NOT_INSERTED
                return self.pin_state
            raise
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
        tries = await self._try_read(row, timeout_class=TimeoutClass.SIM)
        return tries if tries is not None else pinmod.PinTries()

    async def sim_keys(self) -> tuple[str, ...]:
        """Names of the active SIM for remembering a rejected PIN: its ICCID when the modem
        reads it (most do while the SIM is locked), and the modem's IMEI with the slot."""
        iccid = await self._iccid()
        imei = self.identity.imei if self.identity and self.identity.imei else self.name
        fallback = f"imei:{imei}/slot:{self.slot}"
        return (f"iccid:{iccid}", fallback) if iccid else (fallback,)

    async def sim_info(self) -> SimInfo:
        state = await self.sim_status()
        if state is not PinState.READY:
            return SimInfo(pin_state=state)
        iccid = await self._iccid()
        imsi = await self._try_read(std.IMSI, timeout_class=TimeoutClass.SIM)
        mcc_mnc = name = None
        if await self._try(std.OPERATOR_NUMERIC) is not None:
            mcc_mnc = await self._try_read(std.OPERATOR, timeout_class=TimeoutClass.NETWORK)
        if await self._try(std.OPERATOR_NAME) is not None:
            name = await self._try_read(std.OPERATOR, timeout_class=TimeoutClass.NETWORK)
        msisdn = await self._try_read(std.OWN_NUMBER, timeout_class=TimeoutClass.SIM)
        return SimInfo(PinState.READY, iccid, imsi, mcc_mnc, name, msisdn)

    async def _iccid(self) -> str | None:
        return await self._try_read(self.dialect.iccid, timeout_class=TimeoutClass.SIM)

    # -- slots ------------------------------------------------------------------------------
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
        row = self.dialect.slot_query
        if row is None:
            return None
        slot = await self._try_read(row, timeout_class=TimeoutClass.SIM)
        if slot is not None:
            self.slot = slot
        return slot
