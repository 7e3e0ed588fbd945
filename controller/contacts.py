"""Contact import: JSON or CSV rows in; every row checked, then all of them stored or none.

An import is all-or-nothing (issue 12: a 20,000-row file whose row 17,001 was bad left
15,000 contacts dialling while the CRM was told "internal"). Nothing is committed before
every row is checked (on PostgreSQL the checked slices are sent to the server meanwhile,
in the import's transaction: api.Api._check_and_store); one bad row refuses the whole
request, the transaction rolled back, and the report names each
bad row's line (CSV: the file's line, header = line 1; JSON: the 1-based position in the
list), field and reason. Numbers are normalised to E.164 with phonenumbers; a national
number needs the row's ``region`` (or the import's default region).

Row fields (CSV headers are the same names; ``phones`` in CSV is ``;``-separated)::

    external_id  required, the CRM's key: re-import updates the contact, never duplicates;
                 once per file (a second row with the same key is reported, both lines named)
    phones       required, one or more numbers (``phone`` is accepted for a single one)
    name, case_ref, amount (decimal), currency (ISO 4217), due_date (YYYY-MM-DD),
    time_zone (IANA, optional), language (BCP 47 primary tag, e.g. "pl"), region (ISO 3166)

Bounds, each refused with the line and the field: ``MAX_ROWS`` rows, ``MAX_TEXT``
characters of text, ``MAX_PHONES`` numbers of at most ``MAX_PHONE_TEXT`` characters
(digits, a leading ``+``, spaces, dots, dashes, parentheses — never letters, which
phonenumbers would turn into keypad digits), amounts below 10^16 with at most 2 decimals,
JSON no deeper than a contact's own shape, CSV lines of ``MAX_LINE`` characters and no
quoted field running over a line break (the mark of an unterminated quote).

Cells that a spreadsheet would run as a formula (OWASP "CSV injection": a leading ``=``,
``+``, ``-``, ``@``, tab or CR) are data to us: stored as given, flagged as warnings in
the import report and on the contact (``formula_fields``), and written with a leading
``'`` in every CSV the controller emits (``contacts_csv.csv_cell``).

A body is read into rows by ``contacts_json`` or ``contacts_csv``; this module checks
the rows from either (in worker processes for a big import: ``pack``, ``check_slice``).
"""
from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterable, Sequence
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Final, Union
from zoneinfo import available_timezones

import msgspec
from msgspec import Meta

from common import phone
from common.phone import MAX_NUMBER_TEXT, e164_if_valid, shown

#: One import request may carry this many rows (issue 5: 100,000 in one request).
MAX_ROWS: Final = 100_000
#: Phone numbers per contact; a debtor file rarely has more than a handful.
MAX_PHONES: Final = 5
#: Bounds that keep one row small in the store.
MAX_TEXT: Final = 200
#: One written phone number: E.164's 15 digits (ITU-T E.164 §6) with room for a +,
#: spaces, dots, dashes and parentheses.
MAX_PHONE_TEXT: Final = MAX_NUMBER_TEXT
#: Amounts: ISO 20022 amounts carry at most 18 digits (``ActiveCurrencyAndAmount``:
#: totalDigits 18); we keep 2 after the point, so at most 16 before it. Far beyond any
#: debt, and it keeps ``quantize`` inside Decimal's 28-digit context.
MAX_AMOUNT_DIGITS: Final = 16
CENT: Final = Decimal("0.01")
#: One CSV line: 11 columns of at most 204 characters (5 numbers of 40 and 4 ``;``),
#: fully quoted with every character a doubled quote, take 11 × 411 = 4,521. Far below
#: the csv module's field_size_limit (131,072), whose own error never fires.
MAX_LINE: Final = 8192
#: Errors and warnings listed in one report; the totals count all of them.
MAX_REPORTED: Final = 100
FIELDS: Final = ("external_id", "phones", "phone", "name", "case_ref", "amount", "currency", "due_date",
                 "time_zone", "language", "region")
