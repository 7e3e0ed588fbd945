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

Templates may use the contact's fields (``TEMPLATE_FIELDS``) and the campaign's
``creditor``; an unknown field or a malformed template is refused when the campaign is
created, not when the SMS is sent.

A call step may also say what happens after the answer (issue 14, docs/controller.md
"Live-call steps"): ``on_answer`` (``hangup``, ``hold``, ``play``, ``amd``), the
``message`` template, the AMD's branches ``on_machine`` and ``on_human`` (``voicebot`` runs a
shipped ``dialogue`` with the contact's debt), ``lang``, ``promise_window_days``,
``after_promise`` and ``record``. ``call_options`` turns such a step and one contact into the
job's ``call`` options, or names the contact field that stops it (``ContactDataError``).
"""
from __future__ import annotations

import dataclasses
import enum
import re
import string
from datetime import date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, Final

from common import contract
from common.contract import MAX_MESSAGE_LENGTH, MAX_TEXT_LENGTH, MESSAGE_LANGS

from .rules import JobKind, Settings

#: Contact fields an SMS template (and a call's message) may use.
TEMPLATE_FIELDS: Final = frozenset({"name", "amount", "currency", "due_date", "case_ref", "external_id"})
#: ... and the campaign's own: the creditor the debtor owes (``creditor`` in the campaign body).
CAMPAIGN_FIELDS: Final = frozenset({"creditor"})
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
#: A call's message and the creditor's name are spoken, by the appliance or by the modem's own
#: TTS, whose command line carries 136 characters (common.contract.MAX_MESSAGE_LENGTH).
MAX_SPOKEN: Final = MAX_MESSAGE_LENGTH
#: The shipped dialogues (appliance/voicebot/dialogues/NAME.LANG.toml) by name, with their
#: languages. The controller may not import the appliance (tests/test_imports.py), so the
#: list is kept here; tests/test_controller_live.py holds it equal to the files.
DIALOGUES: Final[dict[str, frozenset[str]]] = {"promise_to_pay": frozenset({"pl", "en"})}
#: The voicebot's dialogue when a step names none: the only one shipped.
DEFAULT_DIALOGUE: Final = "promise_to_pay"
#: The latest acceptable promise date is today + this many days in the contact's zone. Two
#: weeks covers the next pay day for most wage cycles (semi-monthly pay); 60 days is two
#: monthly cycles, past which a "promise" is a new repayment plan for an agent, not a keypad.
DEFAULT_PROMISE_WINDOW_DAYS: Final = 14
PROMISE_WINDOW_DAYS: Final = (1, 60)
#: Answer policies of a call step (common.contract.OnAnswer), and the AMD's branches.
ON_ANSWER: Final = tuple(a.value for a in contract.OnAnswer)
ON_MACHINE: Final = tuple(a.value for a in contract.OnMachine)
ON_HUMAN: Final = tuple(a.value for a in contract.OnHuman)
#: After a promise to pay: ``finish`` the contact (the CRM takes it from there), or ``wait``
#: and go to the next step only once the promised date has passed.
AFTER_PROMISE: Final = ("finish", "wait")
#: A call step's settings beyond ring and retry (issue 14).
LIVE_KEYS: Final = frozenset({"on_answer", "message", "on_machine", "on_human", "lang", "dialogue",
                              "promise_window_days", "after_promise", "record"})


class CampaignState(enum.Enum):
    DRAFT = "draft"          # created, contacts may be imported; nothing is dialled until start
    RUNNING = "running"
    PAUSED = "paused"
    CANCELLED = "cancelled"
    DONE = "done"


#: Campaign state machine ``draft -> running <-> paused -> done | cancelled``:
#: {state: {action: new state}}; a missing key is a 409 unless the campaign is already in
#: the state the action asks for (``TARGET``): then it is a 200 that changes nothing, so a
#: retried ``pause`` is not an error.
TRANSITIONS: Final[dict[CampaignState, dict[str, CampaignState]]] = {
    CampaignState.DRAFT: {"start": CampaignState.RUNNING, "cancel": CampaignState.CANCELLED},
    CampaignState.RUNNING: {"pause": CampaignState.PAUSED, "cancel": CampaignState.CANCELLED},
    CampaignState.PAUSED: {"resume": CampaignState.RUNNING, "cancel": CampaignState.CANCELLED},
    CampaignState.CANCELLED: {},
    # importing new contacts into a finished campaign reopens it
    CampaignState.DONE: {"reopen": CampaignState.RUNNING},
}
#: The state each API action leads to (``start`` and ``resume`` both to running).
TARGET: Final[dict[str, CampaignState]] = {"start": CampaignState.RUNNING, "pause": CampaignState.PAUSED,
                                           "resume": CampaignState.RUNNING, "cancel": CampaignState.CANCELLED}


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
    # call steps, after the answer (None: the appliance's [calls] setting, as before issue 14)
    on_answer: str | None = None
    message: str | None = None  # a template, rendered per contact
    on_machine: str | None = None
    on_human: str | None = None
    lang: str | None = None  # None: the contact's language when pl or en, else pl
    dialogue: str | None = None
    promise_window_days: int = DEFAULT_PROMISE_WINDOW_DAYS
    after_promise: str = "finish"
    record: bool = False
    creditor: str | None = None  # the campaign's, copied onto each step that may say it

    @property
    def voicebot(self) -> bool:
        return self.on_answer == "amd" and self.on_human == "voicebot"

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind.value, "attempts": self.attempts,
                               "retry_after_seconds": self.retry_after_seconds}
        if self.kind is JobKind.CALL:
            out["ring_seconds"] = self.ring_seconds
            live = {"on_answer": self.on_answer, "message": self.message, "on_machine": self.on_machine,
                    "on_human": self.on_human, "lang": self.lang, "dialogue": self.dialogue}
            out.update({k: v for k, v in live.items() if v is not None})
            if self.voicebot:
                out.update(promise_window_days=self.promise_window_days, after_promise=self.after_promise)
            if self.record:
                out["record"] = True
        if self.kind is JobKind.SMS:
            out["text"] = self.text
        if self.kind is JobKind.HLR:
            out["method"] = self.method
        if self.creditor is not None:
            out["creditor"] = self.creditor
        return out


def template_fields(text: str, field: str) -> set[str]:
    """The fields ``text`` names; refuses a malformed template or an unknown field."""
    try:
        parsed = list(string.Formatter().parse(text))
    except ValueError as exc:
        raise CampaignError(field, f"malformed template ({exc}); write fields as {{name}}, a brace as {{{{") from None
    known = TEMPLATE_FIELDS | CAMPAIGN_FIELDS
    names = set()
    for _, name, spec, conv in parsed:
        if name is None:
            continue
        if name not in known:
            raise CampaignError(field, f"unknown field {{{name}}}; known: {', '.join(sorted(known))}")
        if spec or conv:
            raise CampaignError(field, f"{{{name}}} may not carry a format spec or conversion")
        names.add(name)
    return names


def check_template(text: str, field: str) -> None:
    template_fields(text, field)


def render(text: str, contact: dict[str, Any], creditor: str | None = None) -> str:
    values = {k: ("" if contact.get(k) is None else contact[k]) for k in TEMPLATE_FIELDS}
    return text.format(**values, creditor=creditor or "")


def _num(d: dict[str, Any], key: str, default: float, lo: float, hi: float, field: str) -> float:
    v = d.get(key, default)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not lo <= v <= hi:
        raise CampaignError(f"{field}.{key}", f"expected a number from {lo:g} to {hi:g}")
    return float(v)


def parse_creditor(v: Any, field: str) -> str | None:
    """The creditor's name as the debtor hears it (the voicebot's greeting, ``{creditor}``)."""
    if v is None:
        return None
    if not isinstance(v, str) or not v.strip() or len(v) > MAX_SPOKEN or re.search(r"[\x00-\x1f\x7f{}]", v):
        raise CampaignError(field, f"expected the creditor's name: 1-{MAX_SPOKEN} characters, no braces or control "
                            "characters (it is spoken on the call)")
    return v.strip()


def _choice(raw: dict[str, Any], key: str, allowed: tuple[str, ...], field: str) -> str | None:
    v = raw.get(key)
    if v is not None and v not in allowed:
        raise CampaignError(f"{field}.{key}", f"expected one of {', '.join(allowed)}, got {v!r}")
    return v


def _live(raw: dict[str, Any], field: str, creditor: str | None) -> dict[str, Any]:
    """A call step's settings after the answer, each checked and named when wrong."""
    on_answer = _choice(raw, "on_answer", ON_ANSWER, field)
    on_machine = _choice(raw, "on_machine", ON_MACHINE, field)
    on_human = _choice(raw, "on_human", ON_HUMAN, field)
    lang = _choice(raw, "lang", MESSAGE_LANGS, field)
    after_promise = _choice(raw, "after_promise", AFTER_PROMISE, field)
    for key, v in (("on_machine", on_machine), ("on_human", on_human)):
        if v is not None and on_answer != "amd":
            raise CampaignError(f"{field}.{key}", 'only with "on_answer": "amd" (the AMD decides which branch runs)')
    voicebot = on_answer == "amd" and on_human == "voicebot"
    for key in ("dialogue", "promise_window_days", "after_promise"):
        if key in raw and not voicebot:
            raise CampaignError(f"{field}.{key}", 'only with "on_answer": "amd" and "on_human": "voicebot"')
    dialogue = raw.get("dialogue", DEFAULT_DIALOGUE if voicebot else None)
    if dialogue is not None and (not isinstance(dialogue, str) or dialogue not in DIALOGUES):
        raise CampaignError(f"{field}.dialogue", f"{dialogue!r} is not a shipped dialogue; available: "
                            + ", ".join(f"{n} ({'/'.join(sorted(langs))})" for n, langs in sorted(DIALOGUES.items())))
    if dialogue is not None and lang is not None and lang not in DIALOGUES[dialogue]:
        raise CampaignError(f"{field}.lang", f"the dialogue {dialogue!r} exists in {', '.join(sorted(DIALOGUES[dialogue]))}")
    window = raw.get("promise_window_days", DEFAULT_PROMISE_WINDOW_DAYS)
    lo, hi = PROMISE_WINDOW_DAYS
    if isinstance(window, bool) or not isinstance(window, int) or not lo <= window <= hi:
        raise CampaignError(f"{field}.promise_window_days", f"expected an integer from {lo} to {hi} "
                            "(the latest acceptable promise date is today + this many days)")
    record = raw.get("record", False)
    if not isinstance(record, bool):
        raise CampaignError(f"{field}.record", "expected true or false")
    message = raw.get("message")
    if message is not None:
        if not isinstance(message, str) or not message.strip():
            raise CampaignError(f"{field}.message", "expected the text the callee hears, a template like an SMS text")
        if len(message) > MAX_TEXT_LENGTH:
            raise CampaignError(f"{field}.message", f"{len(message)} characters; a spoken message is at most {MAX_SPOKEN} "
                                "once rendered (the modems' TTS line)")
        names = template_fields(message, f"{field}.message")
        literal = "".join(text for text, *_ in string.Formatter().parse(message))
        if len(literal) > MAX_SPOKEN:
            raise CampaignError(f"{field}.message", f"{len(literal)} characters without its fields; a spoken message is at "
                                f"most {MAX_SPOKEN} once rendered (the modems' TTS line)")
        if "creditor" in names and creditor is None:
            raise CampaignError(f"{field}.message", 'names {creditor}: give the campaign\'s "creditor"')
    needs_message = {"play": on_answer == "play",
                     'on_machine "leave_message"': on_answer == "amd" and (on_machine or "leave_message") == "leave_message",
                     'on_human "play"': on_answer == "amd" and (on_human or "play") == "play"}
    for what, needed in needs_message.items():
        if needed and message is None:
            raise CampaignError(f"{field}.message", f"{what} needs the message to play, e.g. "
                                '"Dzień dobry, tu {creditor}. Prosimy o kontakt."')
    if voicebot and creditor is None:
        raise CampaignError("creditor", f'{field} runs the voicebot, which names the creditor: give the campaign\'s '
                            '"creditor" (e.g. "Kredyt Plus")')
    return {"on_answer": on_answer, "message": message, "on_machine": on_machine, "on_human": on_human, "lang": lang,
            "dialogue": dialogue, "promise_window_days": window, "after_promise": after_promise or "finish",
            "record": record}


