"""Sign-in, sign-out and the guard in front of a page (the appliance's technician page,
the controller's overview page). A ``Door`` says what differs between pages: the form's
title, the path prefix the page lives under, the cookies' names, the command that makes
an account, and the path prefixes the guard leaves to another credential.

Without a session only ``/healthz`` and the sign-in form answer; every other page route
sends a browser to the form (``GET {base}/``) or answers ``401`` (a problem, in the
page's own problem shape). Paths the door ``passes`` (the appliance's ``/api/`` bearer
token and ``/metrics``) keep their own rules; paths outside ``base`` are not the page's.

* **The session cookie** (``simrotor_session`` by default): ``HttpOnly`` (no script reads it),
  ``SameSite=Strict`` (no other site's link or form sends it), ``Secure`` when the
  request came over TLS (the appliance's own, or a proxy's ``X-Forwarded-Proto: https``),
  ``Path`` the page's base, no ``Max-Age`` (gone with the browser; the server ends it anyway: sessions.py).
* **CSRF**: every POST but the sign-in carries the session's CSRF token in the
  ``X-CSRF-Token`` header (the page's script) or a ``csrf`` form field (the sign-out
  button); without it, or with another, the answer is ``403`` and nothing is done. The
  sign-in form has its own token, matched against a ``SameSite=Strict`` cookie set with
  the form, so another site cannot sign a browser in to an account of its choosing.
* **Lockout** (lockout.py): per account and per client address (the TCP peer: a header
  naming another address is not believed); a locked sign-in is ``429`` with
  ``Retry-After`` and says how long, before the password is looked at.
"""
from __future__ import annotations

import dataclasses
import html
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any, Final

from aiohttp import web

from .accounts import Accounts
from .lockout import ACCOUNT_FREE, ADDRESS_FREE, Lockout
from .sessions import Session, Sessions, same

logger = logging.getLogger(__name__)

COOKIE: Final = "simrotor_session"
SIGNIN_COOKIE: Final = "simrotor_signin"
CSRF_HEADER: Final = "X-CSRF-Token"
#: Page routes (under the door's base) that answer without a session.
OPEN_PATHS: Final = frozenset({"/healthz", "/signin"})
#: Largest sign-in form accepted (a name, a password of at most 256 characters, a token).
MAX_FORM: Final = 4096
#: The form is never framed by another site (clickjacking) nor cached.
FORM_HEADERS: Final = {"X-Frame-Options": "DENY", "Cache-Control": "no-store",
                       "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
                                                  "frame-ancestors 'none'"}


#: A page's problem answer: ``problem(request, status, code, detail)``.
Problem = Callable[[web.Request, int, str, str], web.Response]


@dataclasses.dataclass(frozen=True, slots=True)
class Door:
    """What differs between two pages' sign-ins."""

    title: str  # the form's heading, e.g. "simrotor box-1"
    add_hint: str  # the command that makes an account, shown while there is none
    where: str  # where that command runs, e.g. "On the appliance"
    base: str = ""  # the page's path prefix ("" or e.g. "/overview"), no trailing slash
    cookie: str = COOKIE
    signin_cookie: str = SIGNIN_COOKIE
    passes: tuple[str, ...] = ()  # path prefixes with a credential of their own

    def __post_init__(self) -> None:
        if self.base.endswith("/") or (self.base and not self.base.startswith("/")):
            raise ValueError(f"Door base {self.base!r}: '' or a path like '/overview' (no trailing slash)")

    @property
    def cookie_path(self) -> str:
        return self.base or "/"


@dataclasses.dataclass(slots=True)
class Desk:
    """What the sign-in and the guard use: the door, the accounts, the sessions and the two lockouts."""

    door: Door
    accounts: Accounts
    sessions: Sessions
    by_account: Lockout
    by_address: Lockout

    @classmethod
    def build(cls, door: Door, accounts: Accounts, clock: Callable[[], float] = time.time) -> Desk:
        return cls(door, accounts, Sessions(clock), Lockout(clock, free=ACCOUNT_FREE),
                   Lockout(clock, free=ADDRESS_FREE))

    def session_of(self, request: web.Request) -> Session | None:
        s = self.sessions.get(request.cookies.get(self.door.cookie))
        if s is None:
            return None
        tech = self.accounts.get(s.name)
        if tech is None or tech.changed_at > s.created_at:
            self.sessions.end(s.token)  # removed, or a new password set since
            return None
        return s


