"""The engine driven directly (h11's state tests): the shipped dialogues' paths one by one,
then every path of both walked with every input — keys, type-ahead, timeouts, '*', '0',
invalid and out-of-window dates, hang-ups — to show each ends, renders every prompt, and
never names the debt to someone who has not confirmed his identity."""
from __future__ import annotations

import copy
import datetime as dt
from decimal import Decimal

import pytest

from appliance.voicebot.engine import (
    Collect,
    Digit,
    End,
    Engine,
    EngineError,
    Hangup,
    Phase,
    Play,
    PromptDone,
    Result,
    Timeout,
)
from appliance.voicebot.load import shipped
from appliance.voicebot.model import Identity
from appliance.voicebot.variables import JobVariables, VariablesError

TODAY = dt.date(2026, 3, 10)
VARS = JobVariables(creditor="Kredyt Plus", debtor_name="Jan Kowalski", amount=Decimal("123.45"),
                    currency="PLN", due_date=dt.date(2026, 2, 28), window_start=TODAY,
                    window_end=dt.date(2026, 3, 31))
DEBT_WORDS = {"pl": ("sto dwadzieścia trzy", "dwudziestego ósmego lutego"),
              "en": ("one hundred and twenty-three", "the twenty-eighth of February")}
LANGS = ("pl", "en")


def run(lang: str, *keys: str | None, variables: JobVariables = VARS) -> tuple[Result, list[Play]]:
    """Plays every prompt to its end and answers each Collect with the next keys
    (a string of keys, or None for a timeout)."""
    engine = Engine(shipped("promise_to_pay", lang), variables)
    plays: list[Play] = []
    pending = list(keys)
    actions = engine.start()
    clock = 0.0
    while True:
        (action,) = actions
        if isinstance(action, End):
            return action.result, plays
        if isinstance(action, Play):
            plays.append(action)
            actions = engine.handle(PromptDone(action.prompt_id))
            continue
        assert isinstance(action, Collect)
        answer = pending.pop(0)
        if answer is None:
            actions = engine.handle(Timeout())
            continue
        for key in answer:
            clock += 0.5
            actions = engine.handle(Digit(key, clock))
        assert actions, f"{answer!r} did not complete the input of {engine.state}"


@pytest.mark.parametrize("lang", LANGS)
def test_a_promise_kept(lang: str) -> None:
    result, plays = run(lang, "1", "1503", "1")
    assert result.identity is Identity.CONFIRMED
    assert result.promise_date == dt.date(2026, 3, 15)
    assert not result.callback_requested and not result.hung_up
    assert result.path == ("greet", "identity", "debt", "ask_date", "read_back", "thanks")
    assert [k for k, _ in result.digits] == list("115031")
    assert result.end_state == "thanks"
    read_back = next(p.text for p in plays if p.prompt_id == "read_back")
    assert {"pl": "piętnastego marca", "en": "the fifteenth of March"}[lang] in read_back
    assert result.to_dict()["promise_date"] == "2026-03-15"


@pytest.mark.parametrize("lang", LANGS)
def test_a_wrong_person_never_hears_the_debt(lang: str) -> None:
    result, plays = run(lang, "2")
    assert result.identity is Identity.DENIED and result.promise_date is None
    assert result.path == ("greet", "identity", "wrong_person")
    said = " ".join(p.text for p in plays)
    assert VARS.creditor in said and VARS.debtor_name in said
    for words in DEBT_WORDS[lang]:
        assert words not in said


@pytest.mark.parametrize("lang", LANGS)
def test_invalid_then_outside_then_kept(lang: str) -> None:
    result, _ = run(lang, "1", "3102", "0904", "2503", "1")
    assert result.path == ("greet", "identity", "debt", "ask_date", "bad_date", "ask_date", "outside_window",
                           "ask_date", "read_back", "thanks")
    assert result.promise_date == dt.date(2026, 3, 25)


def test_a_fourth_try_at_the_date_ends_politely() -> None:
    # max_visits = 3: three tries at a state, then give_up
    result, _ = run("pl", "1", "3102", "0904", "2503", "2")
    assert result.path[-2:] == ("read_back", "no_input") and result.promise_date is None