#: Free-text fields a CRM may fill with anything, hence the ones checked for formulas.
TEXT_FIELDS: Final = ("external_id", "name", "case_ref")
#: CSV column separators read (contacts_csv.detect_delimiter), by the name an import report
#: gives them: a spreadsheet in a locale whose decimal mark is a comma (pl, de, fr) saves
#: "CSV" with semicolons; tab is what "text (tab-separated)" saves.
DELIMITER_NAMES: Final = {",": "comma", ";": "semicolon", "\t": "tab"}
#: OWASP "CSV Injection": a cell starting with one of these runs as a formula.
FORMULA_START: Final = ("=", "+", "-", "@", "\t", "\r")
_CURRENCY = re.compile(r"[A-Z]{3}")
_LANGUAGE = re.compile(r"[a-z]{2,3}(-[A-Za-z0-9]{2,8})*")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
#: An amount as a CRM usually writes it and as ``_amount`` returns it: no sign, no leading
#: zero, at most MAX_AMOUNT_DIGITS before the point, exactly 2 after.
_PLAIN_AMOUNT = re.compile(r"(?:0|[1-9][0-9]{0,%d})\.[0-9]{2}" % (MAX_AMOUNT_DIGITS - 1))
#: What a written phone number may hold (U+00A0 is the space spreadsheets write).
_ZONES: Final = frozenset(available_timezones())
#: FIELDS as a set: a row's keys checked in one step (``issuperset``).
_FIELD_SET: Final = frozenset(FIELDS)


class RowError(ValueError):
    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class BodyError(ValueError):
    """The request as a whole cannot be read (not JSON, too many rows, a bad CSV header):
    an HTTP ``status`` with ``error`` and a detail naming the line (when known) and field."""

    def __init__(self, status: int, error: str, field: str, reason: str, line: int | None = None) -> None:
        super().__init__(f"{field}: {reason}")
        self.status, self.error, self.field, self.reason, self.line = status, error, field, reason, line

    def detail(self) -> dict[str, Any]:
        return {"line": self.line, "field": self.field, "reason": self.reason}


class ContactRow(msgspec.Struct, frozen=True, array_like=True, gc=False):
    """One valid contact, ready for the store. A msgspec struct, not a dataclass: built
    once per imported row and sent back from the worker processes, it costs ~0.2 µs to
    make or decode where a frozen dataclass took ~3 µs (each field set through
    ``object.__setattr__``); ``array_like`` sends it as a msgpack array, no field names."""

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
    """A refused row (or, in ``warnings``, a flagged cell): line, field, reason."""

    line: int
    field: str
    reason: str
    external_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"line": self.line, "field": self.field, "reason": self.reason, "external_id": self.external_id}


@dataclasses.dataclass(slots=True)
class Parsed:
    """Rows read from a request body as (line, raw row: a dict from CSV, its undecoded
    ``msgspec.Raw`` from JSON), and the lines that could not be read."""

    items: list[tuple[int, Any]]
    bad: list[BadRow]
    delimiter: str | None = None  # CSV: the column separator read off the header line


@dataclasses.dataclass(slots=True)
class Checked:
    """What checking one request found. ``rows = valid + rejected + duplicates``."""

    total: int
    rows: list[ContactRow]
    bad: list[BadRow]          # one per refused row: its first bad field
    duplicates: list[BadRow]   # rows repeating an earlier row's external_id
    warnings: list[BadRow]     # formula-like cells, stored as data
    delimiter: str | None = None  # CSV: the detected column separator

    @property
    def refused(self) -> bool:
        return bool(self.bad or self.duplicates)

    def report(self, *, stored: bool, created: int = 0, updated: int = 0) -> dict[str, Any]:
        """The import report (the OpenAPI ``ImportReport``): counts that add up, the first
        ``MAX_REPORTED`` errors and warnings in line order, and their totals."""
        errors = sorted(self.bad + self.duplicates, key=lambda b: b.line)
        return {"stored": stored, "rows": self.total, "created": created, "updated": updated,
                "valid": self.total - len(errors), "rejected": len(self.bad), "duplicates": len(self.duplicates),
                "errors": [e.to_json() for e in errors[:MAX_REPORTED]], "errors_total": len(errors),
                "warnings": [w.to_json() for w in self.warnings[:MAX_REPORTED]], "warnings_total": len(self.warnings),
                **({"delimiter": DELIMITER_NAMES[self.delimiter]} if self.delimiter else {})}


