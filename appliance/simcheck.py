"""The checks of one SIM on an open modem: registration, signal, a test SMS and a test
call to a reference number (the installer's phone), a balance by USSD — each a pass, a
fail or "not run" with why, and the fix for a failed SIM.

``provision selftest`` (provisioning/selftest.py) runs them on every SIM of the bank,
borrowing each modem from the running appliance or opening its port; the technician's
page runs them on one SIM on the modem the running bank holds
(appliance/technician/selftest.py). **No PIN is sent**: a locked SIM fails with what to
do; a check never spends one of a SIM's three tries.
"""
from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from typing import Final

from modem_drivers.at import AtError
from modem_drivers.call import CallState
from modem_drivers.errors import ModemError
from modem_drivers.modem import Modem
from modem_drivers.q850 import cause_name
from modem_drivers.types import PinState

from .balance import parse_balance
from .config import ApplianceConfig

#: Weakest signal that passes: -105 dBm (+CSQ 4, 27.007 §8.5) is where field practice with
#: SIM800/EC25 dongles sees calls drop and SMS submissions time out; move the antenna.
MIN_SIGNAL_DBM: Final = -105
#: Seconds a SIM has to be registered (after a slot switch: 3-6 s on the networks
#: measured, docs/emulator.md Timing; 30 s for a weak cell's search, as `provision sims`).
REGISTRATION_WAIT: Final = 30.0
#: Registration polls back off from 0.5 s doubling to 4 s.
POLL_BACKOFF: Final = (0.5, 4.0)
#: Seconds the test call has to reach the reference phone's ringing: call set-up takes
#: 1-10 s on live networks; 30 s leaves room for a slow MSC before it counts as failed.
CALL_WAIT: Final = 30.0
#: Seconds a balance USSD may take (the network answers in 1-5 s; as `provision sims`).
USSD_WAIT: Final = 20.0


@dataclasses.dataclass(slots=True)
class Check:
    """One check of one SIM: ``ok`` True (pass), False (fail) or None (not run: why in
    ``detail``)."""

    name: str
    ok: bool | None
    detail: str


@dataclasses.dataclass(slots=True)
class SimResult:
    modem_id: str
    port: str
    slot: int
    iccid: str | None = None
    msisdn: str | None = None
    operator: str | None = None
    checks: list[Check] = dataclasses.field(default_factory=list)
    fix: str | None = None  # what the installer does about a failure

    @property
    def passed(self) -> bool:
        return bool(self.checks) and not any(c.ok is False for c in self.checks)

    def check(self, name: str) -> Check | None:
        return next((c for c in self.checks if c.name == name), None)



@dataclasses.dataclass(slots=True, frozen=True)
class Settings:
    reference: str | None = None
    balance_codes: dict[str, str] = dataclasses.field(default_factory=dict)  # MCCMNC -> USSD code
    balance_code: str | None = None  # the config's [ussd] balance_code, for other operators
    balance_pattern: str = r"(\d+[.,]\d{1,2})"
    min_balance: float | None = None  # [lock] min_balance: below it the SIM would be locked
    register_wait: float = REGISTRATION_WAIT
    sms_text: str = "simrotor selftest"


def settings_from(cfg: ApplianceConfig, reference: str | None, balance_codes: dict[str, str],
                  register_wait: float = REGISTRATION_WAIT) -> Settings:
    stamp = time.strftime("%Y-%m-%d %H:%M", time.gmtime())
    return Settings(reference=reference, balance_codes=balance_codes, balance_code=cfg.ussd.balance_code or None,
                    balance_pattern=cfg.ussd.balance_pattern, min_balance=cfg.lock.min_balance,
                    register_wait=register_wait, sms_text=f"simrotor selftest {cfg.appliance.id} {stamp} UTC")


# -- one SIM ------------------------------------------------------------------------------
async def _registered(modem: Modem, wait: float) -> tuple[bool, str]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    delay = POLL_BACKOFF[0]
    while True:
        reg = await modem.registration_status()
        if reg.registered or loop.time() >= deadline:
            return reg.registered, reg.stat.name.lower()
        # waiting for the network to accept the SIM (after a slot switch, a weak cell)
        await asyncio.sleep(min(delay, max(0.0, deadline - loop.time())))
        delay = min(delay * 2, POLL_BACKOFF[1])


