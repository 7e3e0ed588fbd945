"""The OpenAPI 3.1 document of the CRM API, and its reference page rendered server-side
(the controller runs where there is no internet: no CDN, no JavaScript renderer).

Kept beside api.py by hand; tests validate it (openapi-spec-validator rules via
schemathesis' loader) and run schemathesis against a live server, so a route whose
answers drift from this document fails CI. Its ``webhooks`` describe what the controller
POSTs to a CRM (controller/reports.py result_event, inbound_event): each payload's schema,
the signature recipe in words and as fields (x-signature) with a worked example, so a
receiver in any language verifies deliveries from the document alone
(tests/test_openapi_document.py applies that recipe to real deliveries).
"""
from __future__ import annotations

import html
import json
from functools import lru_cache
from typing import Any, Final

from .apikit import ID_PATTERN, TEXT_PATTERN, TITLES, problem_type
from .contacts import (
    MAX_LINE,
    MAX_PHONE_TEXT,
    MAX_PHONES,
    MAX_REPORTED,
    MAX_ROWS,
    MAX_TEXT,
)
from .openapi_examples import CSV_DESCRIPTION, REQUESTS, responses
from .webhooks import (
    DELIVERY_TIMEOUT,
    REPLAY_TOLERANCE,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    sign,
)

VERSION: Final = "0.1.0"
#: The opt-out list's cursor: the last number of a page (E.164), or empty for the start.
OPTOUT_CURSOR: Final = "^(\\+[0-9]{1,15})?$"
#: A written number as common/phone.py reads it (digits, a leading +, spaces, no-break
#: spaces, dots, dashes, parentheses; at least one digit): never letters.
NUMBER_PATTERN: Final = "^\\+?[0-9 \u00a0.()\\-]*[0-9][0-9 \u00a0.()\\-]*$"

_NULL_STR = {"type": ["string", "null"]}
_NULL_INT = {"type": ["integer", "null"]}
_NULL_NUM = {"type": ["number", "null"]}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _page(item: dict[str, Any], cursor: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"type": "object", "required": ["items", "next"],
            "properties": {"items": {"type": "array", "items": item}, "next": cursor or {"type": "integer"}}}


def _json_body(schema: dict[str, Any], description: str = "") -> dict[str, Any]:
    return {"description": description or "OK", "content": {"application/json": {"schema": schema}}}


_ERR = {"$ref": "#/components/responses/Problem"}
_AFTER = {"name": "after", "in": "query", "required": False, "schema": {"type": "integer", "minimum": 0, "maximum": 2**62},
          "description": "Cursor: the `next` of the previous page (0 or absent: from the start)."}
_LIMIT = {"name": "limit", "in": "query", "required": False, "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100}}
_CAMPAIGN_ID = {"name": "id", "in": "path", "required": True, "schema": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9_\\-]{0,63}$"},
                "example": "nov"}
_CONTACT_ID = {"name": "id", "in": "path", "required": True, "schema": {"type": "integer", "minimum": 1}, "example": 17}


#: A summary longer than this is cut to its first clause (the reference page's menu and
#: headings), the whole text becoming the operation's description.
HEADLINE_MAX: Final = 60


def headline(summary: str) -> str:
    if len(summary) <= HEADLINE_MAX:
        return summary
    cuts = [i for i in (summary.find(sep) for sep in (" (", "; ", ": ", ". ", ", ")) if i >= 8]
    return summary[:min(cuts)] if cuts else summary


def _op(summary: str, ok: dict[str, Any], *, errors: tuple[int, ...] = (400, 401), params: list[Any] | None = None,
        body: dict[str, Any] | None = None, status: str = "200", security: bool = True, tag: str = "") -> dict[str, Any]:
    op: dict[str, Any] = {"summary": headline(summary), "responses": {status: ok, **{str(e): _ERR for e in errors}}}
    if op["summary"] != summary:
        op["description"] = summary
    if tag:
        op["tags"] = [tag]
    if params:
        op["parameters"] = params
    if body is not None:
        op["requestBody"] = body
        op["responses"]["415"] = _ERR  # a Content-Type the route does not read
    if not security:
        op["security"] = []
    return op


#: Each step kind's own settings (controller/campaigns.py parse_step: another kind's is refused).
STEP_SETTINGS: Final = {
    "call": ("ring_seconds", "on_answer", "message", "on_machine", "on_human", "lang", "dialogue", "promise_window_days",
             "after_promise", "record"),
    "sms": ("text",), "hlr": ("method",)}


def _steps(settings: dict[str, Any]) -> dict[str, Any]:
    """``Step``, one of CallStep, SmsStep and HlrStep told apart by ``kind``, each with the
    settings every step has (attempts, retry_after_seconds, creditor) and its own."""
    common = [k for k in settings if not any(k in own for own in STEP_SETTINGS.values())]
    names = {kind: f"{kind.capitalize()}Step" for kind in STEP_SETTINGS}
    kinds = {names[kind]: {
        "type": "object", "title": f"{kind} step", "additionalProperties": False,
        "required": ["kind", "text"] if kind == "sms" else ["kind"],
        "properties": {"kind": {"const": kind}, **{k: settings[k] for k in (*common, *own)}}}
        for kind, own in STEP_SETTINGS.items()}
    step = {"type": "object", "oneOf": [_ref(n) for n in kinds], "discriminator": {
        "propertyName": "kind", "mapping": {kind: f"#/components/schemas/{n}" for kind, n in names.items()}}}
    return {"Step": step, **kinds}


