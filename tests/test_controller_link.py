"""The fleet link driven by a scripted fake appliance over a real WebSocket:
hello -> jobs with leases -> ack -> results -> results_ack; dedupe; re-dispatch only
after lease expiry; strategy steps; inbound matching and STOP; restart keeps state."""
from __future__ import annotations

import asyncio
from datetime import datetime, timezone

import aiohttp
import pytest

from controller_harness import FakeAppliance, FakeClock, enroll, running

T0 = datetime(2026, 1, 15, 10, 0, tzinfo=timezone.utc).timestamp()  # 11:00 in Warsaw, a Thursday
H = {"Content-Type": "application/json"}


def auth(key):
    return {"Authorization": f"Bearer {key}"}


async def make_campaign(s, c, key, strategy, cid="c1", contacts=None, rules=None):
    body = {"id": cid, "strategy": strategy, "start": True}
    if rules:
        body["rules"] = rules
    async with s.post(f"{c.url}/v1/campaigns", json=body, headers=auth(key)) as r:
        assert r.status == 201, await r.text()
    contacts = contacts or [{"external_id": "d1", "phones": ["+48600100200"], "name": "Jan", "amount": "120.5",
                             "currency": "PLN", "due_date": "2026-02-01"}]
    async with s.post(f"{c.url}/v1/campaigns/{cid}/contacts", json=contacts, headers=auth(key)) as r:
        assert r.status == 200, await r.text()
        return await r.json()


async def results(s, c, key, after=0):
    async with s.get(f"{c.url}/v1/results?after={after}", headers=auth(key)) as r:
        assert r.status == 200
        return (await r.json())["items"]


async def contact(s, c, key, cid):
    async with s.get(f"{c.url}/v1/contacts/{cid}", headers=auth(key)) as r:
        return await r.json()


async def test_enroll_token_is_one_time_and_link_needs_the_credential(tmp_path, make_controller_config):
    async with running(make_controller_config()) as (c, key), aiohttp.ClientSession() as s:
        from controller.server import create_enroll_token
        token = create_enroll_token(c.store, 600, c.clock())["token"]
        async with s.post(f"{c.url}/v1/enroll", json={"token": token, "appliance_id": "box-01"}) as r:
            assert r.status == 200
            cred = (await r.json())["credential"]
        async with s.post(f"{c.url}/v1/enroll", json={"token": token, "appliance_id": "box-02"}) as r:
            assert r.status == 401 and (await r.json())["code"] == "bad_token"
        token2 = create_enroll_token(c.store, 600, c.clock())["token"]
        async with s.post(f"{c.url}/v1/enroll", json={"token": token2, "appliance_id": "box-01"}) as r:
            assert r.status == 409
        with pytest.raises(aiohttp.WSServerHandshakeError) as exc:
            await s.ws_connect(f"{c.url}/v1/link", headers={"Authorization": "Bearer wrong"})
        assert exc.value.status == 401
        app = FakeAppliance(s, c.url, cred)
        await app.connect()
        await app.send({"type": "nonsense"})
        err = await app.expect("error")
        assert "unknown message type" in err["detail"]
        await app.send({"type": "heartbeat", "idle": 2, "capacity": 3, "queued": 1})
        await asyncio.sleep(0.1)
        async with s.get(f"{c.url}/v1/appliances/box-01", headers=auth(key)) as r:
            box = await r.json()
        assert box["connected"] is True and box["capacity"] == 3 and len(box["sims"]) == 4
        await app.close()


