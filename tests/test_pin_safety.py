"""PIN safety (issue 12): a wrong PIN in the appliance config is sent once, not again at a
reopen after a USB drop or at a restart of the appliance; the tries left are read before
any PIN goes out and shown in the channel's reason; with one try left nothing is sent;
``simrotor modem unlock`` / ``modem pin`` work against real ptys and the appliance takes
the unlocked SIM back. The virtual SIM counts every PIN it is shown (``presentations``)
and every read of its tries left (``counter_reads``)."""
from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from appliance.bank import pin_stop_reason
from appliance.channel import Channel
from appliance.config import parse_config
from appliance.runtime import Appliance
from appliance.store import Store
from bank_harness import bank_running
from modem_drivers.dialects import DIALECTS
from modem_drivers.emulator import Emulator, Fault, PinState, Timing, VirtualSim
from modem_drivers.errors import SimPinRequired, SimPukRequired, WrongPin
from modem_drivers.modem import Modem
from modem_drivers.pin import (
    MemoryPinMarks,
    PinTries,
    PinWithheld,
    RejectedPin,
)
from modem_drivers.dialects.pin_counters import parse_cpinr, parse_huawei_cpin, parse_qpinc, parse_spic

TOKEN = "pin-safety-token"
VENDORS = ["simcom", "quectel", "huawei", "generic"]
WAIT = 30.0  # seconds any one awaited condition may take on a loaded 2-core machine


# -- helpers --------------------------------------------------------------------------------
@asynccontextmanager
async def emulator(tmp_path: Path, vendor: str = "simcom", *, locked: bool = True, sims: int = 1,
                   modems: int = 1) -> AsyncIterator[Emulator]:
    """The shared bank, PIN-locked unless told, without its control API: one ``vendor``
    modem, or ``modems`` of every vendor."""
    vendors = (vendor,) if modems == 1 else tuple(VENDORS)
    async with bank_running(tmp_path, modems=modems, sims_per_modem=sims, vendors=vendors, timing=Timing.FAST,
                            pin_locked=locked, control_port=None) as bank:
        yield bank.emu


def config(tmp_path: Path, port: str, pin: str | None, *, slots: int = 1) -> dict[str, Any]:
    modem: dict[str, Any] = {"id": "m01", "port": port, "slots": slots}
    if pin is not None:
        modem["pin"] = pin
    return {
        "appliance": {"id": "pins", "store": str(tmp_path / "appliance.db"), "listen": "127.0.0.1:0", "token": TOKEN},
        "modem": [modem],
        "ussd": {"balance_code": ""},
        "supervision": {"check_interval_seconds": 1.0, "reopen_backoff": [0.05, 0.2]},
    }


@asynccontextmanager
async def appliance(tmp_path: Path, port: str, pin: str | None, **kw: Any) -> AsyncIterator[Appliance]:
    app = Appliance(parse_config(config(tmp_path, port, pin, **kw)), seed=1)
    await app.start()
    try:
        yield app
    finally:
        await app.stop()


async def channel(app: Appliance) -> dict[str, Any]:
    """The channel as the local API shows it (real HTTP)."""
    async with aiohttp.ClientSession(app.address) as s:
        async with s.get("/api/channels", headers={"Authorization": f"Bearer {TOKEN}"}) as r:
            assert r.status == 200
            return (await r.json())["channels"][0]


async def wait_for(check: Callable[[], Any], what: str) -> Any:
    """Poll ``check`` (sync or async) until it returns something true; fail naming ``what``."""
    try:
        async with asyncio.timeout(WAIT):
            while True:
                value = check()
                if asyncio.iscoroutine(value):
                    value = await value
                if value:
                    return value
                await asyncio.sleep(0.02)
    except TimeoutError:
        raise AssertionError(f"waited {WAIT:g} s for {what}") from None


async def channel_where(app: Appliance, ok: Callable[[dict[str, Any]], bool], what: str) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        ch = await channel(app)
        return ch if ok(ch) else None

    return await wait_for(check, what)


async def looks(sim: VirtualSim, n: int) -> None:
    """Wait until the host read the SIM's tries left ``n`` more times (each look of the
    appliance at a locked SIM reads them once)."""
    start = sim.counter_reads
    await wait_for(lambda: sim.counter_reads >= start + n, f"{n} more reads of the SIM's tries left")


