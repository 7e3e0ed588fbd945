"""controller.contacts' short cuts for the usual cell (a plain ``str``: ``_text``'s and
``_amount``'s first branch) give what the general steps give: the same value or the same
error. A ``str`` subclass takes the general steps, so each cell is read both ways."""
from __future__ import annotations

from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st

from controller import contacts as ct


class Other(str):
    """A str the short cuts do not take (they test ``type(v) is str``)."""


def outcome(f: Any, *args: Any) -> tuple[str, Any]:
    try:
        return ("ok", f(*args))
    except ct.RowError as exc:
        return ("error", (exc.field, exc.reason))


AMOUNTS = st.one_of(st.from_regex(r"[0-9]{0,18}\.[0-9]{0,3}", fullmatch=True),
                    st.from_regex(r" ?-?[0-9]{1,3}[.,][0-9]{1,3} ?", fullmatch=True),
                    st.decimals(min_value=0, max_value=10**17, places=2).map(str),
                    st.text("0123456789.,-+eE ", max_size=22))


@settings(max_examples=3000, deadline=None)
@given(AMOUNTS)
@example("0.00")
@example("00.50")
@example("9999999999999999.99")
@example("10000000000000000.00")
@example("1.5")
@example("1.500")
@example("١٢.٥٠")  # Arabic-Indic digits: Decimal reads them, the short cut must not take them
def test_amount_short_cut_agrees(text: str) -> None:
    assert outcome(ct._amount, text) == outcome(ct._amount, Other(text))


@settings(max_examples=2000, deadline=None)
@given(st.one_of(st.text(max_size=220), st.text(" \t\n\x00\x7fab", max_size=5), st.text(min_size=199, max_size=203)))
@example(" ")
@example("")
@example("x" * 201)
@example(" " + "x" * 200 + " ")
def test_text_short_cut_agrees(text: str) -> None:
    assert outcome(ct._text, {"name": text}, "name") == outcome(ct._text, {"name": Other(text)}, "name")


@settings(max_examples=1000, deadline=None)
@given(st.lists(st.one_of(st.sampled_from(["a", "b", " a", "a ", "", " ", "c"]), st.integers(-3, 3), st.none(),
                          st.booleans()), max_size=12))
@example(["a", "b", "c"])
@example(["a", " a"])
@example(["a", ""])
def test_duplicates_short_cut_agrees(ids: list[Any]) -> None:
    """A request whose keys are all there and distinct is told in C; any other goes one by
    one: both give the same report for every mix of texts, blanks, numbers, nulls."""
    keys = [(line, ct.external_key(v)) for line, v in enumerate(ids, 2)]
    assert ct.duplicates(keys) == ct._duplicates_one_by_one(keys)
    # the key: text stripped, an integer as text; blanks, nulls and true/false have none
    assert [ct.external_key(v) for v in (" a ", 7, "", " ", None, True)] == ["a", "7", None, None, None, None]


# -- plain rows: the JSON decoder's checks (``_check_plain``) against the ordinary ones ---------
TEXTS = st.one_of(st.sampled_from(["", " ", "Jan", " Jan", "Jan ", "Jan\u00a0", "a\tb", "a\\b", "=SUM(A1)", "+1", "-x",
                                   "@x", "x" * 200, "x" * 201, "\u2028x", "x\u2028y", "a\x1cb", "Ł\u0085", "\\N"]),
                  st.text(max_size=8))
NUMBERS = st.one_of(st.sampled_from(["+48600000000", "+48500123456", "+48 600 000 000", "+4860000000", "+48100000000",
                                     "+12025550123", "+442071838750", "+79123456789", "+0486", "600000000", "+48abc",
                                     "+4860000000012345678901", "+", "", " +48600000000"]),
                    st.from_regex(r"\+[1-9][0-9]{6,14}", fullmatch=True))
PLAIN_FIELDS = {
    "external_id": st.one_of(TEXTS, st.integers(-5, 5)),
    "phones": st.one_of(st.lists(NUMBERS, max_size=6), NUMBERS, st.none()),
    "phone": st.one_of(NUMBERS, st.none()),
    "name": TEXTS, "case_ref": TEXTS,
    "amount": st.one_of(st.sampled_from(["", "12.50", "0.00", "012.50", "1.5", "-1.00", "1e3", " 1.00"]), st.integers(0, 9),
                        st.floats(0, 10, allow_nan=False)),
    "currency": st.sampled_from(["", "PLN", "pln", "PL", " EUR", "EURO"]),
    "due_date": st.sampled_from(["", "2026-03-01", "2026-02-30", "20260301", "2026-3-1", "2026-W10-1", " 2026-03-01"]),
    "time_zone": st.sampled_from(["", "Europe/Warsaw", "europe/warsaw", "Mars/Base", " UTC", "UTC"]),
    "language": st.sampled_from(["", "pl", "en-GB", "PL", "pl-", "pl-Latn-PL", "p"]),
    "region": st.sampled_from(["", "PL", "pl", "P", "ŁÓ", " PL", "USA"]),
}


