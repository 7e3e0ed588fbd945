"""Callbacks answered (issue 14): a person calling back a number he was shown is answered,
hears a short message naming the creditor of the SIM's pool, and keys 1 (call me back) or
9 (stop calling this number); the choice reaches the CRM by API and webhook.

From the bottom up: ``Modem.answer`` on the emulator (an audio-port modem and one without);
the answering menu of ``appliance/callbacks.py`` through a real Appliance; then the whole
system through the controller. The emulator keeps what the caller heard: the PCM on an
audio port (the message is found in it byte for byte), the TTS text elsewhere."""
from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path

import pytest
from controller_harness import FakeClock, enroll, make_config
from system_harness import (
    appliance_config,
    clock_between,
    config_mistake,
    controller_sections,
    daytime_zone,
    receiver,
)

from appliance.channel import ChannelState
from appliance.config import (
    ConfigError,
    callback_texts,
    creditor_for,
    load_config,
    parse_config,
)
from appliance.runtime import Appliance
from appliance.store import SCHEMA_VERSION, Store
from controller.reports import Reports
from controller.store import Store as CStore
from modem_drivers.call import CallState
from modem_drivers.emulator import Emulator, Timing
from modem_drivers.errors import PlaybackFailed
from modem_drivers.modem import Modem
from modem_drivers.types import IncomingCall

CALLER = "+48601012345"


async def _ringing(modem: Modem, emu: Emulator, keys: str = "", ring_seconds: float = 10.0) -> IncomingCall:
    """Start an inbound call to the modem's SIM and return its +CLIP event."""
    msisdn = emu.modems[0].sims[0].msisdn
    waiting = asyncio.ensure_future(modem.next_event(IncomingCall, timeout=10))
    await asyncio.sleep(0)
    await emu.inbound_call(CALLER, msisdn, ring_seconds=ring_seconds, keys=keys)
    return await waiting  # type: ignore[return-value]


@pytest.mark.parametrize("vendor", ["huawei", "SIM800"])
async def test_answer_returns_the_call_and_follows_it_to_its_release(emulated_bank, vendor: str) -> None:  # type: ignore[no-untyped-def]
    emu, _ = await emulated_bank(modems=1, vendors=(vendor,), timing=Timing.FAST, control_port=None)
    vm = emu.modems[0]
    modem = await Modem.open(vm.port)
    try:
        if vm.audio_port is not None:
            await modem.audio_port(vm.audio_port)
        ring = await _ringing(modem, emu)
        assert ring.caller == CALLER
        call = await modem.answer(ring.caller)
        assert call.incoming and call.state is CallState.ACTIVE and modem.call is call
        record = emu.network.calls[-1]
        assert record.direction == "in" and record.answered
        if vm.audio_port is not None:  # the audio set-up row after connect, as for a dialled call
            assert await asyncio.wait_for(modem.audio_ready(), 5) is modem.audio
            assert vm.settings.audio == 2  # AT^DDSETEX=2 was sent after the answer
        await emu.callee_hangs_up(vm.id)  # the caller hangs up: the release reaches the Call
        await call.wait_released(5)
        assert call.released and not call.local_release
        # and once more, ended by us
        ring = await _ringing(modem, emu)
        call = await modem.answer(ring.caller)
        assert call.state is CallState.ACTIVE
        await modem.hangup()
        assert call.released and call.local_release
        assert emu.network.calls[-1].answered and emu.modems[0].call is None
    finally:
        await modem.close()


async def test_answer_after_the_caller_gave_up_is_a_released_call(emulated_bank) -> None:  # type: ignore[no-untyped-def]
    emu, _ = await emulated_bank(modems=1, vendors=("SIM800",), timing=Timing.FAST, control_port=None)
    modem = await Modem.open(emu.modems[0].port)
    try:
        ring = await _ringing(modem, emu, ring_seconds=0.05)
        async with asyncio.timeout(10):
            while emu.modems[0].call is not None:
                await asyncio.sleep(0.02)
        call = await modem.answer(ring.caller)
        assert call.released and not emu.network.calls[-1].answered
        assert modem.call is None or modem.call.released
    finally:
        await modem.close()


