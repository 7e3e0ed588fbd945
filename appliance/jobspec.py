"""Validation of submitted jobs: each bad job gets its index, field and reason; good jobs
in the same batch are kept.

A job (JSON)::

    {"id": "c-123",                    # chosen by the caller: resubmitting is idempotent
     "kind": "call" | "sms" | "hlr",
     "callee": "+48600000123",         # E.164; national numbers need "region"
     "region": "PL",                   # optional, for national-format callees
     "priority": 0,                    # higher first
     "not_before": 1767225600.0,       # optional, UTC epoch seconds
     "deadline": 1767229200.0,         # optional: never started after this
     "call": {"max_ring_seconds": 30, "max_talk_seconds": 60,
              "on_answer": "hangup" | "hold" | "play",
              "message": "…"},           # play: spoken by the modem's TTS, ≤ 136 characters
     "text": "…", "report": true,      # sms
     "method": "sms_ping" | "probe_call",   # hlr
     "hints": {"operator": "26001",   # preferred SIM operator (on-net); a filter only if required
               "require": ["operator"],  # optional: hints that must hold, or the job waits
               "pool": "creditor-a", "fixed_number": "+48690000001",
               "callee_operator": "26002"},   # the callee's network, if the CRM knows it (ported numbers)
     "retry": {"max_attempts": 3, "backoff_seconds": 300}}

Every number is bounded (``priority`` a 32-bit integer, times within Python's datetime
range, ring and talk and retry settings within the config's own bounds), callees hold
only digits, a leading ``+``, spaces, dots, dashes and parentheses (letters are refused,
never read as keypad digits), and a body is decoded by ``decode_batch`` into the job's
shape, so nesting or a 5,000-digit integer is a 400 naming the job and field, not a 500.
"""
from __future__ import annotations

import math
import re
from typing import Any, Final, Union

import msgspec
from common import phone
from common.phone import shown

from modem_drivers.dialects import TTS_MAX_CHARS
from common.configkit import WAIT, Bound

KINDS: Final = ("call", "sms", "hlr")
#: Hints a job may turn from a preference into a filter (pool and fixed_number are always filters).
REQUIRABLE_HINTS: Final = frozenset({"operator"})
HLR_METHODS: Final = ("sms_ping", "probe_call")
#: One batch may carry this many jobs; larger lists should be split (keeps one request
#: within a few MB and one store transaction short).
MAX_BATCH: Final = 10_000
#: Job ids are the caller's keys; bounded so a store row stays small.
MAX_ID_LENGTH: Final = 128
#: An SMS text longer than this would need more than 10 concatenated parts (GSM-7 153
#: characters per part, 23.038/23.040 §9.2.3.24.1); operators cap far lower.
MAX_TEXT_LENGTH: Final = 1530
#: What a call does once answered (appliance/jobs.py ANSWER_ACTIONS).
ON_ANSWER: Final = ("hangup", "hold", "play")
#: A message is spoken with one TTS command line: 136 characters of any alphabet fit the
#: 556-character line of the SIM800 manual (§1.4.4) as UCS2 hex (modem_drivers.dialects).
MAX_MESSAGE_LENGTH: Final = TTS_MAX_CHARS
_KNOWN: Final = {"id", "kind", "callee", "region", "priority", "not_before", "deadline", "call", "text", "report",
                 "method", "hints", "retry", "campaign", "contact"}
