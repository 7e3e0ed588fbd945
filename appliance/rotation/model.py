"""The rotation policy's vocabulary: jobs, limits, lock rules, SIMs, requests and answers.

Everything here is a value: frozen, slotted dataclasses checked when they are built (h11's
events), enums for kinds and states. Limits are plain slotted dataclasses because the
contract lets a caller build them field by field, but they are validated the same way.

Times are ``float`` seconds since the UTC epoch, always passed in by the caller (the policy
owns no clock). Durations are seconds.
"""
from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field

# the wire contract's: the kinds a job comes in
from common.contract import JobKind

#: Rolling window lengths. "Per hour" and "per day" are rolling, not calendar, windows: a
#: SIM never makes more than N calls in ANY hour, which is what an operator's fraud
#: detection measures (a calendar reset would allow 2N around the hour boundary).
HOUR_SECONDS = 3600.0
DAY_SECONDS = 86400.0


class Traffic(enum.Enum):
    """Which caps a job counts against. An HLR job is either a probe call released before
    answer or a Type-0 SMS ping; the policy cannot know which, so it counts as VOICE (the
    stricter, and the one operators police: a probe call is a call attempt in their CDRs)."""

    VOICE = 0
    SMS = 1


#: Job kind -> the traffic class whose caps it consumes (a table, not an if-chain).
TRAFFIC_OF: dict[JobKind, Traffic] = {
    JobKind.CALL: Traffic.VOICE,
    JobKind.HLR: Traffic.VOICE,
    JobKind.SMS: Traffic.SMS,
}


class SimState(enum.Enum):
    """A SIM's standing for voice traffic, most severe first (``state()`` reports the first
    that applies). BUSY (a job in flight on it) was added to the contract's five."""

    QUARANTINED = "quarantined"  # the bank judged it blocked; only release() lifts it
    LOCKED = "locked"  # a lock rule fired (until a time, or until released)
    BUSY = "busy"  # record_start() without record_end() yet
    CAPPED = "capped"  # a per-SIM or per-operator count/seconds/window cap is reached
    PAUSED = "paused"  # minimum pause between calls / pause after a call not over
    READY = "ready"


def _parse_hhmm(text: str, *, what: str, allow_24: bool) -> int:
    """``"08:30"`` -> minutes after local midnight; ``"24:00"`` only as an end."""
    try:
        hh, mm = text.split(":")
        hours, minutes = int(hh), int(mm)
    except ValueError:
        raise ValueError(f"{what} must look like 'HH:MM', got {text!r}") from None
    if not (0 <= minutes < 60 and 0 <= hours <= 24) or (hours == 24 and (minutes or not allow_24)):
        raise ValueError(f"{what} {text!r} is not a time of day (00:00–23:59{', or 24:00' if allow_24 else ''})")
    return hours * 60 + minutes


@dataclass(frozen=True, slots=True)
class WindowCap:
    """At most ``max_calls`` calls started between ``start`` and ``end`` local time (the
    policy's ``tz``) each day. ``end`` before ``start`` spans midnight; ``"24:00"`` is the
    end of the day. Precedent: GoIP's per-period talk limits ``08:00-12:00,100`` (DBL GoIP
    user manual, "Talk Time Limit"), counted here in calls."""

    start: str
    end: str
    max_calls: int

    def __post_init__(self) -> None:
        s = _parse_hhmm(self.start, what="WindowCap.start", allow_24=False)
        e = _parse_hhmm(self.end, what="WindowCap.end", allow_24=True)
        if s == e % 1440:
            raise ValueError(f"WindowCap {self.start}–{self.end} is empty; use 00:00–24:00 for a whole day")
        if self.max_calls < 1:
            # 0 would be a blackout: calling hours are the compliance gate's (controller),
            # and readiness that ends when a window opens would break "once ready, stays ready"
            raise ValueError(f"WindowCap.max_calls must be >= 1, got {self.max_calls}")

    @property
    def minutes(self) -> tuple[int, int]:
        """(start, end) in minutes after midnight; end may be 1440."""
        return (
            _parse_hhmm(self.start, what="start", allow_24=False),
            _parse_hhmm(self.end, what="end", allow_24=True),
        )


