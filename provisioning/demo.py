"""``simrotor demo``: the whole system on an emulated modem bank.

Today the system is the modem layer, so the demo starts an emulated bank (one modem of
each dialect) in its own process and walks through the installer's modem CLI against it:
probe, a raw AT command, an SMS with delivery report, calls to plan numbers with
different behaviours, a USSD balance check. Each step prints the command it runs, so a
reader can repeat it by hand against the same emulator or a real modem.
"""
from __future__ import annotations

import json
import shlex
import subprocess
import sys
import time
from typing import Any

import click

from provisioning.clikit import emit, json_option

VENDORS = "simcom,quectel,huawei,generic"


def tour(ports: dict[str, str]) -> list[tuple[str, list[str]]]:
    s, q, h, g = ports["simcom"], ports["quectel"], ports["huawei"], ports["generic"]
    return [
        ("Identify a SIMCom modem and its SIM", ["modem", "probe", s]),
        ("A raw AT command on the Quectel modem", ["modem", "at", q, "AT+CSQ"]),
        ("SMS in Polish (UCS2) with a delivery report",
         ["modem", "sms", q, "--to", "+48601000123", "--text", "Dzień dobry, przypominamy o płatności.", "--report", "--wait", "30"]),
        ("Call a plan number that answers (behaviour 0)", ["modem", "dial", h, "--to", "+48600000123", "--seconds", "2"]),
        ("Call a busy number (behaviour 2: Q.850 cause 17)", ["modem", "dial", s, "--to", "+48602200123"]),
        ("Call an unassigned number (behaviour 6: cause 1)", ["modem", "dial", g, "--to", "+48603600123"]),
        ("Balance check by USSD on the Huawei dongle (packed GSM-7)", ["modem", "ussd", h, "*100#"]),
        ("An error in words: a port that does not exist", ["modem", "probe", "/dev/ttyUSB99"]),
    ]


@click.command()
@click.option("--timing", type=click.Choice(["realistic", "fast"]), default="realistic", show_default=True,
              help="Emulated network timing: realistic call set-up and SMS delays, or none.")
@click.option("--seed", type=int, default=1, show_default=True)
@json_option
def demo(timing: str, seed: int, as_json: bool) -> None:
    """Run the demo: an emulated modem bank and a scripted tour of the modem CLI.

    \b
    Example:
      simrotor demo --timing fast --json
    """
    from bench._emulated import emulator_process

    steps: list[dict[str, Any]] = []
    out = (lambda *a, **k: None) if as_json else click.echo
    out(f"simrotor demo: starting an emulated bank of 4 modems ({VENDORS}), {timing} timing …")
    with emulator_process(4, timing=timing, vendors=VENDORS, seed=seed) as state:
        ports = {m["vendor"]: m["port"] for m in state["modems"]}
        out(f"emulator running (pid {state['_pid']}), control API at {state.get('control')}")
        for m in state["modems"]:
            out(f"  {m['id']}  {m['vendor']:8} {m['model']:18} {m['port']}")
        for title, args in tour(ports):
            cmdline = "simrotor " + " ".join(shlex.quote(a) for a in args)
            out(f"\n== {title}\n$ {cmdline}")
            t0 = time.monotonic()
            extra = ["--json"] if as_json else []
            proc = subprocess.run([sys.executable, "-m", "provisioning", *args, *extra], capture_output=True, text=True)
            took = round(time.monotonic() - t0, 2)
            result: Any = proc.stdout
            if as_json:
                try:
                    result = json.loads(proc.stdout) if proc.stdout.strip() else None
                except json.JSONDecodeError:
                    pass
            else:
                click.echo(proc.stdout.rstrip())
                if proc.stderr.strip():
                    click.echo(proc.stderr.rstrip())
                click.echo(f"(exit {proc.returncode}, {took} s)")
            steps.append({"step": title, "command": cmdline, "exit": proc.returncode, "seconds": took, "result": result})
    if as_json:
        emit({"demo": "modem-tour", "timing": timing, "steps": steps}, True)
    else:
        click.echo("\nDone. Start your own bank with: simrotor emulate --modems 8 --state-file bank.json")
