"""``provision write-config``: the appliance TOML from what was scanned, read and
assigned — one ``[[modem]]`` per modem with a ready SIM (its by-id AT port and audio
port, or with ``udev_names`` the ``/dev/simrotor/imei-<IMEI>.at|audio`` names the udev
rules give them; slots, PIN, pools), ``[limits]`` and ``[operator_limits]`` from ``assign`` — merged into
the existing config, so the installer's other settings stay.

It never drops or changes an existing setting silently: when the file exists and the new
text removes or changes any line, nothing is written; the diff is shown and ``--force``
writes it. Whatever is written loads with ``appliance.config`` first (a config the
appliance would refuse is not written). The modems written become the provisioned
inventory (``provision inventory`` compares against it).
"""
from __future__ import annotations

import difflib
import secrets
import socket
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from appliance.config import ConfigError, parse_config

from .state import ProvisioningError
from .tomlout import dumps

#: Where the appliance keeps its store when installed (`provision install` makes it).
DEFAULT_STORE: Final = "/var/lib/simrotor/appliance.db"


@dataclass(slots=True)
class ConfigPlan:
    """What ``write-config`` would write: the text, the diff against the file, the lines
    it removes or changes (then ``--force`` is needed), and what it could not express."""

    path: str
    text: str
    diff: str
    removed: list[str]
    written: bool = False
    modems: list[str] = field(default_factory=list)
    left_out: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


#: The names `provision udev`'s rules give a modem's ports (systemd/99-simrotor.rules.in).
UDEV_NAME: Final = "/dev/simrotor/imei-{imei}.{role}"


def _modem_tables(data: dict[str, Any], existing: dict[str, dict[str, Any]], udev_names: bool
                  ) -> tuple[list[dict[str, Any]], dict[tuple[str, int], list[str]], list[str], list[str], dict]:
    tables: list[dict[str, Any]] = []
    comments: dict[tuple[str, int], list[str]] = {}
    left_out: list[str] = []
    warnings: list[str] = []
    inventory: dict[str, Any] = {}
    modems = sorted((m for m in data["modems"].values() if m.get("present", True)), key=lambda m: str(m["id"]))
    for m in sorted((m for m in data["modems"].values() if not m.get("present", True)), key=lambda m: str(m["id"])):
        left_out.append(f"{m['id']} ({m.get('model')}, IMEI {m.get('imei')}): not found at the last scan (last seen "
                        f"{m.get('last_seen')} on USB {m.get('usb_path') or '-'})")
    for m in modems:
        sims = sorted((s for i, s in data["sims"].items() if s.get("modem_id") == m["id"]
                       and s.get("imei") == m.get("imei")), key=lambda s: s.get("slot", 0))
        iccids = {id(s): i for i, s in data["sims"].items()}
        ready = [s for s in sims if s.get("pin_state") == "ready"]
        if not ready:
            why = ", ".join(f"slot {s.get('slot')}: {s.get('pin_state')}" for s in sims) or "no SIM read (run `provision sims`)"
            left_out.append(f"{m['id']} ({m.get('model')}, IMEI {m.get('imei')}): no ready SIM ({why})")
            continue
        table: dict[str, Any] = dict(existing.get(str(m["id"]), {}))  # keys we do not write (vendor) stay
        port, audio = m["at_port"], m.get("audio_port")
        if udev_names:
            if m.get("imei") and m.get("usb_path"):
                port = UDEV_NAME.format(imei=m["imei"], role="at")
                audio = UDEV_NAME.format(imei=m["imei"], role="audio") if audio else None
            else:
                warnings.append(f"{m['id']}: no IMEI or USB place, so no udev name: its scanned port is written")
        table.update({"id": m["id"], "port": port})
        if audio:
            table["audio"] = audio
        else:
            table.pop("audio", None)
        table["slots"] = int(m.get("slots") or 1)
        pins = {s["pin"] for s in sims if s.get("pin")}
        if pins:
            table["pin"] = next(p for s in sims if (p := s.get("pin")))
            if len(pins) > 1:
                warnings.append(f"{m['id']}: its SIMs have different PINs; [[modem]] pin takes slot "
                                f"{next(s.get('slot') for s in sims if s.get('pin'))}'s (one pin per modem)")
        pools = sorted({p for s in sims for p in s.get("pools", [])})
        if pools:
            table["pools"] = pools
            if len({tuple(s.get("pools", [])) for s in sims}) > 1:
                warnings.append(f"{m['id']}: its SIMs are in different pools; the modem gets all of them "
                                f"({', '.join(pools)}): pools are per modem in appliance.toml")
        for s in sims:
            if s.get("limits"):
                warnings.append(f"{m['id']} slot {s.get('slot')} (ICCID {iccids[id(s)]}): per-SIM limits "
                                f"{s['limits']} are kept in the provisioning state only: appliance.toml has no "
                                "per-SIM table; use bank or operator limits")
        note = [f"{m['id']}: {m.get('model')} IMEI {m.get('imei')}, USB {m.get('usb_path') or '-'}"]
        for s in sims:
            bits = [f"slot {s.get('slot')}", f"ICCID {iccids[id(s)]}"]
            if s.get("label"):
                bits.append(f"label {s['label']!r}")
            if s.get("operator") or s.get("mcc_mnc"):
                bits.append(str(s.get("operator") or s.get("mcc_mnc")))
            if s.get("msisdn"):
                bits.append(str(s["msisdn"]))
            if s.get("pin_state") != "ready":
                bits.append(f"not ready: {s.get('pin_state')}")
            note.append("  " + ", ".join(bits))
        comments[("modem", len(tables))] = note
        tables.append(table)
        inventory[str(m.get("imei") or m["at_port"])] = {"id": m["id"], "usb_path": m.get("usb_path"),
                                                         "at_port": m["at_port"], "model": m.get("model")}
    return tables, comments, left_out, warnings, inventory


