"""The wire contract: jobs, results and the fleet link's messages, as msgspec Structs that
the controller and the appliance both import (docs/architecture.md, Style 12: one
definition of every message). It sits in ``common/`` because both sides need it and
neither may import the other.

* ``Job`` is what the controller's dispatcher builds and what the appliance accepts over
  the link and at ``POST /api/jobs``; ``job_from`` checks one (types and bounds as msgspec
  ``Meta`` constraints, the rest in ``__post_init__``) and names the field and the reason
  of the first mistake (``ContractError``), in the words the appliance used before.
* ``Result`` is one result body, as the appliance's outbox sends it; ``Outcome`` every
  outcome a result can carry.
* ``Hello`` … ``Error`` are the link's messages, tagged by ``type`` (docs/controller.md,
  "The fleet link"); ``decode_message`` / ``encode_message`` read and write one frame.

Optional fields default to ``UNSET`` and are then left out of the JSON, so a message
decoded and encoded again is the same JSON: no field appears that was not sent.
"""
from __future__ import annotations

import datetime
import decimal
import enum
import math
import re
from collections.abc import Callable, Mapping
from typing import Annotated, Any, Final, Literal

import msgspec
from msgspec import UNSET, Meta, UnsetType, field

from common import phone
from common.configkit import WAIT, Bound
from common.phone import shown

__all__ = [
    "Ack",
    "AmdReport",
    "CallOptions",
    "Cancel",
    "ContractError",
    "Error",
    "Heartbeat",
    "Hello",
    "Hints",
    "HlrMethod",
    "Inbound",
    "InboundAck",
    "InboundEvent",
    "Job",
    "JobKind",
    "Jobs",
    "LinkMessage",
    "OnAnswer",
    "OnHuman",
    "OnMachine",
    "Outcome",
    "Rejection",
    "Result",
    "Results",
    "ResultsAck",
    "Retry",
    "SimInfo",
    "VoicebotVars",
    "decode_message",
    "encode_message",
    "job_from",
    "message_problem",
]


class JobKind(enum.Enum):
    CALL = "call"
    SMS = "sms"
    HLR = "hlr"


class Outcome(enum.Enum):
    """Every outcome a result carries: the call vocabulary of docs/architecture.md, then
    what SMS and HLR jobs and the appliance's own endings add."""

    # calls (modem_drivers.q850 maps release causes to these)
    ANSWERED_HUMAN = "answered_human"
    ANSWERED_MACHINE = "answered_machine"
    BUSY = "busy"
    NO_ANSWER = "no_answer"
    REJECTED = "rejected"
    UNREACHABLE = "unreachable"
    INVALID_NUMBER = "invalid_number"
    NETWORK_ERROR = "network_error"
    CHANNEL_ERROR = "channel_error"
    AUDIO_FAULT = "audio_fault"  # answered, but no live frames on the audio port within 500 ms (issue 14)
    CANCELLED = "cancelled"
    REFUSED_BY_POLICY = "refused_by_policy"  # the controller's contact rules
    # SMS: a non-final submitted, then the status reports' verdict
    SUBMITTED = "submitted"
    DELIVERED = "delivered"
    FAILED = "failed"
    NO_REPORT = "no_report"
    # HLR-style checks (appliance/jobs/hlr.py HlrStatus)
    ACTIVE = "active"
    ABSENT = "absent"
    INVALID = "invalid"
    UNKNOWN = "unknown"
    # jobs the appliance ended itself
    INTERRUPTED = "interrupted"  # the process stopped during the attempt
    EXPIRED = "expired"  # never started before its deadline (the controller's lease)
    NO_ELIGIBLE_SIM = "no_eligible_sim"  # no SIM of the bank could serve it


class OnAnswer(enum.Enum):
    """What an answered call does (appliance/jobs/call.py ANSWER_ACTIONS)."""

    HANGUP = "hangup"
    HOLD = "hold"
    PLAY = "play"
    AMD = "amd"  # decide human or machine on the live audio, then on_machine / on_human (issue 14)


class OnMachine(enum.Enum):
    """``on_answer: "amd"`` and the far end is a machine (appliance/jobs/live.py)."""

    LEAVE_MESSAGE = "leave_message"  # after the beep (or the greeting's end when none comes within 10 s)
    HANGUP = "hangup"


class OnHuman(enum.Enum):
    """``on_answer: "amd"`` and a person is (or may be) on the line: human or unsure."""

    PLAY = "play"
    VOICEBOT = "voicebot"  # a named dialogue (appliance/voicebot); refused until its live runner exists
    HANGUP = "hangup"


