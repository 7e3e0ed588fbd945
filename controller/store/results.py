"""Results and inbound events: stored once each (deduplicated by unique keys, not by a
check first), read back by cursor, matched to the contact that was shown a number, and
the history the contact rules read.

Hot path (a results batch from an appliance, one transaction): raw SQL.
"""
from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Sequence
from typing import Any

from .base import StoreBase

#: Outcomes of a call result that did not reach the callee's network: not an "attempt"
#: in the sense of Reg F 1006.14(b) (no telephone call was placed to him).
NOT_PLACED = frozenset({"channel_error", "network_error", "expired", "refused_by_policy", "cancelled", "no_eligible_sim"})


class Results(StoreBase):
    # -- results ---------------------------------------------------------------------------
    def _result(self, r: dict[str, Any]) -> dict[str, Any]:
        body = json.loads(r.pop("body"))
        r["final"] = bool(r["final"])
        r.pop("dedupe", None)
        r.pop("counts_as_attempt", None)
        r["detail"] = body
        return r

    def ingest_results(self, appliance_id: str, items: Sequence[dict[str, Any]], now: float,
                       advance: Callable[[sqlite3.Connection, dict[str, Any], dict[str, Any]], None],
                       webhook_event: Callable[[dict[str, Any]], dict[str, Any]]) -> list[dict[str, Any]]:
        """Persist a batch of the appliance's results, deduplicated; for each new final
        result call ``advance(conn, job, result)`` inside the same transaction (the next
        step of the contact). Returns the new rows."""
        new: list[dict[str, Any]] = []
        hooks = self._webhooks_for("result")
        with self.tx() as c:
            for body in items:
                job_id = str(body.get("job_id") or "")
                job = c.execute("SELECT id, campaign_id, contact_id, kind, spec, state FROM jobs WHERE id = ?", (job_id,)).fetchone()
                final = bool(body.get("final"))
                outcome = str(body.get("outcome") or "unknown")
                dedupe = f"{job_id}|{body.get('attempt')}|{int(final)}"
                at = body.pop("_at", now)
                kind = body.get("kind") or (job["kind"] if job else None)
                row = {"dedupe": dedupe, "appliance_id": appliance_id, "app_seq": body.get("seq"), "job_id": job_id or None,
                       "campaign_id": job["campaign_id"] if job else None, "contact_id": job["contact_id"] if job else None,
                       "kind": kind, "callee": body.get("callee"), "outcome": outcome, "reason": body.get("reason"),
                       "final": int(final), "number_shown": body.get("number_shown"),
                       "counts_as_attempt": int(kind == "call" and outcome not in NOT_PLACED), "at": at,
                       "body": json.dumps(body)}
                cur = c.execute("INSERT INTO results(dedupe, appliance_id, app_seq, job_id, campaign_id, contact_id, kind, callee,"
                                " outcome, reason, final, number_shown, counts_as_attempt, at, body)"
                                " VALUES (:dedupe, :appliance_id, :app_seq, :job_id, :campaign_id, :contact_id, :kind, :callee,"
                                " :outcome, :reason, :final, :number_shown, :counts_as_attempt, :at, :body)"
                                " ON CONFLICT DO NOTHING", row)
                if cur.rowcount != 1:
                    continue
                row["seq"] = cur.lastrowid
                new.append(row)
                if job is not None:
                    c.execute("UPDATE jobs SET state = ?, updated_at = ? WHERE id = ? AND state IN ('leased', 'accepted', 'started')",
                              ("done" if final else "started", now, job_id))
                    if final:
                        advance(c, {**dict(job), "spec": json.loads(job["spec"])}, row)
                self._enqueue(c, hooks, "result", webhook_event(row), now)
        return new

    def record_refusal(self, contact: dict[str, Any], job: dict[str, Any], reason: str, detail: str,
                       next_at: float | None, now: float, webhook_event: Callable[[dict[str, Any]], dict[str, Any]]) -> dict[str, Any]:
        """A refused_by_policy result, and the contact re-planned (or finished when no
        retry is possible), in one transaction."""
        body = {"job_id": job["id"], "kind": job["kind"], "callee": job["callee"], "outcome": "refused_by_policy",
                "reason": reason, "detail": detail, "retry_at": next_at, "final": True}
        row = {"dedupe": f"refused|{job['id']}|{now:.6f}", "appliance_id": None, "app_seq": None, "job_id": job["id"],
               "campaign_id": contact["campaign_id"], "contact_id": contact["id"], "kind": job["kind"],
               "callee": job["callee"], "outcome": "refused_by_policy", "reason": reason, "final": 1, "number_shown": None,
               "counts_as_attempt": 0, "at": now, "body": json.dumps(body)}
        hooks = self._webhooks_for("result")
        with self.tx() as c:
            cur = c.execute("INSERT INTO results(dedupe, appliance_id, app_seq, job_id, campaign_id, contact_id, kind, callee,"
                            " outcome, reason, final, number_shown, counts_as_attempt, at, body)"
                            " VALUES (:dedupe, :appliance_id, :app_seq, :job_id, :campaign_id, :contact_id, :kind, :callee,"
                            " :outcome, :reason, :final, :number_shown, :counts_as_attempt, :at, :body)"
                            " ON CONFLICT DO NOTHING", row)
            row["seq"] = cur.lastrowid
            if next_at is None:
                if c.execute("UPDATE contacts SET state = 'done', outcome = ?, updated_at = ? WHERE id = ? AND state = 'waiting'",
                             (f"refused_by_policy:{reason}", now, contact["id"])).rowcount == 1:
                    self._move(c, contact["campaign_id"], "waiting", "done")
            else:
                c.execute("UPDATE contacts SET next_at = ?, updated_at = ? WHERE id = ? AND state = 'waiting'",
                          (next_at, now, contact["id"]))
            self._enqueue(c, hooks, "result", webhook_event(row), now)
        return row

    def results_after(self, after: int, limit: int, campaign_id: str | None = None) -> list[dict[str, Any]]:
        if campaign_id is None:
            rows = self._all("SELECT * FROM results WHERE seq > ? ORDER BY seq LIMIT ?", (after, limit))
        else:
            rows = self._all("SELECT * FROM results WHERE seq > ? AND campaign_id = ? ORDER BY seq LIMIT ?",
                             (after, campaign_id, limit))
        return [self._result(r) for r in rows]

    # -- inbound and opt-outs ----------------------------------------------------------------
    def _inbound(self, r: dict[str, Any]) -> dict[str, Any]:
        r["opted_out"] = bool(r["opted_out"])
        r["from"], r["to"] = r.pop("from_number"), r.pop("to_number")
        return r

    def match_shown(self, c: sqlite3.Connection, from_number: str, to_number: str | None) -> tuple[int | None, str | None]:
        """The contact (and campaign) that was last shown ``to_number`` when we called or
        texted ``from_number``; failing that, the last contact we reached at ``from_number``."""
        row = None
        if to_number:
            row = c.execute("SELECT contact_id, campaign_id FROM results WHERE callee = ? AND number_shown = ?"
                            " AND contact_id IS NOT NULL ORDER BY seq DESC LIMIT 1", (from_number, to_number)).fetchone()
        if row is None:
            row = c.execute("SELECT contact_id, campaign_id FROM results WHERE callee = ? AND contact_id IS NOT NULL"
                            " AND number_shown IS NOT NULL ORDER BY seq DESC LIMIT 1", (from_number,)).fetchone()
        return (row[0], row[1]) if row else (None, None)

    def add_inbound(self, appliance_id: str, events: Sequence[dict[str, Any]], now: float,
                    is_stop: Callable[[str | None], bool], webhook_event: Callable[[dict[str, Any]], dict[str, Any]]) -> list[dict[str, Any]]:
        hooks = self._webhooks_for("inbound")
        new = []
        with self.tx() as c:
            for e in events:
                contact_id, campaign_id = self.match_shown(c, e["from"], e.get("to"))
                stop = e["kind"] == "sms" and is_stop(e.get("text"))
                row = {"id": e["id"], "appliance_id": appliance_id, "kind": e["kind"], "from_number": e["from"],
                       "to_number": e.get("to"), "text": e.get("text"), "at": e.get("_at", now), "contact_id": contact_id,
                       "campaign_id": campaign_id, "opted_out": int(stop)}
                cur = c.execute("INSERT INTO inbound(id, appliance_id, kind, from_number, to_number, text, at, contact_id,"
                                " campaign_id, opted_out) VALUES (:id, :appliance_id, :kind, :from_number, :to_number, :text,"
                                " :at, :contact_id, :campaign_id, :opted_out) ON CONFLICT DO NOTHING", row)
                if cur.rowcount != 1:
                    continue
                row["seq"] = cur.lastrowid
                if stop:
                    c.execute("INSERT INTO optouts(number, source, reason, created_at) VALUES (?, 'sms', ?, ?)"
                              " ON CONFLICT(number) DO NOTHING", (e["from"], (e.get("text") or "")[:100], now))
                out = self._inbound(dict(row))
                new.append(out)
                self._enqueue(c, hooks, "inbound", webhook_event(out), now)
        return new

    def inbound_after(self, after: int, limit: int) -> list[dict[str, Any]]:
        return [self._inbound(r) for r in self._all("SELECT * FROM inbound WHERE seq > ? ORDER BY seq LIMIT ?", (after, limit))]

    def contact_history_counts(self, contact_id: int, number: str, window_start: float, day_start: float) -> dict[str, Any]:
        """What the contact rules need: attempt times in the window, last conversation,
        today's attempts to this number, opt-out."""
        attempts = [r[0] for r in self.conn.execute(
            "SELECT at FROM results WHERE contact_id = ? AND kind = 'call' AND counts_as_attempt = 1 AND at > ? ORDER BY at",
            (contact_id, window_start)).fetchall()]
        talk = self.conn.execute("SELECT MAX(at) FROM results WHERE contact_id = ? AND outcome = 'answered_human'",
                                 (contact_id,)).fetchone()[0]
        today = self.conn.execute("SELECT COUNT(*) FROM results WHERE callee = ? AND kind = 'call' AND counts_as_attempt = 1"
                                  " AND at >= ?", (number, day_start)).fetchone()[0]
        opted = self.conn.execute("SELECT 1 FROM optouts WHERE number = ?", (number,)).fetchone() is not None
        return {"attempts": attempts, "last_conversation": talk, "attempts_today": today, "opted_out": opted}

    def contact_history(self, contact_id: int) -> dict[str, Any]:
        results = [self._result(r) for r in self._all("SELECT * FROM results WHERE contact_id = ? ORDER BY seq", (contact_id,))]
        inbound = self._all("SELECT * FROM inbound WHERE contact_id = ? ORDER BY seq", (contact_id,))
        return {"results": results, "inbound": [self._inbound(r) for r in inbound]}

