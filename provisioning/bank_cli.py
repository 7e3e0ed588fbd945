"""``simrotor provision scan | sims | assign | write-config | inventory``: the installer's
way from a hub of modems and a box of SIMs to an appliance config.

Each command calls its module's function (which returns data), keeps the result in the
provisioning state file (``--state``, ``provisioning.json``) and prints: a table for a
person, ``--json`` for a script; progress of long steps goes to stderr. A command exits 1
when something needs the installer (a busy port, a locked SIM, a missing modem) after
recording everything else, so the rest of the bank stays provisioned.
"""
from __future__ import annotations

import logging
import sys
import time
from pathlib import Path
from typing import Any

import click

from common.clikit import (
    EXIT_FAILURE,
    EXIT_USAGE,
    emit,
    fail,
    json_option,
    run_async,
    to_jsonable,
)

from .assign import LIMIT_KEYS, assign
from .inventory import compare
from .scan import PROBE_CONCURRENCY, PROBE_TIMEOUT, ScanResult, record_scan, scan
from .sims import REGISTRATION_WAIT, read_pin_file, read_sims, record_sims
from .state import DEFAULT_STATE, ProvisioningError, load_state, save_state
from .writeconfig import write_config

state_option = click.option("--state", "state_path", type=click.Path(dir_okay=False, path_type=Path),
                            default=DEFAULT_STATE, show_default=True,
                            help="The provisioning state file (beside the appliance config).")
ports_option = click.option("--ports", "pattern", default=None,
                            help="A glob of ports to probe (emulated ones: '/tmp/emu/ttyEMU*'); default: "
                                 "/dev/serial/by-id/*, ttyUSB*, ttyACM*.")
sysfs_option = click.option("--sysfs-root", type=click.Path(file_okay=False, exists=True, path_type=Path),
                            default=Path("/"), show_default=True,
                            help="Where sys/ and dev/serial/by-id live (the emulator's fake tree: its state file's "
                                 "sysfs_root).")
timeout_option = click.option("--timeout", type=click.FloatRange(min=0.1, max=60), default=PROBE_TIMEOUT,
                              show_default=True, help="Seconds a port has to answer AT.")


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _quiet() -> None:
    """The AT layer's warnings (a silent port's timeout) are what the report says in
    words; on a terminal they would only repeat it."""
    logging.getLogger("modem_drivers").setLevel(logging.ERROR)


def _progress(what: str) -> Any:
    """Progress on stderr: a line rewritten in place on a terminal, else the end only."""
    tty = sys.stderr.isatty()

    def show(done: int, total: int) -> None:
        if tty:
            click.echo(f"\r{what}: {done}/{total}", err=True, nl=done == total)
        elif done == total:
            click.echo(f"{what}: {done}/{total}", err=True)

    return show


def _load(state_path: Path, as_json: bool) -> dict[str, Any]:
    try:
        return load_state(state_path)
    except ProvisioningError as exc:
        fail(str(exc), code=EXIT_USAGE, as_json=as_json)