#: Whether this build can run ``on_human: "voicebot"`` on a live call (appliance/voicebot/
#: live.py): a job we cannot run is refused when it is received, never accepted and then failed.
VOICEBOT_LIVE: Final = True
#: Languages of the appliance's own prompts (appliance/voicebot/tts.py VOICES).
MESSAGE_LANGS: Final = ("pl", "en")


class HlrMethod(enum.Enum):
    SMS_PING = "sms_ping"
    PROBE_CALL = "probe_call"


class ContractError(ValueError):
    """A message that breaks the contract: ``field`` (a dotted path such as
    ``call.message``) and ``reason`` in words."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


# -- bounds ------------------------------------------------------------------------------------
#: Job ids are the caller's keys; bounded so a store row stays small.
MAX_ID_LENGTH: Final = 128
#: An SMS text longer than this would need more than 10 concatenated parts (GSM-7 153
#: characters per part, 23.038/23.040 §9.2.3.24.1); operators cap far lower.
MAX_TEXT_LENGTH: Final = 1530
#: A message is spoken with one TTS command line: 136 characters of any alphabet fit the
#: 556-character line of the SIM800 manual (§1.4.4) as UCS2 hex (modem_drivers.dialects
#: TTS_MAX_CHARS, which tests/test_contract.py holds equal to this).
MAX_MESSAGE_LENGTH: Final = 136
#: Hints a job may turn from a preference into a filter (pool and fixed_number always are).
REQUIRABLE_HINTS: Final = frozenset({"operator"})
#: Priorities are 32-bit signed integers, the width of a CRM's INTEGER column (ISO SQL):
#: a larger one is a mistake, and 2**70 once reached SQLite as an OverflowError.
PRIORITY: Final = Bound(-2**31, 2**31 - 1, "a 32-bit signed integer; higher runs first")
#: Times are UTC epoch seconds up to 9999-12-31T23:59:59Z, the last instant Python's
#: datetime holds: results and waits print them as ISO 8601.
EPOCH: Final = Bound(0, 253402300799, "UTC epoch seconds up to 9999-12-31T23:59:59Z")
#: A job may set what [calls] and [retry] set, within the same bounds (appliance/config.py).
CALL_BOUNDS: Final = {
    # 3GPP TS 24.008 table 11.4: T301 (alerting, network side) is at least 3 minutes;
    # ringing longer than that is cut by the network anyway.
    "max_ring_seconds": Bound(0, 180, "seconds; the network clears a call ringing 3 minutes (3GPP TS 24.008, T301)",
                              lo_open=True),
    "max_talk_seconds": WAIT,
}
RETRY_BOUNDS: Final = {
    # Reg F 12 CFR 1006.14(b)(2)(i) presumes 7 call attempts in 7 days; 100 is far past any policy.
    "max_attempts": Bound(1, 100, "the first attempt counts: 1 means no retry; at most 100"),
    "backoff_seconds": WAIT,
    "backoff_factor": Bound(1, 10, "1 keeps the backoff constant, 2 doubles it; above 10 the third try is days away"),
    "max_channel_retries": Bound(0, 100, "retries on another SIM after our side failed; at most 100"),
    "channel_retry_seconds": WAIT,
}
_INTEGERS: Final = frozenset({"priority", "retry.max_attempts", "retry.max_channel_retries"})
#: retry_outcomes: at most this many, each at most this long (an outcome name is ~20).
MAX_RETRY_OUTCOMES, MAX_OUTCOME_LENGTH = 20, 40
#: A controller's campaign or contact id: text, or a row id within SQLite's 64 bits.
MAX_ROW_ID: Final = 2**63 - 1


def _meta(b: Bound, integer: bool) -> Meta:
    kind = int if integer else float
    lo = {"gt": kind(b.lo)} if b.lo_open else {"ge": kind(b.lo)}
    return Meta(**lo, **({} if b.hi is None else {"le": kind(b.hi)}))


def _number(b: Bound) -> Any:
    """A JSON number within ``b``, kept as written (an int stays an int on the wire)."""
    return Annotated[int, _meta(b, True)] | Annotated[float, _meta(b, False)]


Id = Annotated[str, Meta(min_length=1, max_length=MAX_ID_LENGTH, pattern=r"\S")]  # not blank
Epoch = Annotated[float, _meta(EPOCH, False)]
OperatorCode = Annotated[str, Meta(pattern=r"^\d{5,6}\Z")]  # MCC + MNC, 3GPP TS 23.003 §2.2
RowId = Annotated[str, Meta(max_length=MAX_ID_LENGTH)] | Annotated[int, Meta(ge=0, le=MAX_ROW_ID)]
Num = int | float


# -- the job -----------------------------------------------------------------------------------
def message_problem(message: Any) -> str | None:
    """Why ``message`` cannot be played by every TTS modem, or None when it can."""
    if not isinstance(message, str) or not message.strip():
        return "expected the non-empty text the callee will hear"
    if len(message) > MAX_MESSAGE_LENGTH:
        return (f"{len(message)} characters is more than {MAX_MESSAGE_LENGTH}, the longest text a modem's "
                "TTS command line carries (556 characters, SIM800 manual §1.4.4, at 4 hex digits a character)")
    if any(ord(ch) > 0xFFFF for ch in message):
        return "characters outside UCS2 (e.g. emoji) cannot be spoken by the modems' TTS"
    return None


def _e164(value: Any, region: str | None, field_name: str) -> str:
    """A written number -> E.164 (``common.phone.normalise``; only its length is checked:
    the controller checked the number plan, and a new range is never refused at the edge)."""
    try:
        return phone.normalise(value, region, valid=False)
    except phone.NumberError as exc:
        raise ContractError(field_name, str(exc)) from None


class VoicebotVars(msgspec.Struct, forbid_unknown_fields=True):
    """``call.voicebot``: what the dialogue says and accepts (appliance/voicebot/variables.py
    ``JobVariables``): the creditor, the debtor's name for the identity question, the debt,
    and the last acceptable promise date (the window starts today unless given)."""

    creditor: Annotated[str, Meta(min_length=1, max_length=MAX_MESSAGE_LENGTH)]
    debtor_name: Annotated[str, Meta(min_length=1, max_length=MAX_MESSAGE_LENGTH)]
    amount: decimal.Decimal
    currency: Annotated[str, Meta(pattern=r"^[A-Z]{3}\Z")]  # ISO 4217
    due_date: datetime.date
    window_end: datetime.date
    window_start: datetime.date | UnsetType = UNSET

    def __post_init__(self) -> None:
        if not self.amount.is_finite() or self.amount < 0:
            raise ContractError("amount", f"expected a non-negative amount, e.g. \"123.45\", got {self.amount}")
        if self.window_start is not UNSET and self.window_end < self.window_start:
            raise ContractError("window_end", f"{self.window_end} is before window_start {self.window_start}")


class CallOptions(msgspec.Struct, forbid_unknown_fields=True):
    """``call``: a call job's own settings; unset ones come from the appliance's [calls]."""

    max_ring_seconds: _number(CALL_BOUNDS["max_ring_seconds"]) | UnsetType = UNSET  # type: ignore[valid-type]
    max_talk_seconds: _number(CALL_BOUNDS["max_talk_seconds"]) | UnsetType = UNSET  # type: ignore[valid-type]
    on_answer: OnAnswer | UnsetType = UNSET
    message: str | UnsetType = UNSET  # "play" (or amd's play / leave_message): the text the callee hears
    on_machine: OnMachine | UnsetType = UNSET  # on_answer "amd": default leave_message
    on_human: OnHuman | UnsetType = UNSET  # on_answer "amd": default play
    lang: Literal["pl", "en"] | UnsetType = UNSET  # the voice the appliance speaks message in (default pl)
    dialogue: Annotated[str, Meta(min_length=1, max_length=MAX_ID_LENGTH)] | UnsetType = UNSET  # on_human "voicebot"
    voicebot: VoicebotVars | UnsetType = UNSET  # on_human "voicebot": the dialogue's variables
    record: bool | UnsetType = UNSET  # record the answered call, both directions (campaign option; default off)

    def __post_init__(self) -> None:
        if self.on_answer is OnAnswer.PLAY and self.message is UNSET:
            raise ContractError("message", 'on_answer "play" needs the message to play, e.g. "message": "Dzień dobry…"')
        if self.on_human is OnHuman.VOICEBOT:
            if not VOICEBOT_LIVE:
                raise ContractError("on_human", '"voicebot" is not yet available on live calls (its live runner is '
                                    'not built); use "play" or "hangup"')
            if self.dialogue is UNSET:
                raise ContractError("dialogue", 'on_human "voicebot" needs the dialogue to run, e.g. "promise_to_pay"')
            if self.voicebot is UNSET:
                raise ContractError("voicebot", 'on_human "voicebot" needs the dialogue\'s variables: creditor, '
                                    'debtor_name, amount, currency, due_date, window_end')
        if self.message is not UNSET and (problem := message_problem(self.message)):
            raise ContractError("message", problem)


class Hints(msgspec.Struct, forbid_unknown_fields=True):
    """``hints``: where the job would rather run. ``operator`` ranks SIMs (on-net) unless
    ``require`` names it; ``pool`` and ``fixed_number`` always filter."""

    operator: OperatorCode | UnsetType = UNSET
    require: list[Literal["operator"]] | UnsetType = UNSET
    pool: Annotated[str, Meta(min_length=1, max_length=MAX_ID_LENGTH)] | UnsetType = UNSET
    fixed_number: str | UnsetType = UNSET
    callee_operator: OperatorCode | UnsetType = UNSET  # the callee's network, if the CRM knows it

    def __post_init__(self) -> None:
        if self.require is not UNSET and "operator" in self.require and self.operator is UNSET:
            raise ContractError("require", "requires hints.operator, which is missing")


class Retry(msgspec.Struct, forbid_unknown_fields=True):
    """``retry``: the job's own retry policy; unset keys come from the appliance's [retry]."""

    max_attempts: Annotated[int, _meta(RETRY_BOUNDS["max_attempts"], True)] | UnsetType = UNSET
    backoff_seconds: _number(RETRY_BOUNDS["backoff_seconds"]) | UnsetType = UNSET  # type: ignore[valid-type]
    backoff_factor: _number(RETRY_BOUNDS["backoff_factor"]) | UnsetType = UNSET  # type: ignore[valid-type]
    retry_outcomes: Annotated[list[Annotated[str, Meta(max_length=MAX_OUTCOME_LENGTH)]],
                              Meta(max_length=MAX_RETRY_OUTCOMES)] | UnsetType = UNSET
    retry_interrupted: bool | UnsetType = UNSET
    max_channel_retries: Annotated[int, _meta(RETRY_BOUNDS["max_channel_retries"], True)] | UnsetType = UNSET
    channel_retry_seconds: _number(RETRY_BOUNDS["channel_retry_seconds"]) | UnsetType = UNSET  # type: ignore[valid-type]


#: The parts of a job that belong to one kind; a job of another kind ignores them
#: (``job_from`` drops them unchecked, as the appliance always has).
KIND_PARTS: Final[Mapping[JobKind, frozenset[str]]] = {
    JobKind.CALL: frozenset({"call"}), JobKind.SMS: frozenset({"text", "report"}), JobKind.HLR: frozenset({"method"}),
}


class Job(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """One call, SMS or HLR check for one callee. Optional fields left unset (or null) mean
    the appliance's defaults: priority 0, no time bounds, its [calls] and [retry].

    Received jobs come in through ``job_from``, which checks the types and bounds and
    reads the numbers (E.164); a Job built in Python is trusted as built (msgspec checks
    ``Meta`` constraints when decoding, not in ``__init__``), apart from ``__post_init__``."""

    id: Id  # chosen by the caller: resubmitting is idempotent
    kind: JobKind
    region: Annotated[str, Meta(min_length=2, max_length=2)] | None | UnsetType = UNSET  # ISO 3166, e.g. PL
    callee: str  # E.164 after checking; a national number needs ``region``
    priority: Annotated[int, _meta(PRIORITY, True)] | None | UnsetType = UNSET  # higher first
    not_before: Epoch | None | UnsetType = UNSET  # UTC epoch seconds
    deadline: Epoch | None | UnsetType = UNSET  # never started after this: the controller's lease
    call: CallOptions | None | UnsetType = UNSET
    text: Annotated[str, Meta(min_length=1, max_length=MAX_TEXT_LENGTH)] | UnsetType = UNSET  # sms
    report: bool | None | UnsetType = UNSET  # sms: ask for status reports (default yes)
    method: HlrMethod | UnsetType = UNSET  # hlr (default sms_ping)
    hints: Hints | None | UnsetType = UNSET
    retry: Retry | None | UnsetType = UNSET
    campaign: RowId | None | UnsetType = UNSET  # the controller's ids; the appliance keeps them with the job
    contact: RowId | None | UnsetType = UNSET

    def __post_init__(self) -> None:
        nb, dl = self.not_before, self.deadline
        if nb is not None and nb is not UNSET and dl is not None and dl is not UNSET and dl <= nb:
            raise ContractError("deadline", "must be after not_before")
        if self.kind is JobKind.SMS and self.text is UNSET:
            raise ContractError("text", "an SMS needs a non-empty text")
        for kind, parts in KIND_PARTS.items():
            if kind is not self.kind:
                for name in parts:
                    setattr(self, name, UNSET)


def _plain(x: float) -> str:
    return f"{x:,.0f}" if float(x).is_integer() else f"{x:,}"


def number_problem(v: Any, bound: Bound, *, integer: bool = False) -> str | None:
    """Why ``v`` is not a number within ``bound`` (None when it is)."""
    kinds = (int,) if integer else (int, float)
    if isinstance(v, bool) or not isinstance(v, kinds) or (isinstance(v, float) and not math.isfinite(v)):
        return f"expected {'an integer' if integer else 'a number'}, got {shown(v)}"
    if not bound.holds(v):
        hi = "" if bound.hi is None else f" and at most {_plain(bound.hi)}"
        return (f"{shown(v)} is out of range: {'above' if bound.lo_open else 'at least'} {_plain(bound.lo)}"
                f"{hi} ({bound.why})")
    return None


def _number_reason(path: str, bound: Bound) -> Callable[[Any], str]:
    return lambda v: number_problem(v, bound, integer=path in _INTEGERS) or "out of range"


def _number_text(v: Any) -> str:
    try:
        phone.normalise(v, None, valid=False)
    except phone.NumberError as exc:
        return str(exc)
    return "expected a phone number in E.164 form, e.g. +48600000123"


def _sms_text(v: Any) -> str:
    if isinstance(v, str) and v:
        return f"{len(v)} characters is more than {MAX_TEXT_LENGTH} (10 parts)"
    return "an SMS needs a non-empty text"


_HINTS_SHAPE: Final = "expected an object with operator, pool, fixed_number, callee_operator and/or require"
_RETRY_SHAPE: Final = ("expected an object with max_attempts, backoff_seconds, backoff_factor, retry_outcomes, "
                       "retry_interrupted, max_channel_retries, channel_retry_seconds")
_OPERATOR: Final = "expected an operator as MCC+MNC digits, e.g. \"26001\""
_ROW_ID: Final = ("expected the controller's {} id: text of at most " f"{MAX_ID_LENGTH} characters "
                  "or a non-negative 64-bit integer")
#: A job's field path -> the reason for a value msgspec refused there (from that value).
_REASONS: Final[dict[str, Callable[[Any], str]]] = {
    "job": lambda v: "expected a JSON object",
    "id": lambda v: f"expected a non-empty string of at most {MAX_ID_LENGTH} characters",
    "kind": lambda v: f"expected one of {', '.join(k.value for k in JobKind)}, got {v!r}",
    "region": lambda v: "expected an ISO 3166 two-letter code, e.g. PL",
    "callee": _number_text,
    "priority": _number_reason("priority", PRIORITY),
    "not_before": _number_reason("not_before", EPOCH),
    "deadline": _number_reason("deadline", EPOCH),
    "call": lambda v: "expected an object",
    **{f"call.{k}": _number_reason(f"call.{k}", b) for k, b in CALL_BOUNDS.items()},
    "call.on_answer": lambda v: f"expected one of {', '.join(a.value for a in OnAnswer)}, got {v!r}",
    "call.message": lambda v: message_problem(v) or "expected text",
    "call.on_machine": lambda v: f"expected one of {', '.join(a.value for a in OnMachine)}, got {v!r}",
    "call.on_human": lambda v: f"expected one of {', '.join(a.value for a in OnHuman)}, got {v!r}",
    "call.lang": lambda v: f"expected one of {', '.join(MESSAGE_LANGS)}, got {v!r}",
    "call.voicebot": lambda v: ("expected an object with creditor, debtor_name, amount, currency, due_date, "
                                "window_end and optionally window_start"),
    "call.voicebot.creditor": lambda v: f"expected non-empty text of at most {MAX_MESSAGE_LENGTH} characters",
    "call.voicebot.debtor_name": lambda v: f"expected non-empty text of at most {MAX_MESSAGE_LENGTH} characters",
    "call.voicebot.amount": lambda v: "expected a non-negative amount, e.g. \"123.45\"",
    "call.voicebot.currency": lambda v: "expected an ISO 4217 code, e.g. \"PLN\"",
    **{f"call.voicebot.{k}": (lambda v: "expected an ISO 8601 date, e.g. \"2026-03-31\"")
       for k in ("due_date", "window_end", "window_start")},
    "call.dialogue": lambda v: f"expected a dialogue name of 1-{MAX_ID_LENGTH} characters, e.g. \"promise_to_pay\"",
    "text": _sms_text,
    "report": lambda v: "expected true or false",
    "method": lambda v: f"expected one of {', '.join(m.value for m in HlrMethod)}",
    "hints": lambda v: _HINTS_SHAPE,
    "hints.require": lambda v: f"expected a list of hints that must hold, from {sorted(REQUIRABLE_HINTS)}",
    "hints.pool": lambda v: f"expected a pool name of 1-{MAX_ID_LENGTH} characters, e.g. \"creditor-a\"",
    "hints.operator": lambda v: _OPERATOR,
    "hints.callee_operator": lambda v: _OPERATOR,
    "hints.fixed_number": _number_text,
    "retry": lambda v: _RETRY_SHAPE,
    **{f"retry.{k}": _number_reason(f"retry.{k}", b) for k, b in RETRY_BOUNDS.items()},
    "retry.retry_outcomes": lambda v: "expected a list of outcomes, e.g. [\"busy\", \"no_answer\"]",
    "retry.retry_interrupted": lambda v: "expected true or false",
    "campaign": lambda v: _ROW_ID.format("campaign"),
    "contact": lambda v: _ROW_ID.format("contact"),
}
#: An unknown key inside this object -> (field, reason).
_UNKNOWN: Final[dict[str, Callable[[str], tuple[str, str]]]] = {
    "": lambda name: (name[:MAX_ID_LENGTH], "unknown field (a typo?)"),
    "call": lambda name: (f"call.{name[:MAX_ID_LENGTH]}",
                          f"unknown field (a typo?); known: {', '.join(CallOptions.__struct_fields__)}"),
    "hints": lambda name: ("hints", _HINTS_SHAPE),
    "retry": lambda name: ("retry", _RETRY_SHAPE),
}
JOB_FIELDS: Final = Job.__struct_fields__
_FIELD_SET: Final = frozenset(JOB_FIELDS)
_OTHER_PARTS: Final = {k.value: frozenset().union(*(p for o, p in KIND_PARTS.items() if o is not k)) for k in JobKind}


def job_from(raw: Any) -> Job:
    """A job as received (a dict of JSON values) -> a checked ``Job``: the callee and any
    fixed number in E.164. Raises ``ContractError`` naming the first bad field."""
    if not isinstance(raw, dict):
        raise ContractError("job", _REASONS["job"](raw))
    # Unknown keys are named before any other mistake, then the fields in their order; the
    # parts of other kinds are dropped unchecked (an SMS ignores ``call``).
    kind = raw.get("kind")
    skip = _OTHER_PARTS.get(kind, frozenset()) if isinstance(kind, str) else frozenset()
    raw = {**{k: v for k, v in raw.items() if k not in _FIELD_SET}, **{k: raw[k] for k in JOB_FIELDS if k in raw and k not in skip}}
    try:
        job = msgspec.convert(raw, Job)
    except msgspec.ValidationError as exc:
        raise _explain(exc, raw, _REASONS, _UNKNOWN) from None
    # Numbers are read here, not in __post_init__: phonenumbers costs ~40 µs a number, and
    # a Job the controller builds from its own checked contacts need not pay it twice.
    job.callee = _e164(job.callee, job.region if isinstance(job.region, str) else None, "callee")
    if isinstance(job.hints, Hints) and job.hints.fixed_number is not UNSET:
        job.hints.fixed_number = _e164(job.hints.fixed_number, None, "hints.fixed_number")
    return job


_AT: Final = re.compile(r" - at `\$([^`]*)`$")


def _explain(exc: msgspec.ValidationError, raw: Any, reasons: Mapping[str, Callable[[Any], str]],
             unknown: Mapping[str, Callable[[str], tuple[str, str]]], prefix: str = "") -> ContractError:
    """msgspec's error -> the field path and the reason in our words (``reasons``, from
    the value found there); a ``ContractError`` of a ``__post_init__`` keeps its own."""
    text = str(exc)
    m = _AT.search(text)
    where = re.findall(r"\.(\w+)", m.group(1)) if m else []
    what = text[:m.start()] if m else text
    path = ".".join(where)

    def joined(*names: str) -> str:
        return ".".join(n for n in (prefix, *names) if n)

    cause = exc.__cause__ or exc.__context__
    if isinstance(cause, ContractError):
        return ContractError(joined(path, cause.field), cause.reason)
    if (u := re.fullmatch(r"Object contains unknown field `(.*)`", what, re.DOTALL)) and path in unknown:
        name, reason = unknown[path](u.group(1))
        return ContractError(joined(name), reason)
    if missing := re.fullmatch(r"Object missing required field `(.*)`", what):
        where.append(missing.group(1))
        path = ".".join(where)
    value: Any = raw
    for name in where:
        value = value.get(name) if isinstance(value, dict) else None
    reason = reasons[path](value) if path in reasons else (what[:1].lower() + what[1:])
    return ContractError(joined(path) or "body", reason)


# -- results -----------------------------------------------------------------------------------
class AmdReport(msgspec.Struct):
    """``amd`` in a call's result: the live AMD's first decision (appliance/audio/amd.py
    ``AmdResult`` value, its rule, ms after the answer) and, when a fast "human" turned out
    to be a machine talking on, that revision's rule and time — so revisions are countable."""

    decision: str
    rule: str
    decided_ms: int
    revised: bool = False
    revised_ms: int | None | UnsetType = UNSET
    revised_rule: str | None | UnsetType = UNSET


