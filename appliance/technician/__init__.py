"""The technician's side of the page: who may sign in, how a session is kept, what a
signed-in technician sees of every SIM and what he may do about it.

* ``accounts.py``  technician accounts in the store, argon2id password hashes;
* ``lockout.py``   failed sign-ins per account and per address, with backoff (pure);
* ``sessions.py``  signed-in sessions and their CSRF tokens (in memory);
* ``signin.py``    the sign-in form, sign-out, and the guard in front of the page;
* ``sims.py``      every SIM of every slot, with its traffic against its caps, last balance and why it is held;
* ``words.py``     the events table in words (state changes and errors, ICCIDs masked);
* ``actions.py``   quarantine / release a SIM, reset, drain or bring back a modem, switch its slot;
* ``live.py``      the page's live updates as server-sent events;
* ``cli.py``       ``simrotor appliance user add|list|remove``.

``appliance/web.py`` serves the page and wires these in; docs/appliance.md, "The
technician's page", is the guide.
"""
