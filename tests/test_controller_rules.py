"""Contact rules with a fake clock: zones, DST, rolling windows (controller/rules.py)."""
from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone

import pytest

from controller.rules import (IN_FLIGHT_RECHECK, History, JobKind, Reason, Request, Settings, check, day_start_utc,
                              next_window_start, zone_for_number)

UTC = timezone.utc
PL = "+48600100200"     # Europe/Warsaw
UK = "+442079460000"    # Europe/London (020 7946: Ofcom drama range)
NYC = "+12125550123"    # America/New_York (212 area code)


def at(y, mo, d, h, mi=0):
    return datetime(y, mo, d, h, mi, tzinfo=UTC)


def req(number, now, kind=JobKind.CALL, zone=None):
    return Request(kind, number, now, zone)


def test_zone_is_derived_from_the_number():
    assert zone_for_number(PL).key == "Europe/Warsaw"
    assert zone_for_number(UK).key == "Europe/London"
    assert zone_for_number(NYC).key == "America/New_York"


def test_the_zones_from_the_country_code_are_the_parsed_numbers_for_every_example_number():
    """The short way (a country whose numbers all share their zones, answered from its
    code) gives what parsing and typing the number gives, for the example number of every
    region and number type phonenumbers has; and where it answers, a number outside the
    known ranges is in its country's zone, not UTC."""
    import phonenumbers
    from phonenumbers import PhoneNumberType
    from phonenumbers import timezone as pn_timezone

    from controller import rules

    short = 0
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        for kind in (PhoneNumberType.FIXED_LINE, PhoneNumberType.MOBILE, PhoneNumberType.TOLL_FREE, PhoneNumberType.PREMIUM_RATE,
                     PhoneNumberType.SHARED_COST, PhoneNumberType.VOIP, PhoneNumberType.PERSONAL_NUMBER, PhoneNumberType.PAGER,
                     PhoneNumberType.UAN, PhoneNumberType.VOICEMAIL):
            example = phonenumbers.example_number_for_type(region, kind)
            if example is None:
                continue
            e164 = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164)
            parsed = rules._zone_infos(pn_timezone.time_zones_for_number(phonenumbers.parse(e164))) or (rules.ZoneInfo("UTC"),)
            assert rules.zones_for_number.__wrapped__(e164) == parsed, (region, kind, e164)
            short += rules._zones_of_code(str(example.country_code)) is not None
    for code in sorted(phonenumbers.COUNTRY_CODES_FOR_NON_GEO_REGIONS):  # +800, +881, …
        example = phonenumbers.example_number_for_non_geo_entity(code)
        if example is not None:
            e164 = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164)
            parsed = rules._zone_infos(pn_timezone.time_zones_for_number(example)) or (rules.ZoneInfo("UTC"),)
            assert rules.zones_for_number.__wrapped__(e164) == parsed, e164
    assert short > 500  # most countries are answered the short way
    assert rules._zones_of_code("1") is None and rules._zones_of_code("7") is None  # by area code
    assert zone_for_number("+48100000000").key == "Europe/Warsaw"  # no such range in Poland (yet)


@pytest.mark.parametrize("number,utc_hour,allowed", [
    (PL, 6, False),   # 07:00 CET in winter
    (PL, 7, True),    # 08:00 CET
    (PL, 19, True),   # 20:00 CET
    (PL, 20, False),  # 21:00 CET: the window is [08:00, 21:00)
    (UK, 7, False),   # 07:00 GMT
    (UK, 8, True),
    (UK, 20, True),   # 20:00 GMT
    (NYC, 12, False), # 07:00 EST
    (NYC, 13, True),  # 08:00 EST
    (NYC, 1, True),   # 20:00 EST the day before
    (NYC, 2, False),  # 21:00 EST
])
def test_calling_hours_in_the_callees_zone_winter(number, utc_hour, allowed):
    d = check(req(number, at(2026, 1, 15, utc_hour)), Settings(), History())
    assert d.allowed is allowed
    if not allowed:
        assert d.reason is Reason.OUTSIDE_CALLING_HOURS
        assert d.retry_at is not None and d.retry_at > at(2026, 1, 15, utc_hour)


