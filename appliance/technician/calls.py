"""The page's "Live calls" panel: every call up on a modem now, dialled or answered
(a callback), with its callee masked but the last 3 digits, its state (dialing,
alerting, active) and when it began and was answered (UTC epoch seconds: the page counts
the duration itself, so the document does not change every second)."""
from __future__ import annotations

import time
from typing import Any

from common.phone import mask
from modem_drivers.call import CallState

from ..bank import Bank
from .words import sim_tail


def live_calls(bank: Bank, now: float) -> list[dict[str, Any]]:
    """The calls up now, in modem order. A call's times are monotonic (modem_drivers.call);
    they are put on ``now``'s clock here."""
    mono = time.monotonic()
    out = []
    for ch in bank.channels.values():
        modem = bank.modems.get(ch.id)
        call = modem.call if modem is not None else None
        if call is None or call.state is CallState.RELEASED:
            continue
        sim = ch.active_sim
        answered = call.times.get(CallState.ACTIVE)
        out.append({
            "channel": ch.id,
            "slot": ch.active_slot,
            "sim": sim_tail(sim.sim_id) if sim and sim.sim_id else None,
            "callee": mask(call.number) if call.number else None,
            "direction": "in" if call.incoming else "out",
            "state": call.state.value,
            "job_id": ch.job_id,
            "since": round(now - (mono - call.times[CallState.DIALING]), 1),
            "answered_at": None if answered is None else round(now - (mono - answered), 1),
        })
    return out
