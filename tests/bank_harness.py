"""An emulated bank for tests: the emulator serving virtual modems on pseudo-terminals,
with its state file written where an appliance's config (``emulator_state``) finds it.

tests/conftest.py builds the ``emulated_bank``, ``bank`` and ``emu`` fixtures on
``bank_running``; a test that starts a bank in its body (a second bank, or one whose life
must end before the test's last checks) uses ``bank_running`` itself.
"""
from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, NamedTuple

from modem_drivers.emulator import Emulator, EmulatorConfig


class EmulatedBank(NamedTuple):
    """A running emulator and the state file naming its ports (``emu, state = bank``)."""

    emu: Emulator
    state: Path


@contextlib.asynccontextmanager
async def bank_running(where: Path, name: str = "bank", **options: Any) -> AsyncIterator[EmulatedBank]:
    """An emulator started with ``EmulatorConfig(**options)``; its port links in
    ``where/emu`` unless ``state_dir`` is given, its state in ``where/<name>.json``."""
    options.setdefault("state_dir", where / ("emu" if name == "bank" else f"{name}-emu"))
    async with Emulator(EmulatorConfig(**options)) as emu:
        state = where / f"{name}.json"
        state.write_text(json.dumps(emu.state()))
        yield EmulatedBank(emu, state)
