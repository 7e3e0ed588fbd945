"""RFC 9457 problem details, the one error shape of every HTTP API of the house (the
controller's CRM API and the appliance's local API).

Why shared: a client of either (a CRM team, ``simrotor appliance modem``, the technician
page) reads one shape — ``type``, ``title``, ``status``, ``detail``, ``instance``, plus
our ``code`` (what a client branches on) and ``errors`` (every bad field or row) — and
both APIs build it, check a body's media type and name the request's path the same way.
Each API keeps its own codes, titles and ``type`` base; this module has no aiohttp app.
"""
from __future__ import annotations

import json
import urllib.parse
from collections.abc import Mapping
from typing import Any, Final

from aiohttp import web

#: RFC 9457's media type of an error body.
PROBLEM_JSON: Final = "application/problem+json"
#: Media types a JSON body may come as: JSON, JSON-based ones (RFC 6839 ``+json``), and none
#: at all (aiohttp reads a missing Content-Type as application/octet-stream; curl -d sends
#: form encoding, refused with a 415 that says what to send).
JSON_TYPES: Final = frozenset({"application/json", "application/octet-stream"})
#: Characters left as they are when a path is quoted into ``instance`` (a URI reference):
#: RFC 3986's unreserved and sub-delims, plus ``/ : @`` and ``%`` of an already-encoded path.
_PATH_SAFE: Final = "/%:@!$&'()*+,;=-._~"


def is_json_type(content_type: str) -> bool:
    return content_type in JSON_TYPES or (content_type.startswith("application/") and content_type.endswith("+json"))


def words(p: Mapping[str, Any]) -> str:
    """A ``{field, reason}`` entry of ``errors`` in words, with its ``line`` when it has one."""
    where = f"line {p['line']}: " if p.get("line") is not None else ""
    return f"{where}{p.get('field')}: {p.get('reason')}"


def instance_of(request: web.Request) -> str:
    """The path as sent (percent-encoded), re-quoted: ``instance`` must be a URI reference."""
    return urllib.parse.quote(request.rel_url.raw_path, safe=_PATH_SAFE)


def problem_body(*, type_: str, title: str, status: int, detail: str, instance: str, code: str,
                 errors: list[dict[str, Any]] | None = None, **extra: Any) -> dict[str, Any]:
    """The RFC 9457 members, then ``code`` and ``errors`` (always present; empty when the
    request as a whole is the problem), then any extension members of the route."""
    return {"type": type_, "title": title, "status": status, "detail": detail, "instance": instance,
            "code": code, "errors": list(errors or []), **extra}


def problem_response(body: Mapping[str, Any], headers: Mapping[str, str] | None = None) -> web.Response:
    return web.Response(text=json.dumps(body, ensure_ascii=False), status=int(body["status"]),
                        content_type=PROBLEM_JSON, headers=dict(headers or {}))
