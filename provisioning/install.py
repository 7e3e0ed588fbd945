"""``simrotor provision install``: put simrotor under systemd on this machine — the system
user, its directories, the two units and the modems' udev rules.

Why one command: an installer should not copy unit files by hand, and a second run (after
an upgrade, or with the rules of a new scan) must change only what changed. Every file is
compared first: an identical one is left alone, a different one is never overwritten
silently (its diff is shown; ``force`` replaces it). With ``root`` everything is staged
under that folder instead (for inspection and tests): no user is created and nothing is
reloaded, and the report says so.
"""
from __future__ import annotations

import difflib
import os
import pwd
import shutil
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import click

from common.clikit import EXIT_FAILURE, emit, fail, json_option

from .unitfiles import SYSUSERS, UNITS, UnitFilesError, shipped, simrotor_bin, unit_text

USER: Final = "simrotor"
STATE_DIR: Final = Path("/var/lib/simrotor")
CONFIG_DIR: Final = Path("/etc/simrotor")
UNIT_DIR: Final = Path("/etc/systemd/system")  # the administrator's units, above the distribution's
SYSUSERS_PATH: Final = Path("/etc/sysusers.d/simrotor.conf")
UDEV_PATH: Final = Path("/etc/udev/rules.d/99-simrotor.rules")
#: State: the service's own (the store holds call records and the link credential).
STATE_MODE: Final = 0o750
#: Config: readable by the service only (appliance.toml holds the API token and SIM PINs).
CONFIG_MODE: Final = 0o750
#: Unit, rule and sysusers files: world-readable like the distribution's own.
FILE_MODE: Final = 0o644
#: A command we run (systemd-sysusers, udevadm, systemctl) may not hang the install.
COMMAND_SECONDS: Final = 60.0


class InstallError(RuntimeError):
    """The install cannot start (a file it needs is missing, a command failed)."""


class NotRootError(InstallError):
    """Installing for real needs root."""


@dataclass(slots=True)
class Step:
    """One thing the install did or left: ``action`` is written, unchanged, replaced,
    differs (a changed file left alone), created, exists, ran or skipped."""

    what: str
    path: str
    action: str
    note: str = ""
    diff: str = ""


@dataclass(slots=True)
class Report:
    root: str
    staged: bool
    bin: str
    steps: list[Step] = field(default_factory=list)
    next: list[str] = field(default_factory=list)

    @property
    def conflicts(self) -> list[Step]:
        return [s for s in self.steps if s.action == "differs"]


Runner = Callable[[Sequence[str]], "subprocess.CompletedProcess[str]"]


def run_command(argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), capture_output=True, text=True, timeout=COMMAND_SECONDS, check=False)


def _diff(path: Path, old: str, new: str) -> str:
    return "".join(difflib.unified_diff(old.splitlines(keepends=True), new.splitlines(keepends=True),
                                        f"{path} (on disk)", f"{path} (simrotor's)"))


def place_file(what: str, target: Path, text: str, *, force: bool, shown: Path) -> Step:
    """Write ``text`` to ``target`` unless an identical file is there; a different one is
    replaced only with ``force`` (``shown`` is the path as the machine will see it)."""
    if target.is_file():
        old = target.read_text()
        if old == text:
            return Step(what, str(shown), "unchanged")
        diff = _diff(shown, old, text)
        if not force:
            return Step(what, str(shown), "differs", "changed on disk; not overwritten (--force replaces it)", diff)
        action = "replaced"
    else:
        action, diff = "written", ""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.simrotor-new")
    tmp.write_text(text)
    tmp.chmod(FILE_MODE)
    tmp.replace(target)
    return Step(what, str(shown), action, diff=diff)


def _user_exists() -> bool:
    try:
        pwd.getpwnam(USER)
    except KeyError:
        return False
    return True


