"""Why queued jobs wait: one word, a sentence and since when, per job.

The rotation policy says why no SIM fits (``WaitingFor``); the scheduler adds the waits
about the job itself (``JobWait``). A wait that no event of the bank can end (a dead
end: every SIM in scope quarantined, locked until released, absent, or the callee's last
number) ends the job ``no_eligible_sim`` after a grace (``dead_end``).
"""
from __future__ import annotations

import dataclasses
import enum
from collections.abc import Iterable
from typing import Any, Final

from common.clock import iso

#: A job whose only SIMs are quarantined, locked until released, absent, or the callee's
#: last number (``rotation.DEAD_ENDS``) ends ``no_eligible_sim`` once that has held this
#: long with the whole bank up: long enough for modems still opening or re-registering
#: after a slot switch (bank.REGISTRATION_TIMEOUT is 60 s), short enough that the
#: controller re-plans it (on another appliance, or later) well inside its lease.
NO_ELIGIBLE_GRACE_SECONDS: Final = 90.0


class JobWait(enum.Enum):
    """Why a queued job waits, beyond the rotation policy's reasons (``WaitingFor``)."""

    NOT_BEFORE = "not_before"  # the job's own start time has not come
    RETRY_BACKOFF = "retry_backoff"  # between attempts, by the retry policy
    CALLEE_BUSY = "callee_busy"  # another job for this callee is running
    NO_IDLE_CHANNEL = "no_idle_channel"  # every channel is busy, cooling, switching or down
    SLOT_SWITCH = "slot_switch"  # its SIM sits in an inactive slot: the modem is switching to it
    SLOT_SWITCH_BACKOFF = "slot_switch_backoff"  # that modem's last switch failed; the next try waits


@dataclasses.dataclass(slots=True)
class Waiting:
    """The last known reason a queued job did not start: one word (``code``), a sentence
    (``detail``) and since when the same word holds."""

    code: str
    detail: str
    since: float

    def public(self) -> dict[str, Any]:
        return {"waiting_for": self.code, "waiting_detail": self.detail, "waiting_since": iso(self.since)}


_NO_IDLE: Final = {"waiting_for": JobWait.NO_IDLE_CHANNEL.value,
                   "waiting_detail": "every channel is busy, cooling down, switching or down", "waiting_since": None}
_NEXT: Final = {"waiting_for": "dispatch", "waiting_detail": "next in line", "waiting_since": None}


class Waits:
    """The wait of every queued job that has been looked at (a job not yet looked at
    waits for an idle channel, or is next in line)."""

    __slots__ = ("_by_job",)

    def __init__(self) -> None:
        self._by_job: dict[str, Waiting] = {}

    def note(self, job_id: str, code: str, detail: str, now: float) -> Waiting:
        """Record why the job waits now; ``since`` moves only when the word changes."""
        w = self._by_job.get(job_id)
        if w is None or w.code != code:
            w = self._by_job[job_id] = Waiting(code, detail, now)
        else:
            w.detail = detail
        return w

    def get(self, job_id: str) -> Waiting | None:
        return self._by_job.get(job_id)

    def drop(self, job_id: str) -> None:
        self._by_job.pop(job_id, None)

    def view(self, job_id: str, idle: int) -> dict[str, Any]:
        w = self._by_job.get(job_id)
        if w is None:
            return dict(_NO_IDLE if idle <= 0 else _NEXT)
        return w.public()

    def counts(self, job_ids: Iterable[str], idle: int) -> dict[str, int]:
        """Jobs per reason (those not yet looked at count as no_idle_channel or dispatch)."""
        unseen = JobWait.NO_IDLE_CHANNEL.value if idle <= 0 else "dispatch"
        counts: dict[str, int] = {}
        for job_id in job_ids:
            w = self._by_job.get(job_id)
            code = w.code if w else unseen
            counts[code] = counts.get(code, 0) + 1
        return counts


def dead_end(w: Waiting, now: float, bank_unsettled: bool) -> tuple[bool, float | None]:
    """A dead-end wait: (end the job now, when to look again). It ends the job once it
    has held ``NO_ELIGIBLE_GRACE_SECONDS`` with no modem opening or switching; before
    that, no event may come to end it, so the dispatch loop looks again when the grace
    is over (past it, only an unsettled modem holds it, and its settling is an event)."""
    if now - w.since < NO_ELIGIBLE_GRACE_SECONDS or bank_unsettled:
        due = w.since + NO_ELIGIBLE_GRACE_SECONDS
        return False, (due if due > now else None)
    return True, None
