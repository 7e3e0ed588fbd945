"""Config validation: each mistake names the key and the fix."""
from __future__ import annotations

import json

import pytest

from appliance.config import ConfigError, load_config
from system_harness import config_mistake

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


# -- issue 12 item 8: every mistake names file, key and fix; none escapes as a traceback --------
def load_text(tmp_path, text):
    return config_mistake(load_config, ConfigError, tmp_path / "a.toml", text)


@pytest.mark.parametrize("table, line, words", [
    ("limits", "calls_per_hour = -5", ["[limits] calls_per_hour", "-5", "at least 0"]),
    ("operator_limits.\"26001\"", "sms_per_day = -1", ["[operator_limits.26001] sms_per_day", "at least 0"]),
    ("retry", "max_channel_retries = -2", ["[retry] max_channel_retries", "at least 0"]),
    ("lock", "consecutive_failed = 0", ["[lock] consecutive_failed", "at least 1", "leave the key out"]),
    ("quarantine", "causes = [8, 300]", ["[quarantine] causes", "300", "at most 127", "Q.850"]),
])
def test_a_negative_or_impossible_limit_names_key_and_bound(tmp_path, table, line, words):
    msg = load_text(tmp_path, GOOD + f"\n[{table}]\n{line}\n")
    for w in words:
        assert w in msg, (w, msg)


@pytest.mark.parametrize("table, line, words", [
    ("calls", "max_ring_seconds = inf", ["[calls] max_ring_seconds", "inf", "a finite number", "at most 180", "T301"]),
    ("calls", "max_talk_seconds = nan", ["[calls] max_talk_seconds", "nan", "a finite number"]),
    ("sms", "report_timeout_seconds = -inf", ["[sms] report_timeout_seconds", "a finite number"]),
    ("retry", "channel_retry_seconds = -1.0", ["[retry] channel_retry_seconds", "above 0", "hot loop"]),
    ("supervision", "check_interval_seconds = 0", ["[supervision] check_interval_seconds", "above 0"]),
    ("sms", "report_timeout_seconds = 3e9", ["[sms] report_timeout_seconds", "3e+09", "at most 604800", "a week"]),
    ("lock", "lock_seconds = 1e12", ["[lock] lock_seconds", "at most 604800"]),
    ("supervision", "reopen_backoff = [0.0, 60.0]", ["[supervision] reopen_backoff", "above 0"]),
    ("link", "reconnect_backoff = [30.0, 0.5]", ["[link] reconnect_backoff", "[min, max]", "reconnect_backoff = [0.5, 30.0]"]),
])
def test_inf_nan_negative_and_absurd_timeouts_are_refused_with_the_bound(tmp_path, table, line, words):
    msg = load_text(tmp_path, GOOD + f"\n[{table}]\n{line}\n")
    for w in words:
        assert w in msg, (w, msg)


def test_a_store_in_a_missing_directory_names_the_directory(tmp_path):
    missing = tmp_path / "var" / "lib" / "simrotor"
    msg = load_text(tmp_path, GOOD.replace('token = "secret"', f'token = "secret"\nstore = "{missing / "a.db"}"'))
    assert "[appliance] store" in msg and f"the directory '{missing}' does not exist" in msg
    assert f"mkdir -p {missing}" in msg
    missing.mkdir(parents=True)
    assert load_config(tmp_path / "a.toml").appliance.store == str(missing / "a.db")


def test_a_store_that_is_a_directory_is_refused(tmp_path):
    msg = load_text(tmp_path, GOOD.replace('token = "secret"', f'token = "secret"\nstore = "{tmp_path}"'))
    assert "[appliance] store" in msg and "is a directory" in msg


@pytest.mark.parametrize("text, typo, known", [
    (GOOD.replace('timezone = "Europe/Warsaw"', 'tiemzone = "Europe/Warsaw"'), "tiemzone", "timezone"),
    (GOOD + "\n[limits]\ncalls_per_hr = 5\n", "calls_per_hr", "calls_per_hour"),
    (GOOD + "\n[limit]\ncalls_per_hour = 5\n", "limit", "limits"),
    (GOOD.replace("slots = 2", "slotz = 2"), "slotz", "slots"),
    (GOOD + '\n[operator_limits."26001"]\ncalls_per_hourr = 1\n', "calls_per_hourr", "calls_per_hour"),
    (GOOD + '\n[log]\nformt = "text"\n', "formt", "format"),
])
def test_a_typo_inside_an_existing_table_suggests_the_closest_key(tmp_path, text, typo, known):
    msg = load_text(tmp_path, text)
    assert f"unknown key {typo!r}" in msg and f"did you mean {known!r}?" in msg
    assert "add an [appliance] table" not in msg


