"""``simrotor appliance …``: run the edge runtime."""
from __future__ import annotations

import logging
import sys
from pathlib import Path

import click

from provisioning.clikit import emit, fail, json_option, run_async

from .config import ConfigError, load_config


@click.group()
def appliance() -> None:
    """The appliance runtime: modem bank, rotation, scheduler, store, local API.

    \b
    Example:
      simrotor appliance run --config appliance.toml
    """


@appliance.command()
@click.option("--config", "config_path", required=True, type=click.Path(dir_okay=False),
              help="The appliance's TOML config (see appliance/config.py for every key).")
@click.option("--log-level", default="INFO", type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"]))
@click.option("--seed", type=int, default=None, help="Seed of the rotation's random choices (tests).")
def run(config_path: str, log_level: str, seed: int | None) -> None:
    """Run the appliance until SIGINT/SIGTERM. The config is validated first; a mistake
    is reported with its key and the fix.

    \b
    Example:
      simrotor emulate --modems 16 --sims-per-modem 2 --state-file bank.json &
      simrotor appliance run --config appliance.toml
    """
    try:
        cfg = load_config(config_path)
    except ConfigError as exc:
        fail(str(exc), code=2)
    logging.basicConfig(level=log_level, stream=sys.stderr,
                        format='{"at":"%(asctime)s","level":"%(levelname)s","logger":"%(name)s","msg":%(message)r}')
    from .runtime import Appliance

    async def main() -> None:
        app = Appliance(cfg, seed=seed)
        await app.run_forever()

    run_async(main)


@appliance.command()
@click.option("--config", "config_path", required=True, type=click.Path(dir_okay=False))
@click.option("--controller", required=True, help="The controller's base URL, e.g. https://controller:8480")
@click.option("--token", required=True, help="One-time enrollment token from `simrotor controller enroll-token`.")
@json_option
def enroll(config_path: str, controller: str, token: str, as_json: bool) -> None:
    """Enroll this appliance with a controller: trade a one-time token for the
    appliance's credential, stored at [link] credential_file.

    \b
    Example:
      simrotor appliance enroll --config appliance.toml --controller http://10.0.0.2:8480 --token 7f3a…
    """
    try:
        cfg = load_config(config_path)
    except ConfigError as exc:
        fail(str(exc), code=2, as_json=as_json)
    from .link import LinkError
    from .link import enroll as do_enroll

    try:
        credential = run_async(do_enroll(controller, token, cfg.appliance.id))
    except (LinkError, OSError) as exc:
        fail(f"enrollment failed: {exc}", as_json=as_json)
    path = Path(cfg.link.credential_file)
    path.write_text(credential + "\n")
    path.chmod(0o600)
    emit({"appliance_id": cfg.appliance.id, "credential_file": str(path)}, as_json)
