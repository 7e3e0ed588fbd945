"""USSD balance checks, per SIM, on a schedule, in idle moments.

A SIM without credit fails every call in a way that looks like a network problem (the
operator plays an announcement and releases, often with cause 31), so it is checked
before it wastes attempts: every ``[ussd] interval_seconds`` the active SIM of an idle
channel gets the balance code (``*100#`` by default); the first number in the answer
(``[ussd] balance_pattern``) is its balance; below ``[lock] min_balance`` the rotation
policy locks it, with the answer as evidence, until a later reading is back above it.

The balance's currency is read from the same answer (``parse_currency``): the word or
sign right after the amount, else right before it — an ISO 4217 code as operators print
it (``PLN``, ``EUR``; checked against CLDR's list through babel), or one of the few local
words and signs that name one currency only (``zł``, ``руб``, ``грн``, ``€``…). An answer
that names none leaves it unknown (the page shows the bare amount): ``$``, ``lei`` or
``kr`` name several currencies, and the SIM's country is not guessed from its MCC.

Each SIM's last reading (amount, currency, when) is kept in the store (``balances``), so
the page lists every SIM's balance — those in inactive slots too — across restarts.

Only the active slot's SIM can be asked; SIMs in other slots are checked when they are
active. Checks never take a channel a job is waiting for: they run only when no job is
queued, and hold the channel for the few seconds of one USSD session.

The checker is handed what it uses (``services.Core``), not the whole appliance.
"""
from __future__ import annotations

import asyncio
import logging
import re
from typing import Final

from babel.numbers import list_currencies

from common.clock import iso
from modem_drivers.at import AtError
from modem_drivers.background import Background
from modem_drivers.errors import ModemError

from .channel import ChannelState
from .config import UssdSection
from .services import Core

logger = logging.getLogger(__name__)

#: At most this many balance checks run at once, so a bank of hundreds of modems never
#: starts hundreds of USSD sessions together (operators rate-limit USSD gateways).
MAX_CONCURRENT: Final = 8
#: How often the checker looks for due SIMs (it sleeps between looks; checks themselves
#: are spaced by ``interval_seconds`` per SIM).
LOOK_EVERY: Final = 5.0
#: The first round waits this long after start (or one interval, if shorter).
FIRST_LOOK_AFTER: Final = 60.0
#: Local words and signs operators print instead of an ISO code, each naming one currency
#: only (lower-case; ``$``, ``lei``, ``kr`` are left out: several currencies use them).
CURRENCY_WORDS: Final = {
    "zł": "PLN", "zl": "PLN", "€": "EUR", "euro": "EUR", "£": "GBP", "руб": "RUB", "руб.": "RUB", "р.": "RUB", "₽": "RUB",
    "грн": "UAH", "грн.": "UAH", "₴": "UAH", "kč": "CZK", "kc": "CZK", "ft": "HUF", "₺": "TRY", "tl": "TRY",
}
#: ISO 4217 codes CLDR knows (current and past): a capitalised word next to an amount
#: is a currency only when it is one of them.
ISO_CURRENCIES: Final = frozenset(list_currencies())
_AFTER = re.compile(r"\s*([^\W\d_]{1,4}(?![^\W\d_])\.?|[€£₽₴₺])")
_BEFORE = re.compile(r"(?<![^\W\d_])([^\W\d_]{1,4}\.?|[€£₽₴₺])\s*$")


def _currency(token: str) -> str | None:
    for t in (token, token.rstrip(".")):
        if t.isupper() and t in ISO_CURRENCIES:
            return t
        if t.lower() in CURRENCY_WORDS:
            return CURRENCY_WORDS[t.lower()]
    return None


def parse_currency(text: str, pattern: str) -> str | None:
    """The ISO 4217 code of the currency the operator's answer names beside its first
    amount (``pattern``'s match): the token right after it, else right before it; None
    when the answer names none (see the module docstring)."""
    m = re.search(pattern, text)
    if not m:
        return None
    after = _AFTER.match(text, m.end())
    if after and (code := _currency(after.group(1))):
        return code
    before = _BEFORE.search(text[:m.start()])
    return _currency(before.group(1)) if before else None