def test_a_date_before_the_window_is_outside_it() -> None:
    result, _ = run("pl", "1", "0903", "1003", "1")
    assert "outside_window" in result.path and result.promise_date == TODAY


@pytest.mark.parametrize("lang", LANGS)
def test_zero_asks_for_a_person(lang: str) -> None:
    result, _ = run(lang, "0")
    assert result.callback_requested and result.identity is Identity.UNKNOWN
    assert result.end_state == "callback"
    result, _ = run(lang, "1", "1503", "0")
    assert result.callback_requested and result.promise_date is None and result.identity is Identity.CONFIRMED


@pytest.mark.parametrize("lang", LANGS)
def test_a_timeout_repeats_once_then_ends_politely(lang: str) -> None:
    result, plays = run(lang, None, "1", None, None)
    assert [p.prompt_id for p in plays] == ["greet", "identity", "identity", "debt", "ask_date", "ask_date",
                                            "no_input"]
    assert result.end_state == "no_input" and result.identity is Identity.CONFIRMED
    result, _ = run(lang, None, None)
    assert result.path == ("greet", "identity", "no_input") and result.identity is Identity.UNKNOWN


def test_star_repeats_up_to_the_limit_then_ends() -> None:
    result, plays = run("en", "*", "*", "1", "*", "1503", "1")
    assert [p.prompt_id for p in plays].count("identity") == 3 and result.promise_date == dt.date(2026, 3, 15)
    result, plays = run("en", "*", "*", "*", "*")
    assert [p.prompt_id for p in plays].count("identity") == 4 and result.end_state == "no_input"


def test_a_star_in_a_date_starts_the_date_again() -> None:
    engine = Engine(shipped("promise_to_pay", "pl"), VARS)
    engine.start()
    for event in (PromptDone(), PromptDone(), Digit("1", 1), PromptDone(), PromptDone()):
        engine.handle(event)
    assert engine.handle(Digit("1", 2)) == [] and engine.handle(Digit("5", 3)) == []
    (replay,) = engine.handle(Digit("*", 4))
    assert isinstance(replay, Play) and replay.prompt_id == "ask_date" and engine.buffer == ""
    assert engine.handle(PromptDone()) == [Collect(4, 15.0)]


def test_keys_typed_during_a_prompt_are_taken_and_a_stale_prompt_done_ignored() -> None:
    engine = Engine(shipped("promise_to_pay", "en"), VARS)
    engine.start()
    (identity,) = engine.handle(PromptDone())
    assert identity.prompt_id == "identity"
    (debt,) = engine.handle(Digit("1", 0.8))  # before the menu finished
    assert isinstance(debt, Play) and debt.prompt_id == "debt"
    assert engine.handle(PromptDone("identity")) == []  # the replaced prompt's late report
    (ask,) = engine.handle(PromptDone("debt"))
    assert isinstance(ask, Play) and ask.prompt_id == "ask_date"
    engine.handle(Digit("2", 3.0))  # typing ahead into the date
    assert engine.handle(PromptDone()) == [Collect(3, 15.0)]


def test_keys_during_a_prompt_that_asks_nothing_are_recorded_not_acted_on() -> None:
    engine = Engine(shipped("promise_to_pay", "en"), VARS)
    engine.start()
    assert engine.handle(Digit("1", 0.2)) == []
    assert engine.state == "greet" and engine.digits == [("1", 0.2)]


def test_hangup_ends_at_once_and_events_in_the_wrong_phase_are_driver_bugs() -> None:
    engine = Engine(shipped("promise_to_pay", "pl"), VARS)
    with pytest.raises(EngineError, match="before start"):
        engine.handle(PromptDone())
    engine.start()
    with pytest.raises(EngineError, match="Timeout while playing"):
        engine.handle(Timeout())
    (end,) = engine.handle(Hangup())
    assert isinstance(end, End) and end.result.hung_up and end.result.end_state is None
    assert engine.handle(Hangup()) == [] and engine.handle(PromptDone()) == []
    with pytest.raises(EngineError, match="Digit while ended"):
        engine.handle(Digit("1", 9))
    with pytest.raises(EngineError, match="twice"):
        engine.start()


