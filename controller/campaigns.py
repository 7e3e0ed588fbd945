"""Campaigns: the strategy a contact walks through, validated at create, and the table
that decides each contact's next step from a final result.

A strategy is a list of steps, run in order for every contact::

    [{"kind": "hlr", "method": "sms_ping"},                    # check the number first
     {"kind": "call", "attempts": 3, "ring_seconds": 30, "retry_after_seconds": 3600},
     {"kind": "sms", "text": "Dzień dobry {name}, prosimy o wpłatę {amount} {currency} do {due_date}."}]

A contact's cursor is (step, n): the n-th try of that step. After a final result the
``NEXT`` table says what happens: ``RETRY`` the same step (n+1, after
``retry_after_seconds``, while n+1 < attempts), go to the ``NEXT_STEP``, or ``FINISH``
the contact; ``after_result`` turns that into the cursor's new place (``Move``). A call answered by a human finishes the contact — reaching the SMS step
therefore means every call failed (the issue's "SMS when calls fail").

Templates may use the contact's fields (``TEMPLATE_FIELDS``); an unknown field or a
malformed template is refused when the campaign is created, not when the SMS is sent.
"""
from __future__ import annotations

import dataclasses
import enum
import string
from datetime import date, time, timedelta
from typing import Any, Final

from common.contract import MAX_TEXT_LENGTH

from .rules import JobKind, Settings

#: Contact fields an SMS template may use.
TEMPLATE_FIELDS: Final = frozenset({"name", "amount", "currency", "due_date", "case_ref", "external_id"})
#: Ring time bounds: below 15 s most callees cannot reach the phone; above 60 s networks
#: release the call themselves (3GPP 24.008 T303/T310 practice; Asterisk Dial() default 30-60 s).
RING_SECONDS: Final = (15.0, 60.0)
DEFAULT_RING_SECONDS: Final = 30.0
#: Gap between call attempts of one step; an hour spreads K attempts over a working day.
DEFAULT_RETRY_AFTER: Final = 3600.0
#: Attempts of one call step; the Reg F 7-in-7 cap bounds it anyway (rules.py).
MAX_STEP_ATTEMPTS: Final = 20
MAX_STEPS: Final = 10
#: An SMS longer than 10 concatenated parts is refused by the appliance: the wire contract's bound.
MAX_SMS_TEXT: Final = MAX_TEXT_LENGTH


class CampaignState(enum.Enum):
    RUNNING = "running"
    PAUSED = "paused"
    CANCELLED = "cancelled"
    DONE = "done"


#: Campaign state machine: {state: {action: new state}}; a missing key is a 409.
TRANSITIONS: Final[dict[CampaignState, dict[str, CampaignState]]] = {
    CampaignState.RUNNING: {"pause": CampaignState.PAUSED, "cancel": CampaignState.CANCELLED},
    CampaignState.PAUSED: {"resume": CampaignState.RUNNING, "cancel": CampaignState.CANCELLED},
    CampaignState.CANCELLED: {},
    # importing new contacts into a finished campaign reopens it
    CampaignState.DONE: {"reopen": CampaignState.RUNNING},
}


class Next(enum.Enum):
    RETRY = "retry"
    NEXT_STEP = "next_step"
    FINISH = "finish"
    REPLAN = "replan"  # the job never ran (expired on, or withdrawn from, the appliance): same step, same n


#: (step kind, outcome) -> what follows; outcomes not listed use the kind's default.
NEXT: Final[dict[JobKind, dict[str, Next]]] = {
    JobKind.HLR: {"invalid": Next.FINISH, "expired": Next.REPLAN, "cancelled": Next.REPLAN,
                  "channel_error": Next.RETRY, "no_eligible_sim": Next.RETRY},
    JobKind.CALL: {"answered_human": Next.FINISH, "invalid_number": Next.FINISH, "expired": Next.REPLAN,
                   "cancelled": Next.REPLAN, "no_eligible_sim": Next.RETRY},
    JobKind.SMS: {"expired": Next.REPLAN, "cancelled": Next.REPLAN, "channel_error": Next.RETRY,
                  "no_eligible_sim": Next.RETRY},
}
DEFAULT_NEXT: Final[dict[JobKind, Next]] = {JobKind.HLR: Next.NEXT_STEP, JobKind.CALL: Next.RETRY, JobKind.SMS: Next.NEXT_STEP}


class CampaignError(ValueError):
    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


