"""The CRM's own-key and reporting routes: contacts found by the CRM's ``external_id``, a
campaign's report, its results as CSV, and opt-outs in bulk (issue 16). Kept apart from
api.py, which adds them (``add_routes``), so each file keeps one job; their OpenAPI
description is ``openapi_paths`` below, merged into the document by openapi.py.

Errors are ``ApiError``s (apikit.py): the API's one error shape, every bad row named.
"""
from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from typing import Any, Final

import msgspec
from aiohttp import web

from common import phone

from . import contacts_csv
from .apikit import (
    ID_PATTERN,
    TEXT_PATTERN,
    ApiError,
    page,
    path_campaign_id,
    plain_text,
    region_param,
    reply,
)
from .contacts import DELIMITER_NAMES, MAX_LINE, MAX_TEXT, BodyError
from .reporting import EXPORT_COLUMNS, campaign_report_async, export_chunks
from .store import Store
from .store.loop_reads import LoopReads

#: Numbers in one bulk opt-out request: a whole do-not-call register of a mid-size agency,
#: checked and stored in one transaction (~1 s).
MAX_BULK_OPTOUTS: Final = 100_000
#: Bad rows listed in a refusal (the ``detail`` counts all of them).
MAX_LISTED: Final = 100
#: What a bulk opt-out's CSV header may name.
OPTOUT_COLUMNS: Final = ("number", "reason")
CSV_TYPES: Final = frozenset({"text/csv", "application/csv"})