def create_user(run: Runner) -> Step:
    """The system user, through systemd-sysusers where there is one (it reads the file
    just placed), else useradd."""
    if _user_exists():
        return Step("user", USER, "exists")
    if shutil.which("systemd-sysusers"):
        argv: list[str] = ["systemd-sysusers", str(SYSUSERS_PATH)]
    else:
        argv = ["useradd", "--system", "--user-group", "--home-dir", str(STATE_DIR), "--no-create-home",
                "--shell", "/usr/sbin/nologin", "--groups", "dialout", USER]
    done = run(argv)
    if done.returncode != 0:
        raise InstallError(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr.strip()}")
    return Step("user", USER, "created", f"by {argv[0]}")


def make_dir(target: Path, shown: Path, mode: int, owner: tuple[str, str] | None) -> Step:
    existed = target.is_dir()
    target.mkdir(parents=True, exist_ok=True)
    target.chmod(mode)
    note = f"mode {mode:o}"
    if owner is not None:
        shutil.chown(target, *owner)
        note += f", {owner[0]}:{owner[1]}"
    return Step("directory", str(shown), "exists" if existed else "created", note)


def install(*, root: Path | None, bin_path: Path, udev_rules: Path | None = None, force: bool = False,
            euid: int | None = None, run: Runner = run_command) -> Report:
    """Install (or, with ``root``, stage) simrotor's system files; see the module's docstring."""
    if root is None and (os.geteuid() if euid is None else euid) != 0:
        raise NotRootError("installing writes /etc and /var/lib and creates a system user: run it as root "
                           "(sudo simrotor provision install), or stage it with --root DIR to inspect the files")
    if udev_rules is not None and not udev_rules.is_file():
        raise InstallError(f"--udev-rules {udev_rules}: no such file; fix: write it with `simrotor provision udev`")
    base = Path("/") if root is None else root.resolve()

    def at(path: Path) -> Path:
        return base / path.relative_to("/")

    report = Report(str(base), root is not None, str(bin_path))
    steps = report.steps
    steps.append(place_file("sysusers", at(SYSUSERS_PATH), shipped(SYSUSERS), force=force, shown=SYSUSERS_PATH))
    if root is None:
        steps.append(create_user(run))
    else:
        steps.append(Step("user", USER, "skipped", f"staged: not created; on the machine systemd-sysusers reads "
                                                   f"{SYSUSERS_PATH}"))
    owned = root is None and _user_exists()
    steps.append(make_dir(at(STATE_DIR), STATE_DIR, STATE_MODE, (USER, USER) if owned else None))
    steps.append(make_dir(at(CONFIG_DIR), CONFIG_DIR, CONFIG_MODE, ("root", USER) if owned else None))
    for unit in UNITS:
        steps.append(place_file("unit", at(UNIT_DIR / unit), unit_text(unit, bin_path), force=force,
                                shown=UNIT_DIR / unit))
    if udev_rules is not None:
        steps.append(place_file("udev rules", at(UDEV_PATH), udev_rules.read_text(), force=force, shown=UDEV_PATH))
    else:
        steps.append(Step("udev rules", str(UDEV_PATH), "skipped",
                          "none given: write them with `simrotor provision udev`, then install --udev-rules FILE"))
    changed = any(s.action in ("written", "replaced") for s in steps)
    if root is None:
        steps.extend(_reload(run, changed, udev=udev_rules is not None))
    report.next = _next_steps(report)
    return report


