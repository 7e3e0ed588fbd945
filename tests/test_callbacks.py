"""Callbacks answered (issue 14): a person calling back a number he was shown is answered,
hears a short message naming the creditor of the SIM's pool, and keys 1 (call me back) or
9 (stop calling this number); the choice reaches the CRM by API and webhook.

From the bottom up: ``Modem.answer`` on the emulator (an audio-port modem and one without);
the answering menu of ``appliance/callbacks.py`` through a real Appliance; then the whole
system through the controller. The emulator keeps what the caller heard: the PCM on an
audio port (the message is found in it byte for byte), the TTS text elsewhere."""
from __future__ import annotations

import asyncio

import pytest

from modem_drivers.call import CallState
from modem_drivers.emulator import Emulator, Timing
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
