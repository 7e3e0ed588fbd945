"""PIN safety: a SIM's PIN is entered automatically at most once per person's action.

A SIM takes three wrong PINs, then wants its PUK (3GPP TS 31.102 / 51.011: the PIN's
retry counter starts at 3, the PUK's at 10; ten wrong PUKs block the card for good). A
wrong PIN in a config, retried at every start and every reopen of a port, locks the SIM
within a second. The rules here keep that from happening:

* Before a PIN is sent the tries left are read (the dialect's ``pin_counter`` row:
  ``AT+CPINR`` on 27.007 modems, a vendor command elsewhere). Reading them costs no try.
* With one try left (``LAST_TRY``), or when the SIM wants its PUK, nothing is sent
  automatically: a person decides (``simrotor modem unlock``).
* A PIN the SIM rejected is remembered per SIM — its ICCID when the modem reads it while
  locked, else the modem's IMEI and SIM slot — as a salted hash (``RejectedPin``) in a
  ``PinMarks`` store; the appliance keeps them in its SQLite store, so a restart does not
  try the same PIN again. Only a different PIN (the config was fixed) or a SIM found
  unlocked (a person ran ``simrotor modem unlock``) clears the mark.
* A PIN command left without an answer counts as rejected (the SIM may have counted it)
  until the SIM's count at the next look shows it was not spent on a wrong PIN.

``unlock_on_open`` is what ``Modem.initialize`` runs on open, reopen and slot switch; the
dialect rows' readers of the tries left are in ``dialects/pin_counters.py``.
"""
from __future__ import annotations

import dataclasses
import hashlib
import hmac
import logging
import secrets
import time
from typing import Any, Final, Protocol

from .errors import PinError, SimPinRequired, SimPukRequired, WrongPin
from .types import PinState

logger = logging.getLogger(__name__)

#: With this many tries left nothing is sent automatically (issue 12: "with 1 try left,
#: do not send it automatically at all (a person decides)").
LAST_TRY: Final = 1
#: PBKDF2-HMAC-SHA256 rounds of a remembered PIN's hash. NIST SP 800-132 §5.2 asks for at
#: least 1,000; 10,000 costs ~5 ms here. A 4-8 digit PIN has at most 10^8 values, so the
#: hash only keeps the PIN out of plain sight in the store; the store's file permissions
#: are what protects it (docs/appliance.md).
HASH_ROUNDS: Final = 10_000
#: Bytes of random salt per remembered PIN (NIST SP 800-132 §5.1: at least 128 bits).
SALT_BYTES: Final = 16

class PinWithheld(SimPinRequired):
    """The SIM asks for its PIN, but the PIN was not sent: one try is left, so sending a
    wrong one would lock the SIM. A person decides (``--last-try``)."""


# -- tries left ----------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True, slots=True)
class PinTries:
    """Entries the SIM still accepts; None when the modem cannot tell."""

    pin: int | None = None
    puk: int | None = None

    def public(self) -> dict[str, int | None]:
        return {"pin_tries_left": self.pin, "puk_tries_left": self.puk}


# -- remembered rejections -------------------------------------------------------------------
@dataclasses.dataclass(frozen=True, slots=True)
class RejectedPin:
    """A PIN a SIM rejected (or never answered), as a salted hash: enough to tell whether
    the configured PIN is still that one, without keeping the PIN itself."""

    salt: str
    digest: str
    tries_left: int | None  # after the rejection; before the entry when ``unanswered``
    at: float
    #: The modem never answered the entry: whether the SIM counted it is found out at the
    #: next look (the same count as before: it did not; more: a right PIN reset it).
    unanswered: bool = False

    @classmethod
    def of(cls, pin: str, tries_left: int | None, *, unanswered: bool = False, now: float | None = None) -> RejectedPin:
        salt = secrets.token_hex(SALT_BYTES)
        return cls(salt, _digest(pin, salt), tries_left, time.time() if now is None else now, unanswered)

    def matches(self, pin: str) -> bool:
        return hmac.compare_digest(self.digest, _digest(pin, self.salt))

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RejectedPin:
        return cls(str(data["salt"]), str(data["digest"]), data.get("tries_left"), float(data.get("at", 0.0)),
                   bool(data.get("unanswered", False)))

    def still_stands(self, tries_now: int | None) -> bool:
        """Whether the mark still says "this PIN is wrong": an unanswered entry that the SIM's
        count shows was not spent on a wrong PIN (count unchanged, or reset by a right one)
        is no rejection."""
        if not self.unanswered or tries_now is None or self.tries_left is None:
            return True
        return tries_now < self.tries_left


def _digest(pin: str, salt: str) -> str:
    return hashlib.pbkdf2_hmac("sha256", pin.encode(), bytes.fromhex(salt), HASH_ROUNDS).hex()


class PinMarks(Protocol):
    """Where rejected PINs are remembered, per SIM key (``appliance.store.Store`` keeps
    them across restarts; ``MemoryPinMarks`` for one process)."""

    def pin_mark(self, sim_key: str) -> dict[str, Any] | None: ...
    def set_pin_mark(self, sim_key: str, mark: dict[str, Any]) -> None: ...
    def clear_pin_mark(self, sim_key: str) -> bool: ...
    def has_pin_marks(self) -> bool: ...