def _text(raw: dict[str, Any], key: str) -> str | None:
    v = raw.get(key)
    if type(v) is str:  # the usual cell, read in the fewest steps (8 a row, 100,000 rows a request)
        v = v.strip()
        if len(v) > MAX_TEXT:
            raise RowError(key, f"{len(v):,} characters; at most {MAX_TEXT}")
        if _CONTROL.search(v):
            raise RowError(key, "holds a control character (a line break, tab or NUL); send plain text")
        return v or None
    if v is None or v == "":
        return None
    if not isinstance(v, (str, int)) or isinstance(v, bool):
        raise RowError(key, "expected a string")
    if isinstance(v, int) and not -10**MAX_TEXT < v < 10**MAX_TEXT:
        raise RowError(key, f"longer than {MAX_TEXT} characters")
    v = str(v).strip()
    if len(v) > MAX_TEXT:
        raise RowError(key, f"{len(v):,} characters; at most {MAX_TEXT}")
    if _CONTROL.search(v):
        raise RowError(key, "holds a control character (a line break, tab or NUL); send plain text")
    return v or None


def _phone(value: Any, region: str | None) -> str:
    """One written number -> E.164, checked against its country's number plan."""
    try:
        return phone.normalise(value, region, valid=True)
    except phone.NumberError as exc:
        raise RowError("phones", str(exc)) from None


def _amount(value: Any) -> str | None:
    """A non-negative decimal with at most 2 places and 16 digits before the point, as
    text ("1234.50"). Refused rather than rounded: an amount is never changed silently."""
    if value is None or value == "":
        return None
    if type(value) is str and _PLAIN_AMOUNT.fullmatch(value):
        return value  # already what the steps below make of it ("1234.50"), without Decimal's cost
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise RowError("amount", "expected a decimal number, e.g. 1234.50")
    if isinstance(value, int) and not -10**MAX_AMOUNT_DIGITS < value < 10**MAX_AMOUNT_DIGITS:
        raise RowError("amount", f"more than {MAX_AMOUNT_DIGITS} digits before the decimal point")
    text = str(value).strip().replace(",", ".")
    if len(text) > MAX_TEXT:
        raise RowError("amount", f"{len(text):,} characters is not an amount, e.g. 1234.50")
    try:
        dec = Decimal(text)
    except InvalidOperation:
        raise RowError("amount", f"{shown(value)} is not a decimal number, e.g. 1234.50") from None
    if not dec.is_finite() or dec < 0:
        raise RowError("amount", "must be a non-negative number")
    if dec == 0:
        return "0.00"
    if dec.adjusted() >= MAX_AMOUNT_DIGITS:
        raise RowError("amount", f"{shown(value)} has more than {MAX_AMOUNT_DIGITS} digits before the decimal point "
                                 "(ISO 20022 amounts: 18 digits in all)")
    cents = dec.quantize(CENT)
    if cents != dec:
        raise RowError("amount", f"{shown(value)} has more than 2 decimal places; round it in the CRM")
    return str(cents)


