"""The examples of the OpenAPI document (openapi.py): a request example for every operation
that takes a body and an example of every success answer, one story told across them —
campaign ``nov`` of the creditor Acme Finance, its debtor ``D-1042`` (contact 17), the
result and inbound SMS of the webhook examples — so that a reader of /docs follows one
integration from create to report, and a client generator gets realistic values.

tests/test_openapi_document.py checks every example against its own schema and sends the
request examples, in this order, to a live controller (their answers must validate).
"""
from __future__ import annotations

from typing import Any, Final

#: The CSV import's columns and their formats (the text/csv body of an import).
CSV_COLUMNS: Final[tuple[tuple[str, str], ...]] = (
    ("external_id", "required; the CRM's key of the contact, 1-200 characters, once per file; a re-import updates it"),
    ("phones", ("required (or phone); 1-5 numbers separated by ';' or ',' (quote the cell when it holds the file's "
               "separator): E.164 (+48600100200) or national with region; digits, +, spaces, dots, dashes, parentheses")),
    ("phone", "one number, instead of phones"),
    ("name", "text, at most 200 characters ({name} in templates)"),
    ("case_ref", "text, at most 200 characters ({case_ref})"),
    ("amount", ("decimal, non-negative, at most 2 places and 16 digits before the mark; '.' or ',' as the mark "
               "(1234.50, 1234,50)")),
    ("currency", "ISO 4217 code in capitals (PLN)"),
    ("due_date", "YYYY-MM-DD"),
    ("time_zone", "IANA zone (Europe/Warsaw): calling hours are the debtor's; absent: the number's country's"),
    ("language", "BCP 47 tag (pl, en-GB)"),
    ("region", "ISO 3166 two-letter code of the row's national-format numbers (PL)"),
)

CSV_DESCRIPTION: Final = (
    "UTF-8 (or the charset the Content-Type names, e.g. text/csv; charset=windows-1250), RFC 4180 quoting; the first "
    "line names the columns (any order, unknown ones refused); the separator is comma, semicolon or tab, read off the "
    "header line and named in the report's delimiter. Columns: "
    + "; ".join(f"{name}: {words}" for name, words in CSV_COLUMNS) + ".")

CAMPAIGN_CREATE: Final = {
    "id": "nov", "name": "Overdue since November", "creditor": "Acme Finance",
    "strategy": [
        {"kind": "sms", "text": "{name}, {amount} {currency} is due on {due_date}. {creditor}"},
        {"kind": "call", "attempts": 3, "ring_seconds": 30, "retry_after_seconds": 7200}],
    "rules": {"hours": ["09:00", "20:00"], "max_attempts": 7, "blackout_dates": ["2026-12-24"]}}

CONTACTS_JSON: Final = [
    {"external_id": "D-1042", "phones": ["+48600100200", "+48 601 100 200"], "name": "Jan Kowalski",
     "case_ref": "K/2026/1042", "amount": "1234.50", "currency": "PLN", "due_date": "2026-01-31",
     "time_zone": "Europe/Warsaw", "language": "pl"},
    {"external_id": "D-1043", "phone": "600 100 201", "region": "PL", "name": "Anna Nowak", "amount": 89.9,
     "currency": "PLN", "due_date": "2026-01-31"}]

CONTACTS_CSV: Final = ("external_id;phones;name;amount;currency;due_date;region\r\n"
                       "D-1042;+48600100200,+48601100200;Jan Kowalski;1234,50;PLN;2026-01-31;\r\n"
                       "D-1043;600100201;Anna Nowak;89,90;PLN;2026-01-31;PL\r\n")

