"""``simrotor provision technician NAME``: the installer makes the page's first technician
account in the appliance's store — with a generated password printed once (and only its
argon2 hash stored), from standard input, or at a prompt typed twice; a taken name, a
short password or a store whose folder does not exist are refused with what to do. The
account signs in (checked through the accounts' own verify, as the page's form does)."""
from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

from click.testing import CliRunner

from appliance.store import Store
from appliance.technician import technician_accounts
from provisioning.cli import provision
from provisioning.install import install
from provisioning.tomlout import dumps


def config(tmp_path: Path, store: Path | None = None) -> str:
    path = tmp_path / "appliance.toml"
    path.write_text(dumps({"appliance": {"id": "site-9", "store": str(store or tmp_path / "appliance.db"),
                                         "listen": "127.0.0.1:8470", "token": "t0k3n-for-tests"},
                          "modem": [{"id": "m0", "port": "/dev/simrotor/m0"}]}))
    return str(path)


async def verified(store_path: Path, name: str, password: str) -> bool:
    store = Store(store_path)
    try:
        return await technician_accounts(store.conn).verify(name, password) is not None
    finally:
        store.close()


async def test_generated_password_is_printed_once_and_signs_in(tmp_path) -> None:
    cfg = config(tmp_path)
    done = CliRunner().invoke(provision, ["technician", "jan", "--config", cfg, "--generate"])
    assert done.exit_code == 0, done.output
    password = re.search(r"password \(shown once, stored only hashed\): (\S+)", done.output).group(1)
    assert len(password) == 16 and password.isalnum()
    assert await verified(tmp_path / "appliance.db", "jan", password)
    assert not await verified(tmp_path / "appliance.db", "jan", password[::-1])
    with sqlite3.connect(tmp_path / "appliance.db") as conn:
        (stored,) = conn.execute("SELECT password_hash FROM technicians WHERE name = 'jan'").fetchone()
    assert stored.startswith("$argon2id$") and password not in stored
    # Two runs make two different passwords (nothing fixed or derived from the name).
    again = CliRunner().invoke(provision, ["technician", "ola", "--config", cfg, "--generate", "--json"])
    assert again.exit_code == 0, again.output
    doc = json.loads(again.output)
    assert doc["name"] == "ola" and doc["technicians"] == 2 and doc["password"] != password


async def test_password_from_stdin_and_prompt(tmp_path) -> None:
    cfg = config(tmp_path)
    done = CliRunner().invoke(provision, ["technician", "jan", "--config", cfg, "--password-stdin"],
                              input="rack-side-42\n")
    assert done.exit_code == 0, done.output
    assert "shown once" not in done.output
    assert await verified(tmp_path / "appliance.db", "jan", "rack-side-42")
    done = CliRunner().invoke(provision, ["technician", "ola", "--config", cfg], input="cabinet-7-key\ncabinet-7-key\n")
    assert done.exit_code == 0, done.output
    assert await verified(tmp_path / "appliance.db", "ola", "cabinet-7-key")


def test_refusals_say_what_to_do(tmp_path) -> None:
    cfg = config(tmp_path)
    assert CliRunner().invoke(provision, ["technician", "jan", "--config", cfg, "--generate"]).exit_code == 0
    taken = CliRunner().invoke(provision, ["technician", "jan", "--config", cfg, "--generate"])
    assert taken.exit_code == 1 and "simrotor appliance user add jan --replace" in taken.output
    short = CliRunner().invoke(provision, ["technician", "ola", "--config", cfg, "--password-stdin"], input="abc\n")
    assert short.exit_code == 1 and "password too short" in short.output
    both = CliRunner().invoke(provision, ["technician", "ola", "--config", cfg, "--password-stdin", "--generate"])
    assert both.exit_code == 2 and "not both" in both.output
    (tmp_path / "other").mkdir()
    nowhere = config(tmp_path / "other", tmp_path / "missing" / "a.db")
    missing = CliRunner().invoke(provision, ["technician", "ola", "--config", nowhere, "--generate"])
    assert missing.exit_code == 2 and "store: the directory" in missing.output and "does not exist" in missing.output


def test_install_names_the_step(tmp_path) -> None:
    report = install(root=tmp_path / "stage", bin_path=Path("/usr/bin/simrotor"))
    assert any("simrotor provision technician NAME" in line for line in report.next)
