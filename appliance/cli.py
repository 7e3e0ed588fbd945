"""``simrotor appliance …``: run the edge runtime."""
from __future__ import annotations

from pathlib import Path

import click

from provisioning.clikit import emit, fail, json_option, load_config_or_exit, run_async
from provisioning.logs import log_options, setup_logging

from .config import ApplianceConfig, ConfigError, load_config


def _config(path: str, as_json: bool = False) -> ApplianceConfig:
    return load_config_or_exit(load_config, path, ConfigError, as_json=as_json)


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
@log_options
@click.option("--seed", type=int, default=None, help="Seed of the rotation's random choices (tests).")
def run(config_path: str, log_format: str | None, log_level: str | None, seed: int | None) -> None:
    """Run the appliance until SIGINT/SIGTERM. The config is validated first; a mistake
    is reported with its file, key and fix (exit code 2). Logs go to stderr, one JSON
    object per line ([log] format = "text" or --log-format text for people).

    \b
    Example:
      simrotor emulate --modems 16 --sims-per-modem 2 --state-file bank.json &
      simrotor appliance run --config appliance.toml --log-format text
    """
    cfg = _config(config_path)
    setup_logging(log_format or cfg.log.format, log_level or cfg.log.level)
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
    cfg = _config(config_path, as_json)
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