# -- the answering menu through a real Appliance ---------------------------------------------

CREDITOR = "Kredyt Plus"


def _with_pools(base: dict, bank_state: Path, **callbacks: object) -> dict:  # type: ignore[type-arg]
    """``base`` with the bank's modems as [[modem]] tables in pool "creditor-a", whose
    creditor is ``CREDITOR``, and ``callbacks`` in [callbacks]."""
    state = json.loads(bank_state.read_text())
    cfg = {k: v for k, v in base.items() if k != "emulator_state"}
    cfg["modem"] = [{"id": m["id"], "port": m["port"], "audio": m.get("audio_port"), "slots": len(m["sims"]),
                     "pools": ["creditor-a"]} for m in state["modems"]]
    cfg["callbacks"] = {"creditors": {"creditor-a": CREDITOR}, **callbacks}
    return cfg


def _pieces(pcm: bytes, size: int = 160) -> set[bytes]:
    """The sound of ``pcm`` as a set of 10 ms pieces (silent ones left out): the far end
    records whole 20 ms frames with a silent one wherever the host was late, so a long
    stretch is found piece by piece, not as one byte string."""
    out = set()
    for i in range(0, len(pcm) - size + 1, size):
        piece = pcm[i:i + size]
        if max(abs(int.from_bytes(piece[j:j + 2], "little", signed=True)) for j in range(0, size, 2)) > 300:
            out.add(piece)
    return out


def _found(pieces: set[bytes], heard: bytes) -> float:
    """The share of ``pieces`` the far end heard."""
    return sum(p in heard for p in pieces) / max(1, len(pieces))


async def _inbound_row(app: Appliance, caller: str, *, choice: bool, timeout: float = 60) -> dict:  # type: ignore[type-arg]
    async with asyncio.timeout(timeout):
        while True:
            rows = [r for r in app.store.inbound_after(0) if r["from"] == caller and r["kind"] == "call"]
            if rows and (rows[-1]["choice"] is not None or not choice):
                return rows[-1]
            await asyncio.sleep(0.05)


@pytest.mark.parametrize(("vendor", "keys", "choice"), [
    ("huawei", "1", "callback"), ("huawei", "9", "opt_out"), ("SIM800", "1", "callback"), ("SIM800", "9", "opt_out")])
async def test_a_callback_is_answered_and_the_caller_keys_his_choice(emulated_bank, start_appliance, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                                   vendor: str, keys: str, choice: str) -> None:
    bank = await emulated_bank(modems=1, vendors=(vendor,))
    base = {"emulator_state": str(bank.state),
            "appliance": {"id": "t", "store": str(tmp_path / "a.db"), "listen": ""}}
    app = await start_appliance(_with_pools(base, bank.state))
    ch = next(iter(app.bank.channels.values()))
    msisdn = ch.active_sim.info.msisdn  # type: ignore[union-attr]
    async with asyncio.timeout(10):
        while ch.state is not ChannelState.IDLE:
            await asyncio.sleep(0.05)
    await bank.emu.inbound_call(CALLER, msisdn, ring_seconds=30, keys=keys)
    row = await _inbound_row(app, CALLER, choice=True)
    assert row["choice"] == choice and row["to"] == msisdn
    record = next(r for r in reversed(bank.emu.network.calls) if r.direction == "in")
    assert record.answered and record.dtmf.startswith(keys)
    texts = callback_texts(app.cfg.callbacks)
    menu = texts.menu.replace("{creditor}", CREDITOR)
    if bank.emu.modems[0].audio_port is not None:  # he heard the menu naming the creditor, then the confirmation
        assert record.audio is not None and len(record.audio.heard) >= 2
        heard = bytes(record.audio.pcm)
        synth = app.callbacks.synthesiser
        # the menu as rendered with this creditor's name, not with another's (a name changes
        # every sample: sox normalises the whole utterance)
        assert _found(_pieces(synth.pcm(menu, "pl")), heard) >= 0.9
        assert _found(_pieces(synth.pcm(texts.menu.replace("{creditor}", "Inna Firma"), "pl")), heard) <= 0.1
        confirm = texts.callback if choice == "callback" else texts.opt_out
        assert _found(_pieces(synth.pcm(confirm, "pl")), heard) >= 0.9
    else:  # the modem's TTS said it: the network keeps the text
        said = [p.text for p in record.played]
        assert said[0] == menu and CREDITOR in said[0]
        assert said[1] == (texts.callback if choice == "callback" else texts.opt_out)
    async with asyncio.timeout(10):  # we hung up; the channel is free for jobs again
        while ch.state is not ChannelState.IDLE or bank.emu.modems[0].call is not None:
            await asyncio.sleep(0.05)
    assert app.callbacks.results[-1].choice.value == choice and app.callbacks.results[-1].menus == 1


