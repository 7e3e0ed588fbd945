"""Virtual SIM cards: identity (ICCID, IMSI, MSISDN), PIN state, credit, storage.

PIN rules follow 3GPP TS 31.102 / 27.007 §8.3: three wrong PINs block the PIN and the card
wants its PUK; ten wrong PUKs block the card for good. SMS storage lives on the card
(``SM``); status reports are kept beside it (``SR``) so a slot switch carries both along.
"""
from __future__ import annotations

import enum
import random
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Final

from ._plan import Operator, operator_for_digit, sim_msisdn

PIN_ATTEMPTS: Final = 3  # TS 31.102 / GSM 11.11: PIN blocked after 3 false presentations
PUK_ATTEMPTS: Final = 10  # TS 31.102: PUK blocked after 10 false presentations
#: PIN2/PUK2 are not modelled (nothing here needs them); their counters read as fresh.
PIN2_ATTEMPTS: Final = 3
PUK2_ATTEMPTS: Final = 10
STORE_CAPACITY: Final = 50  # typical SIM EF_SMS record count (SIM800 reports 50)
DEFAULT_PIN: Final = "1234"
DEFAULT_BALANCE: Final = 12.34  # PLN, the assignment's example "Saldo: 12,34 PLN"


class PinState(enum.Enum):
    READY = "READY"
    SIM_PIN = "SIM PIN"
    SIM_PUK = "SIM PUK"
    BLOCKED = "BLOCKED"  # PUK exhausted: +CME ERROR: 13 (SIM failure)


class MessageStore:
    """One SMS memory (``SM`` or ``SR``): 1-based indices (SIM800/EC25 number from 1)."""

    __slots__ = ("_items", "capacity")

    def __init__(self, capacity: int = STORE_CAPACITY) -> None:
        self._items: OrderedDict[int, tuple[bytes, int]] = OrderedDict()  # index → (pdu, stat)
        self.capacity = capacity

    def add(self, pdu: bytes) -> int:
        """Store a PDU as unread (stat 0); when full the oldest goes (documented shortcut)."""
        if len(self._items) >= self.capacity:
            self._items.popitem(last=False)
        index = next(i for i in range(1, self.capacity + 2) if i not in self._items)
        self._items[index] = (pdu, 0)
        return index

    def read(self, index: int) -> tuple[bytes, int] | None:
        item = self._items.get(index)
        if item is not None:
            self._items[index] = (item[0], 1)  # 27.005 §3.1: <stat> 1 "REC READ" after a read
        return item

    def delete(self, index: int) -> bool:
        return self._items.pop(index, None) is not None

    def clear(self) -> None:
        self._items.clear()

    def items(self) -> list[tuple[int, bytes, int]]:
        return [(i, pdu, stat) for i, (pdu, stat) in self._items.items()]

    def __len__(self) -> int:
        return len(self._items)


