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

The checks of one SIM live below the appliance (appliance/simcheck.py), so the
technician's page runs the same ones on one SIM through the running bank.
"""
from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import Callable
from typing import Any, Final

from appliance.config import ApplianceConfig, ModemEntry
from appliance.localapi import LocalApi, LocalApiError
from appliance.simcheck import (  # the checks of one SIM; the names stay importable from here
    CALL_WAIT,
    MIN_SIGNAL_DBM,
    POLL_BACKOFF,
    REGISTRATION_WAIT,
    USSD_WAIT,
    Check,
    Settings,
    SimResult,
    settings_from,
    test_sim,
)
from modem_drivers.at import AtError, PortUnavailable
from modem_drivers.errors import ForeignModem, ModemError, SlotRefused, Unsupported
from modem_drivers.modem import Modem

#: Seconds to wait for the running appliance to lend a modem: its call ends first
#: (max_ring 30 s + max_talk 60 s by default), plus a slot switch's re-registration.
LEND_WAIT: Final = 180.0
#: Modems tested at once: with the appliance running, at most this many are out of
#: rotation together (the rest keep calling); a test holds a modem ~5-40 s.
CONCURRENCY: Final = 4

Progress = Callable[[str], None]

__all__ = ["CALL_WAIT", "CONCURRENCY", "LEND_WAIT", "MIN_SIGNAL_DBM", "POLL_BACKOFF", "REGISTRATION_WAIT",
           "USSD_WAIT", "Check", "SelftestReport", "Settings", "SimResult", "selftest", "settings_from", "test_modem",
           "test_sim"]


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