DESK: Final = web.AppKey("webauth_desk", Desk)
#: The request's session, set by the guard.
SESSION: Final = web.RequestKey("webauth_session", Session)


def secure(request: web.Request) -> bool:
    return request.secure or request.headers.get("X-Forwarded-Proto", "").lower() == "https"


def _cookie(response: web.StreamResponse, request: web.Request, door: Door, name: str, value: str) -> None:
    response.set_cookie(name, value, path=door.cookie_path, httponly=True, samesite="Strict", secure=secure(request))


def guard(problem: Problem) -> Callable[..., Awaitable[web.StreamResponse]]:
    """The middleware: a session on every page route but the open ones, and its CSRF
    token on every POST; ``problem`` answers the refusals in the page's shape."""
    @web.middleware
    async def signin_guard(request: web.Request, handler: Any) -> web.StreamResponse:
        desk = request.app[DESK]
        door, path = desk.door, request.path
        if not path.startswith(door.base) or any(path.startswith(p) for p in door.passes):
            return await handler(request)
        if path[len(door.base):] in OPEN_PATHS:
            return await handler(request)
        session = desk.session_of(request)
        if session is None:
            if request.method == "GET" and path in (door.base + "/", door.base):
                raise web.HTTPSeeOther(door.base + "/signin")
            return problem(request, 401, "unauthorized", f"sign in at {door.base}/signin")
        if request.method not in ("GET", "HEAD"):
            given = request.headers.get(CSRF_HEADER)
            if given is None and request.content_type == "application/x-www-form-urlencoded":
                given = (await request.post()).get("csrf")  # type: ignore[assignment]
            if not same(given if isinstance(given, str) else None, session.csrf):
                return problem(request, 403, "csrf", "the request lacks this session's CSRF token: reload the page "
                               "and try again")
        request[SESSION] = session
        return await handler(request)

    return signin_guard


