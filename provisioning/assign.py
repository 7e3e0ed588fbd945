"""``provision assign``: the installer's decisions about the SIMs — a label (what is
written on the card or the slot), pools (e.g. one per creditor), traffic limits per SIM,
per operator and for the whole bank, a modem's slot count, a number given by hand — kept
in the provisioning state for ``write-config``.

Targets: ``all``; an ICCID; a modem id (``m01``: its SIMs; ``m01/1``: the SIM in slot 1);
a label; ``operator:<MCCMNC>`` (that operator's limits); ``bank`` (the bank-wide
``[limits]``). Limits are ``calls_per_hour``, ``calls_per_day``, ``sms_per_hour``,
``sms_per_day``: counts, 0 or more.
"""
from __future__ import annotations

from typing import Any, Final

from common.phone import normalise

from .state import ProvisioningError

#: The limits a SIM, an operator or the bank can be given (appliance.config's
#: OperatorLimitsEntry keys; [limits] has more, set in the config by hand).
LIMIT_KEYS: Final = ("calls_per_hour", "calls_per_day", "sms_per_hour", "sms_per_day")


def check_limits(limits: dict[str, int | None]) -> dict[str, int]:
    """Only known keys, whole counts of 0 or more; None values are left out."""
    out: dict[str, int] = {}
    for key, value in limits.items():
        if key not in LIMIT_KEYS:
            raise ProvisioningError(f"limit {key!r}: unknown; fix: one of {', '.join(LIMIT_KEYS)}")
        if value is None:
            continue
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ProvisioningError(f"limit {key}: {value!r} is not a count; fix: a whole number, 0 or more")
        out[key] = value
    return out


def resolve(data: dict[str, Any], target: str) -> list[str]:
    """The ICCIDs ``target`` names (see the module's docstring); an unknown target is an
    error naming what is known."""
    sims: dict[str, Any] = data["sims"]
    if target == "all":
        return sorted(sims)
    if target in sims:
        return [target]
    modem_id, _, slot = target.partition("/")
    by_modem = [i for i, s in sims.items() if s.get("modem_id") == modem_id
                and (not slot or str(s.get("slot")) == slot)]
    if by_modem:
        return sorted(by_modem, key=lambda i: (sims[i].get("slot", 0), i))
    by_label = [i for i, s in sims.items() if s.get("label") == target]
    if by_label:
        return sorted(by_label)
    modems = sorted(str(m.get("id")) for m in data["modems"].values())
    raise ProvisioningError(f"target {target!r}: no such SIM, modem or label; fix: an ICCID, a modem id "
                            f"({', '.join(modems[:8]) or 'none scanned: run `provision scan`'}), m01/1, a label, "
                            "operator:26001, bank or all (run `provision sims` first for ICCIDs)")


def modem_entry(data: dict[str, Any], modem_id: str) -> dict[str, Any]:
    for entry in data["modems"].values():
        if entry.get("id") == modem_id:
            return entry
    raise ProvisioningError(f"modem {modem_id!r}: not scanned; fix: run `provision scan` (modems: "
                            f"{', '.join(sorted(str(m.get('id')) for m in data['modems'].values())) or 'none'})")


def assign(data: dict[str, Any], targets: list[str], *, label: str | None = None, pools: list[str] | None = None,
           limits: dict[str, int | None] | None = None, number: str | None = None,
           slots: int | None = None) -> dict[str, Any]:
    """Apply the decisions to ``targets``; returns what changed (``sims``: ICCIDs,
    ``operators``, ``bank``, ``modems``)."""
    limits = check_limits(limits or {})
    changed: dict[str, Any] = {"sims": [], "operators": [], "bank": False, "modems": []}
    for target in targets:
        if target == "bank":
            if label or pools is not None or number or slots:
                raise ProvisioningError("bank: only limits apply to the whole bank; fix: give the other options a SIM")
            data["limits"].update(limits)
            changed["bank"] = True
            continue
        if target.startswith("operator:"):
            mcc_mnc = target.split(":", 1)[1]
            if not (mcc_mnc.isdigit() and len(mcc_mnc) in (5, 6)):
                raise ProvisioningError(f"target {target!r}: an operator is its MCC+MNC, 5 or 6 digits "
                                        "(e.g. operator:26001)")
            if label or pools is not None or number or slots:
                raise ProvisioningError(f"{target}: only limits apply to an operator")
            data["operator_limits"].setdefault(mcc_mnc, {}).update(limits)
            changed["operators"].append(mcc_mnc)
            continue
        if slots is not None:
            if not 1 <= slots <= 8:
                raise ProvisioningError(f"--slots {slots}: a modem has 1 to 8 SIM slots")
            modem_entry(data, target.split("/")[0])["slots"] = slots
            changed["modems"].append(target.split("/")[0])
            if not (label or pools is not None or limits or number):
                continue
        iccids = resolve(data, target)
        if number is not None and len(iccids) != 1:
            raise ProvisioningError(f"--number: {target!r} names {len(iccids)} SIMs; fix: give one SIM (its ICCID "
                                    "or m01/0)")
        for iccid in iccids:
            sim = data["sims"][iccid]
            if label is not None:
                sim["label"] = label
            if pools is not None:
                sim["pools"] = sorted(set(pools))
            if limits:
                sim.setdefault("limits", {}).update(limits)
            if number is not None:
                try:
                    sim["msisdn"] = normalise(number)
                except ValueError as exc:
                    raise ProvisioningError(f"--number {number!r}: {exc}") from None
                sim["number_source"] = "hand"
            changed["sims"].append(iccid)
    return changed
