"""``provision sims``: every SIM of every scanned modem, slot by slot — PIN state, ICCID,
IMSI, operator, signal, registration and own number — unlocking with a PIN file.

PINs go through the modem layer's PIN safety (``modem_drivers.pin.unlock_on_open``): the
tries left are read first, nothing is sent with one try left or to a SIM that wants its
PUK, and a PIN a SIM rejected is remembered per ICCID in the provisioning state
(``StatePinMarks``), so the next run does not send it again — a third wrong try would
lock the SIM. A SIM that stays locked is reported with what to do; the other SIMs and
modems are read all the same.

The PIN file: one ``<key> <pin>`` a line, ``#`` comments; the key is an ICCID, or
``imei:<imei>/slot:<n>``, or ``*`` for every SIM without its own line (a batch of SIMs
usually shares one PIN).
"""
from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from modem_drivers.at import AtError, PortUnavailable
from modem_drivers.errors import (
    ForeignModem,
    ModemError,
    PinError,
    SimPinRequired,
    SimPukRequired,
    SlotRefused,
    Unsupported,
    UssdFailed,
    WrongPin,
)
from modem_drivers.modem import Modem
from modem_drivers.pin import PinWithheld
from modem_drivers.types import PinState

from .state import ProvisioningError, StatePinMarks

#: SIM reads at once. Each is one modem's port and a few dozen AT lines; bounded for the
#: same reason as the scan's probes, lower because a read holds its port for seconds.
SIMS_CONCURRENCY: Final = 64
#: Seconds a SIM has to register after its PIN or a slot switch: 3-6 s on the networks
#: measured (docs/emulator.md, Timing), 30 s for a weak cell's search.
REGISTRATION_WAIT: Final = 30.0
#: Registration polls back off from 0.5 s doubling to 4 s (modems without +CREG URCs).
POLL_BACKOFF: Final = (0.5, 4.0)
#: Seconds a per-operator own-number USSD code may take (the network answers in 1-5 s).
USSD_WAIT: Final = 20.0
#: An own number in a USSD answer: an optional +, 9 to 15 digits (ITU-T E.164 §6).
NUMBER_IN_TEXT: Final = re.compile(r"\+?\d{9,15}")

Progress = Callable[[int, int], None]


@dataclass(slots=True)
class SimReport:
    """One SIM slot as read. ``status``: ``ready``, ``wrong_pin``, ``puk``, ``pin_needed``,
    ``pin_withheld`` (one try left), ``no_sim``, ``busy`` (port held elsewhere),
    ``unreachable`` (the modem did not answer), ``error``; ``no_slot`` (the modem refused
    the slot: it has fewer, and is recorded so) needs nobody."""

    modem_id: str
    imei: str
    slot: int
    port: str
    status: str
    problem: str | None = None
    fix: str | None = None
    iccid: str | None = None
    imsi: str | None = None
    mcc_mnc: str | None = None
    operator: str | None = None
    msisdn: str | None = None
    number_source: str | None = None  # "cnum", "ussd", "hand"
    signal_dbm: int | None = None
    registration: str | None = None
    pin_tries_left: int | None = None
    puk_tries_left: int | None = None
    pin_used: str | None = None  # the PIN that unlocked it (for the config), never printed


def read_pin_file(path: Path) -> dict[str, str]:
    """``{key: pin}`` from a PIN file; a bad line is named with its number."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ProvisioningError(f"{path}: cannot read the PIN file ({exc})") from None
    pins: dict[str, str] = {}
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        if len(parts) != 2 or not (parts[1].isdigit() and 4 <= len(parts[1]) <= 8):
            raise ProvisioningError(f"{path}:{n}: expected '<ICCID or *> <PIN of 4 to 8 digits>', got {raw.strip()!r}")
        pins[parts[0]] = parts[1]
    return pins


def pin_for(pins: dict[str, str], keys: tuple[str, ...]) -> str | None:
    """The PIN file's PIN for a SIM known by ``keys`` (``iccid:…``, ``imei:…/slot:…``)."""
    for key in keys:
        bare = key.split(":", 1)[1] if key.startswith("iccid:") else key
        if bare in pins:
            return pins[bare]
    return pins.get("*")


