"""The last hour's calls for the page: calls per minute, and ASR, ACD and PDD per SIM, per
operator and per modem, read from the store's attempts (their results carry the call's
times: ``dialed_at``, ``alerting_at``, ``answered_at``, ``talk_seconds``,
appliance/jobs/call.py).

The figures, exactly as computed (docs/appliance.md, "Reading the page", says the same):

* a **seizure** is a finished ``call`` attempt whose dial the modem took: every outcome
  but ``channel_error`` (an ATD the modem refused, a lost port or audio port before the
  dial: the network never saw it). A network refusal (``network_error``), a busy line or
  an unanswered ring are seizures;
* **ASR** (answer-seizure ratio, ITU-T E.411) = seizures answered (``answered_at`` set)
  / seizures, in %;
* **ACD** (average call duration) = the answered seizures' ``talk_seconds`` (answer to
  release) summed / answered seizures, in seconds;
* **PDD** (post-dial delay) = the mean, over seizures that rang or were answered, of
  ``alerting_at − dialed_at`` (or ``answered_at − dialed_at`` when the network sent no
  alerting before the answer), in seconds; ``dialed_at`` is when the appliance sent
  ``ATD``. Seizures released before ringing have none.

The charts are SVG drawn here (no script, no library): calls per minute (answered and
not answered stacked) over the last 60 whole minutes, and the answer rate (ASR) per
operator in 5-minute steps.

Attempts are never pruned, so the hour is found by row id (attempt ids grow with their
start times: one insert per start, ``started_at`` = now), not by a scan: a binary search
the first time, then a step forward from the last hour's first row. Each attempt is read
from the store once when it is finished (its JSON result taken apart in SQL) and kept
while it is in the window: a reading reads the attempts started since the last one and
those that were still up then. A reading is kept ``REFRESH_SECONDS`` (the page looks
twice a second).
"""
from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Iterable
from html import escape
from typing import Any, Final

from ..bank import Bank
from ..store import Store

#: The page's window.
WINDOW_SECONDS: Final = 3600
#: Answer-rate chart step: 12 points an hour (a minute holds a handful of calls per
#: operator on a small box: a per-minute rate would be noise).
RATE_STEP_SECONDS: Final = 300
#: How long one reading of the hour is shown before the store is read again: the charts
#: move by the minute, and a look at 15,000 attempts an hour costs ~30 ms.
REFRESH_SECONDS: Final = 5.0
#: Outcomes of attempts the network never saw (not seizures).
NOT_SEIZED: Final = frozenset({"channel_error"})
#: Line colours of the answer-rate chart, one per operator in turn.
COLOURS: Final = ("#1a4fa0", "#146c2e", "#a11", "#7a5600", "#6b1d8f", "#0b7285", "#5c5f66")

#: An attempt's figures: (id, finished, kind, channel, SIM, started_at, outcome, seconds to
#: alerting, seconds to the answer, talk seconds); the seconds None where a time is missing.
_COLUMNS = (
    "SELECT id, result IS NOT NULL, json_extract(result, '$.kind'), channel_id, sim_id, started_at,"
    " json_extract(result, '$.outcome'),"
    " (julianday(json_extract(result, '$.alerting_at')) - julianday(json_extract(result, '$.dialed_at'))) * 86400.0,"
    " (julianday(json_extract(result, '$.answered_at')) - julianday(json_extract(result, '$.dialed_at'))) * 86400.0,"
    " json_extract(result, '$.talk_seconds') FROM attempts"
)
#: SQLite's bound on a statement's parameters (SQLITE_MAX_VARIABLE_NUMBER before 3.32).
MAX_PARAMS: Final = 999


@dataclasses.dataclass(slots=True)
class Quality:
    """Sums for ASR, ACD and PDD of one SIM, operator or modem."""

    seizures: int = 0
    answered: int = 0
    talk_seconds: float = 0.0
    pdd_sum: float = 0.0
    pdd_n: int = 0

    def figures(self) -> dict[str, Any]:
        return {
            "seizures": self.seizures,
            "answered": self.answered,
            "asr": round(100.0 * self.answered / self.seizures, 1) if self.seizures else None,
            "acd": round(self.talk_seconds / self.answered, 1) if self.answered else None,
            "pdd": round(self.pdd_sum / self.pdd_n, 2) if self.pdd_n else None,
        }


