"""The bank: the multiplexer that turns a rack of modems into channels.

It opens every modem concurrently in one event loop, reads the SIM in each slot, keeps
each channel's state (``appliance.channel``) and supervises the hardware without polling
storms:

* registration and signal come from URCs where the dialect has them; a paced check
  (``supervision.check_interval_seconds``, jittered so 1,000 modems never ask at once)
  covers the rest and doubles as the stuck-modem detector;
* a modem that stops answering is reset (dialect reset command), then its port is closed
  and reopened with capped exponential backoff;
* a vanished port is reopened by the AT layer itself; the bank marks the channel faulty
  meanwhile and re-reads the SIM when it is back;
* SIM-slot switches happen only on idle channels, take the channel out of service while
  the modem re-registers, and are planned by the rotation policy;
* a SIM left locked (a wrong PIN, its PUK wanted, one try left: ``modem_drivers.pin``)
  stops its channel with a reason that says what a person must do; the port is let go so
  ``simrotor modem unlock PORT`` can use it, and looked at again with backoff (nothing is
  sent to the SIM) until the SIM is found unlocked. Rejected PINs are remembered in the
  appliance's store, so a restart does not try them again;
* a person stops, restarts or removes one modem (``control``: the local API's
  ``POST /api/modems/{id}/stop|restart|remove``) while the others keep working: it leaves
  rotation at once (no new job), its job runs to its end ("when idle") or its call is
  hung up now, then its ports are closed; a restart opens it again, a remove forgets it
  until the config names it again (the next start).
"""
from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import random
import time
from collections.abc import Callable
from typing import Any, Final

from modem_drivers.at import AtError, AtTimeout, TimeoutClass
from modem_drivers.background import Background
from modem_drivers.errors import (
    ForeignModem,
    ModemError,
    PinError,
    SimPinRequired,
    SimPukRequired,
    Unsupported,
    WrongPin,
)
from modem_drivers.modem import Modem
from modem_drivers.pin import MemoryPinMarks, PinMarks, PinWithheld, tries_text
from modem_drivers.types import (
    ModemEvent,
    PinState,
    PortLost,
    PortRestored,
    RegistrationChanged,
)

from .channel import SWITCHABLE, Channel, ChannelState, SlotSim

logger = logging.getLogger(__name__)

#: After a slot switch the modem must find and register on a network: 3GPP TS 23.122
#: leaves it to the network; field practice with SIM800/EC25 is 5–30 s. We wait this long.
REGISTRATION_TIMEOUT: Final = 60.0
#: Consecutive unanswered supervision checks before a modem counts as stuck.
STUCK_AFTER: Final = 2

ChangeListener = Callable[[Channel, ChannelState, ChannelState, str], None]
EventListener = Callable[[Channel, ModemEvent], None]
RemoveListener = Callable[[Channel], None]


class ModemAction(enum.Enum):
    """What a person can do to one modem without restarting the appliance."""

    STOP = "stop"
    RESTART = "restart"
    REMOVE = "remove"


class ControlError(LookupError):
    """A control asked of a modem the bank does not have (unknown, or removed)."""


#: States in which the channel is doing work that a stop "when idle" lets end first: a job
#: or callback (BUSY), a SIM-slot switch, the first open (they settle on their own).
WORKING: Final = frozenset({ChannelState.BUSY, ChannelState.SWITCHING, ChannelState.OPENING})