SCHEMAS: Final[dict[str, Any]] = {
    "Problem": {
        "type": "object", "required": ["type", "title", "status", "detail", "instance", "code", "errors"],
        "description": "RFC 9457 problem details (application/problem+json), the body of every error answer",
        "properties": {
            "type": {"type": "string", "format": "uri-reference", "description": "/docs#problem-<code>: one per code"},
            "title": {"type": "string", "description": "the same for every problem of this type"},
            "status": {"type": "integer", "minimum": 400, "maximum": 599},
            "detail": {"type": "string", "description": "this occurrence, in words"},
            "instance": {"type": "string", "format": "uri-reference", "description": "the request's path"},
            "code": {"type": "string", "description": "the short code of type (invalid, not_found, bad_state, …)"},
            "errors": {"type": "array", "items": _ref("ProblemItem"),
                       "description": "every bad field or row of the request (an import: the first 100, "
                                      "report.errors_total counts all); empty when the request as a whole is the problem"},
            "report": _ref("ImportReport")},
        "example": {"type": "/docs#problem-invalid", "title": "Some fields of the request are not valid", "status": 400,
                    "detail": "strategy[0].ring_seconds: expected a number from 15 to 60", "instance": "/v1/campaigns",
                    "code": "invalid", "errors": [
                        {"field": "strategy[0].ring_seconds", "reason": "expected a number from 15 to 60"},
                        {"field": "rules.hours", "reason": "start must be before end"}]}},
    "ProblemItem": {"type": "object", "required": ["field", "reason"], "properties": {
        "field": {"type": "string", "description": "the field: a JSON path (strategy[2].text), a column, a parameter"},
        "reason": {"type": "string"}, "line": _NULL_INT, "external_id": _NULL_STR}},
    **_steps({
        "attempts": {"type": "integer", "minimum": 1, "maximum": 20, "default": 1},
        "retry_after_seconds": {"type": "number", "minimum": 60, "maximum": 2592000, "default": 3600},
        "ring_seconds": {"type": "number", "minimum": 15, "maximum": 60, "default": 30, "description": "call steps"},
        "text": {"type": "string", "maxLength": 1530,
                 "description": "sms steps: template with {name} {amount} {currency} {due_date} {case_ref} {external_id} "
                                "{creditor}"},
        "method": {"enum": ["sms_ping", "probe_call"], "description": "hlr steps"},
        # call steps, after the answer (docs/controller.md, "Live-call steps")
        "on_answer": {"enum": ["hangup", "hold", "play", "amd"],
                      "description": "call steps: what an answered call does (absent: the appliance's [calls] on_answer)"},
        "message": {"type": "string", "maxLength": 1530,
                    "description": "call steps: what the callee hears (play, leave_message); a template like an SMS text, "
                                   "at most 136 characters once rendered"},
        "on_machine": {"enum": ["leave_message", "hangup"], "description": 'on_answer "amd": a machine answered'},
        "on_human": {"enum": ["play", "voicebot", "hangup"], "description": 'on_answer "amd": a person (or maybe one)'},
        "lang": {"enum": ["pl", "en"], "description": "the voice; absent: the contact's language when pl or en, else pl"},
        "dialogue": {"enum": ["promise_to_pay"], "default": "promise_to_pay", "description": 'on_human "voicebot"'},
        "promise_window_days": {"type": "integer", "minimum": 1, "maximum": 60, "default": 14,
                                "description": "voicebot: the latest acceptable promise date is today + this (contact's zone)"},
        "after_promise": {"enum": ["finish", "wait"], "default": "finish",
                          "description": "voicebot: after a promise, finish the contact, or take the next step the day "
                                         "after the promised date"},
        "record": {"type": "boolean", "default": False, "description": "call steps: record the answered call"},
        "creditor": {"type": "string", "minLength": 1, "maxLength": 136,
                     "description": "overrides the campaign's creditor for this step"}}),
    "Rules": {"type": "object", "additionalProperties": False, "properties": {
        "hours": {"type": "array", "items": {"type": "string", "pattern": "^\\d\\d:\\d\\d$"}, "minItems": 2, "maxItems": 2,
                  "default": ["08:00", "21:00"]},
        "max_attempts": {"type": "integer", "minimum": 1, "maximum": 100, "default": 7},
        "attempt_window_days": {"type": "integer", "minimum": 1, "maximum": 90, "default": 7},
        "quiet_days_after_conversation": {"type": "integer", "minimum": 0, "maximum": 90, "default": 7},
        "daily_cap_per_number": {"type": "integer", "minimum": 1, "maximum": 100, "default": 3},
        "blackout_dates": {"type": "array", "items": {"type": "string", "format": "date"}, "maxItems": 366},
        "recording_retention_days": {"type": "integer", "minimum": 1, "maximum": 3650, "default": 30,
                                     "description": "days a call recording is kept"}}},
    "CampaignCreate": {"type": "object", "required": ["id", "strategy"], "additionalProperties": False, "properties": {
        "id": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9_\\-]{0,63}$"},
        "name": {"type": "string", "minLength": 1, "maxLength": 200, "pattern": TEXT_PATTERN},
        "strategy": {"type": "array", "items": _ref("Step"), "minItems": 1, "maxItems": 10},
        "rules": _ref("Rules"),
        "start": {"type": "boolean", "default": False,
                  "description": "true: dial at once; false: a draft (import, then POST /v1/campaigns/{id}/start)"},
        "creditor": {"type": "string", "minLength": 1, "maxLength": 136,
                     "description": "the creditor's name as the debtor hears it: the voicebot's greeting, {creditor} in "
                                    "templates; required by a voicebot step or a template naming it"}}},
    "Campaign": {"type": "object", "required": ["id", "name", "state", "strategy", "rules", "contacts", "created_at", "updated_at"],
                 "properties": {
                     "id": {"type": "string"}, "name": {"type": "string"},
                     "state": {"enum": ["draft", "running", "paused", "cancelled", "done"],
                               "description": "draft -> running <-> paused -> done | cancelled"},
                     "strategy": {"type": "array", "items": {"type": "object"}}, "rules": {"type": "object"},
                     "contacts": {"type": "object", "additionalProperties": {"type": "integer"}},
                     "created_at": {"type": "number"}, "updated_at": {"type": "number"}}},
    "ContactIn": {"type": "object", "required": ["external_id"], "additionalProperties": False, "properties": {
        "external_id": {"type": ["string", "integer"], "maxLength": MAX_TEXT, "description": "once per request"},
        "phones": {"type": ["array", "string"], "items": {"type": "string", "maxLength": MAX_PHONE_TEXT}, "maxItems": MAX_PHONES,
                   "description": "digits, a leading +, spaces, dots, dashes, parentheses; never letters"},
        "phone": {"type": "string", "maxLength": MAX_PHONE_TEXT}, "name": {"type": ["string", "integer"], "maxLength": MAX_TEXT},
        "case_ref": {"type": ["string", "integer"], "maxLength": MAX_TEXT},
        "amount": {"type": ["string", "number"], "description": "non-negative, below 10^16, at most 2 decimal places"},
        "currency": {"type": "string"}, "due_date": {"type": "string"},
        "time_zone": {"type": "string"}, "language": {"type": "string"}, "region": {"type": "string"}}},
    "RowProblem": {"type": "object", "required": ["line", "field", "reason"], "properties": {
        "line": {"type": "integer", "description": "CSV: the file's line (header = 1); JSON: 1-based position in the list"},
        "field": {"type": "string"}, "reason": {"type": "string"}, "external_id": _NULL_STR}},
    "ImportReport": {
        "type": "object", "description": "rows = valid + rejected + duplicates; when stored, valid = created + updated = rows. "
        f"errors and warnings list the first {MAX_REPORTED} in line order; the totals count all.",
        "required": ["stored", "rows", "created", "updated", "valid", "rejected", "duplicates", "errors", "errors_total",
                     "warnings", "warnings_total"], "properties": {
            "stored": {"type": "boolean", "description": "false: nothing of the request was stored"},
            "rows": {"type": "integer"}, "created": {"type": "integer"}, "updated": {"type": "integer"},
            "valid": {"type": "integer"}, "rejected": {"type": "integer", "description": "rows with a bad field"},
            "duplicates": {"type": "integer", "description": "rows repeating an earlier row's external_id"},
            "errors": {"type": "array", "items": _ref("RowProblem"), "maxItems": MAX_REPORTED},
            "errors_total": {"type": "integer"},
            "warnings": {"type": "array", "items": _ref("RowProblem"), "maxItems": MAX_REPORTED,
                         "description": "formula-like cells (=, +, -, @, tab, CR first): stored as given"},
            "warnings_total": {"type": "integer"},
            "delimiter": {"enum": ["comma", "semicolon", "tab"],
                          "description": "CSV bodies: the column separator read off the header line"}}},
    "Contact": {"type": "object", "required": ["id", "campaign_id", "external_id", "phones", "state"], "properties": {
        "id": {"type": "integer"}, "campaign_id": {"type": "string"}, "external_id": {"type": "string"},
        "name": _NULL_STR, "case_ref": _NULL_STR, "amount": _NULL_STR, "currency": _NULL_STR, "due_date": _NULL_STR,
        "time_zone": _NULL_STR, "language": _NULL_STR, "phones": {"type": "array", "items": {"type": "string"}},
        "state": {"enum": ["waiting", "in_flight", "done"]}, "step": {"type": "integer"}, "n": {"type": "integer"},
        "next_at": {"type": "number"}, "outcome": _NULL_STR,
        "promise_date": {"type": ["string", "null"], "format": "date",
                         "description": "the date the debtor promised to pay by (the voicebot); no call while it holds"},
        "created_at": {"type": "number"}, "updated_at": {"type": "number"},
        "formula_fields": {"type": "array", "items": {"type": "string"},
                           "description": "free-text fields a spreadsheet would run as a formula; values are verbatim here"}}},
    "Result": {"type": "object", "required": ["seq", "outcome", "final", "at"], "properties": {
        "seq": {"type": "integer"}, "appliance_id": _NULL_STR, "app_seq": _NULL_INT, "job_id": _NULL_STR,
        "campaign_id": _NULL_STR, "contact_id": _NULL_INT, "kind": _NULL_STR, "callee": _NULL_STR,
        "external_id": {"type": ["string", "null"], "description": "the CRM's key of the contact (null: no contact matched)"},
        "outcome": {"type": "string", "description": "answered_human, answered_machine, busy, no_answer, rejected, unreachable, "
                    "invalid_number, network_error, channel_error, cancelled, refused_by_policy, delivered, failed, active, "
                    "absent, invalid, unknown, expired, no_eligible_sim (no SIM of the appliance could serve the job: "
                    "detail.waiting_for and detail.detail say why; retried like a channel failure, not a contact attempt), "
                    "… A job withdrawn by pause or cancel is cancelled with detail.detail naming why."},
        "reason": _NULL_STR, "final": {"type": "boolean"}, "number_shown": _NULL_STR, "at": {"type": "number"},
        "detail": {"type": "object", "description": "the appliance's result body"},
        "voicebot": _ref("VoicebotOutcome")}},
    "VoicebotOutcome": {"type": "object", "required": ["identity", "promise_date", "callback_requested"],
                        "description": "present when the call ran the voicebot (the path and digits: detail.voicebot)",
                        "properties": {"identity": {"enum": ["confirmed", "denied", "unknown"]},
                                       "promise_date": {"type": ["string", "null"], "format": "date"},
                                       "callback_requested": {"type": "boolean"}}},
    "Inbound": {"type": "object", "required": ["seq", "id", "kind", "from", "at", "opted_out"], "properties": {
        "seq": {"type": "integer"}, "id": {"type": "string"}, "appliance_id": _NULL_STR, "kind": {"enum": ["sms", "call"]},
        "from": {"type": "string"}, "to": _NULL_STR, "text": _NULL_STR, "at": {"type": "number"},
        "contact_id": _NULL_INT, "campaign_id": _NULL_STR, "opted_out": {"type": "boolean"},
        "external_id": {"type": ["string", "null"], "description": "the CRM's key of the contact (null: no contact matched)"},
        "choice": {"enum": ["callback", "opt_out", "none", None],
                   "description": "an answered callback's menu choice: callback (he keyed 1: call me back, a request "
                                  "matched to contact_id and campaign_id), opt_out (9: stop calling this number; the "
                                  "number is on the opt-out list, source callback), none (no key, another key, or he "
                                  "hung up); null for SMS and calls not answered or not chosen yet (the event comes "
                                  "again with its choice, same id)"}}},
    "History": {"type": "object", "required": ["contact", "results", "inbound"], "properties": {
        "contact": _ref("Contact"), "results": {"type": "array", "items": _ref("Result")},
        "inbound": {"type": "array", "items": _ref("Inbound")}}},
    "OptOut": {"type": "object", "required": ["number", "source", "created_at"], "properties": {
        "number": {"type": "string"}, "source": {"type": "string"}, "reason": _NULL_STR, "created_at": {"type": "number"}}},
    "Webhook": {"type": "object", "required": ["id", "url", "events"], "properties": {
        "id": {"type": "string"}, "url": {"type": "string"}, "events": {"type": "array", "items": {"type": "string"}},
        "created_at": {"type": "number"}, "secret": {"type": "string", "description": "only in the reply to POST"}}},
    "DeadLetter": {"type": "object", "required": ["id", "webhook_id", "event", "payload", "attempts"], "properties": {
        "id": {"type": "integer"}, "webhook_id": {"type": "string"}, "event": {"type": "string"}, "payload": {"type": "object"},
        "attempts": {"type": "integer"}, "last_error": _NULL_STR, "created_at": {"type": "number"}, "updated_at": {"type": "number"}}},
    "Appliance": {"type": "object", "required": ["id", "connected"], "properties": {
        "id": {"type": "string"}, "version": _NULL_STR, "channels": _NULL_INT, "idle": _NULL_INT, "capacity": _NULL_INT,
        "queued": _NULL_INT, "operators": {"type": "object"}, "connected": {"type": "boolean"}, "last_seen": _NULL_NUM,
        "connected_at": _NULL_NUM, "enrolled_at": {"type": "number"},
        "sims": {"type": "array", "items": {"type": "object"}}, "open_jobs": {"type": "integer"}}},
    "Recording": {"type": "object", "required": ["id", "campaign_id", "job_id", "format", "bytes", "created_at", "expires_at"],
                  "properties": {
        "id": {"type": "string"}, "campaign_id": {"type": "string"}, "contact_id": _NULL_INT, "job_id": {"type": "string"},
        "attempt": {"type": "integer"}, "appliance_id": {"type": "string"},
        "format": {"type": "string", "description": "ogg/opus: stereo, 8 kHz; left the far end, right ours"},
        "seconds": _NULL_NUM, "bytes": {"type": "integer"}, "created_at": {"type": "string", "format": "date-time"},
        "expires_at": {"type": "string", "format": "date-time",
                       "description": "deleted after this: the campaign's rules.recording_retention_days (default 30)"}}},
}


