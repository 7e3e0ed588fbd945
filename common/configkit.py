"""Config checks both TOML configs share (appliance/config.py, controller/config.py): every
mistake becomes one paragraph that names the file, the key and the fix.

* ``explain`` — a msgspec validation error in words: where (``[limits] calls_per_hour``,
  ``[[modem]] #2 slots``), what was given, and the fix; an unknown key gets the closest
  known key of its table (difflib), not a generic hint.
* ``check_numbers`` — every number finite (TOML allows ``inf`` and ``nan``), none
  negative, every ``…_seconds`` at most ``MAX_SECONDS``, and per-key bounds from a
  table of ``Bound`` rows (each with the reason for its range).
* ``check_store_dir`` — the SQLite file's directory exists and is writable.
* ``check_token`` — an API that listens beyond loopback needs a token of at least
  ``MIN_TOKEN_CHARS`` characters.
"""
from __future__ import annotations

import difflib
import ipaddress
import json
import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import msgspec
import msgspec.inspect as mi

#: The longest wait any key may ask for: the longest real one is an SMS status report
#: (24 h by default; SMSCs keep trying for their validity period, commonly up to 72 h,
#: 23.040 §9.2.3.12). A week leaves room and still catches milliseconds typed as
#: seconds or a stray exponent (``3e9``).
MAX_SECONDS: Final = 7 * 86400.0
#: A bearer token guessable by brute force over a LAN is no lock: 16 characters of
#: ``secrets.token_urlsafe`` carry 96 bits (NIST SP 800-63B asks >= 112 bits for
#: generated secrets of look-up type, 64 for rate-limited ones; we generate 24 bytes =
#: 192 bits in the hint and refuse anything shorter than 16 characters).
MIN_TOKEN_CHARS: Final = 16
TOKEN_HINT: Final = "python -c 'import secrets; print(secrets.token_urlsafe(24))'"


@dataclass(frozen=True, slots=True)
class Bound:
    """The allowed range of one key's numbers (``hi`` None: no upper bound beyond the
    defaults), with the reason shown in the fix."""

    lo: float
    hi: float | None
    why: str
    lo_open: bool = False  # ``lo`` itself refused: a wait of 0 s would spin

    def words(self) -> str:
        lo = f"above {self.lo:g}" if self.lo_open else f"at least {self.lo:g}"
        return lo if self.hi is None else f"{lo} and at most {self.hi:g}"

    def holds(self, x: float) -> bool:
        if x < self.lo or (self.lo_open and x == self.lo):
            return False
        return self.hi is None or x <= self.hi


SECONDS = Bound(0.0, MAX_SECONDS, "seconds; more than a week is surely a typo")
WAIT = Bound(0.0, MAX_SECONDS, "seconds; 0 would repeat the work in a hot loop, more than a week is surely a typo",
             lo_open=True)
COUNT = Bound(0.0, None, "a count or a limit cannot be negative")


# -- where a key is, in TOML words -----------------------------------------------------------
Part = str | int  # a key, or the index of a table in an array of tables


def _name(parts: list[Part]) -> str:
    return ".".join(p if re.fullmatch(r"[A-Za-z0-9_-]+", p) else f'"{p}"' for p in parts if isinstance(p, str))


def table_words(parts: list[Part]) -> str:
    """("modem", 1) -> "[[modem]] #2"; ("limits",) -> "[limits]"; () -> "the top level"."""
    if not parts:
        return "the top level"
    if isinstance(parts[-1], int):
        return f"[[{_name(parts)}]] #{parts[-1] + 1}"
    return f"[{_name(parts)}]"


def where(parts: list[Part]) -> str:
    """("limits", "calls_per_hour") -> "[limits] calls_per_hour";
    ("modem", 1, "slots") -> "[[modem]] #2 slots"; ("emulator_state",) -> "emulator_state";
    ("limits", "pause_after_call", 1) -> "[limits] pause_after_call item 2"."""
    if not parts:
        return "the top level"
    last = parts[-1]
    if isinstance(last, int):
        return f"{where(parts[:-1])} item {last + 1}"
    key = last if re.fullmatch(r"[A-Za-z0-9_-]+", last) else f'"{last}"'
    return f"{table_words(parts[:-1])} {key}" if len(parts) > 1 else key


def key_of(parts: list[Part]) -> str:
    """The dotted key of a place without indices: ("modem", 1, "slots") -> "modem.slots"."""
    return ".".join(p for p in parts if isinstance(p, str))


