"""What a signed-in technician may do from the page, each through the appliance's own
functions, each stored as an event with his name (and logged):

* **quarantine a SIM** (any slot) with his reason — the rotation policy's ``quarantine``,
  the same hold a run of barred calls puts on a SIM: nothing is placed on it until it
  is released; a quarantined active SIM makes the rotation switch its modem to another
  slot when one can work;
* **release a SIM** — the policy's ``release``: its quarantine and every lock lifted,
  the lock rules' streaks restarted;
* **reset a modem** — what supervision does to a stuck modem: the dialect's reset
  (``AT+CFUN=1,1``), the port closed and opened again with the bank's backoff. Not
  while it is on a call, switching, opening or already being reopened;
* **switch a modem's slot** — the bank's ``switch`` (only from idle, cooling down or
  quarantined: never during a call); the rotation may switch back later when that
  slot's SIM cannot place calls;
* **drain a modem** before unplugging it — the bank's ``stop`` "when idle": no new call
  is placed on it from now, the call it is on (if any) ends as it would, then its port is
  closed and it stays STOPPED (the page says "draining" meanwhile);
* **bring a modem back** — the bank's ``restart`` of a STOPPED modem: its port opened
  again, its SIM read, back in rotation once it is idle.
* **selftest one SIM** — ``provision selftest``'s checks (registration, signal, an SMS
  and a call to the technician's reference number, a balance USSD) on the modem the
  bank holds, switched to the SIM's slot first (technician/selftest.py); the result is
  an event in words. Only from idle or cooling down (as a job takes a modem).

A SIM is named by its modem and slot, never by its ICCID (the page shows ICCIDs
masked). Quarantine and release write the rotation snapshot at once (the scheduler
checkpoints it only after its own changes), so a restart keeps them.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, Final

from common.clock import iso
from common.phone import NumberError, normalise
from modem_drivers.background import Background

from ..bank import Bank, ModemAction
from ..channel import SWITCHABLE, Channel, ChannelState
from ..config import ApplianceConfig
from ..rotation import RotationPolicy
from ..store import Store
from .selftest import TESTABLE, run_selftest
from .words import sim_tail

logger = logging.getLogger(__name__)

#: States a modem may be reset from: not on a call (a reset would drop it: wait or let
#: it end), not switching or opening (the bank is talking to it).
RESETTABLE: Final = frozenset({ChannelState.IDLE, ChannelState.COOLING, ChannelState.FAULTY, ChannelState.QUARANTINED})
#: A technician's reason for a quarantine: one line, as the evidence shows it.
MAX_REASON: Final = 200


class ActionRefused(Exception):
    """An action that cannot be done now; ``str()`` says why, ``status`` is the HTTP code."""

    def __init__(self, message: str, status: int = 409) -> None:
        super().__init__(message)
        self.status = status


class Actions:
    def __init__(self, bank: Bank, policy: RotationPolicy, store: Store, cfg: ApplianceConfig, *,
                 clock: Callable[[], float] = time.time) -> None:
        self.bank = bank
        self.policy = policy
        self.store = store
        self.cfg = cfg
        self.clock = clock
        self.testing: set[str] = set()  # modems a selftest holds or is about to
        self.tasks = Background("technician actions", logger)

    # -- lookups --------------------------------------------------------------------------
    def _channel(self, channel_id: Any) -> Channel:
        ch = self.bank.channels.get(channel_id) if isinstance(channel_id, str) else None
        if ch is None:
            raise ActionRefused(f"no modem {str(channel_id)[:40]!r} on this appliance", 404)
        return ch

    def _slot(self, ch: Channel, slot: Any) -> int:
        if not isinstance(slot, int) or isinstance(slot, bool) or not 0 <= slot < ch.slots:
            raise ActionRefused(f"modem {ch.id} has slots 0 to {ch.slots - 1} (the page shows them as 1 to {ch.slots}); "
                                f"got {str(slot)[:20]!r}", 400)
        return slot

    def _sim(self, channel_id: Any, slot: Any) -> tuple[Channel, str]:
        ch = self._channel(channel_id)
        n = self._slot(ch, slot)
        s = ch.sims.get(n)
        if s is None or not s.sim_id:
            raise ActionRefused(f"modem {ch.id} slot {n + 1}: no SIM read there")
        if not self.policy.knows(s.sim_id):
            raise ActionRefused(f"modem {ch.id} slot {n + 1}: SIM {sim_tail(s.sim_id)} is not in rotation "
                                "(locked by its PIN or not ready): nothing to quarantine or release")
        return ch, s.sim_id

    def _saved(self, now: float) -> None:
        # The scheduler's checkpoint format (appliance/scheduler/shell.py, _save_rotation).
        self.store.set_kv("rotation", {"at": now, "policy": self.policy.snapshot()})

    # -- actions ----------------------------------------------------------------------------
    def quarantine(self, by: str, channel_id: Any, slot: Any, reason: Any) -> str:
        if not isinstance(reason, str) or not reason.strip() or len(reason) > MAX_REASON or "\n" in reason:
            raise ActionRefused(f"a quarantine needs a reason: one line of 1 to {MAX_REASON} characters", 400)
        ch, sim_id = self._sim(channel_id, slot)
        now = self.clock()
        evidence = (f"{iso(now, ms=False)} quarantined by {by}: {reason.strip()}",)
        self.policy.quarantine(sim_id, evidence, now)
        self._saved(now)
        self.store.log_event("sim_quarantined", sim_id, {"evidence": list(evidence), "by": by, "reason": reason.strip(),
                                                          "channel": ch.id, "slot": slot}, now)
        logger.warning("SIM %s (%s slot %d) quarantined by technician %s: %s", sim_tail(sim_id), ch.id, slot + 1, by,
                       reason.strip())
        return f"SIM {sim_tail(sim_id)} ({ch.id} slot {slot + 1}) quarantined: nothing is placed on it until released"

    def release(self, by: str, channel_id: Any, slot: Any) -> str:
        ch, sim_id = self._sim(channel_id, slot)
        now = self.clock()
        self.policy.release(sim_id, now)
        self._saved(now)
        self.store.log_event("sim_released", sim_id, {"by": by, "channel": ch.id, "slot": slot}, now)
        logger.warning("SIM %s (%s slot %d) released by technician %s", sim_tail(sim_id), ch.id, slot + 1, by)
        return f"SIM {sim_tail(sim_id)} ({ch.id} slot {slot + 1}) released: back in rotation"

    def reset(self, by: str, channel_id: Any) -> str:
        ch = self._channel(channel_id)
        if ch.state not in RESETTABLE:
            raise ActionRefused(f"modem {ch.id} is {ch.state.value.replace('_', ' ')}: a reset waits until it is idle "
                                "(a reset during a call would drop it)")
        if ch.id not in self.bank.modems:
            raise ActionRefused(f"modem {ch.id}: the appliance is already reopening its port ({ch.reason})")
        now = self.clock()
        reason = f"reset by technician {by}"
        self.bank.reset(ch.id, reason)
        self.store.log_event("modem_reset", ch.id, {"by": by}, now)
        logger.warning("modem %s reset by technician %s", ch.id, by)
        return f"modem {ch.id} resetting: out of service until it answers again (usually under a minute)"

    def switch(self, by: str, channel_id: Any, slot: Any) -> str:
        ch = self._channel(channel_id)
        n = self._slot(ch, slot)
        if ch.slots < 2:
            raise ActionRefused(f"modem {ch.id} has one slot: nothing to switch to")
        if n == ch.active_slot:
            raise ActionRefused(f"modem {ch.id} is on slot {n + 1} already")
        if ch.state not in SWITCHABLE:
            raise ActionRefused(f"modem {ch.id} is {ch.state.value.replace('_', ' ')}: a slot switch waits until it is "
                                "idle (never during a call)")
        now = self.clock()
        self.tasks.spawn(self.bank.switch(ch.id, n, reason=f"asked by technician {by}"), f"slot switch of {ch.id}")
        self.store.log_event("slot_switch", ch.id, {"by": by, "slot": n}, now)
        logger.warning("modem %s: switch to slot %d asked by technician %s", ch.id, n + 1, by)
        return f"modem {ch.id} switching to slot {n + 1}: out of service while the SIM registers (up to a minute)"

    def drain(self, by: str, channel_id: Any) -> str:
        ch = self._channel(channel_id)
        if ch.state is ChannelState.STOPPED:
            raise ActionRefused(f"modem {ch.id} is stopped already: nothing to drain")
        if ch.pending is not None:
            raise ActionRefused(f"modem {ch.id}: a {ch.pending} is already asked ({ch.reason})")
        now = self.clock()
        busy = ch.job_id
        self.bank.control(ch.id, ModemAction.STOP, when_idle=True)
        self.store.log_event("modem_drained", ch.id, {"by": by, "job": busy}, now)
        logger.warning("modem %s: drain asked by technician %s%s", ch.id, by, f" (job {busy} on it)" if busy else "")
        if ch.state is ChannelState.STOPPED:
            return f"modem {ch.id} stopped: no call was on it; it can be unplugged (Bring back puts it in service)"
        return (f"modem {ch.id} draining: no new calls; it stops when {f'job {busy}' if busy else 'its work'} ends, "
                "then it can be unplugged")

    def bring_back(self, by: str, channel_id: Any) -> str:
        ch = self._channel(channel_id)
        if ch.state is not ChannelState.STOPPED or ch.pending is not None:
            what = f"draining ({ch.reason})" if ch.pending == ModemAction.STOP.value else \
                ch.state.value.replace("_", " ")
            raise ActionRefused(f"modem {ch.id} is {what}: only a stopped modem is brought back")
        now = self.clock()
        self.bank.control(ch.id, ModemAction.RESTART)
        self.store.log_event("modem_brought_back", ch.id, {"by": by}, now)
        logger.warning("modem %s brought back by technician %s", ch.id, by)
        return f"modem {ch.id} coming back: its port is opened and its SIM read (usually under a minute)"

    def selftest(self, by: str, channel_id: Any, slot: Any, reference: Any) -> str:
        ch = self._channel(channel_id)
        n = self._slot(ch, slot)
        if reference is None or (isinstance(reference, str) and not reference.strip()):
            number = None
        else:
            try:
                number = normalise(reference, valid=False)
            except NumberError as exc:
                raise ActionRefused(f"reference: {exc} (the phone the test SMS and call go to; empty to skip them)",
                                    400) from None
        if ch.id in self.testing:
            raise ActionRefused(f"modem {ch.id}: a selftest is running on it already")
        if ch.state not in TESTABLE or ch.pending is not None or ch.id not in self.bank.modems:
            raise ActionRefused(f"modem {ch.id} is {ch.state.value.replace('_', ' ')} ({ch.reason}): a selftest takes "
                                "it only when idle (as a call would)")
        self.testing.add(ch.id)
        s = ch.sims.get(n)
        sim = sim_tail(s.sim_id) if s and s.sim_id else f"slot {n + 1}"

        async def test() -> None:
            try:
                await run_selftest(self.bank, self.store, self.cfg, by, ch.id, n, number)
            finally:
                self.testing.discard(ch.id)

        self.tasks.spawn(test(), f"selftest of {ch.id} slot {n + 1}")
        logger.warning("modem %s slot %d: selftest asked by technician %s", ch.id, n + 1, by)
        return (f"selftest of SIM {sim} ({ch.id} slot {n + 1}) started: the modem is out of rotation for up to a "
                "minute; the result comes in the events" + ("" if number else " (no reference number: no SMS, no call)"))

    async def close(self) -> None:
        await self.tasks.cancel_all()
