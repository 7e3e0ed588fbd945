"""``simrotor controller …``: run the controller, manage API keys, issue enrollment tokens,
copy a SQLite store into PostgreSQL (``migrate``).

Each command parses options, calls one function of the controller package and prints
the result (``--json`` for one JSON document), as sqlite-utils' CLI does.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from common.clikit import emit, fail, json_option, load_config_or_exit, run_async
from common.logs import log_options, setup_logging

from .config import ConfigError, ControllerConfig, load_config

config_option = click.option("--config", "config_path", required=True, type=click.Path(dir_okay=False),
                             help="The controller's TOML config (see controller/config.py for every key).")
#: An enrollment token is good for a day by default: long enough for an installer's
#: visit, short enough that a leaked one is soon useless.
DEFAULT_TOKEN_TTL = 24 * 3600.0


def _config(path: str, as_json: bool = False) -> ControllerConfig:
    return load_config_or_exit(load_config, path, ConfigError, as_json=as_json)


def _store(cfg: ControllerConfig):  # type: ignore[no-untyped-def]
    from .store import Store

    return Store(cfg.controller.store, durability=cfg.controller.durability)


@click.group()
def controller() -> None:
    """The controller: CRM API, fleet link, contact rules, dispatch, results, webhooks.

    \b
    Example:
      simrotor controller keys create --config controller.toml --name crm
      simrotor controller run --config controller.toml
    """


@controller.command()
@config_option
@log_options
def run(config_path: str, log_format: str | None, log_level: str | None) -> None:
    """Run the controller until SIGINT/SIGTERM. The config is validated first; a mistake
    is reported with its file, key and fix (exit code 2). Logs go to stderr, one JSON
    object per line ([log] format = "text" or --log-format text for people).

    \b
    Example:
      simrotor controller run --config controller.toml
      curl -H "Authorization: Bearer $KEY" http://127.0.0.1:8480/v1/campaigns
    """
    cfg = _config(config_path)
    setup_logging(log_format or cfg.log.format, log_level or cfg.log.level)
    from .server import Controller

    async def main() -> None:
        await Controller(cfg).run_forever()

    run_async(main)


@controller.group()
def keys() -> None:
    """API keys of the CRM (stored hashed; a key is shown once, at creation).

    \b
    Example:
      simrotor controller keys create --config controller.toml --name crm --json
    """


@keys.command("create")
@config_option
@click.option("--name", required=True, help="Who uses the key (for the list and logs).")
@json_option
def keys_create(config_path: str, name: str, as_json: bool) -> None:
    """Create an API key; prints it once.

    \b
    Example:
      simrotor controller keys create --config controller.toml --name crm
    """
    from .server import create_key

    store = _store(_config(config_path, as_json))
    try:
        emit(create_key(store, name, time.time()), as_json)
    finally:
        store.close()


@keys.command("list")
@config_option
@json_option
def keys_list(config_path: str, as_json: bool) -> None:
    """List API keys (ids and names, never the keys).

    \b
    Example:
      simrotor controller keys list --config controller.toml --json
    """
    store = _store(_config(config_path, as_json))
    try:
        emit(store.list_api_keys(), as_json)
    finally:
        store.close()


@keys.command("revoke")
@config_option
@click.argument("key_id")
@json_option
def keys_revoke(config_path: str, key_id: str, as_json: bool) -> None:
    """Revoke an API key by its id (from ``keys list``).

    \b
    Example:
      simrotor controller keys revoke --config controller.toml key_1a2b3c4d5e6f
    """
    store = _store(_config(config_path, as_json))
    try:
        if not store.revoke_api_key(key_id, time.time()):
            fail(f"no active key {key_id!r}", as_json=as_json)
        emit({"id": key_id, "revoked": True}, as_json)
    finally:
        store.close()


@controller.command("enroll-token")
@config_option
@click.option("--ttl", "ttl_seconds", type=float, default=DEFAULT_TOKEN_TTL, show_default=True,
              help="Seconds the token stays valid.")
@json_option
def enroll_token(config_path: str, ttl_seconds: float, as_json: bool) -> None:
    """Issue a one-time enrollment token for an appliance (POST /v1/enroll).

    \b
    Example:
      simrotor controller enroll-token --config controller.toml --ttl 3600 --json
    """
    if ttl_seconds <= 0:
        fail("--ttl must be > 0", code=2, as_json=as_json)
    from .server import create_enroll_token

    store = _store(_config(config_path, as_json))
    try:
        emit(create_enroll_token(store, ttl_seconds, time.time()), as_json)
    finally:
        store.close()


@controller.group()
def user() -> None:
    """Accounts of the overview page (/overview/: a name and a password; not the CRM's API keys).

    \b
    Examples:
      simrotor controller user add anna --config /etc/simrotor/controller.toml
      printf '%s\\n' "$PW" | simrotor controller user add anna --config controller.toml --password-stdin
      simrotor controller user list --config controller.toml --json
      simrotor controller user remove anna --config controller.toml
    """


def _accounts(config_path: str, as_json: bool):  # type: ignore[no-untyped-def]
    from .overview import overview_accounts

    store = _store(_config(config_path, as_json))
    return store, overview_accounts(store)


@user.command("add")
@config_option
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help="Read the password from the first line of standard input.")
@click.option("--replace", is_flag=True, help="Set a new password for an existing account (ends its sessions).")
@json_option
def user_add(config_path: str, name: str, password_stdin: bool, replace: bool, as_json: bool) -> None:
    """Create page user NAME (or, with --replace, set a new password). The password is
    asked twice (not echoed), or read from standard input with --password-stdin — never
    taken from the command line, where ps and the shell's history would show it.

    \b
    Example:
      simrotor controller user add anna --config /etc/simrotor/controller.toml
    """
    from common.webauth import AccountError

    store, accounts = _accounts(config_path, as_json)
    try:
        if password_stdin:
            password = sys.stdin.readline().rstrip("\r\n")
        else:
            password = click.prompt(f"password for {name}", hide_input=True, confirmation_prompt=True)
        account = accounts.add(name, password, replace=replace)
    except AccountError as exc:
        fail(str(exc), as_json=as_json)
    finally:
        store.close()
    emit({"name": account.name, "created_at": account.created_at, "changed_at": account.changed_at,
          "replaced": replace and account.changed_at != account.created_at}, as_json)


@user.command("list")
@config_option
@json_option
def user_list(config_path: str, as_json: bool) -> None:
    """List the page's users (names and when their passwords were set).

    \b
    Example:
      simrotor controller user list --config /etc/simrotor/controller.toml --json
    """
    store, accounts = _accounts(config_path, as_json)
    try:
        rows = [{"name": a.name, "created_at": a.created_at, "changed_at": a.changed_at} for a in accounts.list()]
    finally:
        store.close()
    if as_json:
        emit({"users": rows}, True)
        return
    click.echo("\n".join(f"{r['name']}\tpassword set {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(r['changed_at']))}"
                         for r in rows) or "no page users: add one with `simrotor controller user add NAME`")


@user.command("remove")
@config_option
@click.argument("name")
@json_option
def user_remove(config_path: str, name: str, as_json: bool) -> None:
    """Remove page user NAME; his open sessions end at their next request.

    \b
    Example:
      simrotor controller user remove anna --config /etc/simrotor/controller.toml
    """
    from common.webauth import AccountError

    store, accounts = _accounts(config_path, as_json)
    try:
        accounts.remove(name)
    except AccountError as exc:
        fail(str(exc), as_json=as_json)
    finally:
        store.close()
    emit({"removed": name}, as_json)


class _MigrationProgress:
    """The copy's progress on stderr: per table a bar rewritten in place on a terminal
    (rows and rows/s), else a plain line when a table is copied and every 10 s meanwhile."""

    EVERY = 10.0  # seconds between plain lines of one long table (a log shows it is alive)

    def __init__(self) -> None:
        self.tty = sys.stderr.isatty()
        self.table: str | None = None
        self.line = ""
        self.said = 0.0

    def __call__(self, table: str, done: int, total: int, seconds: float) -> None:
        if table != self.table:
            self.close()
            self.table, self.said = table, 0.0
        rate = f"{done / seconds:,.0f} rows/s" if seconds > 0 else ""
        if self.tty:
            filled = 24 * min(done, total) // total if total else 24
            self.line = f"{table:<16} [{'#' * filled}{'.' * (24 - filled)}] {done:>11,}/{total:,} {rate}"
            click.echo(f"\r{self.line}\x1b[K", err=True, nl=False)
            return
        self.line = f"{table}: {done:,}/{total:,} rows in {seconds:.1f} s {rate}".rstrip()
        if seconds - self.said >= self.EVERY:
            self.said = seconds
            click.echo(self.line, err=True)

    def close(self) -> None:
        if self.table is not None and self.line:
            click.echo("" if self.tty else self.line, err=True)
        self.table, self.line = None, ""


@controller.command("migrate")
@click.option("--config", "config_path", type=click.Path(dir_okay=False),
              help="The controller's TOML config: its SQLite store is the source.")
@click.option("--from", "source", help="The SQLite store to copy, as a path (instead of --config).")
@click.option("--to", "target", required=True,
              help="postgresql://user[:password]@host[:port]/database — an empty database (or the one an "
                   "interrupted run of this command left, which is continued).")
@click.option("--chunk-rows", type=click.IntRange(min=1), default=None,
              help="Rows per COPY and per committed step (what a killed run may redo); default 10,000.")
@json_option
def migrate(config_path: str | None, source: str | None, target: str, chunk_rows: int | None, as_json: bool) -> None:
    """Copy a SQLite store into PostgreSQL: every table, in chunks by primary key with
    COPY, then the rows counted on both sides (exit 1 on a difference). Stop the
    controller first: a running one is refused. The source is opened read-only. Killed
    or failed, the same command again continues after the last chunk copied. Afterwards
    set [store] url in controller.toml to the target (and [store] recordings to the
    folder printed, where the recordings stay).

    \b
    Example:
      systemctl stop simrotor-controller
      simrotor controller migrate --config /etc/simrotor/controller.toml \\
          --to postgresql://simrotor@db.example/simrotor --json
    """
    from .config import recordings_dir
    from .migrate import DEFAULT_CHUNK_ROWS, MigrateError, migrate_store
    from .store.backend import is_postgresql, sqlite_path

    if (config_path is None) == (source is None):
        fail("give the source as --config FILE or --from PATH (one of them)", code=2, as_json=as_json)
    if config_path is not None:
        cfg = _config(config_path, as_json)
        if is_postgresql(cfg.controller.store):
            fail(f"{config_path}: the store is PostgreSQL already; migrate copies a SQLite store", as_json=as_json)
        source, recordings = cfg.controller.store, recordings_dir(cfg)
    else:
        recordings = Path(sqlite_path(str(source))).resolve().with_suffix(".recordings")
    bar = _MigrationProgress()
    try:
        report = migrate_store(str(source), target, chunk_rows=chunk_rows or DEFAULT_CHUNK_ROWS, progress=bar)
    except MigrateError as exc:
        bar.close()
        fail(str(exc), as_json=as_json)
    except KeyboardInterrupt:
        bar.close()
        fail("interrupted; run the same command again to continue after the last chunk copied", code=130,
             as_json=as_json)
    bar.close()
    summary = {**report.as_dict(), "recordings": str(recordings) if recordings.is_dir() else None}
    if as_json:
        emit(summary, True)
    else:
        width = max(len(t.table) for t in report.tables)
        for t in report.tables:
            click.echo(f"{t.table:<{width}}  {t.source_rows:>12,} source  {t.target_rows:>12,} target"
                       f"  {'ok' if t.ok else 'MISMATCH'}")
        click.echo(f"{report.copied:,} rows copied in {report.seconds:.1f} s"
                   + (" (continued an earlier run)" if report.resumed else ""))
        if report.ok:
            click.echo("counts match; now set [store] url in controller.toml to the --to URL"
                       + (f" and [store] recordings = \"{recordings}\"" if recordings.is_dir() else ""))
    if not report.ok:
        fail("row counts differ: " + ", ".join(f"{t.table} (source {t.source_rows}, target {t.target_rows})"
                                               for t in report.tables if not t.ok)
             + "; was the source written to during the copy?", as_json=False)
