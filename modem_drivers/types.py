"""Data the Modem API returns and the events it emits (frozen, slotted, typed)."""
from __future__ import annotations

import dataclasses
import enum

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
    """+CREG <stat> (27.007 §7.2)."""

    NOT_REGISTERED = 0
    HOME = 1
    SEARCHING = 2
    DENIED = 3
    UNKNOWN = 4
    ROAMING = 5

    @property
    def registered(self) -> bool:
        return self in (RegStat.HOME, RegStat.ROAMING)


#: +CREG <AcT> (27.007 §7.3) -> technology name.
ACCESS_TECHNOLOGY: dict[int, str] = {
    0: "GSM",
    1: "GSM Compact",
    2: "UTRAN",
    3: "GSM/EGPRS",
    4: "UTRAN/HSDPA",
    5: "UTRAN/HSUPA",
    6: "UTRAN/HSPA",
    7: "E-UTRAN",
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


@dataclasses.dataclass(frozen=True, slots=True)
class Signal:
    rssi: int  # 0..31, 99 unknown (27.007 §8.5)
    dbm: int | None
    ber: int


@dataclasses.dataclass(frozen=True, slots=True)
class Registration:
    stat: RegStat
    lac: str | None = None
    ci: str | None = None
    technology: str | None = None

    @property
    def registered(self) -> bool:
        return self.stat.registered


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
    pass


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
