"""``simrotor provision udev``: the udev rules for the scanned modems, from the provisioning
state (what ``scan`` recorded: each modem's IMEI, hub port, AT and audio ports) and sysfs
(each port's USB interface number, read now, while the modems are plugged in).

Why a separate step: the rules are a file an installer reviews and installs
(``provision install --udev-rules FILE``); a modem the state cannot place (no IMEI, not on
USB, unplugged since the scan) is named as a problem with its fix, and the others still
get their rules, so one odd port does not hold the bank back.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import click

from common.clikit import EXIT_FAILURE, EXIT_USAGE, emit, fail, json_option

from .state import DEFAULT_STATE, ProvisioningError, load_state
from .sysfs import place
from .udevrules import UdevPort, UdevRulesError, render

#: Where the rules' names appear (SYMLINK+="simrotor/…" in the template).
NAMES_DIR: Final = "/dev/simrotor"
DEFAULT_OUT: Final = "99-simrotor.rules"


@dataclass(slots=True)
class UdevPlan:
    """The ports to name, each modem's stable names, and what could not be placed."""

    ports: list[UdevPort] = field(default_factory=list)
    names: dict[str, dict[str, str]] = field(default_factory=dict)  # modem id -> role -> /dev/simrotor/…
    problems: list[dict[str, str]] = field(default_factory=list)


def plan(state: dict[str, Any], sysfs_root: Path) -> UdevPlan:
    """For every present modem in ``state``: its AT and audio ports placed on USB."""
    out = UdevPlan()
    for key, m in sorted(state.get("modems", {}).items(), key=lambda kv: str(kv[1].get("id"))):
        label = str(m.get("id") or key)
        if m.get("present") is False:
            out.problems.append({"modem": label, "problem": "not found at the last scan",
                                 "fix": "plug it in and run `simrotor provision scan`, or leave it out"})
            continue
        imei = m.get("imei")
        if not imei:
            out.problems.append({"modem": label, "problem": "no IMEI was read, so it cannot be named by it",
                                 "fix": "scan again; a modem that never answers AT+CGSN cannot be named"})
            continue
        names: dict[str, str] = {}
        for role, port in (("at", m.get("at_port")), ("audio", m.get("audio_port"))):
            if not port:
                continue
            where = place(str(port), sysfs_root)
            if where is None or where.interface is None:
                out.problems.append({"modem": label, "problem": f"{role} port {port} is not a USB tty in "
                                     f"{sysfs_root / 'sys'} (unplugged, or not on USB)",
                                     "fix": "plug it back in the same hub port and run this again, or scan again"})
                continue
            if m.get("usb_path") and where.usb_path != m["usb_path"]:
                out.problems.append({"modem": label, "problem": f"{role} port {port} is on USB {where.usb_path} now, "
                                     f"the scan saw it on {m['usb_path']}",
                                     "fix": "run `simrotor provision scan` again, then this"})
                continue
            out.ports.append(UdevPort(label, str(imei), where.usb_path, where.interface, role))
            names[role] = f"{NAMES_DIR}/imei-{imei}.{role}"
        if names:
            out.names[label] = names
    return out


@click.command(name="udev")
@click.option("--state", "state_path", type=click.Path(dir_okay=False, path_type=Path), default=DEFAULT_STATE,
              show_default=True, help="The provisioning state file `simrotor provision scan` wrote.")
@click.option("--sysfs-root", type=click.Path(file_okay=False, exists=True, path_type=Path), default=Path("/"),
              show_default=True, help="Where sys/ lives (the emulator's fake tree: its state file's sysfs_root).")
@click.option("--out", "out_path", type=click.Path(dir_okay=False, path_type=Path), default=Path(DEFAULT_OUT),
              show_default=True, help="The rules file to write (then: sudo simrotor provision install --udev-rules FILE).")
@json_option
def udev_command(state_path: Path, sysfs_root: Path, out_path: Path, as_json: bool) -> None:
    """Write udev rules giving each scanned modem's AT and audio ports stable names,
    /dev/simrotor/imei-<IMEI>.at|.audio and /dev/simrotor/usb-<hub port>.at|.audio, matched
    by the hub port and USB interface (read from sysfs now). A modem that cannot be placed
    is reported with its fix (exit 1); the others get their rules.

    \b
    Example:
      simrotor provision udev --out 99-simrotor.rules
      sudo simrotor provision install --udev-rules 99-simrotor.rules
    """
    try:
        state = load_state(state_path)
    except ProvisioningError as exc:
        fail(str(exc), code=EXIT_USAGE, as_json=as_json)
    if not state.get("modems"):
        fail(f"{state_path}: no modems scanned yet; fix: run `simrotor provision scan` first", code=EXIT_USAGE,
             as_json=as_json)
    result = plan(state, sysfs_root)
    try:
        text = render(result.ports)
    except UdevRulesError as exc:
        fail(f"udev rules: {exc}", as_json=as_json)
    out_path.write_text(text)
    doc = {"rules": str(out_path), "ports": len(result.ports), "names": result.names, "problems": result.problems}
    if as_json:
        emit(doc, True)
    else:
        for label, names in result.names.items():
            click.echo(f"{label}  " + "  ".join(f"{role} {name}" for role, name in names.items()))
        click.echo(f"{len(result.ports)} ports named in {out_path}; install: "
                   f"sudo simrotor provision install --udev-rules {out_path}")
    for p in result.problems:  # stderr: for the person, with --json too
        click.echo(f"simrotor: {p['modem']}: {p['problem']}; fix: {p['fix']}", err=True)
    if result.problems:
        raise SystemExit(EXIT_FAILURE)