class Bank:
    def __init__(
        self,
        channels: list[Channel],
        *,
        check_interval: float = 60.0,
        command_timeout: float = 10.0,
        reopen_backoff: tuple[float, float] = (1.0, 60.0),
        discover_slots: bool = True,
        rng: random.Random | None = None,
        pin_marks: PinMarks | None = None,
    ) -> None:
        self.channels: dict[str, Channel] = {c.id: c for c in channels}
        self.modems: dict[str, Modem] = {}
        self.check_interval = check_interval
        self.command_timeout = command_timeout
        self.reopen_backoff = reopen_backoff
        self.discover_slots = discover_slots
        self.rng = rng or random.Random()
        self._change_listeners: list[ChangeListener] = []
        self._event_listeners: list[EventListener] = []
        self._tasks = Background("bank", logger)
        self._cooling: dict[str, asyncio.TimerHandle] = {}
        self._closing = False
        self._foreigners: set[str] = set()  # channels whose port another modem answers now
        #: Rejected PINs per SIM; the runtime passes its store so they survive a restart.
        self.pin_marks: PinMarks = pin_marks if pin_marks is not None else MemoryPinMarks()
        self._pin_watched: set[str] = set()
        self._remove_listeners: list[RemoveListener] = []
        #: Per channel, bumped at every stop: a reopen or look of an older epoch gives up,
        #: and a modem it opened after the stop is closed, not attached.
        self._epoch: dict[str, int] = {}
        self._closers: dict[str, asyncio.Task[None]] = {}  # ports being closed after a stop
        #: Modems removed by a person: id -> what the status shows (port, when, why).
        self.removed: dict[str, dict[str, object]] = {}

    # -- listeners ----------------------------------------------------------------------
    def on_change(self, cb: ChangeListener) -> None:
        self._change_listeners.append(cb)

    def on_event(self, cb: EventListener) -> None:
        self._event_listeners.append(cb)

    def on_remove(self, cb: RemoveListener) -> None:
        """``cb(channel)`` after a modem was removed (its SIMs leave the rotation policy)."""
        self._remove_listeners.append(cb)

    def _move(self, ch: Channel, new: ChannelState, reason: str) -> None:
        if ch.state is ChannelState.STOPPED and new is not ChannelState.OPENING:
            return  # a task of before the stop (a reopen, a look) settling: the stop stands
        if ch.pending is not None and new not in WORKING and new is not ChannelState.STOPPED:
            # The work a stop "when idle" waited for is over: stop instead of taking jobs.
            self._apply_pending(ch)
            return
        old, _ = ch.move(new, reason)
        if old is not new:
            logger.info("channel %s: %s -> %s (%s)", ch.id, old.value, new.value, reason)
        for cb in list(self._change_listeners):
            try:
                cb(ch, old, new, reason)
            except Exception:
                logger.exception("channel listener failed")

    def _spawn(self, coro: Any, what: str) -> asyncio.Task[Any]:
        return self._tasks.spawn(coro, what)

    # -- start / stop ------------------------------------------------------------------
    async def start(self) -> None:
        await asyncio.gather(*(self._bring_up(ch) for ch in self.channels.values()))
        for ch in self.channels.values():
            self._spawn(self._supervise(ch), f"supervision of {ch.id}")

    async def close(self) -> None:
        self._closing = True
        for h in self._cooling.values():
            h.cancel()
        await self._tasks.cancel_all()
        await asyncio.gather(*(m.close() for m in self.modems.values()), *self._closers.values(),
                             return_exceptions=True)

    async def _open(self, ch: Channel) -> Modem:
        modem = await Modem.open(ch.port, pin=ch.pin, name=ch.id, pin_marks=self.pin_marks, expected_imei=ch.imei)
        if ch.audio is not None:
            # The audio port opens with the modem; one that fails leaves the channel on the
            # modem's own TTS (a lost port is reopened before each dial, modem/audio.py).
            try:
                await modem.audio_port(ch.audio)
            except (AtError, ModemError, OSError) as exc:
                logger.warning("channel %s: audio port %s not opened: %s", ch.id, ch.audio, exc)
        return modem

    async def _bring_up(self, ch: Channel) -> None:
        epoch = self._epoch.get(ch.id, 0)
        try:
            modem = await self._open(ch)
        except (AtError, ModemError, OSError) as exc:
            self._move(ch, ChannelState.FAULTY, f"cannot open: {exc}")
            self._spawn(self._reopen(ch, epoch), f"reopen of {ch.id}")
            return
        if not self._attach(ch, modem, epoch):
            return
        await self._clear_leftover_call(modem)
        await self._read_active_sim(ch)
        if self.discover_slots and ch.slots > 1:
            home = ch.active_slot
            for slot in range(ch.slots):
                if slot >= ch.slots:  # the modem turned out to have fewer slots
                    break
                if slot != home and slot not in ch.sims:
                    await self._switch(ch, slot, reason="discovering SIM slots")
            if ch.active_slot != home:
                await self._switch(ch, home, reason="back to the first slot")
        self._settle(ch, "ready")

    async def _clear_leftover_call(self, modem: Modem) -> None:
        """A call left up by a process that died (kill -9) would block the channel:
        hang it up. Harmless on an idle modem (27.007 §6.5: +CHUP/ATH with no call is OK)."""
        with contextlib.suppress(AtError, ModemError):
            await modem.port.command(modem.dialect.hangup)

    def _attach(self, ch: Channel, modem: Modem, epoch: int) -> bool:
        """Make ``modem`` the channel's; a modem opened by a task of before a stop (or of
        a removed channel) is closed instead, and False returned."""
        if epoch != self._epoch.get(ch.id, 0) or self.channels.get(ch.id) is not ch:
            self._close_later(f"{ch.id}#{id(modem)}", modem)
            return False
        self.modems[ch.id] = modem
        ident = modem.identity
        if ident is not None:
            ch.dialect, ch.model, ch.imei = ident.dialect, ident.model, ident.imei
            modem.expected_imei = ident.imei  # a reopen that finds another modem refuses it
        modem.subscribe(lambda ev, ch=ch: self._on_modem_event(ch, ev))
        return True

    async def _read_active_sim(self, ch: Channel) -> None:
        modem = self.modems.get(ch.id)
        if modem is None:
            return  # stopped meanwhile (Bank.control): its port is closed
        try:
            await self._find_active_slot(ch, modem)
            info = await modem.sim_info()
            reg = await modem.registration_status() if info.pin_state is PinState.READY else None
            sig = await modem.signal() if info.pin_state is PinState.READY else None
        except (AtError, ModemError) as exc:
            ch.sims[ch.active_slot] = SlotSim(ch.active_slot, None, None)
            ch.errors += 1
            logger.warning("channel %s: reading the SIM failed: %s", ch.id, exc)
            return
        known = next((s.slot for s in ch.sims.values() if info.iccid and s.sim_id == info.iccid), None)
        if known is not None and known != ch.active_slot:
            # No slot query, but the card is one we filed under another slot: that is the
            # slot the modem is on (filing it under ours would show callees a wrong number).
            logger.warning("channel %s: the SIM in the modem is the one of slot %d, not %d; slot %d is active",
                           ch.id, known, ch.active_slot, known)
            ch.active_slot = known
        sim_id = info.iccid or f"{ch.id}/{ch.active_slot}"
        ch.sims[ch.active_slot] = SlotSim(ch.active_slot, sim_id, info)
        ch.registered = bool(reg and reg.registered)
        ch.signal_dbm = sig.dbm if sig else None

    async def _find_active_slot(self, ch: Channel, modem: Modem) -> None:
        """Believe the modem about its active slot: after a reopen (USB reset, power loss)
        it is back on its default slot, not the one we last switched it to."""
        if ch.slots < 2:
            return
        slot = await modem.active_slot()
        if slot is not None and slot != ch.active_slot and 0 <= slot < ch.slots:
            logger.warning("channel %s: the modem reports slot %d active, not %d (restarted?)", ch.id, slot, ch.active_slot)
            ch.active_slot = slot

    def _settle(self, ch: Channel, reason: str) -> None:
        """Put a channel that finished some work into the state its SIM allows."""
        sim = ch.active_sim
        info = sim.info if sim else None
        modem = self.modems.get(ch.id)
        problem = modem.pin_problem if modem is not None else None
        if problem is not None and (info is None or info.pin_state is not PinState.READY):
            self._stop_for_pin(ch, problem)
        elif info is None or info.pin_state is not PinState.READY:
            state = info.pin_state.value if info else "unreadable"
            self._move(ch, ChannelState.FAULTY, f"SIM not ready ({state})")
        elif not ch.registered:
            self._move(ch, ChannelState.FAULTY, "not registered")
        else:
            self._move(ch, ChannelState.IDLE, reason)

    # -- use by the scheduler ------------------------------------------------------------
    def acquire(self, channel_id: str, job_id: str) -> Modem:
        ch = self.channels[channel_id]
        self._move(ch, ChannelState.BUSY, f"job {job_id}")
        ch.job_id = job_id
        return self.modems[channel_id]

    def release(self, channel_id: str, *, cooldown: float, reason: str) -> None:
        ch = self.channels.get(channel_id)
        if ch is None:
            return
        ch.job_id = None
        if ch.state is not ChannelState.BUSY:
            return
        if cooldown <= 0:
            self._move(ch, ChannelState.IDLE, reason)
            return
        self._move(ch, ChannelState.COOLING, f"pause after {reason} ({cooldown:.1f} s)")
        loop = asyncio.get_running_loop()

        def cool() -> None:
            self._cooling.pop(channel_id, None)
            if ch.state is ChannelState.COOLING:
                self._move(ch, ChannelState.IDLE, "pause over")

        self._cooling[channel_id] = loop.call_later(cooldown, cool)

    def reset(self, channel_id: str, reason: str) -> None:
        """Reset a modem on a person's word (the technician's page), as the bank resets a
        stuck one: out of service first, so no job takes it while its port is closed and
        opened again (``AT+CFUN=1,1`` where it answers, then the reopen's backoff)."""
        ch = self.channels[channel_id]
        self._move(ch, ChannelState.FAULTY, reason)
        self._spawn(self._reset(ch), f"reset of {ch.id}")

    def audio_fault(self, channel_id: str, detail: str) -> None:
        """A call on this channel ended ``audio_fault`` (no live frames within 500 ms): the
        channel leaves rotation while its modem is checked — the audio port reopened at its
        path when it was lost, the AT side asked for its signal — and comes back when both
        answer; until then the check repeats at the supervision interval."""
        ch = self.channels.get(channel_id)
        if ch is not None and ch.state in (ChannelState.IDLE, ChannelState.COOLING) and ch.audio is not None:
            self._move(ch, ChannelState.FAULTY, f"audio fault, checking the modem: {detail}")
            self._spawn(self._check_audio(ch), f"audio check of {ch.id}")

    async def _check_audio(self, ch: Channel) -> None:
        while not self._closing and ch.id in self.channels and ch.state is ChannelState.FAULTY and ch.reason.startswith("audio fault"):
            modem = self.modems.get(ch.id)
            if modem is not None and ch.audio is not None:
                try:
                    port = modem.audio
                    if port is None or port.closed:
                        await modem.audio_port(ch.audio)
                    await modem.signal()
                except (AtError, ModemError, OSError) as exc:
                    logger.warning("channel %s: audio check failed: %s", ch.id, exc)
                else:
                    if ch.state is ChannelState.FAULTY and ch.reason.startswith("audio fault"):
                        self._settle(ch, "audio port checked")
                    return
            await asyncio.sleep(self.check_interval * self.rng.uniform(0.9, 1.1))

    def quarantine(self, channel_id: str, reason: str) -> None:
        ch = self.channels.get(channel_id)
        if ch is not None and ch.state in (ChannelState.IDLE, ChannelState.COOLING):
            self._move(ch, ChannelState.QUARANTINED, reason)

    def unquarantine(self, channel_id: str, reason: str) -> None:
        ch = self.channels.get(channel_id)
        if ch is not None and ch.state is ChannelState.QUARANTINED:
            self._move(ch, ChannelState.IDLE, reason)

    async def switch(self, channel_id: str, slot: int, *, reason: str) -> bool:
        ch = self.channels[channel_id]
        if ch.state not in SWITCHABLE:
            return False
        ok = await self._switch(ch, slot, reason=reason)
        self._settle(ch, f"SIM slot {slot} active")
        return ok

    async def _switch(self, ch: Channel, slot: int, *, reason: str) -> bool:
        modem = self.modems[ch.id]
        self._move(ch, ChannelState.SWITCHING, f"to slot {slot}: {reason}")
        # Listen for the re-registration before writing the switch (a fast modem reports
        # +CREG in the same breath as OK).
        loop = asyncio.get_running_loop()
        registered: asyncio.Future[None] = loop.create_future()

        def on_event(ev: ModemEvent) -> None:
            if isinstance(ev, RegistrationChanged) and ev.registration.registered and not registered.done():
                registered.set_result(None)

        unsubscribe = modem.subscribe(on_event)
        try:
            try:
                await modem.switch_slot(slot)
            except Unsupported as exc:
                # The config (or the emulator's state file) promised more slots than the
                # modem can switch: use the active slot only, and say so once.
                logger.warning("channel %s: %s; using slot %d only", ch.id, exc, ch.active_slot)
                ch.slots = 1
                return False
            except (AtError, ModemError) as exc:
                logger.warning("channel %s: slot switch to %d failed: %s", ch.id, slot, exc)
                return False
            ch.active_slot = slot
            ch.registered = False
            with contextlib.suppress(AtError, ModemError):
                if await modem.sim_status() in (PinState.SIM_PIN, PinState.SIM_PUK):
                    # A locked SIM cannot register: its PIN first (once, if safe).
                    await modem.initialize(pin=ch.pin)
            deadline = loop.time() + (REGISTRATION_TIMEOUT if modem.pin_problem is None else 0.0)
            while not registered.done() and loop.time() < deadline:
                try:
                    await asyncio.wait_for(asyncio.shield(registered), timeout=min(5.0, deadline - loop.time()))
                except TimeoutError:
                    # A modem without +CREG URCs: ask (paced at 5 s, bounded by the deadline).
                    with contextlib.suppress(AtError, ModemError):
                        if (await modem.registration_status()).registered:
                            break
        finally:
            unsubscribe()
        await modem.initialize(pin=ch.pin)
        await self._read_active_sim(ch)
        return ch.registered

    # -- supervision ---------------------------------------------------------------------
    def _on_modem_event(self, ch: Channel, ev: ModemEvent) -> None:
        if isinstance(ev, PortLost):
            ch.registered = False
            if ch.state is not ChannelState.FAULTY:
                self._move(ch, ChannelState.FAULTY, "port lost")
        elif isinstance(ev, PortRestored) and ev.problem is not None:
            self._foreign(ch, ev.problem)
            self._spawn(self._drop_and_reopen(ch), f"reopen of {ch.id} after a foreign modem")
        elif isinstance(ev, PortRestored):
            self._spawn(self._restored(ch), f"restore of {ch.id}")
        elif isinstance(ev, RegistrationChanged):
            was = ch.registered
            ch.registered = ev.registration.registered
            if ch.state is ChannelState.SWITCHING:
                pass
            elif was and not ch.registered and ch.state in (ChannelState.IDLE, ChannelState.COOLING):
                self._move(ch, ChannelState.FAULTY, f"registration lost ({ev.registration.stat.name.lower()})")
            elif (not was and ch.registered and ch.state is ChannelState.FAULTY and ch.active_sim and ch.active_sim.info
                  and ch.id not in self._foreigners):
                self._move(ch, ChannelState.IDLE, "registered again")
        for cb in list(self._event_listeners):
            try:
                cb(ch, ev)
            except Exception:
                logger.exception("bank event listener failed")

    def _foreign(self, ch: Channel, why: str) -> None:
        """Another modem answers on the channel's port (tty numbers move when a hub
        re-enumerates; a dead pty's number goes to the next program that asks): the driver
        refused to set it up (modem_drivers.errors.ForeignModem), and the channel stays out
        of service, its reason saying so, until its own modem is back."""
        self._foreigners.add(ch.id)
        if ch.reason != why:
            logger.warning("channel %s: %s", ch.id, why)
            self._move(ch, ChannelState.FAULTY, why)

    async def _restored(self, ch: Channel) -> None:
        self._foreigners.discard(ch.id)
        await self._read_active_sim(ch)
        if ch.state is ChannelState.FAULTY:
            self._settle(ch, "port back")

    async def _supervise(self, ch: Channel) -> None:
        """Paced health check of one channel; jittered start so checks never bunch up."""
        await asyncio.sleep(self.rng.uniform(0, self.check_interval))
        misses = 0
        while not self._closing and self.channels.get(ch.id) is ch:
            modem = self.modems.get(ch.id)
            if modem is not None and ch.state in (ChannelState.IDLE, ChannelState.COOLING, ChannelState.FAULTY):
                try:
                    # A check misses when +CSQ is not answered within [supervision]
                    # stuck_timeout_seconds (at most the AT DEFAULT class's 3 s), its wait behind
                    # the last check's unanswered command (the port's 2 s hold) included.
                    bound = min(self.command_timeout, TimeoutClass.DEFAULT.seconds)
                    async with asyncio.timeout(bound):
                        sig = await modem.signal(timeout=bound)
                    ch.signal_dbm = sig.dbm
                    reg = await modem.registration_status()
                    ch.registered = reg.registered
                    misses = 0
                    if ch.state is ChannelState.FAULTY and ch.reason in ("not answering", "not registered"):
                        self._settle(ch, "answering again")
                    elif ch.state is ChannelState.IDLE and not reg.registered:
                        self._move(ch, ChannelState.FAULTY, "not registered")
                except (AtTimeout, TimeoutError):
                    misses += 1
                    if misses >= STUCK_AFTER:
                        self._move(ch, ChannelState.FAULTY, "not answering")
                        await self._reset(ch)
                        misses = 0
                except (AtError, ModemError) as exc:
                    logger.debug("channel %s: check failed: %s", ch.id, exc)
            await asyncio.sleep(self.check_interval * self.rng.uniform(0.9, 1.1))

    async def _reset(self, ch: Channel) -> None:
        epoch = self._epoch.get(ch.id, 0)
        modem = self.modems.pop(ch.id, None)
        if modem is not None:
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(modem.reset(), 2.0)
            with contextlib.suppress(BaseException):
                await modem.close()
        await self._reopen(ch, epoch)

    async def _drop_and_reopen(self, ch: Channel) -> None:
        """Let go of a port that leads to another modem and open its name again, with
        backoff, until our own modem (by IMEI) answers there."""
        epoch = self._epoch.get(ch.id, 0)
        modem = self.modems.pop(ch.id, None)
        if modem is not None:
            with contextlib.suppress(BaseException):
                await modem.close()
        await self._reopen(ch, epoch)

    async def _reopen(self, ch: Channel, epoch: int) -> None:
        """Open the channel's port again with capped backoff; gives up when a person
        stopped the modem since ``epoch`` (the epoch its caller started in)."""
        delay, cap = self.reopen_backoff
        while (not self._closing and epoch == self._epoch.get(ch.id, 0)
               and ch.state is not ChannelState.STOPPED):
            try:
                modem = await self._open(ch)
            except (AtError, ModemError, OSError) as exc:
                if isinstance(exc, ForeignModem):
                    self._foreign(ch, str(exc))
                logger.info("channel %s: reopen failed (%s); next try in %.1f s", ch.id, exc, delay)
                await asyncio.sleep(delay)
                delay = min(cap, delay * 2)
                continue
            self._foreigners.discard(ch.id)
            if self._attach(ch, modem, epoch):
                await self._read_active_sim(ch)
                self._settle(ch, "reopened")
            return

    # -- locked SIMs -------------------------------------------------------------------
    def _stop_for_pin(self, ch: Channel, problem: PinError) -> None:
        """Stop a channel whose SIM stayed locked, say what a person must do, and let go of
        the port (``simrotor modem unlock`` needs it) while watching for the SIM's unlock."""
        reason = pin_stop_reason(ch, problem)
        if ch.state is not ChannelState.FAULTY or ch.reason != reason:
            self._move(ch, ChannelState.FAULTY, reason)
            logger.warning(
                "channel %s stopped: %s", ch.id, reason,
                extra={"event": "pin_stop", "channel": ch.id, "port": ch.port, "problem": type(problem).__name__,
                       "tries_left": problem.tries_left},
            )
        if ch.id not in self._pin_watched:
            self._pin_watched.add(ch.id)
            self._spawn(self._watch_locked(ch), f"locked-SIM watch of {ch.id}")

    async def _watch_locked(self, ch: Channel) -> None:
        """Release the port, then look again with capped backoff: each look opens the modem
        and reads the SIM's state and tries (no PIN is sent while the mark stands, with one
        try left, or for a PUK), and closes it again unless the SIM is unlocked now."""
        delay, cap = self.reopen_backoff
        epoch = self._epoch.get(ch.id, 0)
        try:
            await self._release(ch)
            while not self._closing:
                await asyncio.sleep(delay)
                delay = min(cap, delay * 2)
                if epoch != self._epoch.get(ch.id, 0):
                    return  # stopped by a person meanwhile; a restart looks again itself
                try:
                    modem = await self._open(ch)
                except (AtError, ModemError, OSError) as exc:
                    logger.debug("channel %s: locked-SIM look failed (%s); next in %.1f s", ch.id, exc, delay)
                    continue
                if not self._attach(ch, modem, epoch):
                    return
                await self._read_active_sim(ch)
                if modem.pin_problem is None:
                    self._settle(ch, "SIM unlocked")
                    return
                self._stop_for_pin(ch, modem.pin_problem)  # the reason may say other tries now
                await self._release(ch)
        finally:
            self._pin_watched.discard(ch.id)

    async def _release(self, ch: Channel) -> None:
        modem = self.modems.pop(ch.id, None)
        if modem is not None:
            with contextlib.suppress(Exception):
                await modem.close()

    # -- a person's controls --------------------------------------------------------------
    def control(self, channel_id: str, action: ModemAction, *, when_idle: bool = False) -> dict[str, object]:
        """Stop, restart or remove one modem while the rest of the bank works on. It leaves
        rotation at once; work on it (a job, a callback, a balance check, a slot switch)
        ends first when ``when_idle``, else its call is hung up now (the job ends with its
        normal result). Then its ports are closed: ``stop`` leaves it so (STOPPED), ``restart``
        opens it again, ``remove`` forgets it (``removed``) until the config names it again.
        Returns the channel's public view; its ``pending`` names the action still waiting
        and its ``reason`` says for what. Raises ``ControlError`` for an unknown modem."""
        ch = self.channels.get(channel_id)
        if ch is None:
            if channel_id in self.removed:
                raise ControlError(f"modem {channel_id} was removed; it comes back when the appliance starts "
                                   "with a config naming it")
            raise ControlError(f"no modem {channel_id!r}; the modems are: {', '.join(sorted(self.channels)) or 'none'}")
        ch.pending = action.value
        if ch.state in WORKING:
            call = getattr(self.modems.get(ch.id), "call", None)
            hang_up = not when_idle and call is not None and not call.released
            what = f"job {ch.job_id}" if ch.job_id else ch.state.value.replace("_", " ")
            ch.reason = (f"{action.value} asked: hanging up the call of {what} now" if hang_up else
                         f"{action.value} asked: waiting for {what} to end "
                         + ("(when idle)" if when_idle else "(no call to hang up)"))
            logger.info("channel %s: %s", ch.id, ch.reason)
            if hang_up:
                self._spawn(self.modems[ch.id].hangup(), f"hang-up of {ch.id} for a {action.value}")
        else:
            self._apply_pending(ch)
        return {**ch.public(), "removed": ch.id in self.removed}

    def _apply_pending(self, ch: Channel) -> None:
        action = ModemAction(ch.pending)
        ch.pending = None
        if ch.state is not ChannelState.STOPPED:
            self._stop(ch, {ModemAction.STOP: "stopped by a person",
                            ModemAction.RESTART: "stopped for a restart asked by a person",
                            ModemAction.REMOVE: "removed by a person"}[action])
        if action is ModemAction.RESTART:
            self._spawn(self._restart(ch), f"restart of {ch.id}")
        elif action is ModemAction.REMOVE:
            self._forget(ch)

    def _stop(self, ch: Channel, reason: str) -> None:
        """Out of rotation now (STOPPED), its tasks of before given up, its ports closed."""
        self._epoch[ch.id] = self._epoch.get(ch.id, 0) + 1
        timer = self._cooling.pop(ch.id, None)
        if timer is not None:
            timer.cancel()
        self._move(ch, ChannelState.STOPPED, reason)
        ch.registered = False
        self._foreigners.discard(ch.id)
        modem = self.modems.pop(ch.id, None)
        if modem is not None:
            self._close_later(ch.id, modem)

    def _close_later(self, key: str, modem: Modem) -> None:
        task = asyncio.ensure_future(self._close_quietly(modem))
        self._closers[key] = task
        task.add_done_callback(lambda t: self._closers.pop(key, None) if self._closers.get(key) is t else None)

    @staticmethod
    async def _close_quietly(modem: Modem) -> None:
        with contextlib.suppress(Exception):
            await modem.close()

    async def _restart(self, ch: Channel) -> None:
        closing = self._closers.get(ch.id)
        if closing is not None:
            await asyncio.shield(closing)  # the port is exclusive: closed before it is opened again
        if ch.state is not ChannelState.STOPPED or self._closing or self.channels.get(ch.id) is not ch:
            return
        self._epoch[ch.id] = self._epoch.get(ch.id, 0) + 1
        self._move(ch, ChannelState.OPENING, "restarting (asked by a person)")
        await self._bring_up(ch)

    def _forget(self, ch: Channel) -> None:
        del self.channels[ch.id]
        self.removed[ch.id] = {"id": ch.id, "port": ch.port, "imei": ch.imei, "removed_at": time.time(),
                               "reason": "removed by a person; back when the appliance starts with a config naming it"}
        logger.info("channel %s removed (port %s)", ch.id, ch.port)
        for cb in list(self._remove_listeners):
            try:
                cb(ch)
            except Exception:
                logger.exception("bank remove listener failed")

    # -- views -------------------------------------------------------------------------
    def sims(self) -> list[tuple[Channel, SlotSim]]:
        return [(ch, s) for ch in self.channels.values() for s in ch.sims.values() if s.sim_id]

    def snapshot(self) -> list[dict[str, object]]:
        return [ch.public() for ch in self.channels.values()]


def pin_stop_reason(ch: Channel, problem: PinError) -> str:
    """What a person reads on the page and in ``GET /api/channels`` for a locked SIM: the
    problem with its tries left, the config key to fix and the command to run."""
    tries = tries_text(problem.tries_left)
    unlock = f"simrotor modem unlock {ch.port}"
    if isinstance(problem, WrongPin):
        return f"wrong PIN ({tries}): fix [[modem]] {ch.id} pin and run `{unlock} --pin P`"
    if isinstance(problem, SimPukRequired):
        return f"SIM needs its PUK ({tries}): run `{unlock} --puk P --new-pin N`, then set [[modem]] {ch.id} pin = N"
    if isinstance(problem, PinWithheld):
        return f"SIM PIN not sent ({tries}): a person decides: run `{unlock} --pin P --last-try`"
    if isinstance(problem, SimPinRequired):
        return f"SIM needs its PIN ({tries}): set [[modem]] {ch.id} pin, or run `{unlock} --pin P`"
    return f"SIM locked: {problem}"
