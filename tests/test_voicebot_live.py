"""The voicebot on a live call, fast: ``run_dialogue`` against a fake audio port on a fake
clock (20 ms per frame written, no pty, no sleeping) and a fake far end who listens like the
emulator's keypad person — one key group once a prompt has ended (700 ms of quiet) — and
keys as the modem's URC, as in-band tones, or both; plus the key merger on its own."""
from __future__ import annotations

import asyncio
import datetime as dt
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import numpy as np
import pytest

from appliance.voicebot import Identity, JobVariables, shipped
from appliance.voicebot.keys import PAIR_WINDOW_S, KeyMerger, KeySource
from appliance.voicebot.live import LiveStats, run_dialogue
from appliance.voicebot.prepare import known_prompts, prepare_prompts
from appliance.voicebot.tts import Synthesiser
from modem_drivers.audio import FRAME_BYTES, SILENCE, AudioFault, AudioFaultReason
from modem_drivers.types import DtmfReceived

# -- the merger ------------------------------------------------------------------------------


def test_one_key_reported_by_both_counts_once() -> None:
    m = KeyMerger()
    assert m.offer("5", KeySource.URC, 1.00)
    assert not m.offer("5", KeySource.IN_BAND, 1.03)


def test_the_copy_may_come_first_from_either_reporter() -> None:
    m = KeyMerger()
    assert m.offer("5", KeySource.IN_BAND, 1.00)
    assert not m.offer("5", KeySource.URC, 1.20)


def test_a_repeated_key_later_counts_twice() -> None:
    m = KeyMerger()
    assert m.offer("1", KeySource.URC, 1.0) and not m.offer("1", KeySource.IN_BAND, 1.02)
    assert m.offer("1", KeySource.URC, 1.0 + PAIR_WINDOW_S + 0.5)
    assert not m.offer("1", KeySource.IN_BAND, 1.0 + PAIR_WINDOW_S + 0.52)


def test_a_quick_double_press_from_both_counts_twice() -> None:
    m = KeyMerger()  # 80 ms on, 80 ms off: both presses inside one window, each paired once
    got = [m.offer("3", KeySource.URC, 1.00), m.offer("3", KeySource.IN_BAND, 1.02),
           m.offer("3", KeySource.URC, 1.16), m.offer("3", KeySource.IN_BAND, 1.18)]
    assert got == [True, False, True, False]


def test_one_reporter_alone_counts_every_report() -> None:
    m = KeyMerger()
    assert all(m.offer("7", KeySource.IN_BAND, 1.0 + 0.16 * i) for i in range(4))


def test_different_digits_are_never_copies() -> None:
    m = KeyMerger()
    assert m.offer("1", KeySource.URC, 1.0) and m.offer("2", KeySource.IN_BAND, 1.01)


def test_a_report_outside_the_window_is_a_new_key() -> None:
    m = KeyMerger()
    assert m.offer("9", KeySource.URC, 1.0)
    assert m.offer("9", KeySource.IN_BAND, 1.0 + PAIR_WINDOW_S + 0.01)


# -- a fake call -----------------------------------------------------------------------------
ROWS, COLS = (697, 770, 852, 941), (1209, 1336, 1477, 1633)
PAD = ("123A", "456B", "789C", "*0#D")
#: ITU-T Q.23 tones at −10 dBFS each, 80 ms on, 80 ms off (the emulator's keypad person)
KEY_MS, GAP_MS, LEVEL = 80, 80, 32767 * 10 ** (-10 / 20)
QUIET_FRAMES = 35  # 700 ms of quiet after a prompt: it has ended (docs/emulator.md)
REACTION_S = 0.4


def key_pcm(key: str) -> bytes:
    r = next(i for i, row in enumerate(PAD) if key in row)
    c = PAD[r].index(key)
    t = np.arange(8 * KEY_MS) / 8000
    tone = LEVEL * (np.sin(2 * np.pi * ROWS[r] * t) + np.sin(2 * np.pi * COLS[c] * t))
    return np.rint(tone).astype("<i2").tobytes() + bytes(16 * GAP_MS)


def prompt_pcm(text: str, lang: str) -> bytes:
    """A prompt: 440 Hz for a time that grows with the text (10 ms a character)."""
    t = np.arange(80 * len(text)) / 8000
    return np.rint(3000 * np.sin(2 * np.pi * 440 * t)).astype("<i2").tobytes()


@dataclass
class Clock:
    t: float = 100.0

    def __call__(self) -> float:
        return self.t


@dataclass
class FakeCall:
    released: bool = False


@dataclass
class FakeModem:
    call: FakeCall = field(default_factory=FakeCall)
    listeners: list[Callable[[Any], None]] = field(default_factory=list)

    def subscribe(self, callback: Callable[[Any], None]) -> Callable[[], None]:
        self.listeners.append(callback)
        return lambda: self.listeners.remove(callback)


