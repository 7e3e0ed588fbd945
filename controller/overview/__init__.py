"""The controller's overview page (``/overview/``): every appliance's health and capacity
and every campaign's progress, outcome mix and ETA, live, on a phone or a desktop.

* ``view.py``  the page's document: appliances from the fleet tables, campaigns from their
  reports (``controller.reporting``, the API's ``/v1/campaigns/{id}/report``);
* ``page.py``  the document as server-rendered HTML cards;
* here: the routes, the live stream (server-sent events) and the sign-in.

Who may see it: the controller's own page accounts (``simrotor controller user add NAME``,
table ``overview_users``: store/accounts.py), not the CRM's API keys, behind
``common.webauth`` as the appliance's technician page is: a session cookie (``HttpOnly``,
``SameSite=Strict``, ``Secure`` over TLS), a CSRF token on every POST (sign-out), lockout
with backoff after failed sign-ins. Without a session only the sign-in form answers here
(``/healthz`` is the API's). docs/controller.md, "Overview page", is the guide.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any, Final

from aiohttp import web

from common.sse import Changes, open_stream
from common.webauth import DESK, SESSION, Accounts, Desk, Door, guard, routes

from ..apikit import ApiError, problem_reply
from ..store import Store
from ..store.accounts import OverviewUsers
from .page import page_html, panels_html
from .view import REFRESH_SECONDS, Board

__all__ = ["BASE", "USER_CLI", "add_overview", "overview_accounts"]

logger = logging.getLogger(__name__)

#: Where the page lives on the controller's port (the API keeps ``/`` and ``/v1/``).
BASE: Final = "/overview"
#: The command group that manages the page's accounts (controller/cli.py).
USER_CLI: Final = "simrotor controller user"
#: Cookie names of their own: the controller and an appliance on one host (the demo, a
#: lab) would otherwise overwrite each other's session (cookies do not tell ports apart).
COOKIE: Final = "simrotor_overview_session"
SIGNIN_COOKIE: Final = "simrotor_overview_signin"
#: The panels are sent at least this often, changed or not (the "last seen" ages move).
FULL_SECONDS: Final = 15.0
#: The browser reconnects this long after a dropped stream (EventSource ``retry``).
RETRY_MS: Final = 3000
#: The page's own headers: never framed by another site, never cached, scripts only its own.
PAGE_HEADERS: Final = {"Cache-Control": "no-store", "X-Frame-Options": "DENY",
                       "Content-Security-Policy": "default-src 'self'; script-src 'unsafe-inline'; "
                                                  "style-src 'unsafe-inline'; frame-ancestors 'none'"}

BOARD: Final = web.AppKey("overview_board", Board)
CLOSING: Final = web.AppKey("overview_closing", asyncio.Event)


def overview_accounts(store: Store, clock: Callable[[], float] = time.time) -> Accounts:
    """The page's accounts in the controller's store (``clock``: the controller's, which its
    sessions run on too: a password set after a session began ends it)."""
    return Accounts(OverviewUsers(store), who="user", cli=USER_CLI, clock=clock)


def _problem(request: web.Request, status: int, code: str, detail: str) -> web.Response:
    return problem_reply(ApiError(status, code, detail), request)


async def page(request: web.Request) -> web.Response:
    session = request[SESSION]
    doc = await request.app[BOARD].document()
    return web.Response(text=page_html(doc, user=session.name, csrf=session.csrf, base=BASE),
                        content_type="text/html", headers=PAGE_HEADERS)


async def overview_json(request: web.Request) -> web.Response:
    """``GET /overview/overview.json``: the document the cards are drawn from."""
    return web.json_response(await request.app[BOARD].document(), headers={"Cache-Control": "no-store"})


async def events_stream(request: web.Request) -> web.StreamResponse:
    """``GET /overview/events.stream``: the panels as server-sent events (``event: panels``,
    the HTML of ``page.panels_html``) when they change, and every ``FULL_SECONDS``;
    ``event: signedout`` when the session ends. Ends when the controller stops."""
    desk, board, closing = request.app[DESK], request.app[BOARD], request.app[CLOSING]
    async with open_stream(request) as response:
        changes = Changes(response, "panels", full_seconds=FULL_SECONDS, retry_ms=RETRY_MS)
        while not closing.is_set():
            if desk.session_of(request) is None:
                await changes.signed_out()
                break
            await changes.offer(panels_html(await board.document()))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(closing.wait(), REFRESH_SECONDS)
    return response


async def _to_page(request: web.Request) -> web.Response:
    raise web.HTTPSeeOther(BASE + "/")


def add_overview(app: web.Application, store: Store, clock: Callable[[], float]) -> None:
    """Mount the page on the controller's application at ``BASE``."""
    sub = web.Application()
    sub[DESK] = Desk.build(Door(title="simrotor controller", where="On the controller",
                                add_hint=f"{USER_CLI} add NAME --config /etc/simrotor/controller.toml",
                                base=BASE, cookie=COOKIE, signin_cookie=SIGNIN_COOKIE),
                           overview_accounts(store, clock), clock)
    sub[BOARD] = Board(store, clock)
    sub[CLOSING] = asyncio.Event()
    sub.middlewares.append(guard(_problem))
    sub.router.add_routes(routes(with_healthz=False))
    sub.router.add_get("/", page)
    sub.router.add_get("/overview.json", overview_json)
    sub.router.add_get("/events.stream", events_stream)

    async def close_streams(_: Any) -> None:
        sub[CLOSING].set()  # open pages never hold up a stop
        await sub[BOARD].close()

    app.on_shutdown.append(close_streams)
    app.router.add_get(BASE, _to_page)
    app.add_subapp(BASE, sub)
