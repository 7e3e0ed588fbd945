"""The controller's overview page (``/overview/``): its own accounts and sign-in rules over
real HTTP (on both store backends), its CLI, and — in Debian's Chromium driven by
Playwright — a user signing in to a live controller with an appliance on the emulator,
seeing the appliance and a running campaign whose progress, outcome mix and ETA are the
API's report, and being refused without a session or without the CSRF token; screenshots
at 1280×900 and 390×844 go to the test's tmp dir and build/screenshots/."""
from __future__ import annotations

import asyncio
import json
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from controller_harness import FakeClock, enroll, make_config, running
from system_harness import (
    Crm,
    appliance_config,
    controller_sections,
    daytime_zone,
    toml_text,
)

from appliance.config import parse_config
from appliance.runtime import Appliance
from controller.cli import controller as controller_cli
from controller.overview import BASE, COOKIE, overview_accounts
from controller.store import Store
from modem_drivers.emulator import Timing
from simrotor.demo import sample_contacts
from tests.test_appliance_page import ARGS, CHROMIUM
from tests.test_appliance_signin import Browser, another_token, cookies_of
from tests.sse_reader import events as sse_events

USER, PASSWORD = "anna", "control-room-7"
#: Contacts of the browser test's campaign: more than two modems finish while the test looks.
CONTACTS = 120
#: Each SIM starts a call at most every 4 s (the shipped pace is 10 s start to start): the
#: emulator's fast calls would end the campaign before the test has looked at it.
PACE = {"min_pause_seconds": 4.0}
SCREENSHOTS = Path(__file__).resolve().parent.parent / "build" / "screenshots"


async def test_overview_needs_its_own_accounts_a_session_and_csrf(controller, http, clock) -> None:  # type: ignore[no-untyped-def]
    c, key = controller
    b = Browser(http, c.url + BASE)

    # Without a session: the page sends a browser to the form, the rest is refused; /healthz answers.
    r, _ = await b.request("GET", "/")
    assert r.status == 303 and r.headers["Location"] == BASE + "/signin"
    r, _ = await b.request("GET", "")
    assert r.status == 303 and r.headers["Location"] == BASE + "/"
    for path in ("/overview.json", "/events.stream"):
        r, text = await b.request("GET", path)
        assert r.status == 401 and r.content_type == "application/problem+json", (path, text)
        assert json.loads(text)["code"] == "unauthorized"
    async with http.get(c.url + "/healthz") as r:
        assert r.status == 200
    # No account yet: the form says how to make one.
    r, text = await b.request("GET", "/signin")
    assert r.status == 200 and "No user account exists yet" in text and "simrotor controller user add NAME" in text
    # The CRM's API key is no page account.
    r, _ = await b.request("GET", "/overview.json", headers={"Authorization": f"Bearer {key}"})
    assert r.status == 401

    accounts = overview_accounts(c.store, clock)
    accounts.add("anna", PASSWORD)
    accounts.add("olek", PASSWORD)
    row = c.store._one("SELECT password_hash FROM overview_users WHERE name = 'anna'")
    assert row is not None and row["password_hash"].startswith("$argon2id$") and PASSWORD not in row["password_hash"]
    # Lockout with backoff: five wrong passwords, then 30 s, then 60 s.
    for _ in range(5):
        assert (await b.sign_in("anna", "wrong-password")).status == 401
    r = await b.sign_in("anna", "wrong-password")
    assert r.status == 429 and r.headers["Retry-After"] == "30"
    r = await b.sign_in("anna", PASSWORD)
    assert r.status == 429 and COOKIE not in b.jar
    clock.advance(31)  # the page's lockout runs on the controller's clock
    r = await b.sign_in("anna", "wrong-again")
    assert r.status == 429 and r.headers["Retry-After"] == "60"

    # Another account signs in: the cookie's flags, the page, its document.
    r = await b.sign_in("olek", PASSWORD)
    assert r.status == 303 and r.headers["Location"] == BASE + "/"
    flags = cookies_of(r)[COOKIE][COOKIE]
    assert flags["httponly"] and flags["samesite"] == "Strict" and not flags["secure"] and flags["path"] == BASE
    r, html = await b.request("GET", "/")
    assert r.status == 200 and "simrotor overview" in html and "olek" in html
    csrf = html.split('name="csrf" value="', 1)[1].split('"', 1)[0]
    r, text = await b.request("GET", "/overview.json")
    assert r.status == 200 and json.loads(text)["appliances"] == []

    # Sign-out is an action: refused without this session's CSRF token, then the cookie is worth nothing.
    old = b.jar[COOKIE]
    for data in ({}, {"csrf": another_token(csrf)}):
        r, text = await b.request("POST", "/signout", data=data)
        assert r.status == 403 and json.loads(text)["code"] == "csrf"
    r, _ = await b.request("GET", "/overview.json")
    assert r.status == 200  # still signed in
    r, _ = await b.request("POST", "/signout", data={"csrf": csrf})
    assert r.status == 303 and r.headers["Location"] == BASE + "/signin" and COOKIE not in b.jar
    b.jar[COOKIE] = old
    r, _ = await b.request("GET", "/overview.json")
    assert r.status == 401

    # Over TLS (a proxy saying so) the cookie is Secure; removing the account ends its
    # session, and its open live stream says so.
    b.jar.clear()
    r = await b.sign_in("olek", PASSWORD, headers={"X-Forwarded-Proto": "https"})
    assert r.status == 303 and cookies_of(r)[COOKIE][COOKIE]["secure"]
    b.jar[COOKIE] = cookies_of(r)[COOKIE][COOKIE].value
    assert (await b.request("GET", "/overview.json"))[0].status == 200
    async with http.get(c.url + BASE + "/events.stream", headers={"Cookie": f"{COOKIE}={b.jar[COOKIE]}"}) as r:
        assert r.status == 200 and r.content_type == "text/event-stream"
        events = sse_events(r.content)
        name, data = await asyncio.wait_for(anext(events), 10)
        assert name == "panels" and 'id="appliances"' in data and "No appliance has enrolled yet" in data
        accounts.remove("olek")
        name, _ = await asyncio.wait_for(anext(events), 10)  # the stream looks at the session every 2 s
        assert name == "signedout"
    assert (await b.request("GET", "/overview.json"))[0].status == 401


