"""Hooks of the schemathesis run in tests/test_controller_api.py (loaded by the CLI from the
config file the test writes; tests/ and the project root are on its PYTHONPATH).

- ``problem_details``, a check on top of ``--checks all``: every 4xx and 5xx answer is an
  RFC 9457 problem (``application/problem+json``) that validates against the document's
  ``Problem`` schema, whatever the route and whatever the operation documents.
- A valid ``Idempotency-Key`` is made unique per request, as the document asks of a client
  ("a key naming this request"): generated keys repeat ("0", "00"…), and the server rightly
  answers a key reused with another request 422 ``idempotency_key_reused``, which would read
  as a schema-valid request refused. Invalid keys are left as generated (the negative cases:
  400 ``bad_idempotency_key``); replays of one key are tests/test_controller_idempotency.py's.
"""
from __future__ import annotations

import json
import re
import uuid

import schemathesis
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from controller.openapi import IDEMPOTENCY_KEY, document

_KEY = re.compile(IDEMPOTENCY_KEY["schema"]["pattern"])
_URI = "urn:simrotor:openapi"
_DOC = document()
_PROBLEM = Draft202012Validator(
    {"$ref": f"{_URI}#/components/schemas/Problem"},
    registry=Registry().with_resource(_URI, Resource.from_contents(_DOC, default_specification=DRAFT202012)))


@schemathesis.hook
def before_call(context, case, kwargs):
    headers = case.headers or {}
    key = headers.get("Idempotency-Key")
    if isinstance(key, str) and _KEY.fullmatch(key):
        headers["Idempotency-Key"] = f"st-{uuid.uuid4()}"
        case.headers = headers


@schemathesis.check
def problem_details(ctx, response, case):
    """Every error answer is a problem (application/problem+json, schema Problem)."""
    if response.status_code < 400:
        return
    ctype = next((v for k, v in response.headers.items() if k.lower() == "content-type"), "")
    ctype = (ctype[0] if isinstance(ctype, list) else ctype).split(";")[0].strip()
    if ctype != "application/problem+json":
        raise AssertionError(f"{response.status_code} answered as {ctype!r}, not application/problem+json")
    try:
        body = json.loads(response.content)
    except ValueError as exc:
        raise AssertionError(f"{response.status_code} problem is not JSON: {exc}") from None
    errors = [f"{e.json_path}: {e.message}" for e in _PROBLEM.iter_errors(body)]
    if errors:
        raise AssertionError(f"{response.status_code} problem does not fit Problem: {errors[:3]}")
    if body["status"] != response.status_code:
        raise AssertionError(f"problem status {body['status']} on a {response.status_code} answer")
    return
