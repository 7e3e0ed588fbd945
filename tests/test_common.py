"""The ground (common/): one phone normaliser, one masker, one time helper."""
from __future__ import annotations

import re
import time
from datetime import datetime, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from common.clock import iso, parse_iso
from common.phone import NumberError, mask, normalise


@pytest.mark.parametrize("written, region, e164", [
    ("+48 600-000-123", None, "+48600000123"),
    ("(600) 000 123", "PL", "+48600000123"),
    ("600.000.123", "PL", "+48600000123"),
    ("+48\u00a0600\u00a0000\u00a0123", None, "+48600000123"),
])
def test_normalise_reads_what_people_write(written, region, e164):
    assert normalise(written, region) == e164


@pytest.mark.parametrize("written, words", [
    ("+48 60a bcd efg", "letters are never read as keypad digits"),
    ("", "expected a phone number"),
    (None, "expected a phone number"),
    ("1" * 41, "longer than 40 characters"),
    ("600000123", "give region"),
])
def test_normalise_says_what_is_wrong(written, words):
    with pytest.raises(NumberError, match=words):
        normalise(written)


def test_valid_checks_the_plan_and_possible_only_the_length():
    # +48 100 000 000 has a Polish number's length but no operator's range.
    assert normalise("+48100000000", valid=False) == "+48100000000"
    with pytest.raises(NumberError, match="not a valid number for PL"):
        normalise("+48100000000", valid=True)
    with pytest.raises(NumberError, match="wrong length"):
        normalise("+4860000", valid=False)


def test_mask_keeps_the_last_three_digits_of_every_number():
    assert mask("+48600000123") == "+********123"
    assert mask("ATD+48600000123; then +CLIP: \"0600111222\"") == 'ATD+********123; then +CLIP: "*******222"'
    assert mask("*100# index 12 length 14") == "*100# index 12 length 14"


@given(st.text(alphabet="0123456789+ -", max_size=60))
def test_mask_leaves_no_number_readable(text):
    masked = mask(text)
    assert len(masked) == len(text)
    assert not re.search(r"\d{6,}", masked), masked
    for run in re.finditer(r"\d{6,}", text):  # each number keeps exactly its last 3 digits
        assert masked[run.start():run.end()] == "*" * (len(run.group()) - 3) + run.group()[-3:]


def test_iso_round_trips_and_is_utc():
    now = time.time()
    assert abs(parse_iso(iso(now)) - now) < 0.001
    assert iso(0.0) == "1970-01-01T00:00:00.000Z"
    assert iso(1.9996) == "1970-01-01T00:00:01.999Z"  # milliseconds truncate
    assert iso(1.9999996) == "1970-01-01T00:00:02.000Z"  # after microseconds round, as datetime does
    assert iso(86400.5, ms=False) == "1970-01-02T00:00:00Z"


@given(st.floats(min_value=0, max_value=4e9, allow_nan=False) | st.integers(0, 4_000_000_000).map(lambda s: s + 0.9999996))
def test_iso_matches_datetime(ts):
    # The per-second cache never changes what datetime itself would write.
    want = datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    assert iso(ts) == want
    assert iso(ts, ms=False) == want[:19] + "Z"


def test_parse_iso_refuses_a_time_without_a_zone():
    assert parse_iso("1970-01-01T01:00:00+01:00") == 0.0
    with pytest.raises(ValueError, match="no time zone"):
        parse_iso("2026-11-23T09:00:00")
    with pytest.raises(ValueError, match="not an ISO 8601 time"):
        parse_iso("yesterday")


def test_write_json_atomic_replaces_whole_and_keeps_the_old_file_on_failure(tmp_path) -> None:
    import json
    import stat

    from common.files import write_json_atomic

    target = tmp_path / "d" / "state.json"
    write_json_atomic(target, {"b": 1, "a": "ż"}, private=True, sort_keys=True)
    assert json.loads(target.read_text(encoding="utf-8")) == {"a": "ż", "b": 1}
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    with pytest.raises(TypeError):
        write_json_atomic(target, {"x": object()})  # not JSON: the old file stays, no temporary is left
    assert json.loads(target.read_text(encoding="utf-8")) == {"a": "ż", "b": 1}
    assert [p.name for p in target.parent.iterdir()] == ["state.json"]


def test_operator_label_names_the_network_then_the_numbers_operator_then_the_code():
    from common.phone import carrier_of
    from modem_drivers.types import PinState, SimInfo

    assert carrier_of("+48790123456") == "Play" and carrier_of("+48600123456") == "T-Mobile"  # libphonenumber's table
    assert carrier_of(None) is None and carrier_of("not a number") is None and carrier_of("+447700900123") is None
    assert SimInfo(PinState.READY, mcc_mnc="26006", operator_name="Plus", msisdn="+48790123456").operator_label == "Plus"
    assert SimInfo(PinState.READY, mcc_mnc="26006", msisdn="+48790123456").operator_label == "Play"  # an inactive slot's SIM
    assert SimInfo(PinState.READY, mcc_mnc="26006").operator_label == "26006"  # no number read: the code