def _explain_pin(problem: PinError, port: str, iccid: str | None) -> tuple[str, str]:
    sim = f"ICCID {iccid}" if iccid else "this SIM"
    if isinstance(problem, PinWithheld):
        return ("pin_withheld", (f"one try left: a person decides; run `simrotor modem unlock {port} --pin P "
                f"--last-try` with the right PIN, or set the SIM aside"))
    if isinstance(problem, WrongPin):
        return ("wrong_pin", (f"the PIN file's PIN for {sim} is wrong and will not be sent again; find the right one "
                "(the SIM's card), fix the PIN file and run `provision sims` again"))
    if isinstance(problem, SimPukRequired):
        return ("puk", (f"the SIM is PUK-locked: take the PUK from its card and run `simrotor modem unlock {port} "
                "--puk PUK --new-pin N`, put N in the PIN file, run `provision sims` again (10 wrong PUKs block "
                "the SIM for good)"))
    if isinstance(problem, SimPinRequired):
        return ("pin_needed", (f"add '{iccid or '*'} <PIN>' to the PIN file (--pin-file) and run `provision sims` "
                "again"))
    return ("error", "see the problem; run `simrotor modem pin PORT` to look at the SIM")


async def _wait_registered(modem: Modem, wait: float) -> str:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    delay = POLL_BACKOFF[0]
    while True:
        reg = await modem.registration_status()
        if reg.registered or loop.time() >= deadline:
            return reg.stat.name.lower()
        # waiting for the network to accept the SIM after its PIN or a slot switch
        await asyncio.sleep(min(delay, max(0.0, deadline - loop.time())))
        delay = min(delay * 2, POLL_BACKOFF[1])


async def _own_number_by_ussd(modem: Modem, code: str) -> str | None:
    with contextlib.suppress(UssdFailed, ModemError, AtError, TimeoutError):
        reply = await modem.ussd(code, timeout=USSD_WAIT)
        found = NUMBER_IN_TEXT.search(reply.text or "")
        if found:
            return found.group(0)
    return None


async def _read_slot(modem: Modem, base: SimReport, pins: dict[str, str], number_ussd: dict[str, str],
                     register_wait: float) -> SimReport:
    keys = await modem.sim_keys()
    iccid = next((k.split(":", 1)[1] for k in keys if k.startswith("iccid:")), None)
    base.iccid = iccid
    if modem.pin_state in (PinState.SIM_PIN, PinState.SIM_PUK):
        pin = pin_for(pins, keys)
        await modem.initialize(pin=pin)  # the PIN safety path: tries read, marks honoured
        if modem.pin_state is PinState.READY:
            base.pin_used = pin
    tries = await modem.pin_tries()
    base.pin_tries_left, base.puk_tries_left = tries.pin, tries.puk
    if modem.pin_state is PinState.NOT_INSERTED:
        base.status, base.problem, base.fix = "no_sim", "no SIM in this slot", "insert a SIM, or ignore the slot"
        return base
    if modem.pin_state is not PinState.READY:
        problem = modem.pin_problem or SimPinRequired(f"SIM asks for {modem.pin_state.value}", tries.pin)
        base.status, base.fix = _explain_pin(problem, modem.port.url, iccid)
        base.problem = str(problem)
        return base
    info = await modem.sim_info()
    base.iccid = info.iccid or iccid
    base.imsi, base.mcc_mnc, base.operator = info.imsi, info.mcc_mnc, info.operator_name
    base.registration = await _wait_registered(modem, register_wait)
    with contextlib.suppress(ModemError, AtError):
        base.signal_dbm = (await modem.signal()).dbm
    if info.msisdn:
        base.msisdn, base.number_source = info.msisdn, "cnum"
    elif info.mcc_mnc and info.mcc_mnc in number_ussd:
        number = await _own_number_by_ussd(modem, number_ussd[info.mcc_mnc])
        if number:
            base.msisdn, base.number_source = number, "ussd"
    base.status = "ready"
    return base


