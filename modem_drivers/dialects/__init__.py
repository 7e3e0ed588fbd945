"""Vendor dialects as data; ``detect`` picks one from ``+CGMI``/``+CGMM``."""
from __future__ import annotations

from .base import MAX_COMMAND_LINE, CallProgress, CallUrc, Cmd, Dialect, Query, Tts
from .tables import BY_NAME, DIALECTS, GENERIC, HUAWEI, QUECTEL, SIMCOM, TTS_MAX_CHARS


def detect(manufacturer: str, model: str) -> Dialect:
    for dialect in DIALECTS:
        if dialect is not GENERIC and dialect.selected_by(manufacturer, model):
            return dialect
    return GENERIC


def by_name(name: str) -> Dialect:
    try:
        return BY_NAME[name]
    except KeyError:
        raise ValueError(f"unknown dialect {name!r}; expected one of {', '.join(sorted(BY_NAME))}") from None


__all__ = ["CallProgress", "CallUrc", "Cmd", "Dialect", "Query", "MAX_COMMAND_LINE", "Tts", "TTS_MAX_CHARS", "DIALECTS", "GENERIC", "HUAWEI", "QUECTEL", "SIMCOM", "detect", "by_name"]