def _table(rows: list[list[str]]) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        click.echo("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())


def _problems(items: list[dict[str, Any]]) -> None:
    for p in items:
        click.echo(f"problem: {p['problem']}", err=True)
        click.echo(f"    fix: {p['fix']}", err=True)


def _run_scan(pattern: str | None, sysfs_root: Path, timeout: float, concurrency: int) -> ScanResult:
    _quiet()
    return run_async(lambda: scan(sysfs_root=sysfs_root, pattern=pattern, timeout=timeout,
                                  concurrency=concurrency, progress=_progress("probing ports")))


# -- scan -------------------------------------------------------------------------------
@click.command(name="scan")
@ports_option
@sysfs_option
@timeout_option
@click.option("--concurrency", type=click.IntRange(1, 4096), default=PROBE_CONCURRENCY, show_default=True,
              help="Ports probed at once.")
@state_option
@json_option
def scan_command(pattern: str | None, sysfs_root: Path, timeout: float, concurrency: int, state_path: Path,
                 as_json: bool) -> None:
    """Find the modems: probe candidate ports for AT, group each USB modem's ttys, name
    its AT and audio ports, vendor, model, revision and IMEI. Busy or silent ports are
    reported (exit 1), the rest is recorded in --state.

    \b
    Examples:
      simrotor provision scan
      simrotor provision scan --sysfs-root /tmp/emu/sysroot --json
    """
    data = _load(state_path, as_json)
    result = _run_scan(pattern, sysfs_root, timeout, concurrency)
    record_scan(data, result, _now())
    save_state(state_path, data)
    ids = {m["at_port"]: m["id"] for m in data["modems"].values()}
    if as_json:
        doc = to_jsonable(result)
        for m in doc["modems"]:
            m["id"] = ids.get(m["at_port"])
        emit(doc, True)
    else:
        rows = [["id", "model", "imei", "usb", "at port", "audio port"]]
        rows += [[ids.get(m.at_port, "?"), m.model, m.imei, m.usb_path or "-", m.at_port, m.audio_port or "-"]
                 for m in result.modems]
        _table(rows)
        click.echo(f"{len(result.modems)} modems on {result.ports_probed} ports in {result.seconds:.2f} s; "
                   f"{len(result.problems)} problems; state: {state_path}")
    _problems([to_jsonable(p) for p in result.problems])  # stderr: for the person, with --json too
    if result.problems or not result.modems:
        raise SystemExit(EXIT_FAILURE)


#: SIM statuses that need nobody.
FINE = ("ready", "no_slot")


# -- sims -------------------------------------------------------------------------------
def _pairs(values: tuple[str, ...], option: str) -> dict[str, str]:
    out = {}
    for v in values:
        key, sep, code = v.partition("=")
        if not sep or not key or not code:
            raise click.BadParameter(f"{v!r}: expected MCCMNC=CODE, e.g. 26001='*101#'", param_hint=option)
        out[key] = code
    return out


@click.command(name="sims")
@click.option("--pin-file", type=click.Path(dir_okay=False, exists=True, path_type=Path), default=None,
              help="'<ICCID or *> <PIN>' lines; each PIN is sent at most once per SIM (a rejected one never again).")
@click.option("--number-ussd", multiple=True, metavar="MCCMNC=CODE",
              help="A USSD code that tells the own number on that operator (when +CNUM is empty); repeatable.")
@click.option("--modem", "modems", multiple=True, help="Only these modem ids (default: every scanned modem).")
@click.option("--register-wait", type=click.FloatRange(0, 300), default=REGISTRATION_WAIT, show_default=True,
              help="Seconds a SIM has to register after its PIN.")
@state_option
@json_option
def sims_command(pin_file: Path | None, number_ussd: tuple[str, ...], modems: tuple[str, ...], register_wait: float,
                 state_path: Path, as_json: bool) -> None:
    """Read every SIM of the scanned modems, slot by slot: PIN state, ICCID, IMSI,
    operator, signal, registration, own number; unlock with --pin-file. Locked SIMs are
    reported with what to do (exit 1); the rest is recorded in --state.

    \b
    Examples:
      simrotor provision sims --pin-file pins.txt
      simrotor provision sims --number-ussd 26003='*101#' --json
    """
    data = _load(state_path, as_json)
    if not data["modems"]:
        fail("no modems scanned yet; fix: run `simrotor provision scan` first", code=EXIT_USAGE, as_json=as_json)
    try:
        pins = read_pin_file(pin_file) if pin_file else {}
    except ProvisioningError as exc:
        fail(str(exc), code=EXIT_USAGE, as_json=as_json)
    _quiet()
    reports = run_async(lambda: read_sims(data, pins, number_ussd=_pairs(number_ussd, "--number-ussd"),
                                          only=set(modems) or None, register_wait=register_wait,
                                          progress=_progress("reading SIMs of modems")))
    record_sims(data, reports)
    save_state(state_path, data)
    out = [{k: v for k, v in to_jsonable(r).items() if k != "pin_used"} for r in reports]
    if as_json:
        emit({"sims": out}, True)
    else:
        rows = [["modem", "slot", "status", "iccid", "operator", "number", "dBm", "registration"]]
        rows += [[r["modem_id"], str(r["slot"]), r["status"], r["iccid"] or "-", r["operator"] or r["mcc_mnc"] or "-",
                  r["msisdn"] or "-", "-" if r["signal_dbm"] is None else str(r["signal_dbm"]),
                  r["registration"] or "-"] for r in out]
        _table(rows)
        ready = sum(1 for r in out if r["status"] == "ready")
        click.echo(f"{ready} of {sum(1 for r in out if r['status'] != 'no_slot')} SIMs ready; state: {state_path}")
    _problems([{"problem": f"{r['modem_id']} slot {r['slot']} ({r['port']}): {r['problem']}", "fix": r["fix"]}
               for r in out if r["status"] not in FINE])
    for r in out:
        if r["status"] == "no_slot":
            click.echo(f"note: {r['modem_id']} slot {r['slot']}: {r['problem']}; {r['fix']}", err=True)
    if any(r["status"] not in FINE for r in out):
        raise SystemExit(EXIT_FAILURE)


# -- assign -----------------------------------------------------------------------------
@click.command(name="assign")
@click.argument("targets", nargs=-1, required=True)
@click.option("--label", help="A label (what is written on the SIM or its slot).")
@click.option("--pool", "pools", multiple=True, help="A pool (e.g. a creditor); repeatable; replaces the SIM's pools.")
@click.option("--no-pools", is_flag=True, help="Take the SIMs out of every pool.")
@click.option("--calls-per-hour", type=click.IntRange(min=0), default=None)
@click.option("--calls-per-day", type=click.IntRange(min=0), default=None)
@click.option("--sms-per-hour", type=click.IntRange(min=0), default=None)
@click.option("--sms-per-day", type=click.IntRange(min=0), default=None)
@click.option("--number", help="The SIM's own number, given by hand (one SIM).")
@click.option("--slots", type=click.IntRange(1, 8), default=None, help="The modem's SIM slots (a modem target).")
@state_option
@json_option
def assign_command(targets: tuple[str, ...], label: str | None, pools: tuple[str, ...], no_pools: bool,
                   calls_per_hour: int | None, calls_per_day: int | None, sms_per_hour: int | None,
                   sms_per_day: int | None, number: str | None, slots: int | None, state_path: Path,
                   as_json: bool) -> None:
    """Label SIMs, put them in pools, give limits per SIM, per operator or for the bank.
    TARGETS: all, an ICCID, a modem id (m01, or m01/1 for slot 1), a label,
    operator:MCCMNC, bank.

    \b
    Examples:
      simrotor provision assign m01 m02 --pool creditor-a
      simrotor provision assign 8948010000000000017 --label A-17 --number +48690000017
      simrotor provision assign operator:26001 --calls-per-hour 300
      simrotor provision assign bank --calls-per-day 120
    """
    data = _load(state_path, as_json)
    limits = dict(zip(LIMIT_KEYS, (calls_per_hour, calls_per_day, sms_per_hour, sms_per_day)))
    try:
        changed = assign(data, list(targets), label=label, pools=[] if no_pools else (list(pools) or None),
                         limits=limits, number=number, slots=slots)
    except ProvisioningError as exc:
        fail(str(exc), code=EXIT_USAGE, as_json=as_json)
    save_state(state_path, data)
    emit(changed, as_json)


# -- write-config -----------------------------------------------------------------------
@click.command(name="write-config")
@click.option("--config", "config_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The appliance TOML to write (merged into when it exists).")
@click.option("--id", "appliance_id", default=None, help="[appliance] id (default: kept, else the host name).")
@click.option("--store", default=None, help="[appliance] store (default: kept, else /var/lib/simrotor/appliance.db).")
@click.option("--force", is_flag=True, help="Write even when existing lines are removed or changed (see the diff).")
@click.option("--udev-names", is_flag=True,
              help="Name ports /dev/simrotor/imei-<IMEI>.at|audio (the udev rules' names) instead of the scanned paths.")
@state_option
@json_option
def write_config_command(config_path: Path, appliance_id: str | None, store: str | None, force: bool,
                         udev_names: bool, state_path: Path, as_json: bool) -> None:
    """Write the appliance config from what was scanned, read and assigned. An existing
    setting is never dropped silently: the diff is shown and --force writes it. The
    modems written become the inventory `provision inventory` checks.

    \b
    Example:
      simrotor provision write-config --config /etc/simrotor/appliance.toml --udev-names
    """
    data = _load(state_path, as_json)
    try:
        plan = write_config(data, config_path, force=force, now=_now(), appliance_id=appliance_id, store=store,
                            udev_names=udev_names)
    except ProvisioningError as exc:
        fail(str(exc), code=EXIT_FAILURE, as_json=as_json)
    if plan.written or not plan.removed:
        save_state(state_path, data)
    if as_json:
        emit({k: v for k, v in to_jsonable(plan).items() if k != "text"}, True)
    else:
        if plan.diff:
            click.echo(plan.diff)
        for w in plan.warnings:
            click.echo(f"note: {w}", err=True)
        for m in plan.left_out:
            click.echo(f"left out: {m}", err=True)
        if plan.written:
            click.echo(f"wrote {config_path}: {len(plan.modems)} modems")
        elif not plan.removed:
            click.echo(f"{config_path} is up to date: {len(plan.modems)} modems")
    if plan.removed and not plan.written:
        fail(f"{config_path}: not written: it would remove or change {len(plan.removed)} existing line(s) (the diff "
             "above); fix: check them, then add --force", code=EXIT_FAILURE, as_json=False)


# -- inventory --------------------------------------------------------------------------
@click.command(name="inventory")
@ports_option
@sysfs_option
@timeout_option
@state_option
@json_option
def inventory_command(pattern: str | None, sysfs_root: Path, timeout: float, state_path: Path,
                      as_json: bool) -> None:
    """Scan, and compare with the last provisioned inventory (`write-config`): missing
    modems (exit 1) with the hub port they were last seen on, moved and new ones.

    \b
    Example:
      simrotor provision inventory --json
    """
    data = _load(state_path, as_json)
    result = _run_scan(pattern, sysfs_root, timeout, PROBE_CONCURRENCY)
    try:
        report = compare(data, result)
    except ProvisioningError as exc:
        fail(str(exc), code=EXIT_USAGE, as_json=as_json)
    if as_json:
        emit({**to_jsonable(report), "complete": report.complete,
              "problems": to_jsonable(result.problems)}, True)
    else:
        click.echo(report.summary)
        _problems([to_jsonable(p) for p in result.problems])
    if not report.complete:
        raise SystemExit(EXIT_FAILURE)


#: Registered by ``provisioning/cli.py``.
BANK_COMMANDS = (scan_command, sims_command, assign_command, write_config_command, inventory_command)
