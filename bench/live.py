"""``simrotor bench live``: live AMD and the voicebot on the emulator's audio ports.

The emulator runs in its own process (``bench._emulated``); this process is the appliance
side: one ``Modem`` per virtual modem (Huawei E1550/E173, SIM7600, EC25: the models with an
audio port) with its audio port open, and each call goes through the product's call
executor (``appliance.jobs.call.run_call`` with ``on_answer: "amd"``: the audio health
check, the ``Listener`` feeding the streaming AMD, the decision's branch). Two phases:

* **corpus** — the emulator plays a labelled corpus (``simrotor audio corpus``, issue 6's
  generator) with ``--audio-dir``: one number per recording, of the plan behaviour whose
  kind matches the label. Machines hang up at the verdict (``on_machine: "hangup"``);
  the human side plays a silent message of ``--watch-seconds`` (14 s) so the watch that
  may revise a fast "human" listens as long as it would in production (``REVISE_UNTIL_MS``).
  The same recordings go through the same ``Listener`` offline (frames cut from the WAV,
  no port), and both are printed side by side: per-class accuracy of the first verdict
  and after revisions, human and machine median and p95 decision time, the revision
  rate, and every recording whose live verdict or revision differs from the offline one,
  with the live − offline decision time (0 when the port delivers the file as it is).
* **load** — ``--calls`` listening keypad persons (plan behaviour 8, V = 9: the emulator's
  espeak voices) answer at once, the AMD decides, the shipped ``promise_to_pay`` dialogue
  runs (``on_human: "voicebot"``) until the dialogue ends or ``--talk-seconds``. Figures:
  frames written late by more than 20 ms (the ports' ``late_writes``; goal 0), this
  process's CPU (user + system process time) per live call-second and for all calls at
  once (goal: under half of one core), the AMD's decision time from the answer (human
  median ≤ 1.5 s), and the time from the end of a person's greeting (the far end's clock)
  to the first prompt he heard (goal p99 ≤ 1 s).

``os.getloadavg()`` is printed at each phase: other work on the machine inflates the load
figures, never the corpus's accuracies.
"""
from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import os
import statistics
import sys
import tempfile
import time
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import click

from common.clikit import (
    emit,
    fail,
    install_event_loop_policy,
    json_option,
    raise_nofile_limit,
)

#: Models with an audio port, one of each vendor's kind (docs/emulator.md, "Call audio").
AUDIO_VENDORS: Final = "huawei,SIMCOM_SIM7600E-H,EC25"
#: The human side's message in the corpus phase: silence as long as the watch listens
#: (appliance/jobs/live.py REVISE_UNTIL_MS, 14 s), so a revision is seen as in production.
WATCH_MESSAGE_S: Final = 14.0
#: A corpus call lasts the message plus the AMD's 5 s bound and margin.
CORPUS_TALK_MARGIN_S: Final = 8.0
#: Corpus label → (plan behaviour digit B, variant digit V) of a callee of that kind
#: (docs/emulator.md, number plan): person, machine, silence, fax, operator SIT.
KIND_DIGITS: Final = {"human": (0, 0), "machine": (1, 0), "silence": (0, 7), "fax": (0, 8), "sit": (0, 9)}
#: The voicebot's variables for every load call (the shipped dialogue's job variables).
VOICEBOT_VARIABLES: Final = {"creditor": "Kredyt Plus", "debtor_name": "Jan Kowalski", "amount": "123.45",
                             "currency": "PLN"}
#: A progress line on stderr every this many finished calls.
PROGRESS_EVERY: Final = 16


def _q(values: list[float], p: float) -> float | None:
    if not values:
        return None
    v = sorted(values)
    return v[min(len(v) - 1, int(p * len(v)))]


def _dist(values: list[float]) -> dict[str, Any]:
    if not values:
        return {"n": 0}
    return {"n": len(values), "median": statistics.median(values), "p95": _q(values, 0.95), "p99": _q(values, 0.99),
            "min": min(values), "max": max(values)}


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def _progress(msg: str) -> None:
    print(f"bench live: {msg}", file=sys.stderr, flush=True)