@dataclasses.dataclass(frozen=True, slots=True)
class Step:
    kind: JobKind
    attempts: int = 1
    ring_seconds: float = DEFAULT_RING_SECONDS
    retry_after_seconds: float = DEFAULT_RETRY_AFTER
    text: str | None = None
    method: str = "sms_ping"

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind.value, "attempts": self.attempts,
                               "retry_after_seconds": self.retry_after_seconds}
        if self.kind is JobKind.CALL:
            out["ring_seconds"] = self.ring_seconds
        if self.kind is JobKind.SMS:
            out["text"] = self.text
        if self.kind is JobKind.HLR:
            out["method"] = self.method
        return out


def check_template(text: str, field: str) -> None:
    try:
        parsed = list(string.Formatter().parse(text))
    except ValueError as exc:
        raise CampaignError(field, f"malformed template ({exc}); write fields as {{name}}, a brace as {{{{") from None
    for _, name, spec, conv in parsed:
        if name is None:
            continue
        if name not in TEMPLATE_FIELDS:
            raise CampaignError(field, f"unknown field {{{name}}}; known: {', '.join(sorted(TEMPLATE_FIELDS))}")
        if spec or conv:
            raise CampaignError(field, f"{{{name}}} may not carry a format spec or conversion")


def render(text: str, contact: dict[str, Any]) -> str:
    return text.format(**{k: ("" if contact.get(k) is None else contact[k]) for k in TEMPLATE_FIELDS})


def _num(d: dict[str, Any], key: str, default: float, lo: float, hi: float, field: str) -> float:
    v = d.get(key, default)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not lo <= v <= hi:
        raise CampaignError(f"{field}.{key}", f"expected a number from {lo:g} to {hi:g}")
    return float(v)


def parse_step(raw: Any, i: int) -> Step:
    field = f"strategy[{i}]"
    if not isinstance(raw, dict):
        raise CampaignError(field, "expected an object with kind")
    try:
        kind = JobKind(raw.get("kind"))
    except ValueError:
        raise CampaignError(f"{field}.kind", "expected call, sms or hlr") from None
    known = {"kind", "attempts", "retry_after_seconds"} | {JobKind.CALL: {"ring_seconds"}, JobKind.SMS: {"text"},
                                                           JobKind.HLR: {"method"}}[kind]
    unknown = sorted(set(raw) - known)
    if unknown:
        raise CampaignError(f"{field}.{unknown[0]}", f"not a setting of a {kind.value} step")
    attempts = raw.get("attempts", 1)
    if isinstance(attempts, bool) or not isinstance(attempts, int) or not 1 <= attempts <= MAX_STEP_ATTEMPTS:
        raise CampaignError(f"{field}.attempts", f"expected an integer from 1 to {MAX_STEP_ATTEMPTS}")
    retry_after = _num(raw, "retry_after_seconds", DEFAULT_RETRY_AFTER, 60, 30 * 86400, field)
    if kind is JobKind.CALL:
        return Step(kind, attempts, _num(raw, "ring_seconds", DEFAULT_RING_SECONDS, *RING_SECONDS, field), retry_after)
    if kind is JobKind.SMS:
        text = raw.get("text")
        if not isinstance(text, str) or not text.strip():
            raise CampaignError(f"{field}.text", "an SMS step needs a text template")
        if len(text) > MAX_SMS_TEXT:
            raise CampaignError(f"{field}.text", f"longer than {MAX_SMS_TEXT} characters (10 SMS parts)")
        check_template(text, f"{field}.text")
        return Step(kind, attempts, retry_after_seconds=retry_after, text=text)
    method = raw.get("method", "sms_ping")
    if method not in ("sms_ping", "probe_call"):
        raise CampaignError(f"{field}.method", "expected sms_ping or probe_call")
    return Step(kind, attempts, retry_after_seconds=retry_after, method=method)


def parse_strategy(raw: Any) -> tuple[Step, ...]:
    if not isinstance(raw, list) or not raw:
        raise CampaignError("strategy", "expected a non-empty list of steps")
    if len(raw) > MAX_STEPS:
        raise CampaignError("strategy", f"at most {MAX_STEPS} steps")
    return tuple(parse_step(s, i) for i, s in enumerate(raw))


def _hhmm(v: Any, field: str) -> time:
    try:
        if not isinstance(v, str) or len(v) != 5:
            raise ValueError
        return time.fromisoformat(v)
    except ValueError:
        raise CampaignError(field, f"{v!r} is not HH:MM") from None


def _int(d: dict[str, Any], key: str, default: int, lo: int, hi: int) -> int:
    v = d.get(key, default)
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        raise CampaignError(f"rules.{key}", f"expected an integer from {lo} to {hi}")
    return v