async def _sms(modem: Modem, s: Settings) -> Check:
    if not s.reference:
        return Check("sms", None, "not sent: no --reference number")
    try:
        sub = await modem.send_sms(s.reference, s.sms_text)
    except (AtError, ModemError, TimeoutError) as exc:
        return Check("sms", False, f"refused: {exc}")
    return Check("sms", True, f"submitted to {s.reference} (reference {', '.join(map(str, sub.references))})")


async def _call(modem: Modem, s: Settings) -> Check:
    if not s.reference:
        return Check("call", None, "not placed: no --reference number")
    try:
        call = await modem.dial(s.reference)
    except (AtError, ModemError, ValueError) as exc:
        return Check("call", False, f"refused: {exc}")
    try:
        with contextlib.suppress(TimeoutError):
            await call.wait_for(CallState.ALERTING, timeout=CALL_WAIT)
        state = call.state
        if state in (CallState.ALERTING, CallState.ACTIVE):
            return Check("call", True, f"{s.reference} {'answered' if state is CallState.ACTIVE else 'rang'}")
        if state is CallState.RELEASED:
            return Check("call", False, f"released before ringing: cause {call.cause} ({cause_name(call.cause)})")
        return Check("call", False, f"no ringing within {CALL_WAIT:.0f} s")
    finally:
        if not call.released:
            with contextlib.suppress(AtError, ModemError):
                await modem.hangup()


async def _balance(modem: Modem, mcc_mnc: str | None, s: Settings) -> Check:
    code = s.balance_codes.get(mcc_mnc or "") or s.balance_code
    if not code:
        return Check("balance", None, f"not checked: no balance code for operator {mcc_mnc or '?'} "
                     "([ussd] balance_code, or --balance-ussd MCCMNC=CODE)")
    try:
        reply = await modem.ussd(code, timeout=USSD_WAIT)
    except (AtError, ModemError, TimeoutError) as exc:
        return Check("balance", False, f"{code}: {exc}")
    amount = parse_balance(reply.text or "", s.balance_pattern)
    text = " ".join((reply.text or "").split())[:80]
    if amount is None:
        return Check("balance", False, f"{code}: no amount in the answer {text!r}")
    if s.min_balance is not None and amount < s.min_balance:
        return Check("balance", False, f"{amount:.2f}: below [lock] min_balance {s.min_balance:.2f} ({text})")
    return Check("balance", True, f"{amount:.2f} ({text})")


async def test_sim(modem: Modem, result: SimResult, s: Settings) -> SimResult:
    """Every check of the modem's active SIM into ``result``."""
    if modem.pin_state is not PinState.READY:
        state = modem.pin_state.value
        result.checks.append(Check("registration", False, f"SIM not ready ({state})"))
        result.fix = ("insert a SIM" if modem.pin_state is PinState.NOT_INSERTED else
                      "unlock it: `simrotor provision sims --pin-file pins.txt` (selftest sends no PIN)")
        return result
    info = await modem.sim_info()
    result.iccid, result.msisdn = info.iccid, info.msisdn
    result.operator = info.operator_label
    registered, stat = await _registered(modem, s.register_wait)
    result.checks.append(Check("registration", registered,
                               stat.replace("_", " ") if registered else f"not registered ({stat}) after "
                               f"{s.register_wait:.0f} s"))
    try:
        dbm = (await modem.signal()).dbm
    except (AtError, ModemError) as exc:
        result.checks.append(Check("signal", False, f"not read: {exc}"))
    else:
        good = dbm is not None and dbm >= MIN_SIGNAL_DBM
        result.checks.append(Check("signal", good, "unknown" if dbm is None else
                                   f"{dbm} dBm" + ("" if good else f" (below {MIN_SIGNAL_DBM} dBm)")))
    if not registered:
        for name in ("sms", "call", "balance"):
            result.checks.append(Check(name, None, "not tried: not registered"))
        result.fix = "check the SIM is active with its operator and the antenna; run selftest again"
        return result
    result.checks.append(await _sms(modem, s))
    result.checks.append(await _call(modem, s))
    result.checks.append(await _balance(modem, info.mcc_mnc, s))
    failed = {c.name for c in result.checks if c.ok is False}
    if failed & {"sms", "call"}:
        result.fix = ("the network refuses this SIM's traffic: ask its operator whether it is blocked or out of "
                      "credit; set it aside (`simrotor provision assign ICCID --no-pools`) until then")
    elif "balance" in failed:
        result.fix = "top the SIM up, or fix the balance code for its operator (--balance-ussd MCCMNC=CODE)"
    elif "signal" in failed:
        result.fix = f"move the antenna or the modem: weaker than {MIN_SIGNAL_DBM} dBm loses calls"
    return result


