"""The four dialects as table rows. Sources per row: 3GPP TS 27.007/27.005; SIMCom SIM800
Series AT Command Manual V1.09 and SIM7500/SIM7600 Series AT Command Manual V3.00; Quectel
EC2x and M35 AT Commands Manuals; Huawei E1550/E173 voice behaviour as documented by
chan_dongle. See docs/dialects.md for the full exchange of each feature.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from ..q850 import cause_from_text
from ..ussd import UssdForm
from .base import (
    AudioMoment,
    AudioSetup,
    CallUrc,
    Cmd,
    Dialect,
    Query,
    Tts,
    parse_dtmf_ascii,
    parse_dtmf_digit,
)
from .pin_counters import parse_cpinr, parse_huawei_cpin, parse_qpinc, parse_spic
from .progress import (
    parse_clcc,
    parse_dsci,
    parse_huawei,
    parse_release_final,
    parse_voice_call,
)


# -- readers of the rows' answers (lines -> value), each beside the rows that use it ---------
def _body(line: str) -> str:
    return line.split(":", 1)[1].strip() if ":" in line else line.strip()


def _fields(line: str) -> list[str]:
    return [f.strip().strip('"') for f in _body(line).split(",")]


def _ceer_text(lines: Sequence[str]) -> int | None:
    """``+CEER: <text>`` (27.007 §6.10; SIM800 manual): the cause named in words."""
    if not lines:
        return None
    text = lines[0]
    body = text.split(":", 1)[1] if ":" in text else text
    return cause_from_text(body)


def _ceer_quectel(lines: Sequence[str]) -> int | None:
    """``+CEER: <locationID>,<cause>`` (Quectel M35 manual): the cause is the last field."""
    if not lines:
        return None
    text = lines[0]
    body = text.split(":", 1)[1] if ":" in text else text
    parts = [p.strip().strip('"') for p in body.split(",")]
    if parts and parts[-1].isdecimal():
        return int(parts[-1])
    return cause_from_text(body)


def _iccid_field(lines: Sequence[str]) -> str:
    """The ICCID's digits: the last field of the first answer line that has one (bare
    digits on the SIM800, ``+CCID:``/``+QCCID:``/``^ICCID:`` prefixed elsewhere)."""
    raw = ""
    for line in lines:
        raw = _fields(line)[-1]
        if raw:
            break
    return raw


def _unswap(raw: str) -> str:
    """EF_ICCID's BCD with its nibbles swapped per byte (51.011 §10.1.1) as digits."""
    return "".join(raw[i + 1 : i + 2] + raw[i : i + 1] for i in range(0, len(raw), 2))


def _iccid_plain(lines: Sequence[str]) -> str | None:
    return _iccid_field(lines).rstrip("Ff") or None


def _iccid_swapped(lines: Sequence[str]) -> str | None:
    """Huawei ``^ICCID: "<swapped>"``: EF_ICCID's bytes as the SIM stores them."""
    return _unswap(_iccid_field(lines)).rstrip("Ff") or None


def _iccid_crsm(lines: Sequence[str]) -> str | None:
    """``+CRSM: <sw1>,<sw2>,"<response>"`` (27.007 §8.18): the READ BINARY's data when
    <sw1> says it succeeded (144 = 0x90 normal ending; 145 = 0x91, 51.011 §9.4.1)."""
    f = _fields(lines[0]) if lines else []
    if len(f) < 3 or f[0] not in ("144", "145"):
        return None
    return _unswap(f[2]).rstrip("Ff") or None


def _slot_number(lines: Sequence[str]) -> int | None:
    """``+CSUS: <slot>`` (27.007 §8.66) / ``+QDSIM: <slot>`` (EC2x): the first number."""
    for line in lines:
        value = _fields(line)[0] if ":" in line else ""
        if value.isdecimal():
            return int(value)
    return None


# Release finals are reported by every dialect (after ATD returned OK).
_RELEASE_FINALS: Final = tuple(CallUrc(p, parse_release_final) for p in ("NO CARRIER", "BUSY", "NO ANSWER"))

