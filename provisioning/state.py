"""The provisioning state file (``provisioning.json``, beside the appliance config): what
``scan`` found, what ``sims`` read, what ``assign`` decided, the PINs SIMs rejected, and
the inventory ``write-config`` last provisioned.

One JSON document, written atomically (temp file + rename) with mode 0600: it holds PINs
that unlocked SIMs (the config needs them for the next power-up) and rejected PINs as
salted hashes (``modem_drivers.pin.RejectedPin``).

Shape::

    {"version": 1,
     "modems": {"<imei>": {"id": "m01", "at_port", "audio_port", "manufacturer", "model", "revision",
                           "dialect", "usb_path", "usb_id", "slots", "last_seen"}},
     "sims": {"<iccid>": {"imei", "slot", "imsi", "mcc_mnc", "operator", "msisdn", "pin_state", "pin",
                          "label", "pools", "limits"}},
     "limits": {...}, "operator_limits": {"26001": {...}},
     "pin_marks": {"iccid:…": {...}},
     "inventory": {"provisioned_at", "modems": {"<imei>": {"id", "usb_path", "at_port", "model"}}}}
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Final

from common.files import write_json_atomic
from modem_drivers.pin import MemoryPinMarks

STATE_VERSION: Final = 1
#: The state file's name when none is given: beside the appliance config it describes.
DEFAULT_STATE: Final = "provisioning.json"


class ProvisioningError(Exception):
    """Bad input to a provisioning step: the message names what and where, and the fix."""


def empty() -> dict[str, Any]:
    return {"version": STATE_VERSION, "modems": {}, "sims": {}, "limits": {}, "operator_limits": {},
            "pin_marks": {}, "inventory": None}


def load_state(path: Path) -> dict[str, Any]:
    """The state at ``path``, or an empty one when the file does not exist yet."""
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return empty()
    except OSError as exc:
        raise ProvisioningError(f"{path}: cannot read the provisioning state ({exc})") from None
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ProvisioningError(f"{path}: not JSON ({exc}); fix: restore it, or move it away and scan again") from None
    if not isinstance(data, dict) or data.get("version") != STATE_VERSION:
        raise ProvisioningError(f"{path}: not a provisioning state of version {STATE_VERSION}; fix: point --state "
                                "at the file `provision scan` wrote")
    base = empty()
    base.update(data)
    return base


def save_state(path: Path, data: dict[str, Any]) -> None:
    """Write atomically, readable by its owner only (it holds the PINs that worked)."""
    write_json_atomic(path, data, private=True, sort_keys=True)


def modem_id_for(data: dict[str, Any], imei: str) -> str:
    """The modem's config id: the one it got when first scanned, else the next free
    ``mNN``; so a rescan never renames a modem (its SIMs' history stays with it)."""
    known = data["modems"].get(imei)
    if known and known.get("id"):
        return str(known["id"])
    taken = {str(m.get("id")) for m in data["modems"].values()}
    n = 1
    while f"m{n:02d}" in taken:
        n += 1
    return f"m{n:02d}"


class StatePinMarks(MemoryPinMarks):
    """``modem_drivers.pin.PinMarks`` kept in the state document: a PIN a SIM rejected
    during ``sims`` is not tried again by the next run (nor by the appliance, which keeps
    its own marks: it tries a PIN at most once too). The marks live in the document's
    ``pin_marks``, which ``save_state`` writes."""

    def __init__(self, data: dict[str, Any]) -> None:
        self._marks = data.setdefault("pin_marks", {})

    def pin_mark(self, sim_key: str) -> dict[str, Any] | None:
        mark = self._marks.get(sim_key)
        return dict(mark) if mark is not None else None  # a copy: the caller may change it
