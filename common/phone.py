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
from phonenumbers import COUNTRY_CODE_TO_REGION_CODE, PhoneMetadata, carrier
from phonenumbers import phonenumberutil as _pnu

__all__ = ["MAX_NUMBER_TEXT", "NumberError", "carrier_of", "country_code", "e164_if_valid", "mask", "normalise", "shown"]

#: Longest written number accepted: E.164 has at most 15 digits; the rest is room for
#: a leading +, spaces, dots, dashes and parentheses as spreadsheets write them.
MAX_NUMBER_TEXT: Final = 40

_NUMBER_TEXT = re.compile(r"\+?[0-9 \u00a0.\-()]+")

#: E.164 as a CRM sends it: "+", a first digit that can start a country code (none starts
#: with 0), then 2-19 more digits: at least the 3 phonenumbers reads after an IDD, at most a
#: 3-digit code and its 17-digit longest national number (``_MAX_LENGTH_FOR_NSN``).
_E164_TEXT = re.compile(r"\+[1-9][0-9]{2,19}")

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
    # "+digits" (shorter than MAX_NUMBER_TEXT, only allowed characters) that is valid: done
    if valid and (fast := e164_if_valid(text)) is not None:
        return fast
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


# -- the fast path: "+" and digits ----------------------------------------------------------
# phonenumbers.parse spends ~35 µs and is_valid_number ~14 µs on a number, most of it on
# forms a "+digits" text cannot have (punctuation, letters, extensions, RFC 3966, an IDD,
# a default region's own prefix) and on compiling its patterns anew. For that one form,
# ``_fast_e164`` takes parse's own steps (its country code table, its national-prefix rule,
# its length bounds) and is_valid_number's (the region from the code, every number type's
# possible lengths and pattern) with the patterns compiled once: ~3 µs. It only ever says
# "valid, and this is its E.164"; anything else (an unknown code, a wrong length, an invalid
# number) goes to the slow path, which gives the verdict and the words
# (tests/test_phone_fast.py checks that both agree on random and edge numbers).


class _Plan:
    """One region's number plan (a phonenumbers ``PhoneMetadata``) as
    ``_number_type_helper(nsn, md) != UNKNOWN`` reads it: the general description, then any
    number type (mobile only where its pattern differs from fixed line's, as there). A
    description matches when the number's length is one of its possible lengths (or it
    lists none) and its pattern matches the whole number; the patterns that can match at a
    length are gathered once per length."""

    __slots__ = ("md", "_types", "_by_length")

    def __init__(self, md: PhoneMetadata) -> None:
        self.md = md
        types = [md.mobile] if not md.same_mobile_and_fixed_line_pattern else []
        types += [md.fixed_line, md.premium_rate, md.toll_free, md.shared_cost, md.voip, md.personal_number,
                  md.pager, md.uan, md.voicemail]
        self._types = [md.general_desc, *types]
        self._by_length: dict[int, tuple[re.Pattern[str], ...] | None] = {}

    def _at(self, length: int) -> tuple[re.Pattern[str], ...] | None:
        """(general pattern, type patterns…) that can match a number of ``length``; None
        when the general description cannot."""
        fit = [re.compile(d.national_number_pattern) if d is not None and d.national_number_pattern
               and (not d.possible_length or length in d.possible_length) else None for d in self._types]
        if fit[0] is None:
            return None
        return (fit[0], *(f for f in fit[1:] if f is not None))

    def has_type(self, nsn: str) -> bool:
        length = len(nsn)
        if length not in self._by_length:
            self._by_length[length] = self._at(length)
        checks = self._by_length[length]
        if checks is None or checks[0].fullmatch(nsn) is None:
            return False
        for pattern in checks[1:]:
            if pattern.fullmatch(nsn) is not None:
                return True
        return False


_PLANS: dict[int, _Plan] = {}
_LEADING: dict[str, re.Pattern[str]] = {}
_REGION_PLANS: dict[tuple[int, str], tuple[str, _Plan] | None] = {}
#: Per country code: the plan parse reads it by (its main region's), and the region
#: is_valid_number checks against when the code has one region only (else None: ``_region_of``).
_CODES: dict[int, tuple[_Plan, tuple[str, _Plan] | None] | None] = {}


def _plan(md: PhoneMetadata) -> _Plan:
    plan = _PLANS.get(id(md))
    if plan is None or plan.md is not md:
        plan = _PLANS[id(md)] = _Plan(md)
    return plan