def _check_cap(name: str, value: int | float | None) -> None:
    if value is not None and (value < 0 or (isinstance(value, float) and math.isnan(value))):
        raise ValueError(f"{name} must be >= 0 or None (no cap), got {value!r}")


@dataclass(slots=True)
class SimLimits:
    """The traffic profile agreed with an operator, for one SIM (or, in ``operator_limits``,
    summed over all SIMs of the operator — there only the count, seconds and window caps
    apply; pauses are per SIM). ``None`` = no cap. Defaults are "no cap" because the numbers
    are a commercial agreement, not a protocol constant; docs/rotation.md gives typical ones.
    """

    calls_per_hour: int | None = None
    calls_per_day: int | None = None
    sms_per_hour: int | None = None
    sms_per_day: int | None = None
    min_pause_seconds: float = 0.0  # start-to-start spacing of calls on one SIM
    pause_after_call: tuple[float, float] = (0.0, 0.0)  # (min, max) seconds, equal = fixed
    max_call_seconds_per_day: float | None = None  # talk time, rolling 24 h
    windows: tuple[WindowCap, ...] = ()

    def __post_init__(self) -> None:
        for name in ("calls_per_hour", "calls_per_day", "sms_per_hour", "sms_per_day", "max_call_seconds_per_day"):
            _check_cap(f"SimLimits.{name}", getattr(self, name))
        if self.min_pause_seconds < 0:
            raise ValueError(f"SimLimits.min_pause_seconds must be >= 0, got {self.min_pause_seconds}")
        lo, hi = self.pause_after_call
        if not 0 <= lo <= hi:
            raise ValueError(f"SimLimits.pause_after_call must be (min, max) with 0 <= min <= max, got {self.pause_after_call}")
        self.windows = tuple(self.windows)


@dataclass(slots=True)
class LockRules:
    """SIM-bank gateway lock rules (ejoin's "Conditions for Locking Card": consecutive
    failed / no-alert / no-answer / short-duration calls, each with a threshold and a
    locking duration where -1 is permanent — here ``None``). ``None`` = rule off.

    * failed: the channel or network failed the call (``AttemptSummary.failed``);
    * not_alerting: the call never reached alerting (no ringback) and was not answered;
    * unanswered: the call was not answered (for any reason);
    * short: answered, but talk shorter than ``short_call_seconds`` (unanswered calls
      neither count nor break this streak, as in ejoin's short-duration check).
    """

    consecutive_failed: int | None = None
    consecutive_not_alerting: int | None = None
    consecutive_unanswered: int | None = None
    consecutive_short: int | None = None
    short_call_seconds: float = 5.0  # ejoin's default short-call threshold is a few seconds; 5 s ≈ a hang-up at the greeting
    lock_seconds: float | None = 3600.0  # None = until released; 1 h lets an operator's temporary bar lapse
    min_balance: float | None = None  # USSD balance below this locks until topped up or released

    def __post_init__(self) -> None:
        for name in ("consecutive_failed", "consecutive_not_alerting", "consecutive_unanswered", "consecutive_short"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"LockRules.{name} must be >= 1 or None (off), got {value}")
        if self.short_call_seconds < 0:
            raise ValueError(f"LockRules.short_call_seconds must be >= 0, got {self.short_call_seconds}")
        if self.lock_seconds is not None and self.lock_seconds <= 0:
            raise ValueError(f"LockRules.lock_seconds must be > 0 or None (until released), got {self.lock_seconds}")


