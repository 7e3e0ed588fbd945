"""Call recordings on the controller (issue 14): appliances send them, the CRM lists and
fetches them while the campaign retains them, and a sweep deletes them after.

* ``PUT /v1/link/recordings/{id}`` — an appliance sends one file (Ogg Opus, stereo: left
  the far end, right ours; ``audio/ogg`` or ``application/octet-stream``) with ``job_id``,
  ``attempt`` and ``seconds`` as query parameters, authenticated by its own link
  credential (``Bearer``, as ``GET /v1/link``).
  200 once the file and its row are committed, and again 200 for an id already stored (a
  retry after a lost answer); 422 ``unknown_job`` for a job this controller never leased
  (the appliance then drops the file: nobody could ever list it).
* ``GET /v1/recordings?campaign_id=…&after=&limit=`` — the retained recordings, with
  ``expires_at`` by the campaign's retention; ``GET /v1/recordings/{id}`` — the file. After
  the sweep: 404 ``deleted`` naming when and the retention that ended it.

Retention is the campaign's rule ``recording_retention_days`` (``DEFAULT_RETENTION_DAYS``
when absent), read at each sweep from the campaign's stored rules, so a changed rule
applies to the recordings already kept. The sweep runs every ``SWEEP_SECONDS`` on the
controller's injected clock; files go first, then their rows are marked deleted.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

from aiohttp import web

from common.clock import iso

from . import auth
from .apikit import ID_PATTERN, ApiError, page, reply
from .store import Store

logger = logging.getLogger(__name__)

#: Retention when the campaign's rules do not say (the campaign rule's own default).
DEFAULT_RETENTION_DAYS: Final = 30
#: Retention is counted in days: an hour's lateness of the sweep deletes nothing early.
SWEEP_SECONDS: Final = 3600.0
#: Rows swept per campaign per statement (keeps one transaction short).
SWEEP_BATCH: Final = 500
#: The largest recording accepted: the appliance keeps at most 10 minutes a call, ~2.9 MB
#: at the encoder's worst rate (appliance/recordings/encode.py); 32 MiB leaves room.
MAX_RECORDING_BYTES: Final = 32 * 1024 * 1024
#: Ids the appliance makes (uuid4 hex) — also file names, so nothing else is accepted.
RECORDING_ID: Final = re.compile(r"^[0-9a-f]{32}$")
CONTENT_TYPE: Final = "audio/ogg"
#: What an upload may say it is: the file is checked for Ogg's capture pattern either way.
UPLOAD_TYPES: Final = frozenset({CONTENT_TYPE, "application/octet-stream"})
FORMAT: Final = "ogg/opus"
SUFFIX: Final = ".opus"
#: Every Ogg page starts with this capture pattern (RFC 3533 §6).
OGG_MAGIC: Final = b"OggS"
DAY: Final = 86400.0


def retention_days(rules: dict[str, Any] | None) -> int:
    """The campaign's ``recording_retention_days``, or the default."""
    value = (rules or {}).get("recording_retention_days")
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else DEFAULT_RETENTION_DAYS


