"""Shared pieces of every ``simrotor`` sub-command (sqlite-utils' habit: one place for
shared options, output and error handling, so each command only parses options and
calls one API function).

* ``json_option`` — every command takes ``--json`` and then prints one JSON document.
* ``emit`` — prints a result as JSON or as ``key: value`` lines for people.
* ``fail`` — a library error becomes a message in words and a non-zero exit code.
* ``run_async`` — runs a coroutine on uvloop where installed, after raising the
  open-file soft limit to the hard limit (one fd per modem port: a bank of 1,024 ports
  does not fit in Debian's default soft limit of 1,024).
"""
from __future__ import annotations

import asyncio
import dataclasses
import enum
import json
import resource
import sys
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, NoReturn, TypeVar

import click

T = TypeVar("T")

#: Exit codes, after BSD sysexits(3) where one fits, so scripts can tell failures apart.
EXIT_FAILURE = 1  # the operation was attempted and failed (modem said ERROR, SIM blocked…)
EXIT_USAGE = 2  # click's own code for bad options
EXIT_UNAVAILABLE = 69  # EX_UNAVAILABLE: no such port, device vanished, nothing answers

json_option = click.option(
    "--json", "as_json", is_flag=True, help="Print one JSON document instead of text."
)


def raise_nofile_limit() -> tuple[int, int]:
    """Raise RLIMIT_NOFILE's soft limit to its hard limit; returns (soft, hard) after."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):
            pass
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def install_event_loop_policy() -> str:
    """Use uvloop where it is installed; returns the loop implementation's name."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        return "asyncio"
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return "uvloop"


def run_async(main: Awaitable[T] | Callable[[], Awaitable[T]]) -> T:
    raise_nofile_limit()
    install_event_loop_policy()
    coro = main() if callable(main) else main
    try:
        return asyncio.run(coro)  # type: ignore[arg-type]
    except KeyboardInterrupt:
        raise SystemExit(130) from None


def to_jsonable(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, enum.Enum):
        return obj.value
    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, bytes):
        return obj.hex()
    if hasattr(obj, "isoformat"):
        return obj.isoformat()
    return obj


def emit(obj: Any, as_json: bool) -> None:
    data = to_jsonable(obj)
    if as_json:
        click.echo(json.dumps(data, ensure_ascii=False, indent=2))
        return
    if isinstance(data, dict):
        width = max((len(k) for k in data), default=0)
        for key, value in data.items():
            if isinstance(value, (dict, list)):
                value = json.dumps(value, ensure_ascii=False)
            click.echo(f"{key.ljust(width)}  {value}")
    elif isinstance(data, list):
        for item in data:
            click.echo(json.dumps(item, ensure_ascii=False) if isinstance(item, (dict, list)) else item)
    else:
        click.echo(data)


def load_config_or_exit(load: Callable[[str], T], path: str, errors: type[Exception], *, as_json: bool = False) -> T:
    """``load(path)``, or exit 2 with one paragraph naming file, key and fix (``errors``,
    the config's own error type); a failure of the check itself is still one paragraph,
    never a traceback."""
    try:
        return load(path)
    except errors as exc:
        fail(str(exc), code=EXIT_USAGE, as_json=as_json)
    except Exception as exc:  # noqa: BLE001 - a bug in a check must not print a traceback
        fail(f"{path}: the config could not be checked ({type(exc).__name__}: {exc}); fix: report this "
             f"with the file attached", code=EXIT_USAGE, as_json=as_json)


def fail(message: str, *, code: int = EXIT_FAILURE, as_json: bool = False, **detail: Any) -> NoReturn:
    """Stop with ``message`` on stderr (and a JSON error document on stdout with --json)."""
    if as_json:
        click.echo(json.dumps({"error": message, "detail": to_jsonable(detail)}, ensure_ascii=False))
    click.echo(f"simrotor: error: {message}", err=True)
    sys.exit(code)
