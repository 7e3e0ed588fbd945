"""Two controller processes on one PostgreSQL database (issue 18): the CRM calls either,
the appliance is linked to one of them (``[link] url`` lists both), the emulated bank
makes the calls, results and webhooks come back whichever controller stored them.

The system test runs on the shipped calling hours with the debtors where it is daytime
now, and the appliance on its fresh-install limits and lock rules; a pause sent to the
controller the appliance is not linked to must still withdraw its queued jobs."""
from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections import Counter
from typing import Any

import aiohttp
import pytest
from multi_controller_harness import ControllerProcess, admin_secrets, appliance_on
from system_harness import Crm, daytime_zone, receiver, spread_contacts, wait_for

from controller.store import Store
from modem_drivers.emulator import Timing

CONTACTS = 16


def contacts(zone: str, n: int = CONTACTS, prefix: str = "c") -> list[dict[str, Any]]:
    return spread_contacts(zone, n, prefix)


@pytest.mark.slow
@pytest.mark.bank(modems=8, sims_per_modem=1, timing=Timing.FAST, seed=31)
async def test_crm_to_either_controller_appliance_on_one_results_and_webhooks(tmp_path, bank, pg_server) -> None:  # type: ignore[no-untyped-def]
    with pg_server.database() as url:
        key, token = admin_secrets(url)
        a, b = ControllerProcess("a", tmp_path, url), ControllerProcess("b", tmp_path, url)
        store = Store(url)  # the test's own look at the shared database
        async with contextlib.AsyncExitStack() as stack:
            stack.callback(store.close)
            for c in (a, b):
                stack.push_async_callback(c.stop)
            await asyncio.gather(a.start(), b.start())
            http = await stack.enter_async_context(aiohttp.ClientSession())
            hooks = await stack.enter_async_context(receiver())
            crm_a, crm_b = Crm(http, a.url, key), Crm(http, b.url, key)

            # a campaign drafted on A and retried on B with the same Idempotency-Key: one campaign
            draft = {"id": "mc", "name": "Two controllers", "strategy": [{"kind": "call", "attempts": 1, "ring_seconds": 15}]}
            idem = {"Idempotency-Key": "mc-draft-1"}
            status, camp = await crm_a.call("POST", "/v1/campaigns", json=draft, headers=idem)
            assert status == 201 and camp["rules"]["hours"] == ["08:00", "21:00"], camp  # shipped hours
            status, again = await crm_b.call("POST", "/v1/campaigns", json=draft, headers=idem)
            assert (status, again["id"]) == (201, "mc"), again
            status, hook = await crm_b.call("POST", "/v1/webhooks", json={"url": hooks.url, "events": ["result"]})
            assert status == 201, hook
            hooks.secret = hook["secret"]
            status, imported = await crm_b.call("POST", "/v1/campaigns/mc/contacts", json=contacts(daytime_zone()))
            assert status == 200 and imported["created"] == CONTACTS, imported

            app = await appliance_on(tmp_path, bank.state, http, token, [a, b], enroll_via=a, seed=7)
            stack.push_async_callback(app.stop)
            link = app.link
            assert link is not None
            await wait_for("the appliance's link to A", lambda: link.connected.is_set(), 15)
            assert link.url == a.link_url
            status, _ = await crm_a.call("POST", "/v1/campaigns/mc/start")
            assert status == 200

            # jobs queued on the box (its SIMs pause between calls): a pause sent to B, which
            # holds no link, must reach the appliance through A
            await wait_for("jobs queued on the appliance", lambda: len(store.unstarted_jobs("mc")) >= 2, 60)
            status, _ = await crm_b.call("POST", "/v1/campaigns/mc/pause")
            assert status == 200
            await wait_for("the paused campaign's queued jobs withdrawn from the appliance (via A)",
                           lambda: not store.unstarted_jobs("mc"), 10)
            status, _ = await crm_b.call("POST", "/v1/campaigns/mc/resume")
            assert status == 200

            done = await crm_b.wait_campaign_done("mc", timeout=90)
            assert done["contacts"]["done"] == CONTACTS
            via_a, via_b = await crm_a.all_results("mc"), await crm_b.all_results("mc")
            assert via_a == via_b and via_a
            finals = {r["external_id"] for r in via_a if r["final"]}
            assert finals == {f"c{i}" for i in range(CONTACTS)}, finals
            assert any(r["outcome"] == "cancelled" for r in via_a), "the pause withdrew no job"
            # every call the network saw has its result, none twice, and no number beyond
            # the strategy's one attempt
            dialed = Counter(c.callee for c in bank.emu.network.calls)
            called = Counter(r["callee"] for r in via_a if r["kind"] == "call" and r["outcome"] not in ("cancelled",
                                                                                                         "refused_by_policy"))
            assert dialed == called, (dialed, called)
            assert max(dialed.values()) == 1, dialed
            seqs = Counter(r["app_seq"] for r in via_a if r["appliance_id"] == "box-01")
            assert all(n == 1 for n in seqs.values()), seqs

            # webhooks: every result pushed, signed, whichever controller stored it
            by_seq: dict[int, dict[str, Any]] = {}

            def all_pushed() -> bool:
                by_seq.clear()
                by_seq.update({p["seq"]: p for p in hooks.unique.values()})
                return set(by_seq) >= {r["seq"] for r in via_a}
            await wait_for("a webhook for every result", all_pushed, 30)
            assert hooks.bad_signatures == 0
            assert all(by_seq[r["seq"]]["outcome"] == r["outcome"] for r in via_a)
            # the fleet as either controller sees it: the appliance connected (through A)
            for crm in (crm_a, crm_b):
                status, fleet = await crm.call("GET", "/v1/appliances")
                assert status == 200 and [x["connected"] for x in fleet["items"]] == [True], fleet