class CrmRoutes:
    """Handed the store, the API's reads (``LoopReads``), the clock, the default region of
    national numbers and how api.py shows a contact (one shape for every route that returns
    contacts)."""

    def __init__(self, store: Store, reads: LoopReads, clock: Callable[[], float], *, region: str | None,
                 contact_out: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
        self.store, self.reads, self.clock, self.region, self.contact_out = store, reads, clock, region, contact_out

    def add_routes(self, app: web.Application) -> None:
        r = app.router
        r.add_get("/v1/contacts", self.find_contacts)
        r.add_get("/v1/campaigns/{id}/report", self.report)
        r.add_get("/v1/results/export", self.export)
        r.add_post("/v1/optouts/bulk", self.bulk_optouts)

    # -- contacts by the CRM's key ---------------------------------------------------------
    async def find_contacts(self, request: web.Request) -> web.Response:
        ext = request.query.get("external_id")
        if not ext or len(ext) > MAX_TEXT:
            raise ApiError(400, "bad_parameter", {"field": "external_id",
                                                  "reason": f"required: the CRM's key of the contact, 1-{MAX_TEXT} characters"})
        campaign = request.query.get("campaign_id")
        if campaign is not None and not _is_id(campaign):
            raise ApiError(400, "bad_parameter", {"field": "campaign_id", "reason": "1-64 letters, digits, _ or -"})
        after, limit = page(request)
        if "\x00" in ext:  # no key holds one (PostgreSQL text cannot): no contact has it
            return reply({"items": [], "next": after})
        found = await self.reads.run(self.store.contacts_by_external_id_read(ext.strip(), campaign, after, limit))
        items = [self.contact_out(c) for c in found]
        return reply({"items": items, "next": items[-1]["id"] if items else after})

    # -- report and export -----------------------------------------------------------------
    async def report(self, request: web.Request) -> web.Response:
        cid = path_campaign_id(request)
        camp = self.store.get_campaign(cid)
        if camp is None:
            raise ApiError(404, "not_found", f"no campaign {cid!r}")
        return reply(await campaign_report_async(self.store, camp, self.clock()))

    async def export(self, request: web.Request) -> web.StreamResponse:
        cid = request.query.get("campaign_id")
        if not cid or not _is_id(cid):
            raise ApiError(400, "bad_parameter", {"field": "campaign_id", "reason": "required: the campaign to export"})
        fmt = request.query.get("format", "csv")
        if fmt != "csv":
            raise ApiError(400, "bad_parameter", {"field": "format", "reason": "csv is the one format"})
        if self.store.get_campaign(cid) is None:
            raise ApiError(404, "not_found", f"no campaign {cid!r}")
        resp = web.StreamResponse(headers={"Content-Type": "text/csv; charset=utf-8",
                                           "Content-Disposition": f'attachment; filename="results-{cid}.csv"'})
        await resp.prepare(request)
        for chunk in export_chunks(self.store, cid):
            await resp.write(chunk.encode())
        await resp.write_eof()
        return resp

    # -- opt-outs in bulk ------------------------------------------------------------------
    async def bulk_optouts(self, request: web.Request) -> web.Response:
        region = region_param(request, self.region)
        body = await request.read()
        delimiter = None
        if request.content_type in CSV_TYPES:
            try:
                text = contacts_csv.decode_csv(body, request.charset)
            except BodyError as exc:  # the same words as an import's
                raise ApiError(exc.status, exc.error, exc.detail()) from None
            delimiter, rows = _csv_rows(text)
        elif request.content_type in {"application/json", "application/octet-stream"}:
            rows = _json_rows(body)
        else:
            raise ApiError(415, "unsupported_media_type", {"field": "Content-Type",
                                                           "reason": "send application/json or text/csv"})
        if len(rows) > MAX_BULK_OPTOUTS:
            raise ApiError(413, "too_large", {"field": "body", "reason": f"{len(rows):,} numbers; at most "
                                                                         f"{MAX_BULK_OPTOUTS:,} a request: split it"})
        good: dict[str, str | None] = {}
        bad: list[dict[str, Any]] = []
        for line, number, reason in rows:
            if reason is not None and not plain_text(reason, 0, 200):
                bad.append({"line": line, "field": "reason", "reason": "at most 200 characters, no control character"})
                continue
            try:
                e164 = phone.normalise(number, region.upper() if region else None)
            except phone.NumberError as exc:
                bad.append({"line": line, "field": "number", "reason": str(exc)})
                continue
            good.setdefault(e164, reason)
        if bad:
            # an import's report shape: apikit lists its errors, every bad row by line and field
            raise ApiError(422, "invalid_rows", {"stored": False, "rows": len(rows), "created": 0, "updated": 0,
                                                 "valid": len(rows) - len(bad), "rejected": len(bad), "duplicates": 0,
                                                 "errors": bad[:MAX_LISTED], "errors_total": len(bad),
                                                 "warnings": [], "warnings_total": 0})
        if not rows:
            raise ApiError(400, "bad_request", {"field": "body", "reason": "no numbers: send at least one"})
        created = self.store.add_optouts(list(good.items()), "api", self.clock())
        out = {"rows": len(rows), "numbers": len(good), "created": created, "existing": len(good) - created}
        if delimiter is not None:
            out["delimiter"] = DELIMITER_NAMES[delimiter]
        return reply(out)


def _is_id(v: str) -> bool:
    return re.fullmatch(ID_PATTERN, v) is not None


class _Wrapped(msgspec.Struct, forbid_unknown_fields=True):
    numbers: list[str | dict[str, str | None]]
    reason: str | None = None


_JSON = msgspec.json.Decoder(list[str | dict[str, str | None]] | _Wrapped)


def _json_rows(body: bytes) -> list[tuple[int, Any, Any]]:
    """``["+48…", …]``, ``[{"number", "reason"}, …]`` or ``{"numbers": [...], "reason": …}``
    -> (1-based position, number, reason)."""
    try:
        decoded = _JSON.decode(body)
    except msgspec.ValidationError as exc:
        raise ApiError(400, "bad_request", {"field": "body", "reason": f'expected a list of numbers, of {{"number", "reason"}} '
                                                                      f'objects, or {{"numbers": [...]}} ({exc})'}) from None
    except msgspec.DecodeError as exc:
        raise ApiError(400, "bad_json", {"field": "body", "reason": f"the body is not JSON ({exc})"}) from None
    items, common = (decoded.numbers, decoded.reason) if isinstance(decoded, _Wrapped) else (decoded, None)
    out: list[tuple[int, Any, Any]] = []
    for i, item in enumerate(items, 1):
        if isinstance(item, dict):
            unknown = sorted(set(item) - set(OPTOUT_COLUMNS))
            if unknown:
                raise ApiError(400, "bad_request", {"line": i, "field": unknown[0][:MAX_TEXT], "reason": "unknown field (a typo?)"})
            out.append((i, item.get("number"), item.get("reason", common)))
        else:
            out.append((i, item, common))
    return out


def _csv_rows(text: str) -> tuple[str, list[tuple[int, Any, Any]]]:
    """A CSV with a header naming ``number`` (and optionally ``reason``), in any of the
    import's separators -> (separator, [(file line, number, reason)])."""
    sep = contacts_csv.detect_delimiter(text)
    lines = io.StringIO(text, newline="")
    reader = csv.reader(lines, delimiter=sep)
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        raise ApiError(400, "bad_csv", {"line": 1, "field": "body", "reason": "empty CSV: the first line names the columns, "
                                                                              "e.g. number,reason"}) from None
    except csv.Error as exc:
        raise ApiError(400, "bad_csv", {"line": 1, "field": "header", "reason": str(exc)}) from None
    unknown = [h for h in header if h not in OPTOUT_COLUMNS]
    if unknown or "number" not in header or len(set(header)) != len(header):
        raise ApiError(400, "bad_csv", {"line": 1, "field": (unknown[0][:MAX_TEXT] if unknown else "header"),
                                        "reason": "the header names number and optionally reason, each once"})
    rows: list[tuple[int, Any, Any]] = []
    try:
        for cells in reader:
            line = reader.line_num
            if not cells or not any(c.strip() for c in cells):
                continue
            if len(cells) > len(header) or any(len(c) > MAX_LINE for c in cells):
                rows.append((line, None, f"{len(cells)} cells for {len(header)} columns"))
                continue
            row = dict(zip(header, cells))
            rows.append((line, row.get("number", ""), row.get("reason") or None))
    except csv.Error as exc:
        raise ApiError(400, "bad_csv", {"line": reader.line_num, "field": "row", "reason": str(exc)}) from None
    return sep, rows


def openapi_paths(op: Callable[..., dict[str, Any]], ref: Callable[[str], dict[str, Any]],
                  json_body: Callable[..., dict[str, Any]], params: dict[str, Any]) -> dict[str, Any]:
    """These routes in the OpenAPI document (openapi.py hands in its builders: ``_op``,
    ``_ref``, ``_json_body`` and its shared parameters ``after``, ``limit``, ``campaign_path``)."""
    cid_schema = {"type": "string", "pattern": ID_PATTERN}
    columns = "; ".join(f"{c} ({d})" for c, d in EXPORT_COLUMNS)
    bulk_json = {"oneOf": [
        {"type": "array", "minItems": 1, "maxItems": MAX_BULK_OPTOUTS, "items": {"oneOf": [
            {"type": "string", "maxLength": 40},
            {"type": "object", "required": ["number"], "additionalProperties": False, "properties": {
                "number": {"type": "string", "maxLength": 40},
                "reason": {"type": ["string", "null"], "maxLength": 200, "pattern": TEXT_PATTERN}}}]}},
        {"type": "object", "required": ["numbers"], "additionalProperties": False, "properties": {
            "numbers": {"type": "array", "minItems": 1, "maxItems": MAX_BULK_OPTOUTS, "items": {"type": "string", "maxLength": 40}},
            "reason": {"type": ["string", "null"], "maxLength": 200, "pattern": TEXT_PATTERN}}}]}
    return {
        "/v1/contacts": {"get": op(
            "Contacts by the CRM's key, external_id (every campaign's, or one campaign's with campaign_id), by contact id",
            json_body({"type": "object", "required": ["items", "next"], "properties": {
                "items": {"type": "array", "items": ref("Contact")}, "next": {"type": "integer"}}}),
            tag="contacts",
            params=[{"name": "external_id", "in": "query", "required": True,
                     "schema": {"type": "string", "minLength": 1, "maxLength": MAX_TEXT}, "description": "the CRM's key",
                     "example": "D-1042"},
                    {"name": "campaign_id", "in": "query", "required": False, "schema": cid_schema},
                    params["after"], params["limit"]])},
        "/v1/campaigns/{id}/report": {"get": op(
            "A campaign's report: outcome mix per step, contact rate, right-party contacts, promises to pay, opt-outs, "
            "calls and SMS spent, attempts per contact, by hour and by operator, throughput now, an ETA and what limits "
            "the campaign now (docs/controller.md, Campaign report)",
            json_body(ref("CampaignReport")), errors=(401, 404), params=[params["campaign_path"]], tag="campaigns")},
        "/v1/results/export": {"get": op(
            "All results of a campaign as CSV (RFC 4180, UTF-8, streamed), in seq order; text cells a spreadsheet would "
            f"run as a formula (=, +, -, @, tab, CR first) get a leading ' (E.164 numbers, a + and digits only, are "
            f"written as they are). Columns: {columns}",
            {"description": "OK", "content": {"text/csv": {"schema": {"type": "string"}}}},
            errors=(400, 401, 404), tag="results",
            params=[{"name": "campaign_id", "in": "query", "required": True, "schema": cid_schema, "example": "nov"},
                    {"name": "format", "in": "query", "required": False, "schema": {"enum": ["csv"], "default": "csv"}}])},
        "/v1/optouts/bulk": {"post": op(
            f"Add up to {MAX_BULK_OPTOUTS:,} numbers to the opt-out list at once, all or nothing: a JSON list (of numbers, "
            'or of {number, reason}, or {"numbers": [...], "reason": ...}) or a CSV with a header naming number and '
            "optionally reason (comma, semicolon or tab, detected). Idempotent: a number listed already is counted "
            "in existing. One bad row refuses the request (422, every bad row's line and field); nothing is stored.",
            json_body({"type": "object", "required": ["rows", "numbers", "created", "existing"], "properties": {
                "rows": {"type": "integer", "description": "rows read"},
                "numbers": {"type": "integer", "description": "distinct numbers among them (E.164)"},
                "created": {"type": "integer", "description": "numbers newly listed"},
                "existing": {"type": "integer", "description": "numbers listed already"},
                "delimiter": {"enum": sorted(DELIMITER_NAMES.values()), "description": "CSV: the separator read"}}}),
            errors=(400, 401, 413, 415, 422), tag="optouts",
            params=[{"name": "region", "in": "query", "required": False, "schema": {"type": "string", "pattern": "^[A-Za-z]{2}$"},
                     "description": "region of national-format numbers"}],
            body={"required": True, "content": {"application/json": {"schema": bulk_json},
                                                 "text/csv": {"schema": {"type": "string"}}}})},
    }


#: The report's schema (OpenAPI ``CampaignReport``).
_COUNT = {"type": "integer", "minimum": 0}
_OUTCOME_ROW = {"type": "object", "additionalProperties": {"type": "integer"}}
REPORT_SCHEMA: Final[dict[str, Any]] = {
    "type": "object",
    "required": ["campaign_id", "state", "generated_at", "contacts", "steps", "attempted_contacts", "reached_contacts",
                 "contact_rate", "right_party_contacts", "promises_to_pay", "opt_outs", "spent", "attempts_per_contact",
                 "results", "by_hour", "by_operator", "throughput", "eta", "limits"],
    "properties": {
        "campaign_id": {"type": "string"}, "state": {"type": "string"},
        "generated_at": {"type": "string", "format": "date-time"},
        "time_zone": {"type": "string", "description": "the zone the calling hours are read in (the first contact's)"},
        "contacts": {"type": "object", "additionalProperties": {"type": "integer"}},
        "steps": {"type": "array", "items": {"type": "object", "required": ["step", "kind", "results", "outcomes"], "properties": {
            "step": {"type": "integer"}, "kind": {"type": "string"}, "results": _COUNT,
            "outcomes": {**_OUTCOME_ROW, "description": "final results of the step by outcome"}}}},
        "attempted_contacts": {**_COUNT, "description": "contacts with at least one call placed"},
        "reached_contacts": {**_COUNT, "description": "contacts a person answered (answered_human)"},
        "contact_rate": {"type": ["number", "null"], "description": "reached_contacts / attempted_contacts"},
        "right_party_contacts": {**_COUNT, "description": "answered by a person whose identity the voicebot did not deny "
                                                          "or leave unconfirmed (without the voicebot: answered_human)"},
        "promises_to_pay": {**_COUNT, "description": "contacts holding a voicebot promise_date"},
        "opt_outs": {"type": "object", "properties": {
            "inbound": {**_COUNT, "description": "STOP by SMS and 9 on a callback, matched to the campaign"},
            "refused_opted_out": {**_COUNT, "description": "jobs refused because the number is opted out"}}},
        "spent": {"type": "object", "properties": {"calls": _COUNT, "sms": _COUNT, "hlr": _COUNT},
                  "description": "calls placed, SMS sent, HLR checks made"},
        "attempts_per_contact": {"type": "object", "properties": {
            "mean": {"type": ["number", "null"]},
            "histogram": {"type": "object", "additionalProperties": {"type": "integer"},
                          "description": "call attempts -> contacts with that many"}}},
        "results": {"type": "object", "properties": {"total": _COUNT, "final": _COUNT}},
        "by_hour": {"type": "array", "description": "the last 7 days, per UTC hour", "items": {"type": "object", "properties": {
            "hour": {"type": "string", "format": "date-time"}, "calls": _COUNT, "answered_human": _COUNT,
            "right_party": _COUNT, "sms": _COUNT, "results": _COUNT}}},
        "by_operator": {"type": "array", "description": "per operator of the SIM that placed the job",
                        "items": {"type": "object", "properties": {
                            "operator": {"type": "string"}, "calls": _COUNT, "answered_human": _COUNT, "sms": _COUNT,
                            "results": _COUNT}}},
        "throughput": {"type": "object", "description": "over the last window_seconds", "properties": {
            "window_seconds": {"type": "number"}, "results_per_hour": {"type": "number"},
            "calls_per_hour": {"type": "number"}, "sms_per_hour": {"type": "number"},
            "contacts_done_per_hour": {"type": "number"}}},
        "eta": {"type": "object", "properties": {
            "at": {"type": ["string", "null"], "format": "date-time",
                   "description": "when the last contact should be done; null: no pace to reckon from"},
            "contacts_left": _COUNT, "due_now": _COUNT,
            "basis": {"enum": ["recent", "capacity", "none"],
                      "description": "recent: the last window's pace; capacity: the connected channels' before there is one"},
            "contacts_per_hour": {"type": "number"}, "connected_channels": _COUNT}},
        "limits": {"type": "array", "description": "what holds the campaign back now", "items": {
            "type": "object", "required": ["code", "detail"], "properties": {
                "code": {"enum": ["state", "no_appliance", "blackout_date", "outside_hours", "sim_caps", "quiet_period",
                                  "rules", "retry_delay", "fleet_busy"]},
                "detail": {"type": "string"}, "reason": {"type": "string"}, "count": {"type": "integer"},
                "until": {"type": "string", "format": "date-time"}}}},
    },
}

