"""Sends each recording to the controller after its result, then deletes the local file.

``PUT <controller>/v1/link/recordings/<id>`` with the file as the body (``audio/ogg``),
the job and attempt as query parameters, and the appliance's own link credential as the
bearer (the controller's base URL is the link's, ``ws`` → ``http``). The controller
answers 200 once the file and its row are committed on its side (again 200 for a file it
already has: a retry after a lost answer is harmless); only then is the local file
deleted. A network error, a 5xx, 401/403 (a credential being replaced), 408 or 429 is
tried again after ``BACKOFF`` (doubling, capped); any other 4xx is the controller saying
it will never take this file (an unknown job): the file is dropped with a warning naming
the reason. ``state()`` says what the uploader waits for, in words, for the page and logs.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

import aiohttp
from yarl import URL

from .encode import CONTENT_TYPE
from .store import Recordings

logger = logging.getLogger("appliance.recordings")

#: First retry after 5 s (a controller restarting), doubling up to 10 minutes (an outage:
#: one try per file every 10 minutes costs nothing and finds it back soon enough).
BACKOFF: Final = (5.0, 600.0)
#: One upload's whole time: a few hundred kB over a slow uplink (1 Mbit/s: ~3 s a minute of call).
REQUEST_TIMEOUT_SECONDS: Final = 60.0
#: Answers after which the same file is tried again; any other 4xx drops it.
RETRY_STATUSES: Final = frozenset({401, 403, 408, 429})


def upload_base(link_url: str) -> URL:
    """The controller's HTTP base from the link's WebSocket URL (``ws://h:p/v1/link``)."""
    url = URL(link_url)
    scheme = {"ws": "http", "wss": "https"}.get(url.scheme, url.scheme)
    if scheme not in ("http", "https") or not url.host:
        raise ValueError(f"[link] url {link_url!r}: expected ws://host:port/v1/link (or wss://)")
    return url.with_scheme(scheme).with_path("/").with_query(None)


class Uploader:
    def __init__(self, recordings: Recordings, link_url: Callable[[], str], credential: Callable[[], str], *,
                 clock: Callable[[], float] = time.time, backoff: tuple[float, float] = BACKOFF) -> None:
        self.recordings = recordings
        self.rows = recordings.rows
        self.link_url = link_url  # the controller the link is on now: uploads follow it
        self.credential = credential
        self.clock = clock
        self.backoff = backoff
        self.uploaded = 0
        self.waiting_for = "starting"
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        recordings.listeners.append(self._wake.set)

    def start(self) -> None:
        self.recordings.sweep_orphans()
        self._task = asyncio.create_task(self.run(), name="recording uploads")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def state(self) -> dict[str, Any]:
        return {"pending": self.rows.count(), "uploaded": self.uploaded, "waiting_for": self.waiting_for}

    def delay(self, tries: int) -> float:
        first, cap = self.backoff
        return float(min(cap, first * 2 ** max(0, tries - 1)))

    async def run(self) -> None:
        timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_SECONDS)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            while True:
                await self.send_due(session)
                nxt = self.rows.next_try_at()
                self._wake.clear()
                if nxt is None:
                    self.waiting_for = "no recording to send"
                    await self._wake.wait()
                else:
                    wait = max(0.0, nxt - self.clock())
                    self.waiting_for = f"the next try in {wait:.0f} s (backoff after a failed upload)" if wait else "sending"
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(wait):
                            await self._wake.wait()

    async def send_due(self, session: aiohttp.ClientSession) -> int:
        """Send every recording due now; returns how many the controller stored."""
        stored = 0
        for rec in self.rows.due(self.clock()):
            self.waiting_for = f"sending recording {rec['id']}"
            if await self._send(session, rec):
                stored += 1
        return stored

    async def _send(self, session: aiohttp.ClientSession, rec: dict[str, Any]) -> bool:
        path: Path = self.recordings.path(rec["id"])
        try:
            data = await asyncio.to_thread(path.read_bytes)
        except FileNotFoundError:
            logger.warning("recording %s of job %s: its file %s is gone; nothing to send", rec["id"], rec["job_id"], path)
            self.rows.remove(rec["id"])
            return False
        url = upload_base(self.link_url()) / "v1" / "link" / "recordings" / rec["id"]
        params = {"job_id": rec["job_id"], "attempt": str(rec["attempt"]), "seconds": str(rec["seconds"])}
        try:
            headers = {"Authorization": f"Bearer {self.credential()}", "Content-Type": CONTENT_TYPE}
            async with session.put(url, data=data, params=params, headers=headers) as r:
                body = await r.text()
                status = r.status
        except (aiohttp.ClientError, TimeoutError, OSError, RuntimeError) as exc:
            return self._retry(rec, f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
        if status == 200:
            self.recordings.delete(rec["id"])
            self.uploaded += 1
            logger.info("recording %s of job %s stored by the controller (%d bytes)", rec["id"], rec["job_id"], len(data))
            return True
        if status >= 500 or status in RETRY_STATUSES:
            return self._retry(rec, f"HTTP {status}: {body[:200]}")
        logger.warning("recording %s of job %s refused by the controller (HTTP %d: %s); the file is deleted",
                       rec["id"], rec["job_id"], status, body[:200])
        self.recordings.delete(rec["id"])
        return False

    def _retry(self, rec: dict[str, Any], error: str) -> bool:
        wait = self.delay(int(rec["tries"]) + 1)
        tries = self.rows.failed(rec["id"], error, self.clock() + wait)
        logger.warning("recording %s of job %s: upload failed (%s), try %d; next in %.0f s", rec["id"], rec["job_id"],
                       error, tries, wait)
        return False
