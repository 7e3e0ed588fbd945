"""``simrotor audio …``: offline analysis of WAV files and the labelled corpus.

Each command reads a WAV (converting rate/width/channels, refusing broken files with a
message), runs the same streaming detectors the live call path uses, frame by frame,
and prints the result (``--json`` for one JSON document).
"""
from __future__ import annotations

from pathlib import Path

import click

from common.clikit import emit, fail, json_option

from .analyze import analyze_file, baseline_file
from .corpus import CorpusError, make_corpus
from .events import Beep, FaxTone, Sit
from .wav import WavAudio, WavError

_file_arg = click.argument("file", type=click.Path(dir_okay=False, path_type=Path))


def _source(audio: WavAudio) -> dict[str, object]:
    return {"duration_s": round(audio.duration_s, 3), "source_rate": audio.source_rate,
            "source_channels": audio.source_channels, "source_format": audio.source_format,
            "conversions": list(audio.conversions)}


@click.group()
def audio() -> None:
    """Call audio analysis: answering machines, beeps, SIT, fax tones, DTMF.

    \b
    Examples:
      simrotor audio amd call.wav --json
      simrotor audio amd call.wav --baseline
      simrotor audio dtmf keys.wav
      simrotor audio tones call.wav --json
      simrotor audio corpus --out /tmp/corpus --count 300 --seed 1
    """


@audio.command()
@_file_arg
@click.option("--baseline", is_flag=True, help="Use the Asterisk AMD() reference instead of ours.")
@json_option
def amd(file: Path, baseline: bool, as_json: bool) -> None:
    """Human, machine, fax, silence or unsure — with when and why.

    \b
    Example:
      simrotor audio amd call.wav --json
    """
    try:
        if baseline:
            wav, decision = baseline_file(file)
        else:
            wav, report = analyze_file(file)
            decision = report.amd
    except WavError as exc:
        fail(f"{file}: {exc}", as_json=as_json)
    assert decision is not None
    emit({"file": str(file), "detector": "asterisk" if baseline else "simrotor",
          "result": decision.result, "decided_ms": decision.decided_ms, "rule": decision.rule,
          "connect_agent": decision.connect_agent, "evidence": decision.evidence, "audio": _source(wav)},
         as_json)


@audio.command()
@_file_arg
@json_option
def dtmf(file: Path, as_json: bool) -> None:
    """Key presses heard in the audio (in-band DTMF, ITU-T Q.24 rules).

    \b
    Example:
      simrotor audio dtmf keys.wav
    """
    try:
        wav, report = analyze_file(file, run_amd=False)
    except WavError as exc:
        fail(f"{file}: {exc}", as_json=as_json)
    emit({"file": str(file), "digits": "".join(d.digit for d in report.digits),
          "events": report.digits, "audio": _source(wav)}, as_json)


@audio.command()
@_file_arg
@json_option
def tones(file: Path, as_json: bool) -> None:
    """Voicemail beeps, special information tones (SIT) and fax tones.

    \b
    Example:
      simrotor audio tones call.wav --json
    """
    try:
        wav, report = analyze_file(file, run_amd=False)
    except WavError as exc:
        fail(f"{file}: {exc}", as_json=as_json)
    kinds = {Beep: "beep", Sit: "sit", FaxTone: "fax"}
    events = [{"type": kinds[type(e)], **_flat(e)} for e in report.tones]
    emit({"file": str(file), "events": events, "audio": _source(wav)}, as_json)


def _flat(e: object) -> dict[str, object]:
    from common.clikit import to_jsonable

    d = to_jsonable(e)
    if isinstance(e, Sit):
        d["meaning"] = e.meaning
    return d


@audio.command()
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Directory for the WAV files and labels.csv.")
@click.option("--count", default=300, show_default=True, type=click.IntRange(1, 100000))
@click.option("--seed", default=0, show_default=True, type=int)
@json_option
def corpus(out_dir: Path, count: int, seed: int, as_json: bool) -> None:
    """Generate a labelled corpus with espeak-ng and sox (uses every core).

    \b
    Example:
      simrotor audio corpus --out /tmp/corpus --count 300 --seed 1
    """
    import collections
    import time

    t0 = time.monotonic()
    try:
        items = make_corpus(out_dir, count, seed)
    except CorpusError as exc:
        fail(str(exc), as_json=as_json)
    emit({"out": str(out_dir), "count": len(items), "labels": str(out_dir / "labels.csv"),
          "classes": dict(collections.Counter(i.label for i in items)),
          "seconds": round(time.monotonic() - t0, 1)}, as_json)
