"""Contacts as CSV: an import body read one physical line at a time into numbered rows
(a bad line is a bad row the report names, never a failed import, and an unterminated quote
cannot swallow the rows below it), and the contact list written for a spreadsheet with
formula-like cells neutralised (OWASP "CSV injection").

The column separator is read off the header line (``detect_delimiter``): comma, semicolon
(what a spreadsheet saves in a locale whose decimal mark is a comma, Polish among them) or
tab; the import report names the one used. The header names known columns, none of which
holds a separator, so counting them there decides without guessing at the data. In any of
them a ``phones`` cell may separate its numbers with ``;`` (quoted in a semicolon file) or
``,`` (no number holds a comma). The text is UTF-8 unless the request's ``Content-Type``
names another charset (``text/csv; charset=windows-1250``: Excel's "CSV" in Poland).

The rows it reads are checked by ``contacts.validate_rows`` like a JSON body's.
"""
from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from common.phone import shown

from .contacts import (
    DELIMITER_NAMES,
    FIELDS,
    MAX_LINE,
    MAX_TEXT,
    BadRow,
    BodyError,
    Parsed,
    check_count,
    is_formula,
)


def csv_cell(value: Any) -> Any:
    """A cell for a CSV the controller writes: formula-like text gets a leading ``'``, which
    spreadsheets show as text (OWASP's advice); everything else as it is."""
    return "'" + value if is_formula(value) else value


class _Continued(Exception):
    """The csv reader asked for a second line of one record."""


class _Feed:
    """Feeds ``csv.reader`` one physical line at a time, and notices when a record asks for
    a second line: a quoted field holding a line break, which in a contact file is an
    unterminated quote swallowing the rows below it. Over-long lines are held back (the
    reader sees an empty line) so the csv module's own field limit never fires."""

    __slots__ = ("_lines", "line", "open", "text", "long")

    def __init__(self, text: str) -> None:
        self._lines = iter(io.StringIO(text, newline=""))  # newline="": the csv module's own advice
        self.line = 0
        self.open = False
        self.text = ""
        self.long = False

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        if self.open:
            raise _Continued
        self.text = next(self._lines)
        self.line += 1
        self.open = True
        self.long = len(self.text) > MAX_LINE
        return "\n" if self.long else self.text


def detect_delimiter(text: str) -> str:
    """The column separator of a CSV text: of comma, semicolon and tab, the one its first
    line (the header) holds most often outside quotes; a comma when it holds none (a
    one-column header)."""
    first = text.split("\n", 1)[0][:MAX_LINE]
    counts = dict.fromkeys(DELIMITER_NAMES, 0)
    quoted = False
    for ch in first:
        if ch == '"':
            quoted = not quoted
        elif not quoted and ch in counts:
            counts[ch] += 1
    best = max(counts, key=lambda d: (counts[d], d == ","))
    return best if counts[best] else ","


def _cells(line: str, sep: str = ",") -> tuple[list[int], int | None]:
    """Cell lengths of one CSV line and the index of its first malformed cell (a quote
    left open, or text after a closing quote). Only for naming the field of an error."""
    text = line.rstrip("\r\n")
    n = len(text)
    lengths: list[int] = []
    bad: int | None = None
    i = 0
    while True:
        start = i
        if i < n and text[i] == '"':
            j = i + 1
            while True:
                k = text.find('"', j)
                if k < 0:  # the quote never closes on this line
                    lengths.append(n - start)
                    return lengths, len(lengths) - 1 if bad is None else bad
                if text.startswith('"', k + 1):
                    j = k + 2
                    continue
                break
            comma = text.find(sep, k + 1)
            end = n if comma < 0 else comma
            if end != k + 1 and bad is None:
                bad = len(lengths)
        else:
            comma = text.find(sep, i)
            end = n if comma < 0 else comma
        lengths.append(end - start)
        if comma < 0:
            return lengths, bad
        i = comma + 1


def _column(header: Sequence[str], index: int | None) -> str:
    if index is None:
        return "row"
    return header[index] if index < len(header) else f"column {index + 1}"


