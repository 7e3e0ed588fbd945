"""``simrotor provision selftest``: the command over ``provisioning.selftest`` — options,
progress on stderr, the report as text (or ``--json``) on stdout and as an HTML file
(``--html``); exit 1 when a SIM failed."""
from __future__ import annotations

import logging
from pathlib import Path

import click

from appliance.config import ConfigError, load_config
from appliance.localapi import LocalApiError
from common.clikit import (
    EXIT_FAILURE,
    EXIT_USAGE,
    emit,
    fail,
    json_option,
    load_config_or_exit,
    run_async,
)
from common.phone import NumberError, normalise

from . import selftest_report
from .selftest import CONCURRENCY, REGISTRATION_WAIT, selftest, settings_from


def _reference(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return normalise(value, valid=False)
    except NumberError as exc:
        raise click.BadParameter(f"{exc}; the reference is the phone the test SMS and call go to") from None


def _codes(values: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for v in values:
        key, sep, code = v.partition("=")
        if not sep or not (key.isdigit() and len(key) in (5, 6)) or not code:
            raise click.BadParameter(f"{v!r}: expected MCCMNC=CODE, e.g. 26002='*101#'", param_hint="--balance-ussd")
        out[key] = code
    return out


@click.command(name="selftest")
@click.option("--config", "config_path", required=True, type=click.Path(dir_okay=False),
              help="The appliance's TOML: its [[modem]] tables, [ussd] balance code, [appliance] listen and token.")
@click.option("--reference", default=None, callback=_reference, metavar="NUMBER",
              help="The phone the test SMS and call go to (the installer's), E.164: +48600000123. Without it "
                   "SMS and call are skipped.")
@click.option("--balance-ussd", "balance_ussd", multiple=True, metavar="MCCMNC=CODE",
              help="The balance code on that operator (else [ussd] balance_code); repeatable.")
@click.option("--modem", "modems", multiple=True, help="Only these modem ids (default: every [[modem]]).")
@click.option("--html", "html_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write the report as one self-contained HTML file (to hand over).")
@click.option("--concurrency", type=click.IntRange(1, 256), default=CONCURRENCY, show_default=True,
              help="Modems tested at once (with the appliance running: out of rotation at once).")
@click.option("--register-wait", type=click.FloatRange(0, 300), default=REGISTRATION_WAIT, show_default=True,
              help="Seconds a SIM has to be registered.")
@json_option
def selftest_command(config_path: str, reference: str | None, balance_ussd: tuple[str, ...], modems: tuple[str, ...],
                     html_path: Path | None, concurrency: int, register_wait: float, as_json: bool) -> None:
    """Test every SIM end to end: registration, signal, a test SMS and a test call to
    --reference, a balance check by USSD; a pass/fail report per SIM (exit 1 when one
    failed). With the appliance running, each modem is borrowed in turn through its local
    API (its call ends first) and given back; with it stopped, the ports are opened here.
    No PIN is ever sent.

    \b
    Example:
      simrotor provision selftest --config /etc/simrotor/appliance.toml --reference +48600123456 \\
          --html selftest.html
    """
    cfg = load_config_or_exit(load_config, config_path, ConfigError, as_json=as_json)
    unknown = sorted(set(modems) - {m.id for m in cfg.modem})
    if unknown:
        fail(f"--modem {', '.join(unknown)}: not in {config_path}; its modems: "
             f"{', '.join(m.id for m in cfg.modem) or 'none'}", code=EXIT_USAGE, as_json=as_json)
    logging.getLogger("modem_drivers").setLevel(logging.ERROR)  # the report says it in words
    settings = settings_from(cfg, reference, _codes(balance_ussd), register_wait)
    try:
        report = run_async(lambda: selftest(cfg, settings, only=set(modems) or None, concurrency=concurrency,
                                            progress=lambda t: click.echo(t, err=True)))
    except LocalApiError as exc:
        fail(f"{exc}; fix: [appliance] token in {config_path} must be the running appliance's", as_json=as_json)
    if html_path is not None:
        html_path.write_text(selftest_report.html(report), encoding="utf-8")
        click.echo(f"report written to {html_path}", err=True)
    if as_json:
        emit(report.as_dict(), True)
    else:
        click.echo(selftest_report.text(report))
    if not report.passed:
        raise SystemExit(EXIT_FAILURE)