#: Commands every dialect sends once the SIM is ready (27.005/27.007).
_COMMON_INIT: Final = (
    Cmd("AT+CMGF=0", doc="PDU mode (27.005 §3.2.3): the only mode that carries UCS2, UDH and status reports"),
    Cmd('AT+CSCS="GSM"', optional=True, doc="USSD strings as text (27.007 §5.5)"),
    Cmd("AT+CLIP=1", optional=True, doc="caller number with RING (27.007 §7.6) for callbacks"),
    Cmd("AT+CREG=2", optional=True, doc="registration URCs with LAC/CI (27.007 §7.2)"),
    # LTE modems report E-UTRAN registration only here (an LTE-only network leaves +CREG
    # unregistered); 2G/3G modems answer ERROR, which is tolerated (docs/dialects.md).
    Cmd("AT+CEREG=2", optional=True, doc="EPS (LTE) registration URCs with TAC/CI (27.007 §10.1.22)"),
    Cmd("AT+CGREG=2", optional=True, doc="GPRS registration URCs with LAC/CI (27.007 §10.1.20)"),
)

GENERIC: Final = Dialect(
    name="generic",
    matches=((".*", ".*"),),
    init=_COMMON_INIT,
    iccid=Query(Cmd("AT+CRSM=176,12258,0,0,10", expect="+CRSM",
                    doc="READ BINARY of EF_ICCID 2FE2 (27.007 §8.18, 51.011 §10.1.1)"), _iccid_crsm),
    call_progress_on=Cmd("AT+CLCC=1", optional=True, doc="auto-report call list; not in 27.007, widespread"),
    call_urcs=(CallUrc("+CLCC", parse_clcc),) + _RELEASE_FINALS,
    hangup="ATH",
    dtmf_send='AT+VTS="{digit}"',
    dtmf_urcs=(),
    dtmf_receive_on=None,
    ceer=Query(Cmd("AT+CEER", expect="+CEER", optional=True, doc="extended error report (27.007 §6.10)"), _ceer_text),
    ussd_form=UssdForm.GSM,
    slot_switch="AT+CSUS={slot}",
    slot_query=Query(Cmd("AT+CSUS?", expect="+CSUS", optional=True, doc="27.007 §8.66"), _slot_number),
    reset="AT+CFUN=1,1",
    pin_counter=Query(
        Cmd("AT+CPINR", expect="+CPINR", doc="27.007 §8.65: +CPINR: <code>,<retries>,<default_retries> per code"),
        parse_cpinr,
    ),
)

