"""Per-command timeout classes, in seconds, each with the figure it comes from.

Values must stay distinct: equal values would make enum aliases.
"""

from __future__ import annotations

import enum

__all__ = ["TimeoutClass"]


class TimeoutClass(enum.Enum):
    """How long a command may take before its final result, by kind of command."""

    # Local commands (AT, ATE0, AT+CGMI, AT+CSQ...): the SIM800 Series AT Command Manual
    # V1.09 lists no maximum ("-") for them; they answer in milliseconds. 3 s leaves room
    # for a modem busy with a network procedure without hiding a dead port for long.
    DEFAULT = 3.0
    # SIM access (AT+CPIN, AT+CRSM, AT+CIMI): SIM800 manual V1.09 §3.2.29 AT+CPIN,
    # "Max Response Time 5s".
    SIM = 5.0
    # Network procedures (AT+COPS, AT+CREG=..., AT+CFUN, AT+CSUS): SIM800 manual V1.09
    # §3.2.18 AT+COPS write "120s"; the SIM7500/SIM7600 manual V3.00 AT+COPS gives 180 s.
    NETWORK = 180.0
    # SMS submission (AT+CMGS, AT+CMSS): SIM800 manual V1.09 §4.2.5 AT+CMGS "60s".
    SMS = 60.0
    # Voice dial (ATD...;): SIM800 manual V1.09 §2.2.3 ATD "Max Response Time 20s (voice
    # call)"; with AT+COLP=0 (default) the OK comes as soon as dialling is done.
    DIAL = 20.0
    # USSD (AT+CUSD=1,...): some modems hold the final result until the network answers
    # (Telit GM862 AT reference rev. 5, +CUSD note); manuals give no figure, so 90 s is our
    # bound: longer than the 60 s an operator's USSD menu commonly keeps a session open.
    USSD = 90.0

    @property
    def seconds(self) -> float:
        return float(self.value)
