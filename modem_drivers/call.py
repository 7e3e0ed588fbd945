"""A voice call on one modem, as a small state machine driven by call-progress URCs.

Rules of the machine (a table, as h11 keeps its states):

* a call starts DIALING when ``ATD`` is written;
* it moves forward only: DIALING → ALERTING → ACTIVE → RELEASED, and may skip states
  (busy and unassigned numbers never alert; some modems report ACTIVE without ALERTING);
* a report of a state the call already passed is a duplicate (SIMCom repeats ``+CLCC``,
  a ``NO CARRIER`` follows ``+CLCC: …,6``) and is ignored; a report of an earlier state is
  a protocol error: logged, ignored, never fatal;
* RELEASED is final and carries the Q.850 cause when the modem told it.

The dialect decides which URCs carry the reports; its readers (``dialects/progress.py``,
beside the rows in ``dialects/tables.py``) turn each vendor's line into ``(state, cause)``.
"""
from __future__ import annotations

import asyncio
import dataclasses
import enum
import logging
import time
from collections.abc import Callable
from typing import Final

from common.contract import Outcome
from common.phone import mask

from .deadlines import coarse_timeout
from .q850 import outcome_for

logger = logging.getLogger(__name__)


class CallState(enum.Enum):
    DIALING = "dialing"
    ALERTING = "alerting"
    ACTIVE = "active"
    RELEASED = "released"


#: state -> states it may move to.
TRANSITIONS: Final[dict[CallState, frozenset[CallState]]] = {
    CallState.DIALING: frozenset({CallState.ALERTING, CallState.ACTIVE, CallState.RELEASED}),
    CallState.ALERTING: frozenset({CallState.ACTIVE, CallState.RELEASED}),
    CallState.ACTIVE: frozenset({CallState.RELEASED}),
    CallState.RELEASED: frozenset(),
}
_ORDER: Final = {s: i for i, s in enumerate(CallState)}

@dataclasses.dataclass(frozen=True, slots=True)
class CallEvent:
    state: CallState
    at: float  # time.monotonic()
    cause: int | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class CallReport:
    """What a finished call looked like: timestamps (UTC, ISO) and its cause."""

    number: str
    outcome: Outcome
    cause: int | None
    dialed_at: float
    alerting_at: float | None
    answered_at: float | None
    ended_at: float | None
    talk_seconds: float
    local_release: bool


class Call:
    """One call: outbound (``Modem.dial``), or an incoming one we answered (``Modem.answer``,
    ``incoming``: it starts DIALING while ``ATA`` is in flight and is ACTIVE once the modem
    says the call is connected); fed by the modem's URC handling.

    Its fields are read by anyone and written only by its own methods below, each of
    which checks the change against ``TRANSITIONS``."""

    def __init__(self, number: str, *, on_change: Callable[[Call, CallEvent], None] | None = None,
                 incoming: bool = False):
        self.number = number
        self.incoming = incoming  # answered by us (a callback), not dialled
        self.state = CallState.DIALING
        self.cause: int | None = None
        self.local_release = False
        self.channel_lost = False  # our modem failed under the call: port lost, or no answer (stuck)
        self.releasing = False  # a release was reported; its cause is being asked (+CEER)
        self.times: dict[CallState, float] = {CallState.DIALING: time.monotonic()}
        self._changed = asyncio.Event()
        self._released = asyncio.Event()
        self._on_change = on_change

    # -- driven by the modem -------------------------------------------------------
    def advance(self, state: CallState, cause: int | None = None) -> bool:
        """Apply a reported state; returns True when it changed the call."""
        if state is self.state or _ORDER[state] < _ORDER[self.state]:
            if _ORDER[state] < _ORDER[self.state]:
                logger.debug("call %s: ignoring %s after %s", mask(self.number), state.value, self.state.value)
            if state is CallState.RELEASED and cause is not None and self.cause is None:
                self.cause = cause
            return False
        if state not in TRANSITIONS[self.state]:
            logger.warning("call %s: %s -> %s is not a valid move", mask(self.number), self.state.value, state.value)
            return False
        # Fill skipped states' timestamps only for those the call really passed.
        self.state = state
        self.times[state] = time.monotonic()
        if cause is not None:
            self.cause = cause
        event = CallEvent(state, self.times[state], self.cause)
        if state is CallState.RELEASED:
            self._released.set()
        self._changed.set()
        self._changed = asyncio.Event()
        if self._on_change is not None:
            try:
                self._on_change(self, event)
            except Exception:  # a listener must never break the call
                logger.exception("call listener failed")
        return True

    def release(self, cause: int | None = None) -> bool:
        """The call ended, with the Q.850 ``cause`` when the modem told it."""
        return self.advance(CallState.RELEASED, cause)

    def release_reported(self) -> bool:
        """A release was reported whose cause is still to be asked (+CEER, or its own URC):
        True the first time (the caller goes and asks), False after or once released."""
        if self.released or self.releasing:
            return False
        self.releasing = True
        return True

    def channel_failed(self) -> bool:
        """Our modem failed under the call (port lost, or no answer: stuck): released here,
        a channel error unless it was answered. False when it was released already."""
        if self.released:
            return False
        self.channel_lost = True
        return self.advance(CallState.RELEASED, None)

    def hung_up(self, cause: int) -> None:
        """We hung up: a local release, released with ``cause``; when the modem's report
        released it first, its cause stands and ``cause`` only fills a missing one."""
        self.local_release = True
        if not self.released:
            self.advance(CallState.RELEASED, cause)
        elif self.cause is None:
            self.cause = cause

    # -- for the caller --------------------------------------------------------------
    @property
    def released(self) -> bool:
        return self.state is CallState.RELEASED

    async def wait_for(self, *states: CallState, timeout: float | None = None) -> CallState:
        """Wait until the call reaches the earliest of ``states`` or any later state
        (a call answered at once goes DIALING → ACTIVE without ALERTING, and a wait for
        ALERTING must not miss that), or is released; returns the state it is in."""
        floor = min((_ORDER[s] for s in states), default=_ORDER[CallState.RELEASED])
        async with coarse_timeout(timeout):
            while _ORDER[self.state] < floor:
                await self._changed.wait()
        return self.state

    async def wait_released(self, timeout: float | None = None) -> None:
        async with coarse_timeout(timeout):
            await self._released.wait()

    def report(self) -> CallReport:
        answered = CallState.ACTIVE in self.times
        alerted = CallState.ALERTING in self.times or answered
        ended = self.times.get(CallState.RELEASED)
        ans = self.times.get(CallState.ACTIVE)
        talk = (ended - ans) if (ended is not None and ans is not None) else 0.0
        outcome = outcome_for(self.cause, answered=answered, alerted=alerted)
        if self.channel_lost and not answered:
            outcome = Outcome.CHANNEL_ERROR  # our modem failed, not the callee
        return CallReport(
            number=self.number,
            outcome=outcome,
            cause=self.cause,
            dialed_at=0.0,
            alerting_at=_rel(self.times, CallState.ALERTING),
            answered_at=_rel(self.times, CallState.ACTIVE),
            ended_at=_rel(self.times, CallState.RELEASED),
            talk_seconds=round(talk, 3),
            local_release=self.local_release,
        )


def _rel(times: dict[CallState, float], state: CallState) -> float | None:
    t = times.get(state)
    return None if t is None else round(t - times[CallState.DIALING], 3)