async def cli(*args: str) -> tuple[int, str, str]:
    """``simrotor …`` as a real process (the emulator keeps serving in this loop). A port
    the appliance holds for a moment ("port busy", 69) is tried again, as a person would."""
    for _ in range(50):
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "simrotor", *args,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await proc.communicate()
        if not (proc.returncode == 69 and b"port busy" in err):
            return proc.returncode or 0, out.decode(), err.decode()
        await asyncio.sleep(0.1)
    raise AssertionError(f"the port stayed busy for simrotor {' '.join(args)}")


def wrong_pin_reason(port: str, tries: int) -> str:
    return f"wrong PIN ({tries} tries left): fix [[modem]] m01 pin and run `simrotor modem unlock {port} --pin P`"


# -- the appliance: one try, whatever happens ----------------------------------------------------
@pytest.mark.parametrize("vendor", VENDORS)
async def test_wrong_pin_is_sent_once_across_start_vanish_and_restart(tmp_path, vendor):
    async with emulator(tmp_path, vendor) as emu:
        vm = emu.modems[0]
        sim = vm.sims[0]
        async with appliance(tmp_path, vm.port, "9999") as app:
            ch = await channel_where(app, lambda c: c["reason"].startswith("wrong PIN"), "the wrong-PIN stop")
            assert ch["state"] == "faulty"
            assert ch["reason"] == wrong_pin_reason(vm.port, 2)
            assert sim.presentations == 1 and sim.pin_attempts_left == 2
            # A USB drop: the port goes away and comes back freshly powered; the appliance
            # looks at the SIM again (twice) and sends nothing.
            await emu.inject(vm.id, Fault.VANISH, seconds=0.3)
            await looks(sim, 2)
            assert sim.presentations == 1
            assert (await channel(app))["reason"] == wrong_pin_reason(vm.port, 2)
        # The same config, a new process: the rejected PIN is remembered in the store.
        async with appliance(tmp_path, vm.port, "9999") as app:
            await looks(sim, 2)
            ch = await channel(app)
            assert (ch["state"], ch["reason"]) == ("faulty", wrong_pin_reason(vm.port, 2))
            assert app.store.has_pin_marks()
        assert sim.presentations == 1 and sim.pin_state is PinState.SIM_PIN


async def test_wrong_pin_after_a_usb_drop_says_so_instead_of_port_lost(tmp_path, caplog):
    """The SIM was unlocked when the appliance started (its PIN lock on); the USB drop
    powers it up asking for the PIN: the reopen sends the configured PIN once, and the
    page says "wrong PIN", not "port lost"; one structured log line says it too."""
    caplog.set_level("WARNING", logger="appliance.bank")
    async with emulator(tmp_path, "quectel", locked=False) as emu:
        vm = emu.modems[0]
        sim = vm.sims[0]
        sim.pin_enabled = True
        async with appliance(tmp_path, vm.port, "9999") as app:
            await channel_where(app, lambda c: c["state"] == "idle", "the channel to come up")
            assert sim.presentations == 0
            await emu.inject(vm.id, Fault.VANISH, seconds=0.3)
            ch = await channel_where(app, lambda c: c["reason"].startswith("wrong PIN"), "the wrong-PIN stop")
            assert ch["reason"] == wrong_pin_reason(vm.port, 2)
            await looks(sim, 2)
            assert sim.presentations == 1
            assert app.store.has_pin_marks()
        stops = [r for r in caplog.records if getattr(r, "event", None) == "pin_stop"]
        assert [(r.channel, r.problem, r.tries_left) for r in stops] == [("m01", "WrongPin", 2)]


async def test_one_try_left_sends_nothing_even_with_the_right_pin(tmp_path):
    async with emulator(tmp_path, "huawei") as emu:
        vm = emu.modems[0]
        sim = vm.sims[0]
        sim.pin_attempts_left = 1
        async with appliance(tmp_path, vm.port, sim.pin) as app:
            ch = await channel_where(app, lambda c: c["reason"].startswith("SIM PIN not sent"), "the withheld-PIN stop")
            assert ch["state"] == "faulty"
            assert ch["reason"] == ("SIM PIN not sent (1 try left): a person decides: run "
                                    f"`simrotor modem unlock {vm.port} --pin P --last-try`")
            await looks(sim, 2)
        assert sim.presentations == 0 and sim.pin_attempts_left == 1