class Result(msgspec.Struct):
    """One result body as the appliance's outbox sends it (appliance/jobs/, appliance/scheduler/).
    Every field but ``job_id`` and ``outcome`` is there only when it applies; unknown
    fields are ignored, so a newer appliance's results still reach an older controller.
    Times are UTC ISO 8601 with milliseconds (common.clock.iso)."""

    job_id: str
    outcome: Outcome
    seq: int | None | UnsetType = UNSET  # the outbox's sequence number (``results`` messages)
    kind: JobKind | UnsetType = UNSET
    callee: str | UnsetType = UNSET
    attempt: int | UnsetType = UNSET
    channel_id: str | UnsetType = UNSET
    sim_id: str | UnsetType = UNSET
    number_shown: str | None | UnsetType = UNSET  # the SIM's number the callee saw
    final: bool | UnsetType = UNSET  # False: an SMS submitted, or a retry follows (retry_at)
    retry_at: str | float | None | UnsetType = UNSET  # ISO on the appliance; epoch in a refusal
    at: str | UnsetType = UNSET
    started_at: str | UnsetType = UNSET
    # calls
    cause: int | None | UnsetType = UNSET  # Q.850
    cause_name: str | UnsetType = UNSET
    local_release: bool | UnsetType = UNSET
    dialed_at: str | None | UnsetType = UNSET
    alerting_at: str | None | UnsetType = UNSET
    answered_at: str | None | UnsetType = UNSET
    ended_at: str | None | UnsetType = UNSET
    talk_seconds: Num | UnsetType = UNSET
    answered_monotonic: Num | None | UnsetType = UNSET
    message_played: bool | UnsetType = UNSET
    message_seconds: Num | UnsetType = UNSET
    message_error: str | UnsetType = UNSET  # why the message was not heard whole (not played, or cut)
    amd: AmdReport | UnsetType = UNSET  # on_answer "amd"
    beep_ms: int | None | UnsetType = UNSET  # a machine's beep ended (ms after the answer); None: no beep heard
    # on_human "voicebot": identity, promise_date, callback_requested, path, digits, end_state,
    # hung_up (appliance/voicebot/engine.py Result.to_dict)
    voicebot: dict[str, Any] | UnsetType = UNSET
    # call.record: the recording made of this call (id, format, seconds, bytes); the file
    # travels apart from the result (appliance/recordings, controller/recordings)
    recording: dict[str, Any] | UnsetType = UNSET
    # SMS
    submitted_at: str | None | UnsetType = UNSET
    parts: int | UnsetType = UNSET
    references: list[int] | UnsetType = UNSET
    sim_blocked: bool | UnsetType = UNSET
    # HLR
    method: HlrMethod | UnsetType = UNSET
    alerted: bool | UnsetType = UNSET
    seconds: Num | UnsetType = UNSET
    tp_status: int | list[int] | None | UnsetType = UNSET
    operator: str | UnsetType = UNSET
    # why it ended so
    error: str | UnsetType = UNSET
    detail: str | UnsetType = UNSET
    waiting_for: str | UnsetType = UNSET
    reason: str | UnsetType = UNSET  # refused_by_policy: the rule (controller/rules.py Reason)