async def test_two_workers_claim_each_delivery_once_and_a_dead_ones_come_due(pg_server) -> None:  # type: ignore[no-untyped-def]
    """Two controllers' delivery workers claiming from one table at once take every due
    delivery once between them (FOR UPDATE SKIP LOCKED); rows claimed by a worker that then
    died are due again when its lease ends, not before."""
    with pg_server.database() as url:
        s1, s2 = Store(url), Store(url)
        try:
            now = time.time()
            s1.add_webhook("wh_1", "http://crm.example/hook", "s" * 20, ["result"], now)
            with s1.tx() as c:
                for i in range(200):
                    s1.enqueue(c, ["wh_1"], "result", {"seq": i}, now)

            start = threading.Barrier(2)

            def drain(store: Store) -> list[int]:
                got: list[int] = []
                start.wait(5)
                while batch := store.claim_deliveries(now + 1, now + 30, 3):
                    got += [int(d["id"]) for d in batch]
                return got

            loop = asyncio.get_running_loop()
            one, two = await asyncio.gather(loop.run_in_executor(None, drain, s1), loop.run_in_executor(None, drain, s2))
            # without the lease both would take the same rows: more than 200, or repeats
            assert len(one) + len(two) == 200 and len(set(one) | set(two)) == 200, (len(one), len(two))
            # the worker of `one` dies: its rows come due when the lease ends, not before
            assert s2.claim_deliveries(now + 29, now + 60, 500) == []
            again = s2.claim_deliveries(now + 31, now + 60, 500)
            assert len(again) == 200
            # a late failure of the dead worker does not undo a delivery another made
            first = min(one + two)
            s2.delivery_done(first, now + 32)
            s1.delivery_failed(first, "timeout", now + 40, now + 33)
            assert (s1.delivery(first) or {})["state"] == "delivered"
            assert sorted(json.loads(str(d["payload"]))["seq"] for d in again) == list(range(200))
        finally:
            s1.close()
            s2.close()


async def test_a_key_left_in_use_by_a_dead_controller_is_taken_over(pg_server) -> None:  # type: ignore[no-untyped-def]
    """A controller that dies while answering a POST leaves its Idempotency-Key claimed
    without an answer; the CRM's retry, on another controller, is told to wait while the
    first could still be running and runs the request once ABANDONED_SECONDS have passed."""
    from controller_harness import FakeClock, make_config, running

    from controller import auth
    from controller.idempotency import ABANDONED_SECONDS, fingerprint

    clock = FakeClock()
    body = json.dumps({"id": "idem", "name": "Retried", "strategy": [{"kind": "call"}]}).encode()
    with pg_server.database() as url:
        async with running(make_config(url), clock, dispatch=False) as (c, key), aiohttp.ClientSession() as http:
            scope = c.store.api_key_for_hash(auth.digest(key))
            assert scope is not None
            # the dead controller's claim: the same request, never answered
            t0 = clock()
            assert c.store.claim_idempotency_key(scope, "k-1", fingerprint("POST", "/v1/campaigns", "application/json", body),
                                                 t0, t0 - 86400) is None
            crm = Crm(http, c.url, key)
            post = {"data": body, "headers": {"Idempotency-Key": "k-1", "Content-Type": "application/json"}}
            status, problem = await crm.call("POST", "/v1/campaigns", **post)
            assert (status, problem["code"]) == (409, "idempotency_key_in_use"), problem
            clock.advance(ABANDONED_SECONDS + 1)
            status, camp = await crm.call("POST", "/v1/campaigns", **post)
            assert status == 201 and camp["id"] == "idem", camp
            async with http.post(f"{c.url}/v1/campaigns", data=body, headers={**crm.headers, **post["headers"]}) as r:
                assert r.status == 201 and r.headers.get("Idempotent-Replayed") == "true"


def test_a_link_going_down_late_leaves_the_appliance_on_its_new_controller_connected(pg_server) -> None:  # type: ignore[no-untyped-def]
    """An appliance moves from A to B (a rolling restart: A closes its links, the appliance
    says hello to B at once) and A's end of the old link is recorded after B's hello: the
    appliance stays connected; a link that ends without a later hello marks it disconnected."""
    with pg_server.database() as url:
        a, b = Store(url), Store(url)
        try:
            t = time.time()
            a.add_enroll_token("tok", t + 600, t)
            assert a.enroll("tok", "box-01", "cred", t) == "ok"
            hello = {"version": "1", "channels": 1, "idle": 1, "capacity": 1, "operators": {}, "sims": []}
            a.appliance_hello("box-01", hello, t + 1)      # on A's link
            b.appliance_hello("box-01", hello, t + 2)      # moved to B
            a.appliance_disconnected("box-01", t + 3, hello_at=t + 1)  # A's finally, late
            assert [x["connected"] for x in b.list_appliances()] == [True]
            b.appliance_disconnected("box-01", t + 4, hello_at=t + 2)  # B's link ends: no later hello
            assert [x["connected"] for x in a.list_appliances()] == [False]
        finally:
            a.close()
            b.close()
