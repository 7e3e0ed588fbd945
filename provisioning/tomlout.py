"""A small TOML writer for the appliance config ``write-config`` produces: strings,
numbers, booleans, arrays, tables, arrays of tables — all the config uses. The standard
library reads TOML (``tomllib``) but does not write it; a dozen lines do not earn a
dependency. Comments go before an array-of-tables entry (a modem's labels)."""
from __future__ import annotations

import json
import math
import re
from typing import Any

_BARE = re.compile(r"[A-Za-z0-9_-]+")


def key(name: str) -> str:
    return name if _BARE.fullmatch(name) else json.dumps(name, ensure_ascii=False)


def value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if not math.isfinite(v):
            raise ValueError(f"{v!r}: TOML config values must be finite")
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)  # a JSON string is a TOML basic string
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{key(k)} = {value(x)}" for k, x in v.items()) + "}"
    raise TypeError(f"cannot write {type(v).__name__} as TOML")


def _is_table_array(v: Any) -> bool:
    return isinstance(v, (list, tuple)) and bool(v) and all(isinstance(x, dict) for x in v)


def dumps(doc: dict[str, Any], comments: dict[tuple[str, int], list[str]] | None = None) -> str:
    """``doc`` as TOML; ``comments[(array, i)]`` are written above ``[[array]]`` entry i."""
    comments = comments or {}
    out: list[str] = []

    def table(path: list[str], body: dict[str, Any], header: str | None, note: list[str] | None = None) -> None:
        scalars = {k: v for k, v in body.items() if not isinstance(v, dict) and not _is_table_array(v)}
        if header is not None and (scalars or not body):
            if out:
                out.append("")
            out.extend(f"# {line}" for line in note or [])
            out.append(header)
        for k, v in scalars.items():
            out.append(f"{key(k)} = {value(v)}")
        for k, v in body.items():
            sub = path + [k]
            name = ".".join(key(p) for p in sub)
            if isinstance(v, dict):
                table(sub, v, f"[{name}]")
            elif _is_table_array(v):
                for i, item in enumerate(v):
                    if out:
                        out.append("")
                    out.extend(f"# {line}" for line in comments.get((name, i), []))
                    out.append(f"[[{name}]]")
                    for a, b in item.items():  # nested values inline: a modem's are scalars and lists
                        out.append(f"{key(a)} = {value(b)}")

    table([], doc, None)
    return "\n".join(out) + "\n"
