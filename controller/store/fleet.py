"""API keys, enrollment tokens and the fleet (appliances and their SIMs): who may call
the API, who may open a link, and what each appliance last said about itself.

Cold paths (an API call or a link message each), raw portable SQL like the rest of the
store: enrollment is a conditional update inside one transaction, so a token is used once
even by two controllers at the same moment.
"""
from __future__ import annotations

import json
from typing import Any

from .base import Read, StoreBase, loads
from .jobs import OPEN_JOBS_OF


class _EnrolledMeanwhile(Exception):
    """The appliance id was taken by another enroll between our look and our insert."""


class Fleet(StoreBase):
    # -- API keys ---------------------------------------------------------------------------
    def add_api_key(self, key_id: str, name: str, key_hash: str, now: float) -> None:
        with self.tx() as c:
            c.execute("INSERT INTO api_keys(id, name, hash, created_at) VALUES (?, ?, ?, ?)", (key_id, name, key_hash, now))

    def list_api_keys(self) -> list[dict[str, Any]]:
        return self._all("SELECT id, name, created_at, revoked_at FROM api_keys ORDER BY created_at")

    def revoke_api_key(self, key_id: str, now: float) -> bool:
        with self.tx() as c:
            return c.execute("UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", (now, key_id)).rowcount == 1

    def api_key_for_hash(self, key_hash: str) -> str | None:
        row = self._one("SELECT id FROM api_keys WHERE hash = ? AND revoked_at IS NULL", (key_hash,))
        return row["id"] if row else None

    # -- enrollment and appliances ----------------------------------------------------------
    def add_enroll_token(self, token_hash: str, expires_at: float, now: float) -> None:
        with self.tx() as c:
            c.execute("INSERT INTO enroll_tokens(hash, created_at, expires_at) VALUES (?, ?, ?)", (token_hash, now, expires_at))

    def enroll(self, token_hash: str, appliance_id: str, credential_hash: str, now: float) -> str:
        """Consume the token and register the appliance in one transaction. Returns
        ``"ok"``, ``"bad_token"`` (unknown, used or expired) or ``"exists"``."""
        try:
            with self.tx() as c:
                if c.execute("SELECT 1 FROM appliances WHERE id = ?", (appliance_id,)).fetchone():
                    return "exists"
                took = c.execute("UPDATE enroll_tokens SET used_at = ?, appliance_id = ? WHERE hash = ? AND used_at IS NULL"
                                 " AND expires_at > ?", (now, appliance_id, token_hash, now)).rowcount
                if took != 1:
                    return "bad_token"
                if c.execute("INSERT INTO appliances(id, credential_hash, enrolled_at) VALUES (?, ?, ?)"
                             " ON CONFLICT(id) DO NOTHING", (appliance_id, credential_hash, now)).rowcount != 1:
                    # Another controller enrolled this id after our look (PostgreSQL reads
                    # committed rows only): roll back, so our token stays unused.
                    raise _EnrolledMeanwhile
                return "ok"
        except _EnrolledMeanwhile:
            return "exists"

    def appliance_for_credential(self, credential_hash: str) -> str | None:
        row = self._one("SELECT id FROM appliances WHERE credential_hash = ?", (credential_hash,))
        return row["id"] if row else None

    def appliance_hello(self, appliance_id: str, hello: dict[str, Any], now: float) -> None:
        with self.tx() as c:
            c.execute("UPDATE appliances SET version = ?, channels = ?, idle = ?, capacity = ?, operators = ?,"
                      " connected = 1, last_seen = ?, connected_at = ? WHERE id = ?",
                      (hello.get("version"), hello.get("channels"), hello.get("idle"), hello.get("capacity"),
                       json.dumps(hello.get("operators") or {}), now, now, appliance_id))
            c.execute("DELETE FROM sims WHERE appliance_id = ?", (appliance_id,))
            c.executemany("INSERT INTO sims(appliance_id, sim_id, msisdn, operator, channel_id, state) VALUES (?, ?, ?, ?, ?, ?)"
                          " ON CONFLICT(appliance_id, sim_id) DO NOTHING",
                          [(appliance_id, s.get("sim_id"), s.get("msisdn"), s.get("operator"), s.get("channel_id"), s.get("state"))
                           for s in hello.get("sims") or [] if isinstance(s, dict) and s.get("sim_id")])

    def appliance_heartbeat(self, appliance_id: str, hb: dict[str, Any], now: float) -> None:
        with self.tx() as c:
            # connected again too: a controller starting beside the one this link is on may
            # have marked it disconnected (mark_all_disconnected)
            c.execute("UPDATE appliances SET idle = COALESCE(?, idle), capacity = COALESCE(?, capacity),"
                      " queued = COALESCE(?, queued), last_seen = ?, connected = 1 WHERE id = ?",
                      (hb.get("idle"), hb.get("capacity"), hb.get("queued"), now, appliance_id))

    def appliance_disconnected(self, appliance_id: str, now: float, hello_at: float | None = None) -> None:
        """The link of ``appliance_id`` is down. With ``hello_at`` (that link's hello) only
        if no later hello came: the appliance may be on another controller's link by now."""
        with self.tx() as c:
            if hello_at is None:
                c.execute("UPDATE appliances SET connected = 0, last_seen = ? WHERE id = ?", (now, appliance_id))
            else:
                c.execute("UPDATE appliances SET connected = 0, last_seen = ? WHERE id = ?"
                          " AND (connected_at IS NULL OR connected_at <= ?)", (now, appliance_id, hello_at))

    def mark_all_disconnected(self, now: float, seen_before: float | None = None) -> None:
        """At start: links of a previous run of this process are gone. With ``seen_before``
        only appliances not heard from since then (several controllers on one database: an
        appliance heartbeating on another controller stays connected)."""
        with self.tx() as c:
            if seen_before is None:
                c.execute("UPDATE appliances SET connected = 0 WHERE connected = 1")
            else:
                c.execute("UPDATE appliances SET connected = 0 WHERE connected = 1 AND (last_seen IS NULL OR last_seen < ?)",
                          (seen_before,))

    def list_appliances(self) -> list[dict[str, Any]]:
        return self.run(self.list_appliances_read())

    def list_appliances_read(self, appliance_id: str | None = None) -> Read[list[dict[str, Any]]]:
        """Every appliance by id (or the one ``appliance_id``)."""
        rows = yield ("SELECT id, version, channels, idle, capacity, queued, operators, connected, last_seen,"
                      " connected_at, enrolled_at FROM appliances" + (" WHERE id = ?" if appliance_id is not None else "")
                      + " ORDER BY id", (appliance_id,) if appliance_id is not None else ())
        for r in rows:
            r["operators"] = loads(r["operators"]) or {}
            r["connected"] = bool(r["connected"])
        return rows

    def get_appliance(self, appliance_id: str) -> dict[str, Any] | None:
        return self.run(self.get_appliance_read(appliance_id))

    def get_appliance_read(self, appliance_id: str) -> Read[dict[str, Any] | None]:
        """An appliance with its SIMs and the count of its open jobs."""
        rows = yield from self.list_appliances_read(appliance_id)
        if not rows:
            return None
        app = rows[0]
        app["sims"] = yield ("SELECT sim_id, msisdn, operator, channel_id, state FROM sims WHERE appliance_id = ?"
                             " ORDER BY channel_id, sim_id", (appliance_id,))
        app["open_jobs"] = int((yield (OPEN_JOBS_OF, (appliance_id,)))[0]["n"])
        return app

