"""``simrotor provision technician NAME``: the first technician account of the
appliance's page, made by the installer on site (issue 17), in the appliance's store
(the config's ``[appliance] store``) — the same account ``simrotor appliance user add``
makes, an argon2id hash of its password.

The password is typed twice at a prompt (not echoed), read from the first line of
standard input (``--password-stdin``, for scripts), or made here (``--generate``: 16
random characters from ``secrets``, about 95 bits) and printed once — it is stored
only as its hash, so the installer writes it down for the technician then. Never from
the command line, where ``ps`` and the shell's history would show it. An account of
that name is never replaced here (``simrotor appliance user add NAME --replace`` sets a
new password).
"""
from __future__ import annotations

import dataclasses
import secrets
import sqlite3
import string
import sys
from pathlib import Path
from typing import Final

import click

from appliance.config import ConfigError, load_config
from appliance.store import Store
from appliance.technician import technician_accounts
from common.clikit import emit, fail, json_option, load_config_or_exit
from common.webauth import AccountError

#: A generated password: letters and digits (easy to read out and type on a phone).
ALPHABET: Final = string.ascii_letters + string.digits
#: 16 characters of 62: log2(62) * 16 ≈ 95 bits, above NIST SP 800-63B's 80-bit memorised-secret guidance.
GENERATED_LENGTH: Final = 16


@dataclasses.dataclass(slots=True, frozen=True)
class Created:
    name: str
    store: str
    password: str | None  # the generated password (shown once), else None
    technicians: int  # accounts in the store now


def generate_password() -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(GENERATED_LENGTH))


def create_technician(store_path: str | Path, name: str, password: str | None) -> Created:
    """Add technician ``name`` to the store at ``store_path`` with ``password`` (None:
    one is generated and returned). Raises ``AccountError`` (name taken, bad password)
    or ``sqlite3.Error`` (the store cannot be opened; the config's check has made sure
    its folder exists)."""
    generated = generate_password() if password is None else None
    store = Store(store_path)
    try:
        accounts = technician_accounts(store.conn)
        accounts.add(name, password if password is not None else generated or "")
        return Created(name, str(store_path), generated, accounts.count())
    finally:
        store.close()


@click.command("technician")
@click.argument("name")
@click.option("--config", "config_path", required=True, type=click.Path(dir_okay=False),
              help="The appliance's TOML config: its [appliance] store holds the accounts.")
@click.option("--password-stdin", is_flag=True, help="Read the password from the first line of standard input.")
@click.option("--generate", is_flag=True, help="Make a random password and print it once (it is stored only hashed).")
@json_option
def technician_command(name: str, config_path: str, password_stdin: bool, generate: bool, as_json: bool) -> None:
    """Create the first technician account of the appliance's page (sign-in with NAME and
    a password). The password is asked twice (not echoed), read from standard input with
    --password-stdin, or generated with --generate and printed once: write it down.

    \b
    Example:
      sudo -u simrotor simrotor provision technician jan --config /etc/simrotor/appliance.toml --generate
      printf '%s\\n' "$PW" | simrotor provision technician jan --config appliance.toml --password-stdin
    """
    if password_stdin and generate:
        raise click.UsageError("give --password-stdin or --generate, not both")
    cfg = load_config_or_exit(load_config, config_path, ConfigError, as_json=as_json)
    if generate:
        password = None
    elif password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt(f"password for {name}", hide_input=True, confirmation_prompt=True)
    try:
        made = create_technician(cfg.appliance.store, name, password)
    except AccountError as exc:
        fail(f"technician {name}: {exc}", as_json=as_json)
    except sqlite3.Error as exc:
        fail(f"store {cfg.appliance.store}: {exc}; fix: run as the service user (sudo -u simrotor …)", as_json=as_json)
    if as_json:
        emit(dataclasses.asdict(made), True)
        return
    click.echo(f"technician {made.name} created in {made.store} ({made.technicians} account(s)); "
               "sign in at the appliance's page (http://HOST:PORT/ of [appliance] listen)")
    if made.password is not None:
        click.echo(f"password (shown once, stored only hashed): {made.password}")