def test_summer_time_moves_the_window_in_utc():
    # 06:30 UTC is 07:30 CET in January (closed) but 08:30 CEST in July (open)
    assert not check(req(PL, at(2026, 1, 15, 6, 30)), Settings(), History()).allowed
    assert check(req(PL, at(2026, 7, 15, 6, 30)), Settings(), History()).allowed


def test_retry_at_is_the_next_local_opening_across_spring_forward():
    # Poland springs forward on 2026-03-29 (02:00 -> 03:00). At 22:00 CET on the 28th the
    # next opening is 08:00 CEST on the 29th = 06:00 UTC (not 07:00).
    d = check(req(PL, at(2026, 3, 28, 21)), Settings(), History())
    assert d.reason is Reason.OUTSIDE_CALLING_HOURS
    assert d.retry_at == at(2026, 3, 29, 6)


def test_retry_at_across_fall_back():
    # Poland falls back on 2026-10-25: 08:00 CET that day = 07:00 UTC
    d = check(req(PL, at(2026, 10, 24, 20)), Settings(), History())
    assert d.retry_at == at(2026, 10, 25, 7)


def test_window_opening_inside_a_dst_gap_never_goes_back_in_time():
    from zoneinfo import ZoneInfo
    tz = ZoneInfo("Europe/Warsaw")
    now = at(2026, 3, 28, 23)  # 00:00 CET on the 29th
    opens = next_window_start(now, tz, time(2, 30), time(5, 0))  # 02:30 does not exist that day
    assert opens is not None and opens > now
    assert opens.astimezone(tz).hour == 3  # first valid instant after the gap


def test_given_zone_wins_over_the_number():
    # A Polish number whose owner lives in New York: 14:00 UTC is 09:00 EST (open) but
    # 15:00 CET would also be open; 02:00 UTC is 21:00 EST (closed), 03:00 CET (closed)
    now = at(2026, 1, 15, 1)  # 20:00 EST, 02:00 CET
    assert not check(req(PL, now), Settings(), History()).allowed
    assert check(req(PL, now, zone="America/New_York"), Settings(), History()).allowed


def test_campaign_hours_are_configurable():
    s = Settings(hours=(time(9, 0), time(17, 0)))
    assert not check(req(PL, at(2026, 1, 15, 7, 30)), s, History()).allowed  # 08:30 CET
    assert check(req(PL, at(2026, 1, 15, 8, 0)), s, History()).allowed
    with pytest.raises(ValueError):
        Settings(hours=(time(21, 0), time(8, 0)))


def test_attempt_cap_over_a_rolling_window_frees_when_the_oldest_leaves():
    now = at(2026, 1, 15, 12)
    attempts = [now - timedelta(days=6, hours=h) for h in range(7)]  # 7 within 7 days, oldest 06:00 UTC
    d = check(req(PL, now), Settings(), History(recent_attempts=attempts))
    assert d.reason is Reason.ATTEMPT_CAP
    oldest = min(attempts)
    assert d.retry_at == oldest + timedelta(days=7)
    # one second after the oldest leaves the window, the contact may be called again
    later = d.retry_at + timedelta(hours=2)  # 09:00 CET: inside calling hours too
    assert check(req(PL, later), Settings(), History(recent_attempts=attempts)).allowed
    # six attempts: allowed
    assert check(req(PL, now), Settings(), History(recent_attempts=attempts[:6])).allowed


