"""The dialogue engine, sans-I/O (h11's habit): events in, actions out.

The driver — the live call path, or a test — sends :class:`PromptDone`, :class:`Digit`,
:class:`Timeout` and :class:`Hangup`; the engine answers with :class:`Play`,
:class:`Collect` and finally :class:`End`. It never reads a clock or plays a sample: the
driver times the ``Collect`` and sends ``Timeout``, and stamps each digit with ``at``
(seconds from the answer). A ``Play`` replaces whatever is playing (a key pressed during a
prompt that waits for keys is taken at once, as IVRs let callers type ahead); a
``PromptDone`` naming an older prompt is stale and ignored.

Which event is allowed in which phase is a table (h11's ``_state.py``): anything else is a
driver bug and raises :class:`EngineError`.
"""
from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass, field

from .load import Dialogue
from .model import KEYPAD, Identity, State
from .spoken import say_date
from .variables import JobVariables, fill


class EngineError(RuntimeError):
    """An event the engine cannot take in its phase (a driver bug)."""


# -- events ------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class PromptDone:
    """The prompt finished playing (``prompt_id`` None: whatever is playing)."""

    prompt_id: str | None = None


@dataclass(frozen=True, slots=True)
class Digit:
    """A key pressed, ``at`` seconds from the answer."""

    key: str
    at: float

    def __post_init__(self) -> None:
        if len(self.key) != 1 or self.key not in KEYPAD:
            raise ValueError(f"digit {self.key!r}: expected one of {KEYPAD}")
        if self.at < 0:
            raise ValueError(f"digit at {self.at}: expected seconds from the answer, >= 0")


@dataclass(frozen=True, slots=True)
class Timeout:
    """The last ``Collect`` ran out of time."""


@dataclass(frozen=True, slots=True)
class Hangup:
    """The far end hung up."""


Event = PromptDone | Digit | Timeout | Hangup


# -- actions and the result ----------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Play:
    """Play this prompt; ``prompt_id`` is the state's name."""

    prompt_id: str
    text: str


@dataclass(frozen=True, slots=True)
class Collect:
    """Wait for ``digits`` keys, at most ``timeout_s`` seconds, then send ``Timeout``."""

    digits: int
    timeout_s: float


@dataclass(frozen=True, slots=True)
class Result:
    """What the dialogue learnt: the voicebot part of a call's result."""

    identity: Identity
    promise_date: dt.date | None
    callback_requested: bool
    path: tuple[str, ...]
    digits: tuple[tuple[str, float], ...]
    end_state: str | None  # None: the caller hung up first
    hung_up: bool

    def to_dict(self) -> dict[str, object]:
        return {"identity": self.identity.value,
                "promise_date": self.promise_date.isoformat() if self.promise_date else None,
                "callback_requested": self.callback_requested, "path": list(self.path),
                "digits": [{"key": k, "at": at} for k, at in self.digits],
                "end_state": self.end_state, "hung_up": self.hung_up}


@dataclass(frozen=True, slots=True)
class End:
    """The dialogue is over; hang up after the last prompt."""

    result: Result


Action = Play | Collect | End


class Phase(enum.Enum):
    PLAYING = "playing"  # a prompt is playing
    COLLECTING = "collecting"  # waiting for keys after a prompt
    ENDED = "ended"


#: Which event each phase takes; a missing pair is a driver bug.
_TAKES: dict[Phase, frozenset[type]] = {
    Phase.PLAYING: frozenset({PromptDone, Digit, Hangup}),
    Phase.COLLECTING: frozenset({Digit, Timeout, Hangup}),
    Phase.ENDED: frozenset({Hangup, PromptDone}),  # late reports after the end are harmless
}
#: Digits of a DDMM date.
_DATE_DIGITS = 4


