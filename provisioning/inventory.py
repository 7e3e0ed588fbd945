"""``provision inventory``: what a scan finds now against what ``write-config`` last
provisioned — "expected 32 modems, found 29: missing IMEI …, last seen on hub port …" —
so a flaky USB hub is caught at install time, not by a silent drop in capacity.

Modems are matched by IMEI (a modem keeps it whatever port it enumerates on); one found
on another hub port is reported as moved (its by-id name may have changed with it).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .scan import ScanResult, modem_key
from .state import ProvisioningError


@dataclass(slots=True)
class InventoryReport:
    expected: int
    found: int
    missing: list[dict[str, Any]] = field(default_factory=list)
    moved: list[dict[str, Any]] = field(default_factory=list)
    new: list[dict[str, Any]] = field(default_factory=list)
    provisioned_at: str | None = None
    summary: str = ""

    @property
    def complete(self) -> bool:
        return not self.missing


def compare(data: dict[str, Any], result: ScanResult) -> InventoryReport:
    """Compare ``result`` with the provisioned inventory in the state ``data``."""
    provisioned = data.get("inventory")
    if not provisioned or not provisioned.get("modems"):
        raise ProvisioningError("no provisioned inventory yet; fix: run `provision write-config` once the bank is "
                                "scanned and its SIMs read")
    expected: dict[str, Any] = provisioned["modems"]
    found = {modem_key(m, result): m for m in result.modems}
    report = InventoryReport(len(expected), sum(1 for k in found if k in expected),
                             provisioned_at=provisioned.get("provisioned_at"))
    for key, was in sorted(expected.items(), key=lambda kv: str(kv[1].get("id"))):
        now = found.get(key)
        if now is None:
            last = data["modems"].get(key, {})
            report.missing.append({"id": was.get("id"), "imei": key, "model": was.get("model"),
                                   "usb_path": was.get("usb_path"), "at_port": was.get("at_port"),
                                   "last_seen": last.get("last_seen")})
        elif now.usb_path != was.get("usb_path"):
            report.moved.append({"id": was.get("id"), "imei": key, "from": was.get("usb_path"), "to": now.usb_path,
                                 "at_port": now.at_port})
    for key, m in found.items():
        if key not in expected:
            report.new.append({"imei": m.imei, "model": m.model, "usb_path": m.usb_path, "at_port": m.at_port})
    report.summary = summarise(report)
    return report


def summarise(r: InventoryReport) -> str:
    head = f"expected {r.expected} modems, found {r.found}"
    parts = []
    for m in r.missing:
        where = f"hub port {m['usb_path']}" if m.get("usb_path") else f"port {m['at_port']}"
        seen = f" at {m['last_seen']}" if m.get("last_seen") else ""
        parts.append(f"missing IMEI {m['imei']} ({m['id']}, {m['model']}), last seen on {where}{seen}")
    for m in r.moved:
        parts.append(f"{m['id']} (IMEI {m['imei']}) moved from hub port {m['from']} to {m['to']}")
    if r.new:
        parts.append(f"{len(r.new)} modem(s) not provisioned: " + ", ".join(f"IMEI {m['imei']}" for m in r.new))
    return head + (": " + "; ".join(parts) if parts else "")
