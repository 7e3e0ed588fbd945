"""Chaos (issue 18, done-when 2): two controller processes on one PostgreSQL database,
one of them killed with SIGKILL at three moments of a running campaign, each hit exactly
through a fault point (controller/faults.py: the process stops itself there, says so on
stderr, and the test kills it) rather than a sleep guessing the moment:

1. mid-dispatch — A has leased jobs in the database and not sent them;
2. mid-ingest — B has stored a results batch and not acknowledged it;
3. mid-delivery — A (restarted) had a webhook answered 2xx and not marked it delivered.

The appliance lists both (``[link] url``) and fails over each time. Then every contact
ends, no number is dialled more than the strategy allows (counted from the emulator's
network log), every call has its one result (none lost, none twice), and every result
reached the webhook receiver (repeats dropped by delivery id; the third kill makes one).
Shipped calling hours, debtors where it is daytime now, the appliance on its fresh-install
limits and lock rules."""
from __future__ import annotations

import asyncio
import contextlib
from collections import Counter

import aiohttp
import pytest
from multi_controller_harness import ControllerProcess, admin_secrets, appliance_on
from system_harness import Crm, daytime_zone, receiver, wait_for
from test_system_multi_controller import contacts

from controller.store import Store
from modem_drivers.emulator import Timing

CONTACTS = 16
#: Each fault point's wait: the campaign reaches all three within its first half minute
#: (~10 s each on an idle machine; these leave room for a loaded CI runner).
FAULT_WAIT = 30.0
#: The whole scenario, under pytest's 120 s for the test (~30 s on an idle machine): on
#: timeout the test says where the controllers and the campaign stood.
SCENARIO_SECONDS = 105.0


def progress(store: Store) -> str:
    """Where the campaign's contacts and jobs stand (a failure's evidence)."""
    contacts = store.conn.execute("SELECT state, COUNT(*) FROM contacts GROUP BY state").fetchall()
    jobs = store.conn.execute("SELECT id, state, appliance_id, lease_deadline FROM jobs WHERE state NOT IN ('done', 'rejected')"
                              " ORDER BY id").fetchall()
    return f"contacts { {r[0]: r[1] for r in contacts} }; open jobs {[tuple(r) for r in jobs]}"


