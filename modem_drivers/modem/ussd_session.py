"""USSD on a modem: one session at a time, the request sent and its +CUSD reply awaited.

The reply comes as a +CUSD URC after the command's OK, so the waiter is set before the
command is written; a +CUSD nobody waits for (a network push) is logged.
"""
from __future__ import annotations

import asyncio
import re
from typing import Final

from ..at import CommandFailed, TimeoutClass, Urc
from ..dialects import standard as std
from ..errors import UssdFailed
from ..types import UssdReply
from ..ussd import decode_reply, encode_request
from .core import ModemCore, logger

#: A USSD reply arrives as a +CUSD URC after OK; networks answer within seconds, the
#: 27.007 session timer is network-defined; 30 s matches common modem defaults.
USSD_REPLY_TIMEOUT: Final = 30.0
#: +CUSD <m> 4: "operation not supported" (27.007 §7.15).
NOT_SUPPORTED: Final = 4


class Ussd(ModemCore):
    """Send a USSD code and wait for the network's reply."""

    async def ussd(self, code: str, *, timeout: float = USSD_REPLY_TIMEOUT) -> UssdReply:
        self._require_sim()
        if not re.fullmatch(r"[0-9*#]{1,160}", code):
            raise ValueError(f"not a USSD code: {code!r} (digits, * and #)")
        loop = asyncio.get_running_loop()
        if self._ussd_waiter is not None and not self._ussd_waiter.done():
            raise UssdFailed("a USSD session is already open on this modem")
        self._ussd_waiter = loop.create_future()
        form = self.dialect.ussd_form
        try:
            await self._cmd(f'AT+CUSD=1,"{encode_request(code, form)}",15', timeout_class=TimeoutClass.USSD)
            async with asyncio.timeout(timeout):
                reply = await self._ussd_waiter
        except TimeoutError:
            raise UssdFailed(f"no USSD reply within {timeout:g} s") from None
        except CommandFailed as exc:
            raise UssdFailed(f"the modem refused the USSD request: {exc}") from exc
        finally:
            self._ussd_waiter = None
        if reply.status == NOT_SUPPORTED:
            raise UssdFailed("the network does not support this USSD code")
        return reply

    def _urc_cusd(self, urc: Urc) -> None:
        parsed = std.read_cusd(urc.text)
        if parsed is None:
            logger.warning("%s: malformed +CUSD dropped: %r", self.name, urc.text[:80])
            return
        status, raw, dcs = parsed
        text = decode_reply(raw, dcs, self.dialect.ussd_form)
        reply = UssdReply(status, text, dcs)
        if self._ussd_waiter is not None and not self._ussd_waiter.done():
            self._ussd_waiter.set_result(reply)
        else:
            logger.info("%s: unsolicited USSD: %s", self.name, text[:80])