def _import_op() -> dict[str, Any]:
    op = _op(f"Import contacts (JSON list or CSV with a header row; up to {MAX_ROWS:,} rows), all or nothing: every row is "
             "checked first, and one bad row refuses the request (422, every bad row's line, field and reason) with "
             "nothing stored. Re-import by external_id updates. Bounds: 64 MiB (413), text fields of "
             f"{MAX_TEXT} characters, {MAX_PHONES} numbers per contact, CSV lines of {MAX_LINE:,} characters, no quoted "
             "field over a line break.",
             _json_body(_ref("ImportReport")), errors=(401, 404, 409), tag="contacts",
             params=[_CAMPAIGN_ID, {"name": "region", "in": "query", "required": False,
                                    "schema": {"type": "string", "pattern": "^[A-Za-z]{2}$"},
                                    "description": "region of national-format numbers"}],
             body={"required": True, "content": {
                 "application/json": {"schema": {"oneOf": [
                     {"type": "array", "items": _ref("ContactIn"), "maxItems": MAX_ROWS},
                     {"type": "object", "required": ["contacts"], "additionalProperties": False, "properties": {
                         "contacts": {"type": "array", "items": _ref("ContactIn"), "maxItems": MAX_ROWS}}}]}},
                 "text/csv": {"schema": {"type": "string", "description": CSV_DESCRIPTION}}}})
    op["responses"].update({"400": _ERR, "413": _ERR, "415": _ERR, "422": _ERR})
    return op