def validate_row(raw: Any, default_region: str | None = None) -> ContactRow:
    if not isinstance(raw, dict):
        raise RowError("row", "expected an object")
    if not _FIELD_SET.issuperset(raw):  # the usual row is named at once; the first unknown in name order
        unknown = sorted(str(k) for k in raw if k not in FIELDS)
        raise RowError(unknown[0][:MAX_TEXT], "unknown field (a typo?)")
    ext = _text(raw, "external_id")
    if ext is None:
        raise RowError("external_id", "required: the CRM's key of this contact")
    region = _text(raw, "region") or default_region
    if region is not None and (len(region) != 2 or not region.isalpha()):
        raise RowError("region", "expected an ISO 3166 two-letter code, e.g. PL")
    phones_raw = raw.get("phones")
    if phones_raw is None:
        phones_raw = raw.get("phone")
    elif raw.get("phone") not in (None, ""):
        raise RowError("phone", "give phones or phone, not both (one of them would be dropped)")
    if isinstance(phones_raw, str):
        if phones_raw.count(";") >= MAX_PHONES:
            raise RowError("phones", f"at most {MAX_PHONES} numbers per contact")
        phones_raw = [p for p in phones_raw.split(";") if p.strip()]
    if not isinstance(phones_raw, list) or not phones_raw:
        raise RowError("phones", "at least one phone number is required")
    if len(phones_raw) > MAX_PHONES:
        raise RowError("phones", f"at most {MAX_PHONES} numbers per contact")
    region = region.upper() if region else None
    phones = ((_phone(phones_raw[0], region),) if len(phones_raw) == 1
              else tuple(dict.fromkeys(_phone(p, region) for p in phones_raw)))
    amount = _amount(raw.get("amount"))
    currency = _text(raw, "currency")
    if currency is not None and not _CURRENCY.fullmatch(currency):
        raise RowError("currency", "expected an ISO 4217 code, e.g. PLN")
    due = _text(raw, "due_date")
    if due is not None:
        try:
            due = date.fromisoformat(due).isoformat()
        except ValueError:
            raise RowError("due_date", f"{shown(due)} is not a date; use YYYY-MM-DD") from None
    tz = _text(raw, "time_zone")
    if tz is not None and tz not in _ZONES:
        raise RowError("time_zone", f"{shown(tz)} is not an IANA time zone, e.g. Europe/Warsaw")
    lang = _text(raw, "language")
    if lang is not None and not _LANGUAGE.fullmatch(lang):
        raise RowError("language", "expected a language tag, e.g. pl or en-GB")
    return ContactRow(ext, phones, _text(raw, "name"), _text(raw, "case_ref"), amount, currency, due, tz, lang)


def is_formula(value: Any) -> bool:
    """Would a spreadsheet run this cell as a formula (OWASP CSV injection)?"""
    return isinstance(value, str) and value.startswith(FORMULA_START)


def formula_fields(contact: Any) -> list[str]:
    """The free-text fields of a contact (a ContactRow or a stored row) that look like formulas."""
    get = contact.get if isinstance(contact, dict) else (lambda k: getattr(contact, k))
    return [f for f in TEXT_FIELDS if is_formula(get(f))]


def validate_rows(rows: Iterable[tuple[int, Any]], default_region: str | None = None
                  ) -> tuple[list[ContactRow], list[BadRow], list[BadRow]]:
    """(line, raw row: a dict or a ``ContactIn``) pairs -> good rows, bad rows (first bad
    field of each) and warnings (formula-like cells). Pure: it runs in worker processes."""
    good: list[ContactRow] = []
    bad: list[BadRow] = []
    warnings: list[BadRow] = []
    asdict = msgspec.structs.asdict
    for line, raw in rows:
        if isinstance(raw, ContactIn):
            raw = asdict(raw)
        try:
            row = validate_row(raw, default_region)
        except RowError as exc:
            ext = raw.get("external_id") if isinstance(raw, dict) else None
            bad.append(BadRow(line, exc.field, exc.reason, str(ext)[:MAX_TEXT] if ext is not None else None))
            continue
        good.append(row)
        _flag_formulas(line, row, warnings)
    return good, bad, warnings


