"""Webhooks against a real local receiver: HMAC-SHA256 signatures checked the way a CRM
would, retries with backoff after failures, dead letters listed and replayed via the API."""
from __future__ import annotations

import asyncio
import json
import time

import aiohttp
from aiohttp import web

from controller.webhooks import next_delay, sign, verify
from controller_harness import FakeAppliance, FakeClock, enroll, running

T0 = 1768471200.0  # 2026-01-15 10:00 UTC


def auth(key):
    return {"Authorization": f"Bearer {key}"}


def test_sign_and_verify_reject_tampering_and_replay():
    body = b'{"a":1}'
    sig = sign("s3cret-s3cret-s3", 1000, body)
    assert sig.startswith("sha256=") and len(sig) == 7 + 64
    assert verify("s3cret-s3cret-s3", sig, "1000", body, now=1100)
    assert not verify("s3cret-s3cret-s3", sig, "1000", b'{"a":2}', now=1100)      # body changed
    assert not verify("other-secret-xxxx", sig, "1000", body, now=1100)            # wrong secret
    assert not verify("s3cret-s3cret-s3", sig, "1001", body, now=1100)            # timestamp changed
    assert not verify("s3cret-s3cret-s3", sig, "1000", body, now=1000 + 301)      # too old: replay
    assert [next_delay(n, 10.0) for n in (1, 2, 3, 4)] == [10.0, 20.0, 40.0, 80.0]
    assert next_delay(30, 10.0) == 3600.0


class Receiver:
    """A CRM's webhook endpoint: verifies every request, fails the first ``fail`` ones."""

    def __init__(self, secret: str | None = None, fail: int = 0) -> None:
        self.secret = secret
        self.fail = fail
        self.seen: list[dict] = []
        self.bad_signatures = 0
        self.calls = 0

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.calls += 1
        ok = verify(self.secret or "", request.headers.get("X-Simrotor-Signature", ""),
                    request.headers.get("X-Simrotor-Timestamp", ""), body, now=time.time() + OFFSET[0])
        if not ok:
            self.bad_signatures += 1
            return web.Response(status=401)
        if self.fail > 0:
            self.fail -= 1
            return web.Response(status=503)
        self.seen.append({"event": request.headers["X-Simrotor-Event"], **json.loads(body)})
        return web.Response(status=204)


OFFSET = [0.0]


