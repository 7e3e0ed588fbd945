"""The CRM's own key (``external_id``) wherever the CRM reads: a result in GET /v1/results,
a contact's history, an inbound event, both webhooks; contacts found by it across
campaigns or in one (GET /v1/contacts?external_id=); a version 2 store gains the column
with its old rows filled. A real controller, a scripted appliance on the link, a real
webhook receiver checking signatures."""
from __future__ import annotations

import asyncio
import json
import time

import aiohttp
from aiohttp import web
from controller_harness import FakeAppliance, FakeClock, RawDb, enroll, query_plan, running

from controller.store import schema
from controller.webhooks import verify

T0 = 1768471200.0  # 2026-01-15 10:00 UTC: inside the default calling hours in Warsaw


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def create_running(s: aiohttp.ClientSession, url: str, key: str, cid: str) -> None:
    """A campaign that dials: created, and started when it is created as a draft."""
    async with s.post(f"{url}/v1/campaigns", json={"id": cid, "strategy": [{"kind": "call"}]}, headers=auth(key)) as r:
        assert r.status == 201, await r.text()
        camp = await r.json()
    if camp["state"] == "draft":
        async with s.post(f"{url}/v1/campaigns/{cid}/start", headers=auth(key)) as r:
            assert r.status == 200, await r.text()


async def test_results_history_inbound_and_webhooks_carry_external_id(tmp_path, make_controller_config):
    clock = FakeClock(T0)
    seen: list[dict] = []
    secret = ["x" * 16]

    async def hook(request: web.Request) -> web.Response:
        body = await request.read()
        assert verify(secret[0], request.headers["X-Simrotor-Signature"], request.headers["X-Simrotor-Timestamp"],
                      body, now=clock())
        seen.append({"event": request.headers["X-Simrotor-Event"], **json.loads(body)})
        return web.Response(status=204)

    rx = web.Application()
    rx.router.add_post("/hook", hook)
    runner = web.AppRunner(rx)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    hook_url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}/hook"  # type: ignore[union-attr]
    cfg = make_controller_config(webhooks={"backoff_seconds": 0.2, "allow_private": True})
    try:
        async with running(cfg, clock) as (c, key), aiohttp.ClientSession() as s:
            async with s.post(f"{c.url}/v1/webhooks", json={"url": hook_url, "secret": secret[0]}, headers=auth(key)) as r:
                assert r.status == 201
            await create_running(s, c.url, key, "nov")
            async with s.post(f"{c.url}/v1/campaigns/nov/contacts", headers=auth(key),
                              json=[{"external_id": "CRM-0042", "phones": ["+48600100200"]}]) as r:
                assert r.status == 200
            app = FakeAppliance(s, c.url, await enroll(s, c, "box-01"), clock=clock)
            await app.connect()
            await app.reach_then_text_back("+48690000003", "zapłacę jutro", "in-1")

            async with s.get(f"{c.url}/v1/results?campaign_id=nov", headers=auth(key)) as r:
                results = (await r.json())["items"]
            assert [(x["contact_id"], x["external_id"]) for x in results] == [(1, "CRM-0042")]
            # campaign, the parameter's first name, is still read; campaign_id wins over it
            async with s.get(f"{c.url}/v1/results?campaign=nov", headers=auth(key)) as r:
                assert (await r.json())["items"] == results
            async with s.get(f"{c.url}/v1/results?campaign_id=other", headers=auth(key)) as r:
                assert (await r.json())["items"] == []
            async with s.get(f"{c.url}/v1/results?campaign_id=other&campaign=nov", headers=auth(key)) as r:
                assert (await r.json())["items"] == []
            async with s.get(f"{c.url}/v1/contacts/1/history", headers=auth(key)) as r:
                history = await r.json()
            assert [x["external_id"] for x in history["results"]] == ["CRM-0042"]
            assert [x["external_id"] for x in history["inbound"]] == ["CRM-0042"]
            async with s.get(f"{c.url}/v1/inbound", headers=auth(key)) as r:
                assert [x["external_id"] for x in (await r.json())["items"]] == ["CRM-0042"]
            async with asyncio.timeout(10):
                while len(seen) < 2:
                    await asyncio.sleep(0.05)
            assert sorted((e["event"], e["external_id"], e["contact_id"]) for e in seen) == [
                ("inbound", "CRM-0042", 1), ("result", "CRM-0042", 1)]
            # an inbound event from a number nobody was shown: no contact, no key
            await app.send({"type": "inbound", "events": [{"id": "in-2", "kind": "sms", "from": "+48600999888", "text": "?"}]})
            await app.expect("inbound_ack")
            async with s.get(f"{c.url}/v1/inbound?after=1", headers=auth(key)) as r:
                assert [(x["contact_id"], x["external_id"]) for x in (await r.json())["items"]] == [(None, None)]
            await app.close()
    finally:
        await runner.cleanup()