def _cpu() -> float:
    """User + system CPU seconds of this process (threads included)."""
    t = os.times()
    return t.user + t.system


# -- the corpus ---------------------------------------------------------------------------------
@dataclasses.dataclass(slots=True)
class Recording:
    file: Path
    label: str
    number: str
    beep_end_ms: int
    offline: dict[str, Any] = dataclasses.field(default_factory=dict)
    live: dict[str, Any] = dataclasses.field(default_factory=dict)


def corpus_number(label: str, i: int) -> str:
    """The callee who plays recording ``i``: national ``60 0 B V NNNN`` (operator Plus)."""
    b, v = KIND_DIGITS[label]
    return f"+48600{b}{v}{i:04d}"


def plan_recordings(corpus: Path) -> list[Recording]:
    from appliance.audio.corpus import read_labels

    out = []
    for i, it in enumerate(read_labels(corpus)):
        if it.label in KIND_DIGITS:  # the AMD's classes (dtmf files are the DTMF detector's)
            out.append(Recording(corpus / it.file, it.label, corpus_number(it.label, i), it.beep_end_ms))
    if len(out) > 9999:
        raise click.UsageError("at most 9,999 AMD recordings: the callee numbers hold 4 digits for the index")
    return out


def link_audio_dir(recordings: list[Recording], into: Path) -> None:
    """``--audio-dir``: each recording linked as ``<national number>.wav``."""
    for r in recordings:
        (into / f"{r.number.removeprefix('+48')}.wav").symlink_to(r.file.resolve())


def offline(rec: Recording) -> dict[str, Any]:
    """The recording's frames through the live path's ``Listener`` (no port): first verdict,
    any revision within the watch's window, the beep."""
    from appliance.audio.pcm import iter_frames
    from appliance.audio.wav import read_wav
    from appliance.jobs.live import REVISE_UNTIL_MS, Listener

    listener = Listener(None)  # type: ignore[arg-type]  # feed() never touches the port
    for frame in iter_frames(read_wav(rec.file).samples):
        listener.feed(frame)
        if listener.ms > REVISE_UNTIL_MS or (listener.first is not None and listener.revision is not None):
            break
    return _verdict(listener.first, listener.revision, listener.beep_ms)


def _verdict(first: Any, revision: Any, beep_ms: int | None) -> dict[str, Any]:
    if first is None:
        return {"decision": None}
    out = {"decision": first.result.value, "rule": first.rule, "decided_ms": first.decided_ms,
           "revised": revision is not None, "beep_ms": beep_ms}
    if revision is not None:
        out.update(revised_ms=revision.decided_ms, revised_rule=revision.rule)
    return out


EXPECTED_SIDE: Final = {"human": "human", "machine": "machine", "silence": "silence", "fax": "fax", "sit": "machine"}


def score(recs: list[Recording], which: str) -> dict[str, Any]:
    """Per-class figures of one side (``offline`` or ``live``): the first verdict right,
    the final one (after any revision) right, human and machine decision times (right
    first verdicts only, as ``bench audio``), revisions."""
    by: dict[str, dict[str, Any]] = {}
    for r in recs:
        v = getattr(r, which)
        row = by.setdefault(r.label, {"n": 0, "right_first": 0, "right_final": 0, "revised": 0, "no_verdict": 0,
                                       "confusion": {}, "times": []})
        row["n"] += 1
        decision = v.get("decision")
        if decision is None:
            row["no_verdict"] += 1
            continue
        row["confusion"][decision] = row["confusion"].get(decision, 0) + 1
        final = "machine" if v.get("revised") else decision
        right = decision == EXPECTED_SIDE[r.label]
        row["right_first"] += right
        row["right_final"] += final == EXPECTED_SIDE[r.label]
        row["revised"] += bool(v.get("revised"))
        if right:
            row["times"].append(v["decided_ms"])
    out: dict[str, Any] = {}
    for label, row in sorted(by.items()):
        times = row.pop("times")
        n = row["n"]
        out[label] = {**row, "accuracy_first": round(row["right_first"] / n, 4),
                      "accuracy_final": round(row["right_final"] / n, 4), "revision_rate": round(row["revised"] / n, 4)}
        if label in ("human", "machine") and times:
            out[label]["decision_ms"] = {"median": statistics.median(times), "p95": _q(times, 0.95)}
    return out