@pytest.mark.slow
@pytest.mark.bank(modems=8, sims_per_modem=1, timing=Timing.FAST, seed=37)
async def test_kill_9_mid_dispatch_mid_ingest_mid_delivery_loses_and_doubles_nothing(tmp_path, bank, pg_server) -> None:  # type: ignore[no-untyped-def]
    with pg_server.database() as url:
        key, token = admin_secrets(url)
        # a 30 s job lease (jobs waiting for a SIM's pause on the box are not churned through
        # expiry while a controller restarts) and a 1 s webhook timeout (a 3 s delivery
        # lease: what a dead controller was posting comes due again within the test's time)
        a = ControllerProcess("a", tmp_path, url, lease_seconds=30.0, webhook_timeout=1.0)
        b = ControllerProcess("b", tmp_path, url, lease_seconds=30.0, webhook_timeout=1.0)
        store = Store(url)
        async with contextlib.AsyncExitStack() as stack:
            stack.callback(store.close)
            for c in (a, b):
                stack.push_async_callback(c.stop)
            where = "starting"
            try:
                async with asyncio.timeout(SCENARIO_SECONDS):
                    await asyncio.gather(a.start(fault="dispatch.leased:1"), b.start(fault="ingest.stored:2"))
                    http = await stack.enter_async_context(aiohttp.ClientSession())
                    hooks = await stack.enter_async_context(receiver())
                    crm = Crm(http, b.url, key)
                    status, hook = await crm.call("POST", "/v1/webhooks", json={"url": hooks.url, "events": ["result"]})
                    assert status == 201, hook
                    hooks.secret = hook["secret"]
                    status, camp = await crm.call("POST", "/v1/campaigns", json={
                        "id": "chaos", "name": "Chaos", "start": True, "strategy": [{"kind": "call", "attempts": 1, "ring_seconds": 15}]})
                    assert status == 201 and camp["rules"]["hours"] == ["08:00", "21:00"], camp  # shipped hours
                    status, imported = await crm.call("POST", "/v1/campaigns/chaos/contacts", json=contacts(daytime_zone(), CONTACTS))
                    assert status == 200 and imported["created"] == CONTACTS, imported

                    app = await appliance_on(tmp_path, bank.state, http, token, [a, b], enroll_via=b, seed=11)
                    stack.push_async_callback(app.stop)
                    link = app.link
                    assert link is not None

                    # 1. mid-dispatch: A froze with jobs leased to the appliance and not sent
                    where = "waiting for A at dispatch.leased"
                    await a.wait_line("fault point dispatch.leased reached", FAULT_WAIT)
                    leased_unsent = {r[0] for r in store.conn.execute("SELECT id FROM jobs WHERE state = 'leased'").fetchall()}
                    where = "killing A (1)"
                    await a.kill9()
                    where = "waiting for the appliance on B"
                    await wait_for("the appliance on B", lambda: link.connected.is_set() and link.url == b.link_url, 15)

                    # 2. mid-ingest: B froze with a results batch stored and not acknowledged
                    where = "waiting for B at ingest.stored"
                    await b.wait_line("fault point ingest.stored reached", FAULT_WAIT)
                    stored_at_kill = len(store.results_after(0, 10_000, "chaos"))
                    # A back, to die at its second delivery: B's batch enqueued deliveries, so that may
                    # come before the appliance is on A (its link to a stopped A then waits for the kill)
                    where = "restarting A"
                    await a.start(fault="webhook.posted:2")
                    where = "killing B"
                    await b.kill9()

                    # 3. mid-delivery: A froze after a receiver's 2xx, before marking the delivery
                    where = "waiting for A at webhook.posted"
                    await a.wait_line("fault point webhook.posted reached", FAULT_WAIT)
                    where = "killing A (2)"
                    await a.kill9()
                    where = "restarting B"
                    await b.start()  # B back without a fault; A stays dead
                    where = "waiting for the campaign"
                    crm = Crm(http, b.url, key)
                    await wait_for("the appliance on B again", lambda: link.connected.is_set() and link.url == b.link_url, 15)

                    try:
                        done = await crm.wait_campaign_done("chaos", timeout=60)
                    except TimeoutError:
                        raise AssertionError(f"the campaign did not end in 60 s: {progress(store)}") from None
                    assert done["contacts"]["done"] == CONTACTS
                    results = await crm.all_results("chaos")
                    finals = {r["external_id"] for r in results if r["final"]}
                    assert finals == {f"c{i}" for i in range(CONTACTS)}, finals
                    # the jobs A leased and never sent reached the appliance all the same
                    assert leased_unsent and leased_unsent <= {r["job_id"] for r in results if r["final"]}, leased_unsent
                    assert len(results) > stored_at_kill
                    # nobody dialled beyond the strategy's one attempt; every call has its result, once
                    dialed = Counter(c.callee for c in bank.emu.network.calls)
                    assert dialed and max(dialed.values()) == 1, dialed
                    called = Counter(r["callee"] for r in results if r["kind"] == "call")
                    lost = {c: (n, called[c]) for c, n in dialed.items() if n > called[c]}
                    assert not lost, f"calls the network saw without their result: {lost}"
                    seqs = Counter(r["app_seq"] for r in results if r["appliance_id"] == "box-01")
                    assert all(n == 1 for n in seqs.values()), seqs
                    jobs = Counter((r["job_id"], r["final"]) for r in results)
                    assert all(n == 1 for n in jobs.values()), jobs

                    # no webhook lost: every result reached the receiver (repeats dropped by id), and
                    # the delivery A held when it died was posted again under the same id
                    def all_pushed() -> bool:
                        return {p["seq"] for p in hooks.unique.values()} >= {r["seq"] for r in results}
                    await wait_for("a webhook for every result", all_pushed, 30)
                    assert hooks.bad_signatures == 0
                    repeats = [d for d, n in Counter(hooks.delivery_ids).items() if n > 1]
                    assert repeats, "the delivery A died holding was not posted again"
            except TimeoutError:
                # before pytest's own timeout: say where it stood
                raise AssertionError(f"the scenario took over {SCENARIO_SECONDS:g} s, {where}: {progress(store)}\n"
                                     f"A:\n{a.tail(8)}\nB:\n{b.tail(8)}") from None
