"""Contact import: JSON or CSV rows in, good rows and bad-row reports out.

A bad row never sinks the batch: it is reported with its line number (CSV: the file's
line, header = line 1; JSON: the 1-based position in the list), the field and the reason,
and the good rows are imported. Numbers are normalised to E.164 with phonenumbers; a
national number needs the row's ``region`` (or the import's default region).

Row fields (CSV headers are the same names; ``phones`` in CSV is ``;``-separated)::

    external_id  required, the CRM's key: re-import updates the contact, never duplicates
    phones       required, one or more numbers (``phone`` is accepted for a single one)
    name, case_ref, amount (decimal), currency (ISO 4217), due_date (YYYY-MM-DD),
    time_zone (IANA, optional), language (BCP 47 primary tag, e.g. "pl"), region (ISO 3166)
"""
from __future__ import annotations

import csv
import dataclasses
import io
import re
from collections.abc import Iterable, Iterator
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

import phonenumbers

#: One import request may carry this many rows (issue 5: 100,000 in one request).
MAX_ROWS: Final = 100_000
#: Phone numbers per contact; a debtor file rarely has more than a handful.
MAX_PHONES: Final = 5
#: Bounds that keep one row small in the store.
MAX_TEXT: Final = 200
FIELDS: Final = ("external_id", "phones", "phone", "name", "case_ref", "amount", "currency", "due_date",
                 "time_zone", "language", "region")
_CURRENCY = re.compile(r"[A-Z]{3}")
_LANGUAGE = re.compile(r"[a-z]{2,3}(-[A-Za-z0-9]{2,8})*")
_ZONES: Final = frozenset(available_timezones())


class RowError(ValueError):
    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


@dataclasses.dataclass(frozen=True, slots=True)
class ContactRow:
    """One valid contact, ready for the store."""

    external_id: str
    phones: tuple[str, ...]
    name: str | None = None
    case_ref: str | None = None
    amount: str | None = None  # a decimal as text: money is never a float
    currency: str | None = None
    due_date: str | None = None
    time_zone: str | None = None
    language: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class BadRow:
    line: int
    field: str
    reason: str
    external_id: str | None = None


def _text(raw: dict[str, Any], key: str) -> str | None:
    v = raw.get(key)
    if v is None or v == "":
        return None
    if not isinstance(v, (str, int)) or isinstance(v, bool):
        raise RowError(key, "expected a string")
    v = str(v).strip()
    if len(v) > MAX_TEXT:
        raise RowError(key, f"longer than {MAX_TEXT} characters")
    return v or None


def _phone(value: Any, region: str | None) -> str:
    if not isinstance(value, str) or not value.strip():
        raise RowError("phones", "expected a phone number, e.g. +48600000123")
    try:
        num = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException:
        raise RowError("phones", f"{value!r} is not a phone number; use E.164 (+48600000123) or give region") from None
    if not phonenumbers.is_valid_number(num):
        raise RowError("phones", f"{value!r} is not a valid number for {phonenumbers.region_code_for_number(num) or region or 'any region'}")
    return phonenumbers.format_number(num, phonenumbers.PhoneNumberFormat.E164)