def test_events_and_variables_are_checked_when_built() -> None:
    with pytest.raises(ValueError, match="expected one of"):
        Digit("A", 1.0)
    with pytest.raises(ValueError, match=">= 0"):
        Digit("1", -1.0)
    with pytest.raises(VariablesError, match="before window_start"):
        JobVariables("K", "J", Decimal(1), "PLN", TODAY, TODAY, TODAY - dt.timedelta(days=1))


def test_a_window_across_new_year_takes_the_next_years_date() -> None:
    variables = JobVariables("K", "J", Decimal(1), "PLN", dt.date(2026, 12, 1), dt.date(2026, 12, 20),
                             dt.date(2027, 1, 15))
    result, _ = run("pl", "1", "1001", "1", variables=variables)
    assert result.promise_date == dt.date(2027, 1, 10)
    result, _ = run("pl", "1", "2902", "1501", "1", variables=variables)  # 2027 is no leap year
    assert "bad_date" in result.path and result.promise_date == dt.date(2027, 1, 15)


# -- every path ---------------------------------------------------------------------------
#: Dates to key in: valid, not a date, before and after the window, not digits ('#').
DATE_INPUTS = ("1503", "3102", "0913", "0903", "0104", "12#")
MENU_KEYS = tuple("0123456789*#")


def _moves(engine: Engine) -> list[list[object]]:
    if engine.phase is Phase.PLAYING:
        moves: list[list[object]] = [[PromptDone()], [Hangup()]]
        if engine.dialogue.states[engine.state].menu is not None:
            moves.append([Digit("1", 1.0)])  # type-ahead
        return moves
    st = engine.dialogue.states[engine.state]
    keys = MENU_KEYS if st.menu is not None else DATE_INPUTS
    return [[Timeout()], [Hangup()], *([Digit(k, 1.0) for k in key] for key in keys)]


def walk(lang: str) -> tuple[int, set[str], list[Result]]:
    """Depth-first over every reachable engine state; fails on a cycle (a path that never
    ends) and on a step that returns nothing while waiting for nothing."""
    root = Engine(shipped("promise_to_pay", lang), VARS)
    first = root.start()
    seen: set[tuple[object, ...]] = set()
    on_path: set[tuple[object, ...]] = set()
    played: set[str] = set()
    ends: list[Result] = []
    debt = DEBT_WORDS[lang]

    def visit(engine: Engine, actions: list[object]) -> None:
        for a in actions:
            if isinstance(a, Play):
                played.add(a.prompt_id)
                assert a.text and "{" not in a.text
                if engine.identity is not Identity.CONFIRMED:
                    assert not any(w in a.text for w in debt), (a.prompt_id, engine.path)
            if isinstance(a, End):
                ends.append(a.result)
                assert engine.phase is Phase.ENDED
                return
        key = engine.key()
        assert key not in on_path, f"a path that never ends: {engine.path}"
        if key in seen:
            return
        seen.add(key)
        on_path.add(key)
        for move in _moves(engine):
            nxt = copy.deepcopy(engine)
            out: list[object] = []
            for event in move:
                out = nxt.handle(event)  # type: ignore[arg-type]
            if not out:
                assert nxt.phase is Phase.COLLECTING, (engine.state, move)
            visit(nxt, out)
        on_path.discard(key)

    visit(root, list(first))
    return len(seen), played, ends


@pytest.mark.parametrize("lang", LANGS)
def test_every_path_ends_and_every_prompt_is_played(lang: str) -> None:
    nodes, played, ends = walk(lang)
    dialogue = shipped("promise_to_pay", lang)
    assert played == set(dialogue.states), set(dialogue.states) - played
    assert {r.end_state for r in ends} == {None, *(n for n, s in dialogue.states.items() if s.end)}
    assert {r.identity for r in ends} == set(Identity)
    assert any(r.promise_date for r in ends) and any(r.callback_requested for r in ends)
    for r in ends:
        if r.promise_date is not None:
            assert r.identity is Identity.CONFIRMED and VARS.window_start <= r.promise_date <= VARS.window_end
        assert len(r.path) <= 3 * len(dialogue.states)  # max_visits bounds every path
    assert nodes > 50
