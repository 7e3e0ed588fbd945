"""Splitting a command line into commands (ITU-T V.250 §5.2–5.4), sans-I/O.

``AT`` is followed by basic commands (a letter or ``&``-letter and digits: ``E0``, ``V1``,
``H``, ``&F``), ``S``-register commands (``S0=0``, ``S7?``), extended commands (``+NAME``
or vendor ``^NAME`` with ``?``, ``=?`` or ``=args``, separated by ``;``), and ``D``,
which takes the rest of the line (its ``;`` means a voice call).
"""
from __future__ import annotations

import enum
from dataclasses import dataclass


class Kind(enum.Enum):
    EXEC = "exec"  # AT+CMD
    READ = "read"  # AT+CMD?
    TEST = "test"  # AT+CMD=?
    SET = "set"  # AT+CMD=<args>


@dataclass(frozen=True, slots=True)
class Command:
    name: str  # upper case: "+CMGS", "^DTMF", "E", "&F", "D", "S"
    kind: Kind
    args: tuple[str, ...]  # unquoted parameters
    raw: str  # the text after the name, as sent

    def arg(self, i: int, default: str = "") -> str:
        return self.args[i] if i < len(self.args) and self.args[i] != "" else default

    def int_arg(self, i: int, default: int | None = None) -> int:
        text = self.arg(i)
        if text == "":
            if default is None:
                raise ValueError(f"parameter {i + 1} missing")
            return default
        return int(text)


_VENDOR_PREFIXES = "+^$%*#!"
_NAME_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_!%-./:")


def split_args(text: str) -> tuple[str, ...]:
    """Comma-separated parameters; quotes removed, commas inside quotes kept."""
    if text == "":
        return ()
    args, cur, quoted, was_quoted = [], [], False, False
    for ch in text:
        if ch == '"':
            quoted, was_quoted = not quoted, True
        elif ch == "," and not quoted:
            args.append("".join(cur) if was_quoted else "".join(cur).strip())
            cur, was_quoted = [], False
        else:
            cur.append(ch)
    args.append("".join(cur) if was_quoted else "".join(cur).strip())
    return tuple(args)


def _extended(name: str, rest: str) -> Command:
    rest_s = rest.strip()
    if rest_s == "":
        return Command(name, Kind.EXEC, (), rest)
    if rest_s == "?":
        return Command(name, Kind.READ, (), rest)
    if rest_s == "=?":
        return Command(name, Kind.TEST, (), rest)
    if rest_s.startswith("="):
        return Command(name, Kind.SET, split_args(rest_s[1:]), rest)
    raise ValueError(f"bad syntax after {name}: {rest!r}")


def parse_line(body: str) -> list[Command]:
    """The commands in one line after ``AT``; ValueError on a syntax error (→ ERROR)."""
    out: list[Command] = []
    i, n = 0, len(body)
    while i < n:
        ch = body[i]
        if ch in " ;":
            i += 1
        elif ch in _VENDOR_PREFIXES:
            j = i + 1
            while j < n and body[j] in _NAME_CHARS:
                j += 1
            k, quoted = j, False
            while k < n and (quoted or body[k] != ";"):
                quoted ^= body[k] == '"'
                k += 1
            out.append(_extended(body[i:j].upper(), body[j:k]))
            i = k + 1
        elif ch in "Dd":
            out.append(Command("D", Kind.EXEC, (), body[i + 1:]))
            break
        elif ch in "Ss" and i + 1 < n and body[i + 1].isdigit():
            j = i + 1
            while j < n and body[j].isdigit():
                j += 1
            k = j
            if k < n and body[k] == "?":
                k += 1
            elif k < n and body[k] == "=":
                k += 1
                while k < n and body[k].isdigit():
                    k += 1
            out.append(Command("S", Kind.SET, (body[i + 1:j], body[j:k]), body[i + 1:k]))
            i = k
        elif ch == "&" or ch.isalpha():
            j = i + (2 if ch == "&" else 1)
            name = body[i:j].upper()
            k = j
            while k < n and body[k].isdigit():
                k += 1
            out.append(Command(name, Kind.EXEC, (body[j:k],) if k > j else (), body[j:k]))
            i = k
        else:
            raise ValueError(f"unexpected {ch!r}")
    return out
