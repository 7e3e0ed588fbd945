"""The dialogue checker: the shipped dialogues pass, and each kind of broken file is refused
with an error naming the file, the state and the key."""
from __future__ import annotations

from pathlib import Path

import pytest

from appliance.voicebot.load import DialogueError, load, shipped, shipped_names

GOOD = '''
[dialogue]
name = "t"
lang = "pl"
start = "ask"
give_up = "bye"
callback = "agent"

[states.ask]
say = "Czy to {debtor_name}? Naciśnij 1 lub 2."
menu = { "1" = "yes", "2" = "bye" }

[states.yes]
say = "Kwota {amount}."
set = { identity = "confirmed" }
next = "date"

[states.date]
say = "Podaj datę."
date = "DDMM"
valid = "bye"
invalid = "date"
out_of_window = "date"

[states.agent]
say = "Oddzwonimy."
set = { callback = true }
end = true

[states.bye]
say = "Do widzenia."
end = true
'''


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "d.pl.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_shipped_dialogues_load() -> None:
    assert shipped_names() == ["promise_to_pay.en", "promise_to_pay.pl"]
    for lang in ("pl", "en"):
        d = shipped("promise_to_pay", lang)
        assert d.lang == lang and d.header.start == "greet"


def test_a_good_file_loads(tmp_path: Path) -> None:
    d = load(write(tmp_path, GOOD))
    assert set(d.states) == {"ask", "yes", "date", "agent", "bye"}


BROKEN = [
    # (what is changed, replaced by, the words the error must contain)
    ('name = "t"\n', "", ["d.pl.toml", "missing required field `name`"]),
    ('lang = "pl"', 'lang = "de"', ["[dialogue] lang", "'de'"]),
    ('start = "ask"', 'start = "nowhere"', ["[dialogue] start", "no state 'nowhere'"]),
    ('give_up = "bye"', 'give_up = "ask"', ["[dialogue] give_up", "end = true"]),
    ('"2" = "bye"', '"2" = "byee"', ["[states.ask] menu.2", "no state 'byee'"]),
    ('"2" = "bye"', '"22" = "bye"', ["[states.ask] menu.22", "not a keypad key"]),
    ('"2" = "bye"', '"x" = "bye"', ["[states.ask] menu.x", "not a keypad key"]),
    ('"2" = "bye"', '"*" = "bye"', ["[states.ask] menu.*", "repeat key"]),
    ('"2" = "bye"', '"0" = "bye"', ["[states.ask] menu.0", "callback key"]),
    ('menu = { "1" = "yes", "2" = "bye" }', 'menu = {}', ["[states.ask] menu", "empty"]),
    ('next = "date"', 'next = "date"\nend = true', ["[states.yes]", "exactly one, found next and end"]),
    ('next = "date"\n', "", ["[states.yes]", "found none of them"]),
    ('say = "Oddzwonimy."\nset = { callback = true }\nend = true',
     'say = "Oddzwonimy."\nset = { callback = true }\nnext = "bye"', ["[dialogue] callback", "end = true"]),
    ('date = "DDMM"', 'date = "MMDD"', ["[states.date] date", "'MMDD'", "DDMM"]),
    ('out_of_window = "date"\n', "", ["[states.date] out_of_window", "missing"]),
    ('Podaj datę."', 'Podaj datę {nazwisko}."', ["[states.date] say", "unknown variable {nazwisko}"]),
    ('Podaj datę."', 'Podaj datę {."', ["[states.date] say"]),
    ('say = "Do widzenia."', 'says = "Do widzenia."', ["d.pl.toml", "[states.bye]", "unknown field `says`"]),
    ('set = { identity = "confirmed" }', 'set = { identity = "maybe" }', ["d.pl.toml", "[states.yes]", "'maybe'", "set.identity"]),
    ('menu = { "1" = "yes", "2" = "bye" }', 'menu = { "1" = "yes", "2" = "bye" }\ntimeout_s = 0.1',
     ["[states.ask] timeout_s", "1 to 60"]),
    # privacy: the debt named before the identity is confirmed
    ('Czy to {debtor_name}?', 'Czy to {debtor_name}, dług {amount}?', ["[states.ask] say", "{amount}", "identity"]),
    ('set = { identity = "confirmed" }\n', "", ["[states.yes] say", "{amount}"]),
]


@pytest.mark.parametrize(("old", "new", "words"), BROKEN, ids=[b[2][0] + " " + b[2][-1] for b in BROKEN])
def test_broken_files_are_refused_naming_file_state_and_key(tmp_path: Path, old: str, new: str,
                                                             words: list[str]) -> None:
    assert old in GOOD
    path = write(tmp_path, GOOD.replace(old, new, 1))
    with pytest.raises(DialogueError) as err:
        load(path)
    for word in words:
        assert word in str(err.value), str(err.value)


def test_an_unreachable_state_is_named(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD + '\n[states.lost]\nsay = "Nikt mnie nie słyszy."\nend = true\n')
    with pytest.raises(DialogueError, match=r"\[states\.lost\] say: unreachable from start 'ask'"):
        load(path)


def test_a_state_that_cannot_end_is_named(tmp_path: Path) -> None:
    loop = GOOD.replace('"2" = "bye" }', '"2" = "bye", "3" = "loop1" }') + (
        '\n[states.loop1]\nsay = "A."\nnext = "loop2"\n'
        '\n[states.loop2]\nsay = "B."\nnext = "loop1"\n')
    with pytest.raises(DialogueError, match=r"\[states\.loop1\].*no way from here reaches a state with end = true"):
        load(write(tmp_path, loop))


def test_not_toml_and_no_file(tmp_path: Path) -> None:
    with pytest.raises(DialogueError, match="not valid TOML"):
        load(write(tmp_path, "[dialogue\n"))
    with pytest.raises(DialogueError, match="no such file"):
        load(tmp_path / "missing.toml")
