"""The audio port on real ptys: frames both ways, bytes one at a time and in odd chunks,
write pacing on the real clock (late writes counted), the health rule, a lost port."""
from __future__ import annotations

import asyncio
import time

import pytest

from modem_drivers.audio import (
    FRAME_BYTES,
    HEALTH_WINDOW,
    RX_QUEUE_FRAMES,
    SILENCE,
    AudioFault,
    AudioFaultReason,
    AudioHealth,
    AudioPort,
    Framer,
    Pacer,
    PortUnavailable,
    Verdict,
)
from tests.audio_peer import AudioPeer


def frame(n: int) -> bytes:
    """A recognisable live frame: every byte n (never all zero for n > 0)."""
    return bytes([n % 256]) * FRAME_BYTES


# -- the framer -----------------------------------------------------------------------------
def test_framer_cuts_whole_frames_from_any_chunking():
    stream = b"".join(frame(i + 1) for i in range(5)) + b"\x07" * 100
    for size in (1, 7, 319, 320, 321, 1000, len(stream)):
        f = Framer()
        out: list[bytes] = []
        for i in range(0, len(stream), size):
            out += f.feed(stream[i : i + size])
        assert out == [frame(i + 1) for i in range(5)], size
        assert f.pending == 100
    f.reset()
    assert f.pending == 0 and f.feed(b"") == []


# -- the pacer on a fake clock -------------------------------------------------------------
def test_pacer_keeps_an_absolute_schedule_and_counts_late_writes():
    p = Pacer()
    assert p.delay(10.0) == 0.0
    assert not p.wrote(10.0)  # first write starts the schedule: slot 1 at 10.020
    assert p.delay(10.005) == pytest.approx(0.015)
    assert not p.wrote(10.021)  # a millisecond late: on schedule, no drift
    assert p.delay(10.021) == pytest.approx(0.019)  # slot 2 stays at 10.040
    assert not p.wrote(10.040 + 0.020)  # exactly one frame late: still tolerated
    assert p.late_writes == 0
    assert p.wrote(10.060 + 0.100)  # blocked 100 ms: late, counted
    assert p.late_writes == 1
    assert p.delay(10.160) == pytest.approx(0.020)  # the schedule restarts there: no burst
    assert not p.wrote(10.180)
    p.reset()
    assert p.delay(99.0) == 0.0 and not p.wrote(200.0) and p.late_writes == 1


# -- the health rule -------------------------------------------------------------------------
def test_health_good_frames():
    h = AudioHealth(answered_at=100.0)
    assert h.verdict(100.1) is Verdict.PENDING
    h.feed(SILENCE, 100.1)
    h.feed(frame(3), 100.2)
    assert h.verdict(100.2) is Verdict.GOOD
    assert h.verdict(200.0) is Verdict.GOOD  # judged at the answer only
    h.check(200.0)


def test_health_no_frames_is_a_fault():
    h = AudioHealth(answered_at=100.0)
    assert h.verdict(100.0 + HEALTH_WINDOW - 0.001) is Verdict.PENDING
    assert h.verdict(100.0 + HEALTH_WINDOW) is Verdict.NO_FRAMES
    with pytest.raises(AudioFault) as err:
        h.check(100.0 + HEALTH_WINDOW)
    assert err.value.reason is AudioFaultReason.NO_FRAMES


def test_health_only_zero_frames_is_a_fault_not_silence():
    h = AudioHealth(answered_at=100.0)
    for i in range(25):  # 500 ms of digital zero
        h.feed(SILENCE, 100.0 + i * 0.02)
    assert h.verdict(100.5) is Verdict.ZERO_FRAMES
    with pytest.raises(AudioFault) as err:
        h.check(100.5)
    assert err.value.reason is AudioFaultReason.ZERO_FRAMES


def test_health_ignores_frames_before_the_answer():
    h = AudioHealth(answered_at=100.0)
    h.feed(frame(9), 99.9)
    assert h.frames == 0 and h.verdict(100.5) is Verdict.NO_FRAMES


def test_one_non_zero_sample_makes_a_frame_live():
    h = AudioHealth(answered_at=0.0)
    h.feed(bytes(FRAME_BYTES - 1) + b"\x01", 0.1)
    assert h.verdict(0.1) is Verdict.GOOD


# -- the port on a pty -----------------------------------------------------------------------
@pytest.fixture
async def peer():
    p = AudioPeer()
    yield p
    p.close()


async def test_frames_both_ways(peer: AudioPeer):
    port = await AudioPort.open(peer.path)
    try:
        frames = [frame(i + 1) for i in range(4)]
        peer.send(b"".join(frames))
        assert [await port.read_frame(timeout=2) for _ in frames] == frames
        for f in frames:
            await port.write_frame(f)
        assert await peer.wait_received(4 * FRAME_BYTES) == b"".join(frames)
        assert (port.stats.frames_in, port.stats.frames_out) == (4, 4)
    finally:
        await port.close()


