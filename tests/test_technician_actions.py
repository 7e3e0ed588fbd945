"""The technician's drain and bring-back of a modem over real HTTP with a session (an
Appliance on an emulated bank): a drain lets the call on the modem end as it would have,
places nothing new on it, then stops it (its port closed: the test opens it itself); a
bring-back opens it again and it takes calls; both are refused with reasons when they
make no sense, refused without a CSRF token (nothing changes on the modem), and stand
in the events with the technician's name."""
from __future__ import annotations

import json
import re
from typing import Any

import pytest

from appliance.technician import technician_accounts
from modem_drivers.emulator import Timing
from modem_drivers.modem import Modem
from tests.test_appliance_modem_control import (
    Api,
    control_config,
    hold_call,
    short_calls,
)
from tests.test_appliance_signin import PASSWORD, Browser

pytestmark = pytest.mark.bank(modems=2, sims_per_modem=1, timing=Timing.FAST, seed=11)


@pytest.fixture
def appliance_config(tmp_path, bank) -> dict[str, Any]:
    return control_config(tmp_path, bank, "drain")


async def test_drain_lets_the_call_end_then_stops_and_bring_back_reopens(appliance, http, bank) -> None:
    api = Api(http, appliance.address)
    technician_accounts(appliance.store.conn).add("jan", PASSWORD)
    b = Browser(http, appliance.address)
    assert (await b.sign_in("jan", PASSWORD)).status == 303
    _, html = await b.request("GET", "/")
    csrf = re.search(r'<meta name="csrf-token" content="([^"]+)">', html).group(1)

    async def act(name: str, body: dict, csrf_token: str | None = csrf) -> tuple[int, dict]:
        headers = {"X-CSRF-Token": csrf_token} if csrf_token else {}
        r, text = await b.request("POST", f"/actions/{name}", json=body, headers=headers)
        return r.status, json.loads(text) if text.startswith("{") else {"text": text}

    async def state(cid: str) -> str:
        return (await api.channel(cid))["state"]

    status, _ = await api.call("POST", "/api/jobs", {"jobs": [hold_call("hold-1", 1, 2.0)]})
    assert status == 200
    busy = await api.holding("hold-1")
    other = next(c for c in appliance.bank.channels if c != busy)

    # Without a CSRF token: refused, the modem keeps its call and nothing is pending.
    status, _ = await act("drain", {"channel": busy}, csrf_token=None)
    assert status == 403
    assert appliance.bank.channels[busy].pending is None

    status, answer = await act("drain", {"channel": busy})
    assert status == 200, answer
    assert "draining" in answer["message"] and "job hold-1" in answer["message"]
    view = await api.channel(busy)
    assert view["state"] == "busy" and view["pending"] == "stop"
    status, answer = await act("drain", {"channel": busy})
    assert status == 409 and "already asked" in answer["detail"]
    status, answer = await act("bring_back", {"channel": busy})
    assert status == 409 and "draining" in answer["detail"]

    # New calls go to the other modem while the held one ends at its own 2 s limit.
    await api.call("POST", "/api/jobs", {"jobs": short_calls("during", 3)})
    done = await api.until("the call held on the draining modem to end", lambda: api.result("hold-1"), 30)
    assert done["outcome"] == "answered_human" and done["talk_seconds"] >= 1.5, done
    await api.until("the drained modem to stop", lambda: _is(api, busy, "stopped"))

    async def during_done() -> list[dict[str, Any]] | None:
        got = [r for r in await api.results() if r["job_id"].startswith("during-")]
        return got if len(got) == 3 else None
    during = await api.until("the other modem's calls", during_done, 30)
    assert {r["channel_id"] for r in during} == {other}

    # Stopped: its port is closed (the test can open it), a second drain is refused.
    probe = await Modem.open(appliance.bank.channels[busy].port, name="test", reconnect=False)
    await probe.close()
    status, answer = await act("drain", {"channel": busy})
    assert status == 409 and "stopped already" in answer["detail"]
    status, answer = await act("bring_back", {"channel": other})
    assert status == 409 and "only a stopped modem" in answer["detail"]

    status, answer = await act("bring_back", {"channel": busy})
    assert status == 200 and "coming back" in answer["message"]
    await api.until("the modem back idle", lambda: _is(api, busy, "idle"))
    assert await state(busy) == "idle"

    # Both stand in the events, in words, with the technician's name.
    _, text = await b.request("GET", "/status.json")
    said = [e["text"] for e in json.loads(text)["events"]]
    assert any(f"modem {busy} drain asked by jan" in t for t in said), said
    assert any(f"modem {busy} brought back by jan" in t for t in said), said