@dataclass(slots=True)
class Engine:
    """One run of a dialogue for one call. ``start()`` first, then ``handle(event)``."""

    dialogue: Dialogue
    variables: JobVariables
    phase: Phase = Phase.PLAYING
    state: str = ""
    identity: Identity = Identity.UNKNOWN
    promise_date: dt.date | None = None
    candidate: dt.date | None = None  # the date keyed in, until it is confirmed
    callback_requested: bool = False
    visits: dict[str, int] = field(default_factory=dict)
    timeouts: int = 0  # in the current state
    repeats: int = 0  # in the current state
    buffer: str = ""  # keys of an unfinished input
    path: list[str] = field(default_factory=list)
    digits: list[tuple[str, float]] = field(default_factory=list)
    _spoken: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._spoken = self.variables.spoken(self.dialogue.lang)

    # -- the driver's side -------------------------------------------------------------
    def start(self) -> list[Action]:
        if self.state:
            raise EngineError("start() called twice")
        return self._enter(self.dialogue.header.start)

    def handle(self, event: Event) -> list[Action]:
        if not self.state:
            raise EngineError("handle() before start()")
        if type(event) not in _TAKES[self.phase]:
            raise EngineError(f"{type(event).__name__} while {self.phase.value} in state {self.state!r}")
        if self.phase is Phase.ENDED:
            return []
        if isinstance(event, Hangup):
            self.phase = Phase.ENDED
            return [End(self._result(end_state=None, hung_up=True))]
        if isinstance(event, PromptDone):
            if event.prompt_id is not None and event.prompt_id != self.state:
                return []  # a prompt we already replaced
            return self._prompt_done()
        if isinstance(event, Digit):
            self.digits.append((event.key, event.at))
            return self._digit(event.key)
        return self._replay("timeouts")  # once (timeout_retries), then give_up

    def key(self) -> tuple[object, ...]:
        """Everything that decides what comes next (for walking the state graph in tests)."""
        return (self.phase, self.state, tuple(sorted(self.visits.items())), self.timeouts, self.repeats,
                self.buffer, self.candidate, self.identity, self.promise_date, self.callback_requested)

    # -- inside ----------------------------------------------------------------------------
    @property
    def _st(self) -> State:
        return self.dialogue.states[self.state]

    def _enter(self, name: str) -> list[Action]:
        h = self.dialogue.header
        if self.visits.get(name, 0) >= h.max_visits and name != h.give_up:
            name = h.give_up
        self.visits[name] = self.visits.get(name, 0) + 1
        self.state, self.timeouts, self.repeats, self.buffer = name, 0, 0, ""
        self.path.append(name)
        st = self._st
        if st.set.identity is not None:
            self.identity = st.set.identity
        if st.set.promise:
            self.promise_date = self.candidate
        if st.set.callback:
            self.callback_requested = True
        return self._play()

    def _play(self) -> list[Action]:
        self.phase = Phase.PLAYING
        values = dict(self._spoken)
        if self.candidate is not None:
            values["promise_date"] = say_date(self.candidate, self.dialogue.lang)
        return [Play(self.state, fill(self._st.say, values))]

    def _replay(self, counter: str) -> list[Action]:
        h = self.dialogue.header
        count = getattr(self, counter) + 1
        limit = h.timeout_retries if counter == "timeouts" else h.max_repeats
        if count > limit:
            return self._enter(h.give_up)
        setattr(self, counter, count)
        self.buffer = ""
        return self._play()

    def _prompt_done(self) -> list[Action]:
        st = self._st
        if st.end:
            self.phase = Phase.ENDED
            return [End(self._result(end_state=self.state, hung_up=False))]
        if st.next is not None:
            return self._enter(st.next)
        self.phase = Phase.COLLECTING
        wanted = 1 if st.menu is not None else _DATE_DIGITS
        return [Collect(wanted - len(self.buffer), st.timeout_s)]

    def _digit(self, key: str) -> list[Action]:
        st, h = self._st, self.dialogue.header
        if not st.waits_for_keys:
            return []  # a key during a prompt that asks nothing: recorded, not acted on
        if key == h.repeat_key:
            return self._replay("repeats")
        if st.menu is not None:
            if key == h.callback_key and h.callback is not None:
                return self._enter(h.callback)
            if key in st.menu:
                return self._enter(st.menu[key])
            return self._replay("repeats")  # a key the menu does not offer: say it again
        if not key.isdigit():
            return self._replay("repeats")  # '#' in a date: start the date again
        self.buffer += key
        if len(self.buffer) < _DATE_DIGITS:
            return []
        return self._date(self.buffer)

    def _date(self, keys: str) -> list[Action]:
        st, v = self._st, self.variables
        assert st.valid and st.invalid and st.out_of_window
        day, month = int(keys[:2]), int(keys[2:])
        # The year is the one that puts the date in the window (a window may cross 31 Dec).
        real: list[dt.date] = []
        for year in range(v.window_start.year, v.window_end.year + 1):
            try:
                real.append(dt.date(year, month, day))
            except ValueError:
                pass
        if not real:  # 3102, 0013, or 2902 in a window without a leap year
            self.candidate = None
            return self._enter(st.invalid)
        inside = [d for d in real if v.window_start <= d <= v.window_end]
        if not inside:
            self.candidate = None
            return self._enter(st.out_of_window)
        self.candidate = inside[0]
        return self._enter(st.valid)

    def _result(self, end_state: str | None, hung_up: bool) -> Result:
        return Result(identity=self.identity, promise_date=self.promise_date,
                      callback_requested=self.callback_requested, path=tuple(self.path),
                      digits=tuple(self.digits), end_state=end_state, hung_up=hung_up)
