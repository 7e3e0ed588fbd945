"""Trace the AMD once per recording, then replay silence rules over the traces.

Why: the AMD's "human" verdict is a timer on the pauses after speech, and which pause
reaches its timer is all a silence rule changes. So the real detector runs once per
recording with its silence timers out of reach, recording every pause — where it starts,
the greeting it belongs to, the line's SNR, whether the speech before it ended as a
question, and the silence counted at each frame. A rule is then a function of the
pause, and replaying it over a corpus takes milliseconds instead of a bench run. The
replay of the defaults reproduces `simrotor bench audio` (a test checks it on the CI's
corpus), so what a replay says of another rule is what the detector would do.

It also bounds the rules: with the labels' own text, "which of these greetings are
questions" can be answered perfectly, which says how far a better pitch tracker could
move the human median; and deciding at the end of speech, before any silence, is the
floor no silence rule can go below. ``simrotor bench amd-replay --corpus DIR`` prints them.
"""
from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Final

from .amd import AmdConfig, AmdDetector, _State
from .corpus import CorpusItem, read_labels
from .pcm import FRAME_MS, iter_frames
from .wav import read_wav

#: Timers out of reach: only pauses, tones and the end of audio can end a trace.
_NEVER: Final = 59_000


@dataclass(frozen=True, slots=True)
class PauseTrace:
    start_ms: int  # first silent frame
    greeting_start_ms: int
    resume_ms: int | None  # speech again (None: the audio or the trace ended first)
    snr_db: float
    question: bool  # the speech before it ended on a question's rise
    silent: tuple[tuple[int, int], ...]  # (frame end ms, silence counted so far)


@dataclass(frozen=True, slots=True)
class CallTrace:
    item: CorpusItem
    pauses: tuple[PauseTrace, ...]
    end: tuple[str, str, int] | None  # (verdict, rule, ms) of what ended the trace


def trace_samples(item: CorpusItem, samples, config: AmdConfig | None = None) -> CallTrace:  # type: ignore[no-untyped-def]
    """Run the AMD over one recording with its silence and greeting timers disabled."""
    cfg = replace(config or AmdConfig(), human_silence_ms=_NEVER, human_silence_clean_ms=_NEVER,
                  question_silence_ms=_NEVER - 1, question_silence_clean_ms=_NEVER - 1,
                  machine_greeting_ms=_NEVER + 1, total_analysis_ms=_NEVER + 1, initial_silence_ms=_NEVER + 1)
    det = AmdDetector(cfg)
    pauses: list[PauseTrace] = []
    cur: dict | None = None  # type: ignore[type-arg]
    silent: list[tuple[int, int]] = []
    end = None

    def close(resume: int | None) -> None:
        nonlocal cur, silent
        if cur is not None:
            pauses.append(PauseTrace(resume_ms=resume, silent=tuple(silent), **cur))
        cur, silent = None, []

    for i, frame in enumerate(iter_frames(samples)):
        now = (i + 1) * FRAME_MS
        prev = det.state
        got = det.feed(frame)
        if got:
            end = (got[0].result.value, got[0].rule, got[0].decided_ms)
            break
        if prev is not _State.PAUSING and det.state is _State.PAUSING:
            cur = dict(start_ms=det._pause_start * FRAME_MS, greeting_start_ms=det._greeting_start * FRAME_MS,
                       snr_db=float(det._snr or 0.0), question=det._end_question)
        if det.state is _State.PAUSING and cur is not None:
            silent.append((now, det.counted_silence_ms(now)))
        if prev is _State.PAUSING and det.state is _State.SPEAKING:
            close(now)
    close(None)
    return CallTrace(item, tuple(pauses), end)


def trace_corpus(corpus_dir: str | Path, config: AmdConfig | None = None) -> list[CallTrace]:
    """Traces of every human and machine recording of a corpus."""
    base = Path(corpus_dir)
    return [trace_samples(it, read_wav(base / it.file).samples, config)
            for it in read_labels(base) if it.label in ("human", "machine")]


#: A silence rule: (pause, recording) → milliseconds of silence that make it "human".
Rule = Callable[[PauseTrace, CorpusItem], int]


_MACHINE_GREETING_MS: Final = AmdConfig().machine_greeting_ms


def replay(trace: CallTrace, rule: Rule, machine_greeting_ms: int = _MACHINE_GREETING_MS) -> tuple[str, int]:
    """The verdict and its time had the detector used ``rule`` for its silences."""
    for p in trace.pauses:
        if p.start_ms - p.greeting_start_ms >= machine_greeting_ms:
            return "machine", p.greeting_start_ms + machine_greeting_ms
        needed = rule(p, trace.item)
        for at, counted in p.silent:
            if counted >= needed:
                return "human", at
        if p.resume_ms is None:
            break
        if p.resume_ms - p.greeting_start_ms >= machine_greeting_ms:
            return "machine", p.resume_ms
    if trace.end is not None:
        verdict, _rule, at = trace.end
        return verdict, at
    return "unsure", 0


def default_rule(config: AmdConfig | None = None) -> Rule:
    """The detector's own rule (SNR-scaled statement and question silences)."""
    det = AmdDetector(config)
    return lambda p, item: det.silence_needed(p.snr_db, p.question)


def text_question_rule(config: AmdConfig | None = None) -> Rule:
    """The defaults with a perfect question detector: a person's final pause follows a
    question when his text ends with "?"; nobody else's does."""
    det = AmdDetector(config)

    def rule(p: PauseTrace, item: CorpusItem) -> int:
        ends_greeting = item.label == "human" and abs(p.start_ms - item.greeting_end_ms) <= 200
        return det.silence_needed(p.snr_db, ends_greeting and item.text.rstrip().endswith("?"))
    return rule


def score(traces: list[CallTrace], rule: Rule) -> dict[str, object]:
    """Per class: share right and, for humans, the median and p95 decision time."""
    out: dict[str, object] = {}
    for label in ("human", "machine"):
        got = [replay(t, rule) for t in traces if t.item.label == label]
        ok = sorted(ms for verdict, ms in got if verdict == label)
        row: dict[str, object] = {"count": len(got), "accuracy": round(len(ok) / len(got), 4) if got else None}
        if ok:
            row["median_ms"] = statistics.median(ok)
            row["p95_ms"] = ok[min(len(ok) - 1, int(0.95 * len(ok)))]
        out[label] = row
    return out


def bounds(traces: list[CallTrace], config: AmdConfig | None = None) -> dict[str, object]:
    """The defaults, a perfect question detector, and the floor of deciding "human" at
    the first pause (no silence rule can be quicker for people; machines all lost)."""
    return {
        "defaults": score(traces, default_rule(config)),
        "perfect_question_detector": score(traces, text_question_rule(config)),
        "decide_at_first_pause": score(traces, lambda p, item: 0),
    }
