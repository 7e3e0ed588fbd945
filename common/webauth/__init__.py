"""Signing in to a page: accounts with argon2id hashes, lockout with backoff, sessions
with CSRF tokens, the sign-in form and the guard in front of the page. The appliance's
technician page and the controller's overview page both stand behind it, each with its
own accounts (its own store's table) and its own ``Door`` (title, path, cookies).

* ``accounts.py``  accounts through ``AccountRows`` (``TableRows``: a SQLite table), argon2id;
* ``lockout.py``   failed sign-ins per account and per address, with backoff (pure);
* ``sessions.py``  signed-in sessions and their CSRF tokens (in memory);
* ``signin.py``    the sign-in form, sign-out, and the guard.
"""
from __future__ import annotations

from .accounts import Account, AccountError, AccountRows, Accounts, TableRows
from .signin import CSRF_HEADER, DESK, SESSION, Desk, Door, guard, routes

__all__ = ["CSRF_HEADER", "DESK", "SESSION", "Account", "AccountError", "AccountRows", "Accounts", "Desk", "Door",
           "TableRows", "guard", "routes"]
