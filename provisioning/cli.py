"""``simrotor provision …``: the installer's commands.

Today: ``enroll`` (trade a one-time token from the controller for this appliance's link
credential). Scanning ports, reading SIMs, assigning pools, udev rules and the systemd
install land here next (docs/architecture.md, "Where each kind of change goes").
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
    """Installer's tools: enroll this appliance with its controller.

    \b
    Example:
      simrotor provision enroll --config appliance.toml --controller http://10.0.0.2:8480 --token 7f3a…
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
from .udev import udev_command

provision.add_command(install_command)
provision.add_command(udev_command)
for _command in BANK_COMMANDS:
    provision.add_command(_command)
