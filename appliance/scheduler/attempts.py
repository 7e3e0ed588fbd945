"""What a finished attempt's result tells the rotation policy: its summary for the lock
rules (``AttemptSummary``) and its signs of a barred SIM for quarantine (``Barring``)."""
from __future__ import annotations

from typing import Any

from ..rotation import AttemptSummary, JobKind
from ..rotation.locks import Barring
from .retry import CHANNEL_FAILURES


def alerted(result: dict[str, Any]) -> bool:
    """The callee's phone rang (or was answered), by a call's or probe call's result."""
    return bool(result.get("alerting_at") or result.get("answered_at") or result.get("alerted"))


def summary(kind: str, result: dict[str, Any]) -> AttemptSummary:
    return AttemptSummary(
        kind=JobKind(kind),
        alerted=alerted(result),
        answered=bool(result.get("answered_at")),
        talk_seconds=float(result.get("talk_seconds") or 0.0),
        failed=result.get("outcome", "") in CHANNEL_FAILURES,
        cause=result.get("cause"),
    )


def barring(spec: dict[str, Any], result: dict[str, Any]) -> Barring:
    """A call or an HLR probe call speaks by its release cause; an SMS (or SMS ping) by
    whether the network refused it as not subscribed (``jobs.submit_sms``)."""
    return Barring(
        voice=spec["kind"] == "call" or spec.get("method") == "probe_call",
        alerted=alerted(result),
        cause=result.get("cause"),
        sms_refused=bool(result.get("sim_blocked")),
        channel_trouble=result.get("outcome") in CHANNEL_FAILURES,
    )