# -- the link's messages -------------------------------------------------------------------------
NonNegative = Annotated[int, Meta(ge=0)]


class _Message(msgspec.Struct, tag_field="type"):
    """A link frame: one JSON object whose ``type`` names the message."""


class SimInfo(msgspec.Struct):
    sim_id: str | None = None
    msisdn: str | None = None
    operator: str = ""  # MCC+MNC, "" when unknown
    channel_id: str | None = None
    slot: int = 0
    active: bool = False
    state: str | None = None  # the rotation's SimState value, or "not_in_rotation"


class Hello(_Message, tag="hello"):
    """A -> C on connect: who we are and what we can take."""

    appliance_id: str | None = None
    version: str | UnsetType = UNSET
    channels: NonNegative = 0
    idle: NonNegative = 0
    capacity: NonNegative = 0  # open jobs the controller may hold on us
    operators: dict[str, int] = {}  # operator -> active SIMs
    sims: list[SimInfo] = []


class Jobs(_Message, tag="jobs"):
    """C -> A: a batch under a lease. Each job is checked alone (``job_from``), so one bad
    job is rejected in the ack and the rest are kept."""

    jobs: list[Any]
    batch_id: str | None = None


class Rejection(msgspec.Struct):
    id: str | None
    reason: str


class Ack(_Message, tag="ack"):
    """A -> C once the batch's jobs are stored."""

    batch_id: str | None = None
    accepted: list[str] = []
    rejected: list[Rejection] = []


