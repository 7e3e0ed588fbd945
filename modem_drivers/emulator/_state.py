"""The state file other processes read: ports, SIMs, control URL, appliance config.

Written atomically (temp file + rename in the same directory), so a reader polling for it
never sees half a document.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from common.files import write_json_atomic

if TYPE_CHECKING:
    from ._modem import VirtualModem

STATE_VERSION = 1


def _toml_str(value: str) -> str:
    return json.dumps(value)  # a JSON string literal is a valid TOML basic string


def appliance_config(modems: list[VirtualModem]) -> str:
    """One ``[[modem]]`` table per modem: id, port, vendor, slots (the number of SIM slots)."""
    blocks = ["# simrotor appliance: modems served by `simrotor emulate`\n"]
    for m in modems:
        blocks.append(
            "[[modem]]\n"
            f"id = {_toml_str(m.id)}\n"
            f"port = {_toml_str(m.port)}\n"
            f"vendor = {_toml_str(m.vendor)}\n"
            f"slots = {len(m.sims)}\n"
        )
    return "\n".join(blocks)


def modem_entry(m: VirtualModem) -> dict[str, Any]:
    return {
        "id": m.id, "port": m.port, "audio_port": m.audio_port, "vendor": m.vendor, "model": m.model, "imei": m.imei,
        "active_slot": m.active_slot, "sims": [s.public() for s in m.sims],
    }


def write_atomic(path: Path, document: dict[str, Any]) -> None:
    write_json_atomic(path, document)