def test_an_unknown_key_with_no_close_match_lists_the_table_keys(tmp_path):
    msg = load_text(tmp_path, GOOD.replace('timezone = "Europe/Warsaw"', 'colour = "blue"'))
    assert "[appliance]: unknown key 'colour'" in msg and "id, store, listen, token, timezone" in msg


@pytest.mark.parametrize("listen", ["0.0.0.0:8470", "[::]:8470", "10.0.0.5:8470", "box.local:8470"])
def test_a_short_token_is_refused_beyond_loopback(tmp_path, listen):
    msg = load_text(tmp_path, GOOD.replace('token = "secret"', f'token = "x"\nlisten = "{listen}"'))
    assert "[appliance] token" in msg and "at least 16 characters" in msg and "secrets.token_urlsafe(24)" in msg
    assert listen in msg


@pytest.mark.parametrize("listen, token", [
    ("127.0.0.1:8470", "x"), ("[::1]:8470", "x"), ("localhost:8470", "x"), ("127.0.0.2:8470", "t"),
    ("0.0.0.0:8470", "k" * 16),
])
def test_a_short_token_stays_allowed_on_loopback_and_a_long_one_anywhere(tmp_path, listen, token):
    p = tmp_path / "a.toml"
    p.write_text(GOOD.replace('token = "secret"', f'token = "{token}"\nlisten = "{listen}"'))
    assert load_config(p).appliance.token == token


@pytest.mark.parametrize("line, words", [
    ('format = "xml"', ["[log] format", "'xml'", 'format = "json"']),
    ('level = "LOUD"', ["[log] level", "'LOUD'", 'level = "INFO"']),
])
def test_log_table_values_are_checked(tmp_path, line, words):
    msg = load_text(tmp_path, GOOD + f"\n[log]\n{line}\n")
    for w in words:
        assert w in msg, (w, msg)


def test_log_table_defaults_to_json_lines(tmp_path):
    p = tmp_path / "a.toml"
    p.write_text(GOOD + '\n[log]\nformat = "text"\n')
    assert load_config(p).log.format == "text" and load_config(p).log.level == "INFO"
    p.write_text(GOOD)
    assert load_config(p).log.format == "json"


@pytest.mark.parametrize("state", ['{"modems": [{"port": "/tmp/x"}]}', '[1, 2]', '{"modems": 5}'])
def test_a_malformed_emulator_state_is_a_config_error(tmp_path, state):
    (tmp_path / "bank.json").write_text(state)
    msg = load_text(tmp_path, "emulator_state = 'bank.json'\n[appliance]\nid='x'\ntoken='t'\n")
    assert "emulator_state" in msg and "simrotor emulate" in msg


@pytest.mark.parametrize("extra", [
    "\n[limits]\ncalls_per_hour = -5\n",
    "\n[calls]\nmax_ring_seconds = inf\n",
    "\n[appliance.extra]\n",
    "\n[supervision]\nstuck_timeout_seconds = 0\n",
])
def test_appliance_run_with_a_bad_config_exits_2_with_one_paragraph(tmp_path, extra):
    import subprocess
    import sys

    p = tmp_path / "bad.toml"
    p.write_text(GOOD.replace('token = "secret"', f'token = "secret"\nstore = "{tmp_path / "a.db"}"') + extra)
    proc = subprocess.run([sys.executable, "-m", "simrotor", "appliance", "run", "--config", str(p)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stderr.startswith(f"simrotor: error: {p}: ") and "fix: " in proc.stderr
    assert not (tmp_path / "a.db").exists()  # refused before anything was opened


def test_appliance_run_with_a_store_in_a_missing_directory_exits_2(tmp_path):
    import subprocess
    import sys

    p = tmp_path / "bad.toml"
    p.write_text(GOOD.replace('token = "secret"', f'token = "secret"\nstore = "{tmp_path / "nope" / "a.db"}"'))
    proc = subprocess.run([sys.executable, "-m", "simrotor", "appliance", "run", "--config", str(p)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and proc.stderr.count("\n") == 1, proc.stderr
    assert "does not exist" in proc.stderr and "mkdir -p" in proc.stderr


@pytest.mark.parametrize("text, words", [
    (GOOD.replace('timezone = "Europe/Warsaw"', 'status_page = "no"'),
     ["[appliance] status_page: expected bool, got 'no'", "status_page = true or status_page = false"]),
    (GOOD + "\n[limits]\ncalls_per_hour = 'many'\n",
     ["[limits] calls_per_hour: expected int, got 'many'", "calls_per_hour = 30 (the default)"]),
    (GOOD + "\n[limits]\npause_after_call = [1.0]\n", ["[limits] pause_after_call", "length 2", "[5.0, 20.0]"]),
    ("limits = 5\n" + GOOD, ["limits: expected object, got 5", "make limits a table"]),
])
def test_a_wrong_type_says_what_was_given_and_what_to_write(tmp_path, text, words):
    msg = load_text(tmp_path, text)
    for w in words:
        assert w in msg, (w, msg)
