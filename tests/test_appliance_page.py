"""The technician page in a real browser (Debian's Chromium driven by Playwright): a
technician signs in; channels appear with their states, a fault shows up by itself,
numbers are masked; every SIM of every slot is listed (a quarantined SIM in an inactive
slot with its reason); each action — quarantine, release, slot switch, reset — is
confirmed in a dialog and its effect is checked on the emulator's ground truth."""
from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import time
from pathlib import Path

import pytest

from appliance.config import parse_config
from appliance.runtime import Appliance
from appliance.technician import technician_accounts
from modem_drivers.emulator import Fault, Timing

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
TECH, PASSWORD = "tech", "rack-side-42"


class Forwarder:
    """A TCP relay between the browser and the appliance whose connections the test can
    cut (a dropped Wi-Fi, a proxy restart) and let through again."""

    def __init__(self, target: str) -> None:
        host, _, port = target.removeprefix("http://").rpartition(":")
        self.host, self.port_to = host, int(port)
        self.down = False
        self.links: set[asyncio.StreamWriter] = set()

    async def start(self) -> str:
        self.server = await asyncio.start_server(self._link, "127.0.0.1", 0)
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def _link(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.down:
            writer.transport.abort()
            return
        up_reader, up_writer = await asyncio.open_connection(self.host, self.port_to)
        self.links |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                dst.transport.abort()
                self.links.discard(dst)

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    def cut(self) -> None:
        self.down = True
        for w in list(self.links):
            w.transport.abort()

    def close(self) -> None:
        self.cut()
        self.server.close()


async def sign_in(page, base: str) -> None:
    """Through the form, as a technician does: the page sends him there first."""
    await page.goto(base + "/")
    assert page.url == base + "/signin"
    await page.fill("#name", TECH)
    await page.fill("#password", PASSWORD)
    await page.click("#signin button[type=submit]")
    await page.wait_for_url(base + "/")


@pytest.mark.bank(modems=4, timing=Timing.FAST, seed=2)
async def test_technician_page_shows_channels_and_faults(tmp_path, bank):
    from playwright.async_api import async_playwright

    emu = bank.emu
    app = Appliance(parse_config({
        "emulator_state": str(bank.state),
        "appliance": {"id": "box-page", "store": str(tmp_path / "a.db"), "listen": "127.0.0.1:0", "token": "t"},
        "supervision": {"reopen_backoff": [0.2, 1.0]},
    }))
    await app.start()
    technician_accounts(app.store.conn).add(TECH, PASSWORD)
    try:
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            relay = Forwarder(app.address)
            base = await relay.start()  # the browser reaches the page through a link the test can cut
            page = await browser.new_page()
            polls: list[str] = []
            page.on("request", lambda r: polls.append(r.url) if r.url.endswith("/status.json") else None)
            await sign_in(page, base)
            await page.wait_for_selector("tr[data-channel='emu003']")
            await page.wait_for_selector("#live.on")
            assert await page.locator("#appliance").text_content() == "box-page"
            assert await page.locator("#technician").text_content() == TECH
            assert await page.locator("#channels tbody tr").count() == 4
            states = await page.locator("#channels tbody tr .state").all_text_contents()
            assert states == ["idle"] * 4
            numbers = await page.locator("#channels tbody tr td:nth-child(7)").all_text_contents()
            assert all(re.fullmatch(r"\+?\*{6,}\d{3}", n) for n in numbers), numbers
            t0 = time.monotonic()
            await emu.inject("emu001", Fault.VANISH, seconds=30)
            await page.wait_for_selector("tr[data-channel='emu001'] .state.faulty", timeout=15000)
            print(json.dumps({"fault_to_page_seconds": round(time.monotonic() - t0, 3)}))  # a figure, not a test
            assert polls == []  # the page was updated by its event stream, not by polling status.json
            assert "port lost" in await page.locator("tr[data-channel='emu001']").text_content()
            # The fault is an event, in words.
            await page.wait_for_selector("#events tr[data-kind='channel']:has-text('modem emu001 out of service: port lost')",
                                         timeout=15000)
            # Why jobs wait is on the page: a job whose only SIM operator is required
            # and quarantined says so in a card.
            sims = [s.sim_id for ch, s in app.bank.sims() if s.info and s.info.mcc_mnc == "26001"]
            for sim_id in sims:
                app.policy.quarantine(sim_id, ("test",), time.time())
            app.scheduler.submit([{"id": "w", "kind": "sms", "callee": "+48601000001", "text": "x",
                                   "hints": {"operator": "26001", "require": ["operator"]}}])
            card = page.locator(".card[data-waiting='operator_sims_locked']")
            await card.wait_for(timeout=15000)
            assert "operator sims locked" in await card.text_content()
            await page.screenshot(path=str(tmp_path / "page.png"), full_page=True)
            # The connection drops: the page says so, and is live again once it is back.
            relay.cut()
            await page.wait_for_selector("#live.off:has-text('live updates lost')", timeout=15000)
            relay.down = False
            await page.wait_for_selector("#live.on", timeout=15000)
            # Signing out leaves nothing readable behind.
            await page.click("#signout")
            await page.wait_for_url(base + "/signin")
            answer = await page.request.get(base + "/status.json")
            assert answer.status == 401
            await browser.close()
            relay.close()
    finally:
        await app.stop()


async def until(what: str, check, timeout: float = 15.0) -> None:
    """Wait for the emulator (or the appliance) to show ``check()``; fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


@pytest.mark.bank(modems=2, sims_per_modem=2, timing=Timing.FAST, seed=4, vendors=("simcom", "quectel"))
async def test_technician_sees_every_sim_and_acts(tmp_path, bank):
    from playwright.async_api import async_playwright

    emu = bank.emu
    app = Appliance(parse_config({
        "emulator_state": str(bank.state),
        "appliance": {"id": "box-acts", "store": str(tmp_path / "a.db"), "listen": "127.0.0.1:0", "token": "t"},
        "limits": {"min_pause_seconds": 0.0, "pause_after_call": [0.0, 0.0]},
    }))
    await app.start()
    technician_accounts(app.store.conn).add(TECH, PASSWORD)
    base = app.address
    slot_sim = {(ch.id, s.slot): s for ch, s in app.bank.sims()}
    assert len(slot_sim) == 4 and all(ch.active_slot == 0 for ch in app.bank.channels.values())
    try:
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = await browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("dialog", lambda d: asyncio.ensure_future(
                d.accept("operator complaint") if d.type == "prompt" else d.accept()))
            await sign_in(page, base)

            # Every slot of every modem, the inactive ones too; ICCIDs and numbers masked.
            await page.wait_for_selector("tr[data-sim='emu001/1']")
            assert await page.locator("#sims tbody tr").count() == 4
            row = page.locator("tr[data-sim='emu000/1']")
            cells = await row.locator("td").all_text_contents()
            assert cells[1] == "2" and re.fullmatch(r"\*{10,}\d{3}", cells[2]) and re.fullmatch(r"\+?\*{6,}\d{3}", cells[3])
            assert slot_sim["emu000", 1].sim_id not in await page.content()
            assert "(active)" in await page.locator("tr[data-sim='emu000/0'] td:nth-child(2)").text_content()
            # Operators by name where the network gives one (the code stays in the cell's title).
            names = {s.info.operator_name for s in slot_sim.values()}
            assert await page.locator("tr[data-channel='emu000'] td:nth-child(8)").text_content() in names

            # A SIM quarantined by the scheduler in the slot its modem is not on is listed with its reason.
            inactive = slot_sim["emu000", 1].sim_id
            app.policy.quarantine(inactive, ("job j7: cause 21 without alerting at 2026-12-07T02:00:00Z",), time.time())
            await page.wait_for_selector("tr[data-sim='emu000/1'] .state.quarantined", timeout=15000)
            assert "cause 21 without alerting" in await row.locator("td.why").text_content()

            # Release it from the page (confirmed): back in rotation, in the events with the technician's name.
            await row.locator("button[data-act='release']").click()
            await page.wait_for_selector("#notice:has-text('released')")
            assert app.policy.state(inactive, time.time()).value != "quarantined"
            await page.wait_for_selector(f"#events td:has-text('released by {TECH}')", timeout=15000)

            # Quarantine emu001's active SIM with a reason: no call leaves from it after that.
            target = slot_sim["emu001", 0]
            await page.locator("tr[data-sim='emu001/0'] button[data-act='quarantine']").click()
            await page.wait_for_selector("tr[data-sim='emu001/0'] .state.quarantined", timeout=15000)
            assert f"quarantined by {TECH}: operator complaint" in await page.locator(
                "tr[data-sim='emu001/0'] td.why").text_content()
            await page.wait_for_selector(f"#events td:has-text('quarantined by {TECH}: operator complaint')", timeout=15000)
            before = len(emu.network.calls)
            app.scheduler.submit([{"id": f"c{i}", "kind": "call", "callee": f"+4860010000{i}"} for i in range(6)])
            await until("six calls placed", lambda: len([c for c in emu.network.calls[before:] if c.direction == "out"]) >= 6
                        and app.store.counts().get("done", 0) >= 6, timeout=60)
            callers = {c.caller_msisdn for c in emu.network.calls[before:] if c.direction == "out"}
            assert target.info.msisdn not in callers and callers

            # Switch emu000 to slot 2 (confirmed): the emulated modem is on it.
            await page.wait_for_selector("tr[data-channel='emu000'] .state.idle", timeout=15000)
            await page.locator("tr[data-channel='emu000'] button[data-act='switch'][data-slot='1']").click()
            await until("emu000 on slot 2", lambda: emu.modem("emu000").active_slot == 1
                        and app.bank.channels["emu000"].state.value == "idle", timeout=60)
            await page.wait_for_selector("tr[data-sim='emu000/1'] td:has-text('(active)')", timeout=15000)
            await page.wait_for_selector(f"#events td:has-text('modem emu000 switched to slot 2 by {TECH}')")

            # Reset emu001 (confirmed): the emulated modem restarted, and comes back idle.
            await page.wait_for_selector("tr[data-channel='emu001'] .state:is(.idle,.quarantined,.cooling_down)")
            settings = emu.modem("emu001").settings
            await page.locator("tr[data-channel='emu001'] button[data-act='reset']").click()
            await until("emu001 restarted", lambda: emu.modem("emu001").settings is not settings)
            await until("emu001 back", lambda: app.bank.channels["emu001"].state.value in ("idle", "cooling_down"), timeout=60)
            await page.wait_for_selector(f"#events td:has-text('modem emu001 reset by {TECH}')")

            # The events filter: words that every shown row contains.
            await page.fill("#filter", "emu000 slot")
            shown = await page.locator("#events tbody tr:visible").all_text_contents()
            assert shown and all("emu000" in t and "slot" in t for t in shown), shown
            assert await page.locator("#events tbody tr[data-kind='modem_reset']").is_hidden()
            await page.fill("#filter", "")

            # An action without the page's CSRF token is refused, with the session's cookie.
            answer = await page.request.post(base + "/actions/switch", data={"channel": "emu000", "slot": 0})
            assert answer.status == 403
            assert emu.modem("emu000").active_slot == 1

            # Screenshots for the guide (SIMROTOR_SCREENSHOTS=DIR keeps them; else the test's tmp_path).
            shots = Path(os.environ.get("SIMROTOR_SCREENSHOTS") or tmp_path)
            shots.mkdir(parents=True, exist_ok=True)
            await page.evaluate("document.querySelectorAll('.scroll').forEach(e => e.scrollLeft = 0)")
            await page.screenshot(path=str(shots / "page-1280x900.png"), full_page=True)
            await page.set_viewport_size({"width": 390, "height": 844})
            # On a phone nothing is cut off or scrolls sideways: modems and SIMs are cards.
            widths = await page.evaluate("""() => [document.documentElement.scrollWidth,
                ...[...document.querySelectorAll('.scroll')].map(e => e.scrollWidth - e.clientWidth)]""")
            assert widths[0] <= 390 and max(widths[1:]) <= 0, widths
            assert await page.locator("tr[data-sim='emu001/0'] td[data-label='why']").is_visible()
            await page.screenshot(path=str(shots / "page-390x844.png"), full_page=False)
            await page.screenshot(path=str(shots / "page-390-full.png"), full_page=True)
            assert (shots / "page-1280x900.png").stat().st_size > 10_000
            await browser.close()
    finally:
        await app.stop()