FORM = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>simrotor — sign in</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
 body{{font:16px/1.4 system-ui,sans-serif;margin:0;background:#f6f7f9;color:#1d2330;display:grid;place-items:center;min-height:100vh}}
 form,.box{{background:#fff;border-radius:8px;padding:18px 20px;box-shadow:0 1px 2px #0002;width:min(340px,90vw)}}
 h1{{font-size:18px;margin:0 0 12px}} label{{display:block;margin:8px 0 2px}}
 input{{font:inherit;width:100%;box-sizing:border-box;padding:8px;border:1px solid #c9ced8;border-radius:6px}}
 button{{font:inherit;margin-top:14px;width:100%;padding:9px;border:0;border-radius:6px;background:#1d2330;color:#fff}}
 #problem{{color:#a11;margin:8px 0 0}} code{{background:#eef0f3;padding:1px 4px;border-radius:4px;word-break:break-all}}
</style></head><body>{body}</body></html>
"""

SIGNIN_BODY = """<form method="post" action="{action}" id="signin"><h1>{title}</h1>
<input type="hidden" name="csrf" value="{csrf}">
<label for="name">{who}</label><input id="name" name="name" autocomplete="username" autocapitalize="none" required value="{name}">
<label for="password">Password</label><input id="password" name="password" type="password" autocomplete="current-password" required>
<button type="submit">Sign in</button>{problem}</form>"""

NO_ACCOUNT_BODY = """<div class="box" id="no-account"><h1>{title}</h1>
<p>No {who} account exists yet. {where}, as the user that runs it, create one:</p>
<p><code>{add_hint}</code></p>
<p>It asks for the password twice. Then reload this page and sign in.</p></div>"""


def _form(desk: Desk, csrf: str, *, name: str = "", problem: str = "") -> str:
    p = f'<p id="problem">{html.escape(problem)}</p>' if problem else ""
    return FORM.format(body=SIGNIN_BODY.format(title=html.escape(desk.door.title), action=desk.door.base + "/signin",
                                               who=html.escape(desk.accounts.who.capitalize()), csrf=csrf,
                                               name=html.escape(name), problem=p))


def _wait_text(seconds: float) -> str:
    s = int(seconds + 0.999)
    return f"{s} s" if s < 120 else f"{(s + 59) // 60} min"


def routes(*, with_healthz: bool = True) -> list[web.RouteDef]:
    """``GET|POST /signin``, ``POST /signout`` (and ``GET /healthz`` unless the page's
    server has its own), relative to the application they are added to."""
    async def signin_form(request: web.Request) -> web.Response:
        desk = request.app[DESK]
        door = desk.door
        if desk.accounts.count() == 0:
            body = NO_ACCOUNT_BODY.format(title=html.escape(door.title), who=html.escape(desk.accounts.who),
                                          where=html.escape(door.where), add_hint=html.escape(door.add_hint))
            return web.Response(text=FORM.format(body=body), content_type="text/html", headers=FORM_HEADERS)
        if desk.session_of(request) is not None:
            raise web.HTTPSeeOther(door.base + "/")
        token = secrets.token_urlsafe(24)
        response = web.Response(text=_form(desk, token), content_type="text/html", headers=FORM_HEADERS)
        _cookie(response, request, door, door.signin_cookie, token)
        return response

    async def signin(request: web.Request) -> web.Response:
        desk = request.app[DESK]
        door = desk.door
        if (request.content_length or 0) > MAX_FORM:
            return web.Response(text="sign-in form too large", status=413)
        form = await request.post()
        name = str(form.get("name", "")).strip().lower()
        password = str(form.get("password", ""))
        fresh = secrets.token_urlsafe(24)

        def again(status: int, problem: str, headers: dict[str, str] | None = None) -> web.Response:
            response = web.Response(text=_form(desk, fresh, name=name[:40], problem=problem),
                                    content_type="text/html", status=status, headers={**FORM_HEADERS, **(headers or {})})
            _cookie(response, request, door, door.signin_cookie, fresh)
            return response

        if not same(str(form.get("csrf", "")), request.cookies.get(door.signin_cookie, "")):
            return again(403, "This form has expired or came from elsewhere: sign in again.")
        address = request.remote or "unknown"
        wait = max(desk.by_account.locked_for(name), desk.by_address.locked_for(address))
        if wait > 0:
            logger.warning("sign-in refused for %r from %s: locked for %.0f s", name[:40], address, wait)
            return again(429, f"Too many failed sign-ins: try again in {_wait_text(wait)}.",
                         {"Retry-After": str(int(wait + 0.999))})
        # Counted as failed before the check (no await between the lock's look and this):
        # sign-ins sent at once count at once, so a burst cannot try more than the free
        # tries while the hashes are being checked. A good one clears the counts below.
        lock = max(desk.by_account.failed(name), desk.by_address.failed(address))
        tech = await desk.accounts.verify(name, password)
        if tech is None:
            logger.warning("failed sign-in for %r from %s", name[:40], address)
            if lock > 0:
                return again(429, f"Wrong name or password. Too many failed sign-ins: try again in {_wait_text(lock)}.",
                             {"Retry-After": str(int(lock + 0.999))})
            return again(401, "Wrong name or password.")
        desk.by_account.succeeded(name)
        desk.by_address.succeeded(address)
        session = desk.sessions.new(tech.name)
        logger.info("%s %s signed in from %s", desk.accounts.who, tech.name, address)
        response = web.HTTPSeeOther(door.base + "/")
        _cookie(response, request, door, door.cookie, session.token)
        response.del_cookie(door.signin_cookie, path=door.cookie_path)
        raise response

    async def signout(request: web.Request) -> web.Response:
        session: Session = request[SESSION]
        desk = request.app[DESK]
        desk.sessions.end(session.token)
        logger.info("%s %s signed out", desk.accounts.who, session.name)
        response = web.HTTPSeeOther(desk.door.base + "/signin")
        response.del_cookie(desk.door.cookie, path=desk.door.cookie_path)
        raise response

    async def healthz(request: web.Request) -> web.Response:
        """Up and serving: for a load balancer or a watchdog, without a session (says nothing more)."""
        return web.json_response({"ok": True})

    own = [web.get("/signin", signin_form), web.post("/signin", signin), web.post("/signout", signout)]
    return [web.get("/healthz", healthz), *own] if with_healthz else own
