"""The appliance's core, as handed to the services that run beside the scheduler (the
fleet link, the balance checker): the bank, the scheduler, the store, the rotation policy
and the clock — what they use, not the whole ``Appliance`` (docs/architecture.md, Style
11). ``runtime.py`` builds it once; the local API takes its own ``ApiDeps`` (it reads
metrics and the status, not the policy)."""
from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

from .bank import Bank
from .rotation import RotationPolicy
from .scheduler import Scheduler
from .store import Store


@dataclasses.dataclass(slots=True, frozen=True)
class Core:
    bank: Bank
    scheduler: Scheduler
    store: Store
    policy: RotationPolicy
    #: UTC epoch seconds: leases, heartbeats' ``at``, when a SIM's balance was checked.
    clock: Callable[[], float] = time.time