async def test_drain_of_an_idle_modem_stops_it_at_once(appliance, http) -> None:
    technician_accounts(appliance.store.conn).add("eva", PASSWORD)
    b = Browser(http, appliance.address)
    assert (await b.sign_in("eva", PASSWORD)).status == 303
    _, html = await b.request("GET", "/")
    csrf = re.search(r'<meta name="csrf-token" content="([^"]+)">', html).group(1)
    cid = next(iter(appliance.bank.channels))
    r, text = await b.request("POST", "/actions/drain", json={"channel": cid}, headers={"X-CSRF-Token": csrf})
    assert r.status == 200 and "stopped: no call was on it" in json.loads(text)["message"]
    assert appliance.bank.channels[cid].state.value == "stopped"
    r, text = await b.request("POST", "/actions/drain", json={"channel": "emu009"}, headers={"X-CSRF-Token": csrf})
    assert r.status == 404 and "no modem 'emu009'" in json.loads(text)["detail"]


async def _is(api: Api, cid: str, want: str) -> dict[str, Any] | None:
    view = await api.channel(cid)
    return view if view and view["state"] == want else None


async def test_drain_and_bring_back_buttons_in_chromium(appliance, bank) -> None:
    """The page's buttons: Drain on an idle modem (confirmed in its dialog) leaves it
    stopped with only Bring back offered; Bring back returns it to idle with Drain again."""
    from playwright.async_api import async_playwright

    from tests.test_appliance_page import ARGS, CHROMIUM, TECH, sign_in

    technician_accounts(appliance.store.conn).add(TECH, PASSWORD)
    cid = next(iter(appliance.bank.channels))
    row = f"tr[data-channel='{cid}']"
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = await browser.new_page()
            asked: list[str] = []

            async def confirm(dialog) -> None:
                asked.append(dialog.message)
                await dialog.accept()
            page.on("dialog", confirm)
            await sign_in(page, appliance.address)
            await page.click(f"{row} button[data-act='drain']")
            await page.wait_for_selector(f"{row} .state.stopped", timeout=15000)
            assert asked and asked[-1].startswith(f"Drain modem {cid}?")
            assert "stopped" in await page.locator("#notice").text_content()
            assert await page.locator(f"{row} button").all_text_contents() == ["Bring back"]
            assert appliance.bank.channels[cid].state.value == "stopped"
            await page.click(f"{row} button[data-act='bring_back']")
            await page.wait_for_selector(f"{row} .state.idle", timeout=15000)
            assert asked[-1].startswith(f"Bring modem {cid} back?")
            assert await page.locator(f"{row} button[data-act='drain']").count() == 1
        finally:
            await browser.close()


async def test_selftest_refusals_and_a_run_without_reference(appliance, http, bank) -> None:
    """The selftest action over HTTP: a bad reference number, an unknown slot, a busy
    modem and a second selftest on a modem under test are refused with their reason; one
    without a reference number checks registration, signal and balance only (no SMS or
    call reaches the emulator's network), holds the modem out of rotation while it runs,
    and stands in the events in words with the technician's name."""
    technician_accounts(appliance.store.conn).add("ola", PASSWORD)
    b = Browser(http, appliance.address)
    assert (await b.sign_in("ola", PASSWORD)).status == 303
    _, html = await b.request("GET", "/")
    csrf = re.search(r'<meta name="csrf-token" content="([^"]+)">', html).group(1)

    async def selftest(body: dict) -> tuple[int, dict]:
        r, text = await b.request("POST", "/actions/selftest", json=body, headers={"X-CSRF-Token": csrf})
        return r.status, json.loads(text)

    cid, other = list(appliance.bank.channels)
    status, answer = await selftest({"channel": cid, "slot": 0, "reference": "call-me"})
    assert status == 400 and answer["detail"].startswith("reference: ") and "not a phone number" in answer["detail"]
    status, answer = await selftest({"channel": cid, "slot": 3})
    assert status == 400 and "slots 0 to 0" in answer["detail"]
    api = Api(http, appliance.address)
    await api.call("POST", "/api/jobs", {"jobs": [hold_call("hold-st", 7, 2.0)]})
    busy = await api.holding("hold-st")
    status, answer = await selftest({"channel": busy, "slot": 0})
    assert status == 409 and "only when idle" in answer["detail"]
    idle = other if busy == cid else cid
    calls_before, sms_before = len(bank.emu.network.calls), len(bank.emu.network.sms)
    status, answer = await selftest({"channel": idle, "slot": 0, "reference": ""})
    assert status == 200 and "no reference number: no SMS, no call" in answer["message"], answer
    assert appliance.bank.channels[idle].job_id == "selftest by ola"  # out of rotation while it runs
    status, answer = await selftest({"channel": idle, "slot": 0})
    assert status == 409 and "running on it already" in answer["detail"]

    async def event() -> str | None:
        _, text = await b.request("GET", "/status.json")
        return next((e["text"] for e in json.loads(text)["events"] if e["kind"] == "selftest"), None)
    said = await api.until("the selftest's event", event, 30)
    assert f"({idle} slot 1) by ola: passed" in said and "registration ok" in said, said
    assert "sms not run (not sent: no --reference number)" in said, said
    assert len(bank.emu.network.sms) == sms_before
    assert not [c for c in bank.emu.network.calls[calls_before:] if c.modem_id == idle]
    await api.until("the tested modem idle again", lambda: _is(api, idle, "idle"))
