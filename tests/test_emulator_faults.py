"""Fault injection and the HTTP control API."""
from __future__ import annotations

import asyncio
import os
from pathlib import Path

import aiohttp
import pytest

from modem_drivers.emulator import Emulator, Fault
from modem_drivers.emulator.host import AtHost


pytestmark = pytest.mark.bank(modems=4)


async def _host(emu: Emulator, i: int) -> AtHost:
    host = AtHost(emu.modems[i].port)
    assert (await host.command("ATE0"))[-1] == "OK"
    return host


async def test_port_vanishes_and_returns_on_a_stable_path(emu: Emulator) -> None:
    modem = emu.modems[1]
    link = Path(modem.port)
    assert link.is_symlink() and os.readlink(link).startswith("/dev/pts/")
    host = await _host(emu, 1)
    await emu.inject(modem.id, Fault.VANISH, seconds=0.3)
    assert not link.exists()
    with pytest.raises((TimeoutError, OSError)):
        await host.command("AT", timeout=0.1)  # the tty hung up under the host
    host.close()
    for _ in range(100):
        if link.exists():
            break
        await asyncio.sleep(0.02)
    assert link.is_symlink() and os.readlink(link).startswith("/dev/pts/")
    again = AtHost(modem.port)
    assert await again.command("AT") == ["AT", "OK"]  # came back from power-up: echo on
    again.close()


async def test_garbage_bytes_reach_the_host_and_the_modem_survives(emu: Emulator) -> None:
    host = await _host(emu, 0)
    await emu.inject("emu000", Fault.GARBAGE, bytes=b"\xff\x00\x13junk\r\n")
    await emu.inject("emu000", Fault.GARBAGE, count=16)
    assert (await host.command("AT"))[-1] == "OK"
    assert b"\xff\x00\x13junk\r\n" in bytes(host.raw)
    host.close()


async def test_stuck_modem_until_reset_or_timeout(emu: Emulator) -> None:
    host = await _host(emu, 2)
    await emu.inject("emu002", Fault.STUCK)
    host.write(b"AT\r")
    assert await host.silence(0.3) == []
    assert await host.command("AT+CFUN=1,1") == ["OK"]
    assert await host.command("AT") == ["AT", "OK"]  # rebooted: echo back on
    await emu.inject("emu002", Fault.STUCK, seconds=0.2)
    host.write(b"AT\r")
    assert await host.silence(0.1) == []
    await asyncio.sleep(0.2)
    assert await host.command("AT") == ["AT", "OK"]
    host.close()


async def test_lost_urc_drops_only_the_next_one(emu: Emulator) -> None:
    modem = emu.modems[0]
    host = await _host(emu, 0)
    await host.command("AT+CNMI=2,1,0,2,0")
    await emu.inject(modem.id, Fault.LOSE_URC, prefix="+CMTI")
    await emu.inbound_sms("+48601012345", modem.sim.msisdn, "one")
    await emu.inbound_sms("+48601012345", modem.sim.msisdn, "two")
    assert await host.expect("+CMTI: ") == '+CMTI: "SM",2'
    assert b'+CMTI: "SM",1' not in bytes(host.raw)
    host.close()


async def test_sim_blocked_mid_run(emu: Emulator) -> None:
    host = await _host(emu, 3)
    await emu.inject("emu003", Fault.BLOCK_SIM)
    assert await host.command("ATD+48601012345;") == ["OK"]
    assert await host.until_final() == ["NO CARRIER"]
    assert await host.command("AT+CEER") == ["+CEER: Requested facility not subscribed", "OK"]
    host.close()


async def test_inject_rejects_bad_input(emu: Emulator) -> None:
    from modem_drivers.emulator import EmulatorError
    with pytest.raises(EmulatorError, match="modem"):
        await emu.inject("emu999", Fault.STUCK)
    with pytest.raises(EmulatorError, match="fault"):
        await emu.inject("emu000", "melt")
    with pytest.raises(EmulatorError, match="prefix"):
        await emu.inject("emu000", Fault.LOSE_URC)


async def test_control_api(emu: Emulator) -> None:
    url = emu.control_url
    assert url and url.startswith("http://127.0.0.1:")
    modem = emu.modems[0]
    host = await _host(emu, 0)
    await host.command("AT+CNMI=2,1,0,2,0;+CLIP=1")
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{url}/modems") as r:
            modems = await r.json()
        assert r.status == 200 and [m["id"] for m in modems] == ["emu000", "emu001", "emu002", "emu003"]
        assert modems[0]["port"] == modem.port and modems[0]["sims"][0]["msisdn"] == modem.sim.msisdn
        async with http.post(f"{url}/faults", json={"modem": "emu000", "fault": "garbage", "bytes": "XYZ"}) as r:
            assert r.status == 202
        async with http.post(f"{url}/faults", json={"modem": "emu042", "fault": "stuck"}) as r:
            assert r.status == 404 and set(await r.json()) == {"error", "detail"}
        async with http.post(f"{url}/faults", json={"modem": "emu000", "fault": "explode"}) as r:
            body = await r.json()
            assert r.status == 422 and "fault" in body["detail"]
        async with http.post(f"{url}/faults", data=b"{not json") as r:
            assert r.status == 400 and (await r.json())["error"] == "bad_json"
        async with http.post(f"{url}/inbound/sms", json={"from": "+48601012345"}) as r:
            assert r.status == 422 and "to" in (await r.json())["detail"]
        async with http.post(f"{url}/inbound/sms", json={"from": "+48601012345", "to": modem.sim.msisdn, "text": "hej"}) as r:
            assert r.status == 202
        assert (await host.expect("+CMTI: ")).startswith('+CMTI: "SM",')
        async with http.post(f"{url}/inbound/sms", json={"from": "x", "to": "+48111", "text": "hej"}) as r:
            assert r.status == 404
        async with http.post(f"{url}/inbound/call", json={"from": "+48601012345", "to": modem.sim.msisdn, "ring_seconds": 0.1}) as r:
            assert r.status == 202
        assert await host.expect("RING") == "RING"
        assert await host.expect("NO CARRIER") == "NO CARRIER"
        assert (await host.command("ATD+48602212345;"))[-1] == "OK"
        await host.until_final()
        async with http.get(f"{url}/calls") as r:
            calls = await r.json()
        assert [c["direction"] for c in calls] == ["in", "out"]
        assert calls[1]["callee"] == "+48602212345" and calls[1]["cause"] == 17 and calls[1]["outcome"] == "busy"
        async with http.get(f"{url}/sms") as r:
            sms = await r.json()
        assert sms[0]["direction"] == "in" and sms[0]["text"] == "hej"
    assert b"XYZ" in bytes(host.raw)
    host.close()
