"""Reading a dialogue file and refusing a broken one with an error that names the file,
the state and the key.

Checks, in order: TOML syntax; the shape (msgspec: unknown or missing keys, wrong types);
each state does one thing (``next``, ``menu``, ``date`` or ``end``); keys are keypad keys
and not the dialogue-wide repeat/callback keys; every target exists; every variable is
known; every state is reachable and can reach an end; and the privacy rule — no prompt
that names the debt can be played before a state that confirms the identity.
"""
from __future__ import annotations

import tomllib
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TypeVar

import msgspec

from .model import DATE_FORMATS, KEYPAD, DialogueFile, Header, Identity, State
from .spoken import LANGUAGES
from .variables import (
    DEBT_VARIABLES,
    JOB_VARIABLES,
    RUNTIME_VARIABLES,
    VariablesError,
    placeholders,
)

T = TypeVar("T")

#: Where the shipped dialogues live, as ``NAME.LANG.toml``.
SHIPPED = "dialogues"


class DialogueError(ValueError):
    """A dialogue file we refuse; the message names the file, the state and the key."""


@dataclass(frozen=True, slots=True)
class Dialogue:
    """A checked dialogue: its header, its states, and the file it came from."""

    header: Header
    states: dict[str, State]
    source: str

    @property
    def name(self) -> str:
        return self.header.name

    @property
    def lang(self) -> str:
        return self.header.lang


def _where(source: str, state: str | None, key: str) -> str:
    return f"{source}: [states.{state}] {key}" if state else f"{source}: [dialogue] {key}"


def _edges(header: Header, state: State) -> Iterator[tuple[str, str]]:
    """(key, target) for every way out of a state, the dialogue-wide ones included."""
    yield from state.targets().items()
    if state.waits_for_keys:
        yield "timeout", header.give_up  # after its retries
        yield "repeat_key", header.give_up  # after max_repeats
        if state.menu is not None and header.callback is not None:
            yield "callback_key", header.callback
    if not state.end:
        yield "max_visits", header.give_up


def _reachable(starts: Iterable[str], step: dict[str, list[str]]) -> set[str]:
    seen = set(starts)
    todo = deque(seen)
    while todo:
        for nxt in step.get(todo.popleft(), []):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def _check_header(h: Header, states: dict[str, State], src: str) -> None:
    if h.lang not in LANGUAGES:
        raise DialogueError(f"{_where(src, None, 'lang')}: {h.lang!r}, expected one of {', '.join(LANGUAGES)}")
    for key in ("start", "give_up", "callback"):
        target = getattr(h, key)
        if target is not None and target not in states:
            raise DialogueError(f"{_where(src, None, key)}: no state {target!r}")
    for key in ("give_up", "callback"):
        target = getattr(h, key)
        if target is not None and not states[target].end:
            raise DialogueError(f"{_where(src, None, key)}: state {target!r} must have end = true")
    for key in ("repeat_key", "callback_key"):
        value = getattr(h, key)
        if len(value) != 1 or value not in KEYPAD:
            raise DialogueError(f"{_where(src, None, key)}: {value!r}, expected one keypad key of {KEYPAD}")
    if h.repeat_key == h.callback_key:
        raise DialogueError(f"{_where(src, None, 'callback_key')}: the same key as repeat_key")
    for key in ("timeout_retries", "max_repeats", "max_visits"):
        value = getattr(h, key)
        if not 0 <= value <= 10:
            raise DialogueError(f"{_where(src, None, key)}: {value}, expected 0 to 10")
    if h.max_visits < 1:
        raise DialogueError(f"{_where(src, None, 'max_visits')}: 0, expected at least 1")


def _check_state(h: Header, name: str, st: State, states: dict[str, State], src: str) -> None:
    kinds = [k for k, on in (("next", st.next is not None), ("menu", st.menu is not None),
                              ("date", st.date is not None), ("end", st.end)) if on]
    if len(kinds) != 1:
        found = " and ".join(kinds) if kinds else "none of them"
        raise DialogueError(f"{_where(src, name, 'next/menu/date/end')}: expected exactly one, found {found}")
    date_keys = ("valid", "invalid", "out_of_window")
    if st.date is not None:
        if st.date not in DATE_FORMATS:
            raise DialogueError(f"{_where(src, name, 'date')}: {st.date!r}, expected one of {', '.join(DATE_FORMATS)}")
        for key in date_keys:
            if getattr(st, key) is None:
                raise DialogueError(f"{_where(src, name, key)}: missing, a date input needs valid, invalid and out_of_window")
    else:
        for key in date_keys:
            if getattr(st, key) is not None:
                raise DialogueError(f"{_where(src, name, key)}: only a date input has {key}")
    if st.menu is not None:
        if not st.menu:
            raise DialogueError(f"{_where(src, name, 'menu')}: empty, expected at least one key")
        for key in st.menu:
            if len(key) != 1 or key not in KEYPAD:
                raise DialogueError(f"{_where(src, name, f'menu.{key}')}: {key!r} is not a keypad key ({KEYPAD})")
            if key == h.repeat_key or (key == h.callback_key and h.callback is not None):
                raise DialogueError(f"{_where(src, name, f'menu.{key}')}: {key!r} is the dialogue's "
                                    f"{'repeat' if key == h.repeat_key else 'callback'} key")
    if not 1 <= st.timeout_s <= 60:
        raise DialogueError(f"{_where(src, name, 'timeout_s')}: {st.timeout_s}, expected 1 to 60 seconds")
    for key, target in st.targets().items():
        if target not in states:
            raise DialogueError(f"{_where(src, name, key)}: no state {target!r}")
    try:
        used = placeholders(st.say)
    except VariablesError as exc:
        raise DialogueError(f"{_where(src, name, 'say')}: {exc}") from None
    for var in used:
        if var not in JOB_VARIABLES + RUNTIME_VARIABLES:
            raise DialogueError(f"{_where(src, name, 'say')}: unknown variable {{{var}}}, expected one of "
                                f"{', '.join(JOB_VARIABLES + RUNTIME_VARIABLES)}")


