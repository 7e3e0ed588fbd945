"""Counting traffic: rolling windows and time-of-day windows, for one SIM or one operator.

Rules of the counters:

* A start at time ``t`` counts in a rolling window of length ``W`` at time ``T`` while
  ``t + W > T``. Expiry is always tested as ``t + W <= T`` — the same float expression that
  computes "ready again at ``t + W``" — so a time returned as ``retry_at`` is exact, never
  one rounding error early.
* Starts are kept in one deque per traffic class, oldest first, for the longest window
  (a day); the hourly cap reads the same deque. Appending is O(1), purging amortised O(1),
  and "is the cap of N reached at T" is one index: ``q[-N] + W > T``.
* Each cap, once satisfied, stays satisfied as time passes (counts only fall; a window's
  count resets when its occurrence ends), so the earliest time all caps hold is the
  maximum of each cap's earliest time — no iteration.
* Time-of-day windows are local to the policy's zone (zoneinfo, DST-aware): each
  ``WindowCap`` counts starts within the current occurrence of its window.
"""
from __future__ import annotations

import math
from collections import deque
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from .model import DAY_SECONDS, HOUR_SECONDS, SimLimits, Traffic, WindowCap

INF = math.inf


class WindowClock:
    """Where a time falls in the daily windows of one zone, cached until the next boundary
    (so the zoneinfo arithmetic runs twice a day per window, not once per decision)."""

    __slots__ = ("tz", "_cache")

    def __init__(self, tz: str) -> None:
        self.tz = ZoneInfo(tz)
        # window -> (valid_from, valid_until, occurrence or None)
        self._cache: dict[WindowCap, tuple[float, float, tuple[float, float] | None]] = {}

    def occurrence(self, window: WindowCap, t: float) -> tuple[float, float] | None:
        """The (start, end) epoch seconds of the occurrence of ``window`` containing ``t``,
        or None when ``t`` is outside the window."""
        hit = self._cache.get(window)
        if hit is not None and hit[0] <= t < hit[1]:
            return hit[2]
        lo, hi, occ = self._compute(window, t)
        self._cache[window] = (lo, hi, occ)
        return occ

    def _at(self, day, minutes: int) -> float:
        local = datetime.combine(day, time(0, 0), tzinfo=self.tz) + timedelta(minutes=minutes)
        # timedelta on an aware datetime is wall-clock arithmetic; re-attach the zone so
        # the offset is the one valid at that wall time (DST days are 23 or 25 hours).
        return local.replace(tzinfo=self.tz).timestamp()

    def _compute(self, window: WindowCap, t: float) -> tuple[float, float, tuple[float, float] | None]:
        s_min, e_min = window.minutes
        today = datetime.fromtimestamp(t, self.tz).date()
        one = timedelta(days=1)
        # Occurrences starting yesterday, today and tomorrow cover every case, including
        # windows that span midnight (end < start -> ends the next day).
        spans = []
        for day in (today - one, today, today + one):
            start = self._at(day, s_min)
            end = self._at(day + one, e_min) if e_min <= s_min else self._at(day, e_min)
            spans.append((start, end))
        for start, end in spans:
            if start <= t < end:
                return start, end, (start, end)
        prev_end = max((e for _, e in spans if e <= t), default=t)
        next_start = min((s for s, _ in spans if s > t), default=t + 1.0)
        return prev_end, next_start, None