@dataclass
class Person:
    """The far end: hears the frames written, keys one group after each prompt."""

    groups: list[str]
    modem: FakeModem
    clock: Clock
    urc: bool = True
    in_band: bool = True
    timed: list[tuple[float, str]] = field(default_factory=list)  # (seconds from the answer, group), whatever he hears
    hang_up_at: float | None = None
    rx: deque[bytes] = field(default_factory=deque)
    prompts_heard: int = 0
    keys_sent: list[str] = field(default_factory=list)
    _tx: bytearray = field(default_factory=bytearray)
    _urcs: deque[tuple[int, str]] = field(default_factory=deque)  # (byte offset in tx where its tone ends, digit)
    _sent: int = 0
    _loud: bool = False
    _quiet: int = 0
    _due: float | None = None
    _start: float = 0.0

    def __post_init__(self) -> None:
        self._start = self.clock.t

    def _key(self, group: str) -> None:
        for key in group:
            self._tx += key_pcm(key)
            self._urcs.append((len(self._tx) - 16 * GAP_MS, key))
            self.keys_sent.append(key)

    def tick(self, heard: bytes) -> None:
        """One 20 ms step: hear one frame, send one."""
        if heard != SILENCE:
            self._loud, self._quiet = True, 0
        elif self._loud:
            self._quiet += 1
            if self._quiet == QUIET_FRAMES:
                self._loud = False
                self.prompts_heard += 1
                if self.groups:
                    self._due = self.clock.t + REACTION_S
        while self.timed and self.clock.t - self._start >= self.timed[0][0]:
            self._key(self.timed.pop(0)[1])
        if self._due is not None and self.clock.t >= self._due:
            self._due = None
            self._key(self.groups.pop(0))
        frame = bytes(self._tx[self._sent : self._sent + FRAME_BYTES]).ljust(FRAME_BYTES, b"\0")
        self._sent += FRAME_BYTES
        if self._sent >= len(self._tx):
            self._tx.clear()
            self._sent = 0
        self.rx.append(frame if self.in_band else SILENCE)
        while self._urcs and self._urcs[0][0] <= self._sent:
            _, digit = self._urcs.popleft()
            if self.urc:
                for listener in list(self.modem.listeners):
                    listener(DtmfReceived(digit))
        if not self._tx:
            self._urcs = deque((off - self._sent, d) for off, d in self._urcs)
        if self.hang_up_at is not None and self.clock.t >= self.hang_up_at:
            self.modem.call.released = True


@dataclass
class FakePort:
    person: Person
    clock: Clock
    written: int = 0

    def pending_frames(self) -> int:
        return len(self.person.rx)

    async def read_frame(self, timeout: float | None = None) -> bytes:
        return self.person.rx.popleft()

    async def write_frame(self, frame: bytes) -> None:
        assert len(frame) == FRAME_BYTES
        self.clock.t += 0.02
        self.written += 1
        self.person.tick(frame)
        await asyncio.sleep(0)


VARIABLES = JobVariables(creditor="Kredyt Plus", debtor_name="Jan Kowalski", amount=Decimal("123.45"),
                         currency="PLN", due_date=dt.date(2026, 2, 28), window_start=dt.date(2026, 3, 10),
                         window_end=dt.date(2026, 3, 31))


async def converse(groups: list[str], lang: str = "en", **person: Any) -> tuple[Any, Person, LiveStats]:
    clock, modem = Clock(), FakeModem()
    far = Person(list(groups), modem, clock, **person)
    stats = LiveStats()
    result = await asyncio.wait_for(
        run_dialogue(FakePort(far, clock), modem, shipped("promise_to_pay", lang), VARIABLES,
                     prompts=prompt_pcm, clock=clock, answered_at=clock.t, stats=stats), 30)
    assert not modem.listeners  # unsubscribed
    return result, far, stats


SOURCES = [pytest.param({"urc": True, "in_band": True}, id="both"),
           pytest.param({"urc": True, "in_band": False}, id="urc"),
           pytest.param({"urc": False, "in_band": True}, id="in_band")]


@pytest.mark.parametrize("sources", SOURCES)
async def test_confirms_a_valid_date(sources: dict[str, bool]) -> None:
    result, far, stats = await converse(["1", "1503", "1"], **sources)
    assert result.identity is Identity.CONFIRMED
    assert result.promise_date == dt.date(2026, 3, 15)
    assert not result.callback_requested and not result.hung_up
    assert result.path == ("greet", "identity", "debt", "ask_date", "read_back", "thanks")
    assert [k for k, _ in result.digits] == list("115031")  # each key once, whoever reported it
    times = [at for _, at in result.digits]
    assert times == sorted(times) and times[0] > 0
    assert stats.keys_merged == (6 if sources["urc"] and sources["in_band"] else 0)
    # greet+identity, debt+ask_date, read_back heard; the goodbye's last frame ends the run
    assert far.prompts_heard == 3 and stats.prompts_played == 6