async def test_no_key_hears_the_menu_twice_and_a_busy_channel_is_not_answered(emulated_bank, start_appliance,  # type: ignore[no-untyped-def]
                                                                               tmp_path: Path) -> None:
    bank = await emulated_bank(modems=1, vendors=("SIM800",))
    base = {"emulator_state": str(bank.state), "appliance": {"id": "t", "store": str(tmp_path / "a.db"), "listen": ""}}
    app = await start_appliance(_with_pools(base, bank.state))
    ch = next(iter(app.bank.channels.values()))
    msisdn = ch.active_sim.info.msisdn  # type: ignore[union-attr]
    async with asyncio.timeout(10):
        while ch.state is not ChannelState.IDLE:
            await asyncio.sleep(0.05)
    # A channel a job holds (here about to dial) takes no callback: it rings out, recorded.
    app.bank.acquire(ch.id, "job-x")
    await bank.emu.inbound_call(CALLER, msisdn, ring_seconds=1.0)
    row = await _inbound_row(app, CALLER, choice=False)
    async with asyncio.timeout(10):
        while bank.emu.modems[0].call is not None:
            await asyncio.sleep(0.05)
    assert not bank.emu.network.calls[-1].answered and app.callbacks.answered == 0
    assert ch.state is ChannelState.BUSY and ch.job_id == "job-x"
    app.bank.release(ch.id, cooldown=0.0, reason="test: job done")
    # Free again: the next caller, who keys nothing, hears the menu twice and a goodbye.
    await bank.emu.inbound_call("+48601099999", msisdn, ring_seconds=30)
    later = await _inbound_row(app, "+48601099999", choice=True, timeout=60)
    assert later["choice"] == "none" and later["id"] != row["id"] and row["choice"] is None
    texts = callback_texts(app.cfg.callbacks)
    menu = texts.menu.replace("{creditor}", CREDITOR)  # type: ignore[union-attr]
    assert [p.text for p in bank.emu.network.calls[-1].played] == [menu, menu, texts.none]
    assert app.callbacks.results[-1].menus == 2 and app.callbacks.results[-1].key is None