#: What each campaign action does, for the operations' summaries.
TRANSITION_WORDS: Final = {"start": "draft -> running: dialling begins", "pause": "running -> paused",
                           "resume": "paused -> running", "cancel": "draft, running or paused -> cancelled"}


def _paths() -> dict[str, Any]:
    camp = _json_body(_ref("Campaign"))
    transition = lambda verb: {"post": _op(
        f"{verb.capitalize()} the campaign ({TRANSITION_WORDS[verb]}); 200 without a change when it is in that state "
        "already, 409 bad_state when the lifecycle does not allow it", camp, errors=(401, 404, 409),
        params=[_CAMPAIGN_ID], tag="campaigns")}
    return {
        "/v1/enroll": {"post": _op(
            "Enroll an appliance with a one-time token; returns its link credential (shown once)",
            _json_body({"type": "object", "required": ["appliance_id", "credential"],
                        "properties": {"appliance_id": {"type": "string"}, "credential": {"type": "string"}}}),
            errors=(400, 401, 409), security=False, tag="fleet",
            body={"required": True, "content": {"application/json": {"schema": {
                "type": "object", "required": ["token", "appliance_id"],
                "properties": {"token": {"type": "string", "minLength": 1},
                               "appliance_id": {"type": "string", "pattern": ID_PATTERN}}}}}})},
        "/v1/campaigns": {
            "get": _op("List campaigns", _json_body({"type": "object", "required": ["items"],
                                                     "properties": {"items": {"type": "array", "items": _ref("Campaign")}}}),
                       errors=(401,), tag="campaigns"),
            "post": _op("Create a campaign (strategy and rules validated here)", _json_body(_ref("Campaign"), "Created"),
                        errors=(400, 401, 409), status="201", tag="campaigns",
                        body={"required": True, "content": {"application/json": {"schema": _ref("CampaignCreate")}}})},
        "/v1/campaigns/{id}": {"get": _op("Read a campaign with its contact counts", camp, errors=(401, 404),
                                          params=[_CAMPAIGN_ID], tag="campaigns")},
        "/v1/campaigns/{id}/start": transition("start"),
        "/v1/campaigns/{id}/pause": transition("pause"),
        "/v1/campaigns/{id}/resume": transition("resume"),
        "/v1/campaigns/{id}/cancel": transition("cancel"),
        "/v1/campaigns/{id}/contacts": {
            "post": _import_op(),
            "get": _op("List a campaign's contacts (Accept: text/csv for a spreadsheet: formula-like cells get a leading ', "
                       "the next page in a Link header)",
                       {"description": "OK", "content": {"application/json": {"schema": _page(_ref("Contact"))},
                                                         "text/csv": {"schema": {"type": "string"}}}},
                       errors=(400, 401, 404), params=[_CAMPAIGN_ID, _AFTER, _LIMIT], tag="contacts")},
        "/v1/contacts/{id}": {"get": _op("Read a contact", _json_body(_ref("Contact")), errors=(401, 404),
                                         params=[_CONTACT_ID], tag="contacts")},
        "/v1/contacts/{id}/history": {"get": _op("A contact's results and inbound events across channels",
                                                 _json_body(_ref("History")), errors=(401, 404), params=[_CONTACT_ID],
                                                 tag="contacts")},
        "/v1/results": {"get": _op("Results in order (refusals included), cursor-paginated", _json_body(_page(_ref("Result"))),
                                   params=[_AFTER, _LIMIT,
                                           {"name": "campaign_id", "in": "query", "required": False,
                                            "description": "only this campaign's results",
                                            "schema": {"type": "string", "pattern": ID_PATTERN}},
                                           {"name": "campaign", "in": "query", "required": False, "deprecated": True,
                                            "description": "the first name of campaign_id, still read when "
                                                           "campaign_id is not given",
                                            "schema": {"type": "string", "pattern": ID_PATTERN}}],
                                   tag="results")},
        "/v1/inbound": {"get": _op("Inbound calls and SMS, matched to contact and campaign", _json_body(_page(_ref("Inbound"))),
                                   params=[_AFTER, _LIMIT], tag="results")},
        "/v1/optouts": {
            "get": _op("The opt-out / do-not-call list", _json_body(_page(_ref("OptOut"), {"type": "string"})),
                       params=[{"name": "after", "in": "query", "required": False,
                                "schema": {"type": "string", "pattern": OPTOUT_CURSOR},
                                "description": "Cursor: the next of the previous page (an E.164 number; absent: the start)"},
                               _LIMIT],
                       tag="optouts"),
            "post": _op("Add a number (E.164) to the list", _json_body({"type": "object", "required": ["number", "created"],
                                                                       "properties": {"number": {"type": "string"},
                                                                                      "created": {"type": "boolean"}}}, "Already listed"),
                        status="200", tag="optouts",
                        body={"required": True, "content": {"application/json": {"schema": {
                            "type": "object", "required": ["number"],
                            "properties": {"number": {"type": "string"},
                                           "reason": {"type": ["string", "null"], "maxLength": 200,
                                                      "pattern": TEXT_PATTERN}}}}}})},
        "/v1/optouts/{number}": {"delete": _op("Remove a number from the list", _json_body(
            {"type": "object", "required": ["number", "removed"], "properties": {"number": {"type": "string"},
                                                                                 "removed": {"type": "boolean"}}}),
            errors=(400, 401, 404), tag="optouts",
            params=[{"name": "number", "in": "path", "required": True,
                     "schema": {"type": "string", "pattern": NUMBER_PATTERN, "maxLength": MAX_PHONE_TEXT},
                     "example": "+48600100299", "description": "E.164 (URL-encode the +: %2B48600100299)"}])},
        "/v1/webhooks": {
            "get": _op("List webhooks", _json_body({"type": "object", "required": ["items"],
                                                    "properties": {"items": {"type": "array", "items": _ref("Webhook")}}}),
                       errors=(401,), tag="webhooks"),
            "post": _op("Add a webhook; the reply carries the signing secret. The URL's host must resolve only to public "
                        "addresses (loopback, private, link-local, multicast, unspecified refused, IPv4-mapped too) unless "
                        "[webhooks] allow_private = true; checked again at every delivery",
                        _json_body(_ref("Webhook"), "Created"),
                        status="201", tag="webhooks",
                        body={"required": True, "content": {"application/json": {"schema": {
                            "type": "object", "required": ["url"], "properties": {
                                "url": {"type": "string", "format": "uri", "maxLength": 2048},
                                "events": {"type": "array", "items": {"enum": ["result", "inbound"]}, "minItems": 1},
                                "secret": {"type": "string", "minLength": 16, "maxLength": 200, "pattern": TEXT_PATTERN}}}}}})},
        "/v1/webhooks/{id}": {"delete": _op("Delete a webhook", _json_body(
            {"type": "object", "required": ["id", "deleted"], "properties": {"id": {"type": "string"}, "deleted": {"type": "boolean"}}}),
            errors=(401, 404), tag="webhooks",
            params=[{"name": "id", "in": "path", "required": True, "schema": {"type": "string", "pattern": "^wh_[^/]+$"},
                     "example": "wh_5bZ0qkT1"}])},
        "/v1/webhooks/dead-letters": {"get": _op("Deliveries that failed every retry", _json_body(_page(_ref("DeadLetter"))),
                                                 params=[_AFTER, _LIMIT], tag="webhooks")},
        "/v1/webhooks/dead-letters/replay": {"post": _op(
            "Queue dead letters again (all, or the given ids)",
            _json_body({"type": "object", "required": ["replayed"], "properties": {"replayed": {"type": "integer"}}}),
            tag="webhooks", body={"required": False, "content": {"application/json": {"schema": {
                "type": "object", "properties": {"ids": {"type": "array", "items": {"type": "integer", "minimum": 0, "maximum": 2**62 - 1},
                                         "maxItems": 10000}}}}}})},
        "/v1/appliances": {"get": _op("The fleet: appliances and their health", _json_body(
            {"type": "object", "required": ["items"], "properties": {"items": {"type": "array", "items": _ref("Appliance")}}}),
            errors=(401,), tag="fleet")},
        "/v1/appliances/{id}": {"get": _op("One appliance with its SIMs and open jobs", _json_body(_ref("Appliance")),
                                           errors=(401, 404), tag="fleet",
                                           params=[{"name": "id", "in": "path", "required": True, "schema": {"type": "string"},
                                                    "example": "box-01"}])},
        **_recording_paths(),
    }