class RecordingsApi:
    """The recordings' routes and sweep, handed the store, the folder and the clock."""

    def __init__(self, store: Store, directory: str | Path, clock: Callable[[], float]) -> None:
        self.store = store
        self.directory = Path(directory)
        self.clock = clock

    def add_routes(self, app: web.Application) -> None:
        app.router.add_put("/v1/link/recordings/{id}", self.upload)
        app.router.add_get("/v1/recordings", self.listing)
        app.router.add_get("/v1/recordings/{id}", self.fetch)

    # -- the appliance sends one --------------------------------------------------------------
    async def upload(self, request: web.Request) -> web.Response:
        secret = auth.bearer(request.headers.get("Authorization"))
        appliance_id = self.store.appliance_for_credential(auth.digest(secret)) if secret else None
        if appliance_id is None:
            raise ApiError(401, "unauthorized", "send Authorization: Bearer <credential from POST /v1/enroll>")
        rec_id = request.match_info["id"]
        if not RECORDING_ID.fullmatch(rec_id):
            raise ApiError(400, "bad_request", {"field": "id", "reason": "a recording id is 32 lowercase hex digits"})
        job_id = request.query.get("job_id", "")
        job = self.store.get_job(job_id) if job_id else None
        if job is None:
            raise ApiError(422, "unknown_job", {"field": "job_id", "reason": f"no job {job_id!r} was leased by this "
                                                                             "controller; the recording cannot be filed"})
        try:
            attempt = int(request.query.get("attempt", "0"))
            seconds = float(request.query["seconds"]) if "seconds" in request.query else None
        except ValueError:
            raise ApiError(400, "bad_parameter", "attempt: an integer; seconds: a number") from None
        if request.content_type not in UPLOAD_TYPES:
            raise ApiError(415, "unsupported_media_type", {"field": "Content-Type", "reason": f"expected {CONTENT_TYPE}"})
        if request.content_length is not None and request.content_length > MAX_RECORDING_BYTES:
            raise ApiError(413, "too_large", {"field": "body", "reason": f"a recording is at most {MAX_RECORDING_BYTES} bytes"})
        data = await request.read()
        if len(data) > MAX_RECORDING_BYTES:
            raise ApiError(413, "too_large", {"field": "body", "reason": f"a recording is at most {MAX_RECORDING_BYTES} bytes"})
        if not data.startswith(OGG_MAGIC):
            raise ApiError(400, "bad_recording", {"field": "body", "reason": "not an Ogg file (no OggS capture pattern)"})
        if self.store.get_recording(rec_id) is not None:
            return reply({"id": rec_id, "stored": True, "duplicate": True})
        name = rec_id + SUFFIX
        await asyncio.to_thread(_write, self.directory, name, data)
        stored = self.store.add_recording({"id": rec_id, "appliance_id": appliance_id, "job_id": job_id, "attempt": attempt,
                                           "campaign_id": job["campaign_id"], "contact_id": job["contact_id"],
                                           "format": FORMAT, "seconds": seconds, "bytes": len(data), "path": name},
                                          self.clock())
        logger.info("recording %s of job %s stored from %s (%d bytes)", rec_id, job_id, appliance_id, len(data))
        return reply({"id": rec_id, "stored": True, "duplicate": not stored})

    # -- the CRM reads them -------------------------------------------------------------------
    def _out(self, row: dict[str, Any], days: int) -> dict[str, Any]:
        return {"id": row["id"], "campaign_id": row["campaign_id"], "contact_id": row["contact_id"], "job_id": row["job_id"],
                "attempt": row["attempt"], "appliance_id": row["appliance_id"], "format": row["format"],
                "seconds": row["seconds"], "bytes": row["bytes"], "created_at": iso(row["created_at"]),
                "expires_at": iso(row["created_at"] + days * DAY)}

    def _retention(self, campaign_id: str) -> int:
        camp = self.store.get_campaign(campaign_id)
        return retention_days(camp["rules"] if camp else None)

    async def listing(self, request: web.Request) -> web.Response:
        after, limit = page(request)
        campaign_id = request.query.get("campaign_id")
        if campaign_id is not None and not re.fullmatch(ID_PATTERN, campaign_id):
            raise ApiError(400, "bad_parameter", "campaign_id: 1-64 letters, digits, _ or -")
        rows = self.store.list_recordings(campaign_id, after, limit)
        days: dict[str, int] = {}
        items = [self._out(r, days.setdefault(r["campaign_id"], self._retention(r["campaign_id"]))) for r in rows]
        return reply({"items": items, "next": rows[-1]["seq"] if rows else after})

    async def fetch(self, request: web.Request) -> web.StreamResponse:
        rec_id = request.match_info["id"]
        row = self.store.get_recording(rec_id) if RECORDING_ID.fullmatch(rec_id) else None
        if row is None:
            raise ApiError(404, "not_found", f"no recording {rec_id!r}")
        if row["deleted_at"] is not None:
            raise ApiError(404, "deleted", f"recording {rec_id} was deleted at {iso(row['deleted_at'])}: campaign "
                                           f"{row['campaign_id']!r} keeps recordings {self._retention(row['campaign_id'])} days")
        path = self.directory / row["path"]
        if not path.is_file():
            logger.error("recording %s: its file %s is missing", rec_id, path)
            raise ApiError(404, "missing", f"recording {rec_id}'s file is missing on the controller; see its log")
        return web.FileResponse(path, headers={"Content-Type": CONTENT_TYPE,
                                               "Content-Disposition": f'attachment; filename="{rec_id}{SUFFIX}"'})

    # -- retention ---------------------------------------------------------------------------
    def sweep(self) -> list[str]:
        """Delete every recording past its campaign's retention (file, then row marked);
        returns their ids."""
        now, gone = self.clock(), []
        for campaign_id in self.store.recording_campaigns():
            before = now - self._retention(campaign_id) * DAY
            while rows := self.store.recordings_older(campaign_id, before, SWEEP_BATCH):
                for r in rows:
                    with contextlib.suppress(FileNotFoundError):
                        (self.directory / r["path"]).unlink()
                ids = [r["id"] for r in rows]
                self.store.mark_recordings_deleted(ids, now)
                gone += ids
        if gone:
            logger.info("recordings: %d deleted after their campaign's retention", len(gone))
        return gone

    async def sweep_forever(self) -> None:
        while True:
            try:
                self.sweep()  # on the loop: the store connection is the loop's
            except Exception:  # a bad row must not stop the sweep for good
                logger.exception("recording sweep")
            await asyncio.sleep(SWEEP_SECONDS)


def _write(directory: Path, name: str, data: bytes) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    tmp = directory / (name + ".part")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, directory / name)
