"""A deleted webhook's deliveries (found writing the example CRM client, issue 16): deleting
a webhook drops its pending deliveries and its dead letters, which could go nowhere; a row
left without its webhook (enqueued while it was being deleted) is never due and never keeps
the delivery worker busy. Before, a dead letter of a deleted webhook, replayed, stayed
pending for ever with a past ``next_at``, and the worker looked at it in a loop without
waiting: one core at 100 % until the controller restarted."""
from __future__ import annotations

import asyncio
import time

from controller.webhooks import Deliverer


def _insert(store, rows) -> None:
    with store.tx() as c:
        c.executemany("INSERT INTO deliveries(webhook_id, event, payload, state, next_at, created_at, updated_at)"
                      " VALUES (?, 'result', '{}', ?, ?, ?, ?)", rows)


async def test_a_deleted_webhooks_deliveries_neither_replay_nor_keep_the_worker_busy(open_store):
    store = open_store()
    now = time.time()
    for wid in ("wh_gone", "wh_kept"):
        store.add_webhook(wid, "http://127.0.0.1:9/hook", "s" * 20, ["result"], now)
    _insert(store, [(w, state, now, now, now) for w in ("wh_gone", "wh_kept") for state in ("dead", "delivered")])
    assert store.delete_webhook("wh_gone")
    states = store.conn.execute("SELECT webhook_id, state FROM deliveries ORDER BY webhook_id, state").fetchall()
    assert [tuple(r) for r in states] == [("wh_gone", "delivered"), ("wh_kept", "dead"), ("wh_kept", "delivered")]
    _insert(store, [("wh_gone", "pending", now - 5, now, now)])  # enqueued while the webhook was deleted
    assert store.due_deliveries(now, 100) == [] and store.next_delivery_at() is None
    assert store.replay_dead(None, now) == 1  # wh_kept's dead letter, not the orphan
    assert store.next_delivery_at() == now
    store.delete_webhook("wh_kept")

    assert await _looks_in_one_second(store, store.next_delivery_at) <= 4  # a look each poll (0.5 s)
    # the control: the old answer (the orphan's past next_at) is counted as the spin it was
    assert await _looks_in_one_second(store, lambda: now - 5) > 50


async def _looks_in_one_second(store, next_delivery_at) -> int:
    """How often the delivery worker asks when its next delivery is due, in one second."""
    looks = 0

    def counted() -> float | None:
        nonlocal looks
        looks += 1
        return next_delivery_at()

    store.next_delivery_at = counted
    worker = asyncio.ensure_future(Deliverer(store, time.time, allow_private=True).run_forever(poll=0.5))
    await asyncio.sleep(1.0)
    worker.cancel()
    await asyncio.gather(worker, return_exceptions=True)
    assert looks >= 1, "the worker never looked"
    return looks
