"""Amounts and dates as words a caller hears, in Polish and English.

The numerals, currency names with their plural forms (Polish: 1 złoty, 2–4 złote,
5+ złotych; grosz/grosze/groszy) and ordinals come from num2words; month names come
from babel's CLDR data, whose Polish *format* month is already the genitive ("marca").
What the libraries do not give is filled here and only here:

* num2words always reads both units ("…, zero groszy"): a whole amount drops the minor
  one, an amount under one unit the major one;
* num2words' Polish ordinals are nominative ("piętnasty"); a day of the month is said
  in the genitive ("piętnastego marca"), which for these adjectival ordinals is the
  regular ending -y → -ego, -i → -iego on every word ("dwudziestego pierwszego").
"""
from __future__ import annotations

import datetime as dt
from decimal import Decimal, InvalidOperation
from typing import Final

from babel.dates import format_date
from num2words import num2words

#: Languages a dialogue may be written in (espeak-ng voices "pl" and "en" exist for both).
LANGUAGES: Final = ("pl", "en")
#: The word between the major and the minor unit ("sto złotych i pięć groszy").
_AND: Final = {"pl": "i", "en": "and"}
#: A separator num2words never writes, to split its currency phrase into its two units.
_CUT: Final = "\x1f"


class SpokenError(ValueError):
    """An amount, currency or language we cannot say, with the reason in words."""


def _lang(lang: str) -> str:
    if lang not in LANGUAGES:
        raise SpokenError(f"language {lang!r}: expected one of {', '.join(LANGUAGES)}")
    return lang


def say_amount(amount: Decimal | int | str, currency: str, lang: str) -> str:
    """``123.45 PLN`` → "sto dwadzieścia trzy złote i czterdzieści pięć groszy"."""
    _lang(lang)
    try:
        value = Decimal(str(amount)).quantize(Decimal("0.01"))
    except InvalidOperation:
        raise SpokenError(f"amount {amount!r}: expected a number like 123.45") from None
    if value < 0:
        raise SpokenError(f"amount {amount}: expected zero or more")
    try:
        words = num2words(value, lang=lang, to="currency", currency=currency.upper(), separator=_CUT)
    except NotImplementedError:
        raise SpokenError(f"currency {currency!r}: num2words cannot say it in {lang!r}") from None
    major, minor = (part.strip() for part in words.split(_CUT, 1))
    if value == value.to_integral_value():
        return major
    if value < 1:
        return minor  # "pięćdziesiąt groszy", not "zero złotych i …"
    return f"{major} {_AND[lang]} {minor}"


def _genitive_pl(ordinal: str) -> str:
    # Polish adjectival declension, masculine genitive singular: -y → -ego, -i → -iego.
    def one(word: str) -> str:
        if word.endswith("y"):
            return word[:-1] + "ego"
        if word.endswith("i"):
            return word + "ego"
        raise SpokenError(f"cannot decline the ordinal {ordinal!r}")
    return " ".join(one(w) for w in ordinal.split())


def say_date(day: dt.date, lang: str) -> str:
    """15 March → "piętnastego marca" / "the fifteenth of March" (no year: payment dates
    are within weeks of the call)."""
    ordinal = num2words(day.day, lang=_lang(lang), to="ordinal")
    if lang == "pl":
        # babel's pattern 'MMMM' is the format (genitive) month in Polish: "marca"
        return f"{_genitive_pl(ordinal)} {format_date(day, 'MMMM', locale='pl')}"
    return f"the {ordinal} of {format_date(day, 'MMMM', locale='en')}"