#: Request examples by (method, path): {media type: body}.
REQUESTS: Final[dict[tuple[str, str], dict[str, Any]]] = {
    ("post", "/v1/enroll"): {"application/json": {"token": "enr_3kq9Xv0bT1mZ7cR4", "appliance_id": "box-01"}},
    ("post", "/v1/campaigns"): {"application/json": CAMPAIGN_CREATE},
    ("post", "/v1/campaigns/{id}/contacts"): {"application/json": CONTACTS_JSON, "text/csv": CONTACTS_CSV},
    ("post", "/v1/optouts"): {"application/json": {"number": "+48600100299", "reason": "asked on the phone, 2026-01-14"}},
    ("post", "/v1/optouts/bulk"): {"application/json": {"numbers": ["+48600100298", "+48 600 100 297"],
                                                        "reason": "do-not-call register, January"},
                                   "text/csv": "number;reason\r\n+48600100296;wrote to us\r\n+48600100295;\r\n"},
    ("post", "/v1/webhooks"): {"application/json": {"url": "https://crm.example.com/hooks/simrotor",
                                                    "events": ["result", "inbound"]}},
    ("post", "/v1/webhooks/dead-letters/replay"): {"application/json": {"ids": [3, 4]}},
}

#: 2026-01-15 10:00 UTC, the story's morning (the webhook examples' deliveries follow it).
_T: Final = 1768471200.0

CAMPAIGN: Final = {
    "id": "nov", "name": "Overdue since November", "state": "running",
    "strategy": [
        {"kind": "sms", "attempts": 1, "retry_after_seconds": 3600.0,
         "text": "{name}, {amount} {currency} is due on {due_date}. {creditor}", "creditor": "Acme Finance"},
        {"kind": "call", "attempts": 3, "retry_after_seconds": 7200.0, "ring_seconds": 30.0}],
    "rules": {"hours": ["09:00", "20:00"], "max_attempts": 7, "attempt_window_days": 7,
              "quiet_days_after_conversation": 7, "daily_cap_per_number": 3, "blackout_dates": ["2026-12-24"],
              "recording_retention_days": 30},
    "created_at": _T, "updated_at": _T + 60.0, "contacts": {"waiting": 1, "in_flight": 0, "done": 1, "total": 2}}
DRAFT: Final = {**CAMPAIGN, "state": "draft", "updated_at": _T,
                "contacts": {"waiting": 0, "in_flight": 0, "done": 0, "total": 0}}

CONTACT: Final = {
    "id": 17, "campaign_id": "nov", "external_id": "D-1042", "name": "Jan Kowalski", "case_ref": "K/2026/1042",
    "amount": "1234.50", "currency": "PLN", "due_date": "2026-01-31", "time_zone": "Europe/Warsaw", "language": "pl",
    "phones": ["+48600100200", "+48601100200"], "state": "done", "step": 1, "n": 1, "next_at": _T + 290.25,
    "outcome": "answered_human", "promise_date": None, "created_at": _T + 30.0, "updated_at": _T + 290.25,
    "formula_fields": []}

IMPORT_REPORT: Final = {"stored": True, "rows": 2, "created": 2, "updated": 0, "valid": 2, "rejected": 0,
                        "duplicates": 0, "errors": [], "errors_total": 0, "warnings": [], "warnings_total": 0}


def _item(event: dict[str, Any]) -> dict[str, Any]:
    """A webhook body without its ``type``: the item of GET /v1/results or /v1/inbound."""
    return {k: v for k, v in event.items() if k != "type"}


