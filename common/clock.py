"""Time as simrotor writes and reads it: UTC ISO 8601 with a ``Z`` (docs/architecture.md,
Conventions: monotonic for timeouts, UTC in storage and on the wire).

``iso`` is stamped several times per job on the hot path, so the date and time of day are
formatted once per second and the milliseconds appended.
"""
from __future__ import annotations

import math
from datetime import datetime, timezone

__all__ = ["iso", "parse_iso"]

_second: list[object] = [None, ""]  # (whole second, its "YYYY-MM-DDTHH:MM:SS" text)


def iso(ts: float, *, ms: bool = True) -> str:
    """``2026-11-23T09:00:00.123Z`` (or without milliseconds: ``2026-11-23T09:00:00Z``)."""
    frac, whole = math.modf(ts)
    us = round(frac * 1e6)  # as datetime.fromtimestamp rounds, then milliseconds truncate
    sec = int(whole) + (us >= 1_000_000)
    if _second[0] != sec:
        _second[0] = sec
        _second[1] = datetime.fromtimestamp(sec, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    if not ms:
        return f"{_second[1]}Z"
    return f"{_second[1]}.{(us % 1_000_000) // 1000:03d}Z"


def parse_iso(text: str) -> float:
    """An ISO 8601 time with ``Z`` or an offset -> epoch seconds. Raises ``ValueError``
    naming the text when it is not a time or has no zone (a wall time is ambiguous)."""
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (TypeError, ValueError, AttributeError):
        raise ValueError(f"{text!r} is not an ISO 8601 time, e.g. 2026-11-23T09:00:00Z") from None
    if dt.tzinfo is None:
        raise ValueError(f"{text!r} has no time zone; add Z for UTC, e.g. 2026-11-23T09:00:00Z")
    return dt.timestamp()