def compare(recs: list[Recording]) -> dict[str, Any]:
    """Live against offline on the same recordings."""
    both = [r for r in recs if r.live.get("decision") and r.offline.get("decision")]
    same = [r for r in both if r.live["decision"] == r.offline["decision"]]
    dt_ms = [r.live["decided_ms"] - r.offline["decided_ms"] for r in same]
    differ = [{"file": r.file.name, "label": r.label, "offline": r.offline, "live": r.live}
              for r in recs if r.live.get("decision") != r.offline.get("decision")
              or bool(r.live.get("revised")) != bool(r.offline.get("revised"))]
    return {"compared": len(both), "same_verdict": len(same),
            "decided_ms_live_minus_offline": _dist(dt_ms),
            "differing": differ}


# -- the appliance side ---------------------------------------------------------------------------
@contextlib.asynccontextmanager
async def opened(modems: list[dict[str, Any]]) -> Any:
    """A ``Modem`` per virtual modem, its audio port open."""
    from modem_drivers.modem import Modem

    out: list[Any] = []
    try:
        for m in modems:
            modem = await Modem.open(m["port"])
            out.append(modem)
            await modem.audio_port(m["audio_port"])
        yield out
    finally:
        await asyncio.gather(*(m.close() for m in out), return_exceptions=True)


async def calls_seen(control: str) -> dict[str, dict[str, Any]]:
    """The emulator's record of each call (its far end's clock), by callee."""
    import aiohttp

    async with aiohttp.ClientSession() as s, s.get(control + "/calls") as r:
        calls = await r.json()
    return {c["callee"]: c for c in calls}


def _silence_wav(path: Path, seconds: float) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(bytes(int(seconds * 8000) * 2))


def _port_stats(modems: list[Any]) -> tuple[int, int, int]:
    late = sum(m.audio.stats.late_writes for m in modems if m.audio is not None)
    written = sum(m.audio.stats.frames_out for m in modems if m.audio is not None)
    dropped = sum(m.audio.stats.dropped_frames for m in modems if m.audio is not None)
    return late, written, dropped


async def run_corpus(state: dict[str, Any], recs: list[Recording], tmp: Path, watch_s: float) -> dict[str, Any]:
    from appliance.jobs.base import Placement
    from appliance.jobs.call import run_call

    message = tmp / "silence.wav"
    _silence_wav(message, watch_s)
    opts = {"on_answer": "amd", "on_machine": "hangup", "on_human": "play", "message_wav": str(message),
            "max_ring_seconds": 30.0, "max_talk_seconds": watch_s + CORPUS_TALK_MARGIN_S}
    queue: asyncio.Queue[Recording] = asyncio.Queue()
    for r in recs:
        queue.put_nowait(r)
    done = 0
    outcomes: dict[str, int] = {}

    async def worker(modem: Any, idx: int) -> None:
        nonlocal done
        while not queue.empty():
            rec = queue.get_nowait()
            res = await run_call(modem, {"id": rec.file.name, "kind": "call", "callee": rec.number},
                                 Placement(f"m{idx}", "s", "+48690000000", 1), opts)
            outcomes[res.get("outcome", "?")] = outcomes.get(res.get("outcome", "?"), 0) + 1
            amd = res.get("amd")
            rec.live = {"decision": None, "outcome": res.get("outcome"), "error": res.get("error")} if amd is None else {
                **{k: amd[k] for k in ("decision", "rule", "decided_ms", "revised")},
                **({"revised_ms": amd["revised_ms"], "revised_rule": amd["revised_rule"]} if amd.get("revised") else {}),
                "beep_ms": res.get("beep_ms")}
            done += 1
            if done % PROGRESS_EVERY == 0 or done == len(recs):
                _progress(f"corpus {done}/{len(recs)} calls")

    t0, c0 = time.monotonic(), _cpu()
    async with opened(state["modems"]) as modems:
        await asyncio.gather(*(worker(m, i) for i, m in enumerate(modems)))
        late, written, dropped = _port_stats(modems)
    seen = await calls_seen(state["control"])
    far_late = sum((seen.get(r.number, {}).get("audio") or {}).get("late_ticks", 0) for r in recs)
    return {"calls": len(recs), "outcomes": outcomes, "seconds": round(time.monotonic() - t0, 1),
            "cpu_s": round(_cpu() - c0, 2), "frames_dropped_by_listener": dropped,
            "late_writes": late, "frames_written": written, "far_end_late_ticks": far_late}


