"""Real modem transcripts (tests/data/at_corpus/*.txt) through the AT parser.

The format is described in tests/data/at_corpus/README.md. Every case is replayed twice:
in the chunks the file gives, and one byte at a time; both must give the stated events.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from modem_drivers.at import NEED_DATA, AtParser, Final, FinalKind, InfoLine, Prompt, Urc

CORPUS = Path(__file__).parent / "data" / "at_corpus"


def _unescape(text: str) -> str:
    return codecs.escape_decode(text.encode())[0].decode()


@dataclass
class Case:
    name: str
    file: str
    source: str = ""
    steps: list[tuple[str, object]] = field(default_factory=list)  # ("begin", args) | ("rx", bytes)
    expected: list[object] = field(default_factory=list)


def _parse_event(kind: str, rest: str) -> object:
    if kind == "final":
        name, _, code = rest.partition(" ")
        return ("final", FinalKind[name], int(code) if code else None)
    if kind == "info":
        return InfoLine(_unescape(rest))
    if kind == "urc":
        parts = [p.strip() for p in rest.split(" | ")]
        pdu = _unescape(parts[2]) if len(parts) > 2 else None
        return Urc(parts[0], _unescape(parts[1]), pdu)
    raise ValueError(kind)


def load_cases() -> list[Case]:
    cases: list[Case] = []
    for path in sorted(CORPUS.glob("*.txt")):
        case: Case | None = None
        for number, raw in enumerate(path.read_text().splitlines(), 1):
            line = raw.rstrip("\n")
            if not line.strip() or line.startswith("#"):
                continue
            key, sep, rest = line.partition(": ")
            if line == "prompt":
                key, rest = "prompt", ""
            elif not sep:
                raise ValueError(f"{path.name}:{number}: cannot read {line!r}")
            if key == "case":
                case = Case(rest, path.name)
                cases.append(case)
                continue
            if case is None:
                raise ValueError(f"{path.name}:{number}: {key!r} before any 'case:'")
            if key == "source":
                case.source = rest
            elif key == "begin":
                parts = [p.strip() for p in rest.split(" ; ")]
                expect: tuple[str, ...] = ()
                prompt = False
                for option in parts[1:]:
                    if option.startswith("expect="):
                        expect = tuple(option.removeprefix("expect=").split(","))
                    elif option == "prompt":
                        prompt = True
                    else:
                        raise ValueError(f"{path.name}:{number}: unknown option {option!r}")
                case.steps.append(("begin", (_unescape(parts[0]), expect, prompt)))
            elif key == "rx":
                case.steps.append(("rx", codecs.escape_decode(rest.encode())[0]))
            elif key == "prompt":
                case.expected.append(Prompt())
            elif key in ("final", "info", "urc"):
                case.expected.append(_parse_event(key, rest))
            else:
                raise ValueError(f"{path.name}:{number}: unknown line {line!r}")
    return cases


CASES = load_cases()


def _normalise(event: object) -> object:
    if isinstance(event, Final):
        return ("final", event.kind, event.code)
    return event


def _run(case: Case, *, bytewise: bool) -> list[object]:
    parser = AtParser()
    events: list[object] = []

    def drain() -> None:
        while (event := parser.next_event()) is not NEED_DATA:
            events.append(_normalise(event))

    for step, arg in case.steps:
        if step == "begin":
            command, expect, prompt = arg  # type: ignore[misc]
            parser.begin(command, expect=expect, prompt=prompt)
        else:
            data: bytes = arg  # type: ignore[assignment]
            chunks = [data[i : i + 1] for i in range(len(data))] if bytewise else [data]
            for chunk in chunks:
                parser.receive_data(chunk)
                drain()
    return events


def test_corpus_is_large_and_cited() -> None:
    assert len(CASES) >= 20
    for case in CASES:
        assert case.source, f"{case.file}: case {case.name!r} has no source"
        assert case.expected, f"{case.file}: case {case.name!r} expects nothing"


@pytest.mark.parametrize("case", CASES, ids=[f"{c.file}:{c.name}" for c in CASES])
@pytest.mark.parametrize("bytewise", [False, True], ids=["chunks", "bytewise"])
def test_corpus_case(case: Case, bytewise: bool) -> None:
    assert _run(case, bytewise=bytewise) == case.expected