# -- msgspec errors in words ------------------------------------------------------------------
def explain(exc: msgspec.ValidationError, source: str, root: type, data: Any,
            fixes: Mapping[str, str]) -> str:
    """One paragraph for a msgspec validation error of ``data`` converted to ``root``."""
    msg = str(exc)
    m = re.search(r" - at `\$([^`]*)`$", msg)
    what = msg[: m.start()] if m else msg
    parts, node, typ, default = _locate(m.group(1) if m else "", root, data)
    unknown = re.match(r"Object contains unknown field `([^`]+)`", what)
    if unknown:
        name = unknown.group(1)
        known = _field_names(typ)
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
        if close:
            fix = f"did you mean {close[0]!r}? rename the key"
        else:
            fix = f"remove it; the keys of {table_words(parts)} are {', '.join(known)}"
        return f"{source}: {table_words(parts)}: unknown key {name!r} (a typo?); fix: {fix}"
    missing = re.match(r"Object missing required field `([^`]+)`", what)
    if missing:
        parts = parts + [missing.group(1)]
        place = f"[{missing.group(1)}]" if len(parts) == 1 else where(parts)
        fix = fixes.get(key_of(parts), f"add {missing.group(1)} = …")
        return f"{source}: {place}: missing; fix: {fix}"
    if what.startswith("Invalid enum value"):
        what = what.replace("Invalid enum value", "not one of the allowed values:")
    else:
        what = re.sub(r"Expected `([^`]+)`", r"expected \1", what).replace(" | null", "")
        if node is not _ABSENT:
            if re.search(r", got `[^`]+`$", what):
                what = re.sub(r", got `[^`]+`$", f", got {_show(node)}", what)
            elif ", got" not in what:
                what += f", got {_show(node)}"
    fix = fixes.get(key_of(parts)) or _type_fix(typ, parts, default)
    return f"{source}: {where(parts)}: {what}" + (f"; fix: {fix}" if fix else "")


_ABSENT = object()


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _locate(path: str, root: type, data: Any) -> tuple[list[Part], Any, Any, Any]:
    """Walk a msgspec path (``.limits.windows[0].max_calls``, ``.operator_limits[...]``)
    through the type and the data together: the place in TOML words, the value given
    there, the expected type and the key's default (``_ABSENT`` if none)."""
    parts: list[Part] = []
    typ: Any = mi.type_info(root)
    node: Any = data
    default: Any = _ABSENT
    for name, index, anykey in re.findall(r"\.([^.\[]+)|\[(\d+)\]|\[(\.\.\.)\]", path):
        typ = _unwrap(typ)
        default = _ABSENT
        if name:
            parts.append(name)
            fields = {f.encode_name: f for f in getattr(typ, "fields", ())}
            f = fields.get(name)
            typ = f.type if f is not None else mi.AnyType()
            if f is not None and f.default is not msgspec.NODEFAULT:
                default = f.default
            node = node.get(name, _ABSENT) if isinstance(node, dict) else _ABSENT
        elif index:
            parts.append(int(index))
            typ = getattr(typ, "item_type", None) or mi.AnyType()
            node = node[int(index)] if isinstance(node, list) and int(index) < len(node) else _ABSENT
        elif anykey:  # a dict entry: find the key whose value does not convert
            value_type = getattr(typ, "value_type", mi.AnyType())
            key = _failing_key(node, value_type)
            parts.append(key if key is not None else "…")
            typ = value_type
            node = node.get(key, _ABSENT) if isinstance(node, dict) and key is not None else _ABSENT
    return parts, node, _unwrap(typ), default


def _failing_key(node: Any, value_type: Any) -> str | None:
    if not isinstance(node, dict):
        return None
    py = _python_type(value_type)
    for key, value in node.items():
        try:
            msgspec.convert(value, py)
        except msgspec.ValidationError:
            return str(key)
        except TypeError:
            return None
    return None


def _python_type(t: Any) -> Any:
    if isinstance(t, mi.StructType):
        return t.cls
    simple = {mi.StrType: str, mi.IntType: int, mi.FloatType: float, mi.BoolType: bool}
    return simple.get(type(t), Any)


def _unwrap(t: Any) -> Any:
    """``X | None`` -> ``X``."""
    if isinstance(t, mi.UnionType):
        real = [u for u in t.types if not isinstance(u, mi.NoneType)]
        if len(real) == 1:
            return real[0]
    return t


def _field_names(t: Any) -> list[str]:
    return [f.encode_name for f in getattr(_unwrap(t), "fields", ())]


