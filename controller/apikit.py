"""The CRM API's request and reply conventions, shared by every route: errors as RFC 9457
problem details (``application/problem+json``) with an ``errors`` list naming every bad
field or row (``ApiError``, built by common.problems), cursor pages (``after``, ``limit``), bodies decoded with msgspec
(415 for a media type the route does not read), ids in the path checked before any look-up.

Why problem details: a CRM team writes its client in any language from /openapi.json; one
error shape with a fixed ``title`` per ``type`` and a machine-readable ``code`` lets it
branch on the problem, and ``errors`` lets it show a user every mistake of a form at once.
"""
from __future__ import annotations

import http
import json
import re
from collections.abc import Mapping
from typing import Any, Final

import msgspec
from aiohttp import web

from common.problems import instance_of, is_json_type, problem_body, problem_response
from common.problems import words as _words

from .store.results import StoredJSON

DEFAULT_PAGE, MAX_PAGE = 100, 1000
#: Ids chosen by the CRM: short, URL- and log-safe.
ID_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9_\-]{0,63}$"
#: Largest integer cursor accepted: below SQLite's INTEGER (2**63 - 1) with room to add.
MAX_CURSOR: Final = 2**62
#: Free text the API stores (a campaign's name, an opt-out's reason, a webhook's secret):
#: no control character — a NUL cannot be stored in PostgreSQL text, and a line break or
#: tab in a name breaks the CSVs and logs it lands in (the import's text fields: the same).
TEXT_PATTERN: Final = "^[^\\u0000-\\u001f\\u007f]*$"
_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f]")


def plain_text(value: Any, lo: int, hi: int) -> bool:
    """Is ``value`` a string of ``lo``-``hi`` characters without a control character?"""
    return isinstance(value, str) and lo <= len(value) <= hi and not _CONTROL.search(value)


#: Where a problem ``type`` points: the reference page's list of problems (a URI reference,
#: resolved against the controller's address; RFC 9457 §3.1.1 allows relative ones).
TYPE_BASE: Final = "/docs#problem-"

#: Every problem ``code`` the API answers with and its ``title`` (the same for every
#: occurrence, RFC 9457 §3.1.3); the reference page and docs/controller.md list them.
TITLES: Final[Mapping[str, str]] = {
    "unauthorized": "No valid credential",
    "bad_token": "The enrollment token is unknown, used or expired",
    "bad_parameter": "A query parameter is not valid",
    "bad_json": "The body is not JSON",
    "bad_csv": "The body is not a CSV file this API reads",
    "bad_request": "The request is not of the expected shape",
    "invalid": "Some fields of the request are not valid",
    "invalid_rows": "Some rows of the import are not valid; nothing was stored",
    "not_found": "No such resource",
    "deleted": "The resource was deleted",
    "missing": "The resource's file is missing on the controller",
    "method_not_allowed": "Method not allowed on this resource",
    "exists": "The resource exists already",
    "bad_state": "Not possible in the resource's current state",
    "too_large": "The request is too large",
    "unsupported_media_type": "The request's Content-Type is not one this route reads",
    "unknown_job": "No such job was leased by this controller",
    "bad_recording": "The body is not a recording",
    "bad_idempotency_key": "The Idempotency-Key header is not valid",
    "idempotency_key_reused": "The Idempotency-Key was used for a different request",
    "idempotency_key_in_use": "A request with this Idempotency-Key is still being processed",
    "internal": "The controller failed",
}


def problem_type(code: str) -> str:
    return TYPE_BASE + code


class ApiError(Exception):
    """A 4xx (or 5xx) answer as a problem. ``detail`` is words, or a ``{field, reason}``
    problem (its words become the detail, itself the only entry of ``errors``), or an import
    report (its ``errors`` become the list, the report rides along as ``report``);
    ``errors`` lists every field or row problem when there are several."""

    def __init__(self, status: int, error: str, detail: Any = None, *, errors: list[dict[str, Any]] | None = None,
                 headers: Mapping[str, str] | None = None) -> None:
        super().__init__(error)
        self.status, self.error, self.detail = status, error, detail
        self.errors = errors
        self.headers = dict(headers or {})

    def problem(self, instance: str) -> dict[str, Any]:
        """The RFC 9457 body: type, title, status, detail, instance, plus ``code`` and
        ``errors`` (always present; empty when the request as a whole is the problem)."""
        errors = list(self.errors or [])
        extra: dict[str, Any] = {}
        detail = self.detail
        if isinstance(detail, dict) and "field" in detail and "reason" in detail:
            errors = errors or [detail]
            detail = _words(detail)
        elif isinstance(detail, dict) and isinstance(detail.get("errors"), list):  # an import report
            extra["report"] = detail
            errors = errors or list(detail["errors"])
            detail = (f"{detail.get('rejected', 0)} rejected and {detail.get('duplicates', 0)} duplicate rows of "
                      f"{detail.get('rows', 0)}; nothing was stored (each is in errors, "
                      f"{detail.get('errors_total', len(errors))} in all)")
        elif detail is None:
            detail = "; ".join(_words(e) for e in errors) if errors else self.title
        elif not isinstance(detail, str):
            detail = json.dumps(detail, ensure_ascii=False)
        return problem_body(type_=problem_type(self.error), title=self.title, status=self.status, detail=detail,
                            instance=instance, code=self.error, errors=errors, **extra)

    @property
    def title(self) -> str:
        return TITLES.get(self.error) or http.HTTPStatus(self.status).phrase


