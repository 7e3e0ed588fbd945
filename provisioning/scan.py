"""``provision scan``: which ttys are modems, which of a modem's ttys speaks AT and which
carries audio, and who each modem is (vendor, model, revision, IMEI).

A USB modem shows several ttys; only one or two answer AT. The scan lists candidate
ports, probes those that may speak AT concurrently (bounded), groups the ttys of one
USB device by their sysfs place (``provisioning.sysfs``) and names each interface's job
from ``modem_drivers.usb_layouts``. A port held by another process or one that never
answers is reported with what to do, never fatal: the rest of the bank is scanned.
"""
from __future__ import annotations

import asyncio
import contextlib
import glob
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from modem_drivers.at import AtError, AtPort, PortUnavailable
from modem_drivers.modem import Modem
from modem_drivers.usb_layouts import layout_for

from .state import modem_id_for
from .sysfs import UsbPlace, place

#: Ports probed at once. A probe is one fd and a few short AT lines, so hundreds fit; the
#: bound keeps a 1,000-port scan within the fd limit `run_async` raises (and a USB hub's
#: control traffic sane). 256 ports then take one round of timeouts at most.
PROBE_CONCURRENCY: Final = 256
#: Seconds a port has to answer ``AT``. A modem answers within ~100 ms once enumerated
#: (SIM7600/EC25 hardware design guides: AT ready seconds after power-up, then at once);
#: 2 s leaves room for a busy USB hub without making silent ports (diag, NMEA) slow.
PROBE_TIMEOUT: Final = 2.0
#: Attempts at ``AT`` per port, ESC between them (a half-typed line or an SMS prompt left
#: by another program eats the first one): the same habit as ``Modem.open``.
PROBE_ATTEMPTS: Final = 2

Progress = Callable[[int, int], None]


@dataclass(slots=True)
class PortProbe:
    """One tty: what it answered. ``status``: ``at`` (answered AT), ``audio`` (the
    layout's audio interface: not probed, PCM is no place for AT), ``silent`` (no answer),
    ``busy`` (another process holds it), ``unavailable`` (could not be opened)."""

    port: str
    status: str
    detail: str | None = None
    manufacturer: str | None = None
    model: str | None = None
    revision: str | None = None
    imei: str | None = None
    dialect: str | None = None
    place: UsbPlace | None = None


@dataclass(slots=True)
class ScannedModem:
    """One modem: its AT port (the one the appliance opens), its audio port, identity,
    and where it sits on USB (``usb_path``, the hub port)."""

    at_port: str
    audio_port: str | None
    manufacturer: str
    model: str
    revision: str
    imei: str
    dialect: str
    usb_path: str | None
    usb_id: str | None
    ports: list[dict[str, object]] = field(default_factory=list)  # every tty: port, interface, status
    at_interface: int | None = None  # bInterfaceNumber of the AT and audio ports (udev rules match them)
    audio_interface: int | None = None


@dataclass(slots=True)
class ScanProblem:
    """``kind``: ``busy`` (held by another process), ``unavailable`` (cannot be opened),
    ``silent`` (no tty of the modem, or this port, answered AT), ``duplicate_imei`` (a
    second modem with an IMEI already seen: it is found and kept, by its port)."""

    kind: str
    port: str
    problem: str
    fix: str
    usb_path: str | None = None


@dataclass(slots=True)
class ScanResult:
    modems: list[ScannedModem]
    problems: list[ScanProblem]
    ports_probed: int
    seconds: float


def candidate_ports(root: Path = Path("/"), pattern: str | None = None) -> list[str]:
    """Ports to look at: ``pattern`` (a glob, for emulated ports) when given; otherwise
    ``/dev/serial/by-id/*`` (stable names, preferred) and the ``ttyUSB*``/``ttyACM*``
    those links do not already cover. One entry per kernel tty."""
    if pattern is not None:
        return sorted(p for p in glob.glob(pattern) if not os.path.isdir(p))
    by_id = sorted(glob.glob(str(root / "dev" / "serial" / "by-id" / "*")))
    covered = {os.path.realpath(p) for p in by_id}
    seen_ttys = {os.path.basename(p) for p in covered}
    rest = [p for p in sorted(glob.glob(str(root / "dev" / "ttyUSB*")) + glob.glob(str(root / "dev" / "ttyACM*")))
            if os.path.realpath(p) not in covered and os.path.basename(p) not in seen_ttys]
    return by_id + rest


