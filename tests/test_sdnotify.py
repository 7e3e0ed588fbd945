"""The sd_notify protocol (common/sdnotify.py) against a real datagram socket: the
messages, the addresses, the watchdog's cadence and silence, and both services started as
processes with $NOTIFY_SOCKET and $WATCHDOG_USEC set, as systemd starts them."""
from __future__ import annotations

import asyncio
import contextlib
import itertools
import time

import pytest
from notify_peer import NotifyPeer

from common.sdnotify import (
    Notifier,
    NotifyError,
    keep_alive,
    one_line,
    ping_interval,
    socket_address,
    watchdog_seconds,
)


@pytest.fixture
def peer(tmp_path):
    p = NotifyPeer(tmp_path / "notify.sock")
    yield p
    p.close()


async def arrived(peer: NotifyPeer, n: int, timeout: float = 5.0) -> list[dict[str, str]]:
    async with asyncio.timeout(timeout):
        while len(peer.snapshot()) < n:
            await asyncio.sleep(0.01)
    return [m for _, m in peer.snapshot()]


async def test_ready_status_stopping_arrive_as_datagrams(peer):
    n = Notifier(peer.env)
    assert n.enabled and n.watchdog is None
    assert n.ready("3/4 modems up\nlink connected")
    assert n.status("draining")
    assert n.stopping()
    got = await arrived(peer, 3)
    # a newline in a status would start another key: it is folded into one line
    assert got == [{"READY": "1", "STATUS": "3/4 modems up link connected"}, {"STATUS": "draining"}, {"STOPPING": "1"}]
    n.close()


async def test_abstract_socket_name():
    p = NotifyPeer(None)
    try:
        assert p.name.startswith("@")
        n = Notifier(p.env)
        assert n.address is not None and n.address.startswith("\0")
        assert n.ready()
        assert await arrived(p, 1) == [{"READY": "1"}]
    finally:
        p.close()


def test_outside_systemd_every_call_is_a_no_op():
    n = Notifier({})
    assert not n.enabled
    assert not n.ready() and not n.ping() and not n.stopping()


def test_addresses_and_watchdog_variables():
    assert socket_address(None) is None and socket_address("") is None
    assert socket_address("/run/systemd/notify") == "/run/systemd/notify"
    assert socket_address("@x") == "\0x"
    with pytest.raises(NotifyError, match="vsock"):
        socket_address("vsock:2:1234")
    assert watchdog_seconds({"WATCHDOG_USEC": "30000000"}, pid=5) == 30.0
    assert watchdog_seconds({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "5"}, pid=5) == 30.0
    assert watchdog_seconds({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "6"}, pid=5) is None  # another process's
    assert watchdog_seconds({}, pid=5) is None
    with pytest.raises(NotifyError, match="WATCHDOG_USEC='abc'"):
        watchdog_seconds({"WATCHDOG_USEC": "abc"}, pid=5)
    assert one_line(" a\n b\t c ") == "a b c"


def test_bad_variables_switch_notify_off_with_a_warning(caplog):
    n = Notifier({"NOTIFY_SOCKET": "vsock:2:1"})
    assert not n.enabled and "vsock" in caplog.text


async def test_a_gone_supervisor_is_logged_once_and_never_raises(tmp_path, caplog):
    n = Notifier({"NOTIFY_SOCKET": str(tmp_path / "nobody.sock")})
    assert not n.ready() and not n.ping()
    assert caplog.text.count("cannot send") == 1


async def test_watchdog_pings_at_half_the_interval_with_the_status_when_it_changes(peer):
    n = Notifier({**peer.env, "WATCHDOG_USEC": "1000000"})
    assert ping_interval(n) == pytest.approx(0.5)
    lines = iter(["a", "a", "b"])
    task = asyncio.create_task(keep_alive(n, lambda: next(lines, "b")))
    got = await arrived(peer, 4)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert all(m["WATCHDOG"] == "1" for m in got)
    assert [m.get("STATUS") for m in got[:4]] == ["a", None, "b", None]  # sent again only when it changed
    stamps = [t for t, _ in peer.snapshot()]
    gaps = [b - a for a, b in itertools.pairwise(stamps)]
    assert all(g < 1.0 for g in gaps), gaps  # within WATCHDOG_USEC, as systemd requires


async def test_a_stalled_loop_sends_nothing(peer):
    """The ping is the loop's own work: while the loop is blocked, none goes out."""
    n = Notifier({**peer.env, "WATCHDOG_USEC": "200000"})
    task = asyncio.create_task(keep_alive(n))
    await arrived(peer, 2)
    stalled_from = time.monotonic()
    time.sleep(1.0)  # noqa: ASYNC251 - the stall itself (a blocking call on the loop), not a timing assertion
    stalled_to = time.monotonic()
    await arrived(peer, len(peer.snapshot()) + 2)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    during = [t for t, _ in peer.snapshot() if stalled_from + 0.05 < t < stalled_to]
    assert during == []
    after = [t for t, _ in peer.snapshot() if t >= stalled_to]
    assert len(after) >= 2  # and it resumes with the loop


async def test_a_failing_status_source_does_not_stop_the_pings(peer, caplog):
    n = Notifier({**peer.env, "WATCHDOG_USEC": "200000"})

    def broken() -> str:
        raise RuntimeError("boom")

    task = asyncio.create_task(keep_alive(n, broken))
    got = await arrived(peer, 3)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert all(m == {"WATCHDOG": "1"} for m in got)
    assert "status line" in caplog.text
