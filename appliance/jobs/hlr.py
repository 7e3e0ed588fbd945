"""The HLR-style check executor: is a number active, absent or invalid, without a call
anyone answers. Two methods, chosen per job (``method``, one row each in ``HLR_METHODS``):

* ``sms_ping`` — an SMS with TP-PID 0x40 ("type 0", 23.040 §9.2.3.9: the handset
  acknowledges it and shows nothing) and a status report requested; the report's TP-ST
  classifies the number: delivered → ``active``; temporary error (absent, switched off)
  → ``absent``; permanent error → ``invalid``. The report is awaited off the channel.
* ``probe_call`` — a call released before answer: alerting means the subscriber is
  reachable (``active``); a release before alerting is classified by its Q.850 cause.
"""
from __future__ import annotations

import enum
import time
from typing import Any, Final

from common.contract import Outcome
from modem_drivers.at import AtError
from modem_drivers.call import CallState
from modem_drivers.errors import ModemError
from modem_drivers.modem import Modem
from modem_drivers.q850 import cause_name
from modem_drivers.sms import PID_TYPE0, DeliveryState, delivery_state

from .base import Context, Executed, Executor, Followup, Placement, result_base
from .sms import submit_sms


class HlrStatus(enum.Enum):
    ACTIVE = "active"
    ABSENT = "absent"
    INVALID = "invalid"
    UNKNOWN = "unknown"


#: Release causes of a probe call that never alerted (Q.850 Table 1) -> number status.
PROBE_CAUSES: Final[dict[int, HlrStatus]] = {
    1: HlrStatus.INVALID,  # unassigned number
    3: HlrStatus.INVALID,  # no route to destination
    22: HlrStatus.INVALID,  # number changed
    28: HlrStatus.INVALID,  # invalid number format
    18: HlrStatus.ABSENT,  # no user responding
    20: HlrStatus.ABSENT,  # subscriber absent
    27: HlrStatus.ABSENT,  # destination out of order
    17: HlrStatus.ACTIVE,  # user busy: the subscriber exists and is attached
    19: HlrStatus.ACTIVE,  # alerted, no answer
    21: HlrStatus.ACTIVE,  # rejected by the user
    16: HlrStatus.ACTIVE,  # normal clearing (our own release after alerting)
}

#: A probe call is released this long after dialing if nothing came back: the [calls]
#: max_ring_seconds default (Asterisk Dial() practice for outbound dialers, 25-30 s).
PROBE_TIMEOUT: Final = 30.0


def classify_ping(status: int | None) -> HlrStatus:
    """An SMS ping's first TP-ST (23.040 §9.2.3.15) -> the number's status."""
    if status is None:
        return HlrStatus.UNKNOWN
    st = delivery_state(status)
    if st is DeliveryState.DELIVERED:
        return HlrStatus.ACTIVE
    if st is DeliveryState.PENDING or 0x60 <= status <= 0x7F:
        return HlrStatus.ABSENT
    return HlrStatus.INVALID


def hlr_extras(ctx: Context, callee: str) -> dict[str, Any]:
    """An HLR result names the callee's operator when it is known (learnt for the
    number, or its prefix): neither a status report nor a release cause carries it."""
    operator = ctx.operator_of(callee)
    return {"operator": operator} if operator else {}


async def run_probe_call(modem: Modem, job: dict[str, Any], p: Placement) -> dict[str, Any]:
    out = result_base(job, p)
    t0 = time.monotonic()
    try:
        call = await modem.dial(job["callee"])
    except (AtError, ModemError) as exc:
        return {**out, "outcome": "channel_error", "method": "probe_call", "error": str(exc)}
    try:
        state = await call.wait_for(CallState.ALERTING, CallState.ACTIVE, timeout=PROBE_TIMEOUT)
    except TimeoutError:
        state = call.state
    if not call.released:
        await modem.hangup()
    if call.channel_lost and state not in (CallState.ALERTING, CallState.ACTIVE):
        return {**out, "outcome": "channel_error", "method": "probe_call", "error": "the modem's port went away during the probe"}
    if state in (CallState.ALERTING, CallState.ACTIVE):
        status = HlrStatus.ACTIVE
    elif call.cause is not None and call.report().outcome is Outcome.CHANNEL_ERROR:
        # Our SIM was refused (barred, not subscribed): says nothing about the callee.
        return {**out, "outcome": "channel_error", "method": "probe_call", "cause": call.cause,
                "cause_name": cause_name(call.cause), "error": "the network refused our SIM"}
    else:
        status = PROBE_CAUSES.get(call.cause or -1, HlrStatus.UNKNOWN)
    return {
        **out,
        "outcome": status.value,
        "method": "probe_call",
        "cause": call.cause,
        "cause_name": cause_name(call.cause),
        "alerted": CallState.ALERTING in call.times or CallState.ACTIVE in call.times,
        "seconds": round(time.monotonic() - t0, 3),
    }


async def _probe_call(ctx: Context, modem: Modem, job: dict[str, Any], p: Placement) -> Executed:
    result = await run_probe_call(modem, job, p)
    result.update(hlr_extras(ctx, job["callee"]))
    return result, None


async def _sms_ping(ctx: Context, modem: Modem, job: dict[str, Any], p: Placement) -> Executed:
    """Submit the ping; its first report, awaited off the channel, gives the outcome."""
    ping = {**job, "text": " ", "report": True}
    result, queues, refs = await submit_sms(modem, ping, p, ctx.tracker, pid=PID_TYPE0)
    result["method"] = "sms_ping"
    return result, (Followup(queues, refs, first_only=True) if queues else None)


#: The job's ``method`` -> how the check is made (``sms_ping`` when the job names none).
HLR_METHODS: Final[dict[str, Executor]] = {
    "sms_ping": _sms_ping,
    "probe_call": _probe_call,
}


async def execute_hlr(ctx: Context, modem: Modem, job: dict[str, Any], p: Placement) -> Executed:
    """An ``hlr`` job, by its method."""
    return await HLR_METHODS[job.get("method", "sms_ping")](ctx, modem, job, p)
