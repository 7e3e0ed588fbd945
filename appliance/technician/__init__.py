"""The technician's side of the page: who may sign in (the store's ``technicians`` table
behind ``common.webauth``: argon2id accounts, lockout, sessions with CSRF, the sign-in
form and guard, shared with the controller's overview page), what a signed-in technician
sees of every SIM and what he may do about it.

* ``sims.py``      every SIM of every slot, with its traffic against its caps, last balance and why it is held;
* ``words.py``     the events table in words (state changes and errors, ICCIDs masked);
* ``actions.py``   quarantine / release / selftest a SIM, reset, drain or bring back a modem, switch its slot;
* ``live.py``      the page's live updates as server-sent events;
* ``calls.py``     the live calls panel: every call up now, callee masked;
* ``traffic.py``   the last hour: calls per minute and ASR per operator as SVG, ASR, ACD and PDD per SIM, operator and modem;
* ``selftest.py``  the selftest of one SIM on the modem the running bank holds (appliance/simcheck.py's checks);
* ``cli.py``       ``simrotor appliance user add|list|remove``.

``appliance/web.py`` serves the page and wires these in; docs/appliance.md, "The
technician's page", is the guide.
"""
from __future__ import annotations

import sqlite3

from common.webauth import Accounts, Door, TableRows

#: The command group that manages the technicians (``cli.py``).
USER_CLI = "simrotor appliance user"


def technician_accounts(conn: sqlite3.Connection) -> Accounts:
    """The technicians of the appliance's store (``conn``)."""
    return Accounts(TableRows(conn, "technicians"), who="technician", cli=USER_CLI)


def technician_door(appliance_id: str) -> Door:
    """The page's sign-in: at the root, ``/api/`` and ``/metrics`` left to their own credentials."""
    return Door(title=f"simrotor {appliance_id}", where="On the appliance",
                add_hint=f"{USER_CLI} add NAME --config /etc/simrotor/appliance.toml", passes=("/api/", "/metrics"))
