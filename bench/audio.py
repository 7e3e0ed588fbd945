"""``simrotor bench audio --corpus DIR --json``: our detectors and Asterisk's AMD() side by
side on a labelled corpus (see ``simrotor audio corpus``).

Prints per-class AMD accuracy and confusion for both, decision times (median, p95) for
humans and machines, DTMF digit accuracy and talk-off, beep and SIT detection, and CPU
per second of audio (process time of the frame-by-frame streaming path, fastest of
``--cpu-passes`` replays).
"""
from __future__ import annotations

from pathlib import Path

import click

from common.clikit import emit, fail, json_option


@click.command()
@click.option("--corpus", "corpus_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Directory made by `simrotor audio corpus` (WAVs + labels.csv).")
@click.option("--cpu-passes", type=click.IntRange(1, 20), default=3, show_default=True,
              help="Replay the corpus this many times for the CPU figures and keep the fastest.")
@json_option
def audio(corpus_dir: Path, cpu_passes: int, as_json: bool) -> None:
    """AMD (ours vs Asterisk), DTMF, beep/SIT and CPU figures on a labelled corpus.

    \b
    Example:
      simrotor audio corpus --out /tmp/corpus --count 320 --seed 2
      simrotor bench audio --corpus /tmp/corpus --json
    """
    from appliance.audio.corpus import CorpusError
    from appliance.audio.evaluate import evaluate_corpus
    from appliance.audio.wav import WavError

    try:
        result = evaluate_corpus(corpus_dir, cpu_passes=cpu_passes)
    except (CorpusError, WavError) as exc:
        fail(str(exc), as_json=as_json)
    emit({"benchmark": "audio", "corpus": str(corpus_dir), **result.summary()}, as_json)
