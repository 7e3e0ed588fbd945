"""Files every simrotor process opens the same way: its TOML config and its SQLite store.

* ``read_toml`` — a config file as a dict, or the caller's error type with the path and
  what is wrong (missing, not UTF-8, not TOML) in words.
* ``open_sqlite`` — a connection in WAL mode (readers never block the writer), with
  ``synchronous=NORMAL`` (survives a killed process) or ``FULL`` (also power loss, one
  fsync per transaction; SQLite docs, "PRAGMA synchronous"), foreign keys on, autocommit
  so each store controls its own ``BEGIN IMMEDIATE`` transactions.
"""
from __future__ import annotations

import sqlite3
import tomllib
from pathlib import Path
from typing import Any

#: How long a writer waits for another process' transaction before failing (ms in
#: SQLite, seconds here): long enough for a burst of imports, short enough to notice.
BUSY_TIMEOUT_SECONDS = 30.0


def read_toml(path: str | Path, error: type[Exception], run_hint: str) -> dict[str, Any]:
    p = Path(path)
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        raise error(f"{p}: no such file; fix: write one (see `{run_hint} --help`)") from None
    try:
        return tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise error(f"{p}: not valid TOML: {exc}") from None


def open_sqlite(path: str | Path, *, durability: str = "normal") -> sqlite3.Connection:
    conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=BUSY_TIMEOUT_SECONDS)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={'FULL' if durability == 'full' else 'NORMAL'}")
    conn.execute("PRAGMA foreign_keys=ON")
    return conn