def _recording_paths() -> dict[str, Any]:
    """Call recordings (controller/recordings.py): the CRM lists and fetches them while the
    campaign retains them; an appliance sends each one with its link credential."""
    rec_id = {"name": "id", "in": "path", "required": True, "schema": {"type": "string"},
              "example": "6f1c0d2e9a8b4c7d8e9f0a1b2c3d4e5f"}
    ogg = {"description": "The recording (Ogg Opus, stereo: left the far end, right ours)",
           "content": {"audio/ogg": {"schema": {"type": "string", "format": "binary"}}}}
    upload = _op("An appliance sends one call's recording (its link credential as the bearer, not an API key); "
                 "200 again for an id already stored. 422 unknown_job: no such job was leased here.",
                 _json_body({"type": "object", "required": ["id", "stored", "duplicate"], "properties": {
                     "id": {"type": "string"}, "stored": {"type": "boolean"}, "duplicate": {"type": "boolean"}}}),
                 errors=(400, 401, 413, 415, 422), tag="recordings",
                 params=[{**rec_id, "schema": {"type": "string", "pattern": "^[0-9a-f]{32}$"}},
                         {"name": "job_id", "in": "query", "required": True, "schema": {"type": "string"}},
                         {"name": "attempt", "in": "query", "required": False, "schema": {"type": "integer"}},
                         {"name": "seconds", "in": "query", "required": False, "schema": {"type": "number"}}],
                 body={"required": True, "content": {t: {"schema": {"type": "string", "format": "binary"}}
                                                     for t in ("audio/ogg", "application/octet-stream")}})
    upload["security"] = [{"applianceCredential": []}]
    return {
        "/v1/recordings": {"get": _op(
            "Recordings retained, in the order they arrived, of one campaign (campaign_id) or all",
            _json_body(_page(_ref("Recording"))), tag="recordings",
            params=[{"name": "campaign_id", "in": "query", "required": False,
                     "schema": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9_\\-]{0,63}$"}}, _AFTER, _LIMIT])},
        "/v1/recordings/{id}": {"get": _op(
            "One recording's file while retained; 404 not_found for an unknown id, 404 deleted (when, and the "
            "campaign's retention) once the sweep removed it", ogg, errors=(401, 404), tag="recordings", params=[rec_id])},
        "/v1/link/recordings/{id}": {"put": upload},
    }


#: The Idempotency-Key header every POST takes (controller/idempotency.py).
IDEMPOTENCY_KEY: Final = {
    "name": "Idempotency-Key", "in": "header", "required": False,
    "schema": {"type": "string", "pattern": "^[\\x21-\\x7e]{1,255}$"},
    "description": "A key of the client's choosing (a UUID) naming this request for 24 h: a retry with the same key "
                   "and the same request gets the first answer again (status and body, with Idempotent-Replayed: true) "
                   "instead of a second effect; the same key with another request is 422 idempotency_key_reused; "
                   "while the first is still running, 409 idempotency_key_in_use with Retry-After."}


def _idempotent_posts(paths: dict[str, Any]) -> None:
    for ops in paths.values():
        op = ops.get("post")
        if op is not None:
            op.setdefault("parameters", []).append(IDEMPOTENCY_KEY)
            for status in ("400", "409", "422"):
                op["responses"].setdefault(status, _ERR)


def _operations_paths() -> dict[str, Any]:
    """/healthz and /metrics: for a load balancer and Prometheus, outside /v1."""
    return {
        "/healthz": {"get": {
            "summary": "Health: 200 when the database answers, 503 when it does not; the link's state is reported",
            "tags": ["operations"], "security": [],
            "responses": {s: _json_body({"type": "object", "required": ["status", "database", "link"], "properties": {
                "status": {"enum": ["ok", "failing"]},
                "database": {"type": "object", "required": ["ok"], "properties": {
                    "ok": {"type": "boolean"}, "schema_version": {"type": "integer"}, "error": {"type": "string"}}},
                "link": {"type": "object", "properties": {"appliances_connected": {"type": "integer"},
                                                          "appliances_enrolled": _NULL_INT}}}}, d)
                for s, d in (("200", "Healthy"), ("503", "The database does not answer"))}}},
        "/metrics": {"get": _op(
            "Prometheus metrics (text format 0.0.4): API latency by route template, jobs, contacts and campaigns by "
            "state, appliances connected, webhook deliveries and queue, import rows, lease expiries",
            {"description": "OK", "content": {"text/plain": {"schema": {"type": "string"}}}}, errors=(401,),
            tag="operations")},
    }


#: The secret and time of the worked signature example in each webhook (made up: a real
#: secret comes from POST /v1/webhooks; 2026-01-15 10:05 UTC).
EXAMPLE_SECRET: Final = "whsec-example-0123456789abcdef"
EXAMPLE_TIMESTAMP: Final = 1768471500

#: The signature recipe in words: what a receiver in any language does (docs/controller.md).
SIGNATURE_RECIPE: Final = (
    f"Every delivery is signed. To verify one: (1) read the request body as raw bytes, before any JSON parsing; "
    f"(2) read the {TIMESTAMP_HEADER} header (the Unix time of this delivery attempt in whole seconds, ASCII "
    f"digits) and the {SIGNATURE_HEADER} header; (3) the signed bytes are the timestamp's ASCII digits, one "
    f"full stop '.', then the body bytes unchanged; (4) compute HMAC-SHA256 over them with the webhook's secret "
    f"(the UTF-8 bytes of the secret returned by POST /v1/webhooks) as the key, write the 32-byte MAC as 64 "
    f"lower-case hexadecimal digits and put 'sha256=' in front; (5) compare that with the {SIGNATURE_HEADER} "
    f"value in constant time and reject the delivery when they differ; (6) reject it too when the timestamp is "
    f"more than {REPLAY_TOLERANCE:.0f} seconds from your clock (a captured request replayed later). Answer any 2xx "
    f"within {DELIVERY_TIMEOUT:.0f} s; anything else, or no answer, is retried after 10 s, 20 s, 40 s ... (capped at "
    f"an hour) up to 10 tries, then kept as a dead letter (GET /v1/webhooks/dead-letters) until replayed. A retry "
    f"or replay carries the same X-Simrotor-Delivery and body with a new timestamp and signature: deduplicate by it. "
    f"x-signature holds the same recipe as fields, with a worked example.")

_EVENT_COMMON: Final = {
    "seq": {"type": "integer", "description": "the row's place in GET /v1/results or GET /v1/inbound (the cursor)"},
    "campaign_id": _NULL_STR, "contact_id": _NULL_INT,
    "external_id": {"type": ["string", "null"], "description": "the CRM's key of the contact (null: no contact matched)"},
    "at": {"type": "number", "description": "Unix time of the event (seconds, fractional)"}}


def _event_schemas() -> dict[str, Any]:
    """The webhook payloads (controller/reports.py result_event and inbound_event): the
    items of GET /v1/results and GET /v1/inbound with the event's type on top."""
    result, inbound = SCHEMAS["Result"]["properties"], SCHEMAS["Inbound"]["properties"]
    result_props = {"type": {"const": "result"}, **_EVENT_COMMON,
                    **{k: result[k] for k in ("job_id", "kind", "callee", "outcome", "reason", "final", "number_shown",
                                              "detail", "voicebot")}}
    inbound_props = {"type": {"const": "inbound"}, **_EVENT_COMMON,
                     **{k: inbound[k] for k in ("id", "appliance_id", "kind", "from", "to", "text", "opted_out", "choice")}}
    return {
        "ResultEvent": {"type": "object", "description": "The result webhook's body: a GET /v1/results item with type",
                        "required": [k for k in result_props if k != "voicebot"], "properties": result_props},
        "InboundEvent": {"type": "object", "description": "The inbound webhook's body: a GET /v1/inbound item with type",
                         "required": list(inbound_props), "properties": inbound_props}}


#: One example body of each webhook, as the controller sends it.
EVENT_EXAMPLES: Final[dict[str, dict[str, Any]]] = {
    "result": {"type": "result", "seq": 42, "job_id": "nov-17-0-1-0", "campaign_id": "nov", "contact_id": 17,
               "external_id": "D-1042", "kind": "call", "callee": "+48600100200", "outcome": "answered_human",
               "reason": None, "final": True, "number_shown": "+48690000003", "at": 1768471490.25,
               "detail": {"job_id": "nov-17-0-1-0", "attempt": 1, "outcome": "answered_human", "final": True,
                          "talk_seconds": 21.5}},
    "inbound": {"type": "inbound", "seq": 7, "id": "in-9", "appliance_id": "box-01", "kind": "sms",
                "from": "+48600100200", "to": "+48690000003", "text": "Zapłacę w piątek", "at": 1768471495.0,
                "contact_id": 17, "external_id": "D-1042", "campaign_id": "nov", "opted_out": False, "choice": None},
}

_EVENT_WORDS: Final = {
    "result": (("A result of a job (call, SMS, HLR check) or the dispatcher's refusal: every row of GET /v1/results, "
                "as it is stored"), "ResultEvent"),
    "inbound": (("An inbound call or SMS, matched to the contact shown the number it reached; an answered callback "
                 "comes again with its menu choice (same id)"), "InboundEvent"),
}


def _webhook(event: str) -> dict[str, Any]:
    summary, schema = _EVENT_WORDS[event]
    example = EVENT_EXAMPLES[event]
    body = json.dumps(example, ensure_ascii=False)  # as the controller writes it (store.enqueue)
    signature = sign(EXAMPLE_SECRET, EXAMPLE_TIMESTAMP, body.encode())

    def header(name: str, schema: dict[str, Any], description: str, example: Any) -> dict[str, Any]:
        return {"name": name, "in": "header", "required": True, "schema": schema, "description": description,
                "example": example}

    return {"post": {
        "summary": summary, "description": SIGNATURE_RECIPE, "operationId": f"{event}Webhook", "tags": ["webhooks"],
        "security": [],
        "parameters": [
            header(SIGNATURE_HEADER, {"type": "string", "pattern": "^sha256=[0-9a-f]{64}$"},
                   f"'sha256=' and the lower-case hex HMAC-SHA256, keyed with the webhook's secret, of the "
                   f"{TIMESTAMP_HEADER} digits, '.', and the raw body", signature),
            header(TIMESTAMP_HEADER, {"type": "string", "pattern": "^[0-9]+$"},
                   f"Unix time of this attempt, whole seconds; reject it more than {REPLAY_TOLERANCE:.0f} s from now",
                   str(EXAMPLE_TIMESTAMP)),
            header("X-Simrotor-Event", {"enum": [event]}, "the event type (the body's type)", event),
            header("X-Simrotor-Delivery", {"type": "string", "pattern": "^[0-9]+$"},
                   "the delivery's id: the same on every retry and replay of it (deduplicate by it)", "311")],
        "requestBody": {"required": True, "content": {"application/json": {
            "schema": _ref(schema), "example": example}}},
        "responses": {"2XX": {"description": "Delivered: never sent again"},
                      "default": {"description": f"Any other answer, or none within {DELIVERY_TIMEOUT:.0f} s: retried "
                                                 "with backoff, then a dead letter"}},
        "x-signature": {
            "header": SIGNATURE_HEADER, "timestamp_header": TIMESTAMP_HEADER, "algorithm": "HMAC-SHA256",
            "key": "the webhook's secret as UTF-8 bytes", "signed_bytes": "{timestamp}.{body}", "encoding": "hex",
            "prefix": "sha256=", "tolerance_seconds": REPLAY_TOLERANCE,
            "example": {"secret": EXAMPLE_SECRET, "timestamp": str(EXAMPLE_TIMESTAMP), "body": body,
                        "signed_bytes": f"{EXAMPLE_TIMESTAMP}.{body}", "signature": signature}}}}


def _webhooks() -> dict[str, Any]:
    """The OpenAPI 3.1 ``webhooks``: one entry per event POSTed to a registered URL."""
    return {event: _webhook(event) for event in _EVENT_WORDS}


def _problem_example(status: int, code: str, instance: str, detail: str, errors: list[dict[str, Any]]) -> dict[str, Any]:
    return {"type": problem_type(code), "title": TITLES[code], "status": status, "detail": detail, "instance": instance,
            "code": code, "errors": errors}


#: Problems as the controller answers them: one of each kind a client branches on.
PROBLEM_EXAMPLES: Final = {
    "invalid": {"summary": "400: every bad field named", "value": SCHEMAS["Problem"]["example"]},
    "invalid_rows": {"summary": "422: an import refused, every bad row by line and field", "value": {
        **_problem_example(422, "invalid_rows", "/v1/campaigns/nov/contacts",
                           "1 rejected and 0 duplicate rows of 2; nothing was stored (each is in errors, 1 in all)",
                           [{"line": 3, "field": "phones", "external_id": "D-1043",
                             "reason": "'600100201' is not a phone number; use E.164 (+48600000123) or give region"}]),
        "report": {"stored": False, "rows": 2, "created": 0, "updated": 0, "valid": 1, "rejected": 1, "duplicates": 0,
                   "errors": [{"line": 3, "field": "phones", "external_id": "D-1043",
                               "reason": "'600100201' is not a phone number; use E.164 (+48600000123) or give region"}],
                   "errors_total": 1, "warnings": [], "warnings_total": 0, "delimiter": "semicolon"}}},
    "not_found": {"summary": "404", "value": _problem_example(404, "not_found", "/v1/campaigns/dec", "no campaign 'dec'", [])},
    "bad_state": {"summary": "409: the lifecycle does not allow it", "value": _problem_example(
        409, "bad_state", "/v1/campaigns/nov/start", "cannot start a paused campaign; it can: cancel, resume", [])},
    "unauthorized": {"summary": "401", "value": _problem_example(
        401, "unauthorized", "/v1/campaigns", "send Authorization: Bearer <API key> (simrotor controller keys create)", [])},
}


#: Every operation's operationId: the name a client generator gives its method, and what
#: LINKS refer to.
OPERATION_IDS: Final = {
    ("post", "/v1/enroll"): "enrollAppliance", ("get", "/v1/campaigns"): "listCampaigns",
    ("post", "/v1/campaigns"): "createCampaign", ("get", "/v1/campaigns/{id}"): "getCampaign",
    ("post", "/v1/campaigns/{id}/start"): "startCampaign", ("post", "/v1/campaigns/{id}/pause"): "pauseCampaign",
    ("post", "/v1/campaigns/{id}/resume"): "resumeCampaign", ("post", "/v1/campaigns/{id}/cancel"): "cancelCampaign",
    ("post", "/v1/campaigns/{id}/contacts"): "importContacts", ("get", "/v1/campaigns/{id}/contacts"): "listContacts",
    ("get", "/v1/campaigns/{id}/report"): "getCampaignReport", ("get", "/v1/contacts"): "findContacts",
    ("get", "/v1/contacts/{id}"): "getContact", ("get", "/v1/contacts/{id}/history"): "getContactHistory",
    ("get", "/v1/results"): "listResults", ("get", "/v1/results/export"): "exportResults",
    ("get", "/v1/inbound"): "listInbound", ("get", "/v1/optouts"): "listOptOuts", ("post", "/v1/optouts"): "addOptOut",
    ("post", "/v1/optouts/bulk"): "addOptOutsInBulk", ("delete", "/v1/optouts/{number}"): "removeOptOut",
    ("get", "/v1/webhooks"): "listWebhooks", ("post", "/v1/webhooks"): "addWebhook",
    ("delete", "/v1/webhooks/{id}"): "deleteWebhook", ("get", "/v1/webhooks/dead-letters"): "listDeadLetters",
    ("post", "/v1/webhooks/dead-letters/replay"): "replayDeadLetters", ("get", "/v1/appliances"): "listAppliances",
    ("get", "/v1/appliances/{id}"): "getAppliance", ("get", "/v1/recordings"): "listRecordings",
    ("get", "/v1/recordings/{id}"): "getRecording", ("put", "/v1/link/recordings/{id}"): "uploadRecording",
    ("get", "/healthz"): "getHealth", ("get", "/metrics"): "getMetrics",
}

#: OpenAPI links (operationId, status) -> {link: (target operationId, its parameters)}: what
#: a client does next with an answer — and the chains schemathesis' stateful phase walks
#: (create a campaign -> import -> start -> pause -> resume -> report, a contact -> its history).
_CAMPAIGN_NEXT: Final = ("getCampaign", "startCampaign", "pauseCampaign", "resumeCampaign", "cancelCampaign",
                         "importContacts", "listContacts", "getCampaignReport")
LINKS: Final[dict[tuple[str, str], dict[str, tuple[str, dict[str, str]]]]] = {
    ("createCampaign", "201"): {**{t: (t, {"id": "$response.body#/id"}) for t in _CAMPAIGN_NEXT},
                                "exportResults": ("exportResults", {"campaign_id": "$response.body#/id"}),
                                "listResults": ("listResults", {"campaign": "$response.body#/id"})},
    **{(op, "200"): {t: (t, {"id": "$response.body#/id"}) for t in _CAMPAIGN_NEXT}
       for op in ("getCampaign", "startCampaign", "pauseCampaign", "resumeCampaign")},
    ("importContacts", "200"): {t: (t, {"id": "$request.path.id"})
                                for t in ("startCampaign", "listContacts", "getCampaignReport", "cancelCampaign")},
    ("listContacts", "200"): {"getContact": ("getContact", {"id": "$response.body#/items/0/id"}),
                              "getContactHistory": ("getContactHistory", {"id": "$response.body#/items/0/id"}),
                              "findContacts": ("findContacts", {"external_id": "$response.body#/items/0/external_id"})},
    ("getContact", "200"): {"getContactHistory": ("getContactHistory", {"id": "$response.body#/id"}),
                            "findContacts": ("findContacts", {"external_id": "$response.body#/external_id"})},
    **{("addOptOut", s): {"removeOptOut": ("removeOptOut", {"number": "$response.body#/number"})} for s in ("200", "201")},
    ("addWebhook", "201"): {"deleteWebhook": ("deleteWebhook", {"id": "$response.body#/id"})},
    ("listAppliances", "200"): {"getAppliance": ("getAppliance", {"id": "$response.body#/items/0/id"})},
    ("listRecordings", "200"): {"getRecording": ("getRecording", {"id": "$response.body#/items/0/id"})},
}


def _name_and_link(paths: dict[str, Any]) -> None:
    ops = {(m, p): op for p, item in paths.items() for m, op in item.items()}
    assert set(ops) == set(OPERATION_IDS), sorted(set(ops) ^ set(OPERATION_IDS))
    for key, op in ops.items():
        op["operationId"] = OPERATION_IDS[key]
    by_id = {OPERATION_IDS[k]: op for k, op in ops.items()}
    for (source, status), links in LINKS.items():
        resp = by_id[source]["responses"][status]
        by_id[source]["responses"][status] = {**resp, "links": {
            name: {"operationId": target, "parameters": params} for name, (target, params) in links.items()}}


def _add_examples(paths: dict[str, Any]) -> None:
    """Each operation's request and success-answer examples (openapi_examples.py), set on
    copies: the answers' and bodies' objects are shared between operations."""
    answers = responses(EVENT_EXAMPLES)
    unused = (set(REQUESTS) | set(answers)) - {(m, p) for p, ops in paths.items() for m in ops}
    assert not unused, f"examples of no operation: {sorted(unused)}"
    for path, ops in paths.items():
        for method, op in ops.items():
            for ctype, example in REQUESTS.get((method, path), {}).items():
                content = op["requestBody"]["content"]
                content[ctype] = {**content[ctype], "example": example}
            for status, by_type in answers.get((method, path), {}).items():
                resp = op["responses"][status]
                unknown = set(by_type) - set(resp["content"])
                assert not unknown, f"{method} {path} {status} has no {unknown}"
                op["responses"][status] = {**resp, "content": {
                    ctype: {**media, **({"example": by_type[ctype]} if ctype in by_type else {})}
                    for ctype, media in resp["content"].items()}}


@lru_cache(maxsize=1)
def _document() -> str:
    paths = _paths()
    from .crm_routes import (  # issue 16's routes; here, not above: this module stays light
        REPORT_SCHEMA,
        openapi_paths,
    )
    paths.update(openapi_paths(_op, _ref, _json_body, {"after": _AFTER, "limit": _LIMIT, "campaign_path": _CAMPAIGN_ID}))
    SCHEMAS.setdefault("CampaignReport", REPORT_SCHEMA)
    for name, schema in _event_schemas().items():
        SCHEMAS.setdefault(name, schema)
    # POST /v1/optouts answers 201 when the number was added
    paths["/v1/optouts"]["post"]["responses"]["201"] = _json_body(
        {"type": "object", "required": ["number", "created"],
         "properties": {"number": {"type": "string"}, "created": {"type": "boolean"}}}, "Added")
    paths["/v1/optouts"]["post"]["responses"]["400"] = _ERR
    _idempotent_posts(paths)
    paths.update(_operations_paths())
    _add_examples(paths)
    _name_and_link(paths)
    doc = {
        "openapi": "3.1.0",
        "info": {"title": "simrotor controller API", "version": VERSION,
                 "description": "The CRM-facing API of the simrotor controller: campaigns, contacts, results, webhooks, "
                                "opt-outs, inbound callbacks and the fleet. Errors are RFC 9457 problem details "
                                "(application/problem+json, schema Problem) whose errors list names every bad field or "
                                "row; a refused request stores nothing." + problems_markdown()},
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "paths": paths,
        "webhooks": _webhooks(),
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                           "description": "an API key from `simrotor controller keys create`"},
                                "applianceCredential": {"type": "http", "scheme": "bearer",
                                                        "description": "an appliance's credential from POST /v1/enroll"}},
            "schemas": SCHEMAS,
            "responses": {
                "Problem": {"description": "A problem (RFC 9457); nothing of the request was stored",
                            "content": {"application/problem+json": {"schema": _ref("Problem"),
                                                                      "examples": PROBLEM_EXAMPLES}}},
            },
        },
    }
    return json.dumps(doc)