def test_controller_user_cli_adds_lists_and_removes(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """``simrotor controller user add|list|remove`` mirrors ``appliance user``; the
    results are checked through the accounts' API (a hash that verifies), not the output."""
    cfg = tmp_path / "controller.toml"
    cfg.write_text(toml_text({"controller": {"listen": "127.0.0.1:0", "store": str(tmp_path / "c.db")}}))
    run = CliRunner().invoke
    r = run(controller_cli, ["user", "add", "anna", "--config", str(cfg), "--password-stdin", "--json"],
            input=PASSWORD + "\n")
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["name"] == "anna"
    r = run(controller_cli, ["user", "add", "olek", "--config", str(cfg)], input="olek-pass-1\nolek-pass-1\n")
    assert r.exit_code == 0, r.output
    r = run(controller_cli, ["user", "add", "anna", "--config", str(cfg), "--password-stdin"], input=PASSWORD + "\n")
    assert r.exit_code == 1 and "--replace" in r.output
    r = run(controller_cli, ["user", "add", "Bad Name", "--config", str(cfg), "--password-stdin"], input=PASSWORD + "\n")
    assert r.exit_code == 1 and "lower-case" in r.output
    r = run(controller_cli, ["user", "add", "ewa", "--config", str(cfg), "--password-stdin"], input="short\n")
    assert r.exit_code == 1 and "at least 8" in r.output
    r = run(controller_cli, ["user", "list", "--config", str(cfg), "--json"])
    assert r.exit_code == 0 and [u["name"] for u in json.loads(r.output)["users"]] == ["anna", "olek"]

    store = Store(str(tmp_path / "c.db"))
    try:
        accounts = overview_accounts(store)
        assert asyncio.run(accounts.verify("anna", PASSWORD)).name == "anna"
        assert asyncio.run(accounts.verify("olek", "olek-pass-1")).name == "olek"
        assert asyncio.run(accounts.verify("anna", "olek-pass-1")) is None
        # The CRM's API keys are another table: a key is no page account, nor a page account a key.
        assert store.list_api_keys() == []
    finally:
        store.close()

    r = run(controller_cli, ["user", "remove", "olek", "--config", str(cfg), "--json"])
    assert r.exit_code == 0 and json.loads(r.output) == {"removed": "olek"}
    r = run(controller_cli, ["user", "remove", "olek", "--config", str(cfg)])
    assert r.exit_code == 1 and "no user 'olek'" in r.output
    r = run(controller_cli, ["user", "list", "--config", str(cfg)])
    assert r.exit_code == 0 and r.output.startswith("anna\tpassword set ")


class FreezableClock(FakeClock):
    """The controller's clock, which the test may stop for a moment: the page and the API
    then report on the same ``now`` and must say the same thing."""

    def __init__(self) -> None:
        super().__init__()
        self.frozen: float | None = None

    def __call__(self) -> float:
        return self.frozen if self.frozen is not None else super().__call__()

    def freeze(self) -> float:
        self.frozen = float(int(super().__call__()) + 1)  # a whole second ahead: ISO times end in :SS
        return self.frozen

    def thaw(self) -> None:
        self.frozen = None


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


async def _card_figures(page: Any, cid: str) -> dict[str, Any]:
    card = page.locator(f"article.campaign[data-campaign='{cid}']")
    fig = {key: await card.locator(f"[data-{key}]").get_attribute(f"data-{key}")
           for key in ("done", "waiting", "in-flight")}
    legend = card.locator("li[data-outcome]")
    return {
        "generated": await card.get_attribute("data-generated"), "state": await card.get_attribute("data-state"),
        "contacts": {"done": int(fig["done"]), "waiting": int(fig["waiting"]), "in_flight": int(fig["in-flight"]),
                     "total": int(await card.get_attribute("data-total"))},
        "progress": int(await card.locator(".progress").get_attribute("aria-valuenow")),
        "eta": await card.locator("time[data-eta]").get_attribute("data-eta") or None,
        "outcomes": {await li.get_attribute("data-outcome"): int(await li.get_attribute("data-n"))
                     for li in await legend.all()},
    }


async def _sign_in(page: Any, base: str) -> None:
    await page.goto(base + "/")
    assert page.url == base + "/signin"  # no session: the form
    await page.fill("#name", USER)
    await page.fill("#password", PASSWORD)
    await page.click("#signin button[type=submit]")
    await page.wait_for_url(base + "/")


async def _screenshot(page: Any, tmp_path: Path, name: str) -> None:
    await page.screenshot(path=str(tmp_path / name))
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(tmp_path / name, SCREENSHOTS / name)


@pytest.mark.bank(modems=2, vendors=("huawei",), timing=Timing.FAST, seed=3)
async def test_overview_page_in_chromium_matches_the_api(tmp_path, bank, http) -> None:  # type: ignore[no-untyped-def]
    """A user signs in on a desktop and on a phone; the appliance is up with its version,
    channels and usable SIMs as the fleet API has them; a running campaign's progress,
    outcome mix and ETA are its report's at the same instant; the page moves on by itself
    (server-sent events); without a session or a CSRF token the page refuses."""
    from playwright.async_api import async_playwright

    clock = FreezableClock()
    async with running(make_config(tmp_path / "c.db", **controller_sections()), clock) as (c, key):
        crm = Crm(http, c.url, key)
        (tmp_path / "cred").write_text(await enroll(http, c, "box-01"))
        def appliance(seed: int) -> Appliance:  # a process of the appliance on one store
            return Appliance(parse_config(appliance_config(tmp_path, bank.state, c.url.replace("http", "ws") + "/v1/link",
                                                           tmp_path / "cred", limits=PACE)), seed=seed)

        app = appliance(1)
        await app.start()
        try:
            overview_accounts(c.store, clock).add(USER, PASSWORD)
            cid = "overdue-dec"
            status, body = await crm.call("POST", "/v1/campaigns", json={
                "id": cid, "name": "Overdue December", "start": True, "strategy": [{"kind": "call", "attempts": 1}]})
            assert status == 201, body
            zone = daytime_zone()  # shipped calling hours: the debtors live where it is day now
            people = [{**p, "time_zone": zone} for p in sample_contacts(CONTACTS)]
            status, body = await crm.call("POST", f"/v1/campaigns/{cid}/contacts", json=people)
            assert status == 200 and body["created"] == CONTACTS, body
            base = c.url + BASE
            async with async_playwright() as pw:
                browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
                try:
                    desk = await browser.new_context(viewport={"width": 1280, "height": 900})
                    page = await desk.new_page()
                    await _sign_in(page, base)
                    assert await page.locator("#who").text_content() == USER

                    # The appliance: link up, and what the fleet API knows of it.
                    card = page.locator("article.appliance[data-appliance='box-01'][data-link='up']")
                    await card.wait_for(timeout=20000)
                    status, fleet = await crm.call("GET", "/v1/appliances/box-01")
                    assert status == 200
                    usable = sum(1 for s in fleet["sims"] if s["state"] in ("ready", "busy", "paused"))
                    assert usable > 0
                    assert await card.locator("[data-version]").get_attribute("data-version") == fleet["version"]
                    assert int(await card.locator("[data-channels]").get_attribute("data-channels")) == fleet["channels"]
                    assert int(await card.locator("[data-sims-usable]").get_attribute("data-sims-usable")) == usable

                    # The campaign runs: once some contacts are done, the page and the report agree.
                    await page.wait_for_function(
                        f"() => +(document.querySelector(\"article[data-campaign='{cid}'] [data-done]\")"
                        "?.dataset.done || 0) >= 3", timeout=60000)
                    # Results land all the time; a page and a report read a moment apart may
                    # differ by one. The appliance stops (its link with it) so none lands while
                    # they are compared; the campaign stays running, and a new appliance process
                    # on the same store takes it on afterwards.
                    await app.stop()
                    for _ in range(12):
                        at = _iso(clock.freeze())
                        try:
                            await page.wait_for_selector(f"article[data-campaign='{cid}'][data-generated='{at}']",
                                                         timeout=10000)
                            shown = await _card_figures(page, cid)
                            status, report = await crm.call("GET", f"/v1/campaigns/{cid}/report")
                        finally:
                            clock.thaw()
                        assert status == 200 and report["generated_at"] == at
                        if {k: report["contacts"][k] for k in shown["contacts"]} == shown["contacts"]:
                            break  # no result came in between the page's read and the API's
                    else:
                        raise AssertionError("the page and the report never read the same contacts")
                    mix: dict[str, int] = {}
                    for step in report["steps"]:
                        for outcome, n in step["outcomes"].items():
                            mix[outcome] = mix.get(outcome, 0) + n
                    assert shown["state"] == report["state"] == "running", (mix, report["contacts"], report["eta"])
                    assert 0 < shown["contacts"]["done"] < CONTACTS and shown["contacts"]["total"] == CONTACTS
                    assert shown["progress"] == round(100 * report["contacts"]["done"] / CONTACTS)
                    assert shown["eta"] == report["eta"]["at"] and shown["eta"] is not None
                    assert shown["outcomes"] == mix and sum(mix.values()) > 0
                    print(json.dumps({"compared_at": at, "done": shown["contacts"]["done"], "eta": shown["eta"],
                                      "basis": report["eta"]["basis"]}))

                    app = appliance(2)
                    await app.start()
                    # Live: the page moves on by itself, without a reload.
                    done = shown["contacts"]["done"]
                    await page.wait_for_function(
                        f"() => +document.querySelector(\"article[data-campaign='{cid}'] [data-done]\").dataset.done"
                        f" > {done}", timeout=60000)
                    assert (await page.locator("#live").text_content()).startswith("Live: updated")
                    await _screenshot(page, tmp_path, "overview-1280x900.png")

                    # Refused without the CSRF token: signing out needs it, the session lives on.
                    answer = await page.evaluate(f"""async () => {{
                        const r = await fetch("{base}/signout", {{method: "POST", body: new URLSearchParams({{}})}});
                        return [r.status, (await r.json()).code]; }}""")
                    assert answer == [403, "csrf"]
                    assert (await page.request.get(base + "/overview.json")).status == 200

                    # A phone: cards in one column, nothing wider than the screen.
                    phone = await browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True,
                                                      has_touch=True, device_scale_factor=2)
                    small = await phone.new_page()
                    # Refused without a session: the document, the stream, the page itself.
                    for path in ("/overview.json", "/events.stream"):
                        r = await small.request.get(base + path)
                        assert r.status == 401 and (await r.json())["code"] == "unauthorized"
                    await _sign_in(small, base)
                    await small.locator(f"article[data-campaign='{cid}']").wait_for()
                    await small.locator("article.appliance[data-appliance='box-01']").wait_for()
                    assert await small.evaluate("document.documentElement.scrollWidth") <= 390
                    boxes = [await small.locator(sel).bounding_box() for sel in
                             ("article.appliance[data-appliance='box-01']", f"article[data-campaign='{cid}']")]
                    assert all(b is not None and b["width"] <= 390 - 16 for b in boxes), boxes
                    await _screenshot(small, tmp_path, "overview-390x844.png")

                    # Signing out with the button ends the session: back to the form.
                    await page.click("#signout")
                    await page.wait_for_url(base + "/signin")
                    assert (await page.request.get(base + "/overview.json")).status == 401
                finally:
                    await browser.close()
        finally:
            await app.stop()