def problem_reply(exc: ApiError, request: web.Request) -> web.Response:
    return problem_response(exc.problem(instance_of(request)), exc.headers)


def http_problem(exc: web.HTTPException, max_body: int, max_rows: int) -> ApiError:
    """aiohttp's own 4xx (no route, wrong method, body over ``client_max_size``) as a problem."""
    if exc.status == 404:
        return ApiError(404, "not_found", "no such route; see /openapi.json")
    if exc.status == 405:
        allow = exc.headers.get("Allow", "")
        return ApiError(405, "method_not_allowed", f"this resource answers {allow or 'no method'}",
                        headers={"Allow": allow})
    if exc.status == 413:
        return ApiError(413, "too_large", {"line": None, "field": "body", "reason":
                                           f"larger than {max_body // 2**20} MiB; split it (an import is at most "
                                           f"{max_rows:,} rows)"})
    code = {401: "unauthorized", 415: "unsupported_media_type"}.get(exc.status, "bad_request")
    return ApiError(exc.status, code, exc.reason)


def _stored_json(obj: Any) -> Any:
    """msgspec's hook for what it cannot write: a stored body (``StoredJSON``) goes in as
    its text, not decoded and encoded again."""
    if isinstance(obj, StoredJSON):
        return obj.encoded()
    raise TypeError(f"{type(obj).__name__} is not JSON")


def _json_default(obj: Any) -> Any:
    """json's hook: a stored body as its decoded value."""
    if isinstance(obj, StoredJSON):
        return obj.value
    raise TypeError(f"{type(obj).__name__} is not JSON")


_encode = msgspec.json.Encoder(enc_hook=_stored_json).encode


def reply(data: Any, status: int = 200) -> web.Response:
    """``data`` as JSON (UTF-8, compact). msgspec, not json: ~10x faster on a page of 100
    results, which was an eighth of a read's time on the event loop. What msgspec does not
    take (a dict keyed by booleans) is written by json as before."""
    try:
        body = _encode(data)
    except TypeError:
        body = json.dumps(data, ensure_ascii=False, default=_json_default).encode()
    return web.Response(body=body, status=status, content_type="application/json", charset="utf-8")


def int_param(request: web.Request, name: str, default: int, lo: int, hi: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        v = int(raw)
    except ValueError:
        raise ApiError(400, "bad_parameter", {"field": name, "reason": "expected an integer"}) from None
    if not lo <= v <= hi:
        raise ApiError(400, "bad_parameter", {"field": name, "reason": f"expected {lo} to {hi}"})
    return v


def region_param(request: web.Request, default: str | None) -> str | None:
    """The ``region`` of national-format numbers (ISO 3166 alpha-2), else ``default``; an
    empty or malformed one is refused, not taken for absent (a CRM's URL built wrong)."""
    raw = request.query.get("region")
    if raw is None:
        return default
    if len(raw) != 2 or not raw.isascii() or not raw.isalpha():
        raise ApiError(400, "bad_parameter", {"field": "region", "reason": "an ISO 3166 two-letter code, e.g. PL"})
    return raw


def check_json_type(request: web.Request) -> None:
    """415 unless the body is sent as JSON (or with no Content-Type at all)."""
    if not is_json_type(request.content_type):
        raise ApiError(415, "unsupported_media_type",
                       {"field": "Content-Type", "reason": f"{request.content_type!r} is not read here; send application/json"})


async def read_json(request: web.Request) -> Any:
    """The JSON body. msgspec, not json: nesting past the recursion limit and integers of
    thousands of digits are refused here instead of escaping as a 500."""
    check_json_type(request)
    try:
        return msgspec.json.decode(await request.read())
    except RecursionError:
        raise ApiError(400, "bad_json", {"line": None, "field": "body", "reason": "nested too deeply; no request body "
                                         "of this API is more than a few levels deep"}) from None
    except msgspec.DecodeError as exc:
        raise ApiError(400, "bad_json", {"line": None, "field": "body", "reason": f"the body is not JSON ({exc})"}) from None


def json_object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise ApiError(400, "bad_request", {"field": "body", "reason": "expected a JSON object"})
    return body


def path_campaign_id(request: web.Request) -> str:
    cid = request.match_info["id"]
    if not re.fullmatch(ID_PATTERN, cid):
        raise ApiError(404, "not_found", f"no campaign {cid!r}")
    return cid


def path_contact_id(request: web.Request) -> int:
    try:
        v = int(request.match_info["id"])
    except ValueError:
        raise ApiError(404, "not_found", "contact ids are integers") from None
    if not 0 < v < 2**63:
        raise ApiError(404, "not_found", "no such contact")
    return v


def page(request: web.Request) -> tuple[int, int]:
    """The integer cursor ``after`` and the page size ``limit`` of a list request."""
    return int_param(request, "after", 0, 0, MAX_CURSOR), int_param(request, "limit", DEFAULT_PAGE, 1, MAX_PAGE)
