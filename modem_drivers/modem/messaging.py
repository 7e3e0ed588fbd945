"""SMS on a modem: send (PDU mode, concatenated parts), and pick up what the SIM stores.

Incoming messages and status reports are stored on the SIM and announced (+CMTI/+CDSI),
or delivered directly (+CMT/+CDS); a stored one is read and then deleted, so it survives
a missed URC or a restart until it is read. Rules that keep an SMS from ever being lost:
a message PDU that cannot be decoded is reported raw; a malformed index
(``+CMTI: "SM",-1``) is logged and dropped; a read that times out is replaced by sweeps
of the whole storage (``SWEEP_RETRY_DELAYS``) until one succeeds.
"""
from __future__ import annotations

import asyncio
import time
from typing import Final

from common.phone import mask

from .. import sms as smsmod
from ..at import AtTimeout, CmsError, TimeoutClass, Urc
from ..dialects import standard as std
from ..errors import SmsFailed
from ..types import SmsReceived, SmsSubmission, SmsUndecodable, StatusReportReceived
from .core import BACKLOG_MAX, ModemCore, logger, translate

#: When reading a stored message timed out, the storage is swept after these delays
#: (seconds) until one sweep succeeds: the message stays on the SIM meanwhile.
SWEEP_RETRY_DELAYS: Final = (2.0, 5.0, 15.0, 60.0)
#: 27.005 §3.2.5: +CMS ERROR 321, invalid memory index — a sweep already took the message.
INVALID_INDEX: Final = 321


class Messaging(ModemCore):
    """Send SMS; read, deliver and delete stored and direct messages and status reports."""

    async def send_sms(self, to: str, text: str, *, report: bool = False, pid: int = 0, reference: int = 0) -> SmsSubmission:
        self._require_sim()
        parts = smsmod.encode_submit(to, text, report=report, reference=reference, pid=pid)
        refs: list[int] = []
        for part in parts:
            try:
                r = await self.port.command_with_prompt(
                    f"AT+CMGS={part.tpdu_length}", part.pdu, expect="+CMGS", timeout_class=TimeoutClass.SMS
                )
            except CmsError as exc:
                new = translate(exc)
                if new is exc:
                    raise SmsFailed(f"the modem refused part {part.part}/{part.parts}: {exc}") from exc
                raise new from exc
            refs.append(std.read_cmgs(r.lines))
        logger.info("%s: SMS to %s sent in %d part(s)", self.name, mask(to), len(parts))
        return SmsSubmission(to, len(parts), tuple(refs))

    async def _read_stored(self, mem: str, index: int, *, report: bool) -> None:
        async with self._storage_lock:
            switched = False
            try:
                if mem.upper() != "SM" or report:
                    await self._cmd(f'AT+CPMS="{mem}"')
                    switched = True
                try:
                    r = await self._cmd(f"AT+CMGR={index}", expect="+CMGR")
                except CmsError as exc:
                    if exc.code == INVALID_INDEX:
                        logger.debug("%s: %s slot %d already read", self.name, mem, index)
                        return
                    raise
                pdu = std.read_cmgr(r.lines)
                if not pdu:
                    self._keep_unread(mem, index, r.lines)
                    return
                self._deliver_pdu(pdu)
                await self._try(f"AT+CMGD={index}")
            finally:
                if switched:
                    await self._try('AT+CPMS="SM"')

    def _keep_unread(self, mem: str, index: int, lines: tuple[str, ...]) -> None:
        """A +CMGR answer without its PDU line (an empty slot, ``+CMGR: 0,,0`` on Siemens
        MC35 as Gammu's AT driver notes, or a modem that sent only the header): nothing was
        read, so the slot is kept — a later sweep (AT+CMGL) picks up what is in it. Logged
        once per slot."""
        key = (mem, index)
        if key in self._kept_slots:
            return
        if len(self._kept_slots) >= BACKLOG_MAX:
            self._kept_slots.clear()  # bounded memory; at worst a slot is logged again
        self._kept_slots.add(key)
        logger.warning("%s: %s slot %d answered without a message (%r); slot kept, not deleted",
                       self.name, mem, index, lines[0][:40] if lines else "no lines")

    async def _read_or_sweep(self, mem: str, index: int, *, report: bool) -> None:
        """Read a stored message; if the modem is too slow to answer (an overloaded bank),
        sweep its storage later instead, so the message is still picked up."""
        try:
            await self._read_stored(mem, index, report=report)
            return
        except AtTimeout as exc:
            logger.warning("%s: reading %s %d timed out (%s); sweeping storage later", self.name, mem, index, exc)
        for delay in SWEEP_RETRY_DELAYS:
            await asyncio.sleep(delay)
            try:
                await self.sweep_storage()
                return
            except AtTimeout:
                continue

    def _deliver_pdu(self, pdu: str) -> None:
        decoded = smsmod.decode(pdu)
        if isinstance(decoded, smsmod.StatusReport):
            self._emit(StatusReportReceived(decoded))
        elif isinstance(decoded, smsmod.IncomingSms):
            whole = self._reassembler.add(decoded, time.monotonic())
            if whole is not None:
                self._emit(SmsReceived(whole))
        else:
            self._emit(SmsUndecodable(decoded))

    async def sweep_storage(self) -> int:
        """Read and delete every message stored on the SIM: status reports that reached
        it while another slot was active, SMS that arrived while nobody listened (a
        restart), anything whose URC was lost. Returns how many were found."""
        found = 0
        async with self._storage_lock:
            for mem in ("SR", "SM"):
                if await self._try(f'AT+CPMS="{mem}"') is None:
                    continue
                listed = await self._try_read(std.LIST_STORED, timeout_class=TimeoutClass.SIM) or []
                for _, pdu in listed:
                    self._deliver_pdu(pdu)
                    found += 1
                for index, _ in listed:
                    await self._try(f"AT+CMGD={index}")
            await self._try('AT+CPMS="SM"')
        if found:
            logger.info("%s: %d stored message(s) picked up from the SIM", self.name, found)
        return found

    def _urc_stored(self, urc: Urc) -> None:
        """+CMTI (an SMS) / +CDSI (a status report) stored at <index>: read it. Without a
        named storage (absent or a number) the message is read where the modem stores
        it now: the storage this driver selects ("SM"), "SR" for a status report."""
        report = urc.name == "+CDSI"
        indication = std.read_stored_indication(urc.text)
        if indication is None:
            logger.warning("%s: malformed URC dropped: %r", self.name, urc.text[:80])
            return
        named, index = indication
        mem = (named or ("SR" if report else "SM")).upper()
        what = "reading status report" if report else "reading stored SMS"
        self._spawn(self._read_or_sweep(mem, index, report=report), what)

    def _urc_pdu(self, urc: Urc) -> None:
        if not urc.pdu:
            logger.warning("%s: %s without its PDU line dropped", self.name, urc.name)
            return
        self._deliver_pdu(urc.pdu)