class Usage:
    """Traffic of one SIM or one operator: starts per class, talk seconds, window counts."""

    __slots__ = ("starts", "talk", "talk_sum", "window_counts")

    def __init__(self) -> None:
        self.starts: tuple[deque[float], deque[float]] = (deque(), deque())  # indexed by Traffic.value
        self.talk: deque[tuple[float, float]] = deque()  # (end time, talk seconds)
        self.talk_sum = 0.0
        self.window_counts: dict[WindowCap, tuple[float, int]] = {}  # window -> (occurrence start, count)

    # -- recording -------------------------------------------------------------------
    def record_start(self, traffic: Traffic, now: float, windows: tuple[WindowCap, ...], clock: WindowClock) -> None:
        q = self.starts[traffic.value]
        q.append(now)
        while q[0] + DAY_SECONDS <= now:
            q.popleft()
        if traffic is Traffic.VOICE:
            for w in windows:
                occ = clock.occurrence(w, now)
                if occ is None:
                    continue
                prev = self.window_counts.get(w)
                count = prev[1] + 1 if prev is not None and prev[0] == occ[0] else 1
                self.window_counts[w] = (occ[0], count)

    def record_talk(self, seconds: float, now: float) -> None:
        if seconds <= 0:
            return
        self.talk.append((now, seconds))
        self.talk_sum += seconds
        self._purge_talk(now)

    def _purge_talk(self, now: float) -> None:
        talk = self.talk
        while talk and talk[0][0] + DAY_SECONDS <= now:
            self.talk_sum -= talk.popleft()[1]
        if not talk:
            self.talk_sum = 0.0  # no drift from float subtraction

    # -- readiness -------------------------------------------------------------------
    def ready_at(self, traffic: Traffic, limits: SimLimits, now: float, clock: WindowClock) -> tuple[float, str]:
        """Earliest time >= now at which every cap in ``limits`` holds for one more start of
        ``traffic``, and the name of the cap that binds last ("" when none binds)."""
        best, why = now, ""
        q = self.starts[traffic.value]
        if traffic is Traffic.VOICE:
            caps = ((limits.calls_per_hour, HOUR_SECONDS, "calls_per_hour"), (limits.calls_per_day, DAY_SECONDS, "calls_per_day"))
        else:
            caps = ((limits.sms_per_hour, HOUR_SECONDS, "sms_per_hour"), (limits.sms_per_day, DAY_SECONDS, "sms_per_day"))
        for cap, span, name in caps:
            if cap is None:
                continue
            if cap == 0:
                return INF, name
            if len(q) >= cap:
                t = q[-cap] + span  # when the cap-th most recent start leaves the window
                if t > best:
                    best, why = t, name
        if traffic is Traffic.VOICE:
            if limits.max_call_seconds_per_day is not None:
                t = self._talk_ready(limits.max_call_seconds_per_day, now)
                if t > best:
                    best, why = t, "max_call_seconds_per_day"
            for w in limits.windows:
                occ = clock.occurrence(w, now)
                if occ is None:
                    continue
                prev = self.window_counts.get(w)
                count = prev[1] if prev is not None and prev[0] == occ[0] else 0
                if count >= w.max_calls and occ[1] > best:
                    best, why = occ[1], f"window {w.start}-{w.end} max {w.max_calls}"
        return best, why

    def _talk_ready(self, cap: float, now: float) -> float:
        self._purge_talk(now)
        if self.talk_sum < cap:
            return now
        if cap <= 0:
            return INF
        remaining = self.talk_sum
        for end, seconds in self.talk:  # only walked while capped: bounded by a day's calls
            remaining -= seconds
            if remaining < cap:
                return end + DAY_SECONDS
        return now  # unreachable: the sum empties

    # -- persistence -----------------------------------------------------------------
    def to_json(self) -> dict:
        return {
            "voice": list(self.starts[0]),
            "sms": list(self.starts[1]),
            "talk": [list(x) for x in self.talk],
            "windows": [[w.start, w.end, w.max_calls, occ, n] for w, (occ, n) in self.window_counts.items()],
        }

    @classmethod
    def from_json(cls, data: dict, now: float) -> Usage:
        u = cls()
        for traffic, key in ((Traffic.VOICE, "voice"), (Traffic.SMS, "sms")):
            q = u.starts[traffic.value]
            q.extend(float(t) for t in sorted(data.get(key, ())) if float(t) + DAY_SECONDS > now)
        for end, seconds in sorted(data.get("talk", ())):
            if end + DAY_SECONDS > now:
                u.talk.append((float(end), float(seconds)))
                u.talk_sum += float(seconds)
        for start, end, max_calls, occ, n in data.get("windows", ()):
            u.window_counts[WindowCap(start, end, int(max_calls))] = (float(occ), int(n))
        return u