def responses(events: dict[str, dict[str, Any]]) -> dict[tuple[str, str], dict[str, dict[str, Any]]]:
    """Success-answer examples by (method, path): {status: {media type: body}}. ``events``:
    the webhook examples (openapi.EVENT_EXAMPLES), whose payloads are the result and inbound rows."""
    result = {**_item(events["result"]), "appliance_id": "box-01", "app_seq": 311}
    inbound = _item(events["inbound"])
    history = {"contact": CONTACT, "results": [result], "inbound": [inbound]}
    page = lambda *items, nxt: {"items": list(items), "next": nxt}
    webhook = {"id": "wh_5bZ0qkT1", "url": "https://crm.example.com/hooks/simrotor", "events": ["inbound", "result"],
               "created_at": _T - 3600.0}
    appliance = {"id": "box-01", "version": "0.1.0", "channels": 8, "idle": 6, "capacity": 8, "queued": 2,
                 "operators": {"26001": 4, "26002": 4}, "connected": True, "last_seen": _T + 300.0,
                 "connected_at": _T - 7200.0, "enrolled_at": _T - 86400.0,
                 "sims": [{"sim_id": "s1", "msisdn": "+48690000003", "operator": "26001", "channel_id": "m1",
                           "state": "ready"}], "open_jobs": 2}
    recording = {"id": "6f1c0d2e9a8b4c7d8e9f0a1b2c3d4e5f", "campaign_id": "nov", "contact_id": 17,
                 "job_id": "nov-17-0-1-0", "attempt": 1, "appliance_id": "box-01", "format": "ogg/opus",
                 "seconds": 21.5, "bytes": 43210, "created_at": "2026-01-15T10:04:52Z",
                 "expires_at": "2026-02-14T10:04:52Z"}
    ok = lambda body: {"200": {"application/json": body}}
    transition = ok(CAMPAIGN)
    return {
        ("post", "/v1/enroll"): ok({"appliance_id": "box-01", "credential": "sra_Qm8c1fJx0Lr2Vt7Yw9Kp4Hs6"}),
        ("get", "/v1/campaigns"): ok({"items": [CAMPAIGN]}),
        ("post", "/v1/campaigns"): {"201": {"application/json": DRAFT}},
        ("get", "/v1/campaigns/{id}"): ok(CAMPAIGN),
        **{("post", f"/v1/campaigns/{{id}}/{a}"): transition for a in ("start", "pause", "resume", "cancel")},
        ("post", "/v1/campaigns/{id}/contacts"): ok(IMPORT_REPORT),
        ("get", "/v1/campaigns/{id}/contacts"): {"200": {
            "application/json": page(CONTACT, nxt=17),
            "text/csv": ("id,external_id,name,case_ref,phones,amount,currency,due_date,time_zone,language,state,outcome\r\n"
                         "17,D-1042,Jan Kowalski,K/2026/1042,+48600100200;+48601100200,1234.50,PLN,2026-01-31,"
                         "Europe/Warsaw,pl,done,answered_human\r\n")}},
        ("get", "/v1/contacts"): ok(page(CONTACT, nxt=17)),
        ("get", "/v1/contacts/{id}"): ok(CONTACT),
        ("get", "/v1/contacts/{id}/history"): ok(history),
        ("get", "/v1/results"): ok(page(result, nxt=42)),
        ("get", "/v1/inbound"): ok(page(inbound, nxt=7)),
        ("get", "/v1/optouts"): ok(page({"number": "+48600100299", "source": "api",
                                         "reason": "asked on the phone, 2026-01-14", "created_at": _T - 80000.0},
                                        nxt="+48600100299")),
        ("post", "/v1/optouts"): {"200": {"application/json": {"number": "+48600100299", "created": False}},
                                  "201": {"application/json": {"number": "+48600100299", "created": True}}},
        ("post", "/v1/optouts/bulk"): ok({"rows": 2, "numbers": 2, "created": 1, "existing": 1}),
        ("delete", "/v1/optouts/{number}"): ok({"number": "+48600100299", "removed": True}),
        ("get", "/v1/webhooks"): ok({"items": [webhook]}),
        ("post", "/v1/webhooks"): {"201": {"application/json": {**webhook, "created_at": _T,
                                                                "secret": "whsec_b1Xo9T0aLq3MZr8uYv2N"}}},
        ("delete", "/v1/webhooks/{id}"): ok({"id": "wh_5bZ0qkT1", "deleted": True}),
        ("get", "/v1/webhooks/dead-letters"): ok(page(
            {"id": 3, "webhook_id": "wh_5bZ0qkT1", "event": "result", "payload": events["result"], "attempts": 10,
             "last_error": "HTTP 503", "created_at": _T + 290.5, "updated_at": _T + 9000.0}, nxt=3)),
        ("post", "/v1/webhooks/dead-letters/replay"): ok({"replayed": 2}),
        ("get", "/v1/appliances"): ok({"items": [appliance]}),
        ("get", "/v1/appliances/{id}"): ok(appliance),
        ("get", "/v1/recordings"): ok(page({**recording}, nxt=1)),
        ("get", "/v1/recordings/{id}"): {"200": {"audio/ogg": "OggS… (binary: Ogg Opus, stereo, 8 kHz)"}},
        ("put", "/v1/link/recordings/{id}"): ok({"id": recording["id"], "stored": True, "duplicate": False}),
        ("get", "/v1/campaigns/{id}/report"): ok(REPORT),
        ("get", "/v1/results/export"): {"200": {"text/csv": EXPORT_CSV}},
        ("get", "/healthz"): {"200": {"application/json": {
                                  "status": "ok", "database": {"ok": True, "schema_version": 3},
                                  "link": {"appliances_connected": 1, "appliances_enrolled": 1}}},
                              "503": {"application/json": {
                                  "status": "failing", "database": {"ok": False, "error": "OperationalError: disk I/O error"},
                                  "link": {"appliances_connected": 1, "appliances_enrolled": None}}}},
        ("get", "/metrics"): {"200": {"text/plain": (
            "# HELP simrotor_api_request_duration_seconds CRM API requests by route template\n"
            "# TYPE simrotor_api_request_duration_seconds histogram\n"
            'simrotor_api_request_duration_seconds_count{method="POST",route="/v1/campaigns",status="2xx"} 1.0\n'
            'simrotor_api_request_duration_seconds_sum{method="POST",route="/v1/campaigns",status="2xx"} 0.0016\n')}},
    }


