"""``simrotor appliance user add|list|remove``: the technician accounts of the page.

The password is read from a prompt (typed twice, not echoed) or, with
``--password-stdin``, from the first line of standard input (provisioning scripts) —
never from the command line, where ``ps`` and the shell's history would show it. The
accounts live in the appliance's store, so these commands work while the appliance runs
(SQLite WAL: another process may write), and a removed account or a new password ends
the technician's open sessions at his next request.
"""
from __future__ import annotations

import sqlite3
import sys
import time
from pathlib import Path

import click

from common.clikit import emit, json_option, load_config_or_exit
from common.webauth import AccountError

from ..config import ConfigError, load_config
from ..store import Store
from . import technician_accounts


def _say(data: dict, as_json: bool, text: str) -> None:
    if as_json:
        emit(data, True)
    else:
        click.echo(text)


def _store(config_path: str | None, store_path: str | None) -> Store:
    if store_path is None and config_path is None:
        raise click.UsageError("give --config (the appliance's TOML) or --store (its database file)")
    if store_path is None:
        store_path = load_config_or_exit(load_config, config_path, ConfigError).appliance.store
    folder = Path(store_path).resolve().parent
    if not folder.is_dir():
        raise click.ClickException(f"store {store_path}: the folder {folder} does not exist; fix: give the appliance's "
                                   "store (its [appliance] store), or --config with its TOML")
    try:
        return Store(store_path)
    except sqlite3.Error as exc:
        raise click.ClickException(f"store {store_path}: cannot be opened ({exc}); fix: run as the user that runs "
                                   "the appliance (it owns the store), e.g. sudo -u simrotor …") from None


_where = [
    click.option("--config", "config_path", type=click.Path(dir_okay=False, exists=True),
                 help="The appliance's TOML config: its [appliance] store holds the accounts."),
    click.option("--store", "store_path", type=click.Path(dir_okay=False),
                 help="The appliance's store (database file), instead of --config."),
]


def where(fn):  # type: ignore[no-untyped-def]
    for option in reversed(_where):
        fn = option(fn)
    return fn


@click.group()
def user() -> None:
    """Technician accounts for the appliance's page (sign-in with a name and password).

    \b
    Examples:
      simrotor appliance user add jan --config /etc/simrotor/appliance.toml
      printf '%s\\n' "$PW" | simrotor appliance user add jan --config appliance.toml --password-stdin
      simrotor appliance user list --config appliance.toml --json
      simrotor appliance user remove jan --config appliance.toml
    """


@user.command()
@click.argument("name")
@where
@click.option("--password-stdin", is_flag=True, help="Read the password from the first line of standard input.")
@click.option("--replace", is_flag=True, help="Set a new password for an existing account (ends its sessions).")
@json_option
def add(name: str, config_path: str | None, store_path: str | None, password_stdin: bool, replace: bool,
        as_json: bool) -> None:
    """Create technician NAME (or, with --replace, set a new password). The password is
    asked twice (not echoed), or read from standard input with --password-stdin.

    \b
    Example:
      simrotor appliance user add jan --config /etc/simrotor/appliance.toml
    """
    store = _store(config_path, store_path)
    try:
        if password_stdin:
            password = sys.stdin.readline().rstrip("\r\n")
        else:
            password = click.prompt(f"password for {name}", hide_input=True, confirmation_prompt=True)
        tech = technician_accounts(store.conn).add(name, password, replace=replace)
    except AccountError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        store.close()
    _say({"name": tech.name, "created_at": tech.created_at, "changed_at": tech.changed_at,
          "replaced": replace and tech.changed_at != tech.created_at}, as_json,
         f"technician {tech.name}: {'password set' if replace else 'created'}; sign in at the appliance's page")


@user.command("list")
@where
@json_option
def list_(config_path: str | None, store_path: str | None, as_json: bool) -> None:
    """List the technician accounts (names and when their passwords were set).

    \b
    Example:
      simrotor appliance user list --config /etc/simrotor/appliance.toml --json
    """
    store = _store(config_path, store_path)
    try:
        techs = technician_accounts(store.conn).list()
    finally:
        store.close()
    rows = [{"name": t.name, "created_at": t.created_at, "changed_at": t.changed_at} for t in techs]
    text = "\n".join(f"{t.name}\tpassword set {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(t.changed_at))}"
                     for t in techs) or "no technician accounts: add one with `simrotor appliance user add NAME`"
    _say({"technicians": rows}, as_json, text)


@user.command()
@click.argument("name")
@where
@json_option
def remove(name: str, config_path: str | None, store_path: str | None, as_json: bool) -> None:
    """Remove technician NAME; his open sessions end at their next request.

    \b
    Example:
      simrotor appliance user remove jan --config /etc/simrotor/appliance.toml
    """
    store = _store(config_path, store_path)
    try:
        technician_accounts(store.conn).remove(name)
    except AccountError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        store.close()
    _say({"removed": name}, as_json, f"technician {name} removed")