def _reload(run: Runner, changed: bool, *, udev: bool) -> list[Step]:
    """Tell systemd and udev about new files, where they run (not in a container without
    systemd as PID 1: skipped, and said so)."""
    out: list[Step] = []
    if not changed:
        return out
    if Path("/run/systemd/system").is_dir() and shutil.which("systemctl"):
        done = run(["systemctl", "daemon-reload"])
        out.append(Step("systemd", "systemctl daemon-reload", "ran" if done.returncode == 0 else "failed",
                        done.stderr.strip()))
    else:
        out.append(Step("systemd", "systemctl daemon-reload", "skipped", "systemd is not running here"))
    if udev:
        if shutil.which("udevadm") and Path("/run/udev/control").exists():
            for argv in (["udevadm", "control", "--reload-rules"],
                         ["udevadm", "trigger", "--subsystem-match=tty", "--action=add"]):
                done = run(argv)
                out.append(Step("udev", " ".join(argv), "ran" if done.returncode == 0 else "failed", done.stderr.strip()))
        else:
            out.append(Step("udev", "udevadm control --reload-rules", "skipped", "udevd is not running here"))
    return out


def _next_steps(report: Report) -> list[str]:
    steps = []
    if report.conflicts:
        steps.append("review the diffs above; run again with --force to replace those files")
    steps += [
        (f"write {CONFIG_DIR}/appliance.toml (simrotor provision write-config) and enroll as the service user: "
         f"sudo -u {USER} simrotor provision enroll --config {CONFIG_DIR}/appliance.toml --controller URL --token T"),
        "systemctl enable --now simrotor-appliance.service (on the controller's machine: simrotor-controller.service)",
        (f"the technician's first account for the appliance's page: sudo -u {USER} simrotor provision technician NAME "
         f"--config {CONFIG_DIR}/appliance.toml --generate"),
        "systemctl status simrotor-appliance.service shows its STATUS line (modems up, link state)",
    ]
    return steps



#: sysexits(3) EX_NOPERM: the install needs root (or --root).
EXIT_NOPERM: Final = 77


def _print(report: Report) -> None:
    where = f"staged under {report.root}" if report.staged else "installed"
    click.echo(f"simrotor {where} (ExecStart= {report.bin})")
    for s in report.steps:
        click.echo(f"  {s.action:<9} {s.what:<10} {s.path}" + (f"  ({s.note})" if s.note else ""))
    for s in report.steps:
        if s.diff:
            click.echo("")
            click.echo(s.diff.rstrip("\n"))
    click.echo("next:")
    for line in report.next:
        click.echo(f"  - {line}")


@click.command("install")
@click.option("--root", "root", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Stage every file under this folder instead of / (no user created, nothing reloaded).")
@click.option("--bin", "bin_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="The simrotor executable the units start (default: the one running this command).")
@click.option("--udev-rules", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="The rules file `simrotor provision udev` wrote, installed as /etc/udev/rules.d/99-simrotor.rules.")
@click.option("--force", is_flag=True, help="Replace files that were changed on disk (their diff is shown either way).")
@json_option
def install_command(root: Path | None, bin_path: Path | None, udev_rules: Path | None, force: bool, as_json: bool) -> None:
    """Install simrotor under systemd: the system user (sysusers.d), /var/lib/simrotor and
    /etc/simrotor, the units simrotor-appliance.service and simrotor-controller.service, and
    the modems' udev rules. Run again at will: identical files are left alone, and a file
    changed on disk is never overwritten without --force (its diff is shown; exit code 1).

    \b
    Example:
      sudo simrotor provision install --udev-rules 99-simrotor.rules
      simrotor provision install --root /tmp/stage --json
    """
    try:
        report = install(root=root, bin_path=(bin_path or simrotor_bin()).absolute(), udev_rules=udev_rules, force=force)
    except NotRootError as exc:
        fail(str(exc), code=EXIT_NOPERM, as_json=as_json)
    except InstallError as exc:
        fail(str(exc), as_json=as_json)
    except (UnitFilesError, OSError) as exc:
        fail(f"install failed: {exc}", as_json=as_json)
    if as_json:
        emit(report, True)
    else:
        _print(report)
    if report.conflicts:
        if not as_json:
            click.echo(f"simrotor: error: {len(report.conflicts)} file(s) changed on disk were not replaced; "
                       f"see the diffs, then --force", err=True)
        raise SystemExit(EXIT_FAILURE)
