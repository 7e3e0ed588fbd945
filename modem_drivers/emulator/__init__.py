"""Virtual modem bank on pseudo-terminals plus a simulated GSM network.

Public surface (the rest of the package is private)::

    async with Emulator(EmulatorConfig(modems=4)) as emu:
        emu.modems[0].port          # stable symlink → /dev/pts/N, open it with pyserial
        await emu.inject("emu000", Fault.STUCK, seconds=2)
        emu.network.calls           # what the network saw
        emu.modems[0].audio_port    # the call-audio pty (Huawei, SIM7600, EC25), else None

See docs/emulator.md for the number plan and the fault catalogue, docs/dialects.md for
what each vendor dialect answers.
"""
from __future__ import annotations

from ._calls import (
    CallAudio,
    CallRecord,
    CallState,
    HeardSpan,
    KeyPress,
    Outcome,
    PlayedMessage,
)
from ._dialects import DIALECTS, VENDOR_MODELS, Dialect
from ._emulator import Emulator, EmulatorConfig, EmulatorError, Fault
from ._modem import VirtualModem
from ._network import Network, SmsRecord, SmsStatus
from ._plan import Behaviour, ReportStatus, plan_behaviour, plan_operator
from ._sim import PinState, VirtualSim
from ._timing import Timing
from ._voices import CalleeKind, KeyScript

__all__ = [
    "Behaviour", "CallAudio", "CallRecord", "CalleeKind", "HeardSpan", "KeyPress", "KeyScript", "CallState", "DIALECTS", "Dialect", "Emulator", "EmulatorConfig",
    "EmulatorError", "Fault", "Network", "Outcome", "PinState", "PlayedMessage", "ReportStatus", "SmsRecord",
    "SmsStatus", "Timing", "VENDOR_MODELS", "VirtualModem", "VirtualSim", "plan_behaviour",
    "plan_operator",
]