def parse_step(raw: Any, i: int, creditor: str | None = None) -> Step:
    """Step ``i`` of a strategy; ``creditor`` is the campaign's (a step may name its own)."""
    field = f"strategy[{i}]"
    if not isinstance(raw, dict):
        raise CampaignError(field, "expected an object with kind")
    try:
        kind = JobKind(raw.get("kind"))
    except ValueError:
        raise CampaignError(f"{field}.kind", "expected call, sms or hlr") from None
    known = {"kind", "attempts", "retry_after_seconds", "creditor"} | {
        JobKind.CALL: {"ring_seconds", *LIVE_KEYS}, JobKind.SMS: {"text"}, JobKind.HLR: {"method"}}[kind]
    unknown = sorted(set(raw) - known)
    if unknown:
        raise CampaignError(f"{field}.{unknown[0]}", f"not a setting of a {kind.value} step")
    attempts = raw.get("attempts", 1)
    if isinstance(attempts, bool) or not isinstance(attempts, int) or not 1 <= attempts <= MAX_STEP_ATTEMPTS:
        raise CampaignError(f"{field}.attempts", f"expected an integer from 1 to {MAX_STEP_ATTEMPTS}")
    retry_after = _num(raw, "retry_after_seconds", DEFAULT_RETRY_AFTER, 60, 30 * 86400, field)
    if "creditor" in raw:
        creditor = parse_creditor(raw["creditor"], f"{field}.creditor")
    if kind is JobKind.CALL:
        live = _live(raw, field, creditor)
        uses = live["message"] is not None or (live["on_answer"] == "amd" and live["on_human"] == "voicebot")
        return Step(kind, attempts, _num(raw, "ring_seconds", DEFAULT_RING_SECONDS, *RING_SECONDS, field), retry_after,
                    **live, creditor=creditor if uses else None)
    if kind is JobKind.SMS:
        text = raw.get("text")
        if not isinstance(text, str) or not text.strip():
            raise CampaignError(f"{field}.text", "an SMS step needs a text template")
        if len(text) > MAX_SMS_TEXT:
            raise CampaignError(f"{field}.text", f"longer than {MAX_SMS_TEXT} characters (10 SMS parts)")
        names = template_fields(text, f"{field}.text")
        if "creditor" in names and creditor is None:
            raise CampaignError(f"{field}.text", 'names {creditor}: give the campaign\'s "creditor"')
        return Step(kind, attempts, retry_after_seconds=retry_after, text=text,
                    creditor=creditor if "creditor" in names else None)
    method = raw.get("method", "sms_ping")
    if method not in ("sms_ping", "probe_call"):
        raise CampaignError(f"{field}.method", "expected sms_ping or probe_call")
    return Step(kind, attempts, retry_after_seconds=retry_after, method=method)


