"""The Grafana dashboard in the repository (docs/grafana/appliance-dashboard.json) asks
only for metrics the appliance serves: every metric name in its queries is a sample
name in a running appliance's ``/metrics`` (on an emulated bank, after one answered and
one busy call, so the labelled counters and the histograms have samples)."""
from __future__ import annotations

import asyncio
import json
import re
import time
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from modem_drivers.emulator import Timing

DASHBOARD = Path(__file__).resolve().parent.parent / "docs" / "grafana" / "appliance-dashboard.json"
NAME = re.compile(r"\bsimrotor_[a-z0-9_]+\b")

pytestmark = pytest.mark.bank(modems=2, sims_per_modem=1, timing=Timing.FAST, seed=3)


def dashboard_metrics() -> set[str]:
    doc = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in doc["panels"] for t in p["targets"]]
    exprs += [v["query"]["query"] for v in doc["templating"]["list"] if isinstance(v.get("query"), dict)]
    assert exprs and all(isinstance(e, str) and e for e in exprs), "every panel has a query"
    return {name for e in exprs for name in NAME.findall(e)}


def test_the_dashboard_names_the_page_figures() -> None:
    names = dashboard_metrics()
    titles = {p["title"] for p in json.loads(DASHBOARD.read_text())["panels"]}
    assert {"ASR (answer-seizure ratio)", "ACD (average call duration)", "PDD (post-dial delay)"} <= titles
    assert {"simrotor_call_seizures_total", "simrotor_call_answered_total", "simrotor_call_talk_seconds_sum",
            "simrotor_call_post_dial_delay_seconds_bucket"} <= names


async def test_every_metric_of_the_dashboard_is_served(appliance, http) -> None:
    wanted = dashboard_metrics()
    # +486000… answers (a person), +486002… is busy (modem_drivers/emulator/_plan.py)
    appliance.scheduler.submit([{"id": "g-answer", "kind": "call", "callee": "+48600000101"},
                                {"id": "g-busy", "kind": "call", "callee": "+48600200102"}])
    deadline = time.monotonic() + 30
    finished = "SELECT COUNT(*) FROM attempts WHERE state = 'finished'"
    while appliance.store.conn.execute(finished).fetchone()[0] < 2:  # a busy callee's job waits for its retry
        assert time.monotonic() < deadline, f"the two calls did not end: {appliance.store.counts()}"
        await asyncio.sleep(0.1)  # the emulator's calls end on their own timers
    async with http.get(appliance.address + "/metrics") as r:  # loopback: no token needed
        assert r.status == 200
        text = await r.text()
    served = {s.name for family in text_string_to_metric_families(text) for s in family.samples}
    missing = sorted(wanted - served)
    assert not missing, f"the dashboard asks for metrics /metrics does not serve: {missing}"
    seized = {s.labels["modem"]: s.value for f in text_string_to_metric_families(text) for s in f.samples
              if s.name == "simrotor_call_seizures_total"}
    assert sum(seized.values()) == 2
