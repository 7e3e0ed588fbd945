"""What the overview page shows, as one document: the fleet (each appliance's health and
capacity) and the campaigns (each one's progress, outcome mix and ETA).

A campaign's figures are its report (``controller.reporting``, the document of
``GET /v1/campaigns/{id}/report``), read the same way and at the same ``now``: the page
adds nothing of its own to them but the outcome mix summed over the report's steps, so the
page and the API never disagree. Reports run their grouped queries in a worker thread;
``Board`` reads the document at most once per ``REFRESH_SECONDS`` whatever the number of
open pages.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Final

from ..reporting import campaign_report_async
from ..store import Store

logger = logging.getLogger(__name__)

#: An open page is refreshed this often at most (the appliances' heartbeats come every
#: 10 s by default, a report of a 100,000-contact campaign takes seconds: reading more
#: often would only load the store).
REFRESH_SECONDS: Final = 2.0
#: Campaigns that ended (done, cancelled) stay on the page this long after their last change.
ENDED_SHOWN_SECONDS: Final = 24 * 3600.0
#: Reports read per refresh at most: the newest campaigns first.
MAX_CAMPAIGNS: Final = 20
#: A SIM the rotation may give a call now or after its pause (appliance/rotation/model.py
#: ``SimState``): not quarantined, locked, capped or out of rotation.
USABLE_SIM_STATES: Final = frozenset({"ready", "busy", "paused"})
#: A link with no heartbeat for this long is shown as quiet: three of the appliance's
#: default heartbeats (appliance/config.py ``[link] heartbeat_seconds = 10``).
QUIET_SECONDS: Final = 30.0
ENDED: Final = frozenset({"done", "cancelled"})


def _iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def appliance_row(store: Store, a: dict[str, Any], now: float) -> dict[str, Any]:
    """One appliance's health and capacity from the fleet tables (``hello`` and heartbeats)."""
    full = store.get_appliance(a["id"]) or {**a, "sims": [], "open_jobs": 0}
    sims = full["sims"]
    by_state: dict[str, int] = {}
    for s in sims:
        by_state[s.get("state") or "unknown"] = by_state.get(s.get("state") or "unknown", 0) + 1
    last_seen = a.get("last_seen")
    link = "down"
    if a["connected"]:
        link = "quiet" if last_seen is not None and now - last_seen > QUIET_SECONDS else "up"
    channels, idle = a.get("channels") or 0, a.get("idle")
    return {
        "id": a["id"], "link": link, "version": a.get("version"), "last_seen": _iso(last_seen),
        "seen_seconds_ago": None if last_seen is None else max(0, round(now - last_seen)),
        "channels": channels, "busy": None if idle is None else max(0, channels - idle),
        "capacity": a.get("capacity"), "queued": a.get("queued"), "jobs_in_flight": full["open_jobs"],
        "sims": len(sims), "sims_usable": sum(n for state, n in by_state.items() if state in USABLE_SIM_STATES),
        "sims_by_state": dict(sorted(by_state.items())), "operators": a.get("operators") or {},
    }


def campaign_row(campaign: dict[str, Any], report: dict[str, Any]) -> dict[str, Any]:
    """A campaign's card from its report: progress, the outcome mix over all its steps, ETA."""
    mix: dict[str, int] = {}
    for step in report["steps"]:
        for outcome, n in step["outcomes"].items():
            mix[outcome] = mix.get(outcome, 0) + n
    counts = report["contacts"]
    return {
        "id": campaign["id"], "name": campaign["name"], "state": report["state"],
        "contacts": counts, "progress": round(counts["done"] / counts["total"], 4) if counts["total"] else None,
        "outcomes": dict(sorted(mix.items(), key=lambda kv: (-kv[1], kv[0]))),
        "contact_rate": report["contact_rate"], "promises_to_pay": report["promises_to_pay"],
        "eta": report["eta"], "throughput": report["throughput"], "time_zone": report["time_zone"],
        "generated_at": report["generated_at"],
    }


def shown_campaigns(campaigns: list[dict[str, Any]], now: float) -> list[dict[str, Any]]:
    """Campaigns not ended, and ended ones of the last day; newest first, at most ``MAX_CAMPAIGNS``."""
    shown = [c for c in campaigns if c["state"] not in ENDED or now - c["updated_at"] <= ENDED_SHOWN_SECONDS]
    return sorted(shown, key=lambda c: (c["state"] in ENDED, -c["created_at"]))[:MAX_CAMPAIGNS]


async def overview(store: Store, now: float) -> dict[str, Any]:
    appliances = [appliance_row(store, a, now) for a in store.list_appliances()]
    campaigns = []
    for c in shown_campaigns(store.list_campaigns(), now):
        campaigns.append(campaign_row(c, await campaign_report_async(store, c, now)))
    return {"generated_at": _iso(now), "appliances": appliances, "campaigns": campaigns}


class Board:
    """The overview document, shared by every open page: read at most once per ``refresh``
    seconds (monotonic), one read at a time. A stale document is handed out at once while
    the next read runs in the background: a campaign of 100,000 contacts takes ~5 s to
    report (controller/reporting.py), and a page must not wait on that every time."""

    def __init__(self, store: Store, clock: Callable[[], float], *, refresh: float = REFRESH_SECONDS) -> None:
        self.store, self.clock, self.refresh = store, clock, refresh
        self._doc: dict[str, Any] | None = None
        self._read_at = float("-inf")
        self._reading: asyncio.Task[None] | None = None

    async def document(self) -> dict[str, Any]:
        if time.monotonic() - self._read_at >= self.refresh and (self._reading is None or self._reading.done()):
            self._reading = asyncio.ensure_future(self._read())
        if self._doc is None:  # the first read: nothing to show before it
            await asyncio.shield(self._reading)  # type: ignore[arg-type]
        assert self._doc is not None
        return self._doc

    async def _read(self) -> None:
        started = time.monotonic()
        try:
            self._doc = await overview(self.store, self.clock())
        except Exception:
            if self._doc is None:
                raise  # the first read: the page answers the error
            logger.exception("overview: the document could not be read; the pages keep the last one")
        finally:
            self._read_at = started  # the next try after ``refresh`` seconds, failed or not

    async def close(self) -> None:
        """Stop a read in progress (the controller stops)."""
        if self._reading is not None and not self._reading.done():
            self._reading.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reading
