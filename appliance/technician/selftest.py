"""The page's selftest of one SIM: ``provision selftest``'s checks (appliance/simcheck.py
``test_sim``: registration, signal, an SMS and a call to a reference number, a balance
USSD) run on the modem the running bank holds, never on a port opened again.

The modem is taken out of rotation as a job takes it (``Bank.acquire``: BUSY, its job
column saying "selftest by NAME", so nothing else is placed on it), switched first to the
SIM's slot when that slot is not the active one (``Bank.switch``, as the page's "Use slot"
does; the modem stays on that slot afterwards, the rotation may switch back), and given
back when the checks end (``Bank.release``: idle again). The result is an event in words
(``selftest`` with every check), so the page's Events panel shows it, and the log has it
with the technician's name. The SMS and call are not counted against the SIM's caps.
"""
from __future__ import annotations

import logging
from typing import Any

from modem_drivers.at import AtError
from modem_drivers.errors import ModemError

from ..bank import Bank
from ..channel import ChannelState
from ..config import ApplianceConfig
from ..simcheck import SimResult, settings_from, test_sim
from ..store import Store

logger = logging.getLogger(__name__)

#: States the selftest may take a modem from: those a job may take it from (Bank.acquire).
TESTABLE = frozenset({ChannelState.IDLE, ChannelState.COOLING})


async def run_selftest(bank: Bank, store: Store, cfg: ApplianceConfig, by: str, channel_id: str, slot: int,
                       reference: str | None) -> dict[str, Any]:
    """Test the SIM in ``slot`` of ``channel_id`` (see the module docstring); returns the
    stored event's detail: ``{by, channel, slot, passed, checks, fix}``."""
    ch = bank.channels[channel_id]
    detail: dict[str, Any] = {"by": by, "channel": channel_id, "slot": slot, "reference": reference}
    if slot != ch.active_slot:
        switched = await bank.switch(channel_id, slot, reason=f"selftest asked by technician {by}")
        if not switched or ch.active_slot != slot:
            detail.update(passed=False, checks=[], fix=f"the modem could not switch to slot {slot + 1}: {ch.reason}")
            return _logged(store, ch.active_sim.sim_id if ch.active_sim else channel_id, detail)
    if ch.state not in TESTABLE or channel_id not in bank.modems:
        detail.update(passed=False, checks=[], fix=f"the modem is {ch.state.value.replace('_', ' ')} ({ch.reason}): "
                      "try again when it is idle")
        return _logged(store, channel_id, detail)
    modem = bank.acquire(channel_id, f"selftest by {by}")
    sim = ch.active_sim
    result = SimResult(channel_id, ch.port, slot)
    try:
        await test_sim(modem, result, settings_from(cfg, reference, {}))
    except (AtError, ModemError, TimeoutError) as exc:
        result.fix = f"the modem failed during the test: {exc}"
    finally:
        bank.release(channel_id, cooldown=0.0, reason=f"selftest by {by} done")
    detail.update(passed=result.passed, checks=[{"name": c.name, "ok": c.ok, "detail": c.detail} for c in result.checks],
                  fix=result.fix)
    return _logged(store, (sim.sim_id if sim and sim.sim_id else None) or result.iccid or channel_id, detail)


def _logged(store: Store, subject: str, detail: dict[str, Any]) -> dict[str, Any]:
    store.log_event("selftest", subject, detail)
    logger.warning("selftest of %s slot %d by technician %s: %s%s", detail["channel"], detail["slot"] + 1, detail["by"],
                   "passed" if detail["passed"] else "FAILED", f" ({detail['fix']})" if detail.get("fix") else "")
    return detail
