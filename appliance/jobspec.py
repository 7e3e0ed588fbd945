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
"""
from __future__ import annotations

import re

import math
from typing import Any, Final

import phonenumbers

from modem_drivers.dialects import TTS_MAX_CHARS

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


class JobError(ValueError):
    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


def normalise_number(value: Any, region: str | None = None, *, field: str = "callee") -> str:
    if not isinstance(value, str) or not value.strip():
        raise JobError(field, "expected a phone number in E.164 form, e.g. +48600000123")
    try:
        num = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException as exc:
        raise JobError(field, f"{value!r} is not a phone number ({exc}); use E.164, e.g. +48600000123") from None
    if not phonenumbers.is_possible_number(num):
        raise JobError(field, f"{value!r} has the wrong length for {phonenumbers.region_code_for_number(num) or 'its country'}")
    return phonenumbers.format_number(num, phonenumbers.PhoneNumberFormat.E164)


def _number(d: dict[str, Any], key: str, *, positive: bool = False) -> float | None:
    v = d.get(key)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise JobError(key, f"expected a number, got {v!r}")
    if positive and v <= 0:
        raise JobError(key, f"must be > 0, got {v!r}")
    return float(v)


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
    prio = raw.get("priority", 0)
    if isinstance(prio, bool) or not isinstance(prio, int):
        raise JobError("priority", f"expected an integer, got {prio!r}")
    spec["priority"] = prio
    nb, dl = _number(raw, "not_before"), _number(raw, "deadline")
    if nb is not None and dl is not None and dl <= nb:
        raise JobError("deadline", "must be after not_before")
    spec["not_before"], spec["deadline"] = nb, dl
    if kind == "call":
        call = raw.get("call") or {}
        if not isinstance(call, dict):
            raise JobError("call", "expected an object")
        for key in ("max_ring_seconds", "max_talk_seconds"):
            _number(call, key, positive=True)
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
    for key in ("operator", "callee_operator"):
        if key in hints and not (isinstance(hints[key], str) and re.fullmatch(r"\d{5,6}", hints[key])):
            raise JobError(f"hints.{key}", "expected an operator as MCC+MNC digits, e.g. \"26001\"")
    if "fixed_number" in hints:
        hints = {**hints, "fixed_number": normalise_number(hints["fixed_number"], None, field="hints.fixed_number")}
    spec["hints"] = hints
    retry = raw.get("retry")
    if retry is not None:
        if not isinstance(retry, dict) or set(retry) - {"max_attempts", "backoff_seconds", "backoff_factor", "retry_outcomes", "retry_interrupted", "max_channel_retries", "channel_retry_seconds"}:
            raise JobError("retry", "expected an object with max_attempts, backoff_seconds, backoff_factor, retry_outcomes, retry_interrupted")
        spec["retry"] = retry
    for key in ("campaign", "contact"):
        if key in raw:
            spec[key] = raw[key]
    return spec


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
