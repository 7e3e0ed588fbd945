"""An appliance with several controllers listed (``[link] url = [...]``) finds the one that
answers, moves to another when its controller goes away, and its outbox is acknowledged
exactly once whichever controller receives it: every call the network saw has one result
in the fleet's store, none twice, none lost, and the outbox ends empty.

The controllers share one store (here one SQLite file, used by one controller at a time:
the first is stopped before the second starts, as when a controller host dies and its
standby takes over). Shipped calling hours with the debtors where it is daytime now; the
appliance on its fresh-install limits and lock rules."""
from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter

import aiohttp
import pytest
from controller_harness import enroll, make_config, running
from system_harness import Crm, appliance_config, controller_sections, daytime_zone, free_port, spread_contacts, wait_for

from appliance.config import ConfigError, parse_config
from appliance.runtime import Appliance
from modem_drivers.emulator import Timing

pytestmark = pytest.mark.bank(modems=4, sims_per_modem=1, timing=Timing.FAST, seed=23)

CONTACTS = 16


async def test_link_moves_to_the_next_controller_and_every_result_lands_once(tmp_path, bank) -> None:  # type: ignore[no-untyped-def]
    emu = bank.emu
    store = tmp_path / "controller.db"
    port_a, port_b = free_port(), free_port()

    def config(port: int):  # type: ignore[no-untyped-def]
        return make_config(store, controller={"listen": f"127.0.0.1:{port}"}, **controller_sections())

    ws = {p: f"ws://127.0.0.1:{p}/v1/link" for p in (port_a, port_b)}
    async with contextlib.AsyncExitStack() as stack:
        http = await stack.enter_async_context(aiohttp.ClientSession())
        first = contextlib.AsyncExitStack()
        c_a, key = await first.enter_async_context(running(config(port_a)))
        (tmp_path / "cred").write_text(await enroll(http, c_a, "box-01"))
        # B is listed first and is not up yet: the appliance must pass over it to A.
        cfg = appliance_config(tmp_path, bank.state, "", tmp_path / "cred")
        cfg["link"]["url"] = [ws[port_b], ws[port_a]]
        for shipped_default in ("limits", "lock", "retry"):
            cfg.pop(shipped_default)
        app = Appliance(parse_config(cfg), seed=5)
        await app.start()
        stack.push_async_callback(app.stop)
        link = app.link
        assert link is not None
        t0 = time.monotonic()
        await wait_for("the link to reach controller A past the dead B", lambda: link.connected.is_set(), 10)
        assert link.url == ws[port_a] and time.monotonic() - t0 < 5

        crm = Crm(http, c_a.url, key)
        status, camp = await crm.call("POST", "/v1/campaigns", json={
            "id": "fo", "name": "Failover", "start": True, "strategy": [{"kind": "call", "attempts": 1, "ring_seconds": 15}]})
        assert status == 201 and camp["rules"]["hours"] == ["08:00", "21:00"], camp  # shipped hours
        zone = daytime_zone()
        status, imported = await crm.call("POST", "/v1/campaigns/fo/contacts", json=spread_contacts(zone, CONTACTS))
        assert status == 200 and imported["created"] == CONTACTS, imported

        # A goes away while the campaign runs: some results are in, calls are still going.
        async def stored() -> int:
            return len(await crm.all_results("fo"))
        async with asyncio.timeout(60):
            while await stored() < 3:
                await asyncio.sleep(0.1)
        await first.aclose()
        await wait_for("the appliance to see its controller gone", lambda: not link.connected.is_set(), 10)
        calls_while_down = len(emu.network.calls)
        await asyncio.sleep(1.5)  # the appliance goes on with its queue; results wait in its outbox

        c_b, key_b = await stack.enter_async_context(running(config(port_b)))
        crm = Crm(http, c_b.url, key_b)
        await wait_for("the link to reach controller B", lambda: link.connected.is_set() and link.url == ws[port_b], 15)
        await crm.wait_campaign_done("fo", timeout=120)
        await wait_for("the outbox to be acknowledged",
                       lambda: not app.store.results_after(int(app.store.get_kv("link_results_acked", 0)), 1)[0], 10)

        results = await crm.all_results("fo")
        seqs = Counter(r["app_seq"] for r in results if r["appliance_id"] == "box-01")
        twice = sorted(s for s, n in seqs.items() if n > 1)
        assert not twice, f"outbox entries recorded twice: {twice}"
        acked = int(app.store.get_kv("link_results_acked", 0))
        assert sorted(seqs) == list(range(1, acked + 1)), "an outbox entry never reached the store"
        dialed = Counter(c.callee for c in emu.network.calls)
        called = Counter(r["callee"] for r in results if r["kind"] == "call")
        late = {c: (n, called[c]) for c, n in dialed.items() if n > called[c]}
        assert not late, f"calls the network saw without their result: {late}"
        assert len(emu.network.calls) > calls_while_down  # the appliance kept calling while no controller was up
        finals = {r["external_id"] for r in results if r["final"]}
        assert finals == {f"c{i}" for i in range(CONTACTS)}, finals


@pytest.mark.parametrize(("url", "expected"), [
    ('"http://c:8480/v1/link"', "is not a controller's link URL"),
    ('["ws://c1:8480/v1/link", "ws:///v1/link"]', "is not a controller's link URL"),
    ('["ws://c1:8480/v1/link", "ws://c1:8480/v1/link"]', "a controller is listed twice"),
])
def test_link_urls_are_checked_at_start(tmp_path, url: str, expected: str) -> None:  # type: ignore[no-untyped-def]
    from appliance.config import load_config

    path = tmp_path / "a.toml"
    path.write_text(f'[appliance]\nid = "a"\nlisten = ""\n[link]\nurl = {url}\n')
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert "[link] url" in str(err.value) and expected in str(err.value)


def test_one_url_or_a_list() -> None:
    base = {"appliance": {"id": "a", "listen": ""}, "modem": [{"id": "m1", "port": "/dev/ttyUSB0"}]}
    one = parse_config({**base, "link": {"url": "ws://c:1/v1/link"}})
    many = parse_config({**base, "link": {"url": ["ws://c:1/v1/link", "wss://d/v1/link"]}})
    assert one.link.urls == ("ws://c:1/v1/link",)
    assert many.link.urls == ("ws://c:1/v1/link", "wss://d/v1/link")
    assert parse_config(base).link.urls == ()  # standalone