async def read_modem_sims(modem_id: str, entry: dict[str, Any], pins: dict[str, str], marks: StatePinMarks, *,
                          number_ussd: dict[str, str] | None = None,
                          register_wait: float = REGISTRATION_WAIT) -> list[SimReport]:
    """Every slot of one scanned modem (``entry`` from the state's ``modems``)."""
    port, imei, slots = str(entry["at_port"]), str(entry.get("imei") or ""), int(entry.get("slots") or 1)

    def report(slot: int, status: str, problem: str, fix: str) -> list[SimReport]:
        return [SimReport(modem_id, imei, slot, port, status, problem, fix)]

    try:
        modem = await Modem.open(port, pin=None, name=modem_id, reconnect=False, pin_marks=marks,
                                 expected_imei=imei or None)
    except PortUnavailable as exc:
        busy = "busy" in str(exc)
        return report(0, "busy" if busy else "error", str(exc),
                      f"stop the process holding it (`fuser -v {port}`; the appliance: stop it first), then run "
                      "`provision sims` again" if busy else "scan again: the modem may have moved")
    except ForeignModem as exc:
        return report(0, "error", str(exc), "the hub re-enumerated: run `provision scan` again")
    except (AtError, ModemError, TimeoutError) as exc:
        return report(0, "unreachable", f"the modem on {port} did not answer: {exc}",
                      "power-cycle it and run `provision sims` again")
    out: list[SimReport] = []
    try:
        for slot in range(slots):
            base = SimReport(modem_id, imei, slot, port, "error")
            try:
                if slot > 0:
                    try:
                        await modem.switch_slot(slot)
                    except (Unsupported, SlotRefused) as exc:
                        out.append(SimReport(modem_id, imei, slot, port, "no_slot", str(exc),
                                             f"none: {modem_id} is recorded with {slot} slot(s)"))
                        break
                    await modem.initialize(pin=None)
                out.append(await _read_slot(modem, base, pins, number_ussd or {}, register_wait))
            except (AtError, ModemError, TimeoutError) as exc:
                base.problem, base.fix = f"reading the SIM failed: {exc}", "run `provision sims` again"
                out.append(base)
        if slots > 1 and modem.slot != 0:
            with contextlib.suppress(AtError, ModemError):
                await modem.switch_slot(0)
    finally:
        await modem.close()
    return out


async def read_sims(data: dict[str, Any], pins: dict[str, str], *, number_ussd: dict[str, str] | None = None,
                    only: set[str] | None = None, concurrency: int = SIMS_CONCURRENCY,
                    register_wait: float = REGISTRATION_WAIT, progress: Progress | None = None) -> list[SimReport]:
    """Read every scanned modem's SIMs (``only``: these modem ids), concurrently."""
    marks = StatePinMarks(data)
    chosen = [(e["id"], e) for e in data["modems"].values() if e.get("present", True) and (only is None or e["id"] in only)]
    gate = asyncio.Semaphore(concurrency)
    done = 0

    async def one(modem_id: str, entry: dict[str, Any]) -> list[SimReport]:
        nonlocal done
        async with gate:
            reports = await read_modem_sims(modem_id, entry, pins, marks, number_ussd=number_ussd,
                                            register_wait=register_wait)
        done += 1
        if progress is not None:
            progress(done, len(chosen))
        return reports

    results = await asyncio.gather(*(one(i, e) for i, e in chosen))
    return sorted((r for rs in results for r in rs), key=lambda r: (r.modem_id, r.slot))


def record_sims(data: dict[str, Any], reports: list[SimReport]) -> None:
    """Put what was read into the state: a SIM by its ICCID keeps its labels, pools and
    limits from ``assign``; what it reads now replaces what it read before."""
    sims = data["sims"]
    for r in reports:
        if r.iccid is None:
            continue
        entry = sims.setdefault(r.iccid, {"label": None, "pools": [], "limits": {}})
        # A SIM moved to another modem or slot: it goes where it was found.
        entry.update({"imei": r.imei, "modem_id": r.modem_id, "slot": r.slot, "pin_state": r.status})
        for key in ("imsi", "mcc_mnc", "operator", "signal_dbm", "registration"):
            value = getattr(r, key)
            if value is not None:
                entry[key] = value
        if r.msisdn and entry.get("number_source") != "hand":
            entry["msisdn"], entry["number_source"] = r.msisdn, r.number_source
        if r.pin_used:
            entry["pin"] = r.pin_used
    for entry in data["modems"].values():
        found = [r.slot for r in reports if r.imei == entry.get("imei") and r.status == "no_slot"]
        if found:
            entry["slots"] = min(found)
