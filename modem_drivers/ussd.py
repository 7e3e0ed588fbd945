"""USSD strings in the three forms modems use (27.007 §7.15, 23.038 §5).

* ``GSM``: ``AT+CSCS="GSM"``, the string travels as text (most SIMCom/Quectel modems);
* ``UCS2``: ``AT+CSCS="UCS2"``, the string travels as UTF-16BE hex;
* ``PACKED``: Huawei voice dongles want the request as GSM-7 *packed* septets in hex and
  answer in the same form (chan_dongle's behaviour; ``*100#`` is ``AA180C3602``).
"""
from __future__ import annotations

import enum
import re
from typing import Final

from gsmmodem import pdu as gsmpdu

#: DCS 15 = GSM 7-bit default alphabet, language unspecified (23.038 §5).
DCS_GSM7: Final = 15
#: DCS 72 (0x48) = UCS2 (23.038 §5, coding group 01xx with alphabet bits 10).
DCS_UCS2: Final = 72


class UssdForm(enum.Enum):
    GSM = "gsm"
    UCS2 = "ucs2"
    PACKED = "packed"


_HEX = re.compile(r"^[0-9A-Fa-f]+$")


def encode_request(code: str, form: UssdForm) -> str:
    if form is UssdForm.PACKED:
        return gsmpdu.packSeptets(gsmpdu.encodeGsm7(code)).hex().upper()
    if form is UssdForm.UCS2:
        return code.encode("utf-16-be").hex().upper()
    return code


def _is_ucs2_dcs(dcs: int | None) -> bool:
    # 23.038 §5: coding groups 0100-0111 and 1001 carry the alphabet in bits 3-2;
    # group 0001 with value 0x11 is UCS2 preceded by language.
    if dcs is None:
        return False
    if dcs == 0x11:
        return True
    return (dcs & 0xC0) == 0x40 and (dcs & 0x0C) == 0x08 or (dcs & 0xF0) == 0x90 and (dcs & 0x0C) == 0x08


def decode_reply(text: str, dcs: int | None, form: UssdForm) -> str:
    """Turn the string of a ``+CUSD`` reply into text; falls back to the raw string."""
    s = text
    if not s:
        return s
    try:
        if _is_ucs2_dcs(dcs) or form is UssdForm.UCS2:
            if _HEX.match(s) and len(s) % 4 == 0:
                return bytes.fromhex(s).decode("utf-16-be")
            return s
        if form is UssdForm.PACKED and _HEX.match(s) and len(s) % 2 == 0:
            septets = gsmpdu.unpackSeptets(bytearray.fromhex(s))
            out = gsmpdu.decodeGsm7(bytearray(septets))
            # A trailing CR is padding when the septets fill the last octet (23.038 §6.1.2.3.1).
            return out[:-1] if out.endswith("\r") else out
    except (ValueError, UnicodeDecodeError):
        return s
    return s
