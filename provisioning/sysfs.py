"""Where a tty sits on USB, read from sysfs: the USB device (its path on the hub tree,
ids, serial) and the interface number, so the scan can group the ttys of one modem.

Read straight from ``/sys`` (``<root>/sys``): two symlinks and a few one-line files per
port, no pyudev needed for that. ``root`` is ``/`` on a real box; the emulator's fake
tree (``simrotor emulate --sysfs``) is the same shape under another directory.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Final

#: Symlink hops followed from a port path to its kernel tty name (by-id → ttyUSB2 is one;
#: a loop in a broken tree must end).
MAX_HOPS: Final = 16


@dataclass(frozen=True, slots=True)
class UsbPlace:
    """One tty's place: ``usb_path`` is the sysfs name of its USB device (``1-1.3``: bus
    1, hub port 1, port 3), the same after every re-enumeration as long as the modem stays
    plugged into the same hub port."""

    tty: str
    usb_path: str
    interface: int | None
    usb_id: str | None  # "vvvv:pppp"
    serial: str | None
    manufacturer: str | None
    product: str | None


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip() or None
    except OSError:
        return None


def tty_name(port: str, root: Path) -> str | None:
    """The kernel name of ``port`` (``ttyUSB2``) as ``<root>/sys/class/tty`` knows it,
    following the port's symlinks (by-id, the emulator's links) hop by hop."""
    classes = root / "sys" / "class" / "tty"
    path = port
    for _ in range(MAX_HOPS):
        name = os.path.basename(path)
        if (classes / name).exists():
            return name
        try:
            target = os.readlink(path)
        except OSError:
            return None
        path = os.path.join(os.path.dirname(path), target)
    return None


def place(port: str, root: Path) -> UsbPlace | None:
    """Where ``port`` sits on USB, or None when sysfs does not know it as a USB tty (a
    pty, a serial URL, an on-board UART)."""
    tty = tty_name(port, root)
    if tty is None:
        return None
    device = Path(os.path.realpath(root / "sys" / "class" / "tty" / tty / "device"))
    interface: int | None = None
    here = device
    while here != here.parent and root.resolve() in here.parents:
        number = _read(here / "bInterfaceNumber")
        if number is not None and interface is None:
            try:
                interface = int(number, 16)
            except ValueError:
                interface = None
        vendor = _read(here / "idVendor")
        if vendor is not None:
            product = _read(here / "idProduct")
            return UsbPlace(tty, here.name, interface, f"{vendor}:{product}".lower() if product else None,
                            _read(here / "serial"), _read(here / "manufacturer"), _read(here / "product"))
        here = here.parent
    return None