async def test_jobs_leases_acks_results_dedupe_and_strategy(tmp_path, make_controller_config):
    clock = FakeClock(T0)
    cfg = make_controller_config()
    async with running(cfg, clock) as (c, key), aiohttp.ClientSession() as s:
        strategy = [{"kind": "hlr"}, {"kind": "call", "attempts": 2, "retry_after_seconds": 600},
                    {"kind": "sms", "text": "Dzien dobry {name}, prosimy o wplate {amount} {currency} do {due_date}."}]
        rep = await make_campaign(s, c, key, strategy)
        assert rep["created"] == 1
        app = FakeAppliance(s, c.url, await enroll(s, c, "box-01"), clock=clock)
        await app.connect()
        # 1) HLR check first, with a lease deadline
        batch = await app.expect("jobs")
        (job,) = batch["jobs"]
        assert job["kind"] == "hlr" and job["callee"] == "+48600100200"
        assert abs(job["deadline"] - (clock() + cfg.dispatch.lease_seconds)) < 2
        assert job["id"].endswith(".0.0") and job["retry"] == {"max_attempts": 1}
        await app.ack(batch)
        await app.send({"type": "results", "results": [app.result(job, "active", seq=1)]})
        assert (await app.expect("results_ack"))["upto"] == 1
        # a duplicate (same seq, and same job/attempt/final under another seq) is acked, not stored twice
        await app.send({"type": "results", "results": [app.result(job, "active", seq=1), app.result(job, "active", seq=2)]})
        assert (await app.expect("results_ack"))["upto"] == 2
        assert [r["outcome"] for r in await results(s, c, key)] == ["active"]
        # 2) first call attempt: busy -> retry after 600 s
        batch = await app.expect("jobs")
        (job,) = batch["jobs"]
        assert job["kind"] == "call" and job["call"]["max_ring_seconds"] == 30
        await app.ack(batch)
        await app.send({"type": "results", "results": [app.result(job, "busy", seq=3, cause=17)]})
        await app.expect("results_ack")
        with pytest.raises(TimeoutError):
            await app.expect("jobs", timeout=0.4)  # nothing before retry_after
        clock.advance(601)
        batch = await app.expect("jobs")
        (job2,) = batch["jobs"]
        assert job2["kind"] == "call" and job2["id"] != job["id"] and job2["id"].endswith(".1.1")
        await app.ack(batch)
        await app.send({"type": "results", "results": [app.result(job2, "no_answer", seq=4)]})
        await app.expect("results_ack")
        # 3) calls failed -> SMS with the template filled in
        batch = await app.expect("jobs")
        (sms,) = batch["jobs"]
        assert sms["kind"] == "sms"
        assert sms["text"] == "Dzien dobry Jan, prosimy o wplate 120.50 PLN do 2026-02-01."
        await app.ack(batch)
        await app.send({"type": "results", "results": [app.result(sms, "submitted", final=False, seq=5),
                                                        app.result(sms, "delivered", final=True, seq=6)]})
        await app.expect("results_ack")
        outs = [r["outcome"] for r in await results(s, c, key)]
        assert outs == ["active", "busy", "no_answer", "submitted", "delivered"]
        ct = await contact(s, c, key, 1)
        assert ct["state"] == "done" and ct["outcome"] == "delivered"
        await asyncio.sleep(0.2)
        async with s.get(f"{c.url}/v1/campaigns/c1", headers=auth(key)) as r:
            assert (await r.json())["state"] == "done"
        # a result body is stored as the appliance sent it (no internal fields)
        assert "_at" not in (await results(s, c, key))[0]["detail"]
        # new contacts reopen the finished campaign
        async with s.post(f"{c.url}/v1/campaigns/c1/contacts", json=[{"external_id": "d2", "phones": ["+48600100201"]}],
                          headers=auth(key)) as r:
            assert (await r.json())["created"] == 1
        async with s.get(f"{c.url}/v1/campaigns/c1", headers=auth(key)) as r:
            assert (await r.json())["state"] == "running"
        assert (await app.expect("jobs"))["jobs"][0]["callee"] == "+48600100201"
        await app.close()


async def test_redispatch_only_after_lease_expiry_same_id_and_restart_keeps_state(tmp_path, make_controller_config):
    clock = FakeClock(T0)
    cfg = make_controller_config()
    async with aiohttp.ClientSession() as s:
        async with running(cfg, clock) as (c, key):
            await make_campaign(s, c, key, [{"kind": "call", "attempts": 3}])
            cred = await enroll(s, c, "box-01")
            app = FakeAppliance(s, c.url, cred, clock=clock)
            await app.connect()
            batch = await app.expect("jobs")
            (job,) = batch["jobs"]
            await app.close()  # the link is cut before the ack
        # controller restart: same store, new process state
        async with running(cfg, clock) as (c, key2):
            app = FakeAppliance(s, c.url, cred, clock=clock)
            await app.connect()
            # The batch was never acknowledged: the same lease is sent again at hello (same
            # id, same deadline: the appliance dedupes by id), not a new lease.
            resent = await app.expect("jobs")
            assert [(j["id"], j["deadline"]) for j in resent["jobs"]] == [(job["id"], job["deadline"])]
            with pytest.raises(TimeoutError):
                await app.expect("jobs", timeout=0.5)  # the lease still holds: no re-dispatch
            clock.advance(cfg.dispatch.lease_seconds + 1)
            batch2 = await app.expect("jobs")
            (again,) = batch2["jobs"]
            assert again["id"] == job["id"] and again["deadline"] > job["deadline"]
            await app.ack(batch2)
            await app.send({"type": "results", "results": [app.result(again, "answered_human", talk_seconds=12.0)]})
            await app.expect("results_ack")
            ct = await contact(s, c, key2, 1)
            assert ct["state"] == "done" and ct["outcome"] == "answered_human"
            with pytest.raises(TimeoutError):
                await app.expect("jobs", timeout=0.4)
            await app.close()


