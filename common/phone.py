"""Phone numbers: the one normaliser (written number -> E.164) and the one masker.

* ``normalise`` reads what a person or a CRM wrote (``+48 600-000-123``, ``(0)600 000 123``
  with a region) and returns E.164, or raises ``NumberError`` with a sentence that says what
  is wrong. Letters are refused before phonenumbers sees them: it would read
  ``+48 60a bcd efg`` as keypad digits and dial ``+48602223334``.
* ``carrier_of`` names the operator a number was allocated to (libphonenumber's carrier
  table, which Google keeps up to date).
* ``mask`` keeps the last 3 digits of every number in a text (docs/architecture.md,
  Conventions: logs, events and refusal details never show a whole number). Short codes
  such as ``*100#`` and index or length fields stay readable.
"""
from __future__ import annotations

import re
from typing import Any, Final

import phonenumbers
from phonenumbers import carrier

__all__ = ["MAX_NUMBER_TEXT", "NumberError", "carrier_of", "mask", "normalise", "shown"]

#: Longest written number accepted: E.164 has at most 15 digits; the rest is room for
#: a leading +, spaces, dots, dashes and parentheses as spreadsheets write them.
MAX_NUMBER_TEXT: Final = 40

_NUMBER_TEXT = re.compile(r"\+?[0-9 \u00a0.\-()]+")

#: 6+ digits is a number to mask: the shortest national numbers have 6 (E.164 allows 15).
_DIGIT_RUN = re.compile(r"\d{6,}")


class NumberError(ValueError):
    """A written number that cannot be dialled; ``str()`` says why, in words."""


def shown(value: Any, limit: int = 40) -> str:
    """A value quoted for an error message, cut short: a 1 MB cell must not come back whole."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + f"… ({len(str(value)):,} characters)"


def normalise(value: Any, region: str | None = None, *, valid: bool = True) -> str:
    """A written number -> E.164. ``valid`` asks phonenumbers whether the number is
    assigned in its country's plan (the controller's check of a CRM's list); without it,
    only whether its length is possible (the appliance's check of a job the controller has
    already checked, so a new number range is never refused at the edge)."""
    if not isinstance(value, str) or not value.strip():
        raise NumberError("expected a phone number in E.164 form, e.g. +48600000123")
    text = value.strip()
    if len(text) > MAX_NUMBER_TEXT:
        raise NumberError(f"{shown(value)} is longer than {MAX_NUMBER_TEXT} characters; a number has at most 15 digits")
    if not _NUMBER_TEXT.fullmatch(text) or not any(ch.isdigit() for ch in text):
        raise NumberError(f"{shown(value)} is not a phone number: only digits, a leading +, spaces, dots, dashes "
                          "and parentheses (letters are never read as keypad digits)")
    try:
        num = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        raise NumberError(f"{shown(value)} is not a phone number; use E.164 (+48600000123) or give region") from None
    country = phonenumbers.region_code_for_number(num) or region or "any region"
    if valid and not phonenumbers.is_valid_number(num):
        raise NumberError(f"{shown(value)} is not a valid number for {country}")
    if not valid and not phonenumbers.is_possible_number(num):
        raise NumberError(f"{shown(value)} has the wrong length for {country}")
    return phonenumbers.format_number(num, phonenumbers.PhoneNumberFormat.E164)


def _star(match: re.Match[str]) -> str:
    digits = match.group()
    return "*" * (len(digits) - 3) + digits[-3:]


def mask(text: object) -> str:
    """``str(text)`` with every run of 6+ digits masked but its last 3."""
    return _DIGIT_RUN.sub(_star, str(text))


def carrier_of(number: str | None) -> str | None:
    """The operator ``number`` (E.164) was allocated to, by name, or None when the table
    has none. A ported number keeps its first operator's name: for a SIM, the network's
    own name (+COPS) is the better answer when the modem has it."""
    if not number:
        return None
    try:
        return carrier.name_for_number(phonenumbers.parse(number), "en") or None
    except phonenumbers.NumberParseException:
        return None
