"""``simrotor provision selftest`` on an emulated bank (issue 15): one SIM blocked by its
operator (``Fault.BLOCK_SIM``: calls released with cause 50, SMS refused) fails its SMS
and call while the others pass every check; the report as text, JSON and a
self-contained, escaped HTML file; run with the appliance stopped (ports opened by the
selftest, a port held elsewhere reported) and with it running (each modem borrowed
through the local API and given back, idle again)."""
from __future__ import annotations

import asyncio
import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest

from appliance.config import parse_config
from modem_drivers.at import AtPort
from modem_drivers.emulator import Fault, Timing
from provisioning import selftest_report
from provisioning.selftest import selftest, settings_from
from provisioning.tomlout import dumps

pytestmark = pytest.mark.bank(modems=3, sims_per_modem=1, timing=Timing.FAST, seed=5)

REFERENCE = "+48600000777"  # behaviour 0: a person who answers
#: An appliance id with every character HTML must escape: the file must show it as text.
NASTY_ID = "box <script>alert(1)</script> & \"co\""


def config(tmp_path: Path, bank: Any, *, listen: str = "", app_id: str = "site-7") -> dict[str, Any]:
    return {"emulator_state": str(bank.state),
            "appliance": {"id": app_id, "store": str(tmp_path / "appliance.db"), "listen": listen, "token": "selftest-token"},
            "limits": {"min_pause_seconds": 0.0, "pause_after_call": [0.0, 0.0]},
            "supervision": {"check_interval_seconds": 1.0, "reopen_backoff": [0.2, 1.0]}}


def by_modem(report: Any) -> dict[str, Any]:
    return {s.modem_id: s for s in report.sims}


async def test_blocked_sim_fails_the_others_pass_ports_opened_directly(tmp_path, bank) -> None:
    emu = bank.emu
    await emu.inject("emu001", Fault.BLOCK_SIM)
    cfg = parse_config(config(tmp_path, bank))  # listen "": no API, the ports are opened here
    said: list[str] = []
    report = await selftest(cfg, settings_from(cfg, REFERENCE, {}), progress=said.append)

    assert report.ports == "opened directly" and not report.passed
    sims = by_modem(report)
    assert sorted(sims) == ["emu000", "emu001", "emu002"]
    for mid in ("emu000", "emu002"):
        s = sims[mid]
        assert s.passed, s
        assert [c.name for c in s.checks] == ["registration", "signal", "sms", "call", "balance"]
        assert all(c.ok for c in s.checks), s.checks
        assert s.check("balance").detail.startswith("12.34")
        assert s.iccid and s.msisdn
    blocked = sims["emu001"]
    assert not blocked.passed
    assert blocked.check("registration").ok and blocked.check("signal").ok
    assert blocked.check("sms").ok is False and "not subscribed" in blocked.check("sms").detail  # +CMS ERROR: 50
    assert blocked.check("call").ok is False and "cause 50" in blocked.check("call").detail
    assert "blocked" in blocked.fix
    assert "emu001: FAIL (3/3 modems)" in said or any(t.startswith("emu001: FAIL") for t in said)

    # the network saw the test traffic of the good SIMs only, to the reference number
    texts = [r for r in emu.network.sms if r.to == REFERENCE]
    assert sorted(r.modem_id for r in texts) == ["emu000", "emu002"]
    calls = [c for c in emu.network.calls if c.callee == REFERENCE]
    assert sorted((c.modem_id, c.answered) for c in calls) == [("emu000", True), ("emu001", False), ("emu002", True)]
    assert [c.cause for c in calls if c.modem_id == "emu001"] == [50]

    text = selftest_report.text(report)
    assert "emu001 slot 0  FAIL" in text and "2 of 3 SIMs passed" in text