def _valid_region_plan(cc: int, region: str | None) -> tuple[str, _Plan] | None:
    """``is_valid_number_for_region``'s first checks: a region with a plan, and (unless
    non-geographic) that region's own code is ``cc``. Kept per (code, region)."""
    if region is None:
        return None
    key = (cc, region)
    if key not in _REGION_PLANS:
        md = PhoneMetadata.metadata_for_region_or_calling_code(cc, region.upper())
        _REGION_PLANS[key] = None if md is None or (region != _pnu.REGION_CODE_FOR_NON_GEO_ENTITY and
                                                    cc != _pnu.country_code_for_valid_region(region)) else (region, _plan(md))
    return _REGION_PLANS[key]


def _code(cc: int) -> tuple[_Plan, tuple[str, _Plan] | None] | None:
    if cc not in _CODES:
        md = PhoneMetadata.metadata_for_region_or_calling_code(cc, phonenumbers.region_code_for_country_code(cc))
        regions = COUNTRY_CODE_TO_REGION_CODE[cc]
        _CODES[cc] = None if md is None else (_plan(md), _valid_region_plan(cc, regions[0]) if len(regions) == 1 else None)
    return _CODES[cc]


def _region_of(cc: int, nsn: str) -> str | None:
    """``region_code_for_number`` of a code with several regions: the first whose leading
    digits start the number or (without them) whose plan has the number."""
    for region in COUNTRY_CODE_TO_REGION_CODE[cc]:
        md = PhoneMetadata.metadata_for_region(region.upper(), None)
        if md is None:
            continue
        if md.leading_digits is not None:
            lead = _LEADING.get(md.leading_digits)
            if lead is None:
                lead = _LEADING[md.leading_digits] = re.compile(md.leading_digits)
            if lead.match(nsn):
                return region
        elif _plan(md).has_type(nsn):
            return region
    return None


#: The country codes as written (their digits, no leading zero): a prefix looked up as text,
#: not parsed to an int first (~0.2 µs a number against ~0.8).
_CODE_TEXT: Final = {str(cc): cc for cc in COUNTRY_CODE_TO_REGION_CODE}


def _split_code(digits: str) -> tuple[int, str] | None:
    """(country code, the rest) of the digits after an E.164 "+": parse's
    ``_extract_country_code``, the first 1-3 digits in its table (codes are prefix-free)."""
    for n in (1, 2, 3):
        if (cc := _CODE_TEXT.get(digits[:n])) is not None:
            return cc, digits[n:]
    return None


def country_code(number: str) -> int | None:
    """The country code of ``number`` when it is written "+" and digits (E.164), else None."""
    if not _E164_TEXT.fullmatch(number):
        return None
    split = _split_code(number[1:])
    return None if split is None else split[0]


def e164_if_valid(text: str) -> str | None:
    """``normalise(text)`` when ``text`` is "+" and digits that phonenumbers calls valid
    (~3 µs); None when it is not that, or not valid, or might not be: ``normalise`` then
    gives the verdict and its words. For a caller that checks many numbers and wants the
    slow path only for the odd one (the import's rows)."""
    return _fast_e164(text[1:]) if _E164_TEXT.fullmatch(text) else None


def _fast_e164(digits: str) -> str | None:
    """The E.164 of "+" ``digits`` when phonenumbers would parse it and call it valid; None
    when it would not, or might not (the slow path then decides and explains)."""
    if (split := _split_code(digits)) is None:
        return None
    cc, nsn = split
    code = _code(cc)
    if code is None or len(nsn) < _pnu._MIN_LENGTH_FOR_NSN:
        return None
    plan, single = code
    # parse keeps the number with its national prefix stripped only when that is still a possible length
    _, stripped, _ = _pnu._maybe_strip_national_prefix_carrier_code(nsn, plan.md)
    if stripped != nsn and _pnu._test_number_length(stripped, plan.md) not in (
            _pnu.ValidationResult.TOO_SHORT, _pnu.ValidationResult.IS_POSSIBLE_LOCAL_ONLY,
            _pnu.ValidationResult.INVALID_LENGTH):
        nsn = stripped
    # an all-zero number formats from its raw input in phonenumbers: the slow path has it
    if not _pnu._MIN_LENGTH_FOR_NSN <= len(nsn) <= _pnu._MAX_LENGTH_FOR_NSN or not nsn.strip("0"):
        return None
    # is_valid_number: the region the number is from, that region's own code, a type in its plan
    valid = single if single is not None else _valid_region_plan(cc, _region_of(cc, nsn))
    return f"+{cc}{nsn}" if valid is not None and valid[1].has_type(nsn) else None


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