async def probe_port(port: str, *, timeout: float = PROBE_TIMEOUT) -> PortProbe:
    """Open ``port`` exclusively (as the appliance does), ask ``AT``, and when answered
    read the identity (+CGMI/+CGMM/+CGMR/+CGSN). Never raises for a port's own trouble."""
    try:
        at = await AtPort.open(port, reconnect=False)
    except PortUnavailable as exc:
        status = "busy" if "busy" in str(exc) else "unavailable"
        return PortProbe(port, status, str(exc))
    modem = Modem(at)
    try:
        for attempt in range(PROBE_ATTEMPTS):
            try:
                await at.command("AT", timeout=timeout)
                break
            except (AtError, TimeoutError):
                if attempt == PROBE_ATTEMPTS - 1:
                    return PortProbe(port, "silent", f"no answer to AT within {timeout:g} s, {PROBE_ATTEMPTS} tries")
                with contextlib.suppress(AtError):
                    await at.write_raw(b"\x1b\r")
        try:
            await at.command("ATE0", timeout=timeout)
            ident = await modem.identify()
        except (AtError, TimeoutError) as exc:
            return PortProbe(port, "silent", f"answered AT but not the identity queries: {exc}")
        return PortProbe(port, "at", None, ident.manufacturer, ident.model, ident.revision, ident.imei or None,
                         ident.dialect)
    finally:
        with contextlib.suppress(Exception):
            await modem.close()


async def scan(ports: list[str] | None = None, *, sysfs_root: Path = Path("/"), pattern: str | None = None,
               concurrency: int = PROBE_CONCURRENCY, timeout: float = PROBE_TIMEOUT,
               progress: Progress | None = None) -> ScanResult:
    """Probe ``ports`` (default: ``candidate_ports``) and group them into modems."""
    started = time.monotonic()
    if ports is None:
        ports = candidate_ports(sysfs_root, pattern)
    places = {p: place(p, sysfs_root) for p in ports}
    gate = asyncio.Semaphore(concurrency)
    done = 0

    async def one(port: str) -> PortProbe:
        nonlocal done
        where = places[port]
        layout = layout_for(where.usb_id) if where else None
        if where is not None and layout is not None and where.interface == layout.audio:
            result = PortProbe(port, "audio")
        else:
            async with gate:
                result = await probe_port(port, timeout=timeout)
        result.place = where
        done += 1
        if progress is not None:
            progress(done, len(ports))
        return result

    probes = await asyncio.gather(*(one(p) for p in ports))
    modems, problems = group(probes)
    return ScanResult(modems, problems, len(ports), round(time.monotonic() - started, 3))


