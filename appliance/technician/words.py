"""The events table in words, for the page's "Events" panel: state changes and errors
only, one sentence each, every ICCID and number masked but its last 3 digits.

Routine rows are left out: balance checks (``balance``), slot switches that worked
(a move into ``switching_sim`` and out of it to ``idle``) and a modem coming up at start
(``opening`` → ``idle``). A row written for a rate-bound window (``suppressed``) says
how many like it were held back. A kind this module does not know is still shown, as
"kind subject: key value, …", so a new event is never hidden.
"""
from __future__ import annotations

import time
from typing import Any, Final

from common.phone import mask

#: Event kinds that are never trouble.
ROUTINE_KINDS: Final = frozenset({"balance"})
#: Channel moves that are routine: (from, to); None matches any state.
ROUTINE_MOVES: Final = (("idle", "switching_sim"), ("cooling_down", "switching_sim"), ("quarantined", "switching_sim"),
                        ("switching_sim", "idle"), ("opening", "idle"), ("opening", "switching_sim"))
#: Lock rules in words (appliance/rotation/locks.py).
RULES: Final = {
    "consecutive_failed": "calls failing in a row",
    "consecutive_not_alerting": "calls never ringing in a row",
    "consecutive_unanswered": "calls unanswered in a row",
    "consecutive_short": "short calls in a row",
    "low_balance": "balance below the minimum",
    "quarantine": "quarantine",
}
#: Rows the page's look-up reads, newest first, before routine rows are dropped: bounds
#: the work of each look (the table holds up to 100,000 rows; 500 rows decode in ~2 ms)
#: whatever the mix. Trouble older than the newest 500 events is in the store.
SCAN_ROWS: Final = 500


def sim_tail(sim_id: str | None) -> str:
    """An ICCID as the page shows it: masked but its last 3 digits (common.phone.mask)."""
    return mask(sim_id) if sim_id else "?"


def _hhmm(t: float | None) -> str:
    return "until released" if t is None else "until " + time.strftime("%H:%M UTC", time.gmtime(t))


def routine(kind: str, detail: dict[str, Any]) -> bool:
    if kind in ROUTINE_KINDS:
        return True
    if kind == "channel":
        return (detail.get("from"), detail.get("to")) in ROUTINE_MOVES
    return False


def _by(detail: dict[str, Any]) -> str:
    return f" by {detail['by']}" if detail.get("by") else ""


def sentence(kind: str, subject: str, detail: dict[str, Any]) -> str:
    """One event in words (masked)."""
    d = detail
    if kind == "channel":
        to, frm, why = d.get("to"), d.get("from"), d.get("reason") or "no reason given"
        if to == "faulty":
            text = f"modem {subject} out of service: {why}"
        elif to == "quarantined":
            text = f"modem {subject} quarantined: {why}"
        elif to == "stopped":
            text = f"modem {subject} stopped: {why}"
        elif to == "opening":
            text = f"modem {subject} reopening: {why}"
        elif to == "idle":
            text = f"modem {subject} back in service after {str(frm).replace('_', ' ')}: {why}"
        else:
            text = f"modem {subject}: {str(frm).replace('_', ' ')} → {str(to).replace('_', ' ')} ({why})"
    elif kind == "switch_failed":
        slot = d.get("slot")
        text = (f"modem {subject} could not switch to slot {slot + 1 if isinstance(slot, int) else '?'}: "
                f"{d.get('reason') or 'no reason given'}; next try in {d.get('retry_in', '?')} s")
    elif kind == "sim_locked":
        rule = RULES.get(str(d.get("rule")), str(d.get("rule")))
        evidence = d.get("evidence") or []
        text = f"SIM {sim_tail(subject)} locked ({rule}) {_hhmm(d.get('until'))}" + (f": {evidence[-1]}" if evidence else "")
    elif kind == "sim_quarantined":
        evidence = d.get("evidence") or []
        why = d.get("reason") or (evidence[-1] if evidence else "")
        text = f"SIM {sim_tail(subject)} quarantined{_by(d)}" + (f": {why}" if why else "")
    elif kind == "sim_released":
        text = f"SIM {sim_tail(subject)} released{_by(d)}: its locks and quarantine lifted"
    elif kind == "modem_reset":
        text = f"modem {subject} reset{_by(d)}" + (f" ({d['reason']})" if d.get("reason") else "")
    elif kind == "modem_drained":
        text = f"modem {subject} drain asked{_by(d)}: no new calls" + (f", stops when job {d['job']} ends" if d.get("job")
                                                                       else ", stopped")
    elif kind == "modem_brought_back":
        text = f"modem {subject} brought back{_by(d)}"
    elif kind == "slot_switch":
        slot = d.get("slot")
        text = f"modem {subject} switched to slot {slot + 1 if isinstance(slot, int) else '?'}{_by(d)}"
    elif kind == "selftest":
        slot = d.get("slot")
        where = f"{d.get('channel', '?')} slot {slot + 1 if isinstance(slot, int) else '?'}"
        checks = "; ".join(f"{c.get('name')} {'ok' if c.get('ok') else 'not run' if c.get('ok') is None else 'FAILED'}"
                           f" ({c.get('detail')})" for c in d.get("checks") or [])
        text = (f"selftest of SIM {sim_tail(subject)} ({where}){_by(d)}: {'passed' if d.get('passed') else 'FAILED'}"
                + (f" — {checks}" if checks else "") + (f"; fix: {d['fix']}" if d.get("fix") else ""))
    else:
        rest = ", ".join(f"{k} {v}" for k, v in d.items() if k not in ("suppressed", "seconds"))
        text = f"{kind.replace('_', ' ')} {subject}" + (f": {rest}" if rest else "")
    if d.get("suppressed"):
        text += f" (and {d['suppressed']} more like it within {d.get('seconds', '?')} s)"
    return mask(text)


def trouble(rows: list[dict[str, Any]], limit: int) -> list[dict[str, Any]]:
    """The newest ``limit`` events that are not routine, in words: ``{at, kind, text}``."""
    out = []
    for e in rows:
        if routine(e["kind"], e["detail"]):
            continue
        out.append({"at": e["at"], "kind": e["kind"], "text": sentence(e["kind"], e["subject"], e["detail"])})
        if len(out) >= limit:
            break
    return out