def parse_strategy(raw: Any, creditor: Any = None) -> tuple[Step, ...]:
    """A campaign's steps; ``creditor`` (the campaign body's) is copied onto each step that says it."""
    if not isinstance(raw, list) or not raw:
        raise CampaignError("strategy", "expected a non-empty list of steps")
    if len(raw) > MAX_STEPS:
        raise CampaignError("strategy", f"at most {MAX_STEPS} steps")
    name = parse_creditor(creditor, "creditor")
    return tuple(parse_step(s, i, name) for i, s in enumerate(raw))


def strategy_problems(raw: Any, creditor: Any = None) -> tuple[tuple[Step, ...], list[CampaignError]]:
    """``parse_strategy`` for the API: every bad step reported (each with its first bad
    setting), and a bad creditor, instead of only the first problem of the request."""
    problems: list[CampaignError] = []
    try:
        name = parse_creditor(creditor, "creditor")
    except CampaignError as exc:
        problems.append(exc)
        name = "-"  # the steps are judged as if it were given: its own problem is reported once
    if not isinstance(raw, list) or not raw:
        return (), [*problems, CampaignError("strategy", "expected a non-empty list of steps")]
    if len(raw) > MAX_STEPS:
        return (), [*problems, CampaignError("strategy", f"at most {MAX_STEPS} steps")]
    steps: list[Step] = []
    for i, s in enumerate(raw):
        try:
            steps.append(parse_step(s, i, name))
        except CampaignError as exc:
            if exc.field != "creditor" or not any(p.field == "creditor" for p in problems):
                problems.append(exc)
    return (tuple(steps), []) if not problems else ((), problems)


