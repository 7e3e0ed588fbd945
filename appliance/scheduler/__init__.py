"""The scheduler: which job goes next, on which channel, and what happens after.

A pure, synchronous core and a thin asyncio shell:

* ``core`` — the dispatch round and the closing of attempts, on a clock passed in;
  beside it the rules it applies: ``queue`` (the heaps, one job per callee), ``waits``
  (why a job waits; the no-eligible-SIM dead end), ``retry`` (retried or final, when),
  ``attempts`` (what a result tells the lock rules and quarantine, itself a lock rule of
  the rotation policy: ``rotation.locks.QuarantineRule``), ``reports`` (status reports
  awaited, until when) and ``recovery`` (what a restart makes of the store);
* ``shell`` — the dispatch loop and its wake-ups, checkpoints, submission and
  withdrawal; ``running`` — writing attempts, running the executor of each job kind
  (``appliance.jobs.EXECUTORS``), awaiting reports; ``channels`` — the bank's side.
"""
from __future__ import annotations

from .core import MAX_CHOICES_PER_ROUND, SchedulerCore
from .retry import CHANNEL_FAILURES
from .shell import Scheduler
from .waits import NO_ELIGIBLE_GRACE_SECONDS, JobWait, Waiting

__all__ = ["CHANNEL_FAILURES", "MAX_CHOICES_PER_ROUND", "NO_ELIGIBLE_GRACE_SECONDS", "JobWait", "Scheduler",
           "SchedulerCore", "Waiting"]
