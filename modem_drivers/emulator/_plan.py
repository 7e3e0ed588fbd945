"""The simulated network's number plan: who a callee is and how he behaves.

Callee numbers are ``+48 60O BXX XXX`` (nine national digits ``60OBXXXXX``): digit ``O``
picks the operator, digit ``B`` the behaviour. Virtual SIMs are ``+48 69O XXX XXX`` on
operator ``O``. Any other number is unassigned (cause 1). The table is documented in
docs/emulator.md; causes and TP-ST values come from docs/dialects.md (last table).
"""
from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from typing import Final

#: Poland's country code (ITU-T E.164 assignment), the plan's only country.
COUNTRY_CODE: Final = "48"
#: Polish national significant numbers have 9 digits (UKE numbering plan).
NATIONAL_DIGITS: Final = 9
CALLEE_PREFIX: Final = "60"
SIM_PREFIX: Final = "69"


@dataclass(frozen=True, slots=True)
class Operator:
    """A mobile network: PLMN id (MCC 260 = Poland, ITU-T E.212) and its names."""

    digit: int
    mcc_mnc: str
    name: str
    smsc: str  # the operator's SMS centre address, put in SMS-DELIVER / STATUS-REPORT PDUs


#: Operator digit ``O`` → operator (MNCs from the UKE register of Polish PLMNs).
OPERATORS: Final[tuple[Operator, ...]] = (
    Operator(0, "26001", "Plus", "+48601000310"),
    Operator(1, "26002", "T-Mobile", "+48602951111"),
    Operator(2, "26003", "Orange", "+48501200777"),
    Operator(3, "26006", "Play", "+48790998250"),
)


def operator_for_digit(digit: int) -> Operator:
    """Digits 4–9 wrap around (``O mod 4``), as the plan says."""
    return OPERATORS[digit % len(OPERATORS)]


class Behaviour(enum.Enum):
    """What the callee does, by plan digit ``B`` (``UNASSIGNED`` also covers numbers off-plan)."""

    HUMAN = 0  # answers after 2–6 s
    MACHINE = 1  # answering machine picks up after 8–12 s
    BUSY = 2  # cause 17
    NO_ANSWER = 3  # rings until the network's no-answer timer, cause 19
    REJECTS = 4  # rings 1–3 s, then rejects, cause 21
    ABSENT = 5  # switched off, cause 20; SMS: temporary failure then expiry
    UNASSIGNED = 6  # cause 1; SMS: permanent failure
    HUMAN_LATE = 7  # answers after a 15–20 s ring
    HUMAN_DTMF = 8  # answers, then keys DTMF digits to the voicebot
    RANDOM = 9  # a seeded random mix of the above, drawn per call / per message


_SEPARATORS = re.compile(r"[\s\-().]")


def national_number(number: str) -> str | None:
    """The 9 national digits of a Polish number in any usual spelling, else None.

    Accepts ``+48…``, ``0048…``, ``48…`` (11 digits) and bare 9-digit national numbers.
    """
    digits = _SEPARATORS.sub("", number)
    if digits.startswith("+"):
        digits = digits[1:]
        if not digits.startswith(COUNTRY_CODE):
            return None
        digits = digits[len(COUNTRY_CODE):]
    elif digits.startswith("00" + COUNTRY_CODE):
        digits = digits[2 + len(COUNTRY_CODE):]
    elif len(digits) == len(COUNTRY_CODE) + NATIONAL_DIGITS and digits.startswith(COUNTRY_CODE):
        digits = digits[len(COUNTRY_CODE):]
    if len(digits) != NATIONAL_DIGITS or not digits.isdigit():
        return None
    return digits


def international(number: str) -> str:
    """``+48xxxxxxxxx`` for plan numbers; anything else unchanged (stripped)."""
    national = national_number(number)
    return f"+{COUNTRY_CODE}{national}" if national else number.strip()


def plan_behaviour(number: str) -> Behaviour:
    """The behaviour of a callee number; numbers outside the plan are ``UNASSIGNED``."""
    national = national_number(number)
    if national is None or not national.startswith(CALLEE_PREFIX):
        return Behaviour.UNASSIGNED
    return Behaviour(int(national[3]))


def plan_variant(number: str) -> int:
    """Digit ``V`` of ``60OBV XXXX`` (the fifth national digit): what an answering callee
    plays on an audio port (docs/emulator.md, "Call audio"); 0 off-plan."""
    national = national_number(number)
    return int(national[4]) if national is not None else 0


def plan_operator(number: str) -> str | None:
    """The PLMN id (``"26001"``…) of a callee or virtual-SIM number, None off-plan."""
    op = plan_operator_info(number)
    return op.mcc_mnc if op else None


def plan_operator_info(number: str) -> Operator | None:
    national = national_number(number)
    if national is None or national[:2] not in (CALLEE_PREFIX, SIM_PREFIX):
        return None
    return operator_for_digit(int(national[2]))


def sim_msisdn(operator_digit: int, serial: int) -> str:
    """A virtual SIM's number ``+48 69O XXX XXX``."""
    return f"+{COUNTRY_CODE}{SIM_PREFIX}{operator_digit % 10}{serial % 1_000_000:06d}"


class Q850(enum.IntEnum):
    """Cause values the simulated network uses (ITU-T Q.850 / 3GPP TS 24.008 annex H)."""

    UNASSIGNED_NUMBER = 1
    NORMAL_CLEARING = 16
    USER_BUSY = 17
    NO_ANSWER = 19
    SUBSCRIBER_ABSENT = 20
    CALL_REJECTED = 21
    NORMAL_UNSPECIFIED = 31
    FACILITY_NOT_SUBSCRIBED = 50


#: 24.008 annex H cause names, as SIMCom and generic modems print them in ``+CEER: <text>``.
CAUSE_NAMES: Final[dict[int, str]] = {
    0: "No cause information available",
    1: "Unassigned (unallocated) number",
    16: "Normal call clearing",
    17: "User busy",
    19: "User alerting, no answer",
    20: "Subscriber absent",
    21: "Call rejected",
    31: "Normal, unspecified",
    50: "Requested facility not subscribed",
}


class ReportStatus(enum.IntEnum):
    """TP-Status values in SMS-STATUS-REPORT (3GPP TS 23.040 §9.2.3.15)."""

    DELIVERED = 0x00  # short message received by the SME
    TEMPORARY_TRYING = 0x30  # temporary error, SC still trying: congestion/SME busy class
    INCOMPATIBLE_DESTINATION = 0x41  # permanent error, SC not making any more attempts
    VALIDITY_EXPIRED = 0x46  # temporary error, SC gave up: validity period expired
