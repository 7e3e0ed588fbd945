"""Every SIM of every slot, as the page's "SIMs" panel lists it — not only each modem's
active one: a SIM quarantined in a slot the modem is not on is the one a technician
must find.

Per SIM: the modem and slot (and whether it is the active one), the ICCID and number
masked but their last 3 digits, operator, pools, calls and SMS in the rolling day and
hour against their caps (the rotation policy's own counts: what the caps hold it to),
talk time, last use, its last balance with the currency (the balance checker's readings,
kept in the store: a SIM is only checked while its slot is active), and its standing with the reason: quarantined with the evidence,
locked by which rule until when, held by a cap or a pause, or out of rotation because
the SIM is locked by its PIN or was never read.
"""
from __future__ import annotations

import time
from typing import Any

from common.phone import mask
from modem_drivers.types import PinState

from ..bank import Bank
from ..rotation import RotationPolicy
from .words import RULES, sim_tail


def _why(usage: dict[str, Any] | None, pin: str | None) -> str:
    if usage is None:
        return f"not in rotation: SIM {pin.replace('_', ' ') if pin else 'not read'}"
    if usage["quarantine"]:
        return "; ".join(usage["quarantine"])
    lines = []
    for lock in usage["locks"]:
        until = "until released" if lock["until"] is None else "until " + _utc(lock["until"])
        last = lock["evidence"][-1] if lock["evidence"] else ""
        lines.append(f"locked ({RULES.get(lock['rule'], lock['rule'])}) {until}" + (f": {last}" if last else ""))
    return "; ".join(lines)


def _utc(t: float) -> str:
    return time.strftime("%H:%M UTC", time.gmtime(t))


def sim_rows(bank: Bank, policy: RotationPolicy, now: float,
             balances: dict[str, dict[str, Any]] | None = None,
             quality: dict[str, dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """One row per slot of every modem, in modem then slot order (see the module docstring);
    ``balances`` are the balance checker's readings by SIM (``{balance, currency, at}``),
    ``quality`` the last hour's ASR, ACD and PDD by SIM (technician/traffic.py)."""
    balances = balances or {}
    quality = quality or {}
    rows: list[dict[str, Any]] = []
    for ch in bank.channels.values():
        for slot in range(ch.slots):
            s = ch.sims.get(slot)
            info = s.info if s else None
            sim_id = s.sim_id if s else None
            pin = info.pin_state.value if info else None
            usage = policy.usage(sim_id, now) if sim_id and policy.knows(sim_id) else None
            reading = balances.get(sim_id) if sim_id else None
            if usage is not None:
                state = usage["state"]
            elif info is None:
                state = "unread"
            elif info.pin_state is not PinState.READY:
                state = "pin_locked"
            else:
                state = "out_of_rotation"
            rows.append({
                "channel": ch.id,
                "slot": slot,
                "active": slot == ch.active_slot,
                "sim": sim_tail(sim_id) if sim_id else None,
                "msisdn": mask(info.msisdn) if info and info.msisdn else None,
                "operator": info.operator_label if info else None,
                "mcc_mnc": info.mcc_mnc if info else None,
                "pools": list(ch.pools),
                "state": state,
                "why": mask(_why(usage, pin)) if (usage is None or usage["quarantine"] or usage["locks"]) else "",
                "calls_day": usage["calls_day"] if usage else None,
                "calls_hour": usage["calls_hour"] if usage else None,
                "sms_day": usage["sms_day"] if usage else None,
                "sms_hour": usage["sms_hour"] if usage else None,
                "talk_seconds_day": usage["talk_seconds_day"] if usage else None,
                "last_used": usage["last_used"] if usage else None,
                "limits": usage["limits"] if usage else None,
                "balance": reading.get("balance") if reading else None,
                "balance_currency": reading.get("currency") if reading else None,
                "balance_at": reading.get("at") if reading else None,
                "quality": quality.get(sim_id) if sim_id else None,
                "can_quarantine": usage is not None and not usage["quarantine"],
                "can_release": usage is not None and bool(usage["quarantine"] or usage["locks"]),
            })
    return rows
