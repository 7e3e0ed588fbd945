"""The SMS executor: submit (the channel part), then the status reports off the channel.

The channel is busy only while ``AT+CMGS`` runs; the reports (23.040 §9.2.2.3) come
later, on any channel, and the scheduler awaits them with ``await_delivery``.
"""
from __future__ import annotations

import asyncio
import time
from typing import Any

from common.clock import iso
from modem_drivers.at import AtError
from modem_drivers.deadlines import coarse_timeout
from modem_drivers.errors import ModemError, SimBlocked
from modem_drivers.modem import Modem
from modem_drivers.sms import DeliveryState, StatusReport, delivery_state

from .base import Context, Executed, Followup, Placement, result_base
from .tracker import ReportTracker


async def submit_sms(modem: Modem, job: dict[str, Any], p: Placement, tracker: ReportTracker, *,
                     pid: int = 0) -> tuple[dict[str, Any], list[asyncio.Queue[StatusReport]], list[int]]:
    """Submit (the channel part of an SMS job); returns the partial result and report queues."""
    out = result_base(job, p)
    text = job.get("text") or " "
    want_report = bool(job.get("report", True))
    t0 = time.time()
    since = time.monotonic()
    try:
        sub = await modem.send_sms(job["callee"], text, report=want_report, pid=pid)
    except SimBlocked as exc:
        # +CMS ERROR 50 (facility not subscribed): the operator barred this SIM's SMS —
        # evidence for quarantine, like a call refused with cause 50.
        return {**out, "outcome": "channel_error", "error": str(exc), "sim_blocked": True,
                "submitted_at": iso(t0)}, [], []
    except (AtError, ModemError) as exc:
        return {**out, "outcome": "channel_error", "error": str(exc), "submitted_at": iso(t0)}, [], []
    queues = [tracker.expect(p.sim_id, ref, since=since) for ref in sub.references] if want_report else []
    return (
        {**out, "outcome": "submitted", "parts": sub.parts, "references": list(sub.references), "submitted_at": iso(t0)},
        queues,
        list(sub.references),
    )


async def execute_sms(ctx: Context, modem: Modem, job: dict[str, Any], p: Placement) -> Executed:
    """An ``sms`` job: submitted now, delivered (or not) when its reports come."""
    result, queues, refs = await submit_sms(modem, job, p, ctx.tracker)
    return result, (Followup(queues, refs, first_only=False) if queues else None)


async def await_delivery(queues: list[asyncio.Queue[StatusReport]], timeout: float, *,
                         first_only: bool = False) -> tuple[str, list[int]]:
    """Wait for every part's final report (or the first report with ``first_only``);
    returns the delivery state (``delivered``, ``failed``, ``pending``, ``no_report``)
    and every TP-ST seen."""
    statuses: list[int] = []
    try:
        async with coarse_timeout(timeout):
            for q in queues:
                while True:
                    rep = await q.get()
                    statuses.append(rep.status)
                    if first_only or rep.state is not DeliveryState.PENDING:
                        break
                if first_only:
                    return rep.state.value, statuses
    except TimeoutError:
        return ("pending" if statuses else "no_report"), statuses
    # the last len(queues) statuses stand for the parts' final reports
    if all(delivery_state(s) is DeliveryState.DELIVERED for s in statuses[-len(queues):]):
        return "delivered", statuses
    return "failed", statuses
