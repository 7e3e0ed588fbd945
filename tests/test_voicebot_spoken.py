"""Amounts and dates in words, checked against examples written out by hand (Polish plural
forms and the genitive day of the month included)."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from appliance.voicebot.spoken import SpokenError, say_amount, say_date

PL_AMOUNTS = [
    ("1", "jeden złoty"),
    ("2", "dwa złote"),
    ("4", "cztery złote"),
    ("5", "pięć złotych"),
    ("12", "dwanaście złotych"),
    ("22", "dwadzieścia dwa złote"),
    ("25", "dwadzieścia pięć złotych"),
    ("101", "sto jeden złotych"),
    ("123.45", "sto dwadzieścia trzy złote i czterdzieści pięć groszy"),
    ("1000.01", "tysiąc złotych i jeden grosz"),
    ("2.02", "dwa złote i dwa grosze"),
    ("5.05", "pięć złotych i pięć groszy"),
    ("0.50", "pięćdziesiąt groszy"),
    ("2000", "dwa tysiące złotych"),
]
EN_AMOUNTS = [
    ("1", "PLN", "one zloty"),
    ("2", "PLN", "two zlotys"),
    ("5", "PLN", "five zlotys"),
    ("12", "PLN", "twelve zlotys"),
    ("22", "PLN", "twenty-two zlotys"),
    ("101", "PLN", "one hundred and one zlotys"),
    ("123.45", "PLN", "one hundred and twenty-three zlotys and forty-five groszy"),
    ("1000.01", "PLN", "one thousand zlotys and one grosz"),
    ("1", "EUR", "one euro"),
    ("12.50", "EUR", "twelve euro and fifty cents"),
    ("22.01", "GBP", "twenty-two pounds sterling and one penny"),
]
PL_DATES = [
    (dt.date(2026, 1, 1), "pierwszego stycznia"),
    (dt.date(2026, 2, 2), "drugiego lutego"),
    (dt.date(2026, 3, 3), "trzeciego marca"),
    (dt.date(2026, 3, 15), "piętnastego marca"),
    (dt.date(2026, 4, 21), "dwudziestego pierwszego kwietnia"),
    (dt.date(2026, 5, 22), "dwudziestego drugiego maja"),
    (dt.date(2026, 6, 30), "trzydziestego czerwca"),
    (dt.date(2026, 7, 4), "czwartego lipca"),
    (dt.date(2026, 8, 7), "siódmego sierpnia"),
    (dt.date(2026, 9, 11), "jedenastego września"),
    (dt.date(2026, 10, 12), "dwunastego października"),
    (dt.date(2026, 11, 28), "dwudziestego ósmego listopada"),
    (dt.date(2026, 12, 31), "trzydziestego pierwszego grudnia"),
]
EN_DATES = [
    (dt.date(2026, 1, 1), "the first of January"),
    (dt.date(2026, 2, 2), "the second of February"),
    (dt.date(2026, 3, 15), "the fifteenth of March"),
    (dt.date(2026, 4, 21), "the twenty-first of April"),
    (dt.date(2026, 11, 22), "the twenty-second of November"),
    (dt.date(2026, 12, 31), "the thirty-first of December"),
]


@pytest.mark.parametrize(("amount", "words"), PL_AMOUNTS)
def test_polish_amounts(amount: str, words: str) -> None:
    assert say_amount(Decimal(amount), "PLN", "pl") == words


@pytest.mark.parametrize(("amount", "currency", "words"), EN_AMOUNTS)
def test_english_amounts(amount: str, currency: str, words: str) -> None:
    assert say_amount(amount, currency, "en") == words


def test_polish_euro_takes_its_own_forms() -> None:
    assert say_amount("5.02", "EUR", "pl") == "pięć euro i dwa centy"


@pytest.mark.parametrize(("day", "words"), PL_DATES)
def test_polish_dates_are_genitive(day: dt.date, words: str) -> None:
    assert say_date(day, "pl") == words


@pytest.mark.parametrize(("day", "words"), EN_DATES)
def test_english_dates(day: dt.date, words: str) -> None:
    assert say_date(day, "en") == words


@pytest.mark.parametrize(("call", "message"), [
    (lambda: say_amount("12", "PLN", "de"), "language 'de'"),
    (lambda: say_amount("abc", "PLN", "pl"), "expected a number"),
    (lambda: say_amount("-1", "PLN", "pl"), "zero or more"),
    (lambda: say_amount("1", "XYZ", "pl"), "currency 'XYZ'"),
    (lambda: say_date(dt.date(2026, 1, 1), "fr"), "language 'fr'"),
])
def test_what_cannot_be_said_is_refused_in_words(call, message: str) -> None:
    with pytest.raises(SpokenError, match=message):
        call()
