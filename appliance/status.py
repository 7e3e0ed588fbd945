"""The appliance's status at a glance: channels by state, job counters, the scheduler's
figures and the link's state. The local API (``GET /api/status``) and the technician page
(``GET /status.json``) both show it, so it lives here, below both of them.

``STATUS`` is the aiohttp application key under which the runtime hands the sources to
whichever of the two is served."""
from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any, Final

from aiohttp import web

from .bank import Bank
from .channel import ChannelState
from .link import Link
from .scheduler import Scheduler
from .store import Store


@dataclasses.dataclass(slots=True, frozen=True)
class Status:
    """What the status is read from."""

    appliance_id: str
    started_at: float  # UTC epoch seconds of the process start
    bank: Bank
    store: Store
    scheduler: Scheduler
    link: Link | None  # None: standalone
    clock: Callable[[], float] = time.time

    def summary(self) -> dict[str, Any]:
        states: dict[str, int] = {}
        for ch in self.bank.channels.values():
            states[ch.state.value] = states.get(ch.state.value, 0) + 1
        return {
            "appliance": self.appliance_id,
            "uptime_seconds": round(self.clock() - self.started_at, 1),
            "channels": states,
            "jobs": self.store.counts(),
            "scheduler": self.scheduler.stats(),
            "link": None if self.link is None else self.link.state(),
            # modems a person stopped, is stopping (``pending``) or removed (Bank.control)
            "modem_control": [{"id": ch.id, "state": ch.state.value, "pending": ch.pending, "reason": ch.reason}
                              for ch in self.bank.channels.values()
                              if ch.pending is not None or ch.state is ChannelState.STOPPED],
            "modems_removed": list(self.bank.removed.values()),
        }


#: The status sources in an aiohttp application (the API's and the page's handlers).
STATUS: Final = web.AppKey("status", Status)
