"""The faults the emulator can inject and the error its API raises on bad input.

Below both the emulator (which injects faults) and its control server (which checks a
posted fault before arming it), so neither imports the other for them.
"""
from __future__ import annotations

import enum


class Fault(enum.Enum):
    VANISH = "vanish"  # port disappears; returns after ``seconds`` (None: stays away)
    GARBAGE = "garbage"  # ``bytes`` (or ``count`` random bytes) written to the host
    STUCK = "stuck"  # swallows commands for ``seconds`` or until AT+CFUN=1,1
    LOSE_URC = "lose_urc"  # the next URC starting with ``prefix`` is dropped
    BLOCK_SIM = "block_sim"  # the operator blocks the SIM in ``slot`` (default: active)


class EmulatorError(Exception):
    """Bad input to the emulator API; the message names the field."""
