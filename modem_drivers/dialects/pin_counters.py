"""Readers of the PIN/PUK tries left as each vendor answers its counter row
(``Dialect.pin_counter`` in ``tables.py``): answer lines -> ``PinTries``, unknown counts
None. Reading costs no try; ``modem_drivers.pin`` decides what may be sent.
"""
from __future__ import annotations

from collections.abc import Sequence

from ..pin import PinTries


def _int(text: str) -> int | None:
    text = text.strip().strip('"')
    return int(text) if text.isdecimal() else None


def _fields(line: str) -> list[str]:
    body = line.split(":", 1)[1] if ":" in line else line
    return [f.strip().strip('"').strip() for f in body.split(",")]


def parse_cpinr(lines: Sequence[str]) -> PinTries:
    """3GPP TS 27.007 §8.65 ``AT+CPINR``: one line per code,
    ``+CPINR: <code>,<retries>,<default_retries>`` (e.g. ``+CPINR: SIM PIN,3,3``; some
    modems quote the code)."""
    pin = puk = None
    for line in lines:
        if not line.upper().startswith("+CPINR:"):
            continue  # +CPINRE (the extended form) and anything else
        f = _fields(line)
        if len(f) < 2:
            continue
        code = f[0].upper()
        if code == "SIM PIN":
            pin = _int(f[1])
        elif code == "SIM PUK":
            puk = _int(f[1])
    return PinTries(pin, puk)


def parse_qpinc(lines: Sequence[str]) -> PinTries:
    """Quectel ``AT+QPINC?`` (EC2x/M35 AT commands manuals, "Display PIN Remainder
    Counter"): ``+QPINC: <facility>,<pincounter>,<pukcounter>`` per facility; ``"SC"``
    is the SIM PIN, ``"P2"`` PIN2."""
    for line in lines:
        f = _fields(line)
        if line.upper().startswith("+QPINC:") and len(f) >= 3 and f[0].upper() == "SC":
            return PinTries(_int(f[1]), _int(f[2]))
    return PinTries()


def parse_huawei_cpin(lines: Sequence[str]) -> PinTries:
    """Huawei ``AT^CPIN?`` (E-series AT command interface specification; oFono reads it the
    same way in drivers/atmodem/sim.c): ``^CPIN: <code>,[<times>],<puk_times>,<pin_times>,
    <puk2_times>,<pin2_times>`` — e.g. ``^CPIN: SIM PIN,3,10,3,10,3``. ``<times>`` is the
    count of what is asked now and is empty when the SIM is READY."""
    for line in lines:
        f = _fields(line)
        if line.upper().startswith("^CPIN:") and len(f) >= 4:
            return PinTries(pin=_int(f[3]), puk=_int(f[2]))
    return PinTries()


def parse_spic(lines: Sequence[str]) -> PinTries:
    """SIMCom ``AT+SPIC`` ("Times remain to input SIM PIN/PUK", SIM800/SIM5320/SIM7600
    manuals): ``+SPIC: <pin1>,<puk1>,<pin2>,<puk2>`` — e.g. ``+SPIC: 3,10,0,10``; oFono's
    at_spic_cb reads the fields in this order."""
    for line in lines:
        f = _fields(line)
        if line.upper().startswith("+SPIC:") and len(f) >= 2:
            return PinTries(_int(f[0]), _int(f[1]))
    return PinTries()