SIMCOM: Final = Dialect(
    name="simcom",
    matches=(("simcom", ".*"), (".*", r"^SIM(800|900|5[0-9]{3}|7[0-9]{3})")),
    init=_COMMON_INIT,
    iccid=Query(Cmd("AT+CCID", doc="SIM800 manual AT+CCID: bare digits; SIM7600 adds +CCID:"), _iccid_plain),
    call_progress_on=Cmd("AT+CLCC=1", doc="SIM800/SIM7600 manual: +CLCC URC at each call change"),
    call_urcs=(
        CallUrc("+CLCC", parse_clcc),
        CallUrc("VOICE CALL", parse_voice_call),
    )
    + _RELEASE_FINALS,
    hangup="ATH",
    dtmf_send='AT+VTS="{digit}"',
    dtmf_urcs=(("+DTMF", parse_dtmf_digit), ("+RXDTMF", parse_dtmf_digit)),
    dtmf_receive_on=Cmd("AT+DDET=1", optional=True, doc="SIM800 manual: DTMF detection, +DTMF URC"),
    ceer=Query(Cmd("AT+CEER", expect="+CEER", optional=True, doc="SIM800 manual: +CEER: <text>"), _ceer_text),
    ussd_form=UssdForm.GSM,
    slot_switch="AT+CSUS={slot}",
    slot_query=Query(Cmd("AT+CSUS?", expect="+CSUS", optional=True), _slot_number),
    reset="AT+CFUN=1,1",
    # SIM7500/SIM7600 Series AT Command Manual, "AT+CTTS TTS operation": <mode> 0 stops,
    # 1 takes <text> as UCS2 hex, 2 as ASCII (GBK for Chinese); OK comes at once and the
    # URC +CTTS: 0 when playback is over (also after AT+CTTS=0). The TTS variants of the
    # SIM800 (SIM800H/C) take the same command; they have no AT+CDTAM (ERROR, tolerated).
    tts=Tts(
        command="AT+CTTS", ascii_mode=2, ucs2_mode=1, stop="AT+CTTS=0", end_urc="+CTTS",
        setup=Cmd("AT+CDTAM=1", optional=True,
                  doc='SIM7600 manual "AT+CDTAM TTS play path": 1 = remote path (the far end hears it)'),
        doc="SIM7600 manual AT+CTTS",
    ),
    pin_counter=Query(
        Cmd("AT+SPIC", expect="+SPIC", doc="SIM800/SIM7600 manuals AT+SPIC: +SPIC: <pin1>,<puk1>,<pin2>,<puk2>"),
        parse_spic,
    ),
    # SIM7500/SIM7600 Series AT Command Manual, "AT+CPCMREG Control PCM data transfer by
    # diagnostics port": 1 starts the call's PCM (8 kHz, 16 bit, mono; AT+CPCMFRM selects
    # 16 kHz) on the USB audio interface, and only while a call is up, so it is sent again
    # after each connect (the SIM7600 drops it at each release). Seen the same way in
    # asterisk-chan-quectel's SIM7600 support. The SIM800 has no USB audio: no port.
    audio=AudioSetup(
        step=Cmd("AT+CPCMREG=1", doc="SIM7600 manual AT+CPCMREG: call PCM on the USB audio port"),
        moment=AudioMoment.AFTER_CONNECT,
        models=r"SIM7[5-9]\d\d",
        port="USB interface 4 (the 5th ttyUSB of the module, ttyUSB4 after a fresh boot)",
    ),
)

QUECTEL: Final = Dialect(
    name="quectel",
    matches=(("quectel", ".*"), (".*", r"^(EC2\d|EG\d\d|M35|M95|UC15|UC20|BG\d\d)")),
    init=_COMMON_INIT,
    iccid=Query(Cmd("AT+QCCID", expect="+QCCID", doc="EC25 manual AT+QCCID"), _iccid_plain),
    call_progress_on=Cmd("AT^DSCI=1", doc="EC25 manual: ^DSCI call status indication"),
    call_urcs=(CallUrc("^DSCI", parse_dsci),) + _RELEASE_FINALS,
    hangup="ATH",
    dtmf_send='AT+VTS="{digit}"',
    dtmf_urcs=(("+QTONEDET", parse_dtmf_ascii),),
    dtmf_receive_on=Cmd("AT+QTONEDET=1", optional=True, doc="EC25 manual: DTMF detection"),
    ceer=Query(Cmd("AT+CEER", expect="+CEER", optional=True, doc="M35 manual: +CEER: <locationID>,<cause>"),
               _ceer_quectel),
    ussd_form=UssdForm.GSM,
    slot_switch="AT+QDSIM={slot}",
    slot_query=Query(Cmd("AT+QDSIM?", expect="+QDSIM", optional=True, doc="EC2x dual SIM single standby"),
                     _slot_number),
    reset="AT+CFUN=1,1",
    # Quectel EC2x TTS application note / AT commands manual, "AT+QTTS Play Text":
    # <mode> 0 stops, 1 takes UCS2 hex, 2 ASCII (GBK for Chinese); OK, then the URC
    # +QTTS: 0 when playback is over. During a call the text is played to the far end.
    tts=Tts(command="AT+QTTS", ascii_mode=2, ucs2_mode=1, stop="AT+QTTS=0", end_urc="+QTTS",
            doc="EC2x manual AT+QTTS"),
    pin_counter=Query(
        Cmd("AT+QPINC?", expect="+QPINC", doc='EC2x/M35 manuals AT+QPINC: +QPINC: "SC",<pin>,<puk> and "P2",…'),
        parse_qpinc,
    ),
    # Quectel EC2x "Voice over USB and UAC" application note / EC25 AT commands manual,
    # "AT+QPCMV Enable/Disable Voice over USB": AT+QPCMV=1,0 carries the call's voice as
    # 8 kHz 16-bit mono PCM on the USB serial port otherwise used for NMEA (1,2 = UAC sound
    # card instead). It must be on before the call is set up, and is re-sent before each
    # dial: the modules lose the voice path after a few calls otherwise (issue 14;
    # asterisk-chan-quectel does the same and turns NMEA off that port,
    # AT+QGPSCFG="outport","none"). M35/UC15 have no voice over USB: no port.
    audio=AudioSetup(
        step=Cmd("AT+QPCMV=1,0", doc="EC2x manual AT+QPCMV: voice over USB on the NMEA port"),
        moment=AudioMoment.BEFORE_DIAL,
        models=r"^(EC2\d|EG\d\d)",
        port="USB interface 1, the NMEA tty (ttyUSB1)",
    ),
)

