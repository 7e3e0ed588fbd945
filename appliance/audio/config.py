"""Audio parameters from the appliance's TOML (``[audio.amd]``, ``[audio.dtmf]``,
``[audio.tones]``), validated at start with errors that name the key.

Every parameter has a documented default in its detector's config class; a table only
lists what it changes.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .amd import AmdConfig
from .dtmf import DtmfConfig
from .tones import ToneConfig


class AudioConfigError(ValueError):
    """A bad ``[audio.*]`` setting, named by its key."""


@dataclass(frozen=True, slots=True)
class AudioConfig:
    amd: AmdConfig = field(default_factory=AmdConfig)
    dtmf: DtmfConfig = field(default_factory=DtmfConfig)
    tones: ToneConfig = field(default_factory=ToneConfig)


_SECTIONS = {"amd": AmdConfig, "dtmf": DtmfConfig, "tones": ToneConfig}


def _build(section: str, cls: type, table: Mapping[str, Any]) -> Any:
    known = {f.name: f for f in dataclasses.fields(cls)}
    kwargs: dict[str, Any] = {}
    for key, value in table.items():
        f = known.get(key)
        if f is None:
            raise AudioConfigError(f"audio.{section}.{key}: unknown setting (known: {', '.join(sorted(known))})")
        default = getattr(cls(), key)
        if isinstance(default, tuple):
            if not isinstance(value, (list, tuple)) or len(value) != len(default):
                raise AudioConfigError(f"audio.{section}.{key}: expected a list of {len(default)} numbers")
            value = tuple(value)
        elif isinstance(default, bool) or not isinstance(value, (int, float)) or isinstance(value, bool):
            raise AudioConfigError(f"audio.{section}.{key}: expected a number, got {value!r}")
        elif isinstance(default, int) and not isinstance(value, int):
            raise AudioConfigError(f"audio.{section}.{key}: expected whole milliseconds, got {value!r}")
        kwargs[key] = value
    try:
        return cls(**kwargs)
    except ValueError as exc:
        raise AudioConfigError(f"audio.{exc}") from None


def audio_config(table: Mapping[str, Any] | None) -> AudioConfig:
    """Build :class:`AudioConfig` from the ``[audio]`` table of the appliance's TOML."""
    table = table or {}
    for key in table:
        if key not in _SECTIONS:
            raise AudioConfigError(f"audio.{key}: unknown section (known: amd, dtmf, tones)")
    return AudioConfig(**{name: _build(name, cls, table.get(name, {})) for name, cls in _SECTIONS.items()})
