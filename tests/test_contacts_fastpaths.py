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
    """A request whose ids are all distinct non-empty texts is told in C; any other goes
    one by one: both give the same report for every mix of texts, blanks, numbers, nulls."""
    items = [(line, ct.ContactIn(external_id=v)) for line, v in enumerate(ids, 2)]
    assert ct.duplicates(items) == ct._duplicates_one_by_one(items)