HUAWEI: Final = Dialect(
    name="huawei",
    matches=(("huawei", ".*"), (".*", r"^(E1550|E173|E1752|E169|E155X|K3715)")),
    init=(Cmd("AT^CVOICE=0", optional=True, doc="voice on the audio port (chan_dongle)"),) + _COMMON_INIT,
    iccid=Query(Cmd("AT^ICCID?", expect="^ICCID", doc="Huawei ^ICCID: nibble-swapped like EF_ICCID"), _iccid_swapped),
    call_progress_on=None,  # ^ORIG/^CONF/^CONN/^CEND are always on
    call_urcs=(
        CallUrc("^ORIG", parse_huawei),
        CallUrc("^CONF", parse_huawei),
        CallUrc("^CONN", parse_huawei),
        CallUrc("^CEND", parse_huawei, cause_is_final=True),
    )
    + _RELEASE_FINALS,
    hangup="AT+CHUP",
    dtmf_send="AT^DTMF={call},{digit}",
    dtmf_urcs=(("^DDTMF", parse_dtmf_digit),),
    dtmf_receive_on=None,
    ceer=None,  # ^CEND carries the cause
    ussd_form=UssdForm.PACKED,
    slot_switch=None,
    slot_query=None,
    reset="AT+CFUN=1,1",
    extra_urcs=("^RSSI", "^BOOT", "^MODE", "^SRVST", "^SIMST", "^CVOICE"),
    pin_counter=Query(
        Cmd("AT^CPIN?", expect="^CPIN", doc="Huawei ^CPIN: <code>,[<times>],<puk>,<pin>,<puk2>,<pin2>"),
        parse_huawei_cpin,
    ),
    # chan_dongle (asterisk-chan-dongle at_command.c, cmd_ddsetex2 "AT^DDSETEX=2"): moves
    # the call's voice (^CVOICE: 0,8000,16,20 — 8 kHz, 16 bit, 20 ms frames) to the
    # dongle's serial voice port. chan_dongle queues it behind ATD and after ATA; issue 14
    # sends it when the call connects (^CONN), when the voice path exists for sure.
    audio=AudioSetup(
        step=Cmd("AT^DDSETEX=2", doc="chan_dongle: voice on the serial audio port"),
        moment=AudioMoment.AFTER_CONNECT,
        port="the dongle's voice tty (chan_dongle's audio=/dev/ttyUSB1; AT is ttyUSB2)",
    ),
)

#: Detection order: the first dialect whose pattern matches wins; generic is the fallback.
DIALECTS: Final[tuple[Dialect, ...]] = (SIMCOM, QUECTEL, HUAWEI, GENERIC)
#: Longest message (characters of any alphabet) every TTS dialect can speak in one line:
#: 136 with the 556-character command line of the SIM800 manual (base.MAX_COMMAND_LINE).
TTS_MAX_CHARS: Final = min(d.tts.max_chars() for d in DIALECTS if d.tts is not None)
