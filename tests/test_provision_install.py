"""``simrotor provision install``: the staged tree (--root), what a second run changes (nothing),
a file changed on disk (a diff, not overwritten; --force), the refusal without root, the
udev rules from the shipped template, and ``systemd-analyze verify`` on the units as
installed (Debian's systemd package; ./scripts/test installs it, so this never skips)."""
from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner

from provisioning.install import NotRootError, install, install_command
from provisioning.udevrules import UdevPort, UdevRulesError, render
from provisioning.unitfiles import (
    SHIPPED_BIN,
    UNITS,
    shipped,
    shipped_dir,
    simrotor_bin,
)

REPO = Path(__file__).resolve().parent.parent


def provision(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "simrotor", "provision", "install", *args],
                          capture_output=True, text=True, timeout=120, cwd=REPO, check=False)


def staged_json(root: Path, *args: str) -> tuple[int, dict]:
    done = provision("--root", str(root), "--json", *args)
    return done.returncode, json.loads(done.stdout)


def verify(*units: Path) -> subprocess.CompletedProcess[str]:
    tool = shutil.which("systemd-analyze")
    assert tool, "systemd-analyze is missing: Debian's systemd package (./scripts/test installs it)"
    return subprocess.run([tool, "verify", *map(str, units)], capture_output=True, text=True, timeout=120, check=False)


def test_root_stages_every_file_and_says_what_it_skipped(tmp_path):
    root = tmp_path / "stage"
    code, report = staged_json(root)
    assert code == 0, report
    assert report["staged"] is True and report["root"] == str(root)
    actions = {(s["what"], s["path"]): s["action"] for s in report["steps"]}
    assert actions == {
        ("sysusers", "/etc/sysusers.d/simrotor.conf"): "written",
        ("user", "simrotor"): "skipped",
        ("directory", "/var/lib/simrotor"): "created",
        ("directory", "/etc/simrotor"): "created",
        ("unit", "/etc/systemd/system/simrotor-appliance.service"): "written",
        ("unit", "/etc/systemd/system/simrotor-controller.service"): "written",
        ("udev rules", "/etc/udev/rules.d/99-simrotor.rules"): "skipped",
    }
    user = next(s for s in report["steps"] if s["what"] == "user")
    assert "not created" in user["note"]
    assert stat.S_IMODE((root / "var/lib/simrotor").stat().st_mode) == 0o750
    assert stat.S_IMODE((root / "etc/simrotor").stat().st_mode) == 0o750
    assert (root / "etc/sysusers.d/simrotor.conf").read_text() == shipped("simrotor.sysusers")
    bin_path = str(simrotor_bin().absolute())
    assert report["bin"] == bin_path
    for unit in UNITS:
        text = (root / "etc/systemd/system" / unit).read_text()
        assert stat.S_IMODE((root / "etc/systemd/system" / unit).stat().st_mode) == 0o644
        # only ExecStart= differs from the shipped unit: it names this machine's simrotor
        assert text == shipped(unit).replace(f"ExecStart={SHIPPED_BIN} ", f"ExecStart={bin_path} ")
        assert f"ExecStart={bin_path} " in text
    assert not (root / "etc/udev").exists()
    assert any("systemctl enable --now simrotor-appliance.service" in n for n in report["next"])


def test_the_installed_units_pass_systemd_analyze_verify(tmp_path):
    root = tmp_path / "stage"
    assert staged_json(root)[0] == 0
    units = [root / "etc/systemd/system" / u for u in UNITS]
    done = verify(*units)
    assert done.returncode == 0 and done.stderr == "" and done.stdout == "", done.stderr + done.stdout
    # and the check can fail: a mistyped key in a copy is named
    broken = tmp_path / "simrotor-broken.service"
    broken.write_text(units[0].read_text().replace("WatchdogSec=30", "WatchdogSec=30\nWatchDogSec=30"))
    assert "Unknown key 'WatchDogSec'" in verify(broken).stderr


def test_units_say_what_the_issue_asks():
    for unit in UNITS:
        text = shipped(unit)
        for line in ("Type=notify", "WatchdogSec=30", "Restart=on-failure", "NoNewPrivileges=yes",
                     "ProtectSystem=strict", "ProtectHome=yes", "ReadWritePaths=/var/lib/simrotor", "PrivateTmp=yes",
                     "DevicePolicy=closed", "User=simrotor", "StateDirectory=simrotor", "ConfigurationDirectory=simrotor"):
            assert f"\n{line}\n" in text, (unit, line)
        assert "\nRestartSec=" in text and "# " in text.split("\nRestartSec=")[0].rsplit("\n", 2)[-1]  # with its reason
    appliance = shipped("simrotor-appliance.service")
    assert "\nDeviceAllow=char-ttyUSB rw\n" in appliance and "\nDeviceAllow=char-ttyACM rw\n" in appliance
    assert "\nSupplementaryGroups=dialout\n" in appliance
    controller = shipped("simrotor-controller.service")
    assert "DeviceAllow" not in controller and "\nPrivateDevices=yes\n" in controller


def test_a_second_run_changes_nothing(tmp_path):
    root = tmp_path / "stage"
    assert staged_json(root)[0] == 0
    before = {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}
    code, report = staged_json(root)
    assert code == 0
    assert {s["action"] for s in report["steps"]} <= {"unchanged", "exists", "skipped"}, report["steps"]
    assert {p: p.read_bytes() for p in root.rglob("*") if p.is_file()} == before


