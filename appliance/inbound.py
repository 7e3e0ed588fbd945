"""Inbound traffic: a debtor calling or texting back a number he was shown.

Every incoming SMS and call is stored with the SIM it reached; the controller matches it
to the contact and campaign (it knows which number each contact was shown). Stored
first, sent over the link after, acknowledged by the controller: nothing is lost.

Each ring of a call, once its row is stored, goes to ``on_ring`` with the row's id: the
callback answerer (``appliance/callbacks.py``), which answers it when its channel is free
and later records the caller's menu choice on that row. A ring after an answered call is
a new call, with a row of its own."""
from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any, Final

from modem_drivers.types import IncomingCall, SmsReceived

from .channel import Channel
from .store import Store

#: RINGs of one incoming call repeat every few seconds (V.250 practice, 27.007 §7.6 +CLIP
#: with each RING); a RING from the same caller within this window is the same call.
RING_REPEAT_WINDOW: Final = 15.0

#: Handed each ring (channel, the +CLIP event, the call's row id); True when it answered.
RingHandler = Callable[[Channel, IncomingCall, str], bool]


class InboundRecorder:
    def __init__(self, store: Store, on_ring: RingHandler | None = None) -> None:
        self.store = store
        self.on_ring = on_ring
        self._last_ring: dict[tuple[str, str | None], tuple[float, str]] = {}

    def __call__(self, ch: Channel, ev: Any) -> None:
        sim = ch.active_sim
        to = sim.info.msisdn if sim and sim.info else None
        now = time.time()
        if isinstance(ev, SmsReceived):
            event = {"kind": "sms", "from": ev.sms.sender, "text": ev.sms.text}
        elif isinstance(ev, IncomingCall):
            key = (ch.id, ev.caller)
            last, row_id = self._last_ring.get(key, (0.0, ""))
            if time.monotonic() - last >= RING_REPEAT_WINDOW:
                row_id = self._add({"kind": "call", "from": ev.caller, "text": None}, ch, to, now)
            self._last_ring[key] = (time.monotonic(), row_id)
            if self.on_ring is not None and self.on_ring(ch, ev, row_id):
                del self._last_ring[key]  # answered: the next ring is another call
            return
        else:
            return
        self._add(event, ch, to, now)

    def _add(self, event: dict[str, Any], ch: Channel, to: str | None, now: float) -> str:
        sim = ch.active_sim
        row_id = f"in-{uuid.uuid4().hex[:16]}"
        self.store.add_inbound({
            **event, "id": row_id, "to": to, "at": now,
            "channel_id": ch.id, "sim_id": sim.sim_id if sim else None,
        })
        return row_id
