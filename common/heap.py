"""The garbage collector's settings for a long-running asyncio process (the appliance, the
controller).

Nearly all our garbage is freed by reference counting; the collector only has cycles to
find, yet CPython's defaults have it walk the heap often, and a full collection walks all of
it while the event loop waits.
"""
from __future__ import annotations

import gc
from typing import Final

#: CPython's default (700, 10, 10) runs a young collection every 700 net allocations (every
#: few AT transactions at 256 modems) and a full one every 70,000, which walks the whole heap
#: (ports, parsers, rotation state) and stalls the loop for tens of ms. With (10,000, 50,
#: 100), ``simrotor bench multiplex --modems 256`` spent 25-30 % less CPU per AT transaction
#: and its dispatch p99 fell from 75-270 ms to 23-35 ms (five runs each, before/after).
GC_THRESHOLDS: Final = (10_000, 50, 100)


def tune_gc() -> None:
    """Collector settings for a long-running process (see ``GC_THRESHOLDS``)."""
    gc.set_threshold(*GC_THRESHOLDS)


def freeze_startup_heap() -> None:
    """Move everything alive after start-up (modules, the app, ports, the store and its
    pool, config) out of the collector's sight: it lives as long as the process, and full
    collections no longer walk it (``gc.freeze``, Python 3.7+). In the controller at 500
    API requests/s on PostgreSQL, each full collection had stalled the loop 38-52 ms every
    few seconds; 1-3 ms after (the first ~13 ms)."""
    gc.collect()
    gc.freeze()