class Results(_Message, tag="results"):
    """A -> C: results from the outbox, in ``seq`` order."""

    results: list[Result]


class ResultsAck(_Message, tag="results_ack"):
    """C -> A after the results are committed: the outbox may forget up to ``upto``."""

    upto: int | None = None
    count: int = 0


class InboundEvent(msgspec.Struct):
    """A call or SMS that reached one of our SIMs (a callback)."""

    id: str
    kind: Literal["sms", "call"]
    from_: str | None = field(name="from", default=None)
    to: str | None = None
    text: str | None = None
    channel_id: str | None = None
    sim_id: str | None = None
    at: str | UnsetType = UNSET
    # an answered callback: what the caller keyed at the menu ("callback": 1, call me back;
    # "opt_out": 9, stop calling this number; "none": nothing, or he hung up first)
    choice: Literal["callback", "opt_out", "none"] | UnsetType = UNSET


class Inbound(_Message, tag="inbound"):
    events: list[InboundEvent]


class InboundAck(_Message, tag="inbound_ack"):
    ids: list[str] = []


class Heartbeat(_Message, tag="heartbeat"):
    """Both ways; the appliance's carries its free capacity and queue."""

    at: str | UnsetType = UNSET
    idle: int | UnsetType = UNSET
    capacity: NonNegative | UnsetType = UNSET
    queued: int | UnsetType = UNSET
    running: int | UnsetType = UNSET


