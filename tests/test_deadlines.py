"""Coarse deadlines (modem_drivers/deadlines.py): never early, shared loop timers,
asyncio.timeout's contract for the task that uses them."""
from __future__ import annotations

import asyncio

import pytest

from modem_drivers.deadlines import GRANULARITY, coarse_timeout, deadlines


async def test_fires_not_before_its_time_and_shares_timers() -> None:
    loop = asyncio.get_running_loop()
    d = deadlines()
    assert deadlines() is d  # one per loop
    fired: list[tuple[int, float]] = []
    t0 = loop.time()
    for i in range(500):  # 500 deadlines inside 0.1 s: at most 3 buckets, so 3 timers
        d.add(t0 + 0.05 + i * 0.0002, lambda i=i: fired.append((i, loop.time())))
    assert len(d._buckets) <= 3
    token = d.add(t0 + 0.06, lambda: fired.append((-1, loop.time())))
    d.cancel(token)
    assert d.pending() == 500
    await asyncio.sleep(0.05 + 0.1 + 2 * GRANULARITY)
    assert sorted(i for i, _ in fired) == list(range(500))  # the cancelled one never ran
    for i, at in fired:
        assert at >= t0 + 0.05 + i * 0.0002 - 1e-3  # never early (loop clock resolution aside)
    assert d.pending() == 0


async def test_a_failing_callback_does_not_skip_the_bucket(caplog: pytest.LogCaptureFixture) -> None:
    loop = asyncio.get_running_loop()
    d = deadlines()
    ran = []
    d.add(loop.time() + 0.01, lambda: 1 / 0)
    d.add(loop.time() + 0.01, lambda: ran.append(True))
    await asyncio.sleep(0.01 + 2 * GRANULARITY)
    assert ran == [True]
    assert "deadline callback" in caplog.text


async def test_coarse_timeout_raises_timeout_error_after_the_delay() -> None:
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    with pytest.raises(TimeoutError):
        async with coarse_timeout(0.1):
            await asyncio.sleep(10)
    assert loop.time() - t0 >= 0.1 - 1e-3
    async with coarse_timeout(None):  # no deadline
        await asyncio.sleep(0)
    async with coarse_timeout(1.0):  # finishing in time leaves nothing behind
        await asyncio.sleep(0)
    assert asyncio.current_task().cancelling() == 0  # type: ignore[union-attr]
    with pytest.raises(TimeoutError):
        async with coarse_timeout(0):
            await asyncio.sleep(1)


async def test_an_outer_cancel_stays_a_cancel() -> None:
    started = asyncio.Event()

    async def waiter() -> None:
        async with coarse_timeout(5.0):
            started.set()
            await asyncio.sleep(10)

    task = asyncio.ensure_future(waiter())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert deadlines().pending() == 0  # its deadline was withdrawn on the way out
