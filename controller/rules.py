"""Contact rules: may this contact be called (or texted) now? A pure module.

Everything the decision needs comes in as values — the time (an injected clock's
reading), the contact's number and zone, the campaign's settings and the contact's
history as counted by the store — so every rule is tested with a fake clock across
zones and DST changes without a database or a sleep.

A refusal is never a silent drop: ``check`` returns a ``Decision`` with the rule's
``reason`` and ``retry_at``, the earliest instant at which that rule could pass
(``None`` when it never will, e.g. an opted-out number); the dispatcher records it as a
result with outcome ``refused_by_policy`` and re-plans the contact at ``retry_at``.

Rules are checked in the order of ``RULES_BY_KIND`` (cheapest and most permanent first),
and which rules apply depends on the kind of job: a silent HLR ping is not a contact
attempt, so only opt-out and blackout dates apply to it.

A promise to pay the voicebot took (``History.promise_date``) holds until the promised
day has passed in the callee's zone: no call is placed to him meanwhile (issue 14), and
``promise_over_at`` says when he may be called again (the next day's first calling hour).
"""
from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from phonenumbers import timezone as pn_timezone
from phonenumbers.tzdata import TIMEZONE_DATA

# the wire contract's (campaigns.py imports it from here too)
from common.contract import JobKind
from common.phone import country_code

#: Default calling window, callee's local time: FDCPA §805(a)(1) (15 U.S.C. 1692c(a)(1))
#: presumes 8 a.m.–9 p.m. convenient; Polish collection practice (Kodeks Dobrych Praktyk
#: of the Konferencja Przedsiębiorstw Finansowych) and the UK CSA Code use the same window.
DEFAULT_HOURS: Final = (time(8, 0), time(21, 0))
#: Reg F, 12 CFR 1006.14(b)(2)(i): more than 7 call attempts within 7 consecutive days
#: is presumed harassment.
DEFAULT_MAX_ATTEMPTS: Final = 7
DEFAULT_ATTEMPT_WINDOW: Final = timedelta(days=7)
#: Reg F, 12 CFR 1006.14(b)(2)(ii): no call within 7 days after a telephone conversation.
DEFAULT_QUIET_AFTER_CONVERSATION: Final = timedelta(days=7)
#: Call attempts per number per local day. No statute fixes it for Poland; 3 is the
#: common setting of collection dialers (a stricter precedent: Massachusetts 940 CMR
#: 7.04(1)(f), 2 calls per 7 days to a residence).
DEFAULT_DAILY_CAP_PER_NUMBER: Final = 3
#: A number whose daily cap is full only with calls still in flight is looked at again
#: after this: a leased call is placed or given back within its lease (5 min by default)
#: and its result reaches the controller soon after; if it was never placed, the cap has
#: room again.
IN_FLIGHT_RECHECK: Final = timedelta(minutes=10)
#: Days a call recording is kept (issue 14, off unless a step records). 30 days is the
#: usual short retention of call-centre QA recordings; 3650 (10 years) bounds a mistake.
#: Not a contact rule: it rides in the campaign's rules because the campaign owns it.
DEFAULT_RECORDING_RETENTION_DAYS: Final = 30


class Reason(enum.Enum):
    """Why a contact was refused; the ``reason`` field of a refused_by_policy result."""

    OPTED_OUT = "opted_out"
    BLACKOUT_DATE = "blackout_date"
    OUTSIDE_CALLING_HOURS = "outside_calling_hours"
    QUIET_AFTER_CONVERSATION = "quiet_after_conversation"
    ATTEMPT_CAP = "attempt_cap"
    DAILY_CAP_PER_NUMBER = "daily_cap_per_number"
    PROMISE_HOLDS = "promise_holds"  # the callee promised to pay by a date not yet passed
    UNUSABLE_CONTACT_DATA = "unusable_contact_data"  # the step needs a field the contact lacks (dispatcher.py)


@dataclasses.dataclass(frozen=True, slots=True)
class Settings:
    """A campaign's rule settings (``rules`` in the campaign body), defaults above."""

    hours: tuple[time, time] = DEFAULT_HOURS
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    attempt_window: timedelta = DEFAULT_ATTEMPT_WINDOW
    quiet_after_conversation: timedelta = DEFAULT_QUIET_AFTER_CONVERSATION
    daily_cap_per_number: int = DEFAULT_DAILY_CAP_PER_NUMBER
    blackout_dates: frozenset[date] = frozenset()
    recording_retention_days: int = DEFAULT_RECORDING_RETENTION_DAYS

    def __post_init__(self) -> None:
        if not self.hours[0] < self.hours[1]:
            raise ValueError("hours: start must be before end (windows over midnight are not supported)")
        if self.max_attempts < 1 or self.daily_cap_per_number < 1:
            raise ValueError("max_attempts and daily_cap_per_number must be >= 1")