def test_a_file_changed_on_disk_is_shown_and_kept_until_force(tmp_path):
    root = tmp_path / "stage"
    assert staged_json(root)[0] == 0
    unit = root / "etc/systemd/system/simrotor-appliance.service"
    edited = unit.read_text().replace("RestartSec=5", "RestartSec=1")
    unit.write_text(edited)
    done = provision("--root", str(root))
    assert done.returncode == 1
    assert "differs" in done.stdout and "-RestartSec=1" in done.stdout and "+RestartSec=5" in done.stdout
    assert "were not replaced" in done.stderr and "--force" in done.stderr
    assert unit.read_text() == edited  # not overwritten
    code, report = staged_json(root, "--force")
    assert code == 0
    step = next(s for s in report["steps"] if s["path"].endswith("simrotor-appliance.service"))
    assert step["action"] == "replaced" and "-RestartSec=1" in step["diff"]
    assert "RestartSec=5" in unit.read_text()


def test_not_root_without_root_option_is_a_clear_error(monkeypatch):
    with pytest.raises(NotRootError, match="run it as root .* or stage it with --root DIR"):
        install(root=None, bin_path=simrotor_bin(), euid=1000)
    # the command as an ordinary user (its uid stands in: the venv's Python is root's): exit 77
    # (EX_NOPERM), the sentence on stderr, one JSON error document
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    done = CliRunner().invoke(install_command, ["--json"])
    assert done.exit_code == 77, done.output
    assert "run it as root" in done.stderr and json.loads(done.stdout)["error"].startswith("installing writes")

def test_udev_rules_from_the_template(tmp_path):
    ports = [UdevPort("m01", "861234567890123", "1-1.3", 2, "at"),
             UdevPort("m01", "861234567890123", "1-1.3", 1, "audio"),
             UdevPort("m02", "861234567890131", "1-1.4.2", 3, "at")]
    text = render(ports)
    assert text.startswith("# simrotor: stable names")
    rules = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert rules[0] == ('SUBSYSTEM=="tty", KERNELS=="1-1.3:*.2", SUBSYSTEMS=="usb", GROUP="dialout", MODE="0660", '
                        'SYMLINK+="simrotor/imei-861234567890123.at", SYMLINK+="simrotor/usb-1-1.3.at"')
    assert 'KERNELS=="1-1.3:*.1"' in rules[1] and "imei-861234567890123.audio" in rules[1]
    assert 'KERNELS=="1-1.4.2:*.3"' in rules[2] and "usb-1-1.4.2.at" in rules[2]
    assert "@" not in "\n".join(rules)  # every field filled
    assert "# m02 (IMEI 861234567890131), USB 1-1.4.2 interface 3: at port" in text
    with pytest.raises(UdevRulesError, match="IMEI '8612' is not 14-16 digits"):
        render([UdevPort("m01", "8612", "1-1.3", 2, "at")])
    with pytest.raises(UdevRulesError, match="USB path '1-1.3; rm' is not"):
        render([UdevPort("m01", "861234567890123", "1-1.3; rm", 2, "at")])
    with pytest.raises(UdevRulesError, match="both claim 1-1.3 2"):
        render([ports[0], UdevPort("m09", "861234567890149", "1-1.3", 2, "at")])
    with pytest.raises(UdevRulesError, match="unknown field @SERIAL@"):
        render(ports, "head\n#@port\n@SERIAL@\n")
    # installed as given
    rules_file = tmp_path / "99-simrotor.rules"
    rules_file.write_text(text)
    root = tmp_path / "stage"
    code, report = staged_json(root, "--udev-rules", str(rules_file))
    assert code == 0
    assert (root / "etc/udev/rules.d/99-simrotor.rules").read_text() == text
    assert ("udev rules", "written") in {(s["what"], s["action"]) for s in report["steps"]}
    done = provision("--root", str(root), "--udev-rules", str(tmp_path / "nope.rules"))
    assert done.returncode == 1 and "nope.rules: no such file" in done.stderr


def test_a_wheel_carries_every_shipped_file():
    """pyproject's data-files globs cover everything in systemd/ (a new file there that no
    glob names would be missing from an installed wheel)."""
    data = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["data-files"]
    globs = data["share/simrotor/systemd"]
    covered = {p.name for g in globs for p in REPO.glob(g)}
    assert covered == {p.name for p in (REPO / "systemd").iterdir() if p.is_file()}
    assert shipped_dir() == REPO / "systemd"


def test_the_sysusers_file_makes_the_user(tmp_path):
    """systemd-sysusers reads the staged file (a dry run against the staged root: it says
    what it would create and writes nothing)."""
    root = tmp_path / "stage"
    assert staged_json(root)[0] == 0
    tool = shutil.which("systemd-sysusers")
    assert tool, "systemd-sysusers is missing: Debian's systemd package (./scripts/test installs it)"
    done = subprocess.run([tool, f"--root={root}", "--dry-run", str(root / "etc/sysusers.d/simrotor.conf")],
                          capture_output=True, text=True, timeout=60, check=False)
    said = done.stdout + done.stderr
    assert done.returncode == 0, said
    assert "Creating user 'simrotor' (simrotor telephony edge)" in said and "Creating group 'dialout'" in said
    assert not (root / "etc/passwd").exists()