def decode_csv(body: bytes, charset: str | None = None) -> str:
    """UTF-8 (a byte-order mark allowed), or the ``charset`` the request's Content-Type
    names; a bad byte is reported with its line, an unknown charset by name."""
    name = (charset or "utf-8").strip().lower()
    try:
        codec = "utf-8-sig" if codecs.lookup(name).name == "utf-8" else name
    except LookupError:
        raise BodyError(400, "bad_csv", "Content-Type", f"charset {shown(charset)} is unknown; send UTF-8 "
                                                        "(or name the file's charset, e.g. windows-1250)") from None
    try:
        return body.decode(codec)
    except UnicodeDecodeError as exc:
        line = body.count(b"\n", 0, exc.start) + 1
        raise BodyError(400, "bad_csv", "body", f"byte {exc.start + 1:,} is not {name}; save the file as UTF-8 or "
                                                "name its charset in the Content-Type", line) from None


def parse_csv(text: str) -> Parsed:
    """CSV with a header row -> (file line number, row). Empty cells are absent fields; blank
    lines are skipped; a line with more cells than the header, a malformed quote or a line
    over ``MAX_LINE`` is a bad row; an unterminated quote ends the reading there."""
    sep = detect_delimiter(text)
    feed = _Feed(text)
    reader = csv.reader(feed, delimiter=sep, strict=True)
    try:
        head = next(reader)
    except StopIteration:
        raise BodyError(400, "bad_csv", "body", "empty CSV: the first line must name the columns", 1) from None
    except (csv.Error, _Continued):
        raise BodyError(400, "bad_csv", "header", "the first line must name the columns, unquoted or well quoted", 1) from None
    if feed.long or not head:
        raise BodyError(400, "bad_csv", "header", "the first line must name the columns, e.g. external_id,phones,name", 1)
    header = [h.strip() for h in head]
    for i, name in enumerate(header):
        if name not in FIELDS:
            raise BodyError(400, "bad_csv", name[:MAX_TEXT] or f"column {i + 1}",
                            f"unknown column; known columns: {', '.join(FIELDS)}", 1)
        if name in header[:i]:
            raise BodyError(400, "bad_csv", name, "the column appears twice in the header", 1)
    items: list[tuple[int, dict[str, Any]]] = []
    bad: list[BadRow] = []
    width = len(header)
    while True:
        feed.open = False
        try:
            cells = next(reader)
        except StopIteration:
            break
        except _Continued:
            line = feed.line
            _, open_cell = _cells(feed.text, sep)
            bad.append(BadRow(line, _column(header, open_cell),
                              "unterminated quote: the field runs past the end of its line and would swallow the rows "
                              f"below; close the quote (the lines after {line} were not read)"))
            break
        except csv.Error as exc:
            _, cell = _cells(feed.text, sep)
            bad.append(BadRow(feed.line, _column(header, cell), f"malformed CSV ({exc}); quote the whole field, "
                                                                'doubling quotes inside it ("")'))
            check_count(len(items) + len(bad))
            continue
        if feed.long:
            lengths, _ = _cells(feed.text, sep)
            longest = max(range(len(lengths)), key=lengths.__getitem__)
            bad.append(BadRow(feed.line, _column(header, longest),
                              f"the line has {len(feed.text):,} characters (this cell {lengths[longest]:,}); "
                              f"a row is at most {MAX_LINE:,}"))
        elif not cells:
            continue
        elif len(cells) > width:
            bad.append(BadRow(feed.line, f"column {width + 1}",
                              f"{len(cells)} cells but the header names {width} columns; quote values holding "
                              f"a {DELIMITER_NAMES[sep]}"))
        else:
            row = {k: v for k, v in zip(header, cells) if v != ""}
            if "," in row.get("phones", ""):
                row["phones"] = row["phones"].replace(",", ";")
            items.append((feed.line, row))
        check_count(len(items) + len(bad))
    return Parsed(items, bad, sep)


def contacts_csv(contacts: Iterable[dict[str, Any]]) -> str:
    """Stored contacts as CSV for a spreadsheet: one header row, phones ``;``-separated,
    formula-like text neutralised with a leading ``'`` (``csv_cell``)."""
    columns = ("id", "external_id", "name", "case_ref", "phones", "amount", "currency", "due_date", "time_zone",
               "language", "state", "outcome")
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\r\n")  # RFC 4180 line ends
    w.writerow(columns)
    for ct in contacts:
        w.writerow([";".join(ct["phones"]) if k == "phones" else csv_cell(ct.get(k)) for k in columns])
    return out.getvalue()