async def test_a_fixed_pin_in_the_config_gets_its_one_try(tmp_path):
    async with emulator(tmp_path, "generic") as emu:
        vm = emu.modems[0]
        sim = vm.sims[0]
        async with appliance(tmp_path, vm.port, "9999") as app:
            await channel_where(app, lambda c: c["reason"].startswith("wrong PIN"), "the wrong-PIN stop")
        async with appliance(tmp_path, vm.port, sim.pin) as app:
            await channel_where(app, lambda c: c["state"] == "idle", "the channel to come up with the fixed PIN")
            assert not app.store.has_pin_marks()
        assert sim.presentations == 2 and sim.pin_state is PinState.READY


async def test_unlock_while_the_appliance_runs_brings_the_channel_back_and_clears_the_mark(tmp_path):
    async with emulator(tmp_path, "simcom") as emu:
        vm = emu.modems[0]
        sim = vm.sims[0]
        async with appliance(tmp_path, vm.port, "9999") as app:
            await channel_where(app, lambda c: c["reason"].startswith("wrong PIN"), "the wrong-PIN stop")
            assert app.store.has_pin_marks()
            code, out, err = await cli("modem", "unlock", vm.port, "--pin", sim.pin, "--json")
            assert code == 0, err
            result = json.loads(out)
            assert result["before"] == {"state": "SIM PIN", "pin_tries_left": 2, "puk_tries_left": 10}
            assert result["after"] == {"state": "READY", "pin_tries_left": 3, "puk_tries_left": 10}
            await channel_where(app, lambda c: c["state"] == "idle", "the channel back after the unlock")
            assert not app.store.has_pin_marks()
        assert sim.presentations == 2


async def test_puk_needed_then_unlocked_with_the_cli(tmp_path):
    async with emulator(tmp_path, "quectel") as emu:
        vm = emu.modems[0]
        sim = vm.sims[0]
        sim.pin_state, sim.pin_attempts_left = PinState.SIM_PUK, 0
        async with appliance(tmp_path, vm.port, "4321") as app:
            ch = await channel_where(app, lambda c: c["reason"].startswith("SIM needs its PUK"), "the PUK stop")
            assert ch["reason"] == (f"SIM needs its PUK (10 tries left): run `simrotor modem unlock {vm.port} --puk P "
                                    "--new-pin N`, then set [[modem]] m01 pin = N")
            assert sim.presentations == 0
            code, out, err = await cli("modem", "unlock", vm.port, "--puk", sim.puk, "--new-pin", "4321", "--json")
            assert code == 0, err
            result = json.loads(out)
            assert result["before"]["state"] == "SIM PUK" and result["before"]["puk_tries_left"] == 10
            assert result["after"] == {"state": "READY", "pin_tries_left": 3, "puk_tries_left": 10}
            await channel_where(app, lambda c: c["state"] == "idle", "the channel back after the PUK")
        assert sim.pin == "4321" and sim.presentations == 1


async def test_a_wrong_pin_on_another_slot_costs_one_try_and_the_channel_runs_on(tmp_path):
    """Slot discovery of a dual-SIM modem: the PIN goes right after the switch (a locked
    SIM cannot register), slot 1's SIM rejects it once, slot 0 carries the channel."""
    async with emulator(tmp_path, "generic", sims=2) as emu:
        vm = emu.modems[0]
        home, other = vm.sims
        other.pin = "5678"
        async with appliance(tmp_path, vm.port, home.pin, slots=2) as app:
            ch = await channel_where(app, lambda c: c["state"] == "idle", "the channel up on slot 0")
            assert ch["active_slot"] == 0
            assert other.presentations == 1 and other.pin_attempts_left == 2
            assert app.store.pin_mark(f"iccid:{other.iccid}") is not None
            # The locked SIM is not offered to the rotation: while slot 0's SIM rests
            # between calls (the default pauses) no switch goes to slot 1, which would stop
            # the whole modem on its PIN.
            done: list[dict[str, Any]] = []
            app.scheduler.result_listeners.append(lambda r: done.append(r) if r.get("final") else None)
            app.scheduler.submit([{"id": f"c{i}", "kind": "call", "callee": f"+4860100000{i}",
                                   "call": {"max_ring_seconds": 10, "max_talk_seconds": 1}} for i in range(2)])
            await wait_for(lambda: done, "the first call's result")
            await asyncio.sleep(1.0)  # the rest of the round, and any switch it would plan
            assert app.bank.channels["m01"].active_slot == 0 and app.scheduler.waiting("c1") is not None
            assert app.bank.channels["m01"].state.value in ("idle", "cooling_down")
            assert other.presentations == 1


