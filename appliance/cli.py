"""``simrotor appliance …``: run the edge runtime."""
from __future__ import annotations

import json
import logging
import sys

import click

from provisioning.clikit import fail, run_async

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
