"""The whole system over HTTP: a CRM drives the controller's API; the controller
dispatches to an appliance over the fleet link; the appliance places the work on an
emulated bank (16 modems, 2 SIMs each). Import with bad rows, run, results pulled and
pushed to a webhook receiver with valid signatures, a callback matched, an opt-out
honoured."""
from __future__ import annotations

import asyncio
from collections import Counter

import pytest
from controller_harness import FakeClock, enroll, make_config
from system_harness import (
    appliance_config,
    clock_between,
    controller_sections,
    receiver,
)

from appliance.config import parse_config
from appliance.runtime import Appliance
from modem_drivers.emulator import Timing

STRATEGY = [
    {"kind": "hlr", "method": "sms_ping"},
    {"kind": "call", "attempts": 2, "ring_seconds": 15, "retry_after_seconds": 60},
    {"kind": "sms", "text": "Dzień dobry {name}, prosimy o wpłatę {amount} {currency}."},
]


def daytime_clock() -> FakeClock:
    """The controller's clock, at a daytime hour in Warsaw (this campaign's hours are
    00:00-23:59), movable forward to pass retry delays without sleeping."""
    return clock_between(1, 21)


def contacts_csv() -> tuple[str, dict[str, str]]:
    rows = ["external_id,phones,name,amount,currency,due_date"]
    behaviour_of = {}
    n = 0
    for b in (0, 2, 3, 5, 6):
        for op in range(4):
            for k in range(2):
                n += 1
                phone = f"+4860{op}{b}{n:05d}"
                rows.append(f"c{n},{phone},Klient {n},{100 + n}.50,PLN,2026-12-31")
                behaviour_of[f"c{n}"] = str(b)
    rows.append("bad1,12345,Zły numer,1,PLN,2026-12-31")          # line 42: bad phone
    rows.append("bad2,+48600000999,Zła data,1,PLN,31/12/2026")   # line 43: bad due date
    return "\n".join(rows) + "\n", behaviour_of


pytestmark = pytest.mark.bank(modems=16, sims_per_modem=2, timing=Timing.FAST, seed=5)


@pytest.fixture
def clock() -> FakeClock:
    """The controller's clock (``daytime_clock``)."""
    return daytime_clock()


@pytest.fixture
def controller_config(tmp_path):
    """The system tests' controller (system_harness.controller_sections)."""
    return make_config(tmp_path / "controller.db", **controller_sections())


@pytest.fixture
async def hooks(clock):
    """The CRM's webhook receiver, checking signatures on the controller's clock."""
    async with receiver(clock) as r:
        yield r