async def test_contacts_found_by_external_id_across_campaigns_and_in_one(tmp_path, make_controller_config):
    async with running(make_controller_config(), time.time, dispatch=False) as (c, key), \
            aiohttp.ClientSession() as s:
        for cid in ("oct", "nov"):
            await create_running(s, c.url, key, cid)
            async with s.post(f"{c.url}/v1/campaigns/{cid}/contacts", headers=auth(key),
                              json=[{"external_id": "D-1", "phones": ["+48600100200"], "name": f"Jan {cid}"},
                                    {"external_id": f"D-{cid}", "phones": ["+48600100201"]}]) as r:
                assert r.status == 200
        async with s.get(f"{c.url}/v1/contacts?external_id=D-1", headers=auth(key)) as r:
            both = await r.json()
        assert r.status == 200
        assert [(x["campaign_id"], x["external_id"], x["name"]) for x in both["items"]] == [
            ("oct", "D-1", "Jan oct"), ("nov", "D-1", "Jan nov")]
        async with s.get(f"{c.url}/v1/contacts?external_id=D-1&campaign_id=nov", headers=auth(key)) as r:
            one = (await r.json())["items"]
        assert [(x["campaign_id"], x["id"]) for x in one] == [("nov", both["items"][1]["id"])]
        # paged like every list: limit 1 then after the first page's next
        async with s.get(f"{c.url}/v1/contacts?external_id=D-1&limit=1", headers=auth(key)) as r:
            first = await r.json()
        async with s.get(f"{c.url}/v1/contacts?external_id=D-1&limit=1&after={first['next']}", headers=auth(key)) as r:
            second = await r.json()
        assert [x["campaign_id"] for x in first["items"] + second["items"]] == ["oct", "nov"]
        async with s.get(f"{c.url}/v1/contacts?external_id=nobody", headers=auth(key)) as r:
            assert r.status == 200 and (await r.json())["items"] == []
        for query, field in (("", "external_id"), ("?external_id=D-1&campaign_id=no%20such", "campaign_id")):
            async with s.get(f"{c.url}/v1/contacts{query}", headers=auth(key)) as r:
                problem = await r.json()
                assert r.status == 400 and field in str(problem), problem
        # the look-up is the index's, not a scan of every contact
        plan = query_plan(c.store, "SELECT * FROM contacts WHERE external_id = ? AND id > ? ORDER BY id LIMIT ?", ("D-1", 0, 10))
        assert "contacts_external" in plan, plan


def test_a_version_2_store_gets_external_id_on_its_old_results_and_inbound(store_url, open_store):
    base = "".join(schema.BASE)  # as version 2 left it: the tables without external_id on results and inbound
    for added, kept in (
            ("    external_id TEXT,                -- the contact's CRM key, copied at ingest (it never changes), version 3\n",
             ""),
            (("choice TEXT,                     -- an answered callback's menu choice, version 2\n"
              "    external_id TEXT                 -- the matched contact's CRM key, version 3"), "choice TEXT")):
        assert added in base
        base = base.replace(added, kept)
    raw = RawDb(store_url)
    raw.script(base + "INSERT INTO meta VALUES ('schema', '2');"
               " INSERT INTO campaigns VALUES ('nov', 'nov', 'done', '[{\"kind\": \"call\"}]', '{}', 0, 0);"
               " INSERT INTO contacts(campaign_id, external_id, phones, state, next_at, created_at, updated_at)"
               " VALUES ('nov', 'CRM-7', '[\"+48600100200\"]', 'done', 0, 0, 0);"
               " INSERT INTO results(dedupe, job_id, campaign_id, contact_id, outcome, final, at, body)"
               " VALUES ('a', 'nov.1.0.0', 'nov', (SELECT id FROM contacts), 'busy', 1, 0, '{}');"
               " INSERT INTO inbound(id, kind, from_number, at, contact_id)"
               " VALUES ('i1', 'sms', '+48600100200', 0, (SELECT id FROM contacts));")
    assert "external_id" not in raw.columns("results")
    raw.close()
    st = open_store()
    assert st.results_after(0, 10)[0]["external_id"] == "CRM-7"
    assert st.inbound_after(0, 10)[0]["external_id"] == "CRM-7"
    assert st.ping() == schema.SCHEMA_VERSION == 5  # version 3 added external_id, 4 dropped results_shown, 5: collation "C"
