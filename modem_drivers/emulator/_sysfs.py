"""A fake sysfs and /dev/serial/by-id tree for the emulated modems, so the installer's
scan (``simrotor provision scan --sysfs-root DIR``) groups ttys into USB modems without
hardware.

Under ``root`` it writes what Linux shows for USB serial modems (the usb-serial "option"
driver's shape)::

    sys/devices/pci0000:00/0000:00:14.0/usb1/1-<hub>/1-<hub>.<port>/    idVendor, idProduct, serial, ...
    .../1-<hub>.<port>/1-<hub>.<port>:1.<n>/                             bInterfaceNumber (hex)
    .../1-<hub>.<port>:1.<n>/<tty>/tty/<tty>/device -> ../../../<tty>
    sys/class/tty/<tty> -> ../../devices/.../1-<hub>.<port>:1.<n>/<tty>/tty/<tty>
    dev/serial/by-id/usb-<manufacturer>_<product>_<serial>-if<nn>-port0 -> <the port link>

The tty's kernel name is the port link's name (``ttyEMU000``, ``ttyEMU000-audio``). Each
modem's USB id and which interface is AT and which audio come from
``modem_drivers.usb_layouts`` (the table the scan reads too); only the AT and audio ports
exist as ttys, as only those are served.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Final

from ..usb_layouts import LAYOUTS, MODEL_USB

if TYPE_CHECKING:
    from ._modem import VirtualModem

#: Ports per hub: the common 7-port USB 2.0 hub (two 4-port hub chips chained).
HUB_PORTS: Final = 7
#: Where the host controller sits (an Intel xHCI at PCI 00:14.0, as on most PCs).
CONTROLLER: Final = "devices/pci0000:00/0000:00:14.0/usb1"


def usb_path(index: int) -> str:
    """The sysfs name of the ``index``-th modem's USB device: bus 1, hub, port."""
    return f"1-{index // HUB_PORTS + 1}.{index % HUB_PORTS + 1}"


def _by_id_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.+-]", "_", text)  # udev's replace_whitespace/replace_chars


def _write(path: Path, value: str) -> None:
    path.write_text(value + "\n")


def _link(path: Path, target: str) -> None:
    if path.is_symlink() or path.exists():
        path.unlink()
    os.symlink(target, path)


def lay_out(root: Path, modems: list[VirtualModem]) -> Path:
    """Write the tree for ``modems`` under ``root`` (created; an old tree is overwritten)."""
    sys_root = root / "sys"
    by_id = root / "dev" / "serial" / "by-id"
    (sys_root / "class" / "tty").mkdir(parents=True, exist_ok=True)
    by_id.mkdir(parents=True, exist_ok=True)
    for index, modem in enumerate(modems):
        layout = LAYOUTS[MODEL_USB.get(modem.model, "1a86:7523")]
        name = usb_path(index)
        where = f"{CONTROLLER}/{name.split('.')[0]}/{name}"  # the hub's device holds its ports'
        device = sys_root / where
        device.mkdir(parents=True, exist_ok=True)
        serial = modem.imei
        for key, value in (("idVendor", layout.vendor_id), ("idProduct", layout.product_id),
                           ("manufacturer", layout.manufacturer), ("product", layout.product),
                           ("serial", serial), ("busnum", "1"), ("devpath", name.split("-", 1)[1])):
            _write(device / key, value)
        ports = {layout.at[0]: modem.port}
        if modem.audio_port is not None and layout.audio is not None:
            ports[layout.audio] = modem.audio_port
        for number in layout.interfaces:
            interface = device / f"{name}:1.{number}"
            interface.mkdir(exist_ok=True)
            _write(interface / "bInterfaceNumber", f"{number:02x}")
            port = ports.get(number)
            if port is None:
                continue
            tty = Path(port).name
            tty_dir = interface / tty / "tty" / tty
            tty_dir.mkdir(parents=True, exist_ok=True)
            _link(tty_dir / "device", f"../../../{tty}")
            _link(sys_root / "class" / "tty" / tty, f"../../{where}/{name}:1.{number}/{tty}/tty/{tty}")
            ident = _by_id_name(f"{layout.manufacturer}_{layout.product}_{serial}")
            _link(by_id / f"usb-{ident}-if{number:02d}-port0", str(port))
    return root