# -- the load phase --------------------------------------------------------------------------------
def load_numbers(n: int) -> list[str]:
    # national 60 0 8 9 W XXX: W = the script digit, XXX = the call's index (W varies fastest)
    return [f"+4860089{i % 10}{i // 10:03d}" for i in range(n)]


def warm_voices(numbers: list[str], seed: int) -> int:
    """Make the emulator's clips for these callees now (its disk cache), so no call starts
    on a quiet line while its voice is synthesised; returns how many callees."""
    from modem_drivers.emulator._plan import Behaviour, plan_behaviour
    from modem_drivers.emulator._voices import SoundLibrary, default_cache_dir

    lib = SoundLibrary(default_cache_dir(), None, seed)
    for n in numbers:
        assert plan_behaviour(n) is Behaviour.HUMAN_DTMF, n
        lib.sound_for(n, Behaviour.HUMAN_DTMF)
    return len(numbers)


async def run_load(state: dict[str, Any], numbers: list[str], talk_s: float) -> dict[str, Any]:
    from appliance.jobs.amd import job_variables
    from appliance.jobs.base import Placement
    from appliance.jobs.call import run_call
    from common.heap import tune_gc
    from appliance.voicebot.load import shipped
    from appliance.voicebot.prepare import prepare_prompts
    from appliance.voicebot.tts import Synthesiser

    today = dt.date.today()
    variables = {**VOICEBOT_VARIABLES, "due_date": (today - dt.timedelta(days=10)).isoformat(),
                 "window_end": (today + dt.timedelta(days=30)).isoformat()}
    dialogue = shipped("promise_to_pay", "pl")
    await prepare_prompts(dialogue, job_variables(variables), Synthesiser())  # as the scheduler does before a dial
    opts = {"on_answer": "amd", "on_machine": "hangup", "on_human": "voicebot", "dialogue": "promise_to_pay",
            "lang": "pl", "voicebot": variables, "max_ring_seconds": 30.0, "max_talk_seconds": talk_s}
    results: dict[str, dict[str, Any]] = {}
    tune_gc()  # the appliance process's collector settings (appliance/runtime.py)
    async with opened(state["modems"]) as modems:
        l0, w0 = _port_stats(modems)[:2]
        load0 = _load()
        t0, c0 = time.monotonic(), _cpu()

        async def one(modem: Any, i: int, number: str) -> None:
            results[number] = await run_call(modem, {"id": f"l{i}", "kind": "call", "callee": number},
                                             Placement(f"m{i}", "s", "+48690000000", 1), opts)
            if len(results) % PROGRESS_EVERY == 0 or len(results) == len(numbers):
                _progress(f"load {len(results)}/{len(numbers)} calls ended")

        await asyncio.gather(*(one(m, i, n) for i, (m, n) in enumerate(zip(modems, numbers, strict=False))))
        wall, cpu = time.monotonic() - t0, _cpu() - c0
        load1 = _load()
        late, written, dropped = _port_stats(modems)
    seen = await calls_seen(state["control"])
    live_s = sum(r.get("talk_seconds") or 0.0 for r in results.values())
    human_ms, machine_ms, to_prompt, far_late, outcomes, identities = [], [], [], 0, {}, {}
    rules: dict[str, int] = {}
    slowest: list[tuple[int, str, str]] = []  # (greeting end → first prompt, callee, what he said)
    for number, r in results.items():
        outcomes[r.get("outcome", "?")] = outcomes.get(r.get("outcome", "?"), 0) + 1
        amd = r.get("amd") or {}
        rule = f"{amd.get('decision')}/{amd.get('rule')}"
        rules[rule] = rules.get(rule, 0) + 1
        if amd.get("decision") in ("human", "unsure"):
            human_ms.append(amd["decided_ms"])
        elif amd.get("decision") == "machine":
            machine_ms.append(amd["decided_ms"])
        bot = r.get("voicebot")
        key = bot["identity"] if bot else ("error: " + str(r.get("error", "none"))[:60])
        identities[key] = identities.get(key, 0) + 1
        audio = (seen.get(number) or {}).get("audio") or {}
        far_late += audio.get("late_ticks", 0)
        end, heard = audio.get("greeting_end_ms"), audio.get("heard") or []
        if end is not None and heard:
            to_prompt.append(heard[0]["start_ms"] - end)
            slowest.append((heard[0]["start_ms"] - end, number, f"{audio.get('said')!r}, decided {amd.get('decided_ms')} ms"))
    return {
        "calls": len(numbers), "talk_seconds_max": talk_s, "outcomes": outcomes, "voicebot_identity": identities,
        "loadavg_before": load0, "loadavg_after": load1,
        "seconds": round(wall, 1), "live_call_seconds": round(live_s, 1),
        "late_writes": late - l0, "frames_written": written - w0, "frames_dropped_by_listener": dropped,
        "far_end_late_ticks": far_late,
        "cpu_s": round(cpu, 2),
        "cpu_ms_per_live_call_second": round(1000 * cpu / live_s, 2) if live_s else None,
        # all the calls at once: CPU over the phase's wall time (cores busy)
        "cores_for_all_calls": round(cpu / wall, 3) if wall else None,
        "amd_decided_ms": {"human": _dist(human_ms), "machine": _dist(machine_ms)},
        "greeting_end_to_first_prompt_ms": _dist(to_prompt),
        "amd_rules": dict(sorted(rules.items())),
        "slowest_first_prompts": [{"ms": ms, "callee": n, "said": said} for ms, n, said in sorted(slowest)[-5:]],
    }


