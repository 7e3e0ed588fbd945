"""udev rules that give each modem's AT and audio ports stable names, rendered from the
shipped template ``systemd/99-simrotor.rules.in`` (its header says the format).

Why: a modem reset or a hub re-enumeration renumbers ``ttyUSB*``, and a config naming
``/dev/ttyUSB4`` would then drive another modem's SIM under the first one's identity.
The rules name ports by the hub port they sit in and the IMEI found there at the scan.
``simrotor provision udev`` renders them from a scan; ``provision install --udev-rules``
installs the file.
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from .unitfiles import UDEV_TEMPLATE, shipped

#: The line that ends the template's header; the lines after it repeat per port.
PORT_MARKER: Final = "#@port"
ROLES: Final = ("at", "audio")
_FIELD = re.compile(r"@([A-Z_]+)@")


class UdevRulesError(ValueError):
    """A port's fields would make a broken or ambiguous rule."""


@dataclass(frozen=True, slots=True)
class UdevPort:
    """One tty to name: the modem's config id (``label``), its IMEI, where it sits on
    USB (``usb_path`` such as ``1-1.3``, ``interface`` its bInterfaceNumber) and its role."""

    label: str
    imei: str
    usb_path: str
    interface: int
    role: str

    def fields(self) -> dict[str, str]:
        where = f"port {self.role} of {self.label or self.imei}"
        if not re.fullmatch(r"\d{14,16}", self.imei):
            raise UdevRulesError(f"{where}: IMEI {self.imei!r} is not 14-16 digits")
        if not re.fullmatch(r"\d+-\d+(\.\d+)*", self.usb_path):
            raise UdevRulesError(f"{where}: USB path {self.usb_path!r} is not a sysfs USB device name like 1-1.3")
        if not 0 <= self.interface <= 255:
            raise UdevRulesError(f"{where}: interface {self.interface} is not 0-255")
        if self.role not in ROLES:
            raise UdevRulesError(f"{where}: role {self.role!r} is not one of {', '.join(ROLES)}")
        if not re.fullmatch(r"[\w.-]*", self.label):
            raise UdevRulesError(f"{where}: label {self.label!r} may hold letters, digits, '.', '_' and '-' only")
        return {"LABEL": self.label or "-", "IMEI": self.imei, "USB_PATH": self.usb_path,
                "INTERFACE": str(self.interface), "ROLE": self.role}


def split_template(text: str) -> tuple[str, str]:
    """(header, per-port block) of the template."""
    head, marker, block = text.partition(PORT_MARKER + "\n")
    if not marker:
        raise UdevRulesError(f"{UDEV_TEMPLATE}: no {PORT_MARKER!r} line between the header and the per-port block")
    return head, block


def fill(block: str, fields: dict[str, str]) -> str:
    def one(m: re.Match[str]) -> str:
        if m.group(1) not in fields:
            raise UdevRulesError(f"{UDEV_TEMPLATE}: unknown field @{m.group(1)}@ (known: {', '.join(sorted(fields))})")
        return fields[m.group(1)]

    return _FIELD.sub(one, block)


def render(ports: Iterable[UdevPort], template: str | None = None) -> str:
    """The rules file: the header, then the block for each port. Two ports claiming the
    same name, or the same tty, are refused: udev would give the name to whichever came last."""
    head, block = split_template(shipped(UDEV_TEMPLATE) if template is None else template)
    out = [head]
    names: dict[tuple[str, str], UdevPort] = {}
    places: dict[tuple[str, int], UdevPort] = {}
    for port in ports:
        fields = port.fields()
        for key, seen in (((port.imei, port.role), names), ((port.usb_path, port.interface), places)):
            other = seen.get(key)  # type: ignore[call-overload]
            if other is not None:
                raise UdevRulesError(f"{port.label or port.imei} and {other.label or other.imei} both claim "
                                     f"{key[0]} {key[1]}: scan again, one of them is stale")
            seen[key] = port  # type: ignore[index]
        out.append(fill(block, fields))
    return "".join(out)