def rules_problems(raw: Any) -> tuple[Settings | None, list[CampaignError]]:
    """``parse_rules`` for the API: every unknown rule and every bad one reported (each
    rule is checked on its own; they do not depend on each other)."""
    if raw is None or not isinstance(raw, dict):
        try:
            return parse_rules(raw), []
        except CampaignError as exc:
            return None, [exc]
    problems = [CampaignError(f"rules.{k}", f"unknown rule; known: {', '.join(sorted(RULE_KEYS))}")
                for k in sorted(set(raw) - RULE_KEYS, key=str)]
    for key in sorted(set(raw) & RULE_KEYS):
        try:
            parse_rules({key: raw[key]})
        except CampaignError as exc:
            problems.append(exc)
    return (parse_rules(raw), []) if not problems else (None, problems)


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
                              "daily_cap_per_number", "blackout_dates", "recording_retention_days"})


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
        recording_retention_days=_int(raw, "recording_retention_days", d.recording_retention_days, 1, 3650),
    )


def rules_to_json(s: Settings) -> dict[str, Any]:
    return {"hours": [s.hours[0].strftime("%H:%M"), s.hours[1].strftime("%H:%M")], "max_attempts": s.max_attempts,
            "attempt_window_days": s.attempt_window.days,
            "quiet_days_after_conversation": s.quiet_after_conversation.days,
            "daily_cap_per_number": s.daily_cap_per_number,
            "blackout_dates": sorted(d.isoformat() for d in s.blackout_dates),
            "recording_retention_days": s.recording_retention_days}


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