def test_quiet_period_after_a_conversation():
    now = at(2026, 1, 15, 12)
    talk = now - timedelta(days=3)
    d = check(req(PL, now), Settings(), History(last_conversation=talk))
    assert d.reason is Reason.QUIET_AFTER_CONVERSATION and d.retry_at == talk + timedelta(days=7)
    assert check(req(PL, now), Settings(), History(last_conversation=now - timedelta(days=7))).allowed
    # SMS too, HLR pings not
    assert check(req(PL, now, JobKind.SMS), Settings(), History(last_conversation=talk)).reason is Reason.QUIET_AFTER_CONVERSATION
    assert check(req(PL, now, JobKind.HLR), Settings(), History(last_conversation=talk)).allowed


def test_daily_cap_per_number_resets_at_local_midnight():
    now = at(2026, 1, 15, 15)  # 10:00 EST
    d = check(req(NYC, now), Settings(daily_cap_per_number=2), History(attempts_today=2))
    assert d.reason is Reason.DAILY_CAP_PER_NUMBER
    assert d.retry_at == at(2026, 1, 16, 5)  # midnight EST
    assert day_start_utc(now, None, NYC) == at(2026, 1, 15, 5)
    assert check(req(NYC, now), Settings(daily_cap_per_number=2), History(attempts_today=1)).allowed


def test_calls_in_flight_to_the_number_count_against_its_daily_cap():
    """Another contact's call to the same number, leased and not yet placed, is an attempt
    about to happen: the cap holds with it, and the refusal looks again once it has ended
    (it may never be placed), not at midnight."""
    now = at(2026, 1, 15, 15)
    d = check(req(NYC, now), Settings(daily_cap_per_number=2), History(attempts_today=1, calls_in_flight=1))
    assert d.reason is Reason.DAILY_CAP_PER_NUMBER and d.retry_at == now + IN_FLIGHT_RECHECK
    assert "1 in flight" in d.detail
    d = check(req(NYC, now), Settings(daily_cap_per_number=2), History(attempts_today=2, calls_in_flight=1))
    assert d.retry_at == at(2026, 1, 16, 5)  # full with placed calls alone: midnight, as before
    assert check(req(NYC, now), Settings(daily_cap_per_number=3), History(attempts_today=1, calls_in_flight=1)).allowed


def test_blackout_dates_in_local_time_skip_consecutive_days():
    s = Settings(blackout_dates=frozenset({date(2026, 12, 24), date(2026, 12, 25)}))
    d = check(req(PL, at(2026, 12, 24, 10)), s, History())
    assert d.reason is Reason.BLACKOUT_DATE
    assert d.retry_at == at(2026, 12, 25, 23)  # 00:00 CET on the 26th
    # 23:30 UTC on the 23rd is already the 24th in Warsaw
    assert check(req(PL, at(2026, 12, 23, 23, 30)), s, History()).reason is Reason.BLACKOUT_DATE
    assert check(req(UK, at(2026, 12, 23, 23, 30), JobKind.HLR), s, History()).allowed


def test_opt_out_is_permanent_and_checked_first():
    d = check(req(PL, at(2026, 1, 15, 3)), Settings(), History(opted_out=True))
    assert d.reason is Reason.OPTED_OUT and d.retry_at is None
    assert check(req(PL, at(2026, 1, 15, 3), JobKind.HLR), Settings(), History(opted_out=True)).reason is Reason.OPTED_OUT


def test_request_needs_an_aware_clock():
    with pytest.raises(ValueError):
        Request(JobKind.CALL, PL, datetime(2026, 1, 1, 12))


def test_a_number_spanning_zones_is_called_only_when_open_in_all():
    from controller.rules import zones_for_number
    ru = "+79161234567"  # a Russian mobile: Moscow (and, by phonenumbers, other zones)
    zones = zones_for_number(ru)
    if len(zones) < 2:
        pytest.fail(f"expected several zones for {ru}, got {zones}")
    # find an instant open in one zone and closed in another
    now = at(2026, 1, 15, 5)
    assert not check(req(ru, now), Settings(), History()).allowed
    assert check(req(ru, now, zone=zones[0].key), Settings(), History()).allowed is (
        8 <= now.astimezone(zones[0]).hour < 21)