async def test_expired_on_the_appliance_replans_with_a_new_id_and_rejected_ends(tmp_path, make_controller_config):
    clock = FakeClock(T0)
    async with running(make_controller_config(), clock) as (c, key), aiohttp.ClientSession() as s:
        contacts = [{"external_id": "d1", "phones": ["+48600100200"]}, {"external_id": "d2", "phones": ["+48600100201"]}]
        await make_campaign(s, c, key, [{"kind": "call"}], contacts=contacts)
        app = FakeAppliance(s, c.url, await enroll(s, c, "box-01"), clock=clock)
        await app.connect()
        batch = await app.expect("jobs")
        assert len(batch["jobs"]) == 2
        j1, j2 = sorted(batch["jobs"], key=lambda j: j["id"])
        await app.ack(batch, reject={j2["id"]: "callee: not a number"})
        await app.send({"type": "results", "results": [app.result(j1, "expired")]})
        await app.expect("results_ack")
        batch = await app.expect("jobs")
        (again,) = batch["jobs"]
        assert again["id"] == j1["id"] + ".g1"
        await asyncio.sleep(0.1)
        assert (await contact(s, c, key, 2))["outcome"].startswith("rejected_by_appliance")
        await app.close()


async def test_backpressure_caps_open_jobs_per_appliance(tmp_path, make_controller_config):
    clock = FakeClock(T0)
    cfg = make_controller_config(dispatch={"queue_depth": 1})
    async with running(cfg, clock) as (c, key), aiohttp.ClientSession() as s:
        contacts = [{"external_id": f"d{i}", "phones": [f"+486001002{i:02d}"]} for i in range(20)]
        await make_campaign(s, c, key, [{"kind": "call"}], contacts=contacts)
        app = FakeAppliance(s, c.url, await enroll(s, c, "box-01"), clock=clock)
        await app.connect(capacity=2)
        batch = await app.expect("jobs")
        assert len(batch["jobs"]) == 3  # capacity 2 + queue depth 1
        await app.ack(batch)
        with pytest.raises(TimeoutError):
            await app.expect("jobs", timeout=0.4)
        await app.send({"type": "results", "results": [app.result(batch["jobs"][0], "no_answer")]})
        await app.expect("results_ack")
        assert len((await app.expect("jobs"))["jobs"]) == 1  # one slot freed, one job
        await app.close()


async def test_refusals_are_results_and_opt_out_by_sms_stop(tmp_path, make_controller_config):
    clock = FakeClock(datetime(2026, 1, 15, 22, 0, tzinfo=timezone.utc).timestamp())  # 23:00 in Warsaw
    async with running(make_controller_config(), clock) as (c, key), aiohttp.ClientSession() as s:
        await make_campaign(s, c, key, [{"kind": "call", "attempts": 2}])
        app = FakeAppliance(s, c.url, await enroll(s, c, "box-01"), clock=clock)
        await app.connect()
        with pytest.raises(TimeoutError):
            await app.expect("jobs", timeout=0.4)
        (refusal,) = await results(s, c, key)
        assert refusal["outcome"] == "refused_by_policy" and refusal["reason"] == "outside_calling_hours"
        assert refusal["detail"]["retry_at"] == datetime(2026, 1, 16, 7, 0, tzinfo=timezone.utc).timestamp()
        clock.advance(9 * 3600)  # 08:00 in Warsaw
        batch = await app.expect("jobs")
        (job,) = batch["jobs"]
        await app.ack(batch)
        await app.send({"type": "results", "results": [app.result(job, "no_answer", number_shown="+48690000007")]})
        await app.expect("results_ack")
        # the debtor texts back the number he was shown: matched, and STOP opts him out
        await app.send({"type": "inbound", "events": [
            {"id": "in-1", "kind": "sms", "from": "+48600100200", "to": "+48690000007", "text": "Rezygnuję!", "at": "2026-01-16T07:05:00Z"},
            {"id": "in-2", "kind": "call", "from": "+48600999999", "to": "+48690000007", "at": "2026-01-16T07:06:00Z"}]})
        ack = await app.expect("inbound_ack")
        assert ack["ids"] == ["in-1", "in-2"]
        async with s.get(f"{c.url}/v1/inbound", headers=auth(key)) as r:
            items = (await r.json())["items"]
        assert items[0]["contact_id"] == 1 and items[0]["campaign_id"] == "c1" and items[0]["opted_out"] is True
        assert items[1]["contact_id"] is None and items[1]["opted_out"] is False
        async with s.get(f"{c.url}/v1/optouts", headers=auth(key)) as r:
            assert [o["number"] for o in (await r.json())["items"]] == ["+48600100200"]
        clock.advance(3601)
        await asyncio.sleep(0.3)
        last = (await results(s, c, key))[-1]
        assert last["reason"] == "opted_out"
        ct = await contact(s, c, key, 1)
        assert ct["state"] == "done" and ct["outcome"] == "refused_by_policy:opted_out"
        async with s.get(f"{c.url}/v1/contacts/1/history", headers=auth(key)) as r:
            h = await r.json()
        assert [x["outcome"] for x in h["results"]] == ["refused_by_policy", "no_answer", "refused_by_policy"]
        assert [x["id"] for x in h["inbound"]] == ["in-1"]
        await app.close()