async def test_an_invalid_date_first_then_a_valid_one() -> None:
    result, _, _ = await converse(["1", "3102", "1503", "1"])
    assert result.path == ("greet", "identity", "debt", "ask_date", "bad_date", "ask_date", "read_back", "thanks")
    assert result.promise_date == dt.date(2026, 3, 15) and result.identity is Identity.CONFIRMED


async def test_zero_asks_for_a_person() -> None:
    result, _, _ = await converse(["0"])
    assert result.callback_requested and result.identity is Identity.UNKNOWN
    assert result.path == ("greet", "identity", "callback") and result.end_state == "callback"


async def test_zero_after_the_date_asks_for_a_person() -> None:
    result, _, _ = await converse(["1", "1503", "0"])
    assert result.callback_requested and result.identity is Identity.CONFIRMED and result.promise_date is None
    assert result.path[-1] == "callback"


async def test_the_wrong_person_hears_no_debt() -> None:
    result, _, _ = await converse(["2"])
    assert result.identity is Identity.DENIED and result.path == ("greet", "identity", "wrong_person")


async def test_one_who_never_presses_hears_the_prompt_again_then_goodbye() -> None:
    clock_start = 100.0
    result, far, _ = await converse([])
    assert result.path == ("greet", "identity", "no_input") and result.end_state == "no_input"
    assert result.identity is Identity.UNKNOWN and result.digits == ()
    assert far.prompts_heard == 2  # greet+identity, identity again (then the goodbye)
    assert far.clock.t - clock_start > 2 * 8  # two timeouts of 8 s


async def test_a_key_during_a_prompt_that_asks_nothing_is_recorded_and_ignored() -> None:
    result, _, stats = await converse([], timed=[(0.1, "2")])  # during the greeting
    assert result.digits[0][0] == "2" and result.path == ("greet", "identity", "no_input")
    assert stats.barge_ins == 0


async def test_keys_during_menu_and_date_prompts_cut_them() -> None:
    # identity plays 0.5-1.2 s, debt 1.0-2.2 s, ask_date 2.2-2.9 s (10 ms a character)
    result, _, stats = await converse([], timed=[(1.0, "1"), (2.5, "15"), (3.1, "03"), (6.0, "1")])
    assert result.path == ("greet", "identity", "debt", "ask_date", "read_back", "thanks")
    assert result.promise_date == dt.date(2026, 3, 15)
    assert stats.barge_ins == 2  # identity cut by "1", ask_date by "1" of "15"
    assert stats.prompts_played == 4  # greet, debt, read_back, thanks played whole


async def test_a_hang_up_ends_the_dialogue() -> None:
    result, _, _ = await converse(["1"], hang_up_at=103.0)
    assert result.hung_up and result.end_state is None


# -- prompts rendered before the call ------------------------------------------------------------
def test_known_prompts_are_every_prompt_but_the_read_back() -> None:
    dialogue = shipped("promise_to_pay", "en")
    texts = known_prompts(dialogue, VARIABLES)
    assert len(texts) == len(dialogue.states) - 1  # read_back names {promise_date}
    assert texts[0] == "Hello, this is a call on behalf of Kredyt Plus."
    assert not any("{" in t for t in texts)


async def test_prepare_prompts_fills_the_cache_once(tmp_path) -> None:  # type: ignore[no-untyped-def]
    synth = Synthesiser(cache_dir=tmp_path)
    dialogue = shipped("promise_to_pay", "pl")
    made = await prepare_prompts(dialogue, VARIABLES, synth)
    assert made == len(known_prompts(dialogue, VARIABLES))
    assert all(synth.path(t, "pl").is_file() for t in known_prompts(dialogue, VARIABLES))
    assert await prepare_prompts(dialogue, VARIABLES, synth) == 0


# -- the port fails ------------------------------------------------------------------------------
@dataclass
class FailingPort(FakePort):
    fail_after: int = 10
    release_first: bool = False

    async def write_frame(self, frame: bytes) -> None:
        if self.written >= self.fail_after:
            if self.release_first:
                self.person.modem.call.released = True
            raise AudioFault(AudioFaultReason.PORT_LOST, "gone")
        await super().write_frame(frame)


@pytest.mark.parametrize("released", [False, True], ids=["call_up", "call_gone"])
async def test_a_lost_port_raises_while_the_call_is_up_and_ends_it_when_it_is_gone(released: bool) -> None:
    clock, modem = Clock(), FakeModem()
    port = FailingPort(Person([], modem, clock), clock, release_first=released)
    run = run_dialogue(port, modem, shipped("promise_to_pay", "en"), VARIABLES, prompts=prompt_pcm, clock=clock)
    if released:
        result = await asyncio.wait_for(run, 5)
        assert result.hung_up and result.path == ("greet",)
    else:
        with pytest.raises(AudioFault):
            await asyncio.wait_for(run, 5)
    assert not modem.listeners
