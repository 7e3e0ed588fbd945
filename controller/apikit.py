"""The CRM API's request and reply conventions, shared by every route: errors as JSON
``{"error", "detail"}`` with their 4xx (``ApiError``), cursor pages (``after``, ``limit``),
bodies decoded with msgspec, ids in the path checked before any look-up.
"""
from __future__ import annotations

import json
import re
from typing import Any, Final

import msgspec
from aiohttp import web

DEFAULT_PAGE, MAX_PAGE = 100, 1000
#: Ids chosen by the CRM: short, URL- and log-safe.
ID_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9_\-]{0,63}$"
#: Largest integer cursor accepted: below SQLite's INTEGER (2**63 - 1) with room to add.
MAX_CURSOR: Final = 2**62


class ApiError(Exception):
    def __init__(self, status: int, error: str, detail: Any = None) -> None:
        super().__init__(error)
        self.status, self.error, self.detail = status, error, detail


def reply(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=lambda d: json.dumps(d, ensure_ascii=False))


def int_param(request: web.Request, name: str, default: int, lo: int, hi: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        v = int(raw)
    except ValueError:
        raise ApiError(400, "bad_parameter", f"{name}: expected an integer") from None
    if not lo <= v <= hi:
        raise ApiError(400, "bad_parameter", f"{name}: expected {lo} to {hi}")
    return v


async def read_json(request: web.Request) -> Any:
    """The JSON body. msgspec, not json: nesting past the recursion limit and integers of
    thousands of digits are refused here instead of escaping as a 500."""
    try:
        return msgspec.json.decode(await request.read())
    except RecursionError:
        raise ApiError(400, "bad_json", {"field": "body", "reason": "nested too deeply; no request body of this API "
                                                                    "is more than a few levels deep"}) from None
    except msgspec.DecodeError as exc:
        raise ApiError(400, "bad_json", {"field": "body", "reason": f"the body is not JSON ({exc})"}) from None


def json_object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise ApiError(400, "bad_request", "expected a JSON object")
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