# -- the CLI --------------------------------------------------------------------------------------
async def test_pin_shows_state_and_tries_on_every_dialect(tmp_path):
    async with emulator(tmp_path, modems=4) as emu:
        for vm in emu.modems:
            vm.sims[0].pin_attempts_left = 2
            code, out, err = await cli("modem", "pin", vm.port, "--json")
            assert code == 0, (vm.vendor, err)
            assert json.loads(out) == {"port": vm.port, "state": "SIM PIN", "pin_tries_left": 2, "puk_tries_left": 10}
            assert vm.sims[0].presentations == 0


async def test_unlock_refuses_the_last_try_unless_told(tmp_path):
    async with emulator(tmp_path, "simcom") as emu:
        vm = emu.modems[0]
        sim = vm.sims[0]
        sim.pin_attempts_left = 1
        code, out, err = await cli("modem", "unlock", vm.port, "--pin", "0000")
        assert code == 1 and "1 try left" in err and "--last-try" in err
        assert "pin_tries_left" in out  # the tries are shown before the refusal
        assert sim.presentations == 0
        code, out, err = await cli("modem", "unlock", vm.port, "--pin", sim.pin, "--last-try", "--json")
        assert code == 0, err
        assert json.loads(out)["after"]["state"] == "READY" and sim.presentations == 1


async def test_unlock_says_wrong_pin_with_the_tries_left(tmp_path):
    async with emulator(tmp_path, "huawei") as emu:
        vm = emu.modems[0]
        code, out, err = await cli("modem", "unlock", vm.port, "--pin", "0000", "--json")
        assert code == 1
        doc = json.loads(out)
        assert doc["error"] == "wrong PIN (2 tries left)"
        assert doc["detail"]["before"]["pin_tries_left"] == 3 and doc["detail"]["after"]["pin_tries_left"] == 2


async def test_change_pin(tmp_path):
    async with emulator(tmp_path, "quectel") as emu:
        vm = emu.modems[0]
        sim = vm.sims[0]
        code, _, err = await cli("modem", "pin", vm.port, "--change", "--old", "1234", "--new", "4321")
        assert code == 1 and "unlock it first" in err  # the SIM is still locked
        assert (await cli("modem", "unlock", vm.port, "--pin", "1234"))[0] == 0
        code, out, err = await cli("modem", "pin", vm.port, "--change", "--old", "1234", "--new", "4321", "--json")
        assert code == 0, err
        assert json.loads(out)["changed"] is True and sim.pin == "4321"
        code, out, err = await cli("modem", "pin", vm.port, "--change", "--old", "1111", "--new", "2222", "--json")
        assert code == 1 and json.loads(out)["error"] == "wrong PIN (2 tries left)"
        assert sim.pin == "4321"


async def test_a_wrong_pin_given_to_any_modem_command_is_named(tmp_path):
    async with emulator(tmp_path, "generic") as emu:
        vm = emu.modems[0]
        code, out, err = await cli("modem", "probe", vm.port, "--pin", "0000", "--json")
        assert code == 1 and json.loads(out)["error"] == "wrong PIN (2 tries left)"
        vm.sims[0].pin_attempts_left = 1
        code, _, err = await cli("modem", "ussd", vm.port, "*100#", "--pin", vm.sims[0].pin)
        assert code == 1 and "SIM PIN not sent: 1 try left" in err
        assert vm.sims[0].presentations == 1


@pytest.mark.parametrize("args, message", [
    (["--pin", "12"], "--pin must be 4 to 8 digits"),
    (["--puk", "1234", "--new-pin", "1234"], "--puk must be 8 digits"),
    (["--pin", "1234", "--puk", "12345678"], "give either --pin P, or --puk P with --new-pin N"),
    (["--puk", "12345678"], "give either --pin P, or --puk P with --new-pin N"),
    ([], "give either --pin P, or --puk P with --new-pin N"),
])
async def test_unlock_bad_options_exit_2_before_touching_the_port(args, message):
    code, _, err = await cli("modem", "unlock", "/dev/ttyNOPE7", *args)
    assert code == 2 and message in err


