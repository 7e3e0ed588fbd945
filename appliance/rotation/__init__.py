"""SIM rotation: which SIM (and so which channel) places each call, SMS or HLR job.

A pure policy object (no I/O, injected clock and randomness) that the bank and the
scheduler drive; see :mod:`appliance.rotation.policy` for how it decides and
docs/rotation.md for every parameter.
"""
from __future__ import annotations

from .model import (
    DEAD_ENDS,
    AttemptSummary,
    Decision,
    JobKind,
    Lock,
    LockRules,
    Refusal,
    Request,
    SimLimits,
    SimRef,
    SimState,
    Traffic,
    WaitingFor,
    WindowCap,
)
from .policy import RotationPolicy

__all__ = [
    "DEAD_ENDS",
    "AttemptSummary",
    "Decision",
    "JobKind",
    "Lock",
    "LockRules",
    "Refusal",
    "Request",
    "RotationPolicy",
    "SimLimits",
    "SimRef",
    "SimState",
    "Traffic",
    "WaitingFor",
    "WindowCap",
]
