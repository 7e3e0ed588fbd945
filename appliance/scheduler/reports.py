"""Report waits: which SMS status reports an attempt still awaits, until when, and the
final result they make.

An SMS (or an HLR SMS ping) frees its channel once submitted; the job stays
``awaiting_report``. What is owed is stored with the closing of the attempt
(``pending``), so a restart re-arms exactly those waits with their first deadline.
An SMS waits for every part's final report ([sms] report_timeout_seconds); a ping takes
its first report, whatever it says ([sms] ping_timeout_seconds).
"""
from __future__ import annotations

from typing import Any, Final

from common.clock import iso

from ..jobs import HlrStatus, Placement, classify_ping

#: An SMS's delivery state (``jobs.await_delivery``) -> its final outcome.
SMS_OUTCOMES: Final[dict[str, str]] = {"delivered": "delivered", "failed": "failed"}
NO_REPORT: Final = "no_report"


def timeout(sms: Any, first_only: bool) -> float:
    """How long reports are awaited ([sms] section, ``config.SmsSection``)."""
    return sms.ping_timeout_seconds if first_only else sms.report_timeout_seconds


def pending(p: Placement, attempt_id: int, spec: dict[str, Any], refs: list[int], first_only: bool, *,
            sms: Any, now: float) -> dict[str, Any]:
    """The record of a report wait, stored in the transaction that closes the attempt."""
    return {
        "channel_id": p.channel_id, "refs": refs, "attempt_id": attempt_id, "first_only": first_only,
        "deadline": now + timeout(sms, first_only), "spec": spec,
        "placement": [p.channel_id, p.sim_id, p.msisdn, p.attempt], "sent_at": now,
    }


def time_left(deadline: float | None, first_only: bool, *, sms: Any, now: float) -> float:
    """How long a wait still runs: to its stored deadline (re-armed after a restart),
    else the whole timeout."""
    return max(0.0, (deadline - now) if deadline else timeout(sms, first_only))


def final_body(spec: dict[str, Any], p: Placement, *, first_only: bool, state: str, statuses: list[int],
               now: float, sent_at: float | None, extras: dict[str, Any]) -> dict[str, Any]:
    """The job's final result once its reports came (or did not): a ping's outcome is
    the number's status (``HlrStatus``), an SMS's its delivery."""
    base = {"job_id": spec["id"], "kind": spec["kind"], "callee": spec["callee"], "attempt": p.attempt,
            "channel_id": p.channel_id, "sim_id": p.sim_id, "number_shown": p.msisdn, "final": True,
            "tp_status": statuses, "at": iso(now)}
    if not first_only:
        return {**base, "outcome": SMS_OUTCOMES.get(state, NO_REPORT)}
    status: HlrStatus = classify_ping(statuses[0] if statuses else None)
    body = {**base, "method": "sms_ping", "outcome": status.value, **extras}
    if sent_at is not None:
        body["seconds"] = round(now - sent_at, 3)  # ping sent -> its report
    return body