VALID: dict[str, Any] = {"external_id": "k1", "phones": ["+48600000000"], "name": "Jan", "case_ref": "K/1", "amount": "12.50",
                         "currency": "PLN", "due_date": "2026-03-01", "time_zone": "Europe/Warsaw", "language": "pl",
                         "region": "PL"}


@st.composite
def json_rows(draw: Any) -> dict[str, Any]:
    """A valid row with some fields left out and up to three drawn from PLAIN_FIELDS (the
    odd values): most rows are one or two values away from valid, where a check can slip."""
    row = {k: v for k, v in VALID.items() if k in ("external_id", "phones") or draw(st.booleans())}
    for k in draw(st.lists(st.sampled_from(sorted(PLAIN_FIELDS)), max_size=3)):
        row[k] = draw(PLAIN_FIELDS[k])
    if draw(st.integers(0, 5)) == 0:
        row.pop("phones", None)
    return row


def both_ways(rows: list[dict[str, Any]], region: str | None) -> tuple[Any, Any]:
    """(the plain way's answer or None, the ordinary way's) for one JSON slice of ``rows``:
    good rows, bad rows, warnings and keys."""
    import msgspec

    data = msgspec.json.encode(rows)
    try:
        parsed = msgspec.json.decode(data, type=list[ct.ContactIn])
    except msgspec.ValidationError:
        return None, None  # a row not of a contact's shape: contacts_json reports it, before any check
    ordinary = ct.validate_rows(list(enumerate(parsed, 7)), region)
    return ct.check_plain(7, data, region), (*ordinary, [(line, ct.external_key(r.external_id)) for line, r in
                                                        enumerate(parsed, 7)])


@settings(max_examples=3000, deadline=None)
@given(st.lists(json_rows(), min_size=1, max_size=4), st.sampled_from([None, "PL", "US", "pl", "XX1"]))
@example([{"external_id": "a", "phones": ["+48600000000"], "name": "Jan", "amount": "12.50", "currency": "PLN",
           "due_date": "2026-03-01", "time_zone": "Europe/Warsaw", "language": "pl", "region": "PL"}], None)
@example([{"external_id": "a", "phones": ["+48600000000", "+48600000000"]}], None)
@example([{"external_id": "=a", "phone": "+48600000000", "name": "@b", "case_ref": "-c"}], None)
@example([{"external_id": "a", "phones": ["+48100000000"]}], "PL")
@example([{"external_id": "a", "phones": ["+48600000000"], "due_date": "2026-02-30"}], None)
@example([{"external_id": "a", "phones": ["+48600000000"], "time_zone": "Mars/Base"}], None)
@example([{"external_id": "a", "phones": ["+48600000000"], "phone": "+48600000001"}], None)
def test_plain_rows_are_checked_as_the_ordinary_way_checks_them(rows: list[dict[str, Any]], region: str | None) -> None:
    plain, ordinary = both_ways(rows, region)
    if plain is not None:  # the plain way answered: the same rows, errors and warnings, in the same order
        assert plain == ordinary


def test_the_plain_way_takes_the_usual_rows_and_leaves_the_rest() -> None:
    """The test above is not empty: usual rows take the plain way (an odd number or a
    spaced one among them included, each checked alone the ordinary way); a row the plain
    shape cannot hold (an integer key) sends its slice the ordinary way."""
    usual = [{"external_id": f"e{i}", "phones": [f"+4860000000{i}"], "name": f"Dłużnik {i}", "amount": "12.50",
              "currency": "PLN", "due_date": "2026-03-01", "language": "pl"} for i in range(5)]
    plain, ordinary = both_ways(usual, None)
    assert plain is not None and plain == ordinary and len(plain[0]) == 5
    odd = [*usual, {"external_id": "x", "phones": ["+48100000000"]}]  # "+digits", not in Poland's plan
    plain, ordinary = both_ways(odd, None)
    assert plain is not None and plain == ordinary
    assert [(b.line, b.field) for b in plain[1]] == [(12, "phones")]
    spaced = [*usual, {"external_id": "y", "phones": ["+48 600 000 009"]}]
    plain, ordinary = both_ways(spaced, None)
    assert plain is not None and plain == ordinary and plain[0][-1].phones == ("+48600000009",)
    keyed = [*usual, {"external_id": 12, "phones": ["+48600000009"]}]
    plain, ordinary = both_ways(keyed, None)
    assert plain is None and [r.external_id for r in ordinary[0]][-1] == "12"
