"""The job queue: which queued job may go next, in what order, and which must wait.

Jobs wait in two heaps: *waiting* (by the time they may start: not-before or retry
backoff) and *ready* (by priority, then arrival). One callee has at most one active job;
his other jobs wait behind it and go back to the ready heap when it ends. Removal is
lazy: a job withdrawn or started leaves ``jobs`` and its heap entries are skipped.
"""
from __future__ import annotations

import heapq
import itertools
from collections import defaultdict, deque
from typing import Any

from common.clock import iso

from .waits import JobWait, Waits


def _priority(spec: dict[str, Any]) -> int:
    return -int(spec.get("priority", 0))


class JobQueue:
    """Queued jobs (id -> spec), their heaps, the callees with a job running and the
    jobs blocked behind them, and why each waits (``waits``)."""

    __slots__ = ("_active_callees", "_blocked", "_ready", "_seq", "_waiting", "jobs", "waits")

    def __init__(self) -> None:
        self.jobs: dict[str, dict[str, Any]] = {}
        self.waits = Waits()
        self._ready: list[tuple[int, int, str]] = []
        self._waiting: list[tuple[float, int, str]] = []
        self._seq = itertools.count()
        self._active_callees: set[str] = set()
        self._blocked: dict[str, deque[str]] = defaultdict(deque)

    def __len__(self) -> int:
        return len(self.jobs)

    def __contains__(self, job_id: str) -> bool:
        return job_id in self.jobs

    # -- in ---------------------------------------------------------------------------
    def put(self, spec: dict[str, Any], ready_at: float, now: float) -> bool:
        """Queue a job (new, retried or put back); returns whether it waits for a time
        still to come (``ready_at``) rather than being ready now."""
        job_id = spec["id"]
        self.jobs[job_id] = spec
        if ready_at and ready_at > now:
            heapq.heappush(self._waiting, (ready_at, next(self._seq), job_id))
            own = spec.get("not_before")
            code = JobWait.NOT_BEFORE if own and float(own) >= ready_at else JobWait.RETRY_BACKOFF
            self.waits.note(job_id, code.value, f"until {iso(ready_at)}", now)
            return True
        self.push_ready(spec)
        return False

    def push_ready(self, spec: dict[str, Any]) -> None:
        """Back in the ready heap, behind the jobs already there of its priority."""
        heapq.heappush(self._ready, (_priority(spec), next(self._seq), spec["id"]))

    def promote(self, now: float) -> None:
        """Jobs whose time has come move to the ready heap (keeping their arrival order)."""
        waiting, jobs = self._waiting, self.jobs
        while waiting and waiting[0][0] <= now:
            _, seq, job_id = heapq.heappop(waiting)
            spec = jobs.get(job_id)
            if spec is not None:
                self.waits.drop(job_id)  # its time has come: the round says what holds it now
                heapq.heappush(self._ready, (_priority(spec), seq, job_id))

    # -- out ---------------------------------------------------------------------------
    @property
    def has_ready(self) -> bool:
        return bool(self._ready)

    def next_time(self) -> float | None:
        """When the next waiting job's time comes (maybe a job since withdrawn)."""
        return self._waiting[0][0] if self._waiting else None

    def pop_ready(self) -> dict[str, Any] | None:
        """The next ready job still queued, or None when the ready heap is empty."""
        while self._ready:
            _, _, job_id = heapq.heappop(self._ready)
            spec = self.jobs.get(job_id)
            if spec is not None:
                return spec
        return None

    def remove(self, job_id: str) -> None:
        """A job withdrawn or ended before it started."""
        self.jobs.pop(job_id, None)
        self.waits.drop(job_id)

    # -- one job per callee -------------------------------------------------------------------
    def callee_busy(self, spec: dict[str, Any], now: float) -> bool:
        """If another job of this callee runs, the job waits behind it (and says so)."""
        callee = spec["callee"]
        if callee not in self._active_callees:
            return False
        self._blocked[callee].append(spec["id"])
        self.waits.note(spec["id"], JobWait.CALLEE_BUSY.value, "another job for this callee is running", now)
        return True

    def take(self, spec: dict[str, Any]) -> None:
        """The job starts: it leaves the queue and its callee is busy."""
        self.jobs.pop(spec["id"], None)
        self.waits.drop(spec["id"])
        self._active_callees.add(spec["callee"])

    def callee_done(self, callee: str) -> None:
        """The callee's job ended: the jobs waiting behind it are ready again."""
        self._active_callees.discard(callee)
        blocked = self._blocked.pop(callee, None)
        if blocked:
            for job_id in blocked:
                spec = self.jobs.get(job_id)
                if spec is not None:
                    self.push_ready(spec)