def document() -> dict[str, Any]:
    return json.loads(_document())


#: The reference page's scripts and data come from the controller alone; Redoc's styles
#: are inline (styled-components) and its search runs in a worker made from a blob: URL.
DOCS_CSP: Final = ("default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
                   "font-src 'self' data:; connect-src 'self'; worker-src 'self' blob:; base-uri 'none'; "
                   "form-action 'none'; frame-ancestors 'none'")
#: Where the controller serves Redoc's bundle (scripts/vendor-redoc puts it in controller/static/).
REDOC_PATH: Final = "/static/redoc.standalone.js"


def problems_markdown() -> str:
    """The problem types as a Markdown section of the description: each row is the anchor a
    problem's ``type`` (/docs#problem-<code>) points at on the Redoc page."""
    rows = "\n".join(f'| <span id="problem-{code}"></span>`{code}` | {title} |' for code, title in TITLES.items())
    return ("\n\n## Problems\n\nEvery error answer is `application/problem+json` (schema Problem: type, title, "
            "status, detail, instance, code, errors); its `type` is `/docs#problem-<code>`, one of these:\n\n"
            f"| code | title |\n|---|---|\n{rows}\n")


def redoc_html(doc: dict[str, Any]) -> str:
    """The reference page rendered in the browser by Redoc, served by the controller (no
    CDN): the bundle reads /openapi.json from the same origin."""
    title = html.escape(doc["info"]["title"])
    return ("<!doctype html><html lang='en'><head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<title>{title} — reference</title><style>body{{margin:0}}</style></head><body>"
            "<noscript><p>This page needs JavaScript; <a href='/docs/plain'>the plain reference</a> does not.</p></noscript>"
            "<redoc spec-url='/openapi.json' expand-responses='200,201' required-props-first='true' "
            "sort-props-alphabetically='false' hide-hostname='true'></redoc>"
            f"<script src='{REDOC_PATH}'></script></body></html>")


