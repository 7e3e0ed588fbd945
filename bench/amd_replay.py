"""``simrotor bench amd-replay --corpus DIR --json``: the AMD's silence rules replayed.

Traces the AMD once per human and machine recording (see
:mod:`appliance.audio.replay`), then prints, per class, accuracy and human decision
times for the defaults (equal to ``simrotor bench audio``'s), for the defaults with a
perfect question detector (the labels' text), and for deciding at the first pause (the
floor of any silence rule).
"""
from __future__ import annotations

import time
from pathlib import Path

import click

from common.clikit import emit, fail, json_option


@click.command("amd-replay")
@click.option("--corpus", "corpus_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Directory made by `simrotor audio corpus` (WAVs + labels.csv).")
@json_option
def amd_replay(corpus_dir: Path, as_json: bool) -> None:
    """How far the AMD's silence rules are from their bounds on a corpus.

    \b
    Example:
      simrotor audio corpus --out /tmp/corpus --count 320 --seed 2
      simrotor bench amd-replay --corpus /tmp/corpus --json
    """
    from appliance.audio.corpus import CorpusError
    from appliance.audio.replay import bounds, trace_corpus
    from appliance.audio.wav import WavError

    try:
        t0 = time.monotonic()
        traces = trace_corpus(corpus_dir)
        traced = time.monotonic() - t0
    except (CorpusError, WavError) as exc:
        fail(str(exc), as_json=as_json)
    emit({"benchmark": "amd-replay", "corpus": str(corpus_dir), "recordings": len(traces),
          "trace_seconds": round(traced, 1), **bounds(traces)}, as_json)
