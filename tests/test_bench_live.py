"""``simrotor bench live`` end to end at a small size: a 12-recording corpus the emulator
(its own process) plays to the appliance side's live AMD, beside the offline ``Listener``
on the same files, then 4 voicebot calls at once. The figures are the benchmark's to
report; this checks the document's shape and what must hold at any load: the live path
hears each recording as the file holds it (same verdicts, decision times within a frame
or two), and every load call is answered, decided and prompted after its greeting."""
from __future__ import annotations

import json
import subprocess
import sys


def test_bench_live_small_run_prints_live_beside_offline() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "simrotor", "bench", "live", "--count", "12", "--seed", "13", "--calls", "4",
         "--watch-seconds", "3", "--talk-seconds", "8", "--json"],
        capture_output=True, text=True, timeout=300, check=False,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "bench live: corpus" in out.stderr and "bench live: load" in out.stderr  # progress lines
    doc = json.loads(out.stdout)
    assert doc["benchmark"] == "live" and len(doc["loadavg_start"]) == 3 and doc["cpus"] >= 1

    corpus = doc["corpus"]
    n = corpus["recordings"]
    # every recording of the AMD's classes in the 12-file corpus (its DTMF files are the DTMF detector's)
    from appliance.audio.corpus import plan_corpus
    from bench.live import KIND_DIGITS
    assert n == sum(1 for it in plan_corpus(12, 13) if it.label in KIND_DIGITS) and corpus["concurrent_calls"] == 4
    for side in ("offline", "live"):
        assert sum(row["n"] for row in corpus[side].values()) == n, corpus[side]
        for row in corpus[side].values():
            assert 0.0 <= row["accuracy_first"] <= 1.0 and 0.0 <= row["revision_rate"] <= 1.0
    same = corpus["live_vs_offline"]
    assert same["compared"] == n and same["same_verdict"] == n, same["differing"]
    delta = same["decided_ms_live_minus_offline"]
    assert delta["n"] == n and -40 <= delta["min"] and delta["max"] <= 40, delta
    assert corpus["run"]["frames_dropped_by_listener"] == 0, corpus["run"]

    load = doc["load"]
    assert load["calls"] == 4 and sum(load["outcomes"].values()) == 4, load
    decided = load["amd_decided_ms"]["human"]["n"] + load["amd_decided_ms"]["machine"]["n"]
    assert decided == 4, load["amd_rules"]
    assert load["frames_written"] > 0 and load["late_writes"] >= 0 and load["live_call_seconds"] > 0
    assert load["cpu_ms_per_live_call_second"] > 0 and load["cores_for_all_calls"] > 0
    first = load["greeting_end_to_first_prompt_ms"]
    assert first["n"] >= 1 and first["min"] > 0, first  # the prompt comes after his greeting, never over it
