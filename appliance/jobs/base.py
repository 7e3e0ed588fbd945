"""What every executor shares: where an attempt runs, what it is handed, what it returns.

An executor (``appliance.jobs.EXECUTORS``) takes the modem the bank lent it, the job and
its ``Placement``, and returns an ``Executed``: the attempt's result dict (the
docs/architecture.md vocabulary) and, for an SMS, the status reports still owed. It
never touches the store: the scheduler writes the attempt before and the result after.
"""
from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable
from typing import Any

from modem_drivers.modem import Modem
from modem_drivers.sms import StatusReport

from .tracker import ReportTracker


@dataclasses.dataclass(slots=True)
class Placement:
    """Where an attempt runs: channel, SIM and the number the callee will see."""

    channel_id: str
    sim_id: str
    msisdn: str
    attempt: int


@dataclasses.dataclass(slots=True)
class Followup:
    """Status reports an attempt still awaits once its channel part is done: one queue
    per submitted part (TP-MR ``refs``); ``first_only`` for an SMS ping, which takes the
    first report whatever it says."""

    queues: list[asyncio.Queue[StatusReport]]
    refs: list[int]
    first_only: bool


@dataclasses.dataclass(slots=True)
class Context:
    """What the scheduler hands every executor: the [calls] defaults a job's ``call``
    overrides, the status-report router, the callee-operator look-up (HLR results name the
    operator when it is known), and the recordings' keeper."""

    call_defaults: dict[str, Any]
    tracker: ReportTracker
    operator_of: Callable[[str], str | None]
    #: Where ``call.record`` recordings go (``appliance.recordings.Recordings``); None: the
    #: appliance keeps none (a job asking for one gets a result saying so).
    recordings: Any = None


Executed = tuple[dict[str, Any], Followup | None]
Executor = Callable[[Context, Modem, dict[str, Any], Placement], Awaitable[Executed]]


def result_base(job: dict[str, Any], p: Placement) -> dict[str, Any]:
    """The fields every attempt's result starts with."""
    return {
        "job_id": job["id"],
        "kind": job["kind"],
        "callee": job["callee"],
        "attempt": p.attempt,
        "channel_id": p.channel_id,
        "sim_id": p.sim_id,
        "number_shown": p.msisdn,
    }
