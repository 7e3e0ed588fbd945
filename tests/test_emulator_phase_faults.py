"""Faults armed for a call phase (POST /faults with ``phase``): in FAST timing a call
passes through dialing, alerting and active within a loop turn or two, so only a fault
that waits for the phase can land in it. The soak test injects its faults this way."""
from __future__ import annotations

import aiohttp
import pytest

from modem_drivers.emulator import Emulator
from modem_drivers.emulator.host import AtHost

NO_ANSWER = "+48601312345"  # number plan: behaviour 3 alerts, then the network releases (cause 19)
HUMAN = "+48602012345"  # behaviour 0: answers (at once in FAST timing)


pytestmark = pytest.mark.bank(modems=2)


async def _post(http: aiohttp.ClientSession, url: str, body: dict) -> tuple[int, dict]:
    async with http.post(f"{url}/faults", json=body) as r:
        return r.status, await r.json()


async def test_stuck_armed_for_alerting_lands_after_the_ok_and_before_the_release(emu: Emulator) -> None:
    host = AtHost(emu.modems[0].port)
    assert (await host.command("ATE0"))[-1] == "OK"
    async with aiohttp.ClientSession() as http:
        status, body = await _post(http, emu.control_url, {"modem": "emu000", "fault": "stuck", "seconds": 0.5,
                                                           "phase": "alerting"})
        assert status == 202 and body["armed"] is True
        async with http.get(f"{emu.control_url}/faults") as r:
            listing = await r.json()
        assert [(a["modem"], a["fault"], a["phase"]) for a in listing["armed"]] == [("emu000", "stuck", "alerting")]
        assert listing["fired"] == []
        assert await host.command("ATD" + NO_ANSWER + ";") == ["OK"]  # the modem was not stuck yet
        assert await host.silence(0.3) == []  # the release ("NO ANSWER") went out while it was stuck
        async with http.get(f"{emu.control_url}/faults") as r:
            listing = await r.json()
        assert listing["armed"] == []
        assert [(f["modem"], f["phase"], f["callee"]) for f in listing["fired"]] == [("emu000", "alerting", NO_ANSWER)]
        call = emu.network.calls[-1]
        assert call.callee == NO_ANSWER and call.outcome is not None and call.outcome.value == "no_answer"
        await host.silence(0.3)  # the 0.5 s fault wears off
        assert await host.command("AT") == ["OK"]
        # Armed once: the next call is not disturbed.
        assert await host.command("ATD" + NO_ANSWER + ";") == ["OK"]
        assert (await host.until_final())[-1] == "NO ANSWER"
    host.close()


async def test_vanish_armed_for_the_conversation_drops_the_answered_call(emu: Emulator) -> None:
    host = AtHost(emu.modems[1].port)
    assert (await host.command("ATE0"))[-1] == "OK"
    async with aiohttp.ClientSession() as http:
        status, _ = await _post(http, emu.control_url, {"modem": "emu001", "fault": "vanish", "seconds": 5,
                                                        "phase": "active"})
        assert status == 202
        try:
            assert await host.command("ATD" + HUMAN + ";", timeout=2) == ["OK"]
        except (TimeoutError, OSError):
            pass  # FAST timing: the call may be up, and the port gone, before the host read its OK
        with pytest.raises((TimeoutError, OSError)):
            await host.command("AT", timeout=0.3)  # the port hung up under the host
    host.close()
    call = emu.network.calls[-1]
    assert call.callee == HUMAN and call.answered  # answered, then the modem was gone
    assert call.cause is not None and emu.modems[1].call is None


async def test_armed_faults_refuse_bad_input_when_armed(emu: Emulator) -> None:
    url = emu.control_url
    async with aiohttp.ClientSession() as http:
        status, body = await _post(http, url, {"modem": "emu000", "fault": "stuck", "phase": "ringing"})
        assert status == 422 and body["detail"].startswith("phase: expected one of dialing, alerting, active")
        status, body = await _post(http, url, {"modem": "emu042", "fault": "stuck", "phase": "active"})
        assert status == 404 and "emu042" in body["detail"]
        status, body = await _post(http, url, {"modem": "emu000", "fault": "melt", "phase": "active"})
        assert status == 422 and body["detail"].startswith("fault:")
        status, body = await _post(http, url, {"modem": "emu000", "fault": "lose_urc", "phase": "dialing"})
        assert status == 422 and body["detail"].startswith("prefix:")
        status, body = await _post(http, url, {"modem": "emu000", "fault": "stuck", "seconds": "long", "phase": "dialing"})
        assert status == 422 and body["detail"].startswith("seconds:")
        async with http.get(f"{url}/faults") as r:
            assert (await r.json())["armed"] == []  # nothing bad was armed