async def test_crm_to_modem_and_back(tmp_path, bank, hooks, controller, crm, clock):
    emu = bank.emu
    credential = await enroll(crm.s, controller.c, "box-01")
    (tmp_path / "cred").write_text(credential)
    link = controller.c.url.replace("http", "ws") + "/v1/link"
    app = Appliance(parse_config(appliance_config(tmp_path, bank.state, link, tmp_path / "cred")), seed=3)
    await app.start()
    try:
        status, hook = await crm.call("POST", "/v1/webhooks", json={"url": hooks.url, "events": ["result", "inbound"]})
        assert status == 201
        hooks.secret = hook["secret"]
        status, _ = await crm.call("POST", "/v1/campaigns", json={
            "id": "nov", "name": "November", "strategy": STRATEGY, "rules": {"hours": ["00:00", "23:59"]}})
        assert status == 201
        body, behaviour_of = contacts_csv()
        status, refused = await crm.call("POST", "/v1/campaigns/nov/contacts", data=body.encode(),
                                         headers={"Content-Type": "text/csv"})
        assert status == 422  # all or nothing: the two bad rows refuse the file
        assert refused["code"] == "invalid_rows" and refused["status"] == 422
        assert {(e["line"], e["field"]) for e in refused["errors"]} == {(42, "phones"), (43, "due_date")}
        body = "".join(line for line in body.splitlines(keepends=True) if not line.startswith("bad"))
        status, imported = await crm.call("POST", "/v1/campaigns/nov/contacts", data=body.encode(),
                                          headers={"Content-Type": "text/csv"})
        assert status == 200
        assert imported["created"] == 40 and imported["rejected"] == 0
        # created as a draft: imported whole, then started
        status, camp = await crm.call("POST", "/v1/campaigns/nov/start")
        assert status == 200 and camp["state"] == "running", camp

        # Let every contact get its first call result, then one debtor texts STOP.
        async with asyncio.timeout(60):
            while True:
                res = await crm.all_results("nov")
                if len([r for r in res if r.get("kind") == "call"]) >= 16:
                    break
                await asyncio.sleep(0.2)
        res = await crm.all_results("nov")
        no_answer = [r for r in res if r.get("kind") == "call" and r.get("outcome") == "no_answer"]
        assert no_answer, "a no-answer contact has had its first call"
        stopper = no_answer[0]
        await emu.inbound_sms(stopper["callee"], stopper["number_shown"], "STOP")
        async with asyncio.timeout(20):
            while True:
                status, outs = await crm.call("GET", "/v1/optouts")
                if any(o.get("number") == stopper["callee"] for o in outs["items"]):
                    break
                await asyncio.sleep(0.2)

        await crm.wait_campaign_done_moving("nov", clock, timeout=150)

        results = await crm.all_results("nov")
        # A callback: the answered debtor calls back the number he was shown. A SIM
        # in a modem's inactive slot is not registered (the network says "absent"),
        # so that SIM's slot is made active first, as a technician would.
        answered = next(r for r in results if r.get("outcome") == "answered_human")
        ch, slot = next((ch, sl) for ch in app.bank.channels.values() for sl in ch.sims.values()
                        if sl.info is not None and sl.info.msisdn == answered["number_shown"])
        async with asyncio.timeout(15):  # the bank may be busy switching on its own
            while ch.active_slot != slot.slot:
                if not await app.bank.switch(ch.id, slot.slot, reason="test: callback to this SIM"):
                    await asyncio.sleep(0.2)
        await emu.inbound_call(answered["callee"], answered["number_shown"], ring_seconds=0.5)
        async with asyncio.timeout(20):
            while True:
                status, inbound = await crm.call("GET", "/v1/inbound?after=0")
                items = inbound["items"]
                calls_in = [i for i in items if i.get("kind") == "call" and i.get("from") == answered["callee"]]
                if calls_in:
                    break
                await asyncio.sleep(0.2)
        assert calls_in[0].get("campaign_id", calls_in[0].get("campaign")) == "nov"
        assert calls_in[0].get("contact_id") or calls_in[0].get("contact")
        try:
            async with asyncio.timeout(30):  # webhooks: every result and the inbound events pushed, signed
                while len([e for e in hooks.events if e["event"] == "result"]) < len(results):
                    await asyncio.sleep(0.2)
        except TimeoutError:
            got = [e for e in hooks.events if e["event"] == "result"]
            print("HOOKS", len(got), len(results), got[:2], results[:2])
            status, dl = await crm.call("GET", "/v1/webhooks/dead-letters")
            print("DEAD", dl)
            raise
        assert hooks.bad_signatures == 0
    finally:
        await app.stop()

    finals = [r for r in results if r.get("final", True) is not False]
    by_contact: dict[str, list[dict]] = {}
    for r in results:
        by_contact.setdefault(str(r.get("contact_id") or r.get("contact")), []).append(r)
    assert len(by_contact) == 40
    # Outcomes follow the plan's behaviours and the strategy.
    for r in finals:
        b = r["callee"][6]
        if r.get("kind") == "hlr" and r.get("outcome") not in ("refused_by_policy",):
            assert r["outcome"] == {"0": "active", "2": "active", "3": "active", "5": "absent", "6": "invalid"}[b], r
        if r.get("kind") == "call" and r.get("outcome") not in ("refused_by_policy",):
            assert r["outcome"] == {"0": "answered_human", "2": "busy", "3": "no_answer", "5": "unreachable"}[b], r
    assert not any(r.get("kind") == "call" for r in results if r["callee"][6] == "6")  # HLR invalid: never called
    # The opted-out debtor: no call after his STOP, and a refusal recorded with its reason.
    calls_to_stopper = [c for c in emu.network.calls if c.callee == stopper["callee"]]
    assert len(calls_to_stopper) == 1
    assert any(r.get("outcome") == "refused_by_policy" and r.get("reason") == "opted_out"
               for r in results if r["callee"] == stopper["callee"])
    # Nobody was dialed more often than the strategy allows (2 call attempts).
    per_callee = Counter(c.callee for c in emu.network.calls)
    assert max(per_callee.values()) <= 2