async def test_a_choice_made_is_kept_when_the_goodbye_fails(emulated_bank, start_appliance, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    bank = await emulated_bank(modems=1, vendors=("SIM800",))
    base = {"emulator_state": str(bank.state), "appliance": {"id": "t", "store": str(tmp_path / "a.db"), "listen": ""}}
    app = await start_appliance(_with_pools(base, bank.state))
    ch = next(iter(app.bank.channels.values()))
    said: list[str] = []
    real = Modem.play_tts

    async def refused_after_the_menu(self: Modem, text: str, *, timeout: float) -> object:
        said.append(text)
        if len(said) > 1:  # the modem refuses the goodbye after he keyed 9
            raise PlaybackFailed("the modem refused to play the message: ERROR")
        return await real(self, text, timeout=timeout)

    monkeypatch.setattr(Modem, "play_tts", refused_after_the_menu)
    async with asyncio.timeout(10):
        while ch.state is not ChannelState.IDLE:
            await asyncio.sleep(0.05)
    await bank.emu.inbound_call(CALLER, ch.active_sim.info.msisdn, ring_seconds=30, keys="9")  # type: ignore[union-attr]
    row = await _inbound_row(app, CALLER, choice=True)
    assert row["choice"] == "opt_out" and len(said) == 2
    async with asyncio.timeout(10):  # hung up all the same, the channel free again
        while ch.state is not ChannelState.IDLE or bank.emu.modems[0].call is not None:
            await asyncio.sleep(0.05)


# -- config ----------------------------------------------------------------------------------

_MODEM = '[appliance]\nid = "a"\nlisten = ""\n[[modem]]\nid = "m1"\nport = "/dev/ttyUSB2"\npools = ["creditor-a"]\n'


@pytest.mark.parametrize(("callbacks", "names"), [
    ('[callbacks]\nlang = "de"\n', "[callbacks] lang: 'de' is not known"),
    ('[callbacks.creditors]\ncreditor-b = "X"\n', "[callbacks.creditors] creditor-b: no [[modem]] is in this pool"),
    ('[callbacks.texts.pl]\nmenu = "Dzwoni {firma}."\n', "[callbacks.texts.pl] menu: names firma"),
    ('[callbacks.texts.en]\nmenu = "Hello. Press 1 or 9."\n', "[callbacks.texts.en] menu: the menu does not name the creditor"),
    ('[callbacks.texts.fr]\nmenu = "Bonjour {creditor}."\n', "[callbacks.texts.fr]: 'fr' is not a language"),
    ('[callbacks.creditors]\ncreditor-a = "' + "Kredyt " * 10 + '"\n', "more than 136"),
    ('[callbacks]\nkey_timeout_seconds = 0.2\n', "[callbacks] key_timeout_seconds: 0.2 is out of range"),
    ('[callbacks]\nanswer = "yes"\n', "answer"),
])
def test_callbacks_config_mistakes_name_the_key(tmp_path: Path, callbacks: str, names: str) -> None:
    msg = config_mistake(load_config, ConfigError, tmp_path / "a.toml", _MODEM + callbacks)
    assert names in msg, msg


def test_callbacks_config_names_the_pools_creditor(tmp_path: Path) -> None:
    (tmp_path / "a.toml").write_text(_MODEM + '[callbacks.creditors]\ncreditor-a = "Kredyt Plus"\n'
                                     '[callbacks.texts.en]\nnone = "Bye."\n')
    cb = load_config(tmp_path / "a.toml").callbacks
    assert cb.answer and creditor_for(cb, ("creditor-a",)) == "Kredyt Plus"
    assert creditor_for(cb, ("other",)) == "naszego klienta"  # no creditor for the pool: the unnamed client
    en = callback_texts(cb, "en")
    assert en.none == "Bye." and en.menu is not None and "{creditor}" in en.menu  # the rest stays shipped


# -- the store: the choice column, and acks that count for the version sent -------------------

def test_a_schema_2_store_gains_the_choice_and_a_choice_is_sent_again(tmp_path: Path) -> None:
    db = tmp_path / "v2.db"
    conn = sqlite3.connect(db)
    conn.executescript("""
        CREATE TABLE inbound (id TEXT PRIMARY KEY, kind TEXT NOT NULL, from_number TEXT, to_number TEXT, text TEXT,
            channel_id TEXT, sim_id TEXT, at REAL NOT NULL, acked INTEGER NOT NULL DEFAULT 0);
        CREATE TABLE kv (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        INSERT INTO inbound VALUES ('in-old', 'call', '+48601012345', '+48690000001', NULL, 'm1', 's1', 1, 1);
        INSERT INTO kv VALUES ('schema_version', '2');
    """)
    conn.close()
    s = Store(db)
    assert s.get_kv("schema_version") == SCHEMA_VERSION == 3
    assert s.inbound_after(0)[0]["choice"] is None
    s.add_inbound({"id": "in-1", "kind": "call", "from": CALLER, "to": "+48690000001", "at": 2.0})
    assert [r["id"] for r in s.unacked_inbound()] == ["in-1"]
    assert s.set_inbound_choice("in-1", "opt_out") and not s.set_inbound_choice("in-nope", "none")
    s.ack_inbound([("in-1", None)])  # the ack of the send before the choice: the choice is still owed
    assert [(r["id"], r["choice"]) for r in s.unacked_inbound()] == [("in-1", "opt_out")]
    s.ack_inbound([("in-1", "opt_out")])
    assert s.unacked_inbound() == []
    s.close()


# -- the controller: the choice stored, the opt-out made, the webhook sent ---------------------

def test_the_controller_takes_a_choice_sent_with_the_call_or_after_it(tmp_path: Path) -> None:
    s = CStore(tmp_path / "c.db")
    rep = Reports(s, lambda: 10.0)
    s.add_webhook("w1", "http://crm.example/hook", "secret", ["inbound"], 1.0)
    call = {"id": "in-1", "kind": "call", "from": CALLER, "to": "+48690000001"}
    assert [r["choice"] for r in rep.add_inbound("box", [call], 2.0)] == [None]  # at the first ring
    [after] = rep.add_inbound("box", [{**call, "choice": "opt_out"}], 3.0)  # once he keyed 9
    assert after["choice"] == "opt_out" and after["opted_out"] and after["seq"] == 1
    assert rep.add_inbound("box", [{**call, "choice": "opt_out"}], 4.0) == []  # sent again: stored once
    assert rep.add_inbound("box", [{**call, "choice": "callback"}], 4.0) == []  # a choice is not changed
    assert [(o["number"], o["source"]) for o in s.list_optouts("", 10)] == [(CALLER, "callback")]
    # a call whose first send carries the choice (the link was down meanwhile): one event
    [cb] = rep.add_inbound("box", [{"id": "in-2", "kind": "call", "from": "+48601000999", "choice": "callback"}], 5.0)
    assert cb["choice"] == "callback" and not cb["opted_out"]
    assert [(i["id"], i["choice"]) for i in s.inbound_after(0, 10)] == [("in-1", "opt_out"), ("in-2", "callback")]
    payloads = [json.loads(d["payload"]) for d in s.due_deliveries(100.0, 10)]
    assert [(p["id"], p["choice"]) for p in payloads] == [("in-1", None), ("in-1", "opt_out"), ("in-2", "callback")]
    assert all(p["type"] == "inbound" for p in payloads)


# -- the whole system: the CRM sees the choice -------------------------------------------------

@pytest.fixture
def clock() -> FakeClock:
    """The controller's clock at a daytime hour in Warsaw (tests/test_system_e2e.py)."""
    return clock_between(1, 21)


@pytest.fixture
def controller_config(tmp_path: Path):  # type: ignore[no-untyped-def]
    return make_config(tmp_path / "controller.db", **controller_sections())


@pytest.mark.bank(modems=2, vendors=("huawei", "SIM800"))
async def test_callbacks_to_shown_numbers_reach_the_crm(tmp_path: Path, bank, controller, crm, clock) -> None:  # type: ignore[no-untyped-def]
    emu = bank.emu
    credential = await enroll(crm.s, controller.c, "box-01")
    (tmp_path / "cred").write_text(credential)
    link = controller.c.url.replace("http", "ws") + "/v1/link"
    # the harness's permissive caps, but the default pause after a call: the callback comes
    # while the channel that called him cools down
    base = appliance_config(tmp_path, bank.state, link, tmp_path / "cred", limits={"pause_after_call": [5.0, 20.0]})
    app = Appliance(parse_config(_with_pools(base, bank.state)), seed=3)
    await app.start()
    try:
        async with receiver(clock) as hooks:
            status, hook = await crm.call("POST", "/v1/webhooks", json={"url": hooks.url, "events": ["inbound"]})
            assert status == 201
            hooks.secret = hook["secret"]
            status, _ = await crm.call("POST", "/v1/campaigns", json={
                "id": "dec", "name": "December", "start": True, "strategy": [{"kind": "call", "attempts": 1, "ring_seconds": 15}]})
            assert status == 201
            zone = daytime_zone(clock())  # the shipped calling hours: the debtors live where it is day on the controller's clock
            csv = ("external_id,phones,name,amount,currency,due_date,time_zone\n"
                   f"c1,+48600000101,Jan Kowalski,100.50,PLN,2026-12-31,{zone}\n"
                   f"c2,+48601000102,Anna Nowak,200.50,PLN,2026-12-31,{zone}\n")  # behaviour 0: they answer
            status, imported = await crm.call("POST", "/v1/campaigns/dec/contacts", data=csv.encode(),
                                              headers={"Content-Type": "text/csv"})
            assert status == 200 and imported["created"] == 2
            async with asyncio.timeout(60):
                while len(calls := [r for r in await crm.all_results("dec") if r.get("kind") == "call"]) < 2:
                    await asyncio.sleep(0.2)
            assert {r["outcome"] for r in calls} == {"answered_human"}
            keys = {"+48600000101": "1", "+48601000102": "9"}
            for r in calls:  # each debtor calls back the number he was shown
                await emu.inbound_call(r["callee"], r["number_shown"], ring_seconds=30, keys=keys[r["callee"]])
            async with asyncio.timeout(90):
                while True:
                    status, page = await crm.call("GET", "/v1/inbound?after=0")
                    chosen = {i["from"]: i for i in page["items"] if i.get("choice")}
                    if len(chosen) == 2:
                        break
                    await asyncio.sleep(0.2)
            contact_of = {r["callee"]: r["contact_id"] for r in calls}
            for number, item in chosen.items():
                assert item["kind"] == "call" and item["campaign_id"] == "dec" and item["contact_id"] == contact_of[number]
                assert item["to"] == next(r["number_shown"] for r in calls if r["callee"] == number)
            assert chosen["+48600000101"]["choice"] == "callback" and not chosen["+48600000101"]["opted_out"]
            assert chosen["+48601000102"]["choice"] == "opt_out" and chosen["+48601000102"]["opted_out"]
            status, outs = await crm.call("GET", "/v1/optouts")
            assert [(o["number"], o["source"]) for o in outs["items"]] == [("+48601000102", "callback")]
            async with asyncio.timeout(30):  # pushed too, signed
                while len({e["from"]: e for e in hooks.events if e.get("choice")}) < 2:
                    await asyncio.sleep(0.2)
            pushed = {e["from"]: e for e in hooks.events if e.get("choice")}
            assert {n: e["choice"] for n, e in pushed.items()} == {"+48600000101": "callback", "+48601000102": "opt_out"}
            assert all(e["event"] == "inbound" and e["campaign_id"] == "dec" for e in pushed.values())
            assert hooks.bad_signatures == 0
        # the network's record: both were answered, each heard his menu and keyed his key
        ins = [c for c in emu.network.calls if c.direction == "in"]
        assert len(ins) == 2 and all(c.answered for c in ins)
        assert {c.caller_msisdn: c.dtmf[:1] for c in ins} == keys
        assert all((c.audio is not None and c.audio.heard) or c.played for c in ins)
    finally:
        await app.stop()
