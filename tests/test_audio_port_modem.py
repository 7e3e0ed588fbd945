"""The audio set-up rows of each dialect, sent at their moment in a call, checked with a
scripted AT peer (tests/at_peer.py) and an audio pty (tests/audio_peer.py): Huawei
AT^DDSETEX=2 and SIM7600 AT+CPCMREG=1 after the connect report, Quectel EC2x
AT+QPCMV=1,0 before each dial, nothing on SIM800 and generic modems, and nothing at all on
a modem whose audio port is not configured."""
from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from modem_drivers.audio import FRAME_BYTES, SILENCE, AudioFault, AudioFaultReason
from modem_drivers.call import CallState
from modem_drivers.dialects import (
    DIALECTS,
    GENERIC,
    HUAWEI,
    QUECTEL,
    SIMCOM,
    AudioMoment,
)
from modem_drivers.errors import Unsupported
from modem_drivers.modem import CallEndedBeforeAudio, Modem
from tests.at_peer import Peer
from tests.audio_peer import AudioPeer

NUMBER = "+48601000123"
LIVE = b"\x10\x00" * (FRAME_BYTES // 2)


class _OkByDefault(dict):
    """Replies for a scripted modem: anything not scripted is simply OK."""

    def get(self, key, default=None):  # type: ignore[no-untyped-def]
        return super().get(key, b"\r\nOK\r\n")


@dataclass(frozen=True)
class Vendor:
    manufacturer: str
    model: str
    dialect: str
    step: str | None  # the audio set-up command, None: no audio port
    connect: tuple[bytes, ...]  # the URCs that say the call is answered

    def script(self, peer: Peer) -> None:
        peer.replies = _OkByDefault({
            "AT+CGMI": f"\r\n{self.manufacturer}\r\n\r\nOK\r\n".encode(),
            "AT+CGMM": f"\r\n{self.model}\r\n\r\nOK\r\n".encode(),
            "AT+CPIN?": b"\r\n+CPIN: READY\r\n\r\nOK\r\n",
            "AT+CLCC=1": b"\r\nOK\r\n",
        })

        def dial(p: Peer, command: str) -> bytes:
            for i, urc in enumerate(self.connect):
                p.later(0.05 * (i + 1), b"\r\n" + urc + b"\r\n")
            return b"\r\nOK\r\n"

        peer.replies[f"ATD{NUMBER};"] = dial


HUAWEI_E1550 = Vendor("huawei", "E1550", "huawei", "AT^DDSETEX=2", (b"^ORIG: 1,0", b"^CONF: 1", b"^CONN: 1,0"))
SIM7600 = Vendor("SIMCOM_Ltd", "SIMCOM_SIM7600E-H", "simcom", "AT+CPCMREG=1",
                 (b'+CLCC: 1,0,2,0,0,"' + NUMBER.encode() + b'",145',
                  b'+CLCC: 1,0,0,0,0,"' + NUMBER.encode() + b'",145', b"VOICE CALL: BEGIN"))
EC25 = Vendor("Quectel", "EC25", "quectel", "AT+QPCMV=1,0",
              (b'^DSCI: 1,0,3,0,"' + NUMBER.encode() + b'",145', b'^DSCI: 1,0,0,0,"' + NUMBER.encode() + b'",145'))
SIM800 = Vendor("SIMCOM_Ltd", "SIMCOM_SIM800", "simcom", None, (b'+CLCC: 1,0,0,0,0,"' + NUMBER.encode() + b'",145',))
M35 = Vendor("Quectel", "Quectel_M35", "quectel", None, (b'^DSCI: 1,0,0,0,"' + NUMBER.encode() + b'",145',))
GENERIC_MODEM = Vendor("ACME", "X1", "generic", None, ())
WITH_PORT = (HUAWEI_E1550, SIM7600, EC25)
AUDIO_STEPS = ("AT^DDSETEX=2", "AT+CPCMREG=1", "AT+QPCMV=1,0")


@pytest.fixture
async def audio() -> Iterator[AudioPeer]:
    p = AudioPeer()
    yield p
    p.close()


async def opened(tmp_path, vendor: Vendor) -> tuple[Peer, Modem]:
    peer = Peer(tmp_path)
    vendor.script(peer)
    modem = await Modem.open(str(peer.link), name=f"{vendor.dialect}-peer")
    assert modem.dialect.name == vendor.dialect
    return peer, modem


async def answered(modem: Modem):
    call = await modem.dial(NUMBER)
    assert await call.wait_for(CallState.ACTIVE, timeout=3) is CallState.ACTIVE
    return call


# -- the rows -------------------------------------------------------------------------------
def test_rows_say_which_modems_have_a_port_when_and_what():
    assert HUAWEI.audio is not None and HUAWEI.audio.moment is AudioMoment.AFTER_CONNECT
    assert HUAWEI.audio.step.command == "AT^DDSETEX=2" and HUAWEI.audio.fits("E1550")
    assert SIMCOM.audio is not None and SIMCOM.audio.moment is AudioMoment.AFTER_CONNECT
    assert SIMCOM.audio.step.command == "AT+CPCMREG=1"
    assert SIMCOM.audio.fits("SIMCOM_SIM7600E-H") and not SIMCOM.audio.fits("SIM800")
    assert QUECTEL.audio is not None and QUECTEL.audio.moment is AudioMoment.BEFORE_DIAL
    assert QUECTEL.audio.step.command == "AT+QPCMV=1,0"
    assert QUECTEL.audio.fits("EC25") and not QUECTEL.audio.fits("Quectel_M35") and not QUECTEL.audio.fits("UC15")
    assert GENERIC.audio is None
    assert all(d.audio is None or d.audio.step.doc and d.audio.port for d in DIALECTS)


# -- each vendor's step at its moment -----------------------------------------------------------
@pytest.mark.parametrize("vendor", WITH_PORT, ids=lambda v: v.model)
async def test_setup_step_at_its_moment_and_live_audio(tmp_path, audio: AudioPeer, vendor: Vendor):
    peer, modem = await opened(tmp_path, vendor)
    try:
        port = await modem.audio_port(audio.path)
        assert modem.audio is port
        assert await modem.audio_port(audio.path) is port  # the same port again
        peer.received.clear()
        call = await modem.dial(NUMBER)
        moment = modem.audio_setup().moment  # type: ignore[union-attr]
        if moment is AudioMoment.BEFORE_DIAL:
            assert peer.received[:2] == [vendor.step, f"ATD{NUMBER};"]
        assert await call.wait_for(CallState.ACTIVE, timeout=3) is CallState.ACTIVE
        audio.send(SILENCE + LIVE)  # the voice path comes up after the answer
        assert await asyncio.wait_for(modem.audio_ready(), 2) is port
        if moment is AudioMoment.AFTER_CONNECT:
            dial_at = peer.received.index(f"ATD{NUMBER};")
            assert peer.received[dial_at + 1 :].count(vendor.step) == 1
            assert vendor.step not in peer.received[:dial_at]
        assert await port.read_frame(timeout=1) == SILENCE
        await port.write_frame(LIVE)
        assert await audio.wait_received(FRAME_BYTES) == LIVE
        await modem.hangup()
        assert peer.received.count(vendor.step) == 1
    finally:
        await modem.close()
        peer.close()
    assert port.closed  # closed with the modem


@pytest.mark.parametrize("vendor", WITH_PORT, ids=lambda v: v.model)
async def test_step_is_sent_again_for_every_call(tmp_path, audio: AudioPeer, vendor: Vendor):
    peer, modem = await opened(tmp_path, vendor)
    try:
        await modem.audio_port(audio.path)
        for _ in range(2):
            await answered(modem)
            audio.send(LIVE)
            await asyncio.wait_for(modem.audio_ready(), 2)
            await modem.hangup()
        assert peer.received.count(vendor.step) == 2
    finally:
        await modem.close()
        peer.close()


@pytest.mark.parametrize("vendor", (SIM800, M35, GENERIC_MODEM), ids=lambda v: v.model)
async def test_modems_without_an_audio_port(tmp_path, audio: AudioPeer, vendor: Vendor):
    peer, modem = await opened(tmp_path, vendor)
    try:
        assert modem.audio_setup() is None
        with pytest.raises(Unsupported, match="no audio port"):
            await modem.audio_port(audio.path)
        assert modem.audio is None
    finally:
        await modem.close()
        peer.close()


@pytest.mark.parametrize("vendor", WITH_PORT, ids=lambda v: v.model)
async def test_no_port_configured_leaves_the_call_path_alone(tmp_path, vendor: Vendor):
    peer, modem = await opened(tmp_path, vendor)
    try:
        await answered(modem)
        await asyncio.sleep(0.1)
        await modem.hangup()
        assert not set(AUDIO_STEPS) & set(peer.received)
        with pytest.raises(Unsupported):
            await modem.audio_ready()
    finally:
        await modem.close()
        peer.close()


# -- faults ---------------------------------------------------------------------------------
@pytest.mark.parametrize("vendor", WITH_PORT, ids=lambda v: v.model)
@pytest.mark.parametrize("sent, reason", [(b"", AudioFaultReason.NO_FRAMES),
                                          (SILENCE * 5, AudioFaultReason.ZERO_FRAMES)])
async def test_dead_audio_after_the_answer_is_an_audio_fault(tmp_path, audio: AudioPeer, vendor: Vendor,
                                                             sent: bytes, reason: AudioFaultReason):
    peer, modem = await opened(tmp_path, vendor)
    try:
        await modem.audio_port(audio.path)
        await answered(modem)
        if sent:
            audio.send(sent)
        with pytest.raises(AudioFault) as err:
            await asyncio.wait_for(modem.audio_ready(), 2)
        assert err.value.reason is reason
    finally:
        await modem.close()
        peer.close()


async def test_after_connect_step_refused_is_an_audio_fault(tmp_path, audio: AudioPeer):
    peer, modem = await opened(tmp_path, HUAWEI_E1550)
    peer.replies["AT^DDSETEX=2"] = b"\r\nERROR\r\n"
    try:
        await modem.audio_port(audio.path)
        await answered(modem)
        audio.send(LIVE)
        with pytest.raises(AudioFault) as err:
            await asyncio.wait_for(modem.audio_ready(), 2)
        assert err.value.reason is AudioFaultReason.SETUP_REFUSED
    finally:
        await modem.close()
        peer.close()


async def test_before_dial_step_refused_places_no_call(tmp_path, audio: AudioPeer):
    peer, modem = await opened(tmp_path, EC25)
    peer.replies["AT+QPCMV=1,0"] = b"\r\nERROR\r\n"
    try:
        await modem.audio_port(audio.path)
        with pytest.raises(AudioFault) as err:
            await modem.dial(NUMBER)
        assert err.value.reason is AudioFaultReason.SETUP_REFUSED
        assert f"ATD{NUMBER};" not in peer.received and modem.call is None
    finally:
        await modem.close()
        peer.close()


async def test_a_lost_audio_port_places_no_call_until_it_is_back(tmp_path):
    audio = AudioPeer(tmp_path / "ttyUSB4")
    peer, modem = await opened(tmp_path, SIM7600)
    try:
        port = await modem.audio_port(audio.path)
        audio.vanish()
        (tmp_path / "ttyUSB4").unlink()  # udev removes the link with the device
        async with asyncio.timeout(2):
            while not port.closed:
                await asyncio.sleep(0.01)
        with pytest.raises(AudioFault) as err:
            await modem.dial(NUMBER)
        assert err.value.reason is AudioFaultReason.PORT_LOST
        assert f"ATD{NUMBER};" not in peer.received
        audio.reappear()  # the modem re-enumerated: the same link, a new tty
        await answered(modem)
        assert modem.audio is not None and modem.audio is not port and not modem.audio.closed
        audio.send(LIVE)
        assert await asyncio.wait_for(modem.audio_ready(), 2) is modem.audio
    finally:
        await modem.close()
        peer.close()
        audio.close()


async def test_callee_hanging_up_before_the_verdict(tmp_path, audio: AudioPeer):
    peer, modem = await opened(tmp_path, HUAWEI_E1550)
    try:
        await modem.audio_port(audio.path)
        call = await answered(modem)
        peer.send(b"\r\n^CEND: 1,1,104,16\r\n")
        await call.wait_released(2)
        with pytest.raises(CallEndedBeforeAudio):
            await asyncio.wait_for(modem.audio_ready(), 2)
    finally:
        await modem.close()
        peer.close()


async def test_a_call_job_whose_audio_fails_before_the_dial_is_a_channel_failure(tmp_path, audio: AudioPeer):
    """No call was placed: the callee's attempt is not spent (``channel_error``, retried soon
    on another SIM), and ``audio_lost`` has the bank check this channel's audio."""
    from appliance.jobs.base import Placement
    from appliance.jobs.call import run_call
    from appliance.scheduler.retry import CHANNEL_FAILURES

    peer, modem = await opened(tmp_path, EC25)
    peer.replies["AT+QPCMV=1,0"] = b"\r\nERROR\r\n"
    try:
        await modem.audio_port(audio.path)
        job = {"id": "j1", "kind": "call", "callee": NUMBER, "call": {"on_answer": "amd", "on_human": "hangup",
                                                                       "on_machine": "hangup"}}
        result = await run_call(modem, job, Placement("ch1", "sim1", "+48600000001", 1), {})
        assert result["outcome"] in CHANNEL_FAILURES and result["audio_lost"] is True, result
        assert result["error"].startswith("audio port:"), result
        assert f"ATD{NUMBER};" not in peer.received
    finally:
        await modem.close()
        peer.close()
