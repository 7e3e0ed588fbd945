"""Contacts as JSON: an import body (``[{...}, ...]`` or ``{"contacts": [...]}``) read into
numbered ``ContactIn`` rows, with msgspec's type errors turned into the report's line, field
and words. A well-formed body is decoded in one pass; a body with a bad row is decoded row by
row so that every bad row is named, not only the first.

The rows it reads are checked by ``contacts.validate_rows`` like a CSV body's.
"""
from __future__ import annotations

import re
from typing import Any, Final, Union

import msgspec

from .contacts import FIELDS, MAX_ROWS, MAX_TEXT, BadRow, BodyError, ContactIn, Parsed, check_count


class _Wrapped(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    contacts: list[ContactIn]


class _RawWrapped(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    contacts: list[msgspec.Raw]


_STRICT = msgspec.json.Decoder(Union[list[ContactIn], _Wrapped])
_LOOSE = msgspec.json.Decoder(Union[list[msgspec.Raw], _RawWrapped])
_ROW = msgspec.json.Decoder(ContactIn)
_SHAPE = 'expected a list of contacts or {"contacts": [...]}'
_TYPES: Final = {"str": "text", "int": "an integer", "float": "a number", "null": "null", "array": "a list",
                 "object": "an object", "bool": "true/false"}
_WHERE = re.compile(r" - at `\$(?:\.contacts)?(?:\[(\d+)\])?(?:\.(\w+))?[^`]*`$")


def _schema_problem(exc: msgspec.ValidationError) -> tuple[int | None, str, str]:
    """msgspec's "Expected `str | null`, got `array` - at `$[3].name`" -> (line 4, "name",
    "expected text or null, got a list")."""
    msg = str(exc)
    m = _WHERE.search(msg)
    what = msg[:m.start()] if m else msg
    line = int(m.group(1)) + 1 if m and m.group(1) else None
    field = (m.group(2) if m else None) or ("row" if line is not None else "body")
    unknown = re.match(r"Object contains unknown field `(.*)`$", what, re.S)
    if unknown:
        return line, unknown.group(1)[:MAX_TEXT], f"unknown field (a typo?); known fields: {', '.join(FIELDS)}"
    if what == "Number out of range":
        return line, field, "a number beyond a 64-bit float; send amounts as text, e.g. \"1234.50\""
    if what == "Integer value out of range":
        return line, field, "an integer beyond 64 bits; send it as text"
    words = re.sub(r"`([^`]*)`", lambda t: " or ".join(_TYPES.get(w.strip(), w.strip()) for w in t.group(1).split("|")), what)
    return line, field, words[0].lower() + words[1:] if words else "does not fit a contact's shape"


def parse_json(body: bytes) -> Parsed:
    """``[{...}, ...]`` or ``{"contacts": [...]}`` -> (1-based position, row). The fast path
    decodes straight into ``ContactIn``; when that finds a problem, each row is decoded on
    its own so that every bad row is reported, not only the first."""
    if body.count(b"{") > 2 * MAX_ROWS + 1:  # rows are flat: a cheap bound before any object is built
        raise BodyError(413, "too_large", "body", f"more than {2 * MAX_ROWS + 1:,} JSON objects; an import is at most "
                                                  f"{MAX_ROWS:,} rows: split it")
    try:
        decoded = _STRICT.decode(body)
    except msgspec.ValidationError as exc:
        return _parse_rows(body, exc)
    except msgspec.DecodeError as exc:
        raise BodyError(400, "bad_json", "body", f"not JSON: {exc}") from None
    rows = decoded.contacts if isinstance(decoded, _Wrapped) else decoded
    check_count(len(rows))
    return Parsed(list(enumerate(rows, 1)), [])


def _parse_rows(body: bytes, first: msgspec.ValidationError) -> Parsed:
    line, field, reason = _schema_problem(first)
    try:
        decoded = _LOOSE.decode(body)
    except RecursionError:  # nested past the interpreter's limit: the strict pass found where
        raise BodyError(400, "bad_json", field, f"{reason} (nested deeper than a contact allows)", line) from None
    except msgspec.ValidationError:
        raise BodyError(400, "bad_request", field if line is not None else "body",
                        reason if line is not None else _SHAPE, line) from None
    raws = decoded.contacts if isinstance(decoded, _RawWrapped) else decoded
    check_count(len(raws))
    items: list[tuple[int, Any]] = []
    bad: list[BadRow] = []
    for i, raw in enumerate(raws, 1):
        try:
            items.append((i, _ROW.decode(raw)))
        except msgspec.ValidationError as exc:
            _, field, reason = _schema_problem(exc)
            bad.append(BadRow(i, field, reason))
    return Parsed(items, bad)
