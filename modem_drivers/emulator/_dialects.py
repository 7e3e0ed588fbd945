"""What differs between vendors, as data (docs/architecture.md, Style 7): one ``Dialect`` row per model.

Every row answers the same questions: how the modem names itself, which vendor commands
it knows, how it reports call progress, causes and received DTMF, how it switches SIM
slots and how it wants USSD. The interpreter (``_modem.py``) reads these fields and never
asks which vendor it is. Sources: docs/dialects.md (the driver contract) and the manuals
it cites.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final


class CallReport(enum.Enum):
    """How call progress reaches the host."""

    CLCC = "clcc"  # +CLCC auto-report after AT+CLCC=1 (SIMCom)
    DSCI = "dsci"  # ^DSCI after AT^DSCI=1 (Quectel EC25 manual)
    HUAWEI = "huawei"  # ^ORIG/^CONF/^CONN/^CEND, always on (chan_dongle)
    NONE = "none"  # generic: the host polls AT+CLCC


class CeerStyle(enum.Enum):
    TEXT = "text"  # +CEER: <24.008 cause name>
    LOCATION_CAUSE = "location_cause"  # +CEER: <locationID>,<cause> (Quectel M35 manual)


class UssdCoding(enum.Enum):
    TE_CHARSET = "te"  # the string is in the AT+CSCS character set (27.007 §7.15)
    PACKED_HEX = "packed"  # Huawei: packed GSM-7 as hex, both ways


@dataclass(frozen=True, slots=True)
class Dialect:
    vendor: str
    manufacturer: str
    model: str
    revision: str
    tac: str  # IMEI type allocation code (8 digits, TS 23.003 §6.2.1); illustrative values
    id_prefix: bool  # +CGMI:/+CGMM:/+CGMR:/+CGSN: prefixes on identification answers
    commands: frozenset[str]  # vendor commands this model knows, on top of the common set
    call_report: CallReport
    voice_call_urcs: bool  # SIM7600: VOICE CALL: BEGIN / VOICE CALL: END: <hhmmss>
    ceer: CeerStyle
    dtmf_urc: str  # format with {digit} and {code} (= ord(digit))
    dtmf_enable: str | None  # command that switches DTMF reports on; None = always on
    slot_command: str | None  # +CSUS / +QDSIM; None = no slot switch
    ussd: UssdCoding
    hangup_commands: frozenset[str]  # commands that release a voice call
    cnmi_ds_supported: frozenset[int]  # CNMI <ds> values accepted (others: +CMS ERROR: 303)
    caret_not_supported: bool  # AT^… answers COMMAND NOT SUPPORT (generic quirk)
    iccid_prefix: str  # before the digits of +CCID / +QCCID answers
    rssi_urc: bool  # Huawei ^RSSI: <rssi> on signal/registration change
    tts: str | None = None  # text-to-speech command (+CTTS / +QTTS); None = no TTS
    tts_path: str | None = None  # command that routes TTS to the far end; None = always there
    #: Command that tells the SIM's PIN/PUK tries left (docs/dialects.md "PIN tries"):
    #: +SPIC (SIMCom), +QPINC (Quectel), ^CPIN (Huawei), +CPINR (27.007 §8.65, generic).
    pin_counter: str = "+CPINR"
    #: Command that puts call audio on the modem's audio port, and so whether the model
    #: has one: ^DDSETEX (Huawei voice dongles, chan_dongle), +CPCMREG (SIM7600 USB audio),
    #: +QPCMV (EC25 USB audio). SIM800 and the generic modem have none.
    audio_setup: str | None = None


_COMMON_HANGUP: Final = frozenset({"H", "+CHUP"})  # ATH (V.250) and AT+CHUP (27.007 §6.5)

_SIMCOM = dict(
    vendor="simcom", manufacturer="SIMCOM_Ltd", id_prefix=False, pin_counter="+SPIC",
    call_report=CallReport.CLCC, ceer=CeerStyle.TEXT, slot_command="+CSUS",
    ussd=UssdCoding.TE_CHARSET, hangup_commands=_COMMON_HANGUP,
    cnmi_ds_supported=frozenset({0, 1, 2}), caret_not_supported=False, rssi_urc=False,
)
_QUECTEL = dict(
    vendor="quectel", manufacturer="Quectel", id_prefix=False,
    commands=frozenset({"+QCCID", "^DSCI", "+QDSIM", "+QTONEDET", "+CSUS", "+QTTS", "+QPINC"}), tts="+QTTS",
    pin_counter="+QPINC",
    call_report=CallReport.DSCI, voice_call_urcs=False, ceer=CeerStyle.LOCATION_CAUSE,
    dtmf_urc="+QTONEDET: {code}", dtmf_enable="+QTONEDET", slot_command="+QDSIM",
    ussd=UssdCoding.TE_CHARSET, hangup_commands=_COMMON_HANGUP,
    cnmi_ds_supported=frozenset({0, 1, 2}), caret_not_supported=False,
    iccid_prefix="+QCCID: ", rssi_urc=False,
)
_HUAWEI = dict(
    vendor="huawei", manufacturer="huawei", id_prefix=False,
    commands=frozenset({"^CVOICE", "^ICCID", "^DTMF", "^CURC", "^DDSETEX", "^CPIN"}), pin_counter="^CPIN",
    call_report=CallReport.HUAWEI, voice_call_urcs=False, ceer=CeerStyle.TEXT,
    dtmf_urc="^DDTMF: {digit}", dtmf_enable=None, slot_command=None,
    ussd=UssdCoding.PACKED_HEX,
    # chan_dongle hangs up with AT+CHUP: on these dongles ATH answers OK but leaves the
    # voice call up. The emulator keeps that quirk (ATH is not in this set).
    hangup_commands=frozenset({"+CHUP"}),
    cnmi_ds_supported=frozenset({0, 1, 2}), caret_not_supported=False,
    iccid_prefix="", rssi_urc=True, audio_setup="^DDSETEX",
)

#: Every model the emulator can be; a vendor name picks its models round-robin.
DIALECTS: Final[dict[str, Dialect]] = {
    "SIMCOM_SIM7600E-H": Dialect(
        **_SIMCOM, model="SIMCOM_SIM7600E-H", revision="LE11B12SIM7600M22", tac="86147503",
        commands=frozenset({"+CCID", "+CSUS", "+DDET", "+CTTS", "+CDTAM", "+SPIC", "+CPCMREG"}), voice_call_urcs=True,
        dtmf_urc="+RXDTMF: {digit}", dtmf_enable=None, iccid_prefix="+CCID: ",
        # SIM7600 manual AT+CDTAM: TTS plays on the local path until set to 1 (remote).
        tts="+CTTS", tts_path="+CDTAM", audio_setup="+CPCMREG",
    ),
    "SIM800": Dialect(
        **_SIMCOM, model="SIM800", revision="Revision:1418B05SIM800L24", tac="86469103",
        commands=frozenset({"+CCID", "+CSUS", "+DDET", "+CTTS", "+SPIC"}), voice_call_urcs=False,
        dtmf_urc="+DTMF: {digit}", dtmf_enable="+DDET", iccid_prefix="", tts="+CTTS",
    ),
    "EC25": Dialect(**{**_QUECTEL, "commands": _QUECTEL["commands"] | {"+QPCMV"}},  # type: ignore[arg-type]
                    model="EC25", revision="EC25EFAR06A06M4G", tac="86167503", audio_setup="+QPCMV"),
    "M35": Dialect(**_QUECTEL, model="M35", revision="M35FAR02A03", tac="86280303"),
    "UC15": Dialect(**_QUECTEL, model="UC15", revision="UC15AR02A01E1G", tac="86210203"),
    "E1550": Dialect(**_HUAWEI, model="E1550", revision="11.608.12.02.21", tac="35414003"),
    "E173": Dialect(**_HUAWEI, model="E173", revision="11.126.85.00.209", tac="86331301"),
    "GSM-27007": Dialect(
        vendor="generic", manufacturer="Emulated Wireless Inc.", model="GSM-27007",
        revision="1.0.0", tac="35999901", id_prefix=True, commands=frozenset({"+CSUS", "+DDET", "+CPINR"}),
        call_report=CallReport.NONE, voice_call_urcs=False, ceer=CeerStyle.TEXT,
        dtmf_urc="+DTMF: {digit}", dtmf_enable="+DDET", slot_command="+CSUS",
        ussd=UssdCoding.TE_CHARSET, hangup_commands=_COMMON_HANGUP,
        # docs/dialects.md, generic quirks: ds=2 refused so the driver falls back to ds=1.
        cnmi_ds_supported=frozenset({0, 1}), caret_not_supported=True,
        iccid_prefix="", rssi_urc=False,
    ),
}

#: Vendor name (CLI --vendors) → its models, assigned round-robin within the vendor.
VENDOR_MODELS: Final[dict[str, tuple[str, ...]]] = {
    "simcom": ("SIMCOM_SIM7600E-H", "SIM800"),
    "quectel": ("EC25", "M35", "UC15"),
    "huawei": ("E1550", "E173"),
    "generic": ("GSM-27007",),
}


def dialect_for(vendor: str, nth: int) -> Dialect:
    """The ``nth`` modem of ``vendor`` (or an exact model name)."""
    if vendor in DIALECTS:
        return DIALECTS[vendor]
    try:
        models = VENDOR_MODELS[vendor]
    except KeyError:
        known = ", ".join([*VENDOR_MODELS, *DIALECTS])
        raise ValueError(f"unknown vendor {vendor!r}; expected one of: {known}") from None
    return DIALECTS[models[nth % len(models)]]
