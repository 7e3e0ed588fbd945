"""What a job does on a channel: one executor per job kind, found in ``EXECUTORS``.

* ``call`` (``call.py``) — dial, wait for the answer, do the job's ``on_answer``, hang up;
* ``sms`` (``sms.py``) — submit; the status reports are awaited off the channel;
* ``hlr`` (``hlr.py``) — an HLR-style check by SMS ping or probe call.

Executors do not touch the store: the scheduler writes the attempt before running one
and the result after, so a crash between the two is recovered as ``interrupted``.
"""
from __future__ import annotations

from typing import Final

from .base import Context, Executed, Executor, Followup, Placement, result_base
from .call import ANSWER_ACTIONS, execute_call, run_call
from .hlr import (
    HLR_METHODS,
    PROBE_CAUSES,
    HlrStatus,
    classify_ping,
    execute_hlr,
    hlr_extras,
    run_probe_call,
)
from .sms import await_delivery, execute_sms, submit_sms
from .tracker import ReportTracker

#: Job kind -> its executor (a table, not an ``if kind ==`` chain; jobspec.KINDS names
#: the kinds a job may have).
EXECUTORS: Final[dict[str, Executor]] = {
    "call": execute_call,
    "sms": execute_sms,
    "hlr": execute_hlr,
}

__all__ = [
    "ANSWER_ACTIONS", "EXECUTORS", "HLR_METHODS", "PROBE_CAUSES", "Context", "Executed", "Executor", "Followup",
    "HlrStatus", "Placement", "ReportTracker", "await_delivery", "classify_ping", "hlr_extras",
    "result_base", "run_call", "run_probe_call", "submit_sms",
]