async def start_receiver(rx: Receiver):
    app = web.Application()
    app.router.add_post("/hook", rx.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    return runner, f"http://127.0.0.1:{port}/hook"


async def wait_for(pred, timeout=10.0):
    async with asyncio.timeout(timeout):
        while not pred():
            await asyncio.sleep(0.05)


async def test_signed_deliveries_retries_dead_letters_and_replay(tmp_path, make_controller_config):
    clock = FakeClock(T0)
    OFFSET[0] = clock.offset
    rx = Receiver(fail=2)
    runner, url = await start_receiver(rx)
    # the receiver is on loopback: allowed only with allow_private (the default refuses it,
    # tests/test_controller_input.py)
    cfg = make_controller_config(webhooks={"backoff_seconds": 0.2, "max_attempts": 3, "allow_private": True})
    try:
        async with running(cfg, clock) as (c, key), aiohttp.ClientSession() as s:
            async with s.post(f"{c.url}/v1/webhooks", json={"url": url, "events": ["result", "inbound"]}, headers=auth(key)) as r:
                assert r.status == 201
                hook = await r.json()
            rx.secret = hook["secret"]
            async with s.post(f"{c.url}/v1/campaigns", json={"id": "c1", "strategy": [{"kind": "call"}], "start": True}, headers=auth(key)) as r:
                assert r.status == 201
            async with s.post(f"{c.url}/v1/campaigns/c1/contacts", json=[{"external_id": "d1", "phones": ["+48600100200"]}],
                              headers=auth(key)) as r:
                assert r.status == 200
            app = FakeAppliance(s, c.url, await enroll(s, c, "box-01"), clock=clock)
            await app.connect()
            batch = await app.expect("jobs")
            await app.ack(batch)
            await app.send({"type": "results", "results": [app.result(batch["jobs"][0], "answered_human", number_shown="+48690000003")]})
            await app.expect("results_ack")
            # two 503s, then delivered on the third try (backoff 0.2 s, 0.4 s)
            await wait_for(lambda: len(rx.seen) == 1)
            assert rx.calls == 3 and rx.bad_signatures == 0
            assert rx.seen[0]["event"] == "result" and rx.seen[0]["outcome"] == "answered_human"
            assert rx.seen[0]["contact_id"] == 1 and rx.seen[0]["campaign_id"] == "c1"
            # the debtor calls back: an inbound event, matched, delivered
            await app.send({"type": "inbound", "events": [{"id": "in-9", "kind": "call", "from": "+48600100200",
                                                           "to": "+48690000003", "at": "2026-01-15T10:05:00Z"}]})
            await app.expect("inbound_ack")
            await wait_for(lambda: len(rx.seen) == 2)
            assert rx.seen[1]["event"] == "inbound" and rx.seen[1]["contact_id"] == 1 and rx.seen[1]["from"] == "+48600100200"
            # a receiver that keeps failing: the delivery ends in the dead-letter list
            rx.fail = 100
            await app.send({"type": "inbound", "events": [{"id": "in-10", "kind": "sms", "from": "+48600100200", "text": "ok"}]})
            await app.expect("inbound_ack")

            async def dead():
                async with s.get(f"{c.url}/v1/webhooks/dead-letters", headers=auth(key)) as r:
                    return (await r.json())["items"]
            async with asyncio.timeout(10):
                while not (items := await dead()):
                    await asyncio.sleep(0.1)
            assert items[0]["attempts"] == 3 and items[0]["last_error"] == "HTTP 503"
            assert items[0]["payload"]["id"] == "in-10"
            # the CRM is back: replay, delivered once
            rx.fail = 0
            async with s.post(f"{c.url}/v1/webhooks/dead-letters/replay", json={"ids": [items[0]["id"]]}, headers=auth(key)) as r:
                assert (await r.json())["replayed"] == 1
            await wait_for(lambda: len(rx.seen) == 3)
            assert rx.seen[2]["id"] == "in-10" and await dead() == []
            assert rx.bad_signatures == 0
            await app.close()
    finally:
        await runner.cleanup()


def test_delivered_rows_are_pruned_after_a_week_and_dead_letters_stay(open_store):
    """The deliveries table holds a week of delivered rows at most (pruned in batches, at
    most once a minute); dead letters stay until a person replays them."""
    from controller.webhooks import (DELIVERED_RETENTION_SECONDS, PRUNE_BATCH, PRUNE_EVERY_SECONDS,
                                     Deliverer)

    store = open_store()
    clock = FakeClock(1_800_000_000.0)
    old, recent = clock() - DELIVERED_RETENTION_SECONDS - 60, clock() - 60
    rows = [("w", "result", "{}", state, 0.0, at, at)
            for state, at, n in (("delivered", old, PRUNE_BATCH + 5), ("delivered", recent, 3), ("dead", old, 2))
            for _ in range(n)]
    with store.tx() as c:
        c.executemany("INSERT INTO deliveries(webhook_id, event, payload, state, next_at, created_at, updated_at)"
                      " VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
    hooks = Deliverer(store, clock)

    def count(state: str) -> int:
        return store.conn.execute("SELECT COUNT(*) FROM deliveries WHERE state = ?", (state,)).fetchone()[0]

    assert hooks.prune() == PRUNE_BATCH  # one batch ...
    assert hooks.prune() == 0  # ... a minute
    clock.advance(PRUNE_EVERY_SECONDS)
    assert hooks.prune() == 5
    assert count("delivered") == 3 and count("dead") == 2
