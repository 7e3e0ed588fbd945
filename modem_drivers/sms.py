"""SMS in PDU mode: SMS-SUBMIT encoding, SMS-DELIVER and SMS-STATUS-REPORT decoding,
and reassembly of concatenated messages.

The codec is ``gsmmodem.pdu`` from python-gsmmodem-new (GSM-7 with the extension table,
UCS2, concatenation UDH). This module adds what a gateway needs around it:

* a PDU that cannot be decoded is never lost: it becomes an ``UndecodableSms`` with the
  raw hex and the reason, and is reported like any other message;
* the TP-PID of a submission can be set (0x40 = "short message type 0", 23.040
  §9.2.3.9: the handset acknowledges it without showing it — the HLR-style ping);
* status reports are classified by TP-ST into delivered / pending / failed
  (23.040 §9.2.3.15).
"""
from __future__ import annotations

import dataclasses
import enum
import logging
from datetime import datetime
from typing import Final

from gsmmodem import pdu as gsmpdu

logger = logging.getLogger(__name__)

#: TP-PID "short message type 0" (23.040 §9.2.3.9): acknowledged, not shown to the user.
PID_TYPE0: Final = 0x40
#: Reference numbers for concatenation are one octet (23.040 §9.2.3.24.1).
MAX_CONCAT_REFERENCE: Final = 255
#: A concatenated message waits this long for its missing parts before being reported
#: incomplete; 23.040 sets no limit, so this follows common handset practice (minutes).
DEFAULT_REASSEMBLY_TIMEOUT: Final = 600.0


class DeliveryState(enum.Enum):
    DELIVERED = "delivered"
    PENDING = "pending"  # temporary error, the SMSC keeps trying
    FAILED = "failed"  # permanent error, or temporary and the SMSC gave up


@dataclasses.dataclass(frozen=True, slots=True)
class SubmitPart:
    pdu: str  # hex, with the leading SMSC octet
    tpdu_length: int  # what AT+CMGS wants: octets without the SMSC part
    part: int
    parts: int


@dataclasses.dataclass(frozen=True, slots=True)
class IncomingSms:
    sender: str
    text: str
    timestamp: datetime | None
    pdu: str
    concat: tuple[int, int, int] | None = None  # (reference, parts, this part)
    parts_pdu: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True, slots=True)
class StatusReport:
    reference: int
    recipient: str
    status: int
    state: DeliveryState
    discharged: datetime | None
    pdu: str


@dataclasses.dataclass(frozen=True, slots=True)
class UndecodableSms:
    """A PDU we could not decode, kept whole with the reason."""

    pdu: str
    reason: str


Decoded = IncomingSms | StatusReport | UndecodableSms


def delivery_state(status: int) -> DeliveryState:
    """TP-ST (23.040 §9.2.3.15): 0x00–0x1F done, 0x20–0x3F temporary (still trying),
    0x40–0x5F permanent, 0x60–0x7F temporary but the SMSC stopped trying."""
    if status < 0x20:
        return DeliveryState.DELIVERED
    if status < 0x40:
        return DeliveryState.PENDING
    return DeliveryState.FAILED


def encode_submit(
    to: str,
    text: str,
    *,
    report: bool = False,
    reference: int = 0,
    pid: int = 0x00,
) -> list[SubmitPart]:
    """Encode ``text`` (any length, any alphabet) as one or more SMS-SUBMIT PDUs."""
    if not text:
        raise ValueError("empty SMS text")
    pdus = gsmpdu.encodeSmsSubmitPdu(
        to, text, reference=reference % (MAX_CONCAT_REFERENCE + 1), requestStatusReport=report
    )
    parts: list[SubmitPart] = []
    for i, p in enumerate(pdus, start=1):
        data = bytearray(p.data)
        if pid:
            _set_pid(data, pid)
        parts.append(SubmitPart(data.hex().upper(), p.tpduLength, i, len(pdus)))
    return parts


def _set_pid(data: bytearray, pid: int) -> None:
    # Layout: SMSC-len, [SMSC], first octet, MR, DA-len (digits), DA-TOA, DA, PID, ...
    i = 1 + data[0]
    i += 2  # first octet, message reference
    digits = data[i]
    i += 2 + (digits + 1) // 2
    data[i] = pid


def decode(pdu_hex: str) -> Decoded:
    """Decode an SMS-DELIVER or SMS-STATUS-REPORT; never raises."""
    pdu_hex = pdu_hex.strip()
    try:
        d = gsmpdu.decodeSmsPdu(pdu_hex)
    except Exception as exc:  # the library raises several types on bad input
        reason = f"{type(exc).__name__}: {exc}".strip()
        logger.warning("undecodable SMS PDU kept raw: %s (%d hex chars)", reason, len(pdu_hex))
        return UndecodableSms(pdu_hex, reason or "undecodable PDU")
    kind = d.get("type")
    if kind == "SMS-STATUS-REPORT":
        status = int(d.get("status", 0xFF))
        return StatusReport(
            reference=int(d["reference"]),
            recipient=str(d.get("number") or ""),
            status=status,
            state=delivery_state(status),
            discharged=d.get("discharge"),
            pdu=pdu_hex,
        )
    if kind == "SMS-DELIVER":
        concat = None
        for ie in d.get("udh", []) or []:
            if isinstance(ie, gsmpdu.Concatenation):
                concat = (int(ie.reference), int(ie.parts), int(ie.number))
        return IncomingSms(
            sender=str(d.get("number") or ""),
            text=str(d.get("text") or ""),
            timestamp=d.get("time"),
            pdu=pdu_hex,
            concat=concat,
            parts_pdu=(pdu_hex,),
        )
    return UndecodableSms(pdu_hex, f"unexpected PDU type {kind!r} for a received message")


class Reassembler:
    """Joins the parts of concatenated messages (keyed by sender and reference)."""

    def __init__(self, timeout: float = DEFAULT_REASSEMBLY_TIMEOUT) -> None:
        self.timeout = timeout
        self._pending: dict[tuple[str, int, int], tuple[float, dict[int, IncomingSms]]] = {}

    def add(self, sms: IncomingSms, now: float) -> IncomingSms | None:
        if sms.concat is None or sms.concat[1] <= 1:
            return sms
        ref, total, seq = sms.concat
        key = (sms.sender, ref, total)
        started, parts = self._pending.setdefault(key, (now, {}))
        parts[seq] = sms
        if len(parts) < total:
            return None
        del self._pending[key]
        ordered = [parts[i] for i in sorted(parts)]
        return dataclasses.replace(
            ordered[0],
            text="".join(p.text for p in ordered),
            concat=None,
            parts_pdu=tuple(p.pdu for p in ordered),
        )

    def expire(self, now: float) -> list[IncomingSms]:
        """Messages whose missing parts never came: reported with what arrived."""
        out = []
        for key, (started, parts) in list(self._pending.items()):
            if now - started >= self.timeout:
                del self._pending[key]
                ordered = [parts[i] for i in sorted(parts)]
                out.append(
                    dataclasses.replace(
                        ordered[0],
                        text="".join(p.text for p in ordered),
                        parts_pdu=tuple(p.pdu for p in ordered),
                    )
                )
        return out
