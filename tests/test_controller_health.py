"""The controller's /healthz (no key: the database and the link) and /metrics (an API key:
Prometheus text), over real HTTP with a fake appliance on a real link and the movable clock:
latency by route template (never an id or a path), jobs by state, appliances connected,
import rows, lease expiries, webhook deliveries."""
from __future__ import annotations

import asyncio
import sqlite3

import pytest
from controller_harness import FakeAppliance, enroll
from prometheus_client.parser import text_string_to_metric_families

pytestmark = pytest.mark.controller(dispatch=False)

CALL = [{"kind": "call"}]


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def scrape(http, c, key) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    async with http.get(f"{c.url}/metrics", headers=auth(key)) as r:
        assert r.status == 200 and r.content_type == "text/plain", r.content_type
        text = await r.text()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for fam in text_string_to_metric_families(text) for s in fam.samples}


def value(samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_healthz_answers_without_a_key_and_reports_the_database_and_the_link(controller, http, monkeypatch):
    c, _ = controller
    async with http.get(f"{c.url}/healthz") as r:
        body = await r.json()
    assert r.status == 200 and body["status"] == "ok" and body["database"]["ok"] is True
    assert body["link"] == {"appliances_connected": 0, "appliances_enrolled": 0}
    box = FakeAppliance(http, c.url, await enroll(http, c, "box-01"))
    await box.connect()
    try:
        async with asyncio.timeout(5):  # until the controller has read the hello
            while c.connected() == 0:
                await asyncio.sleep(0.01)
        async with http.get(f"{c.url}/healthz") as r:
            assert (await r.json())["link"] == {"appliances_connected": 1, "appliances_enrolled": 1}
    finally:
        await box.close()

    def broken() -> int:
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(c.store, "ping", broken)
    async with http.get(f"{c.url}/healthz") as r:
        body = await r.json()
    assert r.status == 503 and body["status"] == "failing" and "disk I/O error" in body["database"]["error"]


async def test_metrics_need_an_api_key(controller, http):
    c, _ = controller
    async with http.get(f"{c.url}/metrics") as r:
        assert r.status == 401 and (await r.json(content_type=None))["code"] == "unauthorized"
    async with http.get(f"{c.url}/metrics", headers=auth("sr_wrong")) as r:
        assert r.status == 401


async def test_metrics_count_requests_by_template_jobs_imports_links_and_expired_leases(controller, http):
    c, key = controller
    for cid in ("jan", "feb"):
        async with http.post(f"{c.url}/v1/campaigns", json={"id": cid, "strategy": CALL, "start": True,
                                                             "rules": {"hours": ["00:00", "23:59"]}}, headers=auth(key)) as r:
            assert r.status == 201
        async with http.get(f"{c.url}/v1/campaigns/{cid}", headers=auth(key)) as r:
            assert r.status == 200
    async with http.get(f"{c.url}/v1/zz-no-route-4711", headers=auth(key)) as r:
        assert r.status == 404
    people = [{"external_id": "a", "phones": ["+48600100200"]}, {"external_id": "b", "phones": ["+48600100201"]}]
    async with http.post(f"{c.url}/v1/campaigns/jan/contacts", json=[*people, {"external_id": "c", "phones": ["1"]}],
                         headers=auth(key)) as r:
        assert r.status == 422
    async with http.post(f"{c.url}/v1/campaigns/jan/contacts", json=people, headers=auth(key)) as r:
        assert r.status == 200
    box = FakeAppliance(http, c.url, await enroll(http, c, "box-01"))
    await box.connect(capacity=4)
    try:
        async with asyncio.timeout(5):  # until the controller has read the hello
            while c.connected() == 0:
                await asyncio.sleep(0.01)
        assert (await c.dispatch_once())["planned"] == 2
        m = await scrape(http, c, key)
        assert value(m, "simrotor_jobs", state="leased") == 2 and value(m, "simrotor_jobs", state="started") == 0
        assert value(m, "simrotor_appliances_connected") == 1 and value(m, "simrotor_appliances_enrolled") == 1
        assert value(m, "simrotor_import_rows_total", outcome="stored") == 2
        assert value(m, "simrotor_import_rows_total", outcome="refused") == 3
        assert value(m, "simrotor_contacts", state="in_flight") == 2
        assert value(m, "simrotor_campaigns", state="running") == 2
        assert value(m, "simrotor_webhook_deliveries_total", result="failed") == 0
        assert value(m, "simrotor_lease_expiries_total") == 0
        count = "simrotor_api_request_duration_seconds_count"
        assert value(m, count, method="GET", route="/v1/campaigns/{id}", status="2xx") == 2
        assert value(m, count, method="POST", route="/v1/campaigns", status="2xx") == 2
        assert value(m, count, method="POST", route="/v1/campaigns/{id}/contacts", status="4xx") == 1
        assert value(m, count, method="GET", route="unmatched", status="4xx") == 1
        routes = {dict(labels).get("route") for (name, labels) in m if name == count}
        assert not any(r and ("jan" in r or "feb" in r or "4711" in r) for r in routes), routes  # templates only
        # the appliance never acknowledges: past the lease, the jobs are leased again
        await box.expect("jobs")
        c.clock.advance(31)
        assert (await c.dispatch_once())["released"] == 2
        m = await scrape(http, c, key)
        assert value(m, "simrotor_lease_expiries_total") == 2
    finally:
        await box.close()