def reference_html(doc: dict[str, Any], *, redoc: bool = False) -> str:
    """A static reference page: every operation with its parameters, body and answers
    (``redoc``: says the nicer page is at /docs; else how to get it)."""
    e = html.escape
    out = ["<!doctype html><html><head><meta charset='utf-8'><title>", e(doc["info"]["title"]), "</title><style>",
           "body{font:15px/1.45 system-ui,sans-serif;max-width:60em;margin:2em auto;padding:0 1em;color:#222}",
           "h2{border-bottom:1px solid #ccc;margin-top:2em}.op{margin:1.2em 0;padding:.6em 1em;border-left:4px solid #68a}",
           ".m{font-weight:bold;text-transform:uppercase;display:inline-block;width:4.5em}code,pre{background:#f4f4f4}",
           "pre{padding:.5em;overflow:auto;font-size:13px}</style></head><body>",
           f"<h1>{e(doc['info']['title'])} <small>{e(doc['info']['version'])}</small></h1>",
           f"<p>{e(doc['info']['description'].split(chr(10) * 2 + '## ', 1)[0])}</p>"
           "<p>Machine-readable: <a href='/openapi.json'>/openapi.json</a>. "
           + ("The full reference, with examples and linked schemas: <a href='/docs'>/docs</a>.</p>" if redoc else
              "This is the plain page: for the full reference, with examples and linked schemas (Redoc, served by this "
              "controller, no CDN), run <code>scripts/vendor-redoc</code> in the source tree (scripts/test and "
              "scripts/demo do) and reload.</p>")]
    out.append("<h2>Operations</h2>")
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            out.append(f"<div class='op' id='{e(method + path)}'><span class='m'>{e(method)}</span> <code>{e(path)}</code>")
            out.append(f"<p>{e(op.get('description') or op.get('summary', ''))}</p>")
            if op.get("security") == []:
                out.append("<p><em>No API key.</em></p>")
            for p in op.get("parameters", []):
                out.append(f"<div>param <code>{e(p['name'])}</code> ({e(p['in'])}{', required' if p.get('required') else ''}): "
                           f"<code>{e(json.dumps(p.get('schema', {})))}</code> {e(p.get('description', ''))}</div>")
            if "requestBody" in op:
                for ctype, media in op["requestBody"]["content"].items():
                    out.append(f"<div>body <code>{e(ctype)}</code>: <code>{e(json.dumps(media.get('schema', {})))}</code></div>")
            codes = ", ".join(sorted(op["responses"]))
            out.append(f"<div>answers: {e(codes)}</div></div>")
    out.append("<h2 id='webhooks'>Webhooks</h2>")
    for event, item in doc.get("webhooks", {}).items():
        op = item["post"]
        ex = op["x-signature"]["example"]
        schema = op["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
        out.append(f"<div class='op' id='webhook-{e(event)}'><span class='m'>post</span> <code>{e(event)}</code> "
                   f"(body: <a href='#{e(schema)}'>{e(schema)}</a>)<p>{e(op['summary'])}</p><p>{e(op['description'])}</p>"
                   f"<pre>secret    {e(ex['secret'])}\ntimestamp {e(ex['timestamp'])}\nbody      {e(ex['body'])}\n"
                   f"signature {e(ex['signature'])}</pre></div>")
    out.append("<h2>Problems</h2><p>Every error is <code>application/problem+json</code> (schema Problem); its "
               "<code>type</code> points here.</p><dl>")
    for code, title in TITLES.items():
        out.append(f"<dt id='problem-{e(code)}'><code>{e(code)}</code></dt><dd>{e(title)}</dd>")
    out.append("</dl>")
    out.append("<h2>Schemas</h2>")
    for name, schema in doc["components"]["schemas"].items():
        out.append(f"<h3 id='{e(name)}'>{e(name)}</h3><pre>{e(json.dumps(schema, indent=2))}</pre>")
    out.append("</body></html>")
    return "".join(out)