def after_result(contact: dict[str, Any], steps: tuple[Step, ...], outcome: str, *, cancelled: bool, now: float,
                 promise_over: float | None = None) -> Move:
    """The contact's next place after a final ``outcome`` of its current try (a cancelled
    campaign's contacts end). ``promise_over`` (epoch) is set when the try took a valid
    promise to pay: the step's ``after_promise`` then decides — ``finish`` the contact, or
    ``wait`` and take the next step once the promise has passed (``promise_over``)."""
    i, n, gen = contact["step"], contact["n"], contact["gen"]
    step = steps[i]
    nxt = next_after(step, n, outcome)
    if cancelled:
        return Move("done", i, n, gen, now, "cancelled")
    if promise_over is not None:
        if step.after_promise == "wait" and i + 1 < len(steps):
            return Move("waiting", i + 1, 0, 0, max(now, promise_over), outcome)
        return Move("done", i, n, gen, now, outcome)
    if nxt is Next.RETRY:
        return Move("waiting", i, n + 1, 0, now + step.retry_after_seconds, outcome)
    if nxt is Next.REPLAN:
        return Move("waiting", i, n, gen + 1, now, None)
    if nxt is Next.NEXT_STEP and i + 1 < len(steps):
        return Move("waiting", i + 1, 0, 0, now, outcome)
    return Move("done", i, n, gen, now, outcome)