def _flag_formulas(line: int, row: ContactRow, warnings: list[BadRow]) -> None:
    """A warning per formula-like cell of a valid row (stored as given)."""
    if not (row.external_id.startswith(FORMULA_START) or (row.name or "").startswith(FORMULA_START)
            or (row.case_ref or "").startswith(FORMULA_START)):
        return  # TEXT_FIELDS, read at once: most rows have no formula-like cell
    for f in formula_fields(row):
        warnings.append(BadRow(line, f, f"starts with {getattr(row, f)[0]!r}: a spreadsheet may run it as a formula; "
                                        "stored as given, written with a leading ' in CSV exports", row.external_id))


def external_key(value: Any) -> str | None:
    """What a row's ``external_id`` is compared by to find a repeat: its text (or integer)
    stripped; None when it has none (its row's check says what is wrong)."""
    if type(value) is str:
        return value.strip() or None
    if not isinstance(value, int) or isinstance(value, bool) or abs(value) >= 10**MAX_TEXT:
        return None
    return str(value)


def duplicates(keys: Sequence[tuple[int, str | None]]) -> list[BadRow]:
    """Rows whose key (``external_key``, with its line, in file order) an earlier row of the
    same request already has: each later row is reported with the line of the first (a
    file holds each contact once)."""
    # the usual request: every key there and none twice, told in C (~0.2 µs a row; the loop ~1)
    distinct = {k for _, k in keys}
    if len(distinct) == len(keys) and None not in distinct:
        return []
    return _duplicates_one_by_one(keys)


def _duplicates_one_by_one(keys: Sequence[tuple[int, str | None]]) -> list[BadRow]:
    first: dict[str, int] = {}
    out: list[BadRow] = []
    for line, ext in keys:
        if ext is None:
            continue
        seen = first.setdefault(ext, line)
        if seen != line:
            out.append(BadRow(line, "external_id", f"{shown(ext)} is also on line {seen}: a file holds each contact once",
                              ext[:MAX_TEXT]))
    return out


#: One checked slice: its good rows (as ``encode_rows`` wrote them, or a list), its bad rows,
#: its warnings and each row's (line, ``external_key``) for ``duplicates``.
SliceCheck = tuple[Union[list[ContactRow], bytes], list[BadRow], list[BadRow], list[tuple[int, Union[str, None]]]]


def combine(parsed: Parsed, slices: Sequence[SliceCheck], *, rows: bool = True) -> Checked:
    """Merge the checked slices of one request (``check_slice``, ``contacts_json.check_slice``):
    the repeats found across all of them, a repeated row counted once, as a duplicate.
    ``rows=False`` leaves ``Checked.rows`` empty, for an import whose rows went to the store
    slice by slice (as COPY text, on PostgreSQL)."""
    dups = duplicates([k for *_, keys in slices for k in keys])
    dup_lines = {d.line for d in dups}
    bad = list(parsed.bad) + [b for _, errs, _, _ in slices for b in errs if b.line not in dup_lines]
    good = [r for ok, *_ in slices for r in slice_rows(ok)] if rows else []
    warnings = sorted((w for _, _, ws, _ in slices for w in ws), key=lambda w: w.line)
    return Checked(len(parsed.items) + len(parsed.bad), good, bad, dups, warnings, parsed.delimiter)


def slice_rows(ok: list[ContactRow] | bytes) -> list[ContactRow]:
    """The good rows of one checked slice, as ``validate_rows`` or ``check_slice`` gave them."""
    return _UNPACK_ROWS(ok) if isinstance(ok, bytes) else ok


# -- JSON ---------------------------------------------------------------------------------------
_Scalar = Union[str, int, None]


