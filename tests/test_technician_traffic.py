"""The page's last hour (appliance/technician/traffic.py) from attempts written by the
store's own calls: ASR, ACD and PDD per SIM, operator and modem exactly as the page's
help defines them (channel_error is no seizure, PDD is to alerting or else to the answer,
a call released before ringing has none), the hour's edge found by row id among older
attempts, the SVG charts well-formed with an operator's name escaped, and one reading
kept for REFRESH_SECONDS."""
from __future__ import annotations

import xml.etree.ElementTree as ET

from appliance.bank import Bank
from appliance.channel import Channel, SlotSim
from appliance.store import Store
from appliance.technician.traffic import Traffic
from common.clock import iso
from modem_drivers.types import PinState, SimInfo

NOW = 1_800_000_030.0  # 30 s into a minute
SVG = "{http://www.w3.org/2000/svg}"


def bank() -> Bank:
    channels = []
    for m, (iccid, op) in enumerate((("8948000000000000011", "Orange <b>&"), ("8948000000000000022", "Play"))):
        ch = Channel(f"m{m}", f"/dev/ttyUSB{m}", 1)
        ch.sims[0] = SlotSim(0, iccid, SimInfo(PinState.READY, iccid, None, f"2600{m + 1}", op, f"+4860000000{m}"))
        channels.append(ch)
    return Bank(channels)


def call(store: Store, n: int, channel: str, sim: str, at: float, outcome: str, *, alert: float | None = None,
         answer: float | None = None, talk: float = 0.0) -> None:
    job = f"j{n}"
    store.add_jobs([{"id": job, "kind": "call", "callee": "+48600000100"}], now=at)
    (attempt, _), = store.start_attempts([{"job_id": job, "sim_id": sim, "msisdn": "+48600000001", "channel_id": channel,
                                           "callee": "+48600000100"}], at)
    result = {"job_id": job, "kind": "call", "channel_id": channel, "sim_id": sim, "outcome": outcome,
              "dialed_at": iso(at), "alerting_at": None if alert is None else iso(at + alert),
              "answered_at": None if answer is None else iso(at + answer), "talk_seconds": talk}
    store.finish_attempts([{"attempt_id": attempt, "job_id": job, "result": result, "job_state": "done",
                            "next_attempt_at": None, "final": True}], at + 40)


def test_asr_acd_pdd_per_sim_operator_and_modem(tmp_path) -> None:
    store = Store(tmp_path / "a.db")
    a, b = "8948000000000000011", "8948000000000000022"
    for n in range(300):  # older than the hour: never read (and found past by the row-id search)
        call(store, 1000 + n, "m0", a, NOW - 7200 + n, "answered_human", alert=1.0, answer=2.0, talk=99.0)
    call(store, 1, "m0", a, NOW - 1200, "answered_human", alert=2.0, answer=5.0, talk=30.0)
    call(store, 2, "m0", a, NOW - 900, "busy")  # a seizure, released before ringing: no PDD
    call(store, 3, "m0", a, NOW - 600, "channel_error")  # the modem refused the ATD: no seizure
    call(store, 4, "m1", b, NOW - 300, "no_answer", alert=3.0)
    call(store, 5, "m1", b, NOW - 20, "answered_human", answer=4.0, talk=10.0)  # no alerting: PDD to the answer
    traffic = Traffic(store, bank(), clock=lambda: NOW)
    hour = traffic.document()

    assert hour["by_sim"][a] == {"seizures": 2, "answered": 1, "asr": 50.0, "acd": 30.0, "pdd": 2.0}
    assert hour["by_sim"][b] == {"seizures": 2, "answered": 1, "asr": 50.0, "acd": 10.0, "pdd": 3.5}
    assert hour["by_modem"] == {"m0": hour["by_sim"][a], "m1": hour["by_sim"][b]}
    assert hour["by_operator"] == [{"operator": "Orange <b>&", **hour["by_sim"][a]},
                                   {"operator": "Play", **hour["by_sim"][b]}]
    assert hour["calls"] == 5  # the chart counts every attempt, the channel error too
    assert hour["to"] - hour["from"] == 3600 and hour["to"] == 1_800_000_060.0

    calls = ET.fromstring(hour["charts"]["calls"])
    bars = calls.findall(f"{SVG}rect")
    assert sum(1 for r in bars if r.get("fill") == "#2f9e44") == 2  # two minutes with an answer
    assert {int(r.get("data-minute")) for r in bars} == {39, 44, 49, 54, 59}
    rate = ET.fromstring(hour["charts"]["answer_rate"])
    legend = [t.text for t in rate.findall(f"{SVG}text") if t.get("data-operator")]
    assert legend == ["■ Orange <b>&", "■ Play"]  # the name is text, escaped in the SVG
    assert "<b>&" not in hour["charts"]["answer_rate"]

    # One reading is kept: a new call shows at the next reading, not at once.
    call(store, 6, "m1", b, NOW - 10, "busy")
    assert traffic.document() is hour
    assert traffic.read(NOW)["by_sim"][b]["seizures"] == 3
    store.close()


def test_an_empty_hour(tmp_path) -> None:
    store = Store(tmp_path / "a.db")
    hour = Traffic(store, bank(), clock=lambda: NOW).document()
    assert hour["calls"] == 0 and hour["by_sim"] == {} and hour["by_operator"] == []
    assert "no calls this hour" in hour["charts"]["answer_rate"]
    ET.fromstring(hour["charts"]["calls"])
    store.close()
