"""Lock rules: streaks of bad calls on one SIM, as SIM-bank gateways count them.

Each rule is a row: the LockRules field holding its threshold, and a function that says,
for one finished attempt, whether it COUNTS toward the streak, BREAKS it, or leaves it
alone. The streak keeps the attempts themselves (bounded by the threshold), so a lock
carries its evidence: one line per attempt that triggered it.

Precedent: ejoin gateways' "Conditions for Locking Card" (consecutive failed, no-alert,
no-answer and short-duration calls, each with its own threshold and a locking duration);
GoIP and Dinstar banks have the same families.

Quarantine is the strictest rule (``QuarantineRule``): attempts that fail the way an
operator's barred SIMs fail, in a row, hold the SIM until a person releases it. It reads
more of an attempt than ``AttemptSummary`` holds (was an SMS refused as not subscribed,
was it a probe call), so it counts ``Barring`` signs with the same COUNT/BREAK/KEEP steps.
"""
from __future__ import annotations

import enum
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from common.clock import iso

from .model import AttemptSummary, JobKind, LockRules


class Step(enum.Enum):
    COUNT = "count"
    BREAK = "break"
    KEEP = "keep"


def _failed(a: AttemptSummary, rules: LockRules) -> Step:
    return Step.COUNT if a.failed else Step.BREAK


#: Q.850 causes (ITU-T Q.850 Table 1) that name the callee's side: the network routed the
#: call to the callee's network or line, so the SIM that placed it is not barred, whether
#: or not alerting was seen (a generic 27.007 modem without +CLCC reports sees none):
#: 1 unassigned number, 3 no route to destination, 16 normal clearing, 17 user busy,
#: 18 no user responding, 19 no answer (user alerted), 20 subscriber absent, 22 number
#: changed, 27 destination out of order, 28 invalid number format.
CALLEE_SIDE_CAUSES = frozenset({1, 3, 16, 17, 18, 19, 20, 22, 27, 28})
#: 21 "call rejected" is the callee declining as often as an operator barring a SIM
#: (quarantine counts it, with its own evidence rule): it neither counts nor breaks.
AMBIGUOUS_CAUSES = frozenset({21})


def _not_alerting(a: AttemptSummary, rules: LockRules) -> Step:
    """A call that never rang counts, unless its cause shows the network reached the
    callee's side (a busy, absent or unassigned number is no sign of a barred SIM: counted,
    the default rule locked healthy SIMs for an hour in the soak test)."""
    if a.alerted or a.answered or a.cause in CALLEE_SIDE_CAUSES:
        return Step.BREAK
    if a.cause in AMBIGUOUS_CAUSES:
        return Step.KEEP
    return Step.COUNT


def _unanswered(a: AttemptSummary, rules: LockRules) -> Step:
    return Step.BREAK if a.answered else Step.COUNT


def _short(a: AttemptSummary, rules: LockRules) -> Step:
    if not a.answered:
        return Step.KEEP
    return Step.COUNT if a.talk_seconds < rules.short_call_seconds else Step.BREAK


@dataclass(frozen=True, slots=True)
class Rule:
    name: str  # Lock.rule
    threshold_field: str  # the LockRules attribute
    step: Callable[[AttemptSummary, LockRules], Step]
    kinds: frozenset[JobKind]  # attempts of other kinds are ignored by this rule


_CALLS = frozenset({JobKind.CALL})
_ALL = frozenset(JobKind)

#: The rules, in the order they are checked (the first to fire names the lock). An HLR
#: probe call is released before answer by design and an SMS has no ringing, so only a
#: real failure of those counts (failed); the callee-facing rules look at calls only.
RULES: tuple[Rule, ...] = (
    Rule("consecutive_failed", "consecutive_failed", _failed, _ALL),
    Rule("consecutive_not_alerting", "consecutive_not_alerting", _not_alerting, _CALLS),
    Rule("consecutive_unanswered", "consecutive_unanswered", _unanswered, _CALLS),
    Rule("consecutive_short", "consecutive_short", _short, _CALLS),
)

LOW_BALANCE = "low_balance"
QUARANTINE = "quarantine"


def describe(at: float, a: AttemptSummary) -> str:
    """One line of evidence for one attempt."""
    stamp = iso(at, ms=False)
    cause = "-" if a.cause is None else str(a.cause)
    return (
        f"{stamp} {a.kind.value} failed={'yes' if a.failed else 'no'} alerted={'yes' if a.alerted else 'no'} "
        f"answered={'yes' if a.answered else 'no'} talk={a.talk_seconds:.1f}s cause={cause}"
    )


