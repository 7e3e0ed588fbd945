"""``simrotor appliance …``: run the edge runtime; stop, restart or remove one of its modems."""
from __future__ import annotations

import click

from common.clikit import (
    EXIT_FAILURE,
    EXIT_UNAVAILABLE,
    emit,
    fail,
    json_option,
    load_config_or_exit,
    run_async,
)
from common.logs import log_options, setup_logging

from .config import ApplianceConfig, ConfigError, load_config
from .technician.cli import user


def _config(path: str) -> ApplianceConfig:
    return load_config_or_exit(load_config, path, ConfigError)


@click.group()
def appliance() -> None:
    """The appliance runtime: modem bank, rotation, scheduler, store, local API.

    \b
    Example:
      simrotor appliance run --config appliance.toml
      simrotor appliance modem stop m07 --config appliance.toml --when-idle
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



#: Seconds ``modem --wait`` waits by default: a stop "when idle" waits for a call's end,
#: which [calls] max_ring_seconds + max_talk_seconds bound (30 + 60 s by default; longer
#: talk settings are rare), with room for a slot switch's 60 s re-registration.
MODEM_WAIT = 300.0


@appliance.command()
@click.argument("action", type=click.Choice(["stop", "restart", "remove"]))
@click.argument("modem_id", metavar="ID")
@click.option("--config", "config_path", required=True, type=click.Path(dir_okay=False),
              help="The running appliance's config: [appliance] listen and token reach its local API.")
@click.option("--when-idle", is_flag=True, help="Let the modem's call (or other work) end first; default: hang up now.")
@click.option("--wait", "wait", is_flag=True, help="Return once it is done (stopped, removed, or up again).")
@click.option("--timeout", type=click.FloatRange(min=1), default=MODEM_WAIT, show_default=True,
              help="Seconds --wait waits.")
@json_option
def modem(action: str, modem_id: str, config_path: str, when_idle: bool, wait: bool, timeout: float,
          as_json: bool) -> None:
    """Stop, restart or remove one modem of the running appliance, the others working on
    (POST /api/modems/ID/ACTION). It leaves rotation at once; with --when-idle its call
    ends normally first, else it is hung up now. stop closes its ports until a restart;
    remove forgets it until the appliance starts with a config naming it.

    \b
    Examples:
      simrotor appliance modem stop m07 --config /etc/simrotor/appliance.toml --when-idle --wait
      simrotor appliance modem restart m07 --config /etc/simrotor/appliance.toml --wait
    """
    from .localapi import LocalApi, LocalApiError

    cfg = load_config_or_exit(load_config, config_path, ConfigError, as_json=as_json)
    api = LocalApi.from_config(cfg)
    if api is None:
        fail(f"{config_path}: [appliance] listen is empty: the local API is off; fix: set listen (e.g. "
             "127.0.0.1:8470) and restart the appliance", as_json=as_json)

    def done(view: dict | None) -> bool:
        if action == "remove":
            return view is None
        if view is None or view["pending"] is not None:
            return False
        return view["state"] == "stopped" if action == "stop" else view["state"] not in ("stopped", "opening")

    async def main() -> dict:
        view = await api.control(modem_id, action, when_idle=when_idle)
        if wait:
            last = await api.wait_modem(modem_id, done, timeout=timeout,
                                        said=lambda text: click.echo(f"waiting: {text}", err=True))
            view = last if last is not None else {**view, "removed": True}
        return view

    try:
        view = run_async(main)
    except LocalApiError as exc:
        fail(str(exc), code=EXIT_FAILURE if exc.status else EXIT_UNAVAILABLE, as_json=as_json)
    if as_json:
        emit(view, True)
    else:
        tail = f" (pending {view['pending']}: {view['reason']})" if view.get("pending") else f": {view['reason']}"
        click.echo(f"{modem_id}: {'removed' if view.get('removed') else view['state']}{tail}")


appliance.add_command(user)
