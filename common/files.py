"""Files every simrotor process opens the same way: its TOML config and its SQLite store.

* ``read_toml`` — a config file as a dict, or the caller's error type with the path and
  what is wrong (missing, not UTF-8, not TOML) in words.
* ``open_sqlite`` — a connection in WAL mode (readers never block the writer), with
  ``synchronous=NORMAL`` (survives a killed process) or ``FULL`` (also power loss, one
  fsync per transaction; SQLite docs, "PRAGMA synchronous"), foreign keys on, autocommit
  so each store controls its own ``BEGIN IMMEDIATE`` transactions.
* ``write_json_atomic`` — a JSON document written beside its target and renamed over it
  (a reader never sees half a file, a crash leaves the old one), optionally owner-only.
"""
from __future__ import annotations

import json
import os
import sqlite3
import tempfile
import time
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
    _journal_wal(conn)
    conn.execute(f"PRAGMA synchronous={'FULL' if durability == 'full' else 'NORMAL'}")
    conn.execute("PRAGMA foreign_keys=ON")
    return conn


def _journal_wal(conn: sqlite3.Connection) -> None:
    """``PRAGMA journal_mode=WAL``. Two processes opening a new file at once: the one that
    does not get to switch it is told "database is locked" at once (SQLite does not call the
    busy handler there), so it tries again, waiting 10 ms doubling to 1 s, until
    ``BUSY_TIMEOUT_SECONDS``; by then the other has switched the file or holds it for good."""
    deadline = time.monotonic() + BUSY_TIMEOUT_SECONDS
    delay = 0.01
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() + delay > deadline:
                raise
        time.sleep(delay)
        delay = min(delay * 2, 1.0)


def write_json_atomic(path: Path, document: Any, *, private: bool = False, sort_keys: bool = False) -> None:
    """Write ``document`` as indented UTF-8 JSON to ``path`` atomically: a temporary file in
    the same directory, renamed over the target; mode 0600 with ``private`` (it may hold
    PINs or credentials). The temporary file is removed when anything fails."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        if private:
            os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(document, fh, ensure_ascii=False, indent=2, sort_keys=sort_keys)
            fh.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