class Streaks:
    """The running streaks of one SIM; ``observe`` returns the rule that fired, if any,
    with the attempts that made it."""

    __slots__ = ("runs",)

    def __init__(self) -> None:
        self.runs: dict[str, deque[tuple[float, AttemptSummary]]] = {}

    def observe(self, at: float, a: AttemptSummary, rules: LockRules) -> tuple[str, tuple[str, ...]] | None:
        fired: tuple[str, tuple[str, ...]] | None = None
        for rule in RULES:
            threshold = getattr(rules, rule.threshold_field)
            if threshold is None or a.kind not in rule.kinds:
                continue
            step = rule.step(a, rules)
            if step is Step.KEEP:
                continue
            run = self.runs.get(rule.name)
            if step is Step.BREAK:
                if run:
                    run.clear()
                continue
            if run is None or run.maxlen != threshold:
                run = self.runs[rule.name] = deque(run or (), maxlen=threshold)
            run.append((at, a))
            if len(run) >= threshold and fired is None:
                fired = (rule.name, tuple(describe(t, x) for t, x in run))
                run.clear()  # the lock consumed the streak (ejoin: recount after a lock)
        return fired

    def clear(self) -> None:
        self.runs.clear()

    def to_json(self) -> dict:
        return {
            name: [[t, a.kind.value, a.alerted, a.answered, a.talk_seconds, a.failed, a.cause] for t, a in run]
            for name, run in self.runs.items()
            if run
        }

    @classmethod
    def from_json(cls, data: dict) -> Streaks:
        s = cls()
        for name, items in data.items():
            s.runs[name] = deque(
                (float(t), AttemptSummary(JobKind(k), bool(al), bool(an), float(talk), bool(f), c))
                for t, k, al, an, talk, f, c in items
            )
        return s


@dataclass(frozen=True, slots=True)
class QuarantineRule:
    """``consecutive`` attempts in a row that look barred quarantine the SIM: calls
    released without alerting with a Q.850 cause in ``causes`` (the [quarantine] section:
    8 operator determined barring, 21 call rejected, 50 facility not subscribed, 57 bearer
    capability not authorised), or SMS refused with +CMS ERROR 50."""

    causes: frozenset[int]
    consecutive: int

    def __post_init__(self) -> None:
        if self.consecutive < 1:
            raise ValueError(f"QuarantineRule.consecutive must be >= 1, got {self.consecutive}")


@dataclass(frozen=True, slots=True)
class Barring:
    """What one finished attempt says about its SIM being barred."""

    voice: bool  # a call or an HLR probe call: its release cause speaks
    alerted: bool
    cause: int | None
    sms_refused: bool  # +CMS ERROR 50, facility not subscribed (27.005 §3.2.5)
    channel_trouble: bool  # the outcome was channel_error or network_error


def barring_step(b: Barring, rule: QuarantineRule) -> Step:
    """A call counts when it never alerted and its cause is a barring cause, else it
    breaks the run. An SMS refused as not subscribed counts; other channel or network
    trouble of an SMS says nothing either way; any other SMS outcome breaks the run."""
    if b.voice:
        return Step.COUNT if not b.alerted and b.cause in rule.causes else Step.BREAK
    if b.sms_refused:
        return Step.COUNT
    return Step.KEEP if b.channel_trouble else Step.BREAK


def barring_line(job_id: str, at: float, b: Barring) -> str:
    """One line of quarantine evidence for one attempt."""
    why = f"cause {b.cause} without alerting" if b.voice else "SMS refused: not subscribed"
    return f"job {job_id}: {why} at {iso(at)}"


@dataclass(slots=True)
class BarringRuns:
    """The quarantine rule's running streaks, per SIM (in memory: a restart starts them
    afresh, as a released SIM does not)."""

    runs: dict[str, list[str]] = field(default_factory=dict)

    def observe(self, sim_id: str, job_id: str, at: float, b: Barring, rule: QuarantineRule) -> tuple[str, ...] | None:
        """Count one attempt; returns the evidence when the SIM is to be quarantined."""
        step = barring_step(b, rule)
        if step is Step.KEEP:
            return None
        run = self.runs.setdefault(sim_id, [])
        if step is Step.BREAK:
            run.clear()
            return None
        run.append(barring_line(job_id, at, b))
        if len(run) < rule.consecutive:
            return None
        evidence = tuple(run)
        run.clear()
        return evidence
