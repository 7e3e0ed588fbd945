"""Recordings on the appliance: one Ogg Opus file per recorded call under the data
directory (``<store>.recordings/<id>.opus``) and one row per file in the store's
``recordings`` table until the controller has it.

The file is written by the call's executor as the call ends (encoding runs in a worker
thread, off the loop: a minute of a two-sided call takes ~0.9 s of libsndfile on the
2-core development machine), and named in the result
(``recording``: id, format, seconds, bytes). Its row is written when the result is — the
scheduler's result listener (``on_result``), after the result's commit — so the uploader
sends only what a stored result names. A file whose result never got stored (a crash in
between) has no row: ``sweep_orphans`` deletes it once it is an hour old.

Local disk use is bounded (``MAX_LOCAL_BYTES``): a row that takes the folder past it drops
the oldest files still waiting for the controller, with a warning naming them.
"""
from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

from .encode import FORMAT, SUFFIX, encode
from .tap import MAX_SECONDS, Tap

logger = logging.getLogger("appliance.recordings")

#: Local recordings kept at most while the controller cannot take them: at the encoder's
#: worst rate (~4.8 kB/s, encode.py) 1 GiB is 60 hours of recorded talk — days of a
#: controller outage for a bank that records a few calls a minute.
MAX_LOCAL_BYTES: Final = 1024**3
#: A file without a row this old is a crash's leftover (its result was never stored): a
#: result follows its file by milliseconds.
ORPHAN_SECONDS: Final = 3600.0

_COLUMNS: Final = "id, job_id, attempt, format, seconds, bytes, created_at, tries, next_try_at, last_error"


class RecordingRows:
    """The ``recordings`` table of the appliance store (appliance/store/schema.py), raw SQL
    on the store's connection: one row per local file not yet stored by the controller."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def _all(self, sql: str, args: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        cur = self.conn.execute(sql, args)
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    def add(self, rec: dict[str, Any], job_id: str, attempt: int, now: float) -> None:
        self.conn.execute(
            "INSERT OR IGNORE INTO recordings(id, job_id, attempt, format, seconds, bytes, created_at, tries, next_try_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?)",
            (rec["id"], job_id, attempt, rec["format"], rec["seconds"], rec["bytes"], now, now))

    def get(self, rec_id: str) -> dict[str, Any] | None:
        rows = self._all(f"SELECT {_COLUMNS} FROM recordings WHERE id = ?", (rec_id,))
        return rows[0] if rows else None

    def due(self, now: float, limit: int = 20) -> list[dict[str, Any]]:
        return self._all(f"SELECT {_COLUMNS} FROM recordings WHERE next_try_at <= ? ORDER BY next_try_at LIMIT ?",
                         (now, limit))

    def next_try_at(self) -> float | None:
        row = self.conn.execute("SELECT MIN(next_try_at) FROM recordings").fetchone()
        return None if row[0] is None else float(row[0])

    def failed(self, rec_id: str, error: str, next_try_at: float) -> int:
        """Another try later; returns the tries made so far."""
        self.conn.execute("UPDATE recordings SET tries = tries + 1, last_error = ?, next_try_at = ? WHERE id = ?",
                          (error, next_try_at, rec_id))
        row = self.conn.execute("SELECT tries FROM recordings WHERE id = ?", (rec_id,)).fetchone()
        return int(row[0]) if row else 0

    def remove(self, rec_id: str) -> None:
        self.conn.execute("DELETE FROM recordings WHERE id = ?", (rec_id,))

    def ids(self) -> set[str]:
        return {r[0] for r in self.conn.execute("SELECT id FROM recordings")}

    def count(self) -> int:
        return int(self.conn.execute("SELECT COUNT(*) FROM recordings").fetchone()[0])

    def total_bytes(self) -> int:
        return int(self.conn.execute("SELECT COALESCE(SUM(bytes), 0) FROM recordings").fetchone()[0])

    def oldest(self, limit: int) -> list[dict[str, Any]]:
        return self._all(f"SELECT {_COLUMNS} FROM recordings ORDER BY created_at, id LIMIT ?", (limit,))


class Recordings:
    """The appliance's recordings: taps for calls, their files, their rows."""

    def __init__(self, rows: RecordingRows, directory: str | Path, *, max_bytes: int = MAX_LOCAL_BYTES,
                 max_seconds: float = MAX_SECONDS, clock: Callable[[], float] = time.time) -> None:
        self.rows = rows
        self.directory = Path(directory)
        self.max_bytes = max_bytes
        self.max_seconds = max_seconds
        self.clock = clock
        self.listeners: list[Callable[[], None]] = []  # told when a row is added (the uploader wakes)

    def tap(self) -> Tap:
        return Tap(max_seconds=self.max_seconds)

    def path(self, rec_id: str) -> Path:
        return self.directory / f"{rec_id}{SUFFIX}"

    async def save(self, tap: Tap) -> dict[str, Any]:
        """Encode what ``tap`` heard and write its file (to a temporary name, then renamed:
        a crash leaves no half file under a recording's name); the result's ``recording``."""
        rec_id = uuid.uuid4().hex
        data = await asyncio.to_thread(encode, tap.stereo())
        path = self.path(rec_id)
        tmp = path.with_suffix(".part")
        self.directory.mkdir(parents=True, exist_ok=True)  # made with the first recording, not for every appliance
        await asyncio.to_thread(_write, tmp, path, data)
        out: dict[str, Any] = {"id": rec_id, "format": FORMAT, "seconds": tap.seconds, "bytes": len(data)}
        if tap.truncated:
            out["truncated"] = True  # longer than max_seconds: the rest was not kept
        return out

    def on_result(self, result: dict[str, Any]) -> None:
        """The scheduler's result listener: a stored result that names a recording gets its
        row (the uploader's work), then the folder is brought back under its bound."""
        rec = result.get("recording")
        if not isinstance(rec, dict) or not rec.get("id"):
            return
        self.rows.add(rec, str(result.get("job_id")), int(result.get("attempt") or 0), self.clock())
        self._bound()
        for cb in list(self.listeners):
            cb()

    def _bound(self) -> None:
        total = self.rows.total_bytes()
        while total > self.max_bytes:
            oldest = self.rows.oldest(1)
            if not oldest:
                return
            old = oldest[0]
            logger.warning("recording %s of job %s dropped before the controller stored it: the local recordings "
                           "passed %d bytes (its last upload error: %s)", old["id"], old["job_id"], self.max_bytes,
                           old.get("last_error") or "none yet")
            self.delete(old["id"])
            total -= int(old["bytes"])

    def delete(self, rec_id: str) -> None:
        """The file and its row (the controller stored it, or the bound dropped it)."""
        self.path(rec_id).unlink(missing_ok=True)
        self.rows.remove(rec_id)

    def sweep_orphans(self) -> list[str]:
        """Delete files that no row names once they are ``ORPHAN_SECONDS`` old; their names."""
        known, now, gone = self.rows.ids(), self.clock(), []
        if not self.directory.is_dir():
            return gone
        for f in self.directory.iterdir():
            if f.stem in known or not f.is_file():
                continue
            try:
                if now - f.stat().st_mtime < ORPHAN_SECONDS:
                    continue
                f.unlink()
            except OSError:
                continue
            gone.append(f.name)
        if gone:
            logger.warning("deleted %d recording file(s) whose call result was never stored: %s", len(gone),
                           ", ".join(sorted(gone)[:10]))
        return gone


def _write(tmp: Path, path: Path, data: bytes) -> None:
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
