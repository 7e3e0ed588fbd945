"""``provision selftest``: does every SIM of the appliance work, end to end? Per SIM:
registration, signal, a test SMS and a test call to a reference number (the installer's
phone), a balance check by USSD; a pass/fail report per SIM the installer hands over.

**The ports.** On site the appliance is usually running already (``provision install``
started it), and it holds every modem's port. Selftest does not fight it for them, and
does not ask it to stop: it *borrows one modem at a time* through the appliance's local
API (``POST /api/modems/{id}/stop`` with ``when_idle``: the modem's call ends normally,
then its ports are closed), tests that modem's SIMs on the port itself, and gives it back
(``restart``), while the rest of the bank keeps working. When the API does not answer
(the appliance is stopped, or ``listen`` is off), selftest opens the ports itself, as
``provision scan`` does; a port another process holds is reported, not fought for.
Either way the test talks to the modem directly, so the report says what the SIM does,
not what the appliance's rotation decided.

**No PIN is sent.** A SIM found locked fails with what to do (``provision sims``
unlocks with a PIN file, and the appliance enters the config's PIN at start); selftest
never spends one of a SIM's three tries.
"""
from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import Callable
from typing import Any, Final

from appliance.balance import parse_balance
from appliance.config import ApplianceConfig, ModemEntry
from appliance.localapi import LocalApi, LocalApiError
from modem_drivers.at import AtError, PortUnavailable
from modem_drivers.call import CallState
from modem_drivers.errors import ForeignModem, ModemError, SlotRefused, Unsupported
from modem_drivers.modem import Modem
from modem_drivers.q850 import cause_name
from modem_drivers.types import PinState

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
#: Seconds to wait for the running appliance to lend a modem: its call ends first
#: (max_ring 30 s + max_talk 60 s by default), plus a slot switch's re-registration.
LEND_WAIT: Final = 180.0
#: Modems tested at once: with the appliance running, at most this many are out of
#: rotation together (the rest keep calling); a test holds a modem ~5-40 s.
CONCURRENCY: Final = 4

Progress = Callable[[str], None]


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


@dataclasses.dataclass(slots=True)
class SelftestReport:
    appliance_id: str
    reference: str | None
    started_at: str  # UTC, ISO 8601
    seconds: float
    ports: str  # "lent by the running appliance" or "opened directly"
    sims: list[SimResult]
    #: What is not a SIM's failure but worth knowing (a modem with fewer slots than the config says).
    notes: list[str] = dataclasses.field(default_factory=list)

    @property
    def passed(self) -> bool:
        return bool(self.sims) and all(s.passed for s in self.sims)

    def as_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["passed"] = self.passed
        for doc, sim in zip(out["sims"], self.sims):
            doc["passed"] = sim.passed
        return out


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
    result.operator = info.operator_name or info.mcc_mnc
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


async def test_modem(entry: ModemEntry, s: Settings, notes: list[str] | None = None) -> list[SimResult]:
    """Every slot of one modem, its port opened here (the appliance not holding it); a
    slot the modem refuses (it has fewer) ends the walk with a line in ``notes``."""
    def failed(why: str, fix: str) -> list[SimResult]:
        return [SimResult(entry.id, entry.port, 0, checks=[Check("port", False, why)], fix=fix)]

    try:
        modem = await Modem.open(entry.port, pin=None, name=entry.id, reconnect=False)
    except PortUnavailable as exc:
        return failed(str(exc), f"stop the process holding it (`fuser -v {entry.port}`), or run selftest with the "
                      "appliance running: it lends each modem in turn")
    except ForeignModem as exc:
        return failed(str(exc), "the ports moved: run `simrotor provision scan` and write-config again")
    except (AtError, ModemError, OSError, TimeoutError) as exc:
        return failed(f"the modem on {entry.port} did not answer: {exc}", "power-cycle it and run selftest again")
    out: list[SimResult] = []
    try:
        home = modem.slot
        for slot in range(entry.slots):
            result = SimResult(entry.id, entry.port, slot)
            try:
                if slot != modem.slot:
                    try:
                        await modem.switch_slot(slot)
                    except (Unsupported, SlotRefused) as exc:
                        if notes is not None:  # no SIM there to fail: the appliance uses the slots it has
                            notes.append(f"{entry.id}: the modem refused slot {slot} ({exc}); "
                                         f"[[modem]] {entry.id} slots = {slot} says what it has")
                        break
                    await modem.initialize(pin=None)
                out.append(await test_sim(modem, result, s))
            except (AtError, ModemError, TimeoutError) as exc:
                result.checks.append(Check("modem", False, f"the test failed: {exc}"))
                result.fix = "run selftest again; if it repeats, power-cycle the modem"
                out.append(result)
        if modem.slot != home:
            with contextlib.suppress(AtError, ModemError, Unsupported, SlotRefused):
                await modem.switch_slot(home)
    finally:
        await modem.close()
    return out