# -- the driver without the appliance -------------------------------------------------------------
@pytest.mark.parametrize("vendor", VENDORS)
async def test_modem_reads_tries_and_remembers_within_one_driver(tmp_path, vendor):
    async with emulator(tmp_path, vendor) as emu:
        vm = emu.modems[0]
        marks = MemoryPinMarks()
        m = await Modem.open(vm.port, pin="9999", pin_marks=marks)
        try:
            assert isinstance(m.pin_problem, WrongPin) and m.pin_problem.tries_left == 2
            assert await m.pin_tries() == PinTries(pin=2, puk=10)
            await m.initialize()  # what a reopen after a USB drop runs
            assert isinstance(m.pin_problem, WrongPin) and vm.sims[0].presentations == 1
        finally:
            await m.close()
        m = await Modem.open(vm.port, pin="9999", pin_marks=marks)  # a new driver, the same marks
        await m.close()
        assert vm.sims[0].presentations == 1


async def test_no_pin_configured_reads_tries_and_sends_nothing(tmp_path):
    async with emulator(tmp_path, "generic") as emu:
        m = await Modem.open(emu.modems[0].port)
        await m.close()
        assert isinstance(m.pin_problem, SimPinRequired) and m.pin_problem.tries_left == 3
        assert emu.modems[0].sims[0].presentations == 0


class _OkByDefault(dict):  # type: ignore[type-arg]
    """A scripted modem's replies: anything not scripted is OK."""

    def get(self, key, default=None):  # type: ignore[no-untyped-def]
        return super().get(key, b"\r\nOK\r\n")


@pytest.mark.parametrize("counted", [False, True])
async def test_an_unanswered_pin_is_judged_by_the_count_at_the_next_look(tmp_path, counted):
    """The modem goes away while the PIN is in flight: the entry is marked, and the next
    open asks the SIM's count. Unchanged (the SIM never saw it): the PIN gets its one try
    after all. One less (it was counted as wrong): it is not sent again. A scripted 27.007
    modem on a real pty (tests/at_peer.py), since the emulator cannot lose a reply on cue."""
    from modem_drivers.at import AtError
    from tests.at_peer import Peer

    peer = Peer(tmp_path, echo=False)
    sim = {"tries": 3, "ready": False}

    def enter(p: Peer, command: str) -> bytes | None:
        if not sim["ready"] and p.received.count(command) == 1:  # the first entry: no answer, port gone
            sim["tries"] -= counted
            p.vanish()
            return None
        sim["ready"] = True
        return b"\r\nOK\r\n"

    peer.replies = _OkByDefault({
        "AT+CGMI": b"\r\nEmulated Wireless Inc.\r\n\r\nOK\r\n",
        "AT+CGMM": b"\r\nGSM-27007\r\n\r\nOK\r\n",
        "AT+CGSN": b"\r\n359999010000032\r\n\r\nOK\r\n",
        "AT+CPIN?": lambda p, c: b"\r\n+CPIN: %s\r\n\r\nOK\r\n" % (b"READY" if sim["ready"] else b"SIM PIN"),
        "AT+CPINR": lambda p, c: b"\r\n+CPINR: SIM PIN,%d,3\r\n\r\nOK\r\n" % sim["tries"],
        "AT+CRSM=176,12258,0,0,10": b'\r\n+CRSM: 144,0,"98640010325476981092"\r\n\r\nOK\r\n',
        'AT+CPIN="1234"': enter,
    })
    marks = MemoryPinMarks()
    try:
        with pytest.raises(AtError):
            await Modem.open(str(peer.link), pin="1234", reconnect=False, pin_marks=marks)
        assert RejectedPin.from_dict(marks.pin_mark("iccid:89460001234567890129")).unanswered
        peer.reappear()
        m = await Modem.open(str(peer.link), pin="1234", reconnect=False, pin_marks=marks)
        await m.close()
    finally:
        peer.close()
    sent = peer.received.count('AT+CPIN="1234"')
    if counted:
        assert (sent, type(m.pin_problem), m.pin_state.value) == (1, WrongPin, "SIM PIN")
        assert m.pin_problem.tries_left == 2 and marks.has_pin_marks()
    else:
        assert (sent, m.pin_problem, m.pin_state.value) == (2, None, "READY")
        assert not marks.has_pin_marks()


