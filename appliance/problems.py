"""The appliance's error answers (local API, technician page actions, sign-in guard) as
RFC 9457 problem details, the shape of the controller's (common.problems): ``type``,
``title``, ``status``, ``detail``, ``instance``, ``code`` and ``errors``.

Why its own codes: the appliance answers a different set of problems than the CRM API, and
a client of the local API (``appliance.localapi``, a shop's script) already branches on
these codes; only the shape is shared. The ``type`` is a URN, not a page: the appliance
serves no reference page (RFC 9457 §3.1.1 allows a type URI that does not resolve).
"""
from __future__ import annotations

import http
from collections.abc import Mapping
from typing import Any, Final

from aiohttp import web

from common.problems import (
    instance_of,
    is_json_type,
    problem_body,
    problem_response,
    words,
)

#: Where a problem ``type`` points: ``urn:simrotor:appliance:problem:<code>``.
TYPE_BASE: Final = "urn:simrotor:appliance:problem:"

#: Every problem ``code`` the appliance answers with and its ``title`` (the same for every
#: occurrence, RFC 9457 §3.1.3); docs/appliance.md lists them.
TITLES: Final[Mapping[str, str]] = {
    "unauthorized": "No valid credential",
    "forbidden": "This caller is not answered here",
    "csrf": "The request lacks this session's CSRF token",
    "invalid_json": "The body is not JSON or not a batch of jobs",
    "invalid_batch": "The batch is not of the expected shape",
    "invalid_jobs": "No job of the batch is valid; none was stored",
    "invalid_query": "A query parameter is not valid",
    "invalid_body": "The request is not of the expected shape",
    "not_found": "No such resource",
    "not_cancellable": "The job has started or ended",
    "refused": "The action was refused",
    "method_not_allowed": "Method not allowed on this resource",
    "too_large": "The request is too large",
    "unsupported_media_type": "The request's Content-Type is not one this route reads",
    "bad_request": "The request is not valid",
    "internal": "The appliance failed",
}


def title(code: str, status: int) -> str:
    return TITLES.get(code) or http.HTTPStatus(status).phrase


def problem(request: web.Request, status: int, code: str, detail: str | Mapping[str, Any] | None = None, *,
            errors: list[dict[str, Any]] | None = None, headers: Mapping[str, str] | None = None,
            **extra: Any) -> web.Response:
    """The problem's response. ``detail`` is words, or one ``{field, reason}`` entry (its
    words become the detail, itself the only entry of ``errors``); without it the errors'
    words, or the title."""
    errors = list(errors or [])
    if isinstance(detail, Mapping):
        errors = errors or [dict(detail)]
        detail = _words(detail)
    elif detail is None:
        detail = "; ".join(_words(e) for e in errors) if errors else title(code, status)
    body = problem_body(type_=TYPE_BASE + code, title=title(code, status), status=status, detail=detail,
                        instance=instance_of(request), code=code, errors=errors, **extra)
    return problem_response(body, headers)


def _words(entry: Mapping[str, Any]) -> str:
    """A job's entry names its place in the batch (``index``); others are common's words."""
    if entry.get("index") is not None:
        return f"job {entry['index']}: {entry.get('field')}: {entry.get('reason')}"
    return words(entry)


def http_problem(request: web.Request, exc: web.HTTPException, max_body: int) -> web.Response:
    """aiohttp's own 4xx (no route, wrong method, body over ``client_max_size``) as a problem."""
    if exc.status == 404:
        return problem(request, 404, "not_found", f"no route {request.path[:80]!r}")
    if exc.status == 405:
        allow = exc.headers.get("Allow", "")
        return problem(request, 405, "method_not_allowed", f"{request.method} {request.path[:80]} answers "
                       f"{allow or 'no method'}", headers={"Allow": allow})
    if exc.status == 413:
        return problem(request, 413, "too_large", {"field": "body", "reason": f"larger than {max_body // 2**20} MiB"})
    code = {401: "unauthorized", 403: "forbidden", 415: "unsupported_media_type"}.get(exc.status, "bad_request")
    return problem(request, exc.status, code, exc.reason, headers={k: v for k, v in exc.headers.items()
                                                                   if k in ("Allow", "Retry-After")})


def media_problem(request: web.Request) -> web.Response | None:
    """A 415 unless the body comes as JSON (or with no Content-Type at all)."""
    if is_json_type(request.content_type):
        return None
    return problem(request, 415, "unsupported_media_type",
                   {"field": "Content-Type", "reason": f"{request.content_type!r} is not read here; send application/json"})
