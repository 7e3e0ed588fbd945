"""Decisions at start: what the scheduler makes of what a previous process left.

* rotation counters: the last snapshot plus the attempts stored after it (the attempts
  table is the log, the snapshot only a checkpoint: saving the whole policy on every
  attempt would cost O(SIMs) per call);
* attempts left ``started``: each becomes an ``interrupted`` result, retried only if the
  retry policy says so (the callee may have been called);
* open jobs go back to the queue at their next attempt time, and report waits are
  re-armed to their stored deadlines (``reports``).
"""
from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any, Final

from common.clock import iso

from ..rotation import JobKind, RotationPolicy
from .attempts import summary
from .retry import JobState, RetryRules, after_restart

logger = logging.getLogger("appliance.scheduler")

#: Daily caps look back 24 h at most: older attempts are not replayed.
REPLAY_HORIZON_SECONDS: Final = 86400.0
INTERRUPTED_DETAIL: Final = "the appliance stopped during this attempt; it is not redialed unless the retry policy says so"


def restore_rotation(policy: RotationPolicy, snap: dict[str, Any] | None, now: float) -> float:
    """Load the snapshot into the policy; returns the time it was taken (0: none usable)."""
    if not snap:
        return 0.0
    try:
        policy.restore(snap.get("policy", snap), now)
        return float(snap.get("at", 0.0))
    except Exception:
        logger.exception("rotation snapshot unreadable; rebuilding counters from the attempt log")
        return 0.0


def replay_horizon(snapshot_at: float, now: float) -> float:
    return max(snapshot_at, now - REPLAY_HORIZON_SECONDS)


def replay(policy: RotationPolicy, attempts: Iterable[dict[str, Any]]) -> int:
    """Feed stored attempts (since the snapshot) to the policy; returns how many."""
    n = 0
    for a in attempts:
        try:
            policy.record_start(a["sim_id"], JobKind(a["kind"]), a["started_at"])
            if a["result"] is not None:
                policy.record_end(a["sim_id"], summary(a["kind"], a["result"]), a["ended_at"] or a["started_at"])
            n += 1
        except (KeyError, ValueError):
            continue
    return n


def interrupted(a: dict[str, Any], section: Any, now: float) -> dict[str, Any]:
    """The closing of an attempt a dead process left open (``Store.interrupted_attempts``
    row), as ``Store.finish_attempt``'s arguments."""
    spec = a["spec"]
    again = after_restart(RetryRules.of(section, spec.get("retry")), a["n"])
    body = {
        "job_id": a["job_id"], "kind": spec["kind"], "callee": spec["callee"], "attempt": a["n"],
        "channel_id": a["channel_id"], "sim_id": a["sim_id"], "number_shown": a["msisdn"],
        "outcome": "interrupted", "started_at": iso(a["started_at"]), "detail": INTERRUPTED_DETAIL,
        "final": not again,
    }
    return {
        "attempt_id": a["attempt_id"], "job_id": a["job_id"], "result": body,
        "job_state": (JobState.WAITING_RETRY if again else JobState.DONE).value,
        "next_attempt_at": now if again else None, "final": not again, "now": now, "attempt_state": "interrupted",
    }
