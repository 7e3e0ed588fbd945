"""The bank's side of the scheduler: channel bookkeeping, slot switches, report sweeps.

It keeps the rotation policy and the core's idle count in step with the bank's channel
moves, offers each settled channel's SIMs to the policy, starts slot switches (with a
backoff per channel after a failed one), routes status reports to their waiters, and,
in idle moments, visits inactive slots that owe reports. It is the ``core.Channels`` a
dispatch round is handed.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any, Final

from common.clock import iso
from modem_drivers.types import PinState, StatusReportReceived

from ..bank import Bank
from ..channel import SWITCHABLE, Channel, ChannelState
from ..jobs import ReportTracker
from ..rotation import Decision, RotationPolicy, SimRef
from ..store import Store
from .core import SchedulerCore

logger = logging.getLogger("appliance.scheduler")

ROUTINE_STATES: Final = frozenset({ChannelState.IDLE, ChannelState.BUSY, ChannelState.COOLING})
#: Channel states in which the bank has not yet said what the modem's SIMs are.
UNSETTLED_STATES: Final = frozenset({ChannelState.OPENING, ChannelState.SWITCHING})
#: A failed slot switch is not tried again on that channel before this, doubling per
#: failure up to the cap: a modem that refuses switches (stuck, a call the driver thinks
#: is up) must not be asked again on every dispatch round.
SWITCH_BACKOFF_SECONDS: Final = (5.0, 300.0)


class BankSide:
    """See the module docstring. ``starting``: the round's attempts, channel taken, not
    yet written (spec, decision, modem, perf_counter when the channel came free)."""

    def __init__(self, bank: Bank, policy: RotationPolicy, core: SchedulerCore, store: Store, tracker: ReportTracker,
                 *, clock: Callable[[], float], spawn: Callable[[Any, str], None], wake: Callable[[], None]) -> None:
        self.bank = bank
        self.policy = policy
        self.core = core
        self.store = store
        self.tracker = tracker
        self.clock = clock
        self.spawn = spawn
        self.wake = wake
        self.refilling = False  # the shell refills freed channels itself: no wake-up needed
        self.starting: list[tuple[dict[str, Any], Decision, Any, float | None]] = []
        self._freed_at: dict[str, float] = {}
        self._switch_retry: dict[str, tuple[float, float]] = {}  # channel -> (not before, last delay)
        self._switching: set[str] = set()  # channels with a switch of ours under way
        self._last_collect: dict[str, float] = {}
        self._last_collect_round = 0.0
        self._collect_wake: tuple[float, asyncio.TimerHandle] | None = None  # (when, timer)

    # -- channel moves ----------------------------------------------------------------------
    def register(self, ch: Channel, now: float) -> None:
        self._offer_sims(ch, now)
        idle = ch.state is ChannelState.IDLE
        self.core.idle += 1 if idle else 0
        self.policy.set_channel(ch.id, idle=idle, active_slot=ch.active_slot, now=now)

    def on_change(self, ch: Channel, old: ChannelState, new: ChannelState, reason: str) -> None:
        now = self.clock()
        if old is ChannelState.IDLE:
            self.core.idle -= 1
        if new is ChannelState.IDLE:
            self.core.idle += 1
            self._freed_at[ch.id] = time.perf_counter()
        if new is ChannelState.IDLE and old in (ChannelState.SWITCHING, ChannelState.OPENING, ChannelState.FAULTY):
            self._offer_sims(ch, now)
        self.policy.set_channel(ch.id, idle=new is ChannelState.IDLE, active_slot=ch.active_slot, now=now)
        # Busy/idle/cooling moves are in the attempts table already; storing each would
        # cost two writes per job. Every other move (faulty, switching, quarantined,
        # back from those) is stored as an event with its reason.
        if not ({old, new} <= ROUTINE_STATES):
            try:
                self.store.log_event("channel", ch.id, {"from": old.value, "to": new.value, "reason": reason}, now)
            except Exception:
                logger.exception("could not store channel event")
        if new is ChannelState.IDLE and not self.refilling:
            self.wake()  # (a channel freed by the shell's commit is refilled there)

    def _offer_sims(self, ch: Channel, now: float) -> None:
        """Offer the channel's SIMs to the rotation policy. A SIM that was locked (PIN,
        PUK) when last read is left out: a switch to it would stop the modem on its PIN
        (modem_drivers.pin) and take the other slot's SIM out of service with it. It is
        offered once it is read unlocked (the bank settles the channel again)."""
        for slot in ch.sims.values():
            if slot.sim_id and slot.info and slot.info.pin_state is PinState.READY:
                try:
                    self.policy.add_sim(
                        SimRef(slot.sim_id, slot.info.msisdn or slot.sim_id, slot.info.mcc_mnc or "", ch.id, slot.slot,
                               frozenset(ch.pools)),
                        now=now,
                    )
                except ValueError:
                    pass

    def on_event(self, ch: Channel, ev: Any) -> None:
        if isinstance(ev, StatusReportReceived):
            sim = ch.active_sim
            sim_id = sim.sim_id if sim and sim.sim_id else ch.id
            if not self.tracker.deliver(sim_id, ev.report):
                logger.debug("status report %d on %s kept for a late waiter", ev.report.reference, ch.id)

    # -- core.Channels --------------------------------------------------------------------------
    def take(self, spec: dict[str, Any], decision: Decision) -> None:
        modem = self.bank.acquire(decision.channel_id, spec["id"])
        self.starting.append((spec, decision, modem, self._freed_at.pop(decision.channel_id, None)))

    def unsettled(self) -> bool:
        return any(ch.state in UNSETTLED_STATES for ch in self.bank.channels.values())

    def slot_of(self, d: Decision) -> int:
        ch = self.bank.channels[d.channel_id]
        for slot in ch.sims.values():
            if slot.sim_id == d.sim_id:
                return slot.slot
        return ch.active_slot

    def switch_not_before(self, channel_id: str, now: float) -> float:
        return self._switch_retry.get(channel_id, (now, 0.0))[0]

    def switch(self, channel_id: str, slot: int, reason: str, now: float) -> bool:
        """Start a slot switch on an idle channel unless its last one failed recently
        (``SWITCH_BACKOFF_SECONDS``); returns whether a switch is under way."""
        ch = self.bank.channels.get(channel_id)
        if ch is None:
            return False
        if channel_id in self._switching:
            return True
        if ch.state is not ChannelState.IDLE or now < self._switch_retry.get(channel_id, (0.0, 0.0))[0]:
            return False
        self._switching.add(channel_id)
        self.spawn(self._run_switch(ch, slot, reason), f"slot switch of {channel_id}")
        return True

    async def _run_switch(self, ch: Channel, slot: int, reason: str) -> None:
        if ch.state not in SWITCHABLE:
            # A job of the same round took the channel first: nothing was tried, nothing failed.
            self._switching.discard(ch.id)
            return
        try:
            ok = await self.bank.switch(ch.id, slot, reason=reason)
        except Exception as exc:  # a driver bug must not turn into a switch storm
            logger.warning("channel %s: slot switch to %d raised %s: %s", ch.id, slot, type(exc).__name__, exc)
            ok = False
        finally:
            self._switching.discard(ch.id)
        if ok:
            self._switch_retry.pop(ch.id, None)
            return
        lo, hi = SWITCH_BACKOFF_SECONDS
        delay = min(hi, self._switch_retry.get(ch.id, (0.0, lo / 2))[1] * 2)
        not_before = self.clock() + delay
        self._switch_retry[ch.id] = (not_before, delay)
        logger.warning("channel %s: slot switch to %d did not complete (%s); no switch on it before %s (backoff %.0f s)",
                       ch.id, slot, ch.reason or "no reason given", iso(not_before), delay)
        try:
            self.store.log_event("switch_failed", ch.id, {"slot": slot, "reason": ch.reason, "retry_in": delay}, self.clock())
        except Exception:
            logger.exception("could not store switch event")
        asyncio.get_running_loop().call_later(delay, self.wake)

    # -- idle moments ---------------------------------------------------------------------------
    def collect_reports(self, now: float, interval: float) -> None:
        """Idle moment: visit SIMs in inactive slots that owe us status reports.

        A report for a SIM in an inactive slot waits on that SIM (27.005: it is stored
        in its SR memory, with no URC); switching to the slot sweeps it up. Done only
        when no job is waiting, at most once per ``interval`` ([sms]
        collect_interval_seconds) per channel. A visit held back by those bounds is
        booked as a wake-up: at the quiet end of a run no channel event comes to bring
        the next idle moment, and the report waited out its timeout (``no_report``)
        while its SIM sat one slot switch away."""
        owed = self.tracker.sims_waiting()
        if not owed:
            return
        every = min(1.0, interval)
        if now - self._last_collect_round < every:
            self._wake_at(self._last_collect_round + every, now)  # bounded: one scan a second
            return
        self._last_collect_round = now
        for ch in self.bank.channels.values():
            if ch.slots < 2 or ch.state is not ChannelState.IDLE:
                continue  # a busy channel's move back to idle is an event of its own
            slot = next((s for s in ch.sims.values() if s.slot != ch.active_slot and s.sim_id in owed), None)
            if slot is None:
                continue
            last = self._last_collect.get(ch.id, 0.0)
            if now - last < interval:
                self._wake_at(last + interval, now)
                continue
            self._last_collect[ch.id] = now
            self.switch(ch.id, slot.slot, "collecting status reports", now)

    def _wake_at(self, at: float, now: float) -> None:
        """Wake the dispatch loop at ``at`` (one timer: the earliest booked)."""
        if self._collect_wake is not None:
            when, handle = self._collect_wake
            if when <= at:
                return  # an earlier wake-up is booked; its round books the next
            handle.cancel()
        handle = asyncio.get_running_loop().call_later(max(0.0, at - now), self._collect_woken)
        self._collect_wake = (at, handle)

    def _collect_woken(self) -> None:
        self._collect_wake = None
        self.wake()