# -- the bank -----------------------------------------------------------------------------
async def _lent(api: LocalApi, entry: ModemEntry, s: Settings, was: str, progress: Progress,
                notes: list[str]) -> list[SimResult]:
    """Borrow one modem from the running appliance, test it, give it back."""
    def done(view: dict[str, Any] | None) -> bool:
        return view is not None and view["state"] == "stopped" and view["pending"] is None

    try:
        if was != "stopped":
            await api.control(entry.id, "stop", when_idle=True)
            await api.wait_modem(entry.id, done, timeout=LEND_WAIT, said=lambda t: progress(f"waiting: {t}"))
    except LocalApiError as exc:
        return [SimResult(entry.id, entry.port, 0, checks=[Check("port", False, f"not lent by the appliance: {exc}")],
                          fix="run selftest again when the modem's work is over")]
    try:
        return await test_modem(entry, s, notes)
    finally:
        if was != "stopped":  # a modem a person stopped before stays stopped
            try:
                await api.control(entry.id, "restart")
            except LocalApiError as exc:
                progress(f"{entry.id} not given back ({exc}); run `simrotor appliance modem restart {entry.id}`")


async def selftest(cfg: ApplianceConfig, s: Settings, *, only: set[str] | None = None,
                   concurrency: int = CONCURRENCY, progress: Progress | None = None) -> SelftestReport:
    """Test every SIM of the config's modems (``only``: these modem ids)."""
    say = progress or (lambda _text: None)
    started, t0 = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), time.monotonic()
    entries = [m for m in cfg.modem if only is None or m.id in only]
    api = LocalApi.from_config(cfg)
    views: dict[str, dict[str, Any]] | None = None
    if api is not None:
        try:
            views = {c["id"]: c for c in await api.channels()}
        except LocalApiError as exc:
            if exc.status is not None:  # it answers, but refuses (a wrong token): do not go behind its back
                raise
            say(f"the appliance's API does not answer ({api.url}): opening the ports directly")
            views = None
    gate = asyncio.Semaphore(concurrency)
    done = 0
    notes: list[str] = []

    async def one(entry: ModemEntry) -> list[SimResult]:
        nonlocal done
        async with gate:
            if views is None:
                say(f"testing {entry.id} on {entry.port}")
                results = await test_modem(entry, s, notes)
            elif entry.id not in views:
                results = [SimResult(entry.id, entry.port, 0, checks=[Check(
                    "port", False, "the running appliance does not have this modem (removed, or a newer config)")],
                    fix=f"restart the appliance so it reads the config, or `simrotor appliance modem restart {entry.id}`")]
            else:
                say(f"borrowing {entry.id} from the appliance (its call ends first)")
                results = await _lent(api, entry, s, views[entry.id]["state"], say,  # type: ignore[arg-type]
                                      notes)
        done += 1
        verdict = "pass" if all(r.passed for r in results) else "FAIL"
        say(f"{entry.id}: {verdict} ({done}/{len(entries)} modems)")
        return results

    found = await asyncio.gather(*(one(e) for e in entries))
    sims = sorted((r for rs in found for r in rs), key=lambda r: (r.modem_id, r.slot))
    return SelftestReport(cfg.appliance.id, s.reference, started, round(time.monotonic() - t0, 2),
                          "opened directly" if views is None else "lent by the running appliance, one modem at a time",
                          sims, sorted(notes))