def parse_balance(text: str, pattern: str) -> float | None:
    m = re.search(pattern, text)
    if not m:
        return None
    try:
        return float(m.group(1).replace(",", "."))
    except (IndexError, ValueError):
        return None


class BalanceChecker:
    def __init__(self, cfg: UssdSection, deps: Core) -> None:
        self.cfg = cfg
        self.bank = deps.bank
        self.scheduler = deps.scheduler
        self.store = deps.store
        self.policy = deps.policy
        self.clock = deps.clock
        self.last: dict[str, float] = dict(deps.store.get_kv("balance_checked", {}))
        self.balances: dict[str, float] = {}
        #: Per SIM its last reading: ``{"balance", "currency", "at"}`` (the page's SIMs panel).
        self.readings: dict[str, dict[str, object]] = dict(deps.store.get_kv("balances", {}))
        self._sem = asyncio.Semaphore(MAX_CONCURRENT)
        self._tasks = Background("balance", logger)

    def start(self) -> None:
        self._tasks.spawn(self._run(), "balance checks")

    async def stop(self) -> None:
        await self._tasks.cancel_all()

    async def _run(self) -> None:
        # Let the bank settle and the first jobs start before the first round.
        await asyncio.sleep(min(FIRST_LOOK_AFTER, self.cfg.interval_seconds))
        while True:
            try:
                await self.check_due()
            except Exception:
                logger.exception("balance checks failed")
            await asyncio.sleep(min(LOOK_EVERY, self.cfg.interval_seconds))

    async def check_due(self) -> int:
        if self.scheduler.stats()["queued"]:
            return 0  # jobs first
        now = self.clock()
        due = []
        for ch in self.bank.channels.values():
            sim = ch.active_sim
            if ch.state is not ChannelState.IDLE or sim is None or not sim.sim_id:
                continue
            if now - self.last.get(sim.sim_id, 0.0) >= self.cfg.interval_seconds:
                due.append(ch.id)
        await asyncio.gather(*(self.check(ch_id) for ch_id in due))
        return len(due)

    async def check(self, channel_id: str) -> float | None:
        async with self._sem:
            ch = self.bank.channels[channel_id]
            sim = ch.active_sim
            if ch.state is not ChannelState.IDLE or sim is None or not sim.sim_id or not self.cfg.balance_code:
                return None
            modem = self.bank.acquire(channel_id, "ussd-balance")
            now = self.clock()
            balance = currency = None
            try:
                reply = await modem.ussd(self.cfg.balance_code)
                balance = parse_balance(reply.text, self.cfg.balance_pattern)
                currency = parse_currency(reply.text, self.cfg.balance_pattern)
                if balance is None:
                    logger.warning("SIM %s: no balance in the USSD answer %r", sim.sim_id, reply.text[:80])
            except (AtError, ModemError) as exc:
                logger.warning("SIM %s: balance check failed: %s", sim.sim_id, exc)
            finally:
                self.bank.release(channel_id, cooldown=0.0, reason="balance check")
            self.last[sim.sim_id] = now
            self.store.set_kv("balance_checked", self.last)
            if balance is not None:
                self.balances[sim.sim_id] = balance
                ch.balance, ch.balance_currency = balance, currency
                self.readings[sim.sim_id] = {"balance": balance, "currency": currency, "at": now}
                self.store.set_kv("balances", self.readings)
                lock = self.policy.record_balance(sim.sim_id, balance, now)
                self.store.log_event("balance", sim.sim_id, {"balance": balance, "currency": currency, "at": iso(now)}, now)
                if lock is not None:
                    self.store.log_event("sim_locked", sim.sim_id,
                                             {"rule": lock.rule, "until": lock.until, "evidence": list(lock.evidence)}, now)
                    logger.warning("SIM %s locked: %s", sim.sim_id, "; ".join(lock.evidence))
            return balance
