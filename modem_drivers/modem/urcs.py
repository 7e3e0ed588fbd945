"""URC routing: every unsolicited line to the part of the modem that handles it.

Call-progress and DTMF URCs are looked up in the dialect's rows (one dict lookup each, the
per-line path); the rest in ``URC_HANDLERS``, which the composed ``Modem`` fills from its
parts. A handler that fails is logged and the line dropped: one bad line never takes a
modem offline.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, ClassVar

from ..at import Urc
from ..dialects import CallUrc
from ..dialects import standard as std
from ..types import DtmfReceived, IncomingCall
from .core import ModemCore, logger


class UrcRouting(ModemCore):
    """Dispatch of the port's URCs; ``+CLIP`` (an incoming call) handled here."""

    #: URC name -> handler (an unbound method of the composed Modem).
    URC_HANDLERS: ClassVar[Mapping[str, Callable[[Any, Urc], None]]] = MappingProxyType({})

    if TYPE_CHECKING:  # provided by the calls part of the composed Modem
        def _on_call_urc(self, cu: CallUrc, text: str) -> None: ...

    def _on_urc(self, urc: Urc) -> None:
        try:
            self._handle_urc(urc)
        except Exception:
            logger.exception("%s: URC %r dropped after an error", self.name, urc.text[:80])

    def _handle_urc(self, urc: Urc) -> None:
        name, text = urc.name, urc.text
        cu = self._call_urcs.get(name)
        if cu is not None:
            self._on_call_urc(cu, text)
            return
        parse = self._dtmf_urcs.get(name)
        if parse is not None:
            digit = parse(text)
            if digit:
                self._emit(DtmfReceived(digit))
            return
        handler = self.URC_HANDLERS.get(name)
        if handler is not None:
            handler(self, urc)
        else:
            logger.debug("%s: unhandled URC %s", self.name, text[:80])

    def _urc_ring(self, urc: Urc) -> None:
        if urc.name == "+CLIP":
            self._emit(IncomingCall(std.read_clip(urc.text)))