# -- the command --------------------------------------------------------------------------------------
@contextlib.contextmanager
def corpus_dir(corpus: Path | None, count: int, seed: int) -> Iterator[Path]:
    if corpus is not None:
        yield corpus
        return
    from appliance.audio.corpus import make_corpus

    with tempfile.TemporaryDirectory(prefix="simrotor-live-corpus-") as tmp:
        _progress(f"making a corpus of {count} recordings, seed {seed}")
        make_corpus(tmp, count=count, seed=seed)
        yield Path(tmp)


def corpus_phase(corpus: Path | None, count: int, seed: int, calls: int, emu_seed: int,
                 watch_s: float = WATCH_MESSAGE_S) -> dict[str, Any]:
    from bench._emulated import emulator_process

    with corpus_dir(corpus, count, seed) as cdir, tempfile.TemporaryDirectory(prefix="simrotor-live-") as tmp_s:
        tmp = Path(tmp_s)
        recs = plan_recordings(cdir)
        if not recs:
            raise click.UsageError(f"{cdir}: no human, machine, silence, fax or SIT recording in labels.csv")
        audio_dir = tmp / "audio"
        audio_dir.mkdir()
        link_audio_dir(recs, audio_dir)
        _progress(f"offline: {len(recs)} recordings through the Listener")
        c0 = time.process_time()
        for r in recs:
            r.offline = offline(r)
        off_cpu = time.process_time() - c0
        modems = min(calls, len(recs))
        load0 = _load()
        with emulator_process(modems, timing="fast", vendors=AUDIO_VENDORS, seed=emu_seed,
                              extra=["--audio-dir", str(audio_dir)]) as state:
            run = asyncio.run(run_corpus(state, recs, tmp, watch_s))
        return {
            "corpus": str(corpus) if corpus is not None else f"generated: --count {count} --seed {seed}",
            "recordings": len(recs), "concurrent_calls": modems, "watch_seconds": watch_s, "loadavg_before": load0, "loadavg_after": _load(),
            "offline": score(recs, "offline"), "live": score(recs, "live"), "live_vs_offline": compare(recs),
            "offline_cpu_s": round(off_cpu, 2), "run": run,
        }


