"""What /healthz and /metrics read from the store: a liveness read and counts by state,
each from an index or a kept count (``campaign_counts``), never a scan of a big table, so a
scrape every 15 s costs nothing however many results and finished jobs there are.
"""
from __future__ import annotations

from .base import StoreBase

#: Job states that hold a lease: the partial index ``jobs_open`` covers exactly these.
OPEN_JOB_STATES = ("leased", "accepted", "started")


class Gauges(StoreBase):
    def ping(self) -> int:
        """The schema version, read: raises (sqlite3.Error) when the database cannot be read."""
        row = self.conn.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
        return int(row[0]) if row else 0

    def open_jobs_by_state(self) -> dict[str, int]:
        rows = self.conn.execute("SELECT state, COUNT(*) FROM jobs WHERE state IN ('leased', 'accepted', 'started')"
                                 " GROUP BY state").fetchall()
        return {**dict.fromkeys(OPEN_JOB_STATES, 0), **{r[0]: r[1] for r in rows}}

    def contacts_by_state(self) -> dict[str, int]:
        rows = self.conn.execute("SELECT state, SUM(n) FROM campaign_counts GROUP BY state").fetchall()
        return {"waiting": 0, "in_flight": 0, "done": 0, **{r[0]: int(r[1] or 0) for r in rows}}

    def campaigns_by_state(self) -> dict[str, int]:
        return {r[0]: r[1] for r in self.conn.execute("SELECT state, COUNT(*) FROM campaigns GROUP BY state").fetchall()}

    def undelivered_by_state(self) -> dict[str, int]:
        """Webhook deliveries waiting (pending) and given up (dead): the partial indexes'."""
        pending = self.conn.execute("SELECT COUNT(*) FROM deliveries WHERE state = 'pending'").fetchone()[0]
        dead = self.conn.execute("SELECT COUNT(*) FROM deliveries WHERE state = 'dead'").fetchone()[0]
        return {"pending": int(pending), "dead": int(dead)}

    def appliances_enrolled(self) -> int:
        return int(self.conn.execute("SELECT COUNT(*) FROM appliances").fetchone()[0])
