"""Inbound traffic: a debtor calling or texting back a number he was shown.

Every incoming SMS and call is stored with the SIM it reached; the controller matches it
to the contact and campaign (it knows which number each contact was shown). Stored
first, sent over the link after, acknowledged by the controller: nothing is lost."""
from __future__ import annotations

import time
import uuid
from typing import Any, Final

from modem_drivers.types import IncomingCall, SmsReceived

from .channel import Channel
from .store import Store

#: RINGs of one incoming call repeat every few seconds (V.250 practice, 27.007 §7.6 +CLIP
#: with each RING); a RING from the same caller within this window is the same call.
RING_REPEAT_WINDOW: Final = 15.0


class InboundRecorder:
    def __init__(self, store: Store) -> None:
        self.store = store
        self._last_ring: dict[tuple[str, str | None], float] = {}

    def __call__(self, ch: Channel, ev: Any) -> None:
        sim = ch.active_sim
        to = sim.info.msisdn if sim and sim.info else None
        now = time.time()
        if isinstance(ev, SmsReceived):
            event = {"kind": "sms", "from": ev.sms.sender, "text": ev.sms.text}
        elif isinstance(ev, IncomingCall):
            key = (ch.id, ev.caller)
            last = self._last_ring.get(key, 0.0)
            self._last_ring[key] = time.monotonic()
            if time.monotonic() - last < RING_REPEAT_WINDOW:
                return
            event = {"kind": "call", "from": ev.caller, "text": None}
        else:
            return
        self.store.add_inbound({
            **event, "id": f"in-{uuid.uuid4().hex[:16]}", "to": to, "at": now,
            "channel_id": ch.id, "sim_id": sim.sim_id if sim else None,
        })
