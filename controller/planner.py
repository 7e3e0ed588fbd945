"""Which appliance gets which job: free capacity and on-net coverage. Pure, no I/O.

Backpressure: an appliance holds at most ``capacity + queue_depth`` open jobs (leased,
accepted or started), where ``capacity`` is the free capacity it last reported. A short
queue means a dead appliance strands little work, and a job never waits long on one box
while another idles.

On-net: when the callee's operator is known (longest-prefix match over the configured
``operator_prefixes``) an appliance that reported SIMs of that operator is preferred —
on-net calls are cheaper and less often flagged — and the job carries the operator as a
hint so the appliance picks such a SIM. Ties go to the appliance with more free slots.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Final

#: Jobs an appliance may hold beyond its reported free capacity: enough to keep its
#: channels busy between two dispatcher ticks, small enough to strand little work.
DEFAULT_QUEUE_DEPTH: Final = 4


@dataclasses.dataclass(slots=True)
class Slot:
    """One connected appliance as the planner sees it."""

    appliance_id: str
    capacity: int
    open_jobs: int
    operators: Mapping[str, int] = dataclasses.field(default_factory=dict)
    queue_depth: int = DEFAULT_QUEUE_DEPTH

    @property
    def free(self) -> int:
        return max(0, self.capacity + self.queue_depth - self.open_jobs)


def operator_of(number: str, prefixes: Mapping[str, str]) -> str | None:
    """Longest matching prefix wins (``{"+48600": "26002", "+4860": "26001"}``)."""
    best: tuple[int, str] | None = None
    for prefix, op in prefixes.items():
        if number.startswith(prefix) and (best is None or len(prefix) > best[0]):
            best = (len(prefix), op)
    return best[1] if best else None


def assign(operators: Sequence[str | None], slots: Sequence[Slot]) -> list[str | None]:
    """For each job (by its callee's operator) the appliance it goes to, or None when
    every appliance is full. Mutates ``slots``' open_jobs as it fills them."""
    out: list[str | None] = []
    for op in operators:
        best: Slot | None = None
        best_key: tuple[int, int] = (-1, -1)
        for s in slots:
            if s.free <= 0:
                continue
            key = (1 if op is not None and s.operators.get(op, 0) > 0 else 0, s.free)
            if key > best_key:
                best, best_key = s, key
        if best is None:
            out.append(None)
            continue
        best.open_jobs += 1
        out.append(best.appliance_id)
    return out


def total_free(slots: Sequence[Slot]) -> int:
    return sum(s.free for s in slots)
