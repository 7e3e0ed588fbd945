"""A channel is a modem with its active SIM: the unit the scheduler places jobs on.

Rules of the channel machine (a table, h11-style; a move not in the table is a bug and
raises ``ChannelStateError`` from None):

* IDLE channels take jobs (→ BUSY), start a SIM-slot switch (→ SWITCHING), or fall
  FAULTY (port lost, not registered, not answering) or QUARANTINED (its SIM looks
  blocked and no other slot can take over);
* after a job a channel COOLS DOWN for the SIM's pause, then is IDLE again; a callback
  answered during the pause takes it BUSY (no job is placed on a BUSY channel, and the
  SIM's pause is the rotation policy's, kept there);
* SWITCHING ends IDLE when the new SIM registered, FAULTY when it did not;
* FAULTY ends IDLE when supervision brings the modem back;
* any state ends STOPPED when a person stops, restarts or removes the modem
  (``Bank.control``): its ports are closed and no job, callback or check takes it; a job
  on it ends first (BUSY → STOPPED at its release) when asked "when idle", or its call is
  hung up now. STOPPED ends OPENING on a restart.

Every change is an event with its reason (logged, stored, counted in metrics).
"""
from __future__ import annotations

import dataclasses
import enum
import time
from typing import Final

from modem_drivers.types import SimInfo


class ChannelState(enum.Enum):
    IDLE = "idle"
    BUSY = "busy"
    SWITCHING = "switching_sim"
    COOLING = "cooling_down"
    FAULTY = "faulty"
    QUARANTINED = "quarantined"
    OPENING = "opening"
    STOPPED = "stopped"  # taken out by a person (Bank.control); its ports are closed


S = ChannelState
TRANSITIONS: Final[dict[ChannelState, frozenset[ChannelState]]] = {
    S.OPENING: frozenset({S.IDLE, S.FAULTY, S.SWITCHING, S.QUARANTINED, S.STOPPED}),
    S.IDLE: frozenset({S.BUSY, S.SWITCHING, S.FAULTY, S.QUARANTINED, S.COOLING, S.STOPPED}),
    S.BUSY: frozenset({S.COOLING, S.IDLE, S.FAULTY, S.STOPPED}),
    S.COOLING: frozenset({S.IDLE, S.BUSY, S.FAULTY, S.SWITCHING, S.QUARANTINED, S.STOPPED}),
    S.SWITCHING: frozenset({S.IDLE, S.FAULTY, S.QUARANTINED, S.STOPPED}),
    S.FAULTY: frozenset({S.IDLE, S.OPENING, S.SWITCHING, S.QUARANTINED, S.STOPPED}),
    S.QUARANTINED: frozenset({S.IDLE, S.SWITCHING, S.FAULTY, S.STOPPED}),
    S.STOPPED: frozenset({S.OPENING}),
}


#: States a SIM-slot switch may start from: the modem has no call (a switch takes it out of
#: service while it re-registers, so never from BUSY; OPENING/FAULTY modems cannot switch).
SWITCHABLE: Final[frozenset[ChannelState]] = frozenset({S.IDLE, S.COOLING, S.QUARANTINED})


class ChannelStateError(RuntimeError):
    pass


@dataclasses.dataclass(slots=True)
class SlotSim:
    """What we know of the SIM in one slot (read when the slot was last active)."""

    slot: int
    sim_id: str | None = None  # ICCID when known, else "<modem>/<slot>"
    info: SimInfo | None = None


@dataclasses.dataclass(slots=True)
class Channel:
    id: str  # the modem's id from the config
    port: str
    slots: int
    pin: str | None = None
    pools: tuple[str, ...] = ()
    audio: str | None = None  # the modem's audio port path ([[modem]] audio), opened with the modem
    state: ChannelState = ChannelState.OPENING
    reason: str = "starting"
    since: float = dataclasses.field(default_factory=time.time)
    active_slot: int = 0
    sims: dict[int, SlotSim] = dataclasses.field(default_factory=dict)
    signal_dbm: int | None = None
    registered: bool = False
    dialect: str | None = None
    model: str | None = None
    imei: str | None = None
    job_id: str | None = None
    errors: int = 0
    balance: float | None = None  # last USSD balance of the active SIM
    balance_currency: str | None = None  # its ISO 4217 code, when the answer names one (balance.py)
    #: A person's stop, restart or remove waiting for the channel's work to end (``Bank.control``).
    pending: str | None = None

    def move(self, new: ChannelState, reason: str) -> tuple[ChannelState, ChannelState]:
        old = self.state
        if new is old:
            self.reason = reason
            return old, new
        if new not in TRANSITIONS[old]:
            raise ChannelStateError(f"channel {self.id}: {old.value} -> {new.value} is not allowed ({reason})") from None
        self.state, self.reason, self.since = new, reason, time.time()
        return old, new

    @property
    def active_sim(self) -> SlotSim | None:
        return self.sims.get(self.active_slot)

    def public(self) -> dict[str, object]:
        sim = self.active_sim
        info = sim.info if sim else None
        return {
            "id": self.id,
            "port": self.port,
            "state": self.state.value,
            "reason": self.reason,
            "since": self.since,
            "dialect": self.dialect,
            "model": self.model,
            "imei": self.imei,
            "active_slot": self.active_slot,
            "slots": self.slots,
            "sim_id": sim.sim_id if sim else None,
            "msisdn": info.msisdn if info else None,
            "operator": info.mcc_mnc if info else None,
            "signal_dbm": self.signal_dbm,
            "registered": self.registered,
            "job_id": self.job_id,
            "balance": self.balance,
            "balance_currency": self.balance_currency,
            "pending": self.pending,
        }
