"""``simrotor appliance …``: run the edge runtime."""
from __future__ import annotations

import click

from common.clikit import load_config_or_exit, run_async
from common.logs import log_options, setup_logging

from .config import ApplianceConfig, ConfigError, load_config


def _config(path: str) -> ApplianceConfig:
    return load_config_or_exit(load_config, path, ConfigError)


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