class MemoryPinMarks:
    """Rejected PINs remembered for the life of the process (one Modem by default)."""

    def __init__(self) -> None:
        self._marks: dict[str, dict[str, Any]] = {}

    def pin_mark(self, sim_key: str) -> dict[str, Any] | None:
        return self._marks.get(sim_key)

    def set_pin_mark(self, sim_key: str, mark: dict[str, Any]) -> None:
        self._marks[sim_key] = dict(mark)

    def clear_pin_mark(self, sim_key: str) -> bool:
        return self._marks.pop(sim_key, None) is not None

    def has_pin_marks(self) -> bool:
        return bool(self._marks)


# -- sentences -------------------------------------------------------------------------------
def tries_text(tries: int | None) -> str:
    """``2 tries left`` / ``1 try left`` / ``tries left unknown``."""
    if tries is None:
        return "tries left unknown"
    return f"{tries} {'try' if tries == 1 else 'tries'} left"


def wrong_pin(tries: int | None, *, remembered: bool = False) -> WrongPin:
    again = "; it is not sent again" if remembered else ""
    return WrongPin(f"wrong PIN ({tries_text(tries)}){again}", tries)


def puk_required(tries: int | None) -> SimPukRequired:
    return SimPukRequired(f"SIM needs its PUK ({tries_text(tries)})", tries)


def pin_required(tries: int | None) -> SimPinRequired:
    return SimPinRequired(f"SIM needs its PIN ({tries_text(tries)})", tries)


def pin_withheld(tries: int | None) -> PinWithheld:
    return PinWithheld(f"SIM PIN not sent: {tries_text(tries)}, a wrong one would lock the SIM", tries)


def may_send(tries: int | None, *, last_try: bool = False) -> bool:
    """Whether one more entry may go to the SIM: not when it is the last one, unless a
    person said so (``last_try``). An unknown count allows one (the mark then stops a
    second)."""
    return last_try or tries is None or tries > LAST_TRY


# -- the open path ---------------------------------------------------------------------------
class LockedSim(Protocol):
    """What ``unlock_on_open`` needs of a Modem."""

    name: str
    pin_state: PinState

    async def sim_keys(self) -> tuple[str, ...]: ...
    async def pin_tries(self) -> PinTries: ...
    async def send_pin(self, pin: str) -> None: ...
    async def sim_status(self) -> PinState: ...


async def unlock_on_open(modem: LockedSim, pin: str | None, marks: PinMarks) -> PinError | None:
    """Enter the configured ``pin`` if that is safe; returns why the SIM stays locked
    (None when it is unlocked now). Raises only what the port raises (a stuck modem)."""
    state = modem.pin_state
    tries = await modem.pin_tries()
    if state is PinState.SIM_PUK:
        return puk_required(tries.puk)
    if state is not PinState.SIM_PIN:
        return None
    if pin is None:
        return pin_required(tries.pin)
    keys = await modem.sim_keys()
    for key in keys:
        raw = marks.pin_mark(key)
        if raw is None:
            continue
        mark = RejectedPin.from_dict(raw)
        if mark.matches(pin) and mark.still_stands(tries.pin):
            return wrong_pin(tries.pin, remembered=True)
        marks.clear_pin_mark(key)
        if mark.matches(pin):
            logger.info("%s: the unanswered PIN entry was not counted as wrong; trying it once", modem.name)
        else:  # the config's PIN changed: the new one gets its one try
            logger.info("%s: the configured PIN changed since the SIM rejected one; trying it once", modem.name)
    if not may_send(tries.pin):
        return pin_withheld(tries.pin)
    try:
        await modem.send_pin(pin)
    except WrongPin:
        after = await modem.pin_tries()
        marks.set_pin_mark(keys[0], RejectedPin.of(pin, after.pin).as_dict())
        logger.warning("%s: the SIM rejected the configured PIN (%s); it is not sent again", modem.name,
                       tries_text(after.pin), extra={"event": "pin_rejected", "sim": keys[0], "tries_left": after.pin})
        if await modem.sim_status() is PinState.SIM_PUK:  # that was the last try (its count unknown)
            return puk_required(after.puk)
        return wrong_pin(after.pin)
    except BaseException:
        # No answer (timeout, port gone, cancelled): the SIM may have counted the entry.
        marks.set_pin_mark(keys[0], RejectedPin.of(pin, tries.pin, unanswered=True).as_dict())
        raise
    await modem.sim_status()  # OK means accepted (27.007 §8.3); the state says READY
    return None


async def forget_on_ready(modem: LockedSim, marks: PinMarks) -> None:
    """A SIM found unlocked was unlocked by a person (or has its PIN off): its marks go,
    so the configured PIN may be tried once after the next power-up."""
    if not marks.has_pin_marks():
        return
    for key in await modem.sim_keys():
        if marks.clear_pin_mark(key):
            logger.info("%s: SIM %s found unlocked; its rejected PIN is forgotten", modem.name, key)
