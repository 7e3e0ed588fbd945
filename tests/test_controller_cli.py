"""`simrotor controller …` commands and the TOML config (errors name key and fix)."""
from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest
from click.testing import CliRunner

from controller.cli import controller
from controller.config import ConfigError, load_config
from controller.store import SCHEMA_VERSION, Store


def write(tmp_path, text):
    p = tmp_path / "controller.toml"
    p.write_text(text)
    return p


def test_config_defaults_and_relative_store(tmp_path):
    cfg = load_config(write(tmp_path, '[controller]\nstore = "c.db"\n'))
    assert cfg.controller.store == str(tmp_path / "c.db")
    assert cfg.dispatch.lease_seconds == 300.0 and "NIE" in cfg.inbound.stop_words


@pytest.mark.parametrize("text,needle", [
    ('[controller]\nlisten = "nowhere"\n', "[controller] listen"),
    ('[controller]\nstroe = "x.db"\n', "unknown key 'stroe'"),
    ('[dispatch]\nlease_seconds = "long"\n', "[dispatch] lease_seconds"),
    ('[operator_prefixes]\n"48600" = "26002"\n', "[operator_prefixes]"),
    ('[inbound]\nstop_words = []\n', "[inbound] stop_words"),
    ('[controller\n', "not valid TOML"),
])
def test_config_errors_say_where(tmp_path, text, needle):
    with pytest.raises(ConfigError) as exc:
        load_config(write(tmp_path, text))
    assert needle in str(exc.value)


def test_keys_create_list_revoke_and_enroll_token(tmp_path, store_url):
    cfg = write(tmp_path, f'[store]\nurl = "{store_url}"\n')
    r = CliRunner()
    out = r.invoke(controller, ["keys", "create", "--config", str(cfg), "--name", "crm", "--json"])
    assert out.exit_code == 0, out.output
    created = json.loads(out.output)
    assert created["key"].startswith("sr_") and created["name"] == "crm"
    listed = json.loads(r.invoke(controller, ["keys", "list", "--config", str(cfg), "--json"]).output)
    assert [k["id"] for k in listed] == [created["id"]] and "key" not in listed[0] and "hash" not in listed[0]
    out = r.invoke(controller, ["keys", "revoke", "--config", str(cfg), created["id"], "--json"])
    assert out.exit_code == 0 and json.loads(out.output)["revoked"] is True
    out = r.invoke(controller, ["keys", "revoke", "--config", str(cfg), created["id"], "--json"])
    assert out.exit_code == 1 and "no active key" in out.output
    tok = json.loads(r.invoke(controller, ["enroll-token", "--config", str(cfg), "--ttl", "60", "--json"]).output)
    assert tok["token"].startswith("sre_") and tok["expires_at"] > time.time()
    out = r.invoke(controller, ["keys", "list", "--config", str(tmp_path / "missing.toml")])
    assert out.exit_code == 2 and "no such file" in out.output


def test_every_command_has_an_example():
    r = CliRunner()
    for args in ([], ["run"], ["keys"], ["keys", "create"], ["keys", "list"], ["keys", "revoke"], ["enroll-token"]):
        out = r.invoke(controller, args + ["--help"])
        assert out.exit_code == 0 and "Example" in out.output, args


def test_run_serves_until_sigterm(tmp_path, store_url):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cfg = write(tmp_path, f'[controller]\nlisten = "127.0.0.1:{port}"\n[store]\nurl = "{store_url}"\n')
    proc = subprocess.Popen([sys.executable, "-c", "from controller.cli import controller; controller()",
                             "run", "--config", str(cfg)], stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/openapi.json", timeout=1) as resp:
                    assert json.load(resp)["openapi"] == "3.1.0"
                    break
            except OSError:
                assert time.monotonic() < deadline and proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
                time.sleep(0.1)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
    store = Store(store_url)  # the run made the store, at the schema this code writes
    try:
        assert store.ping() == SCHEMA_VERSION
    finally:
        store.close()