def _check_graph(h: Header, states: dict[str, State], src: str) -> None:
    step = {n: [t for _, t in _edges(h, s)] for n, s in states.items()}
    reached = _reachable([h.start], step)
    for name in states:
        if name not in reached:
            raise DialogueError(f"{_where(src, name, 'say')}: unreachable from start {h.start!r}")
    # Every state can reach an end by its own keys (give_up is the dialogue's safety net,
    # not a way to finish a dialogue nobody can finish).
    own = {n: list(s.targets().values()) + ([h.callback] if s.menu and h.callback else []) for n, s in states.items()}
    own_back: dict[str, list[str]] = {}
    for n, targets in own.items():
        for t in targets:
            own_back.setdefault(t, []).append(n)
    can_end = _reachable([n for n, s in states.items() if s.end], own_back)
    for name in states:
        if name not in can_end:
            raise DialogueError(f"{_where(src, name, 'next/menu/date')}: no way from here reaches a state with end = true")
    # Privacy: walk from the start without passing a state that confirms the identity.
    confirming = {n for n, s in states.items() if s.set.identity is Identity.CONFIRMED}
    open_step = {n: ([] if n in confirming else t) for n, t in step.items()}
    for name in _reachable([h.start], open_step):
        if name in confirming:
            continue
        named = [v for v in placeholders(states[name].say) if v in DEBT_VARIABLES]
        if named:
            raise DialogueError(f"{_where(src, name, 'say')}: names {{{named[0]}}} but can be played before "
                                f"the identity is confirmed (set.identity = \"confirmed\" in an earlier state)")


def _convert(data: object, kind: type[T], where: str) -> T:
    try:
        return msgspec.convert(data, kind)
    except msgspec.ValidationError as exc:
        # msgspec says "… - at `$.set.identity`"; the state's name goes in front instead of "$"
        raise DialogueError(f"{where}: {str(exc).replace('`$.', '`').replace(' - at `$`', '')}") from None


def _decode(data: dict[str, object], source: str) -> DialogueFile:
    """The shape, decoded table by table so an error names the state it is in."""
    unknown = sorted(set(data) - {"dialogue", "states"})
    if unknown:
        raise DialogueError(f"{source}: unknown table [{unknown[0]}], expected [dialogue] and [states.NAME]")
    for table in ("dialogue", "states"):
        if not isinstance(data.get(table), dict):
            raise DialogueError(f"{source}: missing table [{table}]")
    header = _convert(data["dialogue"], Header, f"{source}: [dialogue]")
    raw_states = data["states"]
    assert isinstance(raw_states, dict)
    states = {str(name): _convert(body, State, f"{source}: [states.{name}]") for name, body in raw_states.items()}
    return DialogueFile(dialogue=header, states=states)


def parse(data: dict[str, object], source: str) -> Dialogue:
    """Check a decoded TOML document; ``source`` names it in every error."""
    doc = _decode(data, source)
    _check_header(doc.dialogue, doc.states, source)
    for name, st in doc.states.items():
        _check_state(doc.dialogue, name, st, doc.states, source)
    _check_graph(doc.dialogue, doc.states, source)
    return Dialogue(header=doc.dialogue, states=doc.states, source=source)


def load(path: str | Path) -> Dialogue:
    """Read and check one dialogue file."""
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DialogueError(f"{p}: no such file") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise DialogueError(f"{p}: not valid TOML: {exc}") from None
    return parse(data, str(p))


def shipped(name: str, lang: str) -> Dialogue:
    """A dialogue shipped with the package, e.g. ``shipped("promise_to_pay", "pl")``."""
    res = resources.files(__package__).joinpath(SHIPPED).joinpath(f"{name}.{lang}.toml")
    if not res.is_file():
        raise DialogueError(f"no shipped dialogue {name!r} in {lang!r}; shipped: {', '.join(shipped_names())}")
    return parse(tomllib.loads(res.read_text(encoding="utf-8")), f"{SHIPPED}/{name}.{lang}.toml")


def shipped_names() -> list[str]:
    """``NAME.LANG`` of every shipped dialogue."""
    folder = resources.files(__package__).joinpath(SHIPPED)
    return sorted(f.name.removesuffix(".toml") for f in folder.iterdir() if f.name.endswith(".toml"))