async def test_overview_document_reads_fleet_health_and_the_reports(controller, crm, http, clock) -> None:  # type: ignore[no-untyped-def]
    """The document the cards are drawn from, straight from the store: an appliance's link
    (up, quiet after 30 s without a heartbeat, down), busy channels and usable SIMs by the
    states of its hello; campaigns as their reports say, an ended one gone after a day."""
    from controller.overview.view import overview
    from controller.reporting import campaign_report_async

    c, _ = controller
    await enroll(http, c, "box-7")
    states = ["ready", "paused", "busy", "quarantined", "locked", "capped", "not_in_rotation"]
    now = clock()
    c.store.appliance_hello("box-7", {"version": "9.9.9", "channels": 4, "idle": 1, "capacity": 8, "sims": [
        {"sim_id": f"8948{i:015d}", "state": s, "channel_id": f"m{i}"} for i, s in enumerate(states)]}, now)
    [box] = (await overview(c.store, now))["appliances"]
    assert box["link"] == "up" and box["version"] == "9.9.9" and box["seen_seconds_ago"] == 0
    assert (box["channels"], box["busy"], box["sims"], box["sims_usable"], box["jobs_in_flight"]) == (4, 3, 7, 3, 0)
    assert box["sims_by_state"] == dict.fromkeys(sorted(states), 1)
    [box] = (await overview(c.store, now + 31))["appliances"]
    assert box["link"] == "quiet" and box["seen_seconds_ago"] == 31
    c.store.appliance_disconnected("box-7", now + 40)
    assert (await overview(c.store, now + 41))["appliances"][0]["link"] == "down"

    for cid in ("live", "gone"):
        status, body = await crm.call("POST", "/v1/campaigns", json={
            "id": cid, "name": cid, "start": True, "strategy": [{"kind": "call", "attempts": 1}]})
        assert status == 201, body
        status, body = await crm.call("POST", f"/v1/campaigns/{cid}/contacts", json=[
            {"external_id": f"{cid}-{i}", "phones": [f"+4860000{i:04d}"], "time_zone": daytime_zone()} for i in range(3)])
        assert status == 200, body
    assert (await crm.call("POST", "/v1/campaigns/gone/cancel"))[0] == 200
    now = clock()
    doc = await overview(c.store, now)
    assert [x["id"] for x in doc["campaigns"]] == ["live", "gone"]  # running first, then ended
    live = doc["campaigns"][0]
    report = await campaign_report_async(c.store, c.store.get_campaign("live"), now)
    assert live["contacts"] == report["contacts"] and live["eta"] == report["eta"]
    assert live["state"] == "running" and live["contacts"]["total"] == 3
    assert live["progress"] == round(report["contacts"]["done"] / 3, 4)
    assert [x["id"] for x in (await overview(c.store, now + 2 * 86400))["campaigns"]] == ["live"]


async def test_board_hands_out_the_last_document_while_it_reads_the_next(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Open pages share one read per refresh; a stale document is handed out at once (a big
    campaign's report takes seconds) while the next read runs, then the new one."""
    from controller.overview.view import Board

    store = Store(str(tmp_path / "c.db"))
    try:
        now = [1_000_000.0]
        board = Board(store, lambda: now[0], refresh=0.05)
        first = await board.document()
        assert first["generated_at"] == _iso(1_000_000) and await board.document() is first
        now[0] += 60
        await asyncio.sleep(0.06)
        assert await board.document() is first  # stale, handed out; the next read has begun
        async with asyncio.timeout(5):
            while (doc := await board.document()) is first:
                await asyncio.sleep(0.01)
        assert doc["generated_at"] == _iso(1_000_060)
        await board.close()
    finally:
        store.close()