@dataclasses.dataclass(frozen=True, slots=True)
class History:
    """What the store counted for one contact and number (UTC datetimes)."""

    opted_out: bool = False
    #: start times of the contact's call attempts within the attempt window, oldest first
    recent_attempts: Sequence[datetime] = ()
    last_conversation: datetime | None = None
    #: call attempts to this number since the start of the callee's local day
    attempts_today: int = 0
    #: calls to this number leased and not yet reported placed (another contact sharing
    #: the number, on this controller or another): each is an attempt about to happen
    calls_in_flight: int = 0
    #: the date the callee promised to pay by (the voicebot), if any
    promise_date: date | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    reason: Reason | None = None
    retry_at: datetime | None = None
    detail: str = ""

    @classmethod
    def allow(cls) -> Decision:
        return _ALLOW


_ALLOW: Final = Decision(True)


@dataclasses.dataclass(frozen=True, slots=True)
class Request:
    """One planned job: who, how, when (``now`` is UTC and zone-aware)."""

    kind: JobKind
    number: str
    now: datetime
    zone: str | None = None

    def __post_init__(self) -> None:
        if self.now.tzinfo is None:
            raise ValueError("now must be zone-aware (UTC)")


@lru_cache(maxsize=4096)
def zones_for_number(number: str) -> tuple[ZoneInfo, ...]:
    """Every zone the number may be in (phonenumbers' geocoder data). A number that
    spans several zones (a US mobile, a Russian one) is only called when the window is
    open in all of them — the conservative reading; give the contact's ``time_zone``
    to be exact. An unknown number falls back to UTC.

    A number in E.164 of a country whose every number has the same zones (Poland: every
    range is Europe/Warsaw) is answered from its country code (``_zones_of_code``), without
    parsing it and typing it (~45 µs, most of a dispatched job's planning), and so also
    when phonenumbers does not know its range yet: a number allocated after the library's
    data is still in its country, not in UTC."""
    if (code := country_code(number)) is not None and (zones := _zones_of_code(str(code))) is not None:
        return zones
    try:
        names = pn_timezone.time_zones_for_number(phonenumbers.parse(number, None))
    except phonenumbers.NumberParseException:
        names = ()
    return _zone_infos(names) or (ZoneInfo("UTC"),)


def _zone_infos(names: Sequence[str]) -> tuple[ZoneInfo, ...]:
    zones = []
    for name in names:
        try:
            zones.append(ZoneInfo(name))
        except (ZoneInfoNotFoundError, ValueError):
            continue
    return tuple(zones)


@lru_cache(maxsize=None)
def _zones_of_code(code: str) -> tuple[ZoneInfo, ...] | None:
    """The zones of every number with country code ``code`` when phonenumbers' time zone
    table gives them all one answer, else None (the US: by area code). The table is keyed
    by number prefix; a number takes its longest matching prefix, a non-geographic one the
    code's own entry: with the code's own entry present and every prefix under it naming
    the same zones, every number of the code is in them."""
    answers = {names for prefix, names in TIMEZONE_DATA.items() if prefix.startswith(code)}
    if code not in TIMEZONE_DATA or len(answers) != 1:
        return None
    return _zone_infos(answers.pop()) or None


def zone_for_number(number: str) -> ZoneInfo:
    return zones_for_number(number)[0]


def resolve_zones(req: Request) -> tuple[ZoneInfo, ...]:
    if req.zone:
        try:
            return (ZoneInfo(req.zone),)
        except (ZoneInfoNotFoundError, ValueError):
            pass
    return zones_for_number(req.number)


def _local_midnight_after(now: datetime, tz: ZoneInfo) -> datetime:
    local = now.astimezone(tz)
    nxt = datetime.combine(local.date() + timedelta(days=1), time(0), tz)
    return nxt.astimezone(UTC)


def next_window_start(now: datetime, tz: ZoneInfo, start: time, end: time) -> datetime | None:
    """When the callee's local window next opens (``None`` if it is open now).

    Wall-clock times are resolved with zoneinfo, so a window that opens at 08:00 opens at
    08:00 local on both sides of a DST change; a start inside a spring-forward gap is
    taken as the first valid instant after it (PEP 495 ``fold=0`` semantics).
    """
    local = now.astimezone(tz)
    if start <= local.time().replace(tzinfo=None) < end:
        return None
    day = local.date() if local.time().replace(tzinfo=None) < start else local.date() + timedelta(days=1)
    candidate = datetime.combine(day, start, tz).astimezone(UTC)
    # a non-existent local time (gap) maps forward; make sure we never go back in time
    return max(candidate, now + timedelta(seconds=1))


# -- the rules: each returns None (passes) or a refusal -----------------------------------------
Rule = Callable[[Request, Settings, History, tuple[ZoneInfo, ...]], Decision | None]


def _opt_out(req: Request, s: Settings, h: History, zones: tuple[ZoneInfo, ...]) -> Decision | None:
    if h.opted_out:
        return Decision(False, Reason.OPTED_OUT, None, "the number is on the opt-out / do-not-call list")
    return None


