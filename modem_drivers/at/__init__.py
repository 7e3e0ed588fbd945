"""The AT layer: a sans-I/O parser (``protocol``) and an asyncio port (``port``).

Public surface, re-exported here; the submodules hold one job each: ``events`` (what the
parser emits), ``tables`` (finals, URC prefixes, limits as data), ``protocol`` (the
parser), ``errors`` (typed exceptions, 27.007/27.005 code tables), ``response``,
``timeouts`` (timeout classes with their sources), ``transport`` (fd in the loop),
``port`` (one command in flight, URC fan-out, reopen after loss).
"""

from .errors import (
    AtError,
    AtProtocolError,
    AtTimeout,
    CmeError,
    CmsError,
    CommandFailed,
    PortClosed,
    PortUnavailable,
)
from .events import NEED_DATA, Event, Final, FinalKind, InfoLine, NeedData, Prompt, Urc
from .port import AtPort, PortState, default_expect
from .protocol import AtParser, parser_cost_per_line
from .response import Response
from .tables import MAX_LINE_BYTES
from .timeouts import TimeoutClass

__all__ = [
    "MAX_LINE_BYTES",
    "NEED_DATA",
    "AtError",
    "AtParser",
    "AtPort",
    "AtProtocolError",
    "AtTimeout",
    "CmeError",
    "CmsError",
    "CommandFailed",
    "Event",
    "Final",
    "FinalKind",
    "InfoLine",
    "NeedData",
    "PortClosed",
    "PortState",
    "PortUnavailable",
    "Prompt",
    "Response",
    "TimeoutClass",
    "Urc",
    "default_expect",
    "parser_cost_per_line",
]
