"""One async Modem API over every dialect: the composition of the per-concern parts.

``Modem.open(url)`` opens the AT port, identifies the modem, picks its dialect and sets it
up (``lifecycle``); the SIM (``sim``), network registration (``network``), calls and TTS
(``calls``), SMS (``messaging``), USSD (``ussd_session``) and the audio port (``audio``)
are its parts, each a class over the shared state and command primitives of
``core.ModemCore``; unsolicited lines reach them through ``urcs``. ``audio`` wraps
``dial``, the call-change hook and ``close`` with cooperative ``super()`` calls, so it
comes first in the bases. The parts never import one another or this module: they
meet only here, in ``Modem``, and in the URC table below; a part that calls another's
method declares it under ``TYPE_CHECKING`` in its class (no import). Timing constants are
read where they are used (``lifecycle.REINIT_BACKOFF``, ``calls.HANGUP_GRACE``...): patch
them there, not on this package.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, ClassVar, Final

from ..at import Urc
from ..dialects import DIALECTS
from ..types import Playback, PlaybackEnd
from .audio import Audio, CallEndedBeforeAudio
from .calls import CAUSE_URC_GRACE, HANGUP_GRACE, Calls
from .core import BACKLOG_MAX, translate
from .lifecycle import CNMI_CHOICES, Lifecycle
from .messaging import Messaging
from .network import Network
from .sim import Sim
from .urcs import UrcRouting
from .ussd_session import USSD_REPLY_TIMEOUT, Ussd


class Modem(Audio, Lifecycle, Sim, Network, Calls, Messaging, Ussd, UrcRouting):
    """A modem behind one AT port. Create with ``await Modem.open(url)``."""

    URC_HANDLERS: ClassVar[Mapping[str, Callable[[Any, Urc], None]]] = MappingProxyType({
        "+CMTI": Messaging._urc_stored,
        "+CDSI": Messaging._urc_stored,
        "+CMT": Messaging._urc_pdu,
        "+CDS": Messaging._urc_pdu,
        "+CLIP": UrcRouting._urc_ring,
        "+CUSD": Ussd._urc_cusd,
        "+CREG": Network._urc_registration,
        "+CEREG": Network._urc_registration,
        "+CGREG": Network._urc_registration,
        # every dialect's text-to-speech end URC (+CTTS: 0, +QTTS: 0)
        **{d.tts.end_urc: Calls._urc_tts for d in DIALECTS if d.tts is not None},
    })


__all__: Final = [
    "BACKLOG_MAX",
    "CAUSE_URC_GRACE",
    "CNMI_CHOICES",
    "HANGUP_GRACE",
    "USSD_REPLY_TIMEOUT",
    "CallEndedBeforeAudio",
    "Modem",
    "Playback",
    "PlaybackEnd",
    "translate",
]
