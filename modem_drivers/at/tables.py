"""The AT layer's knowledge as data: final result codes, URC prefixes, limits.

Everything the parser decides by looking a line up lives here, so a vendor quirk is a
table row and not an ``if`` in the parser (docs/architecture.md, Style 7). Keys are ``bytes`` because the
parser classifies lines before decoding them; the *key* of a line is the text before its
first ``:`` (``b"+CMTI"`` for ``+CMTI: "SM",3``) or the whole line when it has none
(``b"RING"``, ``b"Call Ready"``).
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Mapping

from .events import FinalKind

__all__ = [
    "ANSWER_WITHOUT_FINAL",
    "CALL_COMMAND_PREFIXES",
    "CALL_PROGRESS_KINDS",
    "MAX_LINE_BYTES",
    "NUMERIC_FINALS",
    "NUMERIC_URCS",
    "PREFIX_FINALS",
    "QUOTED_MULTILINE_PREFIXES",
    "TWO_LINE_URCS",
    "URC_PREFIXES",
    "VERBOSE_FINALS",
]

# Longest line the parser keeps. The longest legitimate lines are the operator list of
# AT+COPS=? (27.007 §7.3: one "(stat,"long","short","numeric",AcT)" group of ~45 chars per
# visible network, a few dozen networks at a border) and a +CUSD answer in UCS2 hex
# (24.080/23.038: 182 characters x 4 hex digits = 728 bytes). 4 KiB holds both with room;
# anything longer is line noise (a baud-rate mismatch or a modem dumping binary) and is
# dropped with a warning instead of growing the buffer without bound.
MAX_LINE_BYTES = 4096

# Verbose final result codes that are a whole line (V.250 §5.7.1 table 1; vendor rows).
VERBOSE_FINALS: Mapping[bytes, FinalKind] = MappingProxyType(
    {
        b"OK": FinalKind.OK,
        b"CONNECT": FinalKind.CONNECT,
        b"ERROR": FinalKind.ERROR,
        b"NO CARRIER": FinalKind.NO_CARRIER,
        b"BUSY": FinalKind.BUSY,
        b"NO ANSWER": FinalKind.NO_ANSWER,
        b"NO DIALTONE": FinalKind.NO_DIALTONE,
        b"NO DIAL TONE": FinalKind.NO_DIALTONE,  # spelling of several SIMCom/Quectel manuals
        # Vendor error finals, taken as plain ERROR:
        b"COMMAND NOT SUPPORT": FinalKind.ERROR,  # Huawei E1550/E173 firmware, unknown AT^...
        b"TOO MANY PARAMETERS": FinalKind.ERROR,  # Huawei E1550/E173 firmware
    }
)

# Final result codes recognised by the key before ":" (27.007 §9.2, 27.005 §3.2.5).
PREFIX_FINALS: Mapping[bytes, FinalKind] = MappingProxyType(
    {
        b"+CME ERROR": FinalKind.CME_ERROR,
        b"+CMS ERROR": FinalKind.CMS_ERROR,
    }
)

# Numeric result codes under ATV0 (V.250 §6.2.6 table 1). Recognised only while a command
# is in flight: a bare digit while idle is just an unknown URC. 5 (CONNECT <rate>) and
# >= 9 are rate-specific connect codes modems for voice never send.
NUMERIC_FINALS: Mapping[bytes, FinalKind] = MappingProxyType(
    {
        b"0": FinalKind.OK,
        b"1": FinalKind.CONNECT,
        b"3": FinalKind.NO_CARRIER,
        b"4": FinalKind.ERROR,
        b"6": FinalKind.NO_DIALTONE,
        b"7": FinalKind.BUSY,
        b"8": FinalKind.NO_ANSWER,
    }
)
# Numeric code 2 is RING (V.250 §6.2.6): unsolicited even mid-command.
NUMERIC_URCS: Mapping[bytes, str] = MappingProxyType({b"2": "RING"})

# NO CARRIER / BUSY / NO ANSWER / NO DIALTONE are final results of the call commands only
# (V.250 §6.3.1 ATD, §6.3.5 ATA, §6.3.7 ATO). During any other command they report a call
# ending under it (27.007 §6.x: a voice call set up with "ATD...;" returns OK at once and
# its end comes later, unsolicited), so they are URCs there and the command keeps waiting
# for its own OK.
CALL_PROGRESS_KINDS = frozenset(
    {FinalKind.NO_CARRIER, FinalKind.BUSY, FinalKind.NO_ANSWER, FinalKind.NO_DIALTONE}
)
CALL_COMMAND_PREFIXES: tuple[str, ...] = ("ATD", "ATA", "ATO")

# Unsolicited result codes, key -> reported name. Lines matching these are URCs even
# while a command is in flight, unless the command expects that prefix. A ``+``/``^`` line
# that is neither expected nor in this table is a URC as well (protocol.py), so this table
# matters for the vendor URCs without a sigil and for the names that must be exact.
URC_PREFIXES: Mapping[bytes, str] = MappingProxyType(
    {
        key.encode(): key
        for key in (
            # 27.005 §3.4.1 new message / status report / cell broadcast indications
            "+CMTI", "+CMT", "+CDS", "+CDSI", "+CBM", "+CBMI",
            # 27.007 §7.2, §10.1.20, §10.1.22 registration
            "+CREG", "+CGREG", "+CEREG", "+C5GREG",
            # 27.007 §7.18, §6.11, §7.15, §7.30 calls, USSD, time zone
            "+CLIP", "RING", "+CRING", "+CCWA", "+CUSD", "+CLCC", "+CSSI", "+CSSU",
            "+CTZV", "+CTZE", "+CIEV", "+CPIN", "+CGEV", "+CUSATP", "+CUSATEND",
            # call ends reported while idle (V.250 finals of an ATD that returned earlier)
            "NO CARRIER", "BUSY", "NO ANSWER", "NO DIALTONE",
            # Huawei E1550/E173 (chan_dongle at_response.c)
            "^DSCI", "^ORIG", "^CONF", "^CONN", "^CEND", "^RSSI", "^BOOT", "^MODE",
            "^SRVST", "^DDTMF", "^SIMST", "^HCSQ", "^SYSSTART", "^STIN", "^NDISSTAT",
            # SIMCom SIM800 / SIM7600 manuals; MISSED_CALL: <time> <number> on SIM7600
            # (ModemManager plugins/simtech tests: "MISSED_CALL: 11:01AM 07712345678")
            "+DTMF", "+RXDTMF", "VOICE CALL", "MISSED_CALL", "Call Ready", "SMS Ready", "RDY",
            "PB DONE", "SMS DONE", "+CFUN", "*PSUTTZ", "DST", "+CPSI", "UNDER-VOLTAGE POWER DOWN",
            "UNDER-VOLTAGE WARNNING", "OVER-VOLTAGE POWER DOWN", "NORMAL POWER DOWN",
            # Quectel EC25 / M35 manuals
            "+QTONEDET", "+QIND", "+QUSIM", "POWERED DOWN", "+QSIMSTAT",
        )
    }
)

# URCs whose next line belongs to them (27.005 §3.4.1: +CMT/+CDS/+CBM in PDU mode carry
# the PDU on the following line).
TWO_LINE_URCS = frozenset({b"+CMT", b"+CDS", b"+CBM"})

# Lines whose quoted string may contain CR LF: the line continues until the quote closes
# (27.007 §7.15: the +CUSD <str> is the network's text, menus put line breaks in it).
QUOTED_MULTILINE_PREFIXES = frozenset({b"+CUSD"})

# Commands some modems answer with their information line and no final result code:
# command as sent (upper case) -> prefix of the line that is the whole answer. Wavecom
# M1306B firmware 430e09gm.3 answers AT+CPIN? with "+CPIN: READY" and never "OK"
# (python-gsmmodem issue #19, handled there by taking the +CPIN line at the timeout).
ANSWER_WITHOUT_FINAL: Mapping[str, str] = MappingProxyType({"AT+CPIN?": "+CPIN"})
