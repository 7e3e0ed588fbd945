"""Contacts as JSON: an import body (``[{...}, ...]`` or ``{"contacts": [...]}``) split into
numbered rows, each left undecoded (``msgspec.Raw``: its bytes in the body) until a worker
process checks its slice (``check_slice``): the main process only finds where each row
starts and ends (~0.04 s per 100,000 rows, where decoding them there and encoding each slice
again for its worker took ~0.2). There, a slice is decoded in one pass when its rows are
plain (``contacts.check_plain``), else row by row into ``ContactIn``, msgspec's type errors
turned into the report's line, field and words, so that every bad row is named, not only
the first; then checked by ``contacts.validate_rows`` like a CSV body's.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Final, Union

import msgspec

from .contacts import (
    FIELDS,
    MAX_ROWS,
    MAX_TEXT,
    BadRow,
    BodyError,
    ContactIn,
    ContactRow,
    Parsed,
    SliceCheck,
    check_count,
    check_plain,
    pack_rows,
    external_key,
    validate_rows,
)


class _Wrapped(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    contacts: list[ContactIn]


class _RawWrapped(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    contacts: list[msgspec.Raw]


_STRICT = msgspec.json.Decoder(Union[list[ContactIn], _Wrapped])
_LOOSE = msgspec.json.Decoder(Union[list[msgspec.Raw], _RawWrapped])
_RAW_LIST = msgspec.json.Decoder(list[msgspec.Raw])
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
    """``[{...}, ...]`` or ``{"contacts": [...]}`` -> (1-based position, the row's bytes);
    a body that is not JSON, or not a list of rows, or too many is refused here."""
    if body.count(b"{") > 2 * MAX_ROWS + 1:  # rows are flat: a cheap bound before any object is built
        raise BodyError(413, "too_large", "body", f"more than {2 * MAX_ROWS + 1:,} JSON objects; an import is at most "
                                                  f"{MAX_ROWS:,} rows: split it")
    try:
        decoded = _LOOSE.decode(body)
    except msgspec.DecodeError as exc:
        raise BodyError(400, "bad_json", "body", f"not JSON: {exc}") from None
    except msgspec.ValidationError:
        raise BodyError(400, "bad_request", "body", _SHAPE) from None
    except RecursionError:  # nested past the interpreter's limit: a row-shaped pass says where
        try:
            _STRICT.decode(body)
        except msgspec.ValidationError as exc:
            line, field, reason = _schema_problem(exc)
            raise BodyError(400, "bad_json", field, f"{reason} (nested deeper than a contact allows)", line) from None
        raise
    raws = decoded.contacts if isinstance(decoded, _RawWrapped) else decoded
    check_count(len(raws))
    return Parsed(list(enumerate(raws, 1)), [])


def check_slice(payload: tuple[int, bytes], default_region: str | None = None,
                encode_rows: Callable[[list[ContactRow]], bytes] = pack_rows) -> SliceCheck:
    """``contacts.check_slice`` of a slice of a JSON body (``contacts.pack``: its first line
    and its rows as one JSON list), in a worker process: every row checked, a row that is
    not a contact's shape reported with its line, field and words."""
    first, data = payload
    plain = check_plain(first, data, default_region)
    if plain is not None:
        good, bad, warnings, keys = plain
        return encode_rows(good), bad, warnings, keys
    items: list[tuple[int, Any]] = []
    shape: list[BadRow] = []
    for line, raw in enumerate(_RAW_LIST.decode(data), first):
        try:
            items.append((line, _ROW.decode(raw)))
        except msgspec.ValidationError as exc:
            _, field, reason = _schema_problem(exc)
            shape.append(BadRow(line, field, reason))
    good, bad, warnings = validate_rows(items, default_region)
    return encode_rows(good), shape + bad, warnings, [(line, external_key(row.external_id)) for line, row in items]
