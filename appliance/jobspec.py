"""The appliance's view of a job: checking one is converting it through the wire contract
(``common.contract.Job``: fields, bounds, messages); this module turns the checked job into
the dict the scheduler and the store hold (``spec``) and reads ``POST /api/jobs`` bodies.

A spec has every field the scheduler reads, defaults filled in: ``priority`` (0),
``not_before`` and ``deadline`` (None), ``hints`` ({}), a call's ``call`` ({}), an SMS's
``text`` and ``report`` (True), an HLR check's ``method`` (sms_ping); ``retry``,
``campaign`` and ``contact`` only when given; ``region`` is spent on the callee (E.164).

A body is decoded by ``decode_batch`` into the job's shape first, so nesting or a
5,000-digit integer is a 400 naming the job and field, not a 500; each job of a readable
batch is then checked alone (``validate_batch``), and the good ones are kept.
"""
from __future__ import annotations

import re
from typing import Any, Final, Union

import msgspec

from common import contract

# re-exported: appliance/config.py, the API and tests import these from here
from common.contract import (  # noqa: F401
    CALL_BOUNDS,
    EPOCH,
    MAX_ID_LENGTH,
    MAX_MESSAGE_LENGTH,
    MAX_TEXT_LENGTH,
    PRIORITY,
    REQUIRABLE_HINTS,
    RETRY_BOUNDS,
    HlrMethod,
    JobKind,
    OnAnswer,
    message_problem,
)
from common.contract import ContractError as JobError  # the old name of a job's mistake

KINDS: Final = tuple(k.value for k in JobKind)
HLR_METHODS: Final = tuple(m.value for m in HlrMethod)
ON_ANSWER: Final = tuple(a.value for a in OnAnswer)
#: One batch may carry this many jobs; larger lists should be split (keeps one request
#: within a few MB and one store transaction short).
MAX_BATCH: Final = 10_000


def spec_of(job: contract.Job) -> dict[str, Any]:
    """A checked job -> the scheduler's dict (see the module docstring)."""
    def given(v: Any) -> bool:
        return v is not None and v is not msgspec.UNSET

    spec: dict[str, Any] = {"id": job.id, "kind": job.kind.value, "callee": job.callee,
                            "priority": job.priority if given(job.priority) else 0,
                            "not_before": job.not_before if given(job.not_before) else None,
                            "deadline": job.deadline if given(job.deadline) else None}
    if job.kind is JobKind.CALL:
        spec["call"] = msgspec.to_builtins(job.call) if given(job.call) else {}
    elif job.kind is JobKind.SMS:
        spec["text"] = job.text
        spec["report"] = bool(job.report) if job.report is not msgspec.UNSET else True
    else:
        spec["method"] = job.method.value if given(job.method) else HlrMethod.SMS_PING.value
    spec["hints"] = msgspec.to_builtins(job.hints) if given(job.hints) else {}
    for key in ("retry", "campaign", "contact"):
        if given(v := getattr(job, key)):
            spec[key] = msgspec.to_builtins(v)
    return spec


def validate_job(raw: Any) -> dict[str, Any]:
    """A job as received -> its spec; ``JobError`` names the first bad field."""
    return spec_of(contract.job_from(raw))


# -- decoding a request body ---------------------------------------------------------------------
_Scalar = Union[str, int, float, bool, None]
#: What a job's field may hold: a scalar, a list of scalars (hints.require,
#: retry.retry_outcomes) or an object of those (call, hints, retry) — never deeper.
_Value = Union[_Scalar, list[_Scalar], dict[str, Union[_Scalar, list[_Scalar]]], msgspec.UnsetType]
JobIn = msgspec.defstruct("JobIn", [(k, _Value, msgspec.UNSET) for k in sorted(contract.JOB_FIELDS)],
                          forbid_unknown_fields=True)


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
