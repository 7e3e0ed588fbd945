"""The technician page in a real browser (Debian's Chromium driven by Playwright):
channels appear with their states, a fault shows up by itself, numbers are masked."""
from __future__ import annotations

import re
import time
import shutil

import pytest

from appliance.config import parse_config
from appliance.runtime import Appliance
from modem_drivers.emulator import Fault, Timing

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


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
    try:
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = await browser.new_page()
            await page.goto(app.address + "/")
            await page.wait_for_selector("tr[data-channel='emu003']")
            assert await page.locator("#appliance").text_content() == "box-page"
            assert await page.locator("#channels tbody tr").count() == 4
            states = await page.locator("#channels tbody tr .state").all_text_contents()
            assert states == ["idle"] * 4
            numbers = await page.locator("#channels tbody tr td:nth-child(7)").all_text_contents()
            assert all(re.fullmatch(r"\+?\*{6,}\d{3}", n) for n in numbers), numbers
            await emu.inject("emu001", Fault.VANISH, seconds=30)
            await page.wait_for_selector("tr[data-channel='emu001'] .state.faulty", timeout=15000)
            assert "port lost" in await page.locator("tr[data-channel='emu001']").text_content()
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
            await browser.close()
    finally:
        await app.stop()
