"""The soak harness's own logic (tests/soak_harness.py), fast: the clock shift into the
calling hours, the seed list, the TOML it writes, and the checks — each must catch the
defect it is there for, or a green soak run would prove nothing."""
from __future__ import annotations

import asyncio
import subprocess
import sys
import tomllib
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

import soak_harness as sh

WARSAW = ZoneInfo("Europe/Warsaw")


def test_clock_shift_only_when_the_run_does_not_fit_in_the_calling_hours() -> None:
    assert sh.clock_shift(datetime(2026, 12, 7, 12, 0, tzinfo=WARSAW)).seconds == 0
    assert sh.clock_shift(datetime(2026, 12, 7, 8, 0, tzinfo=WARSAW)).seconds == 0
    # Too close to 21:00 for a run, or after it: forward to tomorrow's 10:00, never back.
    late = sh.clock_shift(datetime(2026, 12, 7, 20, 50, tzinfo=WARSAW))
    assert late.seconds == 13 * 3600 + 10 * 60 and "2026-12-08 10:00" in late.reason
    assert sh.clock_shift(datetime(2026, 12, 7, 23, 30, tzinfo=WARSAW)).seconds == 10.5 * 3600
    # Before 08:00: this morning's 10:00.
    assert sh.clock_shift(datetime(2026, 12, 7, 6, 15, tzinfo=WARSAW)).seconds == 3.75 * 3600
    # Over the spring-forward night the wall clock still lands on 10:00.
    spring = sh.clock_shift(datetime(2026, 3, 28, 22, 0, tzinfo=WARSAW))
    assert spring.seconds == 11 * 3600 and "2026-03-29 10:00" in spring.reason


def test_a_shifted_clock_reaches_a_child_process() -> None:
    shift = sh.ClockShift(5 * 3600.0, "test")
    env = shift.env()
    assert env["FAKETIME"] == "+18000" and env["FAKETIME_DONT_FAKE_MONOTONIC"] == "1"
    out = subprocess.run([sys.executable, "-c", "import time; print(time.time(), time.monotonic())"],
                         env={**env, "PATH": "/usr/bin:/bin"}, capture_output=True, text=True, check=True).stdout
    wall, mono = map(float, out.split())
    now = datetime.now().timestamp()
    assert abs(wall - now - 5 * 3600) < 60  # the child's wall clock is five hours ahead
    assert sh.ClockShift(0.0, "inside").env() == {}


def test_a_shift_without_libfaketime_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sh, "LIBFAKETIME_GLOBS", ("/nonexistent/libfaketime.so.1",))
    with pytest.raises(RuntimeError, match="install Debian's libfaketime"):
        sh.ClockShift(3600.0, "21:30 in Europe/Warsaw").env()


def test_seeds_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SIMROTOR_SOAK_SEEDS", raising=False)
    monkeypatch.delenv("SIMROTOR_SOAK_SEED", raising=False)
    assert sh.soak_seeds() == [1]
    monkeypatch.setenv("SIMROTOR_SOAK_SEED", "7")
    assert sh.soak_seeds() == [7]
    monkeypatch.setenv("SIMROTOR_SOAK_SEEDS", "1-3, 9")
    assert sh.soak_seeds() == [1, 2, 3, 9]
    for bad in ("3-1", "x", "1-"):
        monkeypatch.setenv("SIMROTOR_SOAK_SEEDS", bad)
        with pytest.raises(ValueError, match="SIMROTOR_SOAK_SEEDS"):
            sh.soak_seeds()


def test_toml_quotes_keys_that_are_not_bare() -> None:
    text = sh.toml_text({"emulator_state": "/tmp/bank.json", "operator_prefixes": sh.HINTED_OPERATORS,
                         "limits": {"pause_after_call": [0.0, 1.0], "calls_per_hour": 60, "off": None}})
    assert tomllib.loads(text) == {"emulator_state": "/tmp/bank.json", "operator_prefixes": sh.HINTED_OPERATORS,
                                   "limits": {"pause_after_call": [0.0, 1.0], "calls_per_hour": 60}}


def test_fault_and_kill_plans_cover_every_kind_and_phase_and_every_process() -> None:
    modems = [{"id": f"emu{i:03d}", "vendor": v} for i, v in enumerate(("simcom", "quectel", "huawei", "generic"))]
    faults = sh.plan_faults(__import__("random").Random(4), modems)
    assert {(f.fault, f.phase) for f in faults} >= {(k, p) for k in sh.FAULT_KINDS for p in sh.PHASES}
    assert all(sh.FAULT_PROGRESS[0] <= f.progress <= sh.FAULT_PROGRESS[1] for f in faults)
    lose = [f for f in faults if f.fault == "lose_urc"]
    vendor = {m["id"]: m["vendor"] for m in modems}
    assert all(f.params["prefix"] in sh.LOSE_PREFIXES[vendor[f.modem]] for f in lose)
    kills = sh.plan_kills(__import__("random").Random(4))
    assert sorted(k.service for k in kills) == ["appliance", "controller", "emulator"]
    assert [k.progress for k in kills] == sorted(k.progress for k in kills)