# -- a call step's options for one contact ----------------------------------------------------
class ContactDataError(ValueError):
    """The contact lacks what its step needs (the voicebot's debt, a message that fits):
    the dispatcher records a refusal naming ``field``, and no job reaches the appliance."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


def call_lang(step: Step, contact: dict[str, Any]) -> str:
    """The step's ``lang``, else the contact's language when it is pl or en, else pl."""
    if step.lang is not None:
        return step.lang
    primary = str(contact.get("language") or "").split("-")[0].lower()
    return primary if primary in MESSAGE_LANGS else "pl"


def promise_window(step: Step, today: date) -> tuple[date, date]:
    """The dates a promise may name: today … today + ``promise_window_days`` (callee's zone)."""
    return today, today + timedelta(days=step.promise_window_days)


def _voicebot_vars(step: Step, contact: dict[str, Any], today: date) -> contract.VoicebotVars:
    def need(key: str) -> Any:
        v = contact.get(key)
        if v is None or (isinstance(v, str) and not v.strip()):
            raise ContactDataError(key, f"the voicebot step needs the contact's {key} (it is empty); re-import the contact with it")
        return v

    name = str(need("name"))
    if len(name) > MAX_SPOKEN:
        raise ContactDataError("name", f"{len(name)} characters; the voicebot says at most {MAX_SPOKEN}")
    try:
        amount = Decimal(str(need("amount")))
    except InvalidOperation:
        raise ContactDataError("amount", f"{contact.get('amount')!r} is not an amount") from None
    currency = str(need("currency"))
    if not re.fullmatch(r"[A-Z]{3}", currency):
        raise ContactDataError("currency", f"{currency!r} is not an ISO 4217 code")
    try:
        due = date.fromisoformat(str(need("due_date")))
    except ValueError:
        raise ContactDataError("due_date", f"{contact.get('due_date')!r} is not YYYY-MM-DD") from None
    start, end = promise_window(step, today)
    assert step.creditor is not None  # parse_step refuses a voicebot step without one
    return contract.VoicebotVars(creditor=step.creditor, debtor_name=name, amount=amount, currency=currency, due_date=due,
                                 window_end=end, window_start=start)


def call_options(step: Step, contact: dict[str, Any], now: datetime, zone: Any) -> contract.CallOptions:
    """The job's ``call`` for ``contact`` at ``now`` (its ``zone``, a ZoneInfo, fixes today);
    raises ``ContactDataError`` when the contact cannot make a job the appliance would take."""
    opts: dict[str, Any] = {"max_ring_seconds": step.ring_seconds}
    if step.record:
        opts["record"] = True
    if step.on_answer is None:
        return contract.CallOptions(**opts)
    opts["on_answer"] = contract.OnAnswer(step.on_answer)
    lang = call_lang(step, contact)
    if step.dialogue is not None and lang not in DIALOGUES[step.dialogue]:
        lang = "pl" if "pl" in DIALOGUES[step.dialogue] else min(DIALOGUES[step.dialogue])
    opts["lang"] = lang
    if step.message is not None:
        text = render(step.message, contact, step.creditor)
        if problem := contract.message_problem(text):
            raise ContactDataError("message", f"the step's message for this contact: {problem}")
        opts["message"] = text
    if step.on_machine is not None:
        opts["on_machine"] = contract.OnMachine(step.on_machine)
    if step.on_human is not None:
        opts["on_human"] = contract.OnHuman(step.on_human)
    if step.voicebot:
        opts["dialogue"] = step.dialogue
        opts["voicebot"] = _voicebot_vars(step, contact, now.astimezone(zone).date())
    return contract.CallOptions(**opts)


#: What a voicebot result says, as the CRM reads it at the top of a result (the whole of it,
#: path and digits included, stays in ``detail.voicebot``).
VOICEBOT_OUTCOME: Final = ("identity", "promise_date", "callback_requested")


def voicebot_outcome(body: Any) -> dict[str, Any] | None:
    """A result body's voicebot outcome: identity (confirmed, denied, unknown), promise_date
    (ISO date or None), callback_requested — or None when no dialogue ran."""
    vb = body.get("voicebot") if isinstance(body, dict) else None
    if not isinstance(vb, dict):
        return None
    return {"identity": vb.get("identity", "unknown"), "promise_date": vb.get("promise_date"),
            "callback_requested": bool(vb.get("callback_requested", False))}


def valid_promise(body: Any, spec: Any) -> date | None:
    """The promise date of a voicebot result when it is a real date inside the window the
    job offered (``spec``: the job as sent; its call.voicebot window), else None."""
    out = voicebot_outcome(body)
    raw = out and out["promise_date"]
    if not isinstance(raw, str):
        return None
    try:
        promised = date.fromisoformat(raw)
    except ValueError:
        return None
    call = spec.get("call") if isinstance(spec, dict) else None
    vb = call.get("voicebot") if isinstance(call, dict) else None
    vb = vb if isinstance(vb, dict) else {}
    try:
        start = date.fromisoformat(vb["window_start"]) if vb.get("window_start") else None
        end = date.fromisoformat(vb["window_end"]) if vb.get("window_end") else None
    except (TypeError, ValueError):
        return None
    if (start is not None and promised < start) or (end is not None and promised > end):
        return None
    return promised