def _type_fix(t: Any, parts: list[Part], default: Any) -> str | None:
    """The key's default as the example to copy, else what the type wants."""
    name = parts[-1] if parts and isinstance(parts[-1], str) else None
    if name and isinstance(default, bool):
        return f"{name} = true or {name} = false (no quotes)"
    if name and isinstance(default, (int, float, str)):
        return f"{name} = {_toml(default)} (the default), or another {_kind(t)}"
    if name and isinstance(default, tuple) and all(isinstance(v, (int, float, str)) for v in default) and default:
        return f"{name} = [{', '.join(_toml(v) for v in default)}] (the default)"
    if isinstance(t, mi.LiteralType):
        return "one of " + ", ".join(repr(v) for v in t.values)
    if isinstance(t, mi.StructType):
        return f"make {name or 'it'} a table ([{name or 'name'}] with key = value lines)"
    kind = _kind(t)
    return f"{name} = {kind}" if name and kind != "value" else None


def _toml(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    return repr(v)


def _kind(t: Any) -> str:
    return {mi.IntType: "whole number", mi.FloatType: "number", mi.StrType: "string in quotes",
            mi.BoolType: "true or false"}.get(type(_unwrap(t)), "value")


# -- numbers ----------------------------------------------------------------------------------
def check_numbers(cfg: msgspec.Struct, source: str, bounds: Mapping[str, Bound],
                  error: Callable[[str], Exception]) -> None:
    """Every number of the config finite, in its key's ``Bound`` (``bounds`` by dotted
    key, ``*`` for any table name of a dict such as ``operator_limits``), else ``SECONDS``
    for keys ending in ``_seconds``, else ``COUNT``."""
    def visit(value: Any, parts: list[Part]) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                visit(v, parts + [str(k)])
        elif isinstance(value, (list, tuple)):
            for i, v in enumerate(value):
                visit(v, parts + [i] if isinstance(v, dict) else parts)
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            key = key_of(parts)
            bound = _bound_for(key, bounds)
            place = where(parts)
            if not math.isfinite(value):
                raise error(f"{source}: {place}: {value} is not a number this key can use; "
                            f"fix: a finite number, {bound.words()} ({bound.why})")
            if not bound.holds(value):
                raise error(f"{source}: {place}: {value:g} is out of range; fix: a number {bound.words()} ({bound.why})")

    visit(msgspec.to_builtins(cfg), [])


def _bound_for(key: str, bounds: Mapping[str, Bound]) -> Bound:
    if key in bounds:
        return bounds[key]
    for pattern, bound in bounds.items():
        if "*" in pattern and re.fullmatch(re.escape(pattern).replace(r"\*", r"[^.]+"), key):
            return bound
    return SECONDS if key.endswith("_seconds") else COUNT


# -- files and listeners ------------------------------------------------------------------------
def check_store_dir(store: str | Path, source: str, place: str, error: Callable[[str], Exception]) -> None:
    """The SQLite store ``store`` can be created: its directory exists and is writable."""
    if str(store) in ("", ":memory:"):
        return
    path = Path(store).absolute()
    folder = path.parent
    if path.is_dir():
        raise error(f"{source}: {place}: {str(path)!r} is a directory; fix: name a file in it, "
                    f"e.g. store = \"{path / 'simrotor.db'}\"")
    if not folder.is_dir():
        raise error(f"{source}: {place}: the directory {str(folder)!r} does not exist; fix: create it "
                    f"(mkdir -p {folder}) or point store at a file in an existing directory")
    if not os.access(folder, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.R_OK | os.W_OK)):
        raise error(f"{source}: {place}: {str(path)!r} is not writable by this user (uid {os.getuid()}); "
                    f"fix: give the service user write access to {folder} (chown) or choose another directory")


def listen_host(listen: str) -> str:
    """``"0.0.0.0:8470"`` -> ``"0.0.0.0"``, ``"[::1]:8470"`` -> ``"::1"``."""
    return listen.rpartition(":")[0].strip("[]")


def is_loopback(host: str) -> bool:
    """Only a listener on a loopback address is out of other machines' reach: ``""``,
    ``0.0.0.0`` and ``::`` bind every interface, and a host name may resolve anywhere."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_token(listen: str | None, token: str | None, source: str, place: str, listen_place: str,
                error: Callable[[str], Exception]) -> None:
    """A token of at least ``MIN_TOKEN_CHARS`` characters when the API listens beyond
    loopback (a short token stays allowed on loopback: only this machine can try it)."""
    if not listen or token is None:
        return
    host = listen_host(listen)
    if len(token) < MIN_TOKEN_CHARS and not is_loopback(host):
        raise error(f"{source}: {place}: {listen_place} = {listen!r} is reachable from other machines, and a token "
                    f"of {len(token)} character{'s' if len(token) != 1 else ''} can be guessed; fix: a token of at least {MIN_TOKEN_CHARS} "
                    f"characters, e.g. the output of {TOKEN_HINT} (or listen on 127.0.0.1 only)")