# -- the checks, on a tiny made-up campaign -------------------------------------------------
CONTACTS = [{"phones": ["+48600012345"]}, {"phones": ["+48601312346"]}]


def _result(job: str, callee: str, kind: str, outcome: str, *, attempt: int = 1, shown: str = "+48690000001",
            final: bool = True) -> dict:
    return {"job_id": job, "callee": callee, "kind": kind, "outcome": outcome, "final": final,
            "number_shown": shown, "contact_id": 1, "detail": {"attempt": attempt, "channel_id": "emu000"}}


def _call(callee: str, outcome: str, *, shown: str = "+48690000001", at: str = "2026-12-07T09:00:00+00:00") -> dict:
    return {"callee": callee, "caller_msisdn": shown, "outcome": outcome, "started": at, "direction": "out"}


def _clean() -> tuple[list[dict], list[dict], sh.NetworkLog]:
    results = [
        _result("soak.1.1.0", "+48600012345", "call", "answered_human"),
        _result("soak.2.1.0", "+48601312346", "call", "no_answer"),
        _result("soak.2.1.1", "+48601312346", "call", "no_answer"),
        _result("soak.2.2.0", "+48601312346", "sms", "delivered"),
    ]
    rows = [{"job_id": r["job_id"], "attempt": 1, "final": True} for r in results]
    net = sh.NetworkLog()
    net.current = ([_call("+48600012345", "answered_human"), _call("+48601312346", "no_answer"),
                    _call("+48601312346", "no_answer")],
                   [{"to": "+48601312346", "text": "Dzień dobry", "submitted": "2026-12-07T09:01:00+00:00",
                     "direction": "out"}])
    return results, rows, net


def _problems(results: list[dict], rows: list[dict], net: sh.NetworkLog) -> list[str]:
    report = sh.SoakReport(seed=0, clock="test")
    sh.check_results(report, CONTACTS, results, rows, net)
    return report.problems


def test_a_clean_campaign_has_no_problem() -> None:
    assert _problems(*_clean()) == []


def test_the_checks_catch_each_defect() -> None:
    results, rows, net = _clean()
    net.current[0].append(_call("+48601312346", "no_answer"))  # a third call: beyond 2 attempts, and unreported
    problems = _problems(results, rows, net)
    assert any("more often than the strategy allows" in p for p in problems)
    assert any("have no result at the CRM" in p for p in problems)

    results, rows, net = _clean()
    rows.append({"job_id": "soak.2.1.1", "attempt": 2, "final": True})  # in the outbox, never delivered
    assert any("never reached the CRM" in p for p in _problems(results, rows, net))

    results, rows, net = _clean()
    results.append(_result("soak.1.1.0.g1", "+48600012345", "call", "answered_human"))  # re-issued, run twice
    problems = _problems(results, rows, net)
    assert any("ran under two job ids" in p for p in problems)
    assert any("more call results with a network outcome" in p for p in problems)

    results, rows, net = _clean()
    results[0]["number_shown"] = "+48693000009"  # the appliance thought another SIM was active
    assert any("number shown that the network never showed" in p for p in _problems(results, rows, net))

    results, rows, net = _clean()
    net.current[0][0]["started"] = "2026-12-07T20:30:00+00:00"  # 21:30 in Warsaw
    assert any("outside 08:00-21:00" in p for p in _problems(results, rows, net))

    results, rows, net = _clean()
    results = [r for r in results if r["callee"] != "+48600012345"]
    rows = [r for r in rows if r["job_id"] != "soak.1.1.0"]
    net.current = ([c for c in net.current[0] if c["callee"] != "+48600012345"], net.current[1])
    assert any("no final result at the CRM" in p for p in _problems(results, rows, net))


def test_log_meter_finds_the_worst_window(tmp_path) -> None:
    svc = sh.Service("appliance", [], tmp_path / "appliance.log", {}, tmp_path)
    meter = sh.LogMeter([svc])
    for burst in (1, 1, 300, 1):
        with open(svc.log_path, "a") as fh:
            fh.write('{"ts": "2026-12-07T09:00:00Z", "msg": "link failed 12"}\n' * burst)
        meter.sample()
    assert meter.per_second["appliance"] == [1, 1, 300, 1]
    assert meter.worst_rate("appliance") == pytest.approx(303 / 4)
    assert meter.repeated["appliance"].most_common(1)[0] == ('{"msg": "link failed #"}', 303)


def test_poll_names_what_it_waited_for() -> None:
    async def never() -> bool:
        return False

    with pytest.raises(TimeoutError, match="waited 0.3 s for the controller's API"):
        asyncio.run(sh.poll("the controller's API", never, timeout=0.3))
