"""A balance's currency read from the operator's USSD answer (appliance/balance.py): an
ISO code or an unambiguous local word or sign beside the amount, else unknown; on an
appliance over the emulated bank the modem's balance carries it to the API and to the
technician's page."""
from __future__ import annotations

import json

import pytest

from appliance.balance import parse_balance, parse_currency
from appliance.technician import technician_accounts
from modem_drivers.emulator import Timing
from tests.test_appliance_signin import PASSWORD, Browser

PATTERN = r"(\d+[.,]\d{1,2})"

pytestmark = pytest.mark.bank(modems=1, sims_per_modem=1, timing=Timing.FAST, seed=3)


@pytest.mark.parametrize(("text", "currency"), [
    ("Saldo: 12,34 PLN.\r\nKonto wazne do 31.12.2026", "PLN"),  # the emulator's answer
    ("Your balance is 0.50 EUR", "EUR"),
    ("USD 4.20 left until 31.12", "USD"),  # the code before the amount
    ("Баланс 120.50 руб. Пакет 5 ГБ", "RUB"),
    ("Saldo 3,00 zł", "PLN"),
    ("Balance: €5.00", "EUR"),
    ("Balance 5.00 euro", "EUR"),
    ("Залишок 40.00 грн", "UAH"),
    ("Balance 5.00 and 2 SMS", None),  # "and" is no currency (ISO codes count only in capitals)
    ("Balance 5.00 EURopean bonus", None),  # a longer word is not cut to a code
    ("Balance $5.00", None),  # $ names several currencies: not guessed
    ("Credit 7.00 lei", None),  # RON or MDL: not guessed
    ("Service unavailable", None),
])
def test_parse_currency(text, currency):
    assert parse_currency(text, PATTERN) == currency


def test_the_amount_is_read_as_before():
    assert parse_balance("Баланс 120.50 руб.", PATTERN) == 120.5


@pytest.fixture
def appliance_config(tmp_path, bank):
    return {"emulator_state": str(bank.state),
            "appliance": {"id": "box-balance", "store": str(tmp_path / "a.db"), "listen": "127.0.0.1:0", "token": "t"}}


async def test_the_page_shows_the_balance_with_its_currency(appliance, http, bank, appliance_config,
                                                             start_appliance):
    assert appliance.balance is not None, "balance checks are on by default"
    cid = next(iter(appliance.bank.channels))
    assert await appliance.balance.check(cid) == 12.34  # the emulator's SIMs start with 12,34 PLN
    assert appliance.bank.channels[cid].public()["balance_currency"] == "PLN"
    detail = appliance.store.conn.execute("SELECT detail FROM events WHERE kind = 'balance'").fetchone()[0]
    assert json.loads(detail)["currency"] == "PLN"

    technician_accounts(appliance.store.conn).add("jan", PASSWORD)
    b = Browser(http, appliance.address)
    assert (await b.sign_in("jan", PASSWORD)).status == 303
    _, text = await b.request("GET", "/status.json")
    row = next(c for c in json.loads(text)["channels"] if c["id"] == cid)
    assert (row["balance"], row["balance_currency"]) == (12.34, "PLN")
    sim = next(r for r in json.loads(text)["sims"] if r["channel"] == cid)
    assert (sim["balance"], sim["balance_currency"]) == (12.34, "PLN") and sim["balance_at"] is not None

    # The reading is kept: after a restart, before any new check, the SIM still shows it.
    await appliance.stop()
    again = await start_appliance(appliance_config)
    assert again.balance.readings[appliance.bank.channels[cid].sims[0].sim_id]["currency"] == "PLN"
    b = Browser(http, again.address)
    technician_accounts(again.store.conn).add("eva", PASSWORD)
    assert (await b.sign_in("eva", PASSWORD)).status == 303
    _, text = await b.request("GET", "/status.json")
    sim = next(r for r in json.loads(text)["sims"] if r["channel"] == cid)
    assert (sim["balance"], sim["balance_currency"]) == (12.34, "PLN")


async def test_balances_with_currency_on_the_page_in_chromium(appliance, bank):
    """Both panels print the amount with its currency; a SIM never checked shows a dash."""
    from playwright.async_api import async_playwright

    from tests.test_appliance_page import ARGS, CHROMIUM, TECH, sign_in

    technician_accounts(appliance.store.conn).add(TECH, PASSWORD)
    cid = next(iter(appliance.bank.channels))
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = await browser.new_page()
            await sign_in(page, appliance.address)
            await page.wait_for_selector(f"tr[data-sim='{cid}/0']")
            assert await page.locator(f"tr[data-sim='{cid}/0'] td[data-label='balance']").text_content() == "—"
            assert await appliance.balance.check(cid) == 12.34
            await page.wait_for_selector(f"tr[data-sim='{cid}/0'] td[data-label='balance']:text-is('12.34 PLN')",
                                         timeout=15000)
            await page.wait_for_selector(f"tr[data-channel='{cid}'] td[data-label='balance']:text-is('12.34 PLN')",
                                         timeout=15000)
        finally:
            await browser.close()
