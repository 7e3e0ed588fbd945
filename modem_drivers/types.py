"""Data the Modem API returns and the events it emits (frozen, slotted, typed)."""
from __future__ import annotations

import dataclasses
import enum

from common.phone import carrier_of

from .sms import IncomingSms, StatusReport, UndecodableSms


class PinState(enum.Enum):
    READY = "READY"
    SIM_PIN = "SIM PIN"
    SIM_PUK = "SIM PUK"
    SIM_PIN2 = "SIM PIN2"
    SIM_PUK2 = "SIM PUK2"
    PH_SIM_PIN = "PH-SIM PIN"
    NOT_INSERTED = "NOT INSERTED"
    UNKNOWN = "UNKNOWN"


class RegStat(enum.Enum):
    """``<stat>`` of +CREG / +CGREG / +CEREG (27.007 §7.2, §10.1.20, §10.1.22).

    Values 6 to 11 come from the LTE-era editions of 27.007; a modem reports them on
    E-UTRAN. For a modem that calls and sends SMS they mean: 6/7 registered for SMS only
    (no voice: the network offers no CS fallback), 9/10 registered, CS fallback for voice
    not preferred (voice over IMS or CSFB still works), 8 attached for emergency bearer
    services only and 11 attached for access to RLOS (restricted local operator services):
    no service of ours. A value this table does not know reads as ``UNKNOWN``.
    """

    NOT_REGISTERED = 0
    HOME = 1
    SEARCHING = 2
    DENIED = 3
    UNKNOWN = 4
    ROAMING = 5
    SMS_ONLY_HOME = 6
    SMS_ONLY_ROAMING = 7
    EMERGENCY_ONLY = 8
    CSFB_NOT_PREFERRED_HOME = 9
    CSFB_NOT_PREFERRED_ROAMING = 10
    RLOS = 11

    @classmethod
    def of(cls, value: int) -> "RegStat":
        """The member for a reported number; ``UNKNOWN`` for a value 27.007 does not define."""
        try:
            return cls(value)
        except ValueError:
            return cls.UNKNOWN

    @property
    def registered(self) -> bool:
        """Registered with a network, home or roaming, in any of its forms (SMS works)."""
        return self in _REGISTERED

    @property
    def roaming(self) -> bool:
        return self in _ROAMING

    @property
    def voice(self) -> bool:
        """Registered for voice calls too: every registered form but "SMS only"."""
        return self in _REGISTERED and self not in _SMS_ONLY


_REGISTERED = frozenset({
    RegStat.HOME, RegStat.ROAMING, RegStat.SMS_ONLY_HOME, RegStat.SMS_ONLY_ROAMING,
    RegStat.CSFB_NOT_PREFERRED_HOME, RegStat.CSFB_NOT_PREFERRED_ROAMING,
})
_ROAMING = frozenset({RegStat.ROAMING, RegStat.SMS_ONLY_ROAMING, RegStat.CSFB_NOT_PREFERRED_ROAMING})
_SMS_ONLY = frozenset({RegStat.SMS_ONLY_HOME, RegStat.SMS_ONLY_ROAMING})


class RegDomain(enum.Enum):
    """Which registration a report is about; the value is the report's prefix."""

    CS = "+CREG"  # circuit switched: voice and SMS over GSM/UMTS (27.007 §7.2)
    GPRS = "+CGREG"  # packet switched on GERAN/UTRAN (27.007 §10.1.20)
    EPS = "+CEREG"  # LTE (E-UTRAN): SMS over SGs or IMS, voice over IMS (27.007 §10.1.22)


#: <AcT> (27.007 §7.3) -> technology name.
ACCESS_TECHNOLOGY: dict[int, str] = {
    0: "GSM",
    1: "GSM Compact",
    2: "UTRAN",
    3: "GSM/EGPRS",
    4: "UTRAN/HSDPA",
    5: "UTRAN/HSUPA",
    6: "UTRAN/HSPA",
    7: "E-UTRAN",
    8: "EC-GSM-IoT",
    9: "E-UTRAN NB-S1",
    10: "E-UTRA/5GCN",
    11: "NR/5GCN",
    12: "NG-RAN",
    13: "E-UTRA-NR",
}


