"""The controller's config (issue 12 item 8): every mistake names file, key and fix, and
`simrotor controller run` with a bad config exits 2 with one paragraph, never a traceback."""
from __future__ import annotations

import subprocess
import sys

import pytest

from controller.config import ConfigError, load_config
from system_harness import config_mistake


def load_text(tmp_path, text):
    return config_mistake(load_config, ConfigError, tmp_path / "controller.toml", text)


@pytest.mark.parametrize("text, words", [
    ("[dispatch]\nqueue_depth = -1\n", ["[dispatch] queue_depth", "-1", "at least 0"]),
    ("[webhooks]\nmax_attempts = 0\n", ["[webhooks] max_attempts", "at least 1"]),
    ("[dispatch]\nlease_seconds = 5\n", ["[dispatch] lease_seconds", "at least 10"]),
    ("[dispatch]\nlease_seconds = inf\n", ["[dispatch] lease_seconds", "inf", "a finite number", "at most 604800"]),
    ("[dispatch]\ninterval_seconds = nan\n", ["[dispatch] interval_seconds", "nan", "a finite number"]),
    ("[dispatch]\ninterval_seconds = 0\n", ["[dispatch] interval_seconds", "above 0"]),
    ("[dispatch]\nstranded_after_seconds = -5\n", ["[dispatch] stranded_after_seconds", "at least 0"]),
    ("[webhooks]\ntimeout_seconds = 1e10\n", ["[webhooks] timeout_seconds", "at most 604800", "a week"]),
    ("[link]\nheartbeat_seconds = -1.0\n", ["[link] heartbeat_seconds", "above 0"]),
])
def test_negative_inf_nan_and_absurd_numbers_name_key_and_bound(tmp_path, text, words):
    msg = load_text(tmp_path, text)
    for w in words:
        assert w in msg, (w, msg)


@pytest.mark.parametrize("text, typo, known", [
    ('[controller]\nstroe = "x.db"\n', "stroe", "store"),
    ("[dispatch]\nleese_seconds = 300\n", "leese_seconds", "lease_seconds"),
    ("[dispach]\nlease_seconds = 300\n", "dispach", "dispatch"),
    ('[log]\nlevle = "INFO"\n', "levle", "level"),
])
def test_a_typo_suggests_the_closest_key_of_its_table(tmp_path, text, typo, known):
    msg = load_text(tmp_path, text)
    assert f"unknown key {typo!r}" in msg and f"did you mean {known!r}?" in msg


def test_a_store_in_a_missing_directory_names_it(tmp_path):
    msg = load_text(tmp_path, '[controller]\nstore = "data/controller.db"\n')
    assert "[controller] store" in msg and f"'{tmp_path / 'data'}' does not exist" in msg
    assert f"mkdir -p {tmp_path / 'data'}" in msg
    (tmp_path / "data").mkdir()
    assert load_config(tmp_path / "controller.toml").controller.store == str(tmp_path / "data" / "controller.db")


def test_a_wrong_type_gives_the_default_as_the_example(tmp_path):
    msg = load_text(tmp_path, '[dispatch]\nqueue_depth = "deep"\n')
    assert "[dispatch] queue_depth: expected int, got 'deep'" in msg and "queue_depth = 4" in msg


def test_log_table(tmp_path):
    msg = load_text(tmp_path, '[log]\nformat = "yaml"\n')
    assert "[log] format" in msg and "'yaml'" in msg
    p = tmp_path / "controller.toml"
    p.write_text('[log]\nformat = "text"\nlevel = "WARNING"\n')
    cfg = load_config(p)
    assert (cfg.log.format, cfg.log.level) == ("text", "WARNING")


@pytest.mark.parametrize("text", [
    "[dispatch]\nqueue_depth = -1\n",
    "[webhooks]\ntimeout_seconds = inf\n",
    '[controller]\nstore = "nope/c.db"\n',
    "[controller]\nlisten = 8480\n",
])
def test_controller_run_with_a_bad_config_exits_2_with_one_paragraph(tmp_path, text):
    p = tmp_path / "bad.toml"
    p.write_text(text)
    proc = subprocess.run([sys.executable, "-m", "simrotor", "controller", "run", "--config", str(p)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stderr.startswith(f"simrotor: error: {p}: ") and "fix: " in proc.stderr


@pytest.mark.parametrize("args, is_json", [([], False), (["--log-format", "json"], True)])
def test_run_logs_in_the_configured_format_and_the_option_overrides_it(tmp_path, args, is_json):
    import json
    import signal
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    p = tmp_path / "controller.toml"
    p.write_text(f'[controller]\nstore = "c.db"\nlisten = "127.0.0.1:{port}"\n[log]\nformat = "text"\n')
    proc = subprocess.Popen([sys.executable, "-m", "simrotor", "controller", "run", "--config", str(p), *args],
                            stderr=subprocess.PIPE, text=True)
    try:
        first = proc.stderr.readline()  # the controller says where it listens
    finally:
        proc.send_signal(signal.SIGTERM)
        rest = proc.communicate(timeout=20)[1]
    assert f"listening on http://127.0.0.1:{port}" in first, first + rest
    if is_json:
        assert json.loads(first)["logger"] == "controller.server"
    else:
        assert first.split()[1:3] == ["INFO", "controller.server:"] and first.split()[0].endswith("Z")


def test_store_url_names_either_backend_and_the_environment_overrides_it(tmp_path):
    from controller.config import recordings_dir

    p = tmp_path / "controller.toml"
    p.write_text(f'[store]\nurl = "sqlite://{tmp_path / "s.db"}"\n')  # sqlite:///abs/path, as file:// URLs
    cfg = load_config(p, environ={})
    assert cfg.controller.store == str(tmp_path / "s.db") and recordings_dir(cfg) == tmp_path / "s.recordings"
    p.write_text('[store]\nurl = "data.db"\nrecordings = "rec"\n')
    cfg = load_config(p, environ={})
    assert cfg.controller.store == str(tmp_path / "data.db") and recordings_dir(cfg) == tmp_path / "rec"
    url = "postgresql://simrotor:secret@db.example:5433/collections?sslmode=require"
    cfg = load_config(p, environ={"SIMROTOR_STORE_URL": url})
    assert cfg.controller.store == url and recordings_dir(cfg) == tmp_path / "rec"
    p.write_text("[controller]\nregion = \"PL\"\n")
    cfg = load_config(p, environ={"SIMROTOR_STORE_URL": url})
    assert cfg.controller.store == url and recordings_dir(cfg) == tmp_path / "controller.recordings"


@pytest.mark.parametrize("text, env, words", [
    ('[controller]\nstore = "a.db"\n[store]\nurl = "b.db"\n', None, ["[store] url", "named twice", "remove [controller] store"]),
    ('[store]\nurl = "postgresql://simrotor:secret@db.example"\n', None, ["[store] url", "names no database", "***"]),
    ("", "postgresql://db.example", ["SIMROTOR_STORE_URL", "names no database", "postgresql://user@host/dbname"]),
])
def test_a_store_url_without_a_database_or_named_twice_is_refused(tmp_path, text, env, words):
    p = tmp_path / "controller.toml"
    p.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_config(p, environ={"SIMROTOR_STORE_URL": env} if env else {})
    for w in words:
        assert w in str(err.value), (w, str(err.value))
    assert "secret" not in str(err.value)