class Cancel(_Message, tag="cancel"):
    """C -> A: withdraw jobs not yet on a channel (they end ``cancelled`` with the reason)."""

    ids: list[str]
    reason: str | None = None


class Error(_Message, tag="error"):
    """C -> A: a malformed message; the link stays up."""

    detail: str


LinkMessage = Hello | Jobs | Ack | Results | ResultsAck | Inbound | InboundAck | Heartbeat | Cancel | Error
_LINK_DECODER: Final = msgspec.json.Decoder(LinkMessage)
_ENCODER: Final = msgspec.json.Encoder()
_TYPES: Final = tuple(t.__struct_config__.tag for t in LinkMessage.__args__)  # type: ignore[attr-defined]
_EVENT_SHAPE: Final = "every event has an id and kind sms or call"
#: A link message's field path -> the reason for a value msgspec refused there, in the
#: words the controller answered before the contract (``hello.channels: expected …``).
_LINK_REASONS: Final[dict[str, Callable[[Any], str]]] = {
    "type": lambda v: f"{'missing' if v is None else f'unknown message type {v!r}'}; expected one of {', '.join(_TYPES)}",
    **{k: (lambda v: "expected a non-negative integer") for k in ("channels", "idle", "capacity")},
    "operators": lambda v: "expected an object of operator (MCC+MNC) -> active SIMs, e.g. {\"26001\": 2}",
    "sims": lambda v: (f"every SIM is an object of {', '.join(SimInfo.__struct_fields__)}" if isinstance(v, list)
                       else "expected a list"),
    "results": lambda v: "every result is an object with job_id and outcome" if isinstance(v, list) else "expected a list",
    "results.job_id": lambda v: "every result is an object with job_id and outcome",
    "results.seq": lambda v: "seq must be an integer",
    "events": lambda v: _EVENT_SHAPE if isinstance(v, list) else "expected events: [...]",
    "events.id": lambda v: _EVENT_SHAPE,
    "events.kind": lambda v: _EVENT_SHAPE,
}


def decode_message(data: bytes | str) -> LinkMessage:
    """One link frame -> its message; ``ContractError`` names the field (``hello.channels``)."""
    try:
        return _LINK_DECODER.decode(data)
    except msgspec.ValidationError as exc:
        try:
            raw = msgspec.json.decode(data)
        except msgspec.DecodeError:
            raw = None
        kind = raw.get("type") if isinstance(raw, dict) else None
        err = _explain(exc, raw, _LINK_REASONS, {}, kind if isinstance(kind, str) and kind in _TYPES else "")
        if err.field == "body":
            err = ContractError("message", "a message is a JSON object with a type")
        raise err from None
    except msgspec.DecodeError as exc:
        raise ContractError("message", f"not JSON: {exc}") from None


def encode_message(msg: LinkMessage) -> bytes:
    return _ENCODER.encode(msg)