def plan_config(data: dict[str, Any], path: Path, *, appliance_id: str | None = None,
                store: str | None = None, udev_names: bool = False) -> tuple[ConfigPlan, dict[str, Any]]:
    """The config ``write-config`` would write at ``path``, checked by the appliance's
    loader; also the inventory it provisions."""
    old_text = path.read_text(encoding="utf-8") if path.exists() else None
    try:
        existing = tomllib.loads(old_text) if old_text is not None else {}
    except tomllib.TOMLDecodeError as exc:
        raise ProvisioningError(f"{path}: not TOML ({exc}); fix it by hand first, or write elsewhere "
                                "(--config)") from None
    doc: dict[str, Any] = dict(existing)
    section = dict(doc.get("appliance", {}))
    section.setdefault("id", appliance_id or socket.gethostname())
    if appliance_id:
        section["id"] = appliance_id
    section.setdefault("store", store or DEFAULT_STORE)
    if store:
        section["store"] = store
    if "token" not in section and section.get("listen", "127.0.0.1:8470") != "":
        # The local API listens by default and needs a bearer token (docs/appliance.md):
        # 24 random bytes, as the docs' own recipe.
        section["token"] = secrets.token_urlsafe(24)
        made_token = True
    else:
        made_token = False
    doc["appliance"] = section
    by_id = {str(m.get("id")): m for m in existing.get("modem", []) if isinstance(m, dict)}
    tables, comments, left_out, warnings, inventory = _modem_tables(data, by_id, udev_names)
    if not tables:
        raise ProvisioningError("no modem with a ready SIM to write; fix: `provision scan`, then `provision sims "
                                "--pin-file FILE` until SIMs read ready" + (f" (left out: {'; '.join(left_out)})"
                                                                            if left_out else ""))
    if made_token:
        warnings.append("[appliance] token: a new random token for the local API (the technician page asks for it)")
    if "emulator_state" in doc:
        warnings.append("emulator_state is removed: the scanned [[modem]] tables replace the emulator's")
        doc.pop("emulator_state")
    kept = [i for i in by_id if i not in {t["id"] for t in tables}]
    if kept:
        warnings.append(f"[[modem]] {', '.join(kept)} of the old config are not in this scan and are removed")
    doc["modem"] = tables
    if data.get("limits"):
        doc["limits"] = {**doc.get("limits", {}), **data["limits"]}
    if data.get("operator_limits"):
        merged = dict(doc.get("operator_limits", {}))
        for op, limits in data["operator_limits"].items():
            merged[op] = {**merged.get(op, {}), **limits}
        doc["operator_limits"] = merged
    # Keys first, then tables, in the loader's order: appliance, modem, the rest as found.
    ordered = {k: v for k, v in doc.items() if not isinstance(v, (dict, list)) or k not in ("appliance", "modem")}
    ordered = {**{k: v for k, v in ordered.items() if not isinstance(v, (dict, list))},
               "appliance": doc["appliance"], "modem": doc["modem"],
               **{k: v for k, v in ordered.items() if isinstance(v, (dict, list))}}
    text = "# simrotor appliance: written by `simrotor provision write-config`\n\n" + dumps(ordered, comments)
    try:
        parse_config(tomllib.loads(text), source=str(path), base_dir=path.parent)
    except ConfigError as exc:
        raise ProvisioningError(f"the config would not load: {exc}") from None
    diff_lines = list(difflib.unified_diff((old_text or "").splitlines(), text.splitlines(), fromfile=str(path),
                                           tofile=f"{path} (new)", lineterm=""))
    removed = [line[1:] for line in diff_lines if line.startswith("-") and not line.startswith("---")
               and line[1:].strip() and not line[1:].lstrip().startswith("#")]
    plan = ConfigPlan(str(path), text, "\n".join(diff_lines), removed if old_text is not None else [],
                      modems=[t["id"] for t in tables], left_out=left_out, warnings=warnings)
    return plan, inventory


def write_config(data: dict[str, Any], path: Path, *, force: bool = False, now: str,
                 appliance_id: str | None = None, store: str | None = None, udev_names: bool = False) -> ConfigPlan:
    """Write the config when it drops nothing (or ``force``); record the inventory."""
    plan, inventory = plan_config(data, path, appliance_id=appliance_id, store=store, udev_names=udev_names)
    if plan.removed and not force:
        return plan
    if path.exists() and path.read_text(encoding="utf-8") == plan.text:
        plan.written = False
    else:
        tmp = path.with_name(f".{path.name}.new")
        tmp.write_text(plan.text, encoding="utf-8")
        tmp.chmod(0o600)  # it holds SIM PINs
        tmp.replace(path)
        plan.written = True
    data["inventory"] = {"provisioned_at": now, "config": str(path), "modems": inventory}
    return plan