def validate_row(raw: Any, default_region: str | None = None) -> ContactRow:
    if not isinstance(raw, dict):
        raise RowError("row", "expected an object")
    unknown = sorted(k for k in raw if k not in FIELDS)
    if unknown:
        raise RowError(str(unknown[0]), "unknown field (a typo?)")
    ext = _text(raw, "external_id")
    if ext is None:
        raise RowError("external_id", "required: the CRM's key of this contact")
    region = _text(raw, "region") or default_region
    if region is not None and (len(region) != 2 or not region.isalpha()):
        raise RowError("region", "expected an ISO 3166 two-letter code, e.g. PL")
    phones_raw = raw.get("phones", raw.get("phone"))
    if isinstance(phones_raw, str):
        phones_raw = [p for p in phones_raw.split(";") if p.strip()]
    if not isinstance(phones_raw, list) or not phones_raw:
        raise RowError("phones", "at least one phone number is required")
    if len(phones_raw) > MAX_PHONES:
        raise RowError("phones", f"at most {MAX_PHONES} numbers per contact")
    phones = tuple(dict.fromkeys(_phone(p, region.upper() if region else None) for p in phones_raw))
    amount = raw.get("amount")
    if amount is not None and amount != "":
        if isinstance(amount, bool) or not isinstance(amount, (str, int, float)):
            raise RowError("amount", "expected a decimal number, e.g. 1234.50")
        try:
            dec = Decimal(str(amount).strip().replace(",", "."))
        except InvalidOperation:
            raise RowError("amount", f"{amount!r} is not a decimal number, e.g. 1234.50") from None
        if not dec.is_finite() or dec < 0:
            raise RowError("amount", "must be a non-negative number")
        amount = str(dec.quantize(Decimal("0.01")))
    else:
        amount = None
    currency = _text(raw, "currency")
    if currency is not None and not _CURRENCY.fullmatch(currency):
        raise RowError("currency", "expected an ISO 4217 code, e.g. PLN")
    due = _text(raw, "due_date")
    if due is not None:
        try:
            due = date.fromisoformat(due).isoformat()
        except ValueError:
            raise RowError("due_date", f"{due!r} is not a date; use YYYY-MM-DD") from None
    tz = _text(raw, "time_zone")
    if tz is not None and tz not in _ZONES:
        raise RowError("time_zone", f"{tz!r} is not an IANA time zone, e.g. Europe/Warsaw")
    lang = _text(raw, "language")
    if lang is not None and not _LANGUAGE.fullmatch(lang):
        raise RowError("language", "expected a language tag, e.g. pl or en-GB")
    return ContactRow(ext, phones, _text(raw, "name"), _text(raw, "case_ref"), amount, currency, due, tz, lang)


def validate_rows(rows: Iterable[tuple[int, Any]], default_region: str | None = None) -> tuple[list[ContactRow], list[BadRow]]:
    """(line, raw row) pairs -> good rows (last one wins for a repeated external_id) and bad rows."""
    good: dict[str, ContactRow] = {}
    bad: list[BadRow] = []
    for line, raw in rows:
        try:
            row = validate_row(raw, default_region)
        except RowError as exc:
            ext = raw.get("external_id") if isinstance(raw, dict) else None
            bad.append(BadRow(line, exc.field, exc.reason, str(ext) if ext is not None else None))
            continue
        good.pop(row.external_id, None)
        good[row.external_id] = row
    return list(good.values()), bad


def parse_json(body: Any) -> Iterator[tuple[int, Any]]:
    """``[{...}, ...]`` or ``{"contacts": [...]}`` -> (1-based position, row)."""
    if isinstance(body, dict) and "contacts" in body:
        body = body["contacts"]
    if not isinstance(body, list):
        raise RowError("body", 'expected a list of contacts or {"contacts": [...]}')
    if len(body) > MAX_ROWS:
        raise RowError("body", f"{len(body)} rows in one request; at most {MAX_ROWS}")
    return enumerate(body, 1)


def parse_csv(text: str) -> Iterator[tuple[int, Any]]:
    """CSV with a header row -> (file line number, row). Empty cells are absent fields."""
    reader = csv.DictReader(io.StringIO(text))
    if reader.fieldnames is None:
        raise RowError("body", "empty CSV: the first line must name the columns")
    unknown = [f for f in reader.fieldnames if f not in FIELDS]
    if unknown:
        raise RowError(unknown[0], f"unknown column; known columns: {', '.join(FIELDS)}")
    count = 0
    for row in reader:
        count += 1
        if count > MAX_ROWS:
            raise RowError("body", f"more than {MAX_ROWS} rows in one request")
        yield reader.line_num, {k: v for k, v in row.items() if v not in (None, "") and k is not None}