class ContactIn(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True, gc=False):
    """A row as JSON may carry it. Decoding into this shape bounds the nesting (a value is a
    scalar or a list of strings, never deeper), names the field of a wrong type and stops
    at an unknown field before reading its value."""

    external_id: _Scalar = None
    phones: Union[list[str], str, None] = None
    phone: Union[str, None] = None
    name: _Scalar = None
    case_ref: _Scalar = None
    amount: Union[str, int, float, None] = None
    currency: Union[str, None] = None
    due_date: Union[str, None] = None
    time_zone: Union[str, None] = None
    language: Union[str, None] = None
    region: Union[str, None] = None


def check_count(n: int) -> None:
    """Refuse (413) a body of more than ``MAX_ROWS`` rows."""
    if n > MAX_ROWS:
        raise BodyError(413, "too_large", "body", f"{n:,} rows in one request; at most {MAX_ROWS:,}: split it")


_UNPACK_ROWS = msgspec.msgpack.Decoder(list[ContactRow]).decode


_PACK_ROWS = msgspec.msgpack.Encoder().encode


def pack_rows(rows: list[ContactRow]) -> bytes:
    """Good rows as a worker sends them back by default (``slice_rows`` reads them); a
    function of the module, so that it travels to a worker process by name."""
    return _PACK_ROWS(rows)


def pack(items: Sequence[tuple[int, Any]]) -> Any:
    """A slice of rows for a worker process. JSON rows (``msgspec.Raw``, on consecutive
    lines: ``contacts_json.parse_json``) travel as their first line and one JSON list of
    their own bytes, decoded only there; other slices as they are."""
    if items and isinstance(items[0][1], msgspec.Raw):
        return (items[0][0], b"[" + b",".join([r for _, r in items]) + b"]")
    return items


def check_slice(payload: Sequence[tuple[int, Any]], default_region: str | None = None,
                encode_rows: Callable[[list[ContactRow]], bytes] = pack_rows) -> SliceCheck:
    """``validate_rows`` of a slice of read rows (dicts: a CSV body's), in a worker process.
    The good rows go back as ``encode_rows`` writes them: by default msgpack-encoded
    (``ContactRow`` structs as arrays: the main process decodes them faster than it would
    unpickle them, and that time is on its clock); the store may ask for its own form
    (PostgreSQL: COPY's text, ``store.contacts_copy_text``), which the main process then
    only forwards. With them each row's key for ``duplicates``."""
    good, bad, warnings = validate_rows(payload, default_region)
    return encode_rows(good), bad, warnings, [(line, external_key(raw.get("external_id") if isinstance(raw, dict) else None))
                                              for line, raw in payload]


# -- plain rows: the checks said by the JSON decoder ---------------------------------------------
# Most of an import's rows are plain: text with nothing to strip and no control character,
# "+digits" numbers, a plain amount, codes in their form. For those msgspec's decoder checks
# the types and lengths and one pattern over the joined fields checks the forms, what
# ``validate_row`` says field by field (~11 µs a row against ~7); what is left is what a
# pattern cannot say: a number in its country's plan, a real date, a known time zone. A
# slice whose rows do not all fit ``_PlainRow`` is checked the ordinary way; a row that
# fails what is left is checked the ordinary way alone, for its verdict and words. Either
# way the same rows, errors and warnings come out (tests/test_contacts_fastpaths.py
# compares the two on generated rows). msgspec's own ``Meta(pattern=…)`` per field was
# tried: ~8.6 µs a row of decoding alone.
_TEXT = Annotated[str, Meta(max_length=MAX_TEXT)]


