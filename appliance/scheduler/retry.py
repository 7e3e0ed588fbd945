"""The retry policy: what a finished attempt's outcome means for its job.

Retried or final, and when the next attempt may start. Two budgets: attempts that
reached (or tried to reach) the callee count against ``max_attempts`` and back off
exponentially (``backoff_seconds * backoff_factor ** (n - 1)``); attempts that failed on
our side (``CHANNEL_FAILURES``: the callee was never reached) have their own cap
(``max_channel_retries``) and are tried again soon (``channel_retry_seconds``) on
another SIM, so a job cannot bounce between broken channels for ever. A job's ``retry``
overrides the [retry] section field by field.
"""
from __future__ import annotations

import dataclasses
import enum
from collections.abc import Sequence
from typing import Any, Final

#: Outcomes that mean the channel/SIM failed (not the callee): they feed lock rules and
#: do not use up the callee's attempt budget.
CHANNEL_FAILURES: Final = frozenset({"channel_error", "network_error"})


class JobState(enum.Enum):
    """A job's state after one of its attempts closed (the store's ``jobs.state``)."""

    WAITING_RETRY = "waiting_retry"
    AWAITING_REPORT = "awaiting_report"  # the channel part is done; status reports are owed
    DONE = "done"


@dataclasses.dataclass(frozen=True, slots=True)
class RetryRules:
    max_attempts: int
    backoff_seconds: float
    backoff_factor: float
    retry_outcomes: frozenset[str]
    retry_interrupted: bool
    max_channel_retries: int
    channel_retry_seconds: float

    @classmethod
    def of(cls, section: Any, override: dict[str, Any] | None) -> RetryRules:
        """The [retry] section (``config.RetrySection``) with a job's ``retry`` over it."""
        o = override or {}
        return cls(
            max_attempts=int(o.get("max_attempts", section.max_attempts)),
            backoff_seconds=float(o.get("backoff_seconds", section.backoff_seconds)),
            backoff_factor=float(o.get("backoff_factor", section.backoff_factor)),
            retry_outcomes=frozenset(o.get("retry_outcomes", section.retry_outcomes)),
            retry_interrupted=bool(o.get("retry_interrupted", section.retry_interrupted)),
            max_channel_retries=int(o.get("max_channel_retries", section.max_channel_retries)),
            channel_retry_seconds=float(o.get("channel_retry_seconds", section.channel_retry_seconds)),
        )


@dataclasses.dataclass(frozen=True, slots=True)
class Verdict:
    """What follows an attempt: another one at ``next_at``, or none (``final``, unless
    status reports are still owed)."""

    again: bool
    next_at: float | None
    final: bool
    state: JobState


def after_attempt(rules: RetryRules, outcomes: Sequence[str | None], *, awaiting_report: bool, now: float) -> Verdict:
    """The verdict on a job's attempt whose outcome is ``outcomes[-1]`` (the earlier
    ones are the job's previous attempts, None where unknown). An attempt that still
    awaits status reports is neither retried nor final: its reports decide."""
    outcome = outcomes[-1]
    if awaiting_report:
        return Verdict(False, None, False, JobState.AWAITING_REPORT)
    if outcome not in rules.retry_outcomes:
        return Verdict(False, None, True, JobState.DONE)
    ours = sum(1 for o in outcomes if o in CHANNEL_FAILURES)
    callee_attempts = len(outcomes) - ours
    if outcome in CHANNEL_FAILURES:
        if ours >= rules.max_channel_retries:
            return Verdict(False, None, True, JobState.DONE)
        # Our side failed: try again soon, on another SIM (the failed one is last-used).
        return Verdict(True, now + rules.channel_retry_seconds, False, JobState.WAITING_RETRY)
    if callee_attempts >= rules.max_attempts:
        return Verdict(False, None, True, JobState.DONE)
    delay = rules.backoff_seconds * rules.backoff_factor ** max(0, callee_attempts - 1)
    return Verdict(True, now + delay, False, JobState.WAITING_RETRY)


def after_restart(rules: RetryRules, attempt: int) -> bool:
    """An attempt a dead process left open (``interrupted``): is the job tried again?
    Only if the rules say so and it has attempts left: the callee may have been called."""
    return rules.retry_interrupted and attempt < rules.max_attempts
