"""Vendor dialects as data; ``detect`` picks one from ``+CGMI``/``+CGMM``."""
from __future__ import annotations

from .base import (
    MAX_COMMAND_LINE,
    AudioMoment,
    AudioSetup,
    CallUrc,
    Cmd,
    Dialect,
    Query,
    Tts,
)
from .tables import DIALECTS, GENERIC, HUAWEI, QUECTEL, SIMCOM, TTS_MAX_CHARS


def detect(manufacturer: str, model: str) -> Dialect:
    for dialect in DIALECTS:
        if dialect is not GENERIC and dialect.selected_by(manufacturer, model):
            return dialect
    return GENERIC


__all__ = ["DIALECTS", "GENERIC", "HUAWEI", "MAX_COMMAND_LINE", "QUECTEL", "SIMCOM", "TTS_MAX_CHARS", "AudioMoment", "AudioSetup", "CallUrc", "Cmd", "Dialect", "Query", "Tts", "detect"]