class _PlainRow(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    """A ``ContactIn`` with text where the checks want text, and no longer than they allow."""

    external_id: _TEXT
    phones: Union[Annotated[list[Annotated[str, Meta(max_length=MAX_PHONE_TEXT)]], Meta(min_length=1, max_length=MAX_PHONES)],
                  None] = None
    phone: Union[Annotated[str, Meta(max_length=MAX_PHONE_TEXT)], None] = None
    name: Union[_TEXT, None] = None
    case_ref: Union[_TEXT, None] = None
    amount: Union[_TEXT, None] = None
    currency: Union[_TEXT, None] = None
    due_date: Union[_TEXT, None] = None
    time_zone: Union[_TEXT, None] = None
    language: Union[_TEXT, None] = None
    region: Union[_TEXT, None] = None


_PLAIN_ROWS = msgspec.json.Decoder(list[_PlainRow])
#: Text as ``_text`` leaves it: no control character, nothing to strip at either end
#: (``\s`` is str.isspace, what ``strip`` removes).
_CLEAN: Final = r"[^\s\x00-\x1f\x7f](?:[^\x00-\x1f\x7f]*[^\s\x00-\x1f\x7f])?"
#: A plain row's checked fields joined by U+001F (a control character: in no clean value),
#: each in the form its check leaves it, or empty: external_id, name, case_ref, amount,
#: currency, due_date, language, region. One match, not eight.
_PLAIN_FIELDS: Final = re.compile("\x1f".join((
    _CLEAN, f"(?:{_CLEAN})?", f"(?:{_CLEAN})?", f"(?:{_PLAIN_AMOUNT.pattern})?", "(?:[A-Z]{3})?",
    "(?:[0-9]{4}-[0-9]{2}-[0-9]{2})?", f"(?:{_LANGUAGE.pattern})?", "(?:[A-Za-z]{2})?")))


def check_plain(first: int, data: bytes, default_region: str | None
                ) -> tuple[list[ContactRow], list[BadRow], list[BadRow], list[tuple[int, str | None]]] | None:
    """``validate_rows`` of a JSON list of rows (numbered from ``first``) when every row is
    plain, and each row's key for ``duplicates``; None when one is not (or the default
    region is not a region): the caller checks the rows the ordinary way."""
    if default_region is not None and (len(default_region) != 2 or not default_region.isalpha()):
        return None
    try:
        rows = _PLAIN_ROWS.decode(data)
    except msgspec.ValidationError:
        return None
    good: list[ContactRow] = []
    bad: list[BadRow] = []
    warnings: list[BadRow] = []
    for line, p in enumerate(rows, first):
        row = _plain_row(p)
        if row is None:  # a number, date or zone the patterns cannot judge: the ordinary way, for its words
            g, b, w = validate_rows([(line, msgspec.structs.asdict(p))], default_region)
            good += g
            bad += b
            warnings += w
            continue
        good.append(row)
        _flag_formulas(line, row, warnings)
    return good, bad, warnings, [(line, p.external_id.strip() or None) for line, p in enumerate(rows, first)]


def _plain_row(p: _PlainRow) -> ContactRow | None:
    """``validate_row`` of a plain row, or None when it needs the ordinary check."""
    if not _PLAIN_FIELDS.fullmatch(f"{p.external_id}\x1f{p.name or ''}\x1f{p.case_ref or ''}\x1f{p.amount or ''}"
                                   f"\x1f{p.currency or ''}\x1f{p.due_date or ''}\x1f{p.language or ''}\x1f{p.region or ''}"):
        return None
    numbers = p.phones
    if numbers is None:
        if p.phone is None:
            return None
        numbers = [p.phone]
    elif p.phone is not None:
        return None
    if len(numbers) == 1:
        if (one := e164_if_valid(numbers[0])) is None:
            return None
        phones: tuple[str, ...] = (one,)
    else:
        phones = tuple(dict.fromkeys(map(e164_if_valid, numbers)))
        if None in phones:
            return None
    if due := p.due_date:
        try:
            date.fromisoformat(due)  # YYYY-MM-DD (the pattern): what it was given is its isoformat()
        except ValueError:
            return None
    if (tz := p.time_zone) and tz not in _ZONES:
        return None
    return ContactRow(p.external_id, phones, p.name or None, p.case_ref or None, p.amount or None, p.currency or None,
                      due or None, tz or None, p.language or None)