# -- pure parts ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("parse, lines, tries", [
    # 27.007 §8.65 (+CPINR per code; some modems quote the code, +CPINRE lines are ignored)
    (parse_cpinr, ["+CPINR: SIM PIN,2,3", "+CPINR: SIM PUK,10,10", "+CPINR: SIM PIN2,3,3"], PinTries(2, 10)),
    (parse_cpinr, ['+CPINR: "SIM PUK",7,10', '+CPINRE: "SIM PIN",1,3'], PinTries(None, 7)),
    # Quectel EC2x/M35 manuals: SC is the SIM PIN, P2 PIN2
    (parse_qpinc, ['+QPINC: "SC",3,10', '+QPINC: "P2",3,10'], PinTries(3, 10)),
    (parse_qpinc, ['+QPINC: "P2",1,10'], PinTries()),
    # Huawei: <code>,[<times>],<puk>,<pin>,<puk2>,<pin2>; <times> empty when READY
    (parse_huawei_cpin, ["^CPIN: SIM PIN,3,10,3,10,3"], PinTries(3, 10)),
    (parse_huawei_cpin, ["^CPIN: READY,,10,2,10,3"], PinTries(2, 10)),
    (parse_huawei_cpin, ["^CPIN: SIM PUK,9,9,0,10,3"], PinTries(0, 9)),
    # SIMCom: <pin1>,<puk1>,<pin2>,<puk2>
    (parse_spic, ["+SPIC: 3,10,0,10"], PinTries(3, 10)),
    (parse_spic, ["+SPIC: 1,10,3,10"], PinTries(1, 10)),
    (parse_spic, [], PinTries()),
])
def test_tries_parsers(parse, lines, tries):
    assert parse(lines) == tries


def test_every_dialect_has_a_tries_row():
    assert {d.name: d.pin_counter.query.command for d in DIALECTS if d.pin_counter} == {
        "generic": "AT+CPINR", "simcom": "AT+SPIC", "quectel": "AT+QPINC?", "huawei": "AT^CPIN?"}


def test_a_rejected_pin_is_kept_as_a_salted_hash():
    a, b = RejectedPin.of("9999", 2), RejectedPin.of("9999", 2)
    assert a.matches("9999") and not a.matches("1234")
    assert a.salt != b.salt and a.digest != b.digest  # no two marks alike: no lookup table
    assert "9999" not in json.dumps({k: v for k, v in a.as_dict().items() if k != "digest"})
    assert RejectedPin.from_dict(json.loads(json.dumps(a.as_dict()))) == a


def test_marks_survive_a_store_reopen(tmp_path):
    store = Store(tmp_path / "a.db")
    assert not store.has_pin_marks()
    store.set_kv("pin_mark", "not a mark")  # neighbours of the key range are not marks
    store.set_kv("pin_mark;x", "not a mark")
    assert not store.has_pin_marks()
    store.set_pin_mark("iccid:8948", RejectedPin.of("9999", 2).as_dict())
    store.close()
    store = Store(tmp_path / "a.db")
    assert store.has_pin_marks() and RejectedPin.from_dict(store.pin_mark("iccid:8948")).matches("9999")
    assert store.clear_pin_mark("iccid:8948") and not store.clear_pin_mark("iccid:8948")
    assert not store.has_pin_marks()
    store.close()


@pytest.mark.parametrize("problem, reason", [
    (WrongPin("x", 2), "wrong PIN (2 tries left): fix [[modem]] m07 pin and run `simrotor modem unlock /dev/ttyUSB3 --pin P`"),
    (WrongPin("x", None), "wrong PIN (tries left unknown): fix [[modem]] m07 pin and run "
                          "`simrotor modem unlock /dev/ttyUSB3 --pin P`"),
    (SimPukRequired("x", 10), "SIM needs its PUK (10 tries left): run `simrotor modem unlock /dev/ttyUSB3 --puk P "
                              "--new-pin N`, then set [[modem]] m07 pin = N"),
    (PinWithheld("x", 1), "SIM PIN not sent (1 try left): a person decides: run "
                          "`simrotor modem unlock /dev/ttyUSB3 --pin P --last-try`"),
    (SimPinRequired("x", 3), "SIM needs its PIN (3 tries left): set [[modem]] m07 pin, or run "
                             "`simrotor modem unlock /dev/ttyUSB3 --pin P`"),
])
def test_stop_reasons_name_the_key_and_the_command(problem, reason):
    assert pin_stop_reason(Channel("m07", "/dev/ttyUSB3", 1), problem) == reason