async def test_bytes_one_at_a_time_and_in_odd_chunks(peer: AudioPeer):
    port = await AudioPort.open(peer.path)
    try:
        stream = b"".join(frame(i + 1) for i in range(3))
        for b in stream[:FRAME_BYTES + 1]:  # one byte at a time, through the tty
            peer.send(bytes([b]))
            await asyncio.sleep(0)
        for i in range(FRAME_BYTES + 1, len(stream), 97):  # then odd chunks
            peer.send(stream[i : i + 97])
            await asyncio.sleep(0.001)
        assert [await port.read_frame(timeout=2) for _ in range(3)] == [frame(1), frame(2), frame(3)]
        with pytest.raises(TimeoutError):
            await port.read_frame(timeout=0.05)
    finally:
        await port.close()


async def test_a_wrong_frame_size_is_refused(peer: AudioPeer):
    port = await AudioPort.open(peer.path)
    try:
        with pytest.raises(ValueError, match="320 bytes"):
            await port.write_frame(b"\x00" * 160)
    finally:
        await port.close()


async def test_writes_are_paced_and_a_blocked_loop_is_counted(peer: AudioPeer):
    port = await AudioPort.open(peer.path)
    loop = asyncio.get_running_loop()
    try:
        async def writer() -> None:
            for i in range(8):
                await port.write_frame(frame(i + 1))

        task = loop.create_task(writer())
        await asyncio.sleep(0.045)  # two or three frames out
        time.sleep(0.12)  # noqa: ASYNC251 - the loop blocked on purpose: six slots missed
        await task
        assert port.stats.late_writes == 1  # counted once, then a new schedule (no burst)
        assert port.stats.frames_out == 8
        await peer.wait_received(8 * FRAME_BYTES)
        assert bytes(peer.received) == b"".join(frame(i + 1) for i in range(8))
    finally:
        await port.close()


async def test_an_unblocked_writer_is_never_late(peer: AudioPeer):
    port = await AudioPort.open(peer.path)
    try:
        loop = asyncio.get_running_loop()
        started = loop.time()
        for i in range(10):
            await port.write_frame(frame(i + 1))
        # nine slots after the first write: paced by the schedule, not written at once
        assert loop.time() - started >= 9 * 0.020 - 0.002
        assert port.stats.late_writes == 0
    finally:
        await port.close()


async def test_reads_are_bounded_and_drops_counted(peer: AudioPeer):
    port = await AudioPort.open(peer.path)
    try:
        total = RX_QUEUE_FRAMES + 10
        await peer.feed(b"".join(frame(i + 1) for i in range(total)))
        async with asyncio.timeout(3):
            while port.stats.frames_in < total:
                await asyncio.sleep(0.005)
        assert port.pending_frames() == RX_QUEUE_FRAMES
        assert port.stats.dropped_frames == 10
        assert await port.read_frame() == frame(11)  # the oldest kept
    finally:
        await port.close()


async def test_health_on_the_port_good_frames(peer: AudioPeer):
    port = await AudioPort.open(peer.path)
    try:
        peer.send(frame(1))  # before the answer: dropped at begin_call
        await asyncio.sleep(0.02)
        port.begin_call()
        assert port.pending_frames() == 0
        asyncio.get_running_loop().call_later(0.1, peer.send, SILENCE + frame(5))
        await port.wait_healthy()
        assert await port.read_frame(timeout=1) == SILENCE
    finally:
        await port.close()


@pytest.mark.parametrize("sent, reason", [(b"", AudioFaultReason.NO_FRAMES),
                                          (SILENCE * 10, AudioFaultReason.ZERO_FRAMES)])
async def test_health_on_the_port_faults(peer: AudioPeer, sent: bytes, reason: AudioFaultReason):
    port = await AudioPort.open(peer.path)
    try:
        port.begin_call()
        if sent:
            asyncio.get_running_loop().call_later(0.05, peer.send, sent)
        with pytest.raises(AudioFault) as err:
            await port.wait_healthy()
        assert err.value.reason is reason
    finally:
        await port.close()


async def test_call_ending_before_the_verdict_is_no_fault(peer: AudioPeer):
    port = await AudioPort.open(peer.path)
    try:
        port.begin_call()
        asyncio.get_running_loop().call_later(0.05, port.end_call)
        await port.wait_healthy()  # returns: nothing to judge
    finally:
        await port.close()


async def test_a_lost_port_is_an_audio_fault(peer: AudioPeer):
    port = await AudioPort.open(peer.path)
    reader = asyncio.get_running_loop().create_task(port.read_frame())
    await asyncio.sleep(0.02)
    peer.vanish()  # USB unplugged: EIO on the port's fd
    with pytest.raises(AudioFault) as err:
        await asyncio.wait_for(reader, 2)
    assert err.value.reason is AudioFaultReason.PORT_LOST and port.closed
    with pytest.raises(AudioFault):
        await port.write_frame(SILENCE)
    await port.close()


async def test_no_such_port(tmp_path):
    with pytest.raises(PortUnavailable, match="no such port"):
        await AudioPort.open(str(tmp_path / "ttyUSB9"))
