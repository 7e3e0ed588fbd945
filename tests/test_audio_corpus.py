"""Acceptance on a generated corpus: the issue's done-when figures, through the bench's code.

One session-scoped corpus of 320 recordings (espeak-ng + sox) in a temp dir, seed 2 —
not the seed the AMD timings were tuned on (1). Nothing here is committed as audio.
"""
from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from appliance.audio.corpus import CorpusError, make_corpus, read_labels
from appliance.audio.evaluate import CorpusResult, evaluate_corpus

COUNT = 320
SEED = 2



@pytest.fixture(scope="session")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    for tool in ("espeak-ng", "sox"):
        assert shutil.which(tool), f"{tool} missing: apt-get install espeak-ng sox"
    out = tmp_path_factory.mktemp("audio_corpus")
    t0 = time.monotonic()
    make_corpus(out, COUNT, SEED)
    assert time.monotonic() - t0 < 90, "corpus generation should take well under a minute on 2 cores"
    return out


@pytest.fixture(scope="session")
def result(corpus: Path) -> CorpusResult:
    return evaluate_corpus(corpus)


def test_corpus_has_every_class_and_labels(corpus: Path) -> None:
    items = read_labels(corpus)
    assert len(items) == COUNT and len(list(corpus.glob("*.wav"))) == COUNT
    labels = {i.label for i in items}
    assert labels == {"human", "machine", "silence", "fax", "sit", "dtmf"}
    # no trivial artefacts: both speaking classes use both languages, the same voices and speeds
    for label in ("human", "machine"):
        sub = [i for i in items if i.label == label]
        assert {i.lang for i in sub} == {"en", "pl"}
        assert len({i.voice for i in sub}) >= 20 and min(i.speed for i in sub) < 160 < 220 < max(i.speed for i in sub)
        assert len({i.duration_ms // 500 for i in sub}) >= 6


def test_amd_meets_the_issue_thresholds_and_beats_asterisk(result: CorpusResult) -> None:
    ours, base = result.ours, result.baseline
    assert ours.total["human"] + ours.total["machine"] >= 200
    assert ours.accuracy("human") >= 0.97, result.errors
    assert ours.accuracy("machine") >= 0.95, result.errors
    # "Beats the baseline on both error rates": strictly fewer errors per class.
    for label in ("human", "machine"):
        assert ours.accuracy(label) > base.accuracy(label), (label, ours.accuracy(label), base.accuracy(label))
    for label in ("silence", "fax", "sit"):
        assert ours.accuracy(label) >= 0.9, label


def test_human_decision_time(result: CorpusResult) -> None:
    s = result.ours.summary()["decision_time"]
    base = result.baseline.summary()["decision_time"]
    # The issue's 1.5 s. On this seed the defaults decide humans at a median of 1.48 s;
    # the figure depends on the corpus's draw: 1.34–1.54 s over seeds 1–12 and 1.49 s
    # on a 2,560-file corpus (docs/audio.md). A person's greeting ends 1.1 s after answer
    # (median); statements need 440–500 ms of silence, questions 220–280 ms.
    assert s["human"]["median_ms"] <= 1500
    assert s["human"]["median_ms"] < base["human"]["median_ms"]


def test_question_rule_decides_a_third_of_humans(corpus: Path) -> None:
    """The question rule (on by default) is what shortens the median: it decides at least a
    third of the people, and no machine is lost to it beyond the issue's 5 %."""
    from appliance.audio.analyze import analyze_samples
    from appliance.audio.wav import read_wav
    rules: dict[tuple[str, str], int] = {}
    humans = machines = 0
    for it in read_labels(corpus):
        if it.label not in ("human", "machine"):
            continue
        d = analyze_samples(read_wav(corpus / it.file)).amd
        assert d is not None
        humans += it.label == "human"
        machines += it.label == "machine"
        key = (it.label, d.rule)
        rules[key] = rules.get(key, 0) + 1
    assert rules.get(("human", "question_then_silence"), 0) >= humans // 3
    assert rules.get(("machine", "question_then_silence"), 0) <= 0.05 * machines


def test_dtmf_every_digit_and_no_talk_off(result: CorpusResult) -> None:
    assert result.dtmf_files >= 16
    assert result.dtmf_correct == result.dtmf_expected
    assert result.talk_off == 0 and result.talk_off_files >= 200


def test_beep_end_and_sit(result: CorpusResult) -> None:
    # every beep (67 on this seed, 1100 Hz ones at fax-CNG pitch and ragged-edged ones
    # under 12 dB noise among them), and none where there is none: a false beep on a
    # person's vowel makes the AMD drop a live call as a machine
    assert result.beeps_found == result.beeps >= 50
    assert result.false_beeps == 0
    assert max(map(abs, result.beep_end_errors_ms)) <= 20
    assert max(result.beep_latency_ms) <= 200
    assert result.sits_found == result.sits


def test_cpu_is_measured_over_the_whole_corpus(result: CorpusResult) -> None:
    # The 2 ms per second of audio budget is a timing: `simrotor bench audio` reports it
    # (cpu_ms_per_audio_s) and the closing notes quote it; a test on a shared CI machine
    # would only be flaky. Here: the figure covers the corpus and is not zero.
    assert result.audio_s > 1000
    assert result.cpu_s > 0


def test_bench_command_prints_the_same_figures(corpus: Path, tmp_path: Path) -> None:
    small = tmp_path / "small"
    small.mkdir()
    items = read_labels(corpus)[:24]
    for it in items:
        shutil.copy(corpus / it.file, small / it.file)
    from appliance.audio.corpus import write_labels
    write_labels(small, items)
    from bench.audio import audio as bench_audio
    res = CliRunner().invoke(bench_audio, ["--corpus", str(small), "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.output)
    expected = evaluate_corpus(small).summary()
    assert doc["amd"]["ours"]["confusion"] == expected["amd"]["ours"]["confusion"]
    assert doc["amd"]["baseline_asterisk"]["accuracy"] == expected["amd"]["baseline_asterisk"]["accuracy"]
    assert set(doc) >= {"amd", "dtmf", "beep", "sit", "cpu_ms_per_audio_s"}


def test_cli_commands_on_corpus_files(corpus: Path) -> None:
    from appliance.audio.cli import audio
    items = read_labels(corpus)
    run = CliRunner().invoke
    dt = next(i for i in items if i.label == "dtmf")
    res = run(audio, ["dtmf", str(corpus / dt.file), "--json"])
    assert res.exit_code == 0 and json.loads(res.output)["digits"] == dt.digits
    sit = next(i for i in items if i.label == "sit")
    res = run(audio, ["tones", str(corpus / sit.file), "--json"])
    kinds = [e for e in json.loads(res.output)["events"] if e["type"] == "sit"]
    assert kinds and kinds[0]["kind"] == sit.sit_kind
    hum = next(i for i in items if i.label == "human")
    for extra in ([], ["--baseline"]):
        res = run(audio, ["amd", str(corpus / hum.file), "--json", *extra])
        doc = json.loads(res.output)
        assert res.exit_code == 0 and doc["result"] in {"human", "machine", "unsure", "silence"}
        assert doc["detector"] == ("asterisk" if extra else "simrotor")


def test_missing_corpus_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match="no labels file"):
        read_labels(tmp_path)
    from bench.audio import audio as bench_audio
    res = CliRunner().invoke(bench_audio, ["--corpus", str(tmp_path)])
    assert res.exit_code == 1 and "no labels file" in res.output


def test_replayed_defaults_are_the_detector(corpus: Path, result: CorpusResult) -> None:
    """The replay of the default silence rule gives the bench's own figures, so a replayed
    rule says what the detector would do; the bounds lie where they must."""
    from appliance.audio.replay import bounds, trace_corpus
    b = bounds(trace_corpus(corpus))
    ours = result.ours.summary()
    for label in ("human", "machine"):
        assert b["defaults"][label]["accuracy"] == ours["accuracy"][label], label
    assert b["defaults"]["human"]["median_ms"] == ours["decision_time"]["human"]["median_ms"]
    assert b["defaults"]["human"]["p95_ms"] == ours["decision_time"]["human"]["p95_ms"]
    floor = b["decide_at_first_pause"]["human"]["median_ms"]
    assert floor < b["perfect_question_detector"]["human"]["median_ms"] <= b["defaults"]["human"]["median_ms"]
    from bench.amd_replay import amd_replay
    res = CliRunner().invoke(amd_replay, ["--corpus", str(corpus), "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["defaults"] == json.loads(json.dumps(b["defaults"]))