def load_phase(calls: int, talk_s: float, emu_seed: int) -> dict[str, Any]:
    from bench._emulated import emulator_process

    numbers = load_numbers(calls)
    _progress(f"load: making the emulator's voices for {calls} callees (cached on disk)")
    warm_voices(numbers, emu_seed)
    with emulator_process(calls, timing="fast", vendors=AUDIO_VENDORS, seed=emu_seed) as state:
        return asyncio.run(run_load(state, numbers, talk_s))


@click.command()
@click.option("--mode", type=click.Choice(["both", "corpus", "load"]), default="both", show_default=True)
@click.option("--corpus", "corpus", type=click.Path(file_okay=False, exists=True, path_type=Path), default=None,
              help="A corpus made by `simrotor audio corpus` (default: one made now with --count/--seed).")
@click.option("--count", type=click.IntRange(1, 10000), default=300, show_default=True,
              help="Recordings in the corpus made now.")
@click.option("--seed", type=int, default=13, show_default=True,
              help="The corpus's seed (AMD tuning used 1 and 5–8: keep off them).")
@click.option("--calls", type=click.IntRange(1, 1024), default=128, show_default=True,
              help="Concurrent calls: the emulator's modems (corpus: calls at once; load: all at once).")
@click.option("--talk-seconds", type=click.FloatRange(1.0, 600.0), default=30.0, show_default=True,
              help="Load phase: each call's max_talk_seconds (the shipped dialogue runs ~55 s to its end).")
@click.option("--watch-seconds", type=click.FloatRange(1.0, 60.0), default=WATCH_MESSAGE_S, show_default=True,
              help="Corpus phase: how long the human side's silent message keeps the revision watch listening.")
@click.option("--emulator-seed", type=int, default=0, show_default=True)
@json_option
def live(mode: str, corpus: Path | None, count: int, seed: int, calls: int, talk_seconds: float,
         watch_seconds: float, emulator_seed: int, as_json: bool) -> None:
    """Live AMD on a corpus played by the emulator (beside the offline figures), and the
    voicebot under load: late frames, CPU per live call-second, AMD and first-prompt times.

    \b
    Examples:
      simrotor bench live --count 300 --seed 13 --calls 128 --json
      simrotor bench live --mode load --calls 128 --talk-seconds 30 --json
      simrotor bench live --mode corpus --corpus /tmp/corpus --calls 64 --json
    """
    from appliance.audio.corpus import CorpusError

    raise_nofile_limit()
    out: dict[str, Any] = {"benchmark": "live", "loop": install_event_loop_policy(), "cpus": os.cpu_count(),
                           "loadavg_start": _load()}
    try:
        if mode in ("both", "corpus"):
            out["corpus"] = corpus_phase(corpus, count, seed, calls, emulator_seed, watch_seconds)
        if mode in ("both", "load"):
            out["load"] = load_phase(calls, talk_seconds, emulator_seed)
    except (CorpusError, RuntimeError) as exc:
        fail(str(exc), as_json=as_json)
    emit(out, as_json)