async def test_stranded_lease_goes_to_another_appliance_only_after_the_first_is_gone_long(tmp_path, make_controller_config):
    clock = FakeClock(T0)
    cfg = make_controller_config(dispatch={"stranded_after_seconds": 600.0})
    async with running(cfg, clock) as (c, key), aiohttp.ClientSession() as s:
        await make_campaign(s, c, key, [{"kind": "call"}])
        a = FakeAppliance(s, c.url, await enroll(s, c, "box-a"), "box-a", clock=clock)
        await a.connect()
        batch = await a.expect("jobs")
        (job,) = batch["jobs"]
        await a.ack(batch)
        await a.close()  # box-a dies holding the job
        await asyncio.sleep(0.1)
        b = FakeAppliance(s, c.url, await enroll(s, c, "box-b"), "box-b", clock=clock)
        await b.connect()
        clock.advance(cfg.dispatch.lease_seconds + 1)  # lease expired, but box-a was seen moments ago
        with pytest.raises(TimeoutError):
            await b.expect("jobs", timeout=0.5)
        clock.advance(600)  # box-a gone longer than stranded_after
        moved = await b.expect("jobs")
        assert [j["id"] for j in moved["jobs"]] == [job["id"]]
        await b.close()


async def test_pause_stops_dispatch_and_cancel_cancels_open_jobs(tmp_path, make_controller_config):
    clock = FakeClock(T0)
    async with running(make_controller_config(), clock) as (c, key), aiohttp.ClientSession() as s:
        contacts = [{"external_id": f"d{i}", "phones": [f"+4860010020{i}"]} for i in range(3)]
        await make_campaign(s, c, key, [{"kind": "call"}], contacts=contacts)
        async with s.post(f"{c.url}/v1/campaigns/c1/pause", headers=auth(key)) as r:
            assert r.status == 200
        app = FakeAppliance(s, c.url, await enroll(s, c, "box-01"), clock=clock)
        await app.connect(capacity=1)
        with pytest.raises(TimeoutError):
            await app.expect("jobs", timeout=0.4)
        async with s.post(f"{c.url}/v1/campaigns/c1/resume", headers=auth(key)) as r:
            assert r.status == 200
        batch = await app.expect("jobs")
        await app.ack(batch)
        async with s.post(f"{c.url}/v1/campaigns/c1/cancel", headers=auth(key)) as r:
            camp = await r.json()
        assert camp["state"] == "cancelled" and camp["contacts"]["done"] == 3
        cancel = await app.expect("cancel")
        assert cancel["ids"] == [j["id"] for j in batch["jobs"]]
        await app.close()


async def test_a_held_job_gets_its_lease_renewed_under_the_same_id_for_a_bounded_time(tmp_path, make_controller_config):
    """A job the appliance acknowledged and has not started (waiting for a SIM's pause or
    cap) is renewed with the same id when a third of its lease is left — not expired and
    re-minted every lease — for at most MAX_HOLD_LEASES leases."""
    from controller.dispatcher import MAX_HOLD_LEASES, RENEW_WHEN_LEFT

    clock = FakeClock(T0)
    cfg = make_controller_config()
    lease = cfg.dispatch.lease_seconds
    async with running(cfg, clock) as (c, key), aiohttp.ClientSession() as s:
        await make_campaign(s, c, key, [{"kind": "call", "attempts": 3}])
        app = FakeAppliance(s, c.url, await enroll(s, c, "box-01"), clock=clock)
        await app.connect()
        batch = await app.expect("jobs")
        (job,) = batch["jobs"]
        await app.ack(batch)
        with pytest.raises(TimeoutError):  # most of the lease left: nothing to renew
            await app.expect("jobs", timeout=0.4)
        deadlines = [job["deadline"]]
        while True:
            clock.advance(lease * (1 - RENEW_WHEN_LEFT) + 1)
            try:
                renewal = await app.expect("jobs", timeout=1.5)
            except TimeoutError:
                break
            (again,) = renewal["jobs"]
            assert again["id"] == job["id"] and again["deadline"] > deadlines[-1]
            deadlines.append(again["deadline"])
            await app.ack(renewal)
        assert len(deadlines) >= 3  # renewed more than once ...
        assert deadlines[-1] - deadlines[0] <= MAX_HOLD_LEASES * lease  # ... for a bounded time
        # Then the lease runs out (no renewal came before it): from here it is the expiry path's.
        assert clock() > deadlines[-1] - lease * RENEW_WHEN_LEFT
        assert (await contact(s, c, key, 1))["state"] == "in_flight"
        await app.close()