def group(probes: list[PortProbe]) -> tuple[list[ScannedModem], list[ScanProblem]]:
    """Ttys of one USB device form one modem (else ttys answering with one IMEI do); its
    AT port is the layout's preferred AT interface that answered, its audio port the
    layout's audio interface. Silent ttys beside an answering one are its other
    interfaces (diagnostics, NMEA), not problems."""
    groups: dict[str, list[PortProbe]] = {}
    for p in probes:
        if p.place is not None:
            key = f"usb:{p.place.usb_path}"
        elif p.status == "at" and p.imei:
            key = f"imei:{p.imei}"
        else:
            key = f"port:{p.port}"
        groups.setdefault(key, []).append(p)
    modems: list[ScannedModem] = []
    problems: list[ScanProblem] = []
    for members in groups.values():
        where = members[0].place
        layout = layout_for(where.usb_id) if where else None
        usb_path = where.usb_path if where else None
        answering = [p for p in members if p.status == "at"]
        for p in members:
            if p.status == "busy":
                problems.append(ScanProblem("busy", p.port, p.detail or "port busy",
                                            f"stop the process holding it (`fuser -v {p.port}`), then scan again",
                                            usb_path))
            elif p.status == "unavailable":
                problems.append(ScanProblem("unavailable", p.port, p.detail or "cannot open", "check the device and its permissions "
                                            "(is this user in the dialout group?)", usb_path))
        if not answering:
            silent = [p for p in members if p.status == "silent"]
            if silent and not any(p.status == "busy" for p in members):
                names = ", ".join(p.port for p in silent)
                if where is not None:
                    problems.append(ScanProblem(
                        "silent", silent[0].port, f"the modem on USB {usb_path} does not answer: no tty of it answered AT "
                        f"({names}; {silent[0].detail})", "power-cycle it (a hub with too little power hangs modems) "
                        "or move it to another hub port, then scan again", usb_path))
                else:
                    problems.append(ScanProblem(
                        "silent", silent[0].port, f"{silent[0].port} does not answer AT ({silent[0].detail})",
                        "if it is a modem's AT port, power-cycle the modem and scan again; an audio, diagnostics or "
                        "NMEA port never answers (scan without --ports so sysfs tells them apart)", None))
            continue

        chosen = min(answering, key=lambda p, at=layout.at if layout else (): _rank(p, at))
        audio_probe = next((p for p in members if p.status == "audio"), None)
        audio = audio_probe.port if audio_probe else None
        modems.append(ScannedModem(
            chosen.port, audio, chosen.manufacturer or "", chosen.model or "", chosen.revision or "",
            chosen.imei or "", chosen.dialect or "", usb_path, where.usb_id if where else None,
            [{"port": p.port, "interface": p.place.interface if p.place else None, "status": p.status}
             for p in sorted(members, key=lambda m: (m.place.interface if m.place and m.place.interface is not None
                                                     else -1, m.port))],
            chosen.place.interface if chosen.place else None,
            audio_probe.place.interface if audio_probe and audio_probe.place else None))
    modems.sort(key=lambda m: (_usb_sort(m.usb_path), m.at_port))
    seen: dict[str, ScannedModem] = {}
    for m in modems:
        first = seen.setdefault(m.imei, m) if m.imei else m
        if first is not m:  # cloned dongles share an IMEI: both are kept, told apart by port
            problems.append(ScanProblem(
                "duplicate_imei", m.at_port, f"two modems answer with IMEI {m.imei} ({first.at_port} and {m.at_port})",
                "the network may bar both (an IMEI is one device); the second is recorded by its port: replace it, "
                "or use udev names by hub port", m.usb_path))
    return modems, problems


def modem_key(m: ScannedModem, result: ScanResult) -> str:
    """The state's key of a scanned modem: its IMEI, or its port when it has none or
    shares it with an earlier modem of the scan."""
    first = next((x for x in result.modems if x.imei == m.imei), m)
    return m.imei if m.imei and first is m else f"port:{m.at_port}"


def _rank(p: PortProbe, preferred: tuple[int, ...]) -> tuple[int, str]:
    """The layout's preferred AT interface first, then the lowest interface number."""
    number = p.place.interface if p.place else None
    if number is not None and number in preferred:
        return (preferred.index(number), p.port)
    return (100 + (number if number is not None else 0), p.port)


def _usb_sort(usb_path: str | None) -> tuple[int, ...]:
    """``1-2.10`` after ``1-2.9``: compare the numbers."""
    if usb_path is None:
        return (1 << 30,)
    return tuple(int(x) for x in usb_path.replace("-", ".").split(".") if x.isdigit())


def record_scan(data: dict[str, object], result: ScanResult, now: str) -> None:
    """Put the scan into the provisioning state: each modem by IMEI keeps the id it got
    first; modems not found this time stay, marked ``present: false``."""
    modems = data["modems"]
    assert isinstance(modems, dict)
    found = set()
    for m in result.modems:
        key = modem_key(m, result)
        found.add(key)
        entry = modems.get(key, {})
        entry.update({"id": modem_id_for(data, key), "imei": m.imei, "at_port": m.at_port, "audio_port": m.audio_port,
                      "manufacturer": m.manufacturer, "model": m.model, "revision": m.revision,
                      "dialect": m.dialect, "usb_path": m.usb_path, "usb_id": m.usb_id,
                      "at_interface": m.at_interface, "audio_interface": m.audio_interface,
                      "slots": entry.get("slots", 1), "last_seen": now, "present": True})
        modems[key] = entry
    for key, entry in modems.items():
        if key not in found:
            entry["present"] = False