RULE_KEYS: Final = frozenset({"hours", "max_attempts", "attempt_window_days", "quiet_days_after_conversation",
                              "daily_cap_per_number", "blackout_dates"})


def parse_rules(raw: Any) -> Settings:
    if raw is None:
        return Settings()
    if not isinstance(raw, dict):
        raise CampaignError("rules", "expected an object")
    unknown = sorted(set(raw) - RULE_KEYS)
    if unknown:
        raise CampaignError(f"rules.{unknown[0]}", f"unknown rule; known: {', '.join(sorted(RULE_KEYS))}")
    d = Settings()
    hours = d.hours
    if "hours" in raw:
        h = raw["hours"]
        if not isinstance(h, list) or len(h) != 2:
            raise CampaignError("rules.hours", 'expected ["08:00", "21:00"]')
        hours = (_hhmm(h[0], "rules.hours[0]"), _hhmm(h[1], "rules.hours[1]"))
        if not hours[0] < hours[1]:
            raise CampaignError("rules.hours", "start must be before end")
    blackout: set[date] = set()
    dates = raw.get("blackout_dates", [])
    if not isinstance(dates, list) or len(dates) > 366:
        raise CampaignError("rules.blackout_dates", "expected a list of YYYY-MM-DD dates")
    for i, v in enumerate(dates):
        try:
            blackout.add(date.fromisoformat(v))
        except (TypeError, ValueError):
            raise CampaignError(f"rules.blackout_dates[{i}]", f"{v!r} is not YYYY-MM-DD") from None
    return Settings(
        hours=hours,
        max_attempts=_int(raw, "max_attempts", d.max_attempts, 1, 100),
        attempt_window=timedelta(days=_int(raw, "attempt_window_days", d.attempt_window.days, 1, 90)),
        quiet_after_conversation=timedelta(days=_int(raw, "quiet_days_after_conversation", d.quiet_after_conversation.days, 0, 90)),
        daily_cap_per_number=_int(raw, "daily_cap_per_number", d.daily_cap_per_number, 1, 100),
        blackout_dates=frozenset(blackout),
    )


def rules_to_json(s: Settings) -> dict[str, Any]:
    return {"hours": [s.hours[0].strftime("%H:%M"), s.hours[1].strftime("%H:%M")], "max_attempts": s.max_attempts,
            "attempt_window_days": s.attempt_window.days,
            "quiet_days_after_conversation": s.quiet_after_conversation.days,
            "daily_cap_per_number": s.daily_cap_per_number,
            "blackout_dates": sorted(d.isoformat() for d in s.blackout_dates)}


def next_after(step: Step, n: int, outcome: str) -> Next:
    """What follows a final result of the n-th try (0-based) of ``step``."""
    nxt = NEXT[step.kind].get(outcome, DEFAULT_NEXT[step.kind])
    if nxt is Next.RETRY and n + 1 >= step.attempts:
        return Next.NEXT_STEP
    return nxt


def job_id(campaign_id: str, contact_id: int, step: int, n: int, gen: int) -> str:
    """A job's id: ``<campaign>.<contact>.<step>.<n>``, the same for every lease of one try,
    with ``.g<k>`` after the appliance reported the job expired (certainly never started)."""
    base = f"{campaign_id}.{contact_id}.{step}.{n}"
    return f"{base}.g{gen}" if gen else base


@dataclasses.dataclass(frozen=True, slots=True)
class Move:
    """Where a contact's cursor goes after a final result: ``state`` is ``waiting`` (due at
    ``next_at``) or ``done``; ``outcome`` None keeps the one it had."""

    state: str
    step: int
    n: int
    gen: int
    next_at: float
    outcome: str | None


def after_result(contact: dict[str, Any], steps: tuple[Step, ...], outcome: str, *, cancelled: bool, now: float) -> Move:
    """The contact's next place after a final ``outcome`` of its current try (a cancelled
    campaign's contacts end)."""
    i, n, gen = contact["step"], contact["n"], contact["gen"]
    step = steps[i]
    nxt = next_after(step, n, outcome)
    if cancelled:
        return Move("done", i, n, gen, now, "cancelled")
    if nxt is Next.RETRY:
        return Move("waiting", i, n + 1, 0, now + step.retry_after_seconds, outcome)
    if nxt is Next.REPLAN:
        return Move("waiting", i, n, gen + 1, now, None)
    if nxt is Next.NEXT_STEP and i + 1 < len(steps):
        return Move("waiting", i + 1, 0, 0, now, outcome)
    return Move("done", i, n, gen, now, outcome)
