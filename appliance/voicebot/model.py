"""What a dialogue file says, as typed structs: the ``[dialogue]`` table and one table
per state under ``[states.NAME]``.

A state plays its prompt (``say``) and then does exactly one of:

* ``next = "STATE"`` — goes on when the prompt is done;
* ``menu = { "1" = "STATE", … }`` — waits ``timeout_s`` for one key;
* ``date = "DDMM"`` — waits for four keys (day, month), then goes to ``valid``,
  ``invalid`` (not a calendar date) or ``out_of_window`` (outside the campaign's window);
* ``end = true`` — the call's dialogue ends after the prompt.

``set`` records what entering the state means for the result (identity confirmed or
denied, the read-back date promised, a call back from a person requested). The structs
are decoded by msgspec with unknown keys refused, so a misspelt key is an error naming
its path; the graph rules (targets, reachability, every state can end) are in
:mod:`.load`.
"""
from __future__ import annotations

import enum
from typing import Final

import msgspec

#: The keys of a telephone keypad (ITU-T E.161 §2).
KEYPAD: Final = "0123456789*#"
#: The only fixed-length input so far: day then month, two digits each.
DATE_FORMATS: Final = ("DDMM",)
#: A menu waits this long for a key unless the state says otherwise: 8 s, above the
#: 5 s inter-digit timer of ITU-T Q.931-era switches, so a caller has time to find the key.
DEFAULT_TIMEOUT_S: Final = 8.0


class Identity(enum.Enum):
    """Whether the person on the line said he is the debtor."""

    CONFIRMED = "confirmed"
    DENIED = "denied"
    UNKNOWN = "unknown"


class Sets(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """What entering a state records in the result."""

    identity: Identity | None = None
    promise: bool = False  # the date read back is the promise
    callback: bool = False  # the caller asked for a person to call back


class State(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """One state of the dialogue: a prompt and what follows it."""

    say: str
    next: str | None = None
    menu: dict[str, str] | None = None
    date: str | None = None
    valid: str | None = None
    invalid: str | None = None
    out_of_window: str | None = None
    end: bool = False
    timeout_s: float = DEFAULT_TIMEOUT_S
    set: Sets = Sets()

    @property
    def waits_for_keys(self) -> bool:
        return self.menu is not None or self.date is not None

    def targets(self) -> dict[str, str]:
        """Every state this one can go to by its own keys, named by the key that says so."""
        out: dict[str, str] = {}
        if self.next is not None:
            out["next"] = self.next
        for key, target in (self.menu or {}).items():
            out[f"menu.{key}"] = target
        for key in ("valid", "invalid", "out_of_window"):
            target = getattr(self, key)
            if target is not None:
                out[key] = target
        return out


class Header(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """The ``[dialogue]`` table: name, language, the start and the dialogue-wide keys.

    ``repeat_key`` replays the current prompt (up to ``max_repeats`` times, then
    ``give_up``); ``callback_key`` in a menu goes to ``callback``; a timeout replays the
    prompt ``timeout_retries`` times, then goes to ``give_up``; a state entered more than
    ``max_visits`` times goes to ``give_up`` too — so every call ends.
    """

    name: str
    lang: str
    start: str
    give_up: str
    callback: str | None = None
    repeat_key: str = "*"
    callback_key: str = "0"
    timeout_retries: int = 1
    max_repeats: int = 3
    max_visits: int = 3


class DialogueFile(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """A whole dialogue file as decoded, before the graph is checked."""

    dialogue: Header
    states: dict[str, State]