class Traffic:
    """The last hour of one appliance's calls (see the module docstring)."""

    def __init__(self, store: Store, bank: Bank, *, clock: Callable[[], float] = time.time,
                 refresh_seconds: float = REFRESH_SECONDS) -> None:
        self.store = store
        self.bank = bank
        self.clock = clock
        self.refresh_seconds = refresh_seconds
        self._first_id: int | None = None
        self._last_id = 0  # the newest attempt read
        self._calls: dict[int, tuple[Any, ...]] = {}  # finished call attempts in the window, by id
        self._open: set[int] = set()  # attempts not finished at the last reading
        self._read_at = -math.inf
        self._last: dict[str, Any] | None = None

    def document(self) -> dict[str, Any]:
        """The hour's figures and charts; read again at most every ``refresh_seconds``."""
        mono = time.monotonic()
        if self._last is None or mono - self._read_at >= self.refresh_seconds:
            self._last = self.read(self.clock())
            self._read_at = mono
        return self._last

    def _first_since(self, since: float) -> int:
        """The id of the first attempt started after ``since`` (ids grow with start times)."""
        conn = self.store.conn
        if self._first_id is not None:
            row = conn.execute("SELECT MIN(id) FROM attempts WHERE id >= ? AND started_at > ?",
                               (self._first_id, since)).fetchone()
            return int(row[0]) if row[0] is not None else self._first_id
        lo, hi = conn.execute("SELECT COALESCE(MIN(id), 0), COALESCE(MAX(id), 0) FROM attempts").fetchone()
        hi += 1
        while lo < hi:  # the first id whose started_at > since
            mid = (lo + hi) // 2
            row = conn.execute("SELECT id, started_at FROM attempts WHERE id >= ? ORDER BY id LIMIT 1", (mid,)).fetchone()
            if row is None or row[1] > since:
                hi = mid
            else:
                lo = row[0] + 1
        return lo

    def _refresh(self, start: float) -> None:
        """Bring ``_calls`` to the window starting at ``start`` (see the module docstring)."""
        first = self._first_since(start)
        self._first_id = first
        conn = self.store.conn
        rows = conn.execute(_COLUMNS + " WHERE id >= ? AND started_at > ?", (max(first, self._last_id + 1), start)).fetchall()
        still = sorted(i for i in self._open if i >= first)
        for k in range(0, len(still), MAX_PARAMS):
            part = still[k:k + MAX_PARAMS]
            rows += conn.execute(_COLUMNS + f" WHERE id IN ({','.join('?' * len(part))})", part).fetchall()
        self._open = set()
        for attempt_id, finished, kind, channel_id, sim_id, started_at, outcome, to_alert, to_answer, talk in rows:
            self._last_id = max(self._last_id, attempt_id)
            if not finished:
                self._open.add(attempt_id)
            elif kind == "call":
                pdd = to_alert if to_alert is not None else to_answer
                self._calls[attempt_id] = ((channel_id, sim_id), int(started_at // 60), outcome not in NOT_SEIZED,
                                           to_answer is not None, float(talk or 0.0),
                                           None if pdd is None or pdd < 0 else pdd)
        for gone in [i for i in self._calls if i < first]:
            del self._calls[gone]

    def read(self, now: float) -> dict[str, Any]:
        end = math.floor(now / 60) * 60 + 60  # the current minute's end: 60 whole bars
        start = end - WINDOW_SECONDS
        self._refresh(start)
        minutes, steps, per_step = WINDOW_SECONDS // 60, WINDOW_SECONDS // RATE_STEP_SECONDS, RATE_STEP_SECONDS // 60
        first_minute = int(start // 60)
        per_minute = [0] * (2 * minutes)  # answered, not answered, per minute
        # per (modem, SIM): seizures, answered, talk, PDD sum, PDD count, [answered, seizures] per step
        acc: dict[tuple[str, str], list[Any]] = {}
        for key, minute, seized, answered, talk, pdd in self._calls.values():
            m = minute - first_minute
            if m < 0:
                continue  # a row id past the hour's first one but started before it (clock set back)
            if m >= minutes:
                m = minutes - 1
            per_minute[2 * m + (0 if answered else 1)] += 1
            if not seized:
                continue
            a = acc.get(key)
            if a is None:
                a = acc[key] = [0, 0, 0.0, 0.0, 0, [0] * (2 * steps)]
            a[0] += 1
            if answered:
                a[1] += 1
                a[2] += talk
            if pdd is not None:
                a[3] += pdd
                a[4] += 1
            s = 2 * (m // per_step)
            a[5][s] += answered
            a[5][s + 1] += 1
        operator_of = {s.sim_id: (s.info.operator_label or "unknown") if s.info else "unknown"
                       for _, s in self.bank.sims() if s.sim_id}
        rate: dict[str, list[list[int]]] = {}  # operator -> [answered, seizures] per step
        by_sim: dict[str, Quality] = {}
        by_operator: dict[str, Quality] = {}
        by_modem: dict[str, Quality] = {}
        for (channel_id, sim_id), (seized, answered, talk, pdd_sum, pdd_n, in_steps) in acc.items():
            operator = operator_of.get(sim_id, "unknown")
            for table, key in ((by_sim, sim_id), (by_operator, operator), (by_modem, channel_id)):
                q = table.get(key)
                if q is None:
                    q = table[key] = Quality()
                q.seizures += seized
                q.answered += answered
                q.talk_seconds += talk
                q.pdd_sum += pdd_sum
                q.pdd_n += pdd_n
            line = rate.setdefault(operator, [[0, 0] for _ in range(steps)])
            for i in range(steps):
                line[i][0] += in_steps[2 * i]
                line[i][1] += in_steps[2 * i + 1]
        per_minute_pairs = [[per_minute[2 * i], per_minute[2 * i + 1]] for i in range(minutes)]
        return {
            "from": start,
            "to": end,
            "calls": sum(per_minute),
            "by_sim": {k: q.figures() for k, q in by_sim.items() if k},
            "by_operator": [{"operator": k, **q.figures()} for k, q in sorted(by_operator.items())],
            "by_modem": {k: q.figures() for k, q in by_modem.items() if k},
            "charts": {"calls": calls_chart(per_minute_pairs, start), "answer_rate": rate_chart(rate, start)},
        }


# -- SVG ----------------------------------------------------------------------------------
W, H, LEFT, BOTTOM, TOP = 600, 160, 44, 22, 10


def _hhmm(t: float) -> str:
    return time.strftime("%H:%M", time.gmtime(t))


def _frame(title: str, y_max: float, y_unit: str, start: float, body: Iterable[str], legend: str = "") -> str:
    plot_h = H - BOTTOM - TOP
    parts = [(f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H + (20 if legend else 0)}" role="img" '
              f'aria-label="{escape(title)}" class="chart"><title>{escape(title)}</title>')]
    for frac in (0.0, 0.5, 1.0):  # y grid: 0, half, top
        y = TOP + plot_h * (1 - frac)
        label = f"{y_max * frac:.0f}{y_unit}"
        parts.append(f'<line x1="{LEFT}" x2="{W}" y1="{y:.1f}" y2="{y:.1f}" stroke="#eceef2"/>'
                     f'<text x="{LEFT - 4}" y="{y + 4:.1f}" text-anchor="end" font-size="13" fill="#8a93a6">{label}</text>')
    for k in range(0, 61, 15):  # x: every 15 minutes, UTC
        x = LEFT + (W - LEFT) * k / 60
        anchor = "start" if k == 0 else "end" if k == 60 else "middle"
        parts.append(f'<text x="{x:.1f}" y="{H - 5}" text-anchor="{anchor}" font-size="13" fill="#8a93a6">'
                     f'{_hhmm(start + 60 * k)}</text>')
    parts.extend(body)
    if legend:
        parts.append(legend)
    parts.append("</svg>")
    return "".join(parts)


def calls_chart(per_minute: list[list[int]], start: float) -> str:
    """Calls per minute: answered (green) under not answered (grey), one bar a minute."""
    top = max(max((a + b for a, b in per_minute), default=0), 1)
    top = _nice(top)
    plot_h, bar_w = H - BOTTOM - TOP, (W - LEFT) / len(per_minute)
    body = []
    for i, (answered, other) in enumerate(per_minute):
        x = LEFT + i * bar_w + 0.5
        h_ans, h_other = plot_h * answered / top, plot_h * other / top
        when = _hhmm(start + 60 * i)
        if answered:
            body.append(f'<rect x="{x:.1f}" y="{TOP + plot_h - h_ans:.1f}" width="{bar_w - 1:.1f}" height="{h_ans:.1f}" '
                        f'fill="#2f9e44" data-minute="{i}"><title>{when}: {answered} answered</title></rect>')
        if other:
            body.append(f'<rect x="{x:.1f}" y="{TOP + plot_h - h_ans - h_other:.1f}" width="{bar_w - 1:.1f}" '
                        f'height="{h_other:.1f}" fill="#adb5bd" data-minute="{i}"><title>{when}: {other} not answered'
                        '</title></rect>')
    return _frame("calls per minute, last hour (UTC)", top, "", start, body)


def rate_chart(rate: dict[str, list[list[int]]], start: float) -> str:
    """ASR per operator, one point per 5 minutes with seizures, joined by lines."""
    plot_h, step_w = H - BOTTOM - TOP, (W - LEFT) * RATE_STEP_SECONDS / WINDOW_SECONDS
    body, legend = [], []
    for n, (operator, steps) in enumerate(sorted(rate.items())):
        colour = COLOURS[n % len(COLOURS)]
        points = []
        for i, (answered, seized) in enumerate(steps):
            if not seized:
                continue
            x = LEFT + step_w * (i + 0.5)
            y = TOP + plot_h * (1 - answered / seized)
            points.append(f"{x:.1f},{y:.1f}")
            body.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{colour}"><title>{escape(operator)} '
                        f'{_hhmm(start + RATE_STEP_SECONDS * i)}: {answered}/{seized} answered '
                        f'({100 * answered / seized:.0f} %)</title></circle>')
        if len(points) > 1:
            body.append(f'<polyline points="{" ".join(points)}" fill="none" stroke="{colour}" stroke-width="1.5"/>')
        legend.append(f'<text x="{LEFT + 130 * n}" y="{H + 16}" font-size="14" fill="{colour}" '
                      f'data-operator="{escape(operator)}">■ {escape(operator[:16])}</text>')
    return _frame("answer rate (ASR) per operator, last hour in 5-minute steps (UTC)", 100, " %", start, body,
                  "".join(legend) or f'<text x="{LEFT}" y="{H + 16}" font-size="14" fill="#8a93a6">no calls this hour</text>')


def _nice(n: int) -> int:
    """A round top for the y axis at or above ``n``: 1, 2, 5, 10, 20, 50 …"""
    k = 1
    while True:
        for m in (1, 2, 5):
            if m * k >= n:
                return m * k
        k *= 10
