"""Timestamps in results: the fast formatter says exactly what datetime would."""
from __future__ import annotations

from datetime import datetime, timezone

from hypothesis import given
from hypothesis import strategies as st

from appliance.jobs import iso


@given(st.floats(min_value=0, max_value=4e9, allow_nan=False) | st.integers(0, 4_000_000_000).map(lambda s: s + 0.9999996))
def test_iso_matches_datetime(ts: float) -> None:
    assert iso(ts) == datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="milliseconds")


def test_iso_none() -> None:
    assert iso(None) is None