@dataclass(frozen=True, slots=True)
class SimRef:
    """A SIM as the bank knows it: its number, operator (MCC+MNC), and where it sits."""

    sim_id: str
    msisdn: str
    operator: str
    channel_id: str
    slot: int = 0
    pools: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if not self.sim_id or not self.msisdn or not self.channel_id:
            raise ValueError(f"SimRef needs sim_id, msisdn and channel_id, got {self!r}")
        if self.slot < 0:
            raise ValueError(f"SimRef.slot must be >= 0, got {self.slot}")
        if not isinstance(self.pools, frozenset):
            object.__setattr__(self, "pools", frozenset(self.pools))


@dataclass(frozen=True, slots=True)
class Request:
    """One job asking for a SIM. ``shown`` is the callee's persistent history of numbers
    he was shown, oldest first; the policy never picks ``shown[-1]`` (unless the job fixes
    the number) and prefers numbers not in ``shown`` at all."""

    callee: str
    kind: JobKind = JobKind.CALL
    callee_operator: str | None = None
    required_operator: str | None = None
    pool: str | None = None
    fixed_msisdn: str | None = None
    shown: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Decision:
    sim_id: str
    channel_id: str
    msisdn: str
    needs_switch: bool  # the SIM sits in an inactive slot: the bank must switch first
    on_net: bool
    reason: str


class WaitingFor(enum.Enum):
    """Why a job waits, in one word a technician and a CRM can count by (the refusal's
    ``reason`` says it in a sentence). The policy gives the first six; the scheduler adds
    the ones about the job itself (``appliance.scheduler``)."""

    CHANNELS_BUSY = "channels_busy"  # SIMs in scope are in flight or on modems that are busy, switching or down
    CAPS = "caps"  # a per-SIM or per-operator count, talk-time or window cap
    SIM_PAUSE = "sim_pause"  # the pause between calls on the only SIMs left
    SIMS_LOCKED = "sims_locked"  # lock rules or quarantine hold every SIM in scope
    OPERATOR_SIMS_LOCKED = "operator_sims_locked"  # the same, when the job requires an operator
    CALLEE_LAST_NUMBER = "callee_last_number"  # the only free number is the one this callee saw last
    NO_SIM = "no_sim_in_scope"  # no SIM of the bank is in the job's scope at all


#: Waits that no clock and no ordinary bank event ends: only a person (release, unlock,
#: a SIM added) or a change of scope. A job that keeps one of these past a grace period
#: ends ``no_eligible_sim`` instead of waiting for ever (appliance.scheduler).
DEAD_ENDS: frozenset[WaitingFor] = frozenset(
    {WaitingFor.SIMS_LOCKED, WaitingFor.OPERATOR_SIMS_LOCKED, WaitingFor.CALLEE_LAST_NUMBER, WaitingFor.NO_SIM}
)


@dataclass(frozen=True, slots=True)
class Refusal:
    """Nothing qualifies now. ``retry_at`` is the earliest time a SIM in the request's scope
    becomes eligible by the clock alone (a cap window rolls, a pause or lock ends); ``None``
    when only an event can help (a channel going idle, a release, a top-up). The scheduler
    sleeps until ``retry_at`` or the next channel event, whichever comes first.
    ``waiting_for`` classifies the reason; ``dead_end`` says no event of the bank's own
    (a call ending, a cap rolling) can lift it."""

    reason: str
    retry_at: float | None
    waiting_for: WaitingFor = WaitingFor.CHANNELS_BUSY

    @property
    def dead_end(self) -> bool:
        return self.retry_at is None and self.waiting_for in DEAD_ENDS


@dataclass(frozen=True, slots=True)
class AttemptSummary:
    kind: JobKind
    alerted: bool
    answered: bool
    talk_seconds: float
    failed: bool  # channel/network failure, not a callee outcome
    cause: int | None = None  # Q.850 cause, evidence only

    def __post_init__(self) -> None:
        if self.talk_seconds < 0:
            raise ValueError(f"AttemptSummary.talk_seconds must be >= 0, got {self.talk_seconds}")


@dataclass(frozen=True, slots=True)
class Lock:
    sim_id: str
    rule: str
    until: float | None  # None = until released
    evidence: tuple[str, ...] = field(default=())
