"""Status reports routed to the submissions waiting for them, by (SIM, TP-MR)."""
from __future__ import annotations

import asyncio
import time
from typing import Final

from modem_drivers.sms import StatusReport

#: A report may arrive before its submitter registered for it (a fast SMSC answers in
#: the same read as ``+CMGS``); unclaimed reports are kept this long, this many at most.
UNCLAIMED_TTL: Final = 600.0
UNCLAIMED_MAX: Final = 10_000


class ReportTracker:
    """Routes status reports to the submissions waiting for them, by (SIM, TP-MR).

    The key is the SIM, not the modem: TP-MR counts per SIM on multi-SIM modems, and a
    report reaches the SIM that sent the message. A report that arrives before its waiter
    registered is kept; a waiter takes only reports that arrived after its submission
    started, so a late report of an older message with the same TP-MR is never mistaken
    for a new one."""

    def __init__(self) -> None:
        self._waiting: dict[tuple[str, int], asyncio.Queue[StatusReport]] = {}
        self._unclaimed: dict[tuple[str, int], list[tuple[float, StatusReport]]] = {}

    def expect(self, sim_id: str, reference: int, *, since: float | None = None) -> asyncio.Queue[StatusReport]:
        q: asyncio.Queue[StatusReport] = asyncio.Queue()
        key = (sim_id, reference)
        self._waiting[key] = q
        now = time.monotonic()
        for at, rep in self._unclaimed.pop(key, []):
            if now - at <= UNCLAIMED_TTL and (since is None or at >= since):
                q.put_nowait(rep)
        return q

    def sims_waiting(self) -> set[str]:
        """SIMs with a submission still waiting for a report."""
        return {sim for sim, _ in self._waiting}

    def forget(self, sim_id: str, reference: int) -> None:
        self._waiting.pop((sim_id, reference), None)

    def deliver(self, sim_id: str, report: StatusReport) -> bool:
        """Hand a report to its waiter; keep it for a late waiter otherwise."""
        key = (sim_id, report.reference)
        q = self._waiting.get(key)
        if q is not None:
            q.put_nowait(report)
            return True
        if len(self._unclaimed) >= UNCLAIMED_MAX:
            self._unclaimed.pop(next(iter(self._unclaimed)))
        self._unclaimed.setdefault(key, []).append((time.monotonic(), report))
        return False
