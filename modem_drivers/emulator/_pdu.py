"""SMS PDUs the network side needs (3GPP TS 23.040 §9.2.2) and USSD string codecs.

SMS-SUBMIT is decoded by ``gsmmodem.pdu.decodeSmsPdu``; SMS-DELIVER and
SMS-STATUS-REPORT are built here from ``gsmmodem.pdu``'s field codecs (address fields,
semi-octet timestamps, GSM-7 packing, UCS2) — only the TPDU layout is ours.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Final

from gsmmodem.pdu import (
    Concatenation,
    _encodeAddressField,
    _encodeTimestamp,
    decodeGsm7,
    decodeSmsPdu,
    divideTextGsm7,
    divideTextUcs2,
    encodeGsm7,
    encodeUcs2,
    packSeptets,
    unpackSeptets,
)

# First-octet bits (23.040 §9.2.3): TP-MTI in bits 1..0, TP-MMS bit 2, TP-SRR bit 5, TP-UDHI bit 6.
MTI_DELIVER: Final = 0x00
MTI_STATUS_REPORT: Final = 0x02
TP_MMS_NO_MORE: Final = 0x04  # §9.2.3.2: 1 = no more messages waiting in the SC
TP_SRR: Final = 0x20  # §9.2.3.5: status report requested (SMS-SUBMIT)
TP_UDHI: Final = 0x40  # §9.2.3.23: user data starts with a header
DCS_GSM7: Final = 0x00  # 23.038 §4: default alphabet
DCS_UCS2: Final = 0x08  # 23.038 §4: UCS2
GSM7_SINGLE_MAX: Final = 160  # septets in one unconcatenated SMS (23.040 §9.2.3.16)
UCS2_SINGLE_MAX: Final = 70  # characters in one unconcatenated UCS2 SMS (140 octets)


@dataclass(frozen=True, slots=True)
class Submit:
    """One decoded SMS-SUBMIT part."""

    to: str
    text: str
    status_report: bool
    concat_ref: int | None  # concatenation reference (None: single-part message)
    parts: int
    part: int


def decode_submit(pdu_hex: str) -> Submit:
    """Decode what the host wrote after ``> ``; ValueError when it is not an SMS-SUBMIT."""
    try:
        raw = bytes.fromhex(pdu_hex)
        decoded: dict[str, Any] = decodeSmsPdu(bytearray(raw))  # bytes would be read as hex
    except Exception as exc:  # the codec raises assorted errors on junk
        raise ValueError(f"undecodable PDU: {exc}") from None
    if decoded.get("type") != "SMS-SUBMIT":
        raise ValueError(f"not an SMS-SUBMIT: {decoded.get('type')}")
    first_octet = raw[1 + raw[0]]  # after the SMSC address field (its length octet first)
    ref, parts, part = None, 1, 1
    for ie in decoded.get("udh", []):
        if isinstance(ie, Concatenation):
            ref, parts, part = ie.reference, ie.parts, ie.number
    return Submit(
        to=decoded["number"], text=decoded.get("text", ""),
        status_report=bool(first_octet & TP_SRR), concat_ref=ref, parts=parts, part=part,
    )


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(microsecond=0)


def build_status_report(
    smsc: str, mr: int, recipient: str, status: int, submitted: datetime, done: datetime | None = None
) -> tuple[bytes, int]:
    """SMS-STATUS-REPORT (23.040 §9.2.2.3) with the SC address in front.

    Returns (pdu, tpdu_length): the length the ``+CDS: <len>`` / ``+CMGR`` lines carry
    excludes the SMSC field (27.005 §3.1 <length>).
    """
    sca = _encodeAddressField(smsc, smscField=True)
    tpdu = bytearray([MTI_STATUS_REPORT | TP_MMS_NO_MORE, mr])
    tpdu += _encodeAddressField(recipient)  # TP-RA
    tpdu += _encodeTimestamp(submitted)  # TP-SCTS
    tpdu += _encodeTimestamp(done or _now())  # TP-DT
    tpdu.append(status)  # TP-ST
    return bytes(sca + tpdu), len(tpdu)


def build_deliver(smsc: str, sender: str, text: str, concat_ref: int = 0) -> list[tuple[bytes, int]]:
    """SMS-DELIVER PDU(s) (23.040 §9.2.2.1), concatenated (§9.2.3.24.1) when too long."""
    try:
        encodeGsm7(text)
        dcs, limit, divide = DCS_GSM7, GSM7_SINGLE_MAX, divideTextGsm7
    except (ValueError, TypeError):  # gsmmodem's table maps "ÿ" to an int: TypeError, not GSM-7 either
        dcs, limit, divide = DCS_UCS2, UCS2_SINGLE_MAX, divideTextUcs2
    length = len(encodeGsm7(text)) if dcs == DCS_GSM7 else len(text)
    chunks = [text] if length <= limit else divide(text)
    sca = _encodeAddressField(smsc, smscField=True)
    out: list[tuple[bytes, int]] = []
    for number, chunk in enumerate(chunks, start=1):
        udh = bytearray()
        if len(chunks) > 1:
            ie = Concatenation()
            ie.reference, ie.parts, ie.number = concat_ref % 256, len(chunks), number
            udh = bytearray(ie.encode())
        tpdu = bytearray([MTI_DELIVER | TP_MMS_NO_MORE | (TP_UDHI if udh else 0)])
        tpdu += _encodeAddressField(sender)  # TP-OA
        tpdu += bytes([0x00, dcs])  # TP-PID (plain SME), TP-DCS
        tpdu += _encodeTimestamp(_now())  # TP-SCTS
        if dcs == DCS_GSM7:
            septets = encodeGsm7(chunk)
            if udh:
                header_octets = len(udh) + 1
                fill = (7 - (header_octets * 8) % 7) % 7  # §9.2.3.24: UDH ends on a septet
                udl = len(septets) + (header_octets * 8 + fill) // 7
                # gsmmodem's packSeptets takes the bit offset of the first septet (7 - fill).
                body = packSeptets(septets, padBits=(7 - fill) % 7)
            else:
                udl, body = len(septets), packSeptets(septets)
        else:
            body = encodeUcs2(chunk)
            udl = len(body) + (len(udh) + 1 if udh else 0)
        tpdu.append(udl)
        if udh:
            tpdu.append(len(udh))
            tpdu += udh
        tpdu += body
        out.append((bytes(sca + tpdu), len(tpdu)))
    return out


def ussd_pack(text: str) -> str:
    """Huawei USSD: GSM-7 septets packed (23.038 §6.1.2.2) as upper-case hex."""
    return packSeptets(encodeGsm7(text)).hex().upper()


def ussd_unpack(hex_text: str) -> str:
    septets = unpackSeptets(bytearray.fromhex(hex_text))
    # 23.038 §6.1.2.3.1: a trailing CR (or an all-zero septet) only pads the last octet.
    return decodeGsm7(septets).rstrip("\r@")


def ucs2_hex(text: str) -> str:
    return text.encode("utf-16-be").hex().upper()


def from_ucs2_hex(hex_text: str) -> str:
    return bytes.fromhex(hex_text).decode("utf-16-be")