def _blackout(req: Request, s: Settings, h: History, zones: tuple[ZoneInfo, ...]) -> Decision | None:
    tz = zones[0]
    today = req.now.astimezone(tz).date()
    if today not in s.blackout_dates:
        return None
    day = today
    while day in s.blackout_dates:
        day += timedelta(days=1)
    return Decision(False, Reason.BLACKOUT_DATE, datetime.combine(day, time(0), tz).astimezone(UTC),
                    f"{today.isoformat()} is a blackout date of the campaign")


def _hours(req: Request, s: Settings, h: History, zones: tuple[ZoneInfo, ...]) -> Decision | None:
    closed = [(opens, tz) for tz in zones if (opens := next_window_start(req.now, tz, *s.hours)) is not None]
    if not closed:
        return None
    opens, tz = max(closed, key=lambda c: c[0])  # re-checked then: another zone may have closed
    local = req.now.astimezone(tz)
    return Decision(False, Reason.OUTSIDE_CALLING_HOURS, opens,
                    f"{local.strftime('%H:%M')} in {tz.key} is outside {s.hours[0]:%H:%M}-{s.hours[1]:%H:%M}")


def _quiet(req: Request, s: Settings, h: History, zones: tuple[ZoneInfo, ...]) -> Decision | None:
    if h.last_conversation is None:
        return None
    until = h.last_conversation + s.quiet_after_conversation
    if req.now >= until:
        return None
    return Decision(False, Reason.QUIET_AFTER_CONVERSATION, until,
                    f"a conversation took place at {h.last_conversation.isoformat()}")


def _attempt_cap(req: Request, s: Settings, h: History, zones: tuple[ZoneInfo, ...]) -> Decision | None:
    since = req.now - s.attempt_window
    inside = sorted(t for t in h.recent_attempts if t > since)
    if len(inside) < s.max_attempts:
        return None
    # the cap frees up when enough of the oldest attempts leave the rolling window
    frees_at = inside[len(inside) - s.max_attempts] + s.attempt_window
    return Decision(False, Reason.ATTEMPT_CAP, frees_at,
                    f"{len(inside)} call attempts in the last {s.attempt_window.days} days (cap {s.max_attempts})")


def promise_over_at(promise: date, tz: ZoneInfo, hours: tuple[time, time]) -> datetime:
    """When a promise to pay by ``promise`` stops holding, for calling: the first calling
    hour of the next day in the callee's zone (UTC)."""
    return datetime.combine(promise + timedelta(days=1), hours[0], tz).astimezone(UTC)


def _promise(req: Request, s: Settings, h: History, zones: tuple[ZoneInfo, ...]) -> Decision | None:
    if h.promise_date is None:
        return None
    over = max(promise_over_at(h.promise_date, tz, s.hours) for tz in zones)
    if req.now >= over:
        return None
    return Decision(False, Reason.PROMISE_HOLDS, over,
                    f"the callee promised to pay by {h.promise_date.isoformat()}; no call before "
                    f"{over.astimezone(zones[0]).strftime('%Y-%m-%d %H:%M')} {zones[0].key}")


def _daily_cap(req: Request, s: Settings, h: History, zones: tuple[ZoneInfo, ...]) -> Decision | None:
    if h.attempts_today + h.calls_in_flight < s.daily_cap_per_number:
        return None
    if h.attempts_today < s.daily_cap_per_number:  # only the calls in flight fill the cap: look again once they ended
        return Decision(False, Reason.DAILY_CAP_PER_NUMBER, req.now + IN_FLIGHT_RECHECK,
                        f"{h.attempts_today} call attempts to this number today and {h.calls_in_flight} in flight "
                        f"(cap {s.daily_cap_per_number})")
    return Decision(False, Reason.DAILY_CAP_PER_NUMBER, _local_midnight_after(req.now, zones[0]),
                    f"{h.attempts_today} call attempts to this number today (cap {s.daily_cap_per_number})")


#: Which rules apply to which kind of job, in the order they are checked.
RULES_BY_KIND: Final[dict[JobKind, tuple[Rule, ...]]] = {
    JobKind.CALL: (_opt_out, _blackout, _promise, _hours, _quiet, _attempt_cap, _daily_cap),
    JobKind.SMS: (_opt_out, _blackout, _hours, _quiet),
    JobKind.HLR: (_opt_out, _blackout),
}


def check(req: Request, settings: Settings, history: History) -> Decision:
    """The first rule that refuses, or ``Decision.allow()``."""
    zones = resolve_zones(req)
    for rule in RULES_BY_KIND[req.kind]:
        refusal = rule(req, settings, history, zones)
        if refusal is not None:
            return refusal
    return Decision.allow()


def day_start_utc(now: datetime, zone: str | None, number: str) -> datetime:
    """Start of the callee's local day, in UTC (what ``attempts_today`` counts from)."""
    tz = resolve_zones(Request(JobKind.CALL, number, now, zone))[0]
    local = now.astimezone(tz)
    return datetime.combine(local.date(), time(0), tz).astimezone(UTC)
