"""Config validation: each mistake names the key and the fix."""
from __future__ import annotations

import json

import pytest

from appliance.config import ConfigError, load_config

GOOD = """
[appliance]
id = "box-01"
token = "secret"
timezone = "Europe/Warsaw"

[[modem]]
id = "m1"
port = "/dev/ttyUSB2"
slots = 2
"""


def test_good_config_loads(tmp_path):
    p = tmp_path / "a.toml"
    p.write_text(GOOD)
    cfg = load_config(p)
    assert cfg.appliance.id == "box-01" and cfg.modem[0].slots == 2
    assert cfg.limits.calls_per_hour == 30  # documented default


@pytest.mark.parametrize(
    "text, words",
    [
        ("", ["[appliance]", "missing", "fix"]),
        (GOOD + "\n[limits]\ncalls_per_hour = 'many'\n", ["[limits] calls_per_hour", "int"]),
        (GOOD.replace("slots = 2", "slots = 12"), ["slots", "out of range", "fix"]),
        (GOOD.replace("slots = 2", "slotz = 2"), ["unknown key 'slotz'"]),
        (GOOD.replace('token = "secret"', ""), ["[appliance] token", "fix"]),
        (GOOD.replace("Europe/Warsaw", "Mars/Olympus"), ["timezone", "Mars/Olympus"]),
        (GOOD + "\n[limits]\npause_after_call = [20.0, 5.0]\n", ["pause_after_call", "fix"]),
        ("[appliance]\nid='x'\ntoken='t'\n", ["no modems", "emulator_state"]),
        ("this is = = not toml", ["not valid TOML"]),
    ],
)
def test_mistakes_are_named(tmp_path, text, words):
    p = tmp_path / "a.toml"
    p.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_config(p)
    for w in words:
        assert w in str(err.value), (w, str(err.value))
    assert str(p) in str(err.value)


def test_missing_file_and_emulator_state(tmp_path):
    with pytest.raises(ConfigError, match="no such file"):
        load_config(tmp_path / "none.toml")
    state = tmp_path / "bank.json"
    state.write_text(json.dumps({"modems": [{"id": "emu000", "port": "/tmp/x", "sims": [{}, {}]}]}))
    p = tmp_path / "a.toml"
    p.write_text("emulator_state = 'bank.json'\n[appliance]\nid='x'\ntoken='t'\n")
    cfg = load_config(p)
    assert [(m.id, m.slots) for m in cfg.modem] == [("emu000", 2)]
    (tmp_path / "bank.json").unlink()
    with pytest.raises(ConfigError, match="simrotor emulate"):
        load_config(p)


def test_job_hints_name_operators_as_mcc_mnc():
    from appliance.jobspec import JobError, validate_job
    ok = validate_job({"id": "h", "kind": "hlr", "callee": "+48600000123", "hints": {"callee_operator": "26002"}})
    assert ok["hints"]["callee_operator"] == "26002"
    for bad in ({"callee_operator": "Plus"}, {"operator": 26001}, {"callee_operator": "2600"}):
        try:
            validate_job({"id": "h", "kind": "hlr", "callee": "+48600000123", "hints": bad})
        except JobError as exc:
            assert exc.field.startswith("hints.") and "MCC+MNC" in exc.reason
        else:
            raise AssertionError(f"{bad} accepted")
