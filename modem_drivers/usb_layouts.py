"""Which USB interface of a modem speaks AT and which carries call audio, per USB id.

A USB modem shows one tty per serial interface (diagnostics, NMEA, AT, PPP modem, audio);
only one or two of them answer AT and at most one carries PCM. The installer's scan
(``provisioning/scan.py``) groups a modem's ttys by their USB device in sysfs and reads
this table to tell them apart; the emulator (``emulator/_sysfs.py``) lays its fake sysfs
tree out from the same rows, so both sides agree by construction and a row that is wrong
for real hardware is wrong in one place.

Each row names its source. Rows marked ``assumed`` follow the family's usual layout
without a vendor page read for that exact model.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True, slots=True)
class UsbLayout:
    """One modem model's USB face: ids, strings, and its interfaces' jobs."""

    vendor_id: str  # idVendor, 4 hex digits as sysfs writes it
    product_id: str  # idProduct
    manufacturer: str  # the USB manufacturer string (by-id names start with it)
    product: str
    interfaces: tuple[int, ...]  # bInterfaceNumber of every serial interface
    at: tuple[int, ...]  # interfaces that answer AT, preferred first
    audio: int | None  # the interface carrying 8 kHz PCM during calls, if any
    source: str


#: USB id "vvvv:pppp" → layout.
LAYOUTS: Final[dict[str, UsbLayout]] = {
    "1e0e:9001": UsbLayout(
        "1e0e", "9001", "SimTech, Incorporated", "SimTech, Incorporated", (0, 1, 2, 3, 4), (2, 3), 4,
        "SIMCom SIM7500_SIM7600 Series Linux USB User Guide: 0 DIAG, 1 NMEA, 2 AT, 3 modem, 4 USB audio"),
    "2c7c:0125": UsbLayout(
        "2c7c", "0125", "Quectel", "EG25-G", (0, 1, 2, 3, 4), (2, 3), 4,
        "Quectel UMTS/LTE Linux USB driver guide: 0 DM, 1 NMEA, 2 AT, 3 modem; the PCM tty at 4 is the "
        "emulator's (assumed: EC25 hardware carries USB audio as UAC, not a tty)"),
    "05c6:9090": UsbLayout(
        "05c6", "9090", "Quectel, Incorporated", "Quectel UC15", (0, 1, 2, 3), (2, 3), None,
        "Quectel UC15 Linux USB driver guide: 0 DM, 1 NMEA, 2 AT, 3 modem"),
    "12d1:1001": UsbLayout(
        "12d1", "1001", "HUAWEI Technology", "HUAWEI Mobile", (0, 1, 2), (2, 0), 1,
        "chan_dongle's E1550 setup: data (AT) ttyUSB2 = interface 2, audio ttyUSB1 = interface 1"),
    "12d1:1436": UsbLayout(
        "12d1", "1436", "HUAWEI Technology", "HUAWEI Mobile", (0, 1, 2), (2, 0), 1,
        "chan_dongle's E173 setup as the E1550's (assumed for this product id)"),
    # UART-only modules (SIM800, M35) and plain 27.007 boards reach USB through a
    # USB-UART bridge: one interface, AT only.
    "1a86:7523": UsbLayout(
        "1a86", "7523", "1a86", "USB2.0-Serial", (0,), (0,), None,
        "WCH CH340 bridge: one UART interface"),
    "10c4:ea60": UsbLayout(
        "10c4", "ea60", "Silicon Labs", "CP2102 USB to UART Bridge Controller", (0,), (0,), None,
        "Silicon Labs CP210x bridge: one UART interface"),
}

#: The emulator's models (``+CGMM``) → the USB id their fake sysfs tree shows.
MODEL_USB: Final[dict[str, str]] = {
    "SIMCOM_SIM7600E-H": "1e0e:9001",
    "SIM800": "1a86:7523",
    "EC25": "2c7c:0125",
    "M35": "10c4:ea60",
    "UC15": "05c6:9090",
    "E1550": "12d1:1001",
    "E173": "12d1:1436",
    "GSM-27007": "1a86:7523",
}


def layout_for(usb_id: str | None) -> UsbLayout | None:
    """The layout of ``vvvv:pppp`` (case-insensitive), or None for an unknown device."""
    return LAYOUTS.get(usb_id.lower()) if usb_id else None