#: Priorities are 32-bit signed integers, the width of a CRM's INTEGER column (ISO SQL):
#: a larger one is a mistake, and 2**70 once reached SQLite as an OverflowError.
PRIORITY: Final = Bound(-2**31, 2**31 - 1, "a 32-bit signed integer; higher runs first")
#: Times are UTC epoch seconds up to 9999-12-31T23:59:59Z, the last instant Python's
#: datetime holds: results and waits print them as ISO 8601.
EPOCH: Final = Bound(0, 253402300799, "UTC epoch seconds up to 9999-12-31T23:59:59Z")
#: A job may set what [calls] and [retry] set, within the same bounds (appliance/config.py).
CALL_BOUNDS: Final = {
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
_RETRY_INTEGERS: Final = frozenset({"max_attempts", "max_channel_retries"})
#: A callee as written: digits, a leading +, spaces (U+00A0 too, as spreadsheets write
#: them), dots, dashes, parentheses; at most 40 characters (E.164's 15 digits and room).


class JobError(ValueError):
    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason



def normalise_number(value: Any, region: str | None = None, *, field: str = "callee") -> str:
    """A written number -> E.164 (``common.phone.normalise``; only its length is checked:
    the controller checked the number plan, and a new range is never refused here)."""
    try:
        return phone.normalise(value, region, valid=False)
    except phone.NumberError as exc:
        raise JobError(field, str(exc)) from None


def _number(d: dict[str, Any], key: str, bound: Bound, *, field: str | None = None, integer: bool = False) -> float | None:
    """``d[key]`` as a number within ``bound`` (None when absent); an error names ``field``."""
    v = d.get(key)
    if v is None:
        return None
    name = field or key
    kinds = (int,) if integer else (int, float)
    if isinstance(v, bool) or not isinstance(v, kinds) or (isinstance(v, float) and not math.isfinite(v)):
        raise JobError(name, f"expected {'an integer' if integer else 'a number'}, got {shown(v)}")
    if not bound.holds(v):
        hi = "" if bound.hi is None else f" and at most {_plain(bound.hi)}"
        raise JobError(name, f"{shown(v)} is out of range: {'above' if bound.lo_open else 'at least'} {_plain(bound.lo)}"
                             f"{hi} ({bound.why})")
    return v


def _plain(x: float) -> str:
    return f"{x:,.0f}" if float(x).is_integer() else f"{x:,}"


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


def validate_job(raw: Any) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise JobError("job", "expected a JSON object")
    unknown = sorted(set(raw) - _KNOWN)
    if unknown:
        raise JobError(unknown[0], "unknown field (a typo?)")
    job_id = raw.get("id")
    if not isinstance(job_id, str) or not job_id.strip() or len(job_id) > MAX_ID_LENGTH:
        raise JobError("id", f"expected a non-empty string of at most {MAX_ID_LENGTH} characters")
    kind = raw.get("kind")
    if kind not in KINDS:
        raise JobError("kind", f"expected one of {', '.join(KINDS)}, got {kind!r}")
    region = raw.get("region")
    if region is not None and (not isinstance(region, str) or len(region) != 2):
        raise JobError("region", "expected an ISO 3166 two-letter code, e.g. PL")
    spec: dict[str, Any] = {"id": job_id, "kind": kind, "callee": normalise_number(raw.get("callee"), region)}
    spec["priority"] = int(_number(raw, "priority", PRIORITY, integer=True) or 0)
    nb, dl = _number(raw, "not_before", EPOCH), _number(raw, "deadline", EPOCH)
    nb, dl = (None if nb is None else float(nb)), (None if dl is None else float(dl))
    if nb is not None and dl is not None and dl <= nb:
        raise JobError("deadline", "must be after not_before")
    spec["not_before"], spec["deadline"] = nb, dl
    if kind == "call":
        call = raw.get("call") or {}
        if not isinstance(call, dict):
            raise JobError("call", "expected an object")
        unknown = sorted(set(call) - {*CALL_BOUNDS, "on_answer", "message"})
        if unknown:
            raise JobError(f"call.{unknown[0]}", "unknown field (a typo?); known: max_ring_seconds, max_talk_seconds, "
                                                 "on_answer, message")
        for key, bound in CALL_BOUNDS.items():
            _number(call, key, bound, field=f"call.{key}")
        on_answer = call.get("on_answer", "hangup")
        if on_answer not in ON_ANSWER:
            raise JobError("call.on_answer", f"expected one of {', '.join(ON_ANSWER)}, got {on_answer!r}")
        if on_answer == "play" and "message" not in call:
            raise JobError("call.message", 'on_answer "play" needs the message to play, e.g. "message": "Dzień dobry…"')
        if "message" in call:
            problem = message_problem(call["message"])
            if problem:
                raise JobError("call.message", problem)
        spec["call"] = call
    if kind == "sms":
        text = raw.get("text")
        if not isinstance(text, str) or not text:
            raise JobError("text", "an SMS needs a non-empty text")
        if len(text) > MAX_TEXT_LENGTH:
            raise JobError("text", f"{len(text)} characters is more than {MAX_TEXT_LENGTH} (10 parts)")
        spec["text"] = text
        spec["report"] = bool(raw.get("report", True))
    if kind == "hlr":
        method = raw.get("method", "sms_ping")
        if method not in HLR_METHODS:
            raise JobError("method", f"expected one of {', '.join(HLR_METHODS)}")
        spec["method"] = method
    hints = raw.get("hints") or {}
    if not isinstance(hints, dict) or set(hints) - {"operator", "pool", "fixed_number", "callee_operator", "require"}:
        raise JobError("hints", "expected an object with operator, pool, fixed_number, callee_operator and/or require")
    if "require" in hints and not (isinstance(hints["require"], list) and set(hints["require"]) <= REQUIRABLE_HINTS):
        raise JobError("hints.require", f"expected a list of hints that must hold, from {sorted(REQUIRABLE_HINTS)}")
    if "require" in hints and "operator" in hints["require"] and "operator" not in hints:
        raise JobError("hints.require", "requires hints.operator, which is missing")
    if "pool" in hints and not (isinstance(hints["pool"], str) and 0 < len(hints["pool"]) <= MAX_ID_LENGTH):
        raise JobError("hints.pool", f"expected a pool name of 1-{MAX_ID_LENGTH} characters, e.g. \"creditor-a\"")
    for key in ("operator", "callee_operator"):
        if key in hints and not (isinstance(hints[key], str) and re.fullmatch(r"\d{5,6}", hints[key])):
            raise JobError(f"hints.{key}", "expected an operator as MCC+MNC digits, e.g. \"26001\"")
    if "fixed_number" in hints:
        hints = {**hints, "fixed_number": normalise_number(hints["fixed_number"], None, field="hints.fixed_number")}
    spec["hints"] = hints
    retry = raw.get("retry")
    if retry is not None:
        if not isinstance(retry, dict) or set(retry) - {*RETRY_BOUNDS, "retry_outcomes", "retry_interrupted"}:
            raise JobError("retry", "expected an object with max_attempts, backoff_seconds, backoff_factor, retry_outcomes, "
                                    "retry_interrupted, max_channel_retries, channel_retry_seconds")
        for key, bound in RETRY_BOUNDS.items():
            _number(retry, key, bound, field=f"retry.{key}", integer=key in _RETRY_INTEGERS)
        outcomes = retry.get("retry_outcomes", [])
        if not isinstance(outcomes, list) or len(outcomes) > 20 or not all(isinstance(o, str) and len(o) <= 40 for o in outcomes):
            raise JobError("retry.retry_outcomes", "expected a list of outcomes, e.g. [\"busy\", \"no_answer\"]")
        if not isinstance(retry.get("retry_interrupted", False), bool):
            raise JobError("retry.retry_interrupted", "expected true or false")
        spec["retry"] = retry
    for key in ("campaign", "contact"):
        v = raw.get(key)
        if v is None:
            continue
        if not (isinstance(v, str) and len(v) <= MAX_ID_LENGTH) and not (type(v) is int and 0 <= v < 2**63):
            raise JobError(key, f"expected the controller's {key} id: text of at most {MAX_ID_LENGTH} characters "
                                "or a non-negative 64-bit integer")
        spec[key] = v
    return spec


# -- decoding a request body ---------------------------------------------------------------------
_Scalar = Union[str, int, float, bool, None]
#: What a job's field may hold: a scalar, a list of scalars (hints.require,
#: retry.retry_outcomes) or an object of those (call, hints, retry) — never deeper.
_Value = Union[_Scalar, list[_Scalar], dict[str, Union[_Scalar, list[_Scalar]]], msgspec.UnsetType]
JobIn = msgspec.defstruct("JobIn", [(k, _Value, msgspec.UNSET) for k in sorted(_KNOWN)], forbid_unknown_fields=True)


class _Batch(msgspec.Struct, forbid_unknown_fields=True):
    jobs: list[JobIn]  # type: ignore[valid-type]


_BATCH = msgspec.json.Decoder(Union[list[JobIn], _Batch])  # type: ignore[valid-type]
_TYPES: Final = {"str": "text", "int": "an integer", "float": "a number", "null": "null", "array": "a list",
                 "object": "an object", "bool": "true/false"}
_WHERE = re.compile(r" - at `\$(?:\.jobs)?(?:\[(\d+)\])?((?:\.\w+)*)[^`]*`$")


class BodyError(ValueError):
    """A request body that cannot be read as a batch: ``index`` (0-based, None when not
    inside a job), field and reason."""

    def __init__(self, index: int | None, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.index, self.field, self.reason = index, field, reason

    def detail(self) -> dict[str, Any]:
        return {"index": self.index, "field": self.field, "reason": self.reason}


def decode_batch(body: bytes) -> list[dict[str, Any]]:
    """A request body -> the jobs as dicts, decoded into the job's shape (so nesting past
    it, and integers beyond msgspec's range, stop at the field that holds them)."""
    # A job is at most 4 objects (itself, call, hints, retry): a cheap bound before any is
    # built, so 16 MiB of "{}," cannot become millions of objects on a small box.
    if body.count(b"{") > 4 * MAX_BATCH + 1:
        raise BodyError(None, "body", f"more than {4 * MAX_BATCH + 1:,} JSON objects; a batch is at most "
                                      f"{MAX_BATCH:,} jobs: split it")
    try:
        decoded = _BATCH.decode(body)
    except msgspec.ValidationError as exc:
        msg = str(exc)
        m = _WHERE.search(msg)
        what = msg[:m.start()] if m else msg
        index = int(m.group(1)) if m and m.group(1) else None
        field = m.group(2).lstrip(".") if m and m.group(2) else ("job" if index is not None else "body")
        unknown = re.match(r"Object contains unknown field `(.*)`$", what, re.S)
        if index is None:
            field, what = "body", 'expected a list of jobs or {"jobs": [...]}'
        elif unknown:
            field, what = unknown.group(1)[:MAX_ID_LENGTH], "unknown field (a typo?)"
        else:  # "Expected `str | null`, got `array`" in words
            what = re.sub(r"`([^`]*)`", lambda t: " or ".join(_TYPES.get(w.strip(), w.strip()) for w in t.group(1).split("|")),
                          what)
        raise BodyError(index, field, what[0].lower() + what[1:]) from None
    except msgspec.DecodeError as exc:
        raise BodyError(None, "body", f"not JSON: {exc}") from None
    jobs = decoded.jobs if isinstance(decoded, _Batch) else decoded
    fields = JobIn.__struct_fields__
    return [{f: v for f in fields if (v := getattr(job, f)) is not msgspec.UNSET} for job in jobs]


def validate_batch(items: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Returns (good jobs, errors); an error names the job's index, id, field and reason."""
    if isinstance(items, dict) and "jobs" in items:
        items = items["jobs"]
    if not isinstance(items, list):
        raise JobError("body", 'expected a list of jobs or {"jobs": [...]}')
    if len(items) > MAX_BATCH:
        raise JobError("body", f"{len(items)} jobs in one batch; at most {MAX_BATCH}")
    good, errors, seen = [], [], set()
    for i, raw in enumerate(items):
        try:
            spec = validate_job(raw)
            if spec["id"] in seen:
                raise JobError("id", "appears twice in this batch")
            seen.add(spec["id"])
            good.append(spec)
        except JobError as exc:
            errors.append({"index": i, "id": raw.get("id") if isinstance(raw, dict) else None,
                           "field": exc.field, "reason": exc.reason})
    return good, errors