@dataclass(slots=True, eq=False)
class VirtualSim:
    slot: int
    iccid: str
    imsi: str
    msisdn: str
    mcc_mnc: str
    operator_name: str
    pin: str
    puk: str
    pin_state: PinState = PinState.READY
    balance: float = DEFAULT_BALANCE
    blocked: bool = False  # blocked by the operator: calls fail with cause 50
    pin_enabled: bool = False  # PIN asked again after every power-up (AT+CFUN=1,1, vanish)
    calls_made: int = 0
    pin_attempts_left: int = PIN_ATTEMPTS
    puk_attempts_left: int = PUK_ATTEMPTS
    #: Every PIN or PUK the card was shown (AT+CPIN, AT+CPWD), right or wrong: what a test
    #: counts to prove the host never retried a PIN on its own.
    presentations: int = 0
    #: How often the host read the tries left (+CPINR/+QPINC/^CPIN/+SPIC): costs no try.
    counter_reads: int = 0
    next_mr: int = 0  # TP-Message-Reference counter (23.040 §9.2.3.6: 0–255, wraps)
    operator: Operator | None = field(default=None, repr=False)
    sm: MessageStore = field(default_factory=MessageStore, repr=False)
    sr: MessageStore = field(default_factory=MessageStore, repr=False)
    pending_inbound: list[bytes] = field(default_factory=list, repr=False)

    @property
    def iccid_swapped(self) -> str:
        """EF_ICCID as stored on the card: BCD with nibbles swapped (TS 102 221 §13.2)."""
        digits = self.iccid + ("F" if len(self.iccid) % 2 else "")
        return "".join(digits[i + 1] + digits[i] for i in range(0, len(digits), 2))

    def take_mr(self) -> int:
        mr = self.next_mr
        self.next_mr = (self.next_mr + 1) % 256
        return mr

    def enter_pin(self, pin: str) -> bool:
        """``AT+CPIN="<pin>"``; True when accepted."""
        self.presentations += 1
        if pin == self.pin:
            self.pin_state, self.pin_attempts_left = PinState.READY, PIN_ATTEMPTS
            return True
        self.pin_attempts_left = max(0, self.pin_attempts_left - 1)
        if self.pin_attempts_left == 0:
            self.pin_state = PinState.SIM_PUK
        return False

    def enter_puk(self, puk: str, new_pin: str) -> bool:
        """``AT+CPIN="<puk>","<newpin>"``; True when accepted (the new PIN is set)."""
        self.presentations += 1
        if puk == self.puk and new_pin.isdigit() and 4 <= len(new_pin) <= 8:
            self.pin, self.pin_state = new_pin, PinState.READY
            self.pin_attempts_left, self.puk_attempts_left = PIN_ATTEMPTS, PUK_ATTEMPTS
            return True
        self.puk_attempts_left = max(0, self.puk_attempts_left - 1)
        if self.puk_attempts_left == 0:
            self.pin_state = PinState.BLOCKED
        return False

    def change_pin(self, old: str, new: str) -> bool:
        """``AT+CPWD="SC","<old>","<new>"`` on an unlocked card: a wrong old PIN counts
        like a wrong ``AT+CPIN`` (TS 31.102: the same retry counter); True when changed."""
        if not self.enter_pin(old):
            return False
        self.pin = new
        return True

    def public(self) -> dict[str, object]:
        return {
            "slot": self.slot, "iccid": self.iccid, "imsi": self.imsi, "msisdn": self.msisdn,
            "mcc_mnc": self.mcc_mnc, "operator_name": self.operator_name,
            "pin": self.pin, "puk": self.puk,
        }

    def status(self) -> dict[str, object]:
        return self.public() | {
            "pin_state": self.pin_state.value, "balance": self.balance,
            "pin_tries_left": self.pin_attempts_left, "puk_tries_left": self.puk_attempts_left,
            "pin_presentations": self.presentations, "pin_counter_reads": self.counter_reads,
            "blocked": self.blocked, "calls_made": self.calls_made,
        }


def luhn_digit(digits: str) -> str:
    """ISO/IEC 7812 check digit, used by ICCIDs (E.118) and IMEIs (TS 23.003 §6.2.1)."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            d = d - 9 if d > 9 else d
        total += d
    return str((10 - total % 10) % 10)


def make_sim(index: int, slot: int, seed: int, pin_locked: bool) -> VirtualSim:
    """SIM number ``index`` (global, unique) for ``slot``; deterministic per seed."""
    rng = random.Random(f"sim:{seed}:{index}")
    op = operator_for_digit(index % 4)
    serial = (index + seed * 7919) % 1_000_000  # a shift mod 10^6 keeps numbers unique
    # ICCID (ITU-T E.118): 89 telecom, 48 Poland, 2-digit issuer, account, Luhn → 20 digits.
    body = f"8948{int(op.mcc_mnc[3:]):02d}{seed % 1000:03d}{index:010d}"[:19]
    iccid = body + luhn_digit(body)
    # IMSI (TS 23.003 §2.2): MCC + MNC + 10-digit MSIN = 15 digits.
    imsi = f"{op.mcc_mnc}{(seed % 100):02d}{index:08d}"[:15]
    return VirtualSim(
        slot=slot, iccid=iccid, imsi=imsi, msisdn=sim_msisdn(op.digit, serial),
        mcc_mnc=op.mcc_mnc, operator_name=op.name, pin=DEFAULT_PIN,
        puk=f"{rng.randrange(10**8):08d}",
        pin_state=PinState.SIM_PIN if pin_locked else PinState.READY, pin_enabled=pin_locked,
        operator=op,
    )
