"""Fault points: named moments of the controller's work at which a test can stop the
process, to kill it there (``kill -9`` mid-dispatch, mid-ingest, mid-delivery) instead of
guessing the moment with a sleep.

``SIMROTOR_CONTROLLER_FAULT="<point>:<n>"`` (unset in production) makes the ``n``-th pass
through ``point`` write ``fault point <point> reached (pid <pid>)`` to stderr and stop the
process with SIGSTOP, frozen exactly there until the test sends SIGKILL (or SIGCONT). The
points (each after a commit and before what tells the other side):

* ``dispatch.leased``  jobs claimed and leased in the store, the batch not yet sent;
* ``ingest.stored``    a results batch stored, its ``results_ack`` not yet sent;
* ``webhook.posted``   a delivery answered 2xx by the receiver, not yet marked delivered.
"""
from __future__ import annotations

import os
import signal
import sys
from typing import Final

ENV: Final = "SIMROTOR_CONTROLLER_FAULT"


def _parse(raw: str | None) -> tuple[str, int] | None:
    if not raw:
        return None
    point, _, n = raw.rpartition(":")
    if not point or not n.isdigit() or int(n) < 1:
        raise ValueError(f"{ENV}={raw!r}: expected <point>:<n>, e.g. ingest.stored:2 (n from 1)")
    return point, int(n)


_armed = _parse(os.environ.get(ENV))
_passes: dict[str, int] = {}


def fault(point: str) -> None:
    """A fault point: nothing unless ``SIMROTOR_CONTROLLER_FAULT`` names it (see above)."""
    if _armed is None or _armed[0] != point:
        return
    _passes[point] = _passes.get(point, 0) + 1
    if _passes[point] == _armed[1]:
        sys.stderr.write(f"fault point {point} reached (pid {os.getpid()})\n")
        sys.stderr.flush()
        os.kill(os.getpid(), signal.SIGSTOP)
