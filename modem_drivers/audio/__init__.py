"""A modem's audio port: 8 kHz S16LE mono PCM in 20 ms frames, both ways, in the event loop.

``frames`` (format and framer), ``pacing`` (the 20 ms write schedule), ``health`` (the
rule that a live call has live frames within 500 ms of the answer) and ``port`` (the tty
in the loop, on the AT port's transport). Which modems have a port and the command that
turns the voice onto it are dialect rows (``dialects.base.AudioSetup``); the Modem's
``audio`` part sends that command at its moment in the call.
"""
from __future__ import annotations

from ..at.errors import PortUnavailable
from .frames import (
    FRAME_BYTES,
    FRAME_SAMPLES,
    FRAME_SECONDS,
    SAMPLE_RATE,
    SILENCE,
    Framer,
)
from .health import HEALTH_WINDOW, AudioFault, AudioFaultReason, AudioHealth, Verdict
from .pacing import LATE_AFTER, Pacer
from .port import RX_QUEUE_FRAMES, AudioPort, AudioStats

__all__ = [
    "FRAME_BYTES", "FRAME_SAMPLES", "FRAME_SECONDS", "HEALTH_WINDOW", "LATE_AFTER", "RX_QUEUE_FRAMES",
    "SAMPLE_RATE", "SILENCE", "AudioFault", "AudioFaultReason", "AudioHealth", "AudioPort", "AudioStats",
    "Framer", "Pacer", "PortUnavailable", "Verdict",
]