@dataclasses.dataclass(frozen=True, slots=True)
class Identity:
    manufacturer: str
    model: str
    revision: str
    imei: str
    dialect: str


@dataclasses.dataclass(frozen=True, slots=True)
class SimInfo:
    pin_state: PinState
    iccid: str | None = None
    imsi: str | None = None
    mcc_mnc: str | None = None
    operator_name: str | None = None
    msisdn: str | None = None

    @property
    def operator_label(self) -> str | None:
        """What to call the SIM's operator: the network's own name (+COPS, read while the
        SIM is the active one), else the operator its number was allocated to
        (libphonenumber's table), else its MCC-MNC."""
        return self.operator_name or carrier_of(self.msisdn) or self.mcc_mnc


@dataclasses.dataclass(frozen=True, slots=True)
class Signal:
    rssi: int  # 0..31, 99 unknown (27.007 §8.5)
    dbm: int | None
    ber: int


@dataclasses.dataclass(frozen=True, slots=True)
class Registration:
    """One registration report; ``domain`` says which report it is (+CREG, +CGREG,
    +CEREG). ``Modem.registration`` is the report that decides: see
    ``modem_drivers.registration.decisive``."""

    stat: RegStat
    lac: str | None = None  # <lac> or, for +CEREG, <tac> (hex, as reported)
    ci: str | None = None
    technology: str | None = None
    domain: RegDomain = RegDomain.CS

    @property
    def registered(self) -> bool:
        return self.stat.registered

    @property
    def voice(self) -> bool:
        return self.stat.voice


@dataclasses.dataclass(frozen=True, slots=True)
class UssdReply:
    status: int  # 0 no further action, 1 further action required, 2 terminated by network, 4 not supported
    text: str
    dcs: int | None


@dataclasses.dataclass(frozen=True, slots=True)
class SmsSubmission:
    to: str
    parts: int
    references: tuple[int, ...]  # TP-MR of each part, as the modem returned them (+CMGS)


# -- events -------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True, slots=True)
class SmsReceived:
    sms: IncomingSms


@dataclasses.dataclass(frozen=True, slots=True)
class SmsUndecodable:
    raw: UndecodableSms


@dataclasses.dataclass(frozen=True, slots=True)
class StatusReportReceived:
    report: StatusReport


@dataclasses.dataclass(frozen=True, slots=True)
class IncomingCall:
    caller: str | None


@dataclasses.dataclass(frozen=True, slots=True)
class DtmfReceived:
    digit: str


@dataclasses.dataclass(frozen=True, slots=True)
class RegistrationChanged:
    registration: Registration


@dataclasses.dataclass(frozen=True, slots=True)
class PortLost:
    reason: str


@dataclasses.dataclass(frozen=True, slots=True)
class PortRestored:
    """The port is back. ``problem`` says why the modem on it was not set up (another
    modem answers there: ``errors.ForeignModem``); None when it is ready."""

    problem: str | None = None


class PlaybackEnd(enum.Enum):
    """How a text-to-speech playback ended."""

    FINISHED = "finished"  # the modem's end URC: the whole text was spoken
    CALL_RELEASED = "call_released"  # the call ended first (the callee hung up)
    TIMED_OUT = "timed_out"  # still speaking at the caller's deadline; stopped


@dataclasses.dataclass(frozen=True, slots=True)
class Playback:
    """What ``Modem.play_tts`` did: how it ended and for how long the modem spoke."""

    end: PlaybackEnd
    seconds: float


ModemEvent = (
    SmsReceived
    | SmsUndecodable
    | StatusReportReceived
    | IncomingCall
    | DtmfReceived
    | RegistrationChanged
    | PortLost
    | PortRestored
)


def rssi_to_dbm(rssi: int) -> int | None:
    """27.007 §8.5: 0 → −113 dBm or less, 1 → −111, 2..30 → −109..−53, 31 → −51 or more, 99 unknown."""
    if rssi == 99 or rssi < 0 or rssi > 31:
        return None
    return -113 + 2 * rssi