async def test_a_held_port_is_reported_and_a_skipped_reference(tmp_path, bank) -> None:
    cfg = parse_config(config(tmp_path, bank))
    holder = await AtPort.open(cfg.modem[2].port, name="holder", reconnect=False)  # another process's tool
    try:
        report = await selftest(cfg, settings_from(cfg, None, {}))
    finally:
        await holder.close()
    sims = by_modem(report)
    held = sims["emu002"]
    assert held.check("port").ok is False and "busy" in held.check("port").detail
    assert "fuser -v" in held.fix
    ok = sims["emu000"]
    assert ok.passed and ok.check("sms").ok is None and "no --reference" in ok.check("sms").detail


async def test_cli_json_and_escaped_html(tmp_path, bank) -> None:
    await bank.emu.inject("emu002", Fault.BLOCK_SIM)
    path = tmp_path / "appliance.toml"
    path.write_text(dumps(config(tmp_path, bank, app_id=NASTY_ID)))
    html_path = tmp_path / "handover.html"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "simrotor", "provision", "selftest", "--config", str(path), "--reference", REFERENCE,
        "--html", str(html_path), "--json", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    assert proc.returncode == 1, err.decode()  # one SIM failed
    doc = json.loads(out)
    assert doc["appliance_id"] == NASTY_ID and doc["passed"] is False
    assert [(s["modem_id"], s["passed"]) for s in doc["sims"]] == [("emu000", True), ("emu001", True), ("emu002", False)]
    assert "emu002: FAIL" in err.decode() and "report written to" in err.decode()

    page = html_path.read_text(encoding="utf-8")
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;co&quot;" in page
    assert not re.search(r"(src|href)\s*=", page), "the hand-over file must not fetch anything"
    assert page.count('<span class="verdict PASS">PASS</span>') == 2
    assert page.count('<span class="verdict FAIL">FAIL</span>') == 2  # the blocked SIM's row and the heading
    assert "cause 50" in page

    bad = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "simrotor", "provision", "selftest", "--config", str(path), "--reference", "call-me",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    _, err = await bad.communicate()
    assert bad.returncode == 2 and "--reference" in err.decode() and "not a phone number" in err.decode()


async def test_running_appliance_lends_each_modem_and_gets_it_back(tmp_path, bank, start_appliance) -> None:
    await bank.emu.inject("emu000", Fault.BLOCK_SIM)
    raw = config(tmp_path, bank, listen="127.0.0.1:0")
    app = await start_appliance(raw)
    raw["appliance"]["listen"] = app.address.removeprefix("http://")
    cfg = parse_config(raw)
    said: list[str] = []
    report = await selftest(cfg, settings_from(cfg, REFERENCE, {}), concurrency=1, progress=said.append)

    assert report.ports.startswith("lent by the running appliance")
    sims = by_modem(report)
    assert not sims["emu000"].passed and sims["emu000"].check("call").ok is False
    assert sims["emu001"].passed and sims["emu002"].passed
    assert any(t.startswith("borrowing emu001") for t in said)
    for _ in range(100):  # given back: each is opened again by the appliance
        states = {c.id: c.state.value for c in app.bank.channels.values()}
        if all(s not in ("stopped", "opening") for s in states.values()):
            break
        await asyncio.sleep(0.05)
    assert states["emu001"] == "idle" and states["emu002"] == "idle", states
    assert all(ch.pending is None for ch in app.bank.channels.values())


@pytest.mark.bank(modems=2, sims_per_modem=2, vendors=("simcom", "huawei"), timing=Timing.FAST, seed=5)
async def test_dual_sim_modem_slot_by_slot_and_a_modem_with_fewer_slots_noted(tmp_path, bank) -> None:
    cfg = parse_config(config(tmp_path, bank))
    report = await selftest(cfg, settings_from(cfg, REFERENCE, {}))
    rows = [(s.modem_id, s.slot, s.passed) for s in report.sims]
    assert rows == [("emu000", 0, True), ("emu000", 1, True), ("emu001", 0, True)], report
    assert len({s.iccid for s in report.sims}) == 3  # each slot's own SIM was tested
    assert report.passed
    assert len(report.notes) == 1 and report.notes[0].startswith("emu001: the modem refused slot 1")
    assert "note: emu001" in selftest_report.text(report)
    assert "note: emu001" in selftest_report.html(report)
