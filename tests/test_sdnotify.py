"""The sd_notify protocol (common/sdnotify.py) against a real datagram socket: the
messages, the addresses, the watchdog's cadence and silence, and both services started as
processes with $NOTIFY_SOCKET and $WATCHDOG_USEC set, as systemd starts them."""
from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import signal
import sys
import time

import aiohttp
import pytest
from notify_peer import NotifyPeer
from system_harness import appliance_config, free_port, toml_text

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


# -- the two services, started as systemd starts them --------------------------------------

#: The processes' WATCHDOG_USEC: a ping every second; every gap must stay under it.
WATCHDOG = 2.0


async def simrotor(*args: str, env: dict[str, str] | None = None, log=None) -> asyncio.subprocess.Process:  # type: ignore[no-untyped-def]
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "simrotor", *args, env={**os.environ, **(env or {})},
        stdout=log or asyncio.subprocess.PIPE, stderr=log or asyncio.subprocess.PIPE)


async def output(*args: str) -> dict:
    proc = await simrotor(*args, "--json")
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    return json.loads(out)


def pings_after_ready(peer: NotifyPeer) -> list[float]:
    ready = next(t for t, m in peer.snapshot() if "READY" in m)
    return [t for t, m in peer.snapshot() if "WATCHDOG" in m and t >= ready]


async def until_pings(peer: NotifyPeer, n: int, timeout: float = 30.0) -> list[float]:
    async with asyncio.timeout(timeout):
        while len(pings := pings_after_ready(peer)) < n:
            await asyncio.sleep(0.1)
    return pings


@pytest.mark.timeout(180)
@pytest.mark.bank(modems=2, sims_per_modem=1)
async def test_controller_and_appliance_processes_speak_sd_notify(tmp_path, bank):
    """Both services as child processes with $NOTIFY_SOCKET and $WATCHDOG_USEC: READY once
    serving, STATUS naming appliances and campaigns / modems and the link, WATCHDOG within
    the interval all along, STOPPING at SIGTERM, exit 0."""
    port = free_port()
    (tmp_path / "c.toml").write_text(f'[controller]\nstore = "{tmp_path / "c.db"}"\nlisten = "127.0.0.1:{port}"\n'
                                     "[link]\nheartbeat_seconds = 1.0\n")
    cpeer, apeer = NotifyPeer(tmp_path / "c.sock"), NotifyPeer(tmp_path / "a.sock")
    log = open(tmp_path / "services.log", "ab")  # noqa: SIM115, ASYNC230 - both processes write to it until the end
    procs: list[asyncio.subprocess.Process] = []
    try:
        env = {"WATCHDOG_USEC": str(int(WATCHDOG * 1e6))}
        procs.append(await simrotor("controller", "run", "--config", str(tmp_path / "c.toml"), "--log-level", "WARNING",
                                    env={**env, **cpeer.env}, log=log))
        ready = await cpeer.wait_for("controller READY", lambda m: "READY" in m, 30)
        assert ready["STATUS"] == f"appliances connected: 0, campaigns running: 0; API http://127.0.0.1:{port}"

        key = (await output("controller", "keys", "create", "--config", str(tmp_path / "c.toml"), "--name", "crm"))["key"]
        token = (await output("controller", "enroll-token", "--config", str(tmp_path / "c.toml")))["token"]
        link = f"ws://127.0.0.1:{port}/v1/link"
        (tmp_path / "a.toml").write_text(toml_text(appliance_config(tmp_path, bank.state, link, tmp_path / "cred")))
        await output("provision", "enroll", "--config", str(tmp_path / "a.toml"),
                     "--controller", f"http://127.0.0.1:{port}", "--token", token)
        procs.append(await simrotor("appliance", "run", "--config", str(tmp_path / "a.toml"), "--log-level", "WARNING",
                                    env={**env, **apeer.env}, log=log))
        ready = await apeer.wait_for("appliance READY", lambda m: "READY" in m, 60)
        # READY comes at the end of start-up: every modem tried, the link only just dialling
        assert ready["STATUS"] == f"2/2 modems up; link down, reconnecting to {link}"
        await apeer.wait_for("appliance STATUS with its link up",
                             lambda m: m.get("STATUS") == f"2/2 modems up; link connected to {link}", 30)
        await cpeer.wait_for("controller STATUS with the appliance",
                             lambda m: m.get("STATUS", "").startswith("appliances connected: 1, campaigns running: 0"), 30)
        async with aiohttp.ClientSession() as s, s.post(
                f"http://127.0.0.1:{port}/v1/campaigns", headers={"Authorization": f"Bearer {key}"},
                json={"id": "c1", "name": "January", "start": True, "strategy": [{"kind": "call", "attempts": 1}]}) as r:
            assert r.status == 201, await r.text()
        await cpeer.wait_for("controller STATUS with the campaign",
                             lambda m: m.get("STATUS", "").startswith("appliances connected: 1, campaigns running: 1"), 30)

        for peer in (cpeer, apeer):
            pings = await until_pings(peer, 4)
            gaps = [b - a for a, b in itertools.pairwise(pings)]
            assert all(g < WATCHDOG for g in gaps), gaps  # systemd's rule: a ping within WatchdogSec

        for proc, peer in ((procs[1], apeer), (procs[0], cpeer)):
            proc.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(proc.wait(), 40) == 0
            stopping = [m for _, m in peer.snapshot() if "STOPPING" in m]
            assert len(stopping) == 1 and stopping[0]["STOPPING"] == "1"
            # nothing after STOPPING but silence: no READY twice, no ping after it
            last = max(t for t, m in peer.snapshot() if "STOPPING" in m)
            assert [m for t, m in peer.snapshot() if t > last and "WATCHDOG" in m] == []
            assert len([m for _, m in peer.snapshot() if "READY" in m]) == 1
    finally:
        for proc in procs:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        log.close()
        cpeer.close()
        apeer.close()


def test_appliance_status_line_names_the_modems_down_and_the_link():
    from types import SimpleNamespace

    from appliance.channel import Channel, ChannelState
    from appliance.runtime import status_line

    states = [ChannelState.IDLE, ChannelState.BUSY, ChannelState.FAULTY, ChannelState.QUARANTINED,
              ChannelState.OPENING, ChannelState.FAULTY, ChannelState.FAULTY, ChannelState.COOLING]
    channels = [Channel(f"m{i}", f"/dev/x{i}", 1, state=s) for i, s in enumerate(states)]
    assert status_line(channels, None) == ("4/8 modems up (down: m2 faulty, m4 opening, m5 faulty, +1 more); "
                                           "no link (standalone)")
    link = SimpleNamespace(connected=asyncio.Event(), url="wss://c:8480/v1/link")
    assert status_line(channels[:2], link) == "2/2 modems up; link down, reconnecting to wss://c:8480/v1/link"  # type: ignore[arg-type]
    link.connected.set()
    assert status_line(channels[:2], link) == "2/2 modems up; link connected to wss://c:8480/v1/link"  # type: ignore[arg-type]