EXPORT_CSV: Final = (
    "seq,at,campaign_id,contact_id,external_id,job_id,step,kind,callee,outcome,reason,final,number_shown,talk_seconds,"
    "identity,promise_date,callback_requested,appliance_id\r\n"
    "42,2026-01-15T10:04:50Z,nov,17,D-1042,nov-17-0-1-0,1,call,+48600100200,answered_human,,true,+48690000003,21.5,,,,"
    "box-01\r\n")

REPORT: Final = {
    "campaign_id": "nov", "state": "running", "generated_at": "2026-01-15T10:30:00Z", "time_zone": "Europe/Warsaw",
    "contacts": {"waiting": 1, "in_flight": 0, "done": 1, "total": 2},
    "steps": [{"step": 0, "kind": "sms", "results": 2, "outcomes": {"delivered": 2}},
              {"step": 1, "kind": "call", "results": 2, "outcomes": {"answered_human": 1, "no_answer": 1}}],
    "attempted_contacts": 2, "reached_contacts": 1, "contact_rate": 0.5, "right_party_contacts": 1,
    "promises_to_pay": 0, "opt_outs": {"inbound": 0, "refused_opted_out": 0},
    "spent": {"calls": 2, "sms": 2, "hlr": 0},
    "attempts_per_contact": {"mean": 1.0, "histogram": {"1": 2}},
    "results": {"total": 4, "final": 4},
    "by_hour": [{"hour": "2026-01-15T10:00:00Z", "calls": 2, "answered_human": 1, "right_party": 1, "sms": 2,
                 "results": 4}],
    "by_operator": [{"operator": "26001", "calls": 2, "answered_human": 1, "sms": 2, "results": 4}],
    "throughput": {"window_seconds": 900.0, "results_per_hour": 16.0, "calls_per_hour": 8.0, "sms_per_hour": 8.0,
                   "contacts_done_per_hour": 4.0},
    "eta": {"at": "2026-01-15T11:45:00Z", "contacts_left": 1, "due_now": 0, "basis": "recent",
            "contacts_per_hour": 4.0, "connected_channels": 8},
    "limits": [{"code": "retry_delay", "detail": "1 contact waits for its next try (retry_after_seconds 7200)",
                "count": 1, "until": "2026-01-15T12:04:50Z"}]}
