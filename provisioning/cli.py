"""``simrotor provision …``: the installer's commands, from a box of modems and SIMs to a
supervised, enrolled appliance and a report to hand over (issue 15):

* ``scan``, ``sims``, ``assign``, ``write-config``, ``inventory`` (``bank_cli.py``): find the
  modems, read and unlock the SIMs, pools and limits, the appliance TOML, the check against
  what was provisioned;
* ``udev`` (``udev.py``): stable port names; ``install`` (``install.py``): user, directories,
  units, udev rules;
* ``enroll`` (here): trade a one-time token from the controller for the link credential;
* ``technician`` (``technician.py``): the first technician account of the appliance's page;
* ``selftest`` (``selftest_cli.py``): every SIM end to end, a pass/fail report.
"""
from __future__ import annotations

from pathlib import Path

import click

from appliance.config import ConfigError, load_config
from appliance.link import LinkError
from appliance.link import enroll as do_enroll
from common.clikit import emit, fail, json_option, load_config_or_exit, run_async


@click.group()
def provision() -> None:
    """Installer's tools, in the order of an install:

    \b
      scan          find the modems: AT ports, audio ports, IMEIs, USB hub ports
      sims          read every SIM slot by slot; unlock with a PIN file
      assign        labels, pools, per-SIM / per-operator / bank limits
      write-config  the appliance TOML from the above (diff; --force to change lines)
      udev          udev rules: stable /dev/simrotor/ names per modem
      install       system user, directories, systemd units, udev rules (--root stages)
      inventory     compare the modems found with the provisioned inventory
      enroll        trade a one-time token for the controller link's credential
      technician    the first technician account of the appliance's page
      selftest      per SIM: registration, signal, test SMS and call, balance; HTML report

    \b
    Example:
      simrotor provision scan && simrotor provision sims --pin-file pins.txt
      simrotor provision selftest --config /etc/simrotor/appliance.toml --reference +48600123456 --html report.html
    """


@provision.command()
@click.option("--config", "config_path", required=True, type=click.Path(dir_okay=False),
              help="The appliance's TOML config; [appliance] id names it, [link] credential_file is written.")
@click.option("--controller", required=True, help="The controller's base URL, e.g. https://controller:8480")
@click.option("--token", required=True, help="One-time enrollment token from `simrotor controller enroll-token`.")
@json_option
def enroll(config_path: str, controller: str, token: str, as_json: bool) -> None:
    """Enroll this appliance with a controller: trade a one-time token for the
    appliance's credential, stored at [link] credential_file (mode 0600).

    \b
    Example:
      simrotor provision enroll --config appliance.toml --controller http://10.0.0.2:8480 --token 7f3a…
    """
    cfg = load_config_or_exit(load_config, config_path, ConfigError, as_json=as_json)
    try:
        credential = run_async(do_enroll(controller, token, cfg.appliance.id))
    except (LinkError, OSError) as exc:
        fail(f"enrollment failed: {exc}", as_json=as_json)
    path = Path(cfg.link.credential_file)
    path.write_text(credential + "\n")
    path.chmod(0o600)
    emit({"appliance_id": cfg.appliance.id, "credential_file": str(path)}, as_json)


from .bank_cli import BANK_COMMANDS  # scan, sims, assign, write-config, inventory
from .install import install_command  # each command registered at the end, in one place
from .selftest_cli import selftest_command
from .technician import technician_command
from .udev import udev_command

provision.add_command(install_command)
provision.add_command(udev_command)
provision.add_command(selftest_command)
provision.add_command(technician_command)
for _command in BANK_COMMANDS:
    provision.add_command(_command)
