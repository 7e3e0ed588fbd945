"""Sign-in, sign-out and the guard in front of the technician page.

Without a session only ``/healthz`` and the sign-in form answer; every other page route
sends a browser to the form (``GET /``) or answers ``401`` JSON. ``/api/…`` keeps its
bearer token and ``/metrics`` its own rule (appliance/api.py); the guard leaves both
to them.

* **The session cookie** ``simrotor_session``: ``HttpOnly`` (no script reads it),
  ``SameSite=Strict`` (no other site's link or form sends it), ``Secure`` when the
  request came over TLS (the appliance's own, or a proxy's ``X-Forwarded-Proto: https``),
  ``Path=/``, no ``Max-Age`` (gone with the browser; the server ends it anyway: sessions.py).
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

from ..problems import problem
from .accounts import Accounts
from .lockout import ACCOUNT_FREE, ADDRESS_FREE, Lockout
from .sessions import Session, Sessions, same

logger = logging.getLogger(__name__)

COOKIE: Final = "simrotor_session"
SIGNIN_COOKIE: Final = "simrotor_signin"
CSRF_HEADER: Final = "X-CSRF-Token"
#: Page routes that answer without a session.
OPEN_PATHS: Final = frozenset({"/healthz", "/signin"})
#: Largest sign-in form accepted (a name, a password of at most 256 characters, a token).
MAX_FORM: Final = 4096
#: The form is never framed by another site (clickjacking) nor cached.
FORM_HEADERS: Final = {"X-Frame-Options": "DENY", "Cache-Control": "no-store",
                       "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
                                                  "frame-ancestors 'none'"}


@dataclasses.dataclass(slots=True)
class Desk:
    """What the sign-in and the guard use: the accounts, the sessions and the two lockouts."""

    accounts: Accounts
    sessions: Sessions
    by_account: Lockout
    by_address: Lockout

    @classmethod
    def build(cls, accounts: Accounts, clock: Callable[[], float] = time.time) -> Desk:
        return cls(accounts, Sessions(clock), Lockout(clock, free=ACCOUNT_FREE), Lockout(clock, free=ADDRESS_FREE))

    def session_of(self, request: web.Request) -> Session | None:
        s = self.sessions.get(request.cookies.get(COOKIE))
        if s is None:
            return None
        tech = self.accounts.get(s.name)
        if tech is None or tech.changed_at > s.created_at:
            self.sessions.end(s.token)  # removed, or a new password set since
            return None
        return s


DESK: Final = web.AppKey("technician_desk", Desk)
#: The request's session, set by the guard.
SESSION: Final = web.RequestKey("technician_session", Session)


def secure(request: web.Request) -> bool:
    return request.secure or request.headers.get("X-Forwarded-Proto", "").lower() == "https"


def _cookie(response: web.StreamResponse, request: web.Request, name: str, value: str) -> None:
    response.set_cookie(name, value, path="/", httponly=True, samesite="Strict", secure=secure(request))


def guard() -> Callable[..., Awaitable[web.StreamResponse]]:
    @web.middleware
    async def technician_guard(request: web.Request, handler: Any) -> web.StreamResponse:
        path = request.path
        if path in OPEN_PATHS or path == "/metrics" or path.startswith("/api/"):
            return await handler(request)
        desk = request.app[DESK]
        session = desk.session_of(request)
        if session is None:
            if request.method == "GET" and path == "/":
                raise web.HTTPSeeOther("/signin")
            return problem(request, 401, "unauthorized", "sign in at /signin")
        if request.method not in ("GET", "HEAD"):
            given = request.headers.get(CSRF_HEADER)
            if given is None and request.content_type == "application/x-www-form-urlencoded":
                given = (await request.post()).get("csrf")  # type: ignore[assignment]
            if not same(given if isinstance(given, str) else None, session.csrf):
                return problem(request, 403, "csrf", "the request lacks this session's CSRF token: reload the page "
                               "and try again")
        request[SESSION] = session
        return await handler(request)

    return technician_guard


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

SIGNIN_BODY = """<form method="post" action="/signin" id="signin"><h1>simrotor {appliance}</h1>
<input type="hidden" name="csrf" value="{csrf}">
<label for="name">Technician</label><input id="name" name="name" autocomplete="username" autocapitalize="none" required value="{name}">
<label for="password">Password</label><input id="password" name="password" type="password" autocomplete="current-password" required>
<button type="submit">Sign in</button>{problem}</form>"""

NO_ACCOUNT_BODY = """<div class="box" id="no-account"><h1>simrotor {appliance}</h1>
<p>No technician account exists yet. On the appliance, as the user that runs it, create one:</p>
<p><code>simrotor appliance user add NAME --config /etc/simrotor/appliance.toml</code></p>
<p>It asks for the password twice. Then reload this page and sign in.</p></div>"""


def _form(appliance: str, csrf: str, *, name: str = "", problem: str = "") -> str:
    p = f'<p id="problem">{html.escape(problem)}</p>' if problem else ""
    return FORM.format(body=SIGNIN_BODY.format(appliance=html.escape(appliance), csrf=csrf, name=html.escape(name),
                                               problem=p))


def _wait_text(seconds: float) -> str:
    s = int(seconds + 0.999)
    return f"{s} s" if s < 120 else f"{(s + 59) // 60} min"


def routes(appliance_id: str) -> list[web.RouteDef]:
    async def signin_form(request: web.Request) -> web.Response:
        desk = request.app[DESK]
        if desk.accounts.count() == 0:
            return web.Response(text=FORM.format(body=NO_ACCOUNT_BODY.format(appliance=html.escape(appliance_id))),
                                content_type="text/html", headers=FORM_HEADERS)
        if desk.session_of(request) is not None:
            raise web.HTTPSeeOther("/")
        token = secrets.token_urlsafe(24)
        response = web.Response(text=_form(appliance_id, token), content_type="text/html", headers=FORM_HEADERS)
        _cookie(response, request, SIGNIN_COOKIE, token)
        return response

    async def signin(request: web.Request) -> web.Response:
        desk = request.app[DESK]
        if (request.content_length or 0) > MAX_FORM:
            return web.Response(text="sign-in form too large", status=413)
        form = await request.post()
        name = str(form.get("name", "")).strip().lower()
        password = str(form.get("password", ""))
        fresh = secrets.token_urlsafe(24)

        def again(status: int, problem: str, headers: dict[str, str] | None = None) -> web.Response:
            response = web.Response(text=_form(appliance_id, fresh, name=name[:40], problem=problem),
                                    content_type="text/html", status=status, headers={**FORM_HEADERS, **(headers or {})})
            _cookie(response, request, SIGNIN_COOKIE, fresh)
            return response

        if not same(str(form.get("csrf", "")), request.cookies.get(SIGNIN_COOKIE, "")):
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
        logger.info("technician %s signed in from %s", tech.name, address)
        response = web.HTTPSeeOther("/")
        _cookie(response, request, COOKIE, session.token)
        response.del_cookie(SIGNIN_COOKIE, path="/")
        raise response

    async def signout(request: web.Request) -> web.Response:
        session: Session = request[SESSION]
        request.app[DESK].sessions.end(session.token)
        logger.info("technician %s signed out", session.name)
        response = web.HTTPSeeOther("/signin")
        response.del_cookie(COOKIE, path="/")
        raise response

    async def healthz(request: web.Request) -> web.Response:
        """Up and serving: for a load balancer or a watchdog, without a session (says nothing more)."""
        return web.json_response({"ok": True})

    return [web.get("/healthz", healthz), web.get("/signin", signin_form), web.post("/signin", signin),
            web.post("/signout", signout)]
