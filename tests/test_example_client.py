"""The contract proved by a client in another language (issue 16): the Node.js CRM client in
examples/crm-client-node, written from /openapi.json and the docs alone, runs against a live
controller and an appliance on the emulator — creates a draft campaign, imports a
semicolon-separated CSV, starts it, verifies every webhook with the documented recipe, pages
the results, looks contacts up by external_id, reads the report and the export — and exits 0.

The test then holds the client to what the controller stored: every delivery of its webhook
arrived and was verified once (two answers "lost" on purpose came again and were dropped by
delivery id), and the forged and replayed deliveries the test posted to it were rejected.
Shipped calling hours: the debtors live where it is daytime now (``daytime_zone``); the
controller runs on the real clock, since the client judges timestamps by its own."""
from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import shutil
import time
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from controller_harness import FakeClock, enroll, make_config
from system_harness import (
    appliance_config,
    controller_sections,
    daytime_zone,
    free_port,
)

from appliance.config import parse_config
from appliance.runtime import Appliance
from controller.webhooks import sign
from modem_drivers.emulator import Timing

CLIENT = Path(__file__).resolve().parent.parent / "examples" / "crm-client-node" / "client.mjs"
CAMPAIGN = "nov-crm"
#: Answers the client "loses" on purpose: the controller must deliver them again.
LOST = 2
#: What the first debtor texts back, to the number he was shown.
REPLY = "Zapłacę w piątek"

pytestmark = pytest.mark.bank(modems=4, sims_per_modem=1, timing=Timing.FAST, seed=11)


@pytest.fixture
def clock() -> FakeClock:
    """The real clock: the client checks each delivery's timestamp against its own."""
    return FakeClock()


@pytest.fixture
def controller_config(tmp_path):
    """The system tests' controller: webhooks to loopback allowed, retried after 0.2 s."""
    return make_config(tmp_path / "controller.db", **controller_sections())


def node() -> str:
    path = shutil.which("node")
    assert path, "node is not on PATH: ./scripts/test installs Debian's nodejs"
    return path


def contacts_file(tmp_path: Path, form: str = "csv") -> tuple[Path, dict[str, str]]:
    """Debtors who answer, are busy, do not answer, are switched off, or whose number is
    unassigned (the emulator's behaviour digit, docs/emulator.md), one with a key a
    spreadsheet would run as a formula — as a Polish-locale spreadsheet's CSV (semicolons,
    decimal commas) or as JSON."""
    zone = daytime_zone()
    rows, behaviour = [], {}
    for n, (b, op) in enumerate([(0, 0), (0, 1), (2, 2), (3, 3), (5, 0), (6, 1), (2, 0), (0, 3)], start=1):
        ext = f"D-{1000 + n}" if n != 8 else "=D-1008"  # neutralised in the export, verbatim in JSON
        rows.append({"external_id": ext, "phones": [f"+4860{op}{b}{n:05d}"], "name": f"Dłużnik {n}",
                     "amount": f"{100 + n},50", "currency": "PLN", "due_date": "2026-12-31", "time_zone": zone})
        behaviour[ext] = str(b)
    path = tmp_path / f"dluznicy.{form}"
    if form == "json":
        path.write_text(json.dumps([{**r, "amount": float(r["amount"].replace(",", "."))} for r in rows]), encoding="utf-8")
    else:
        lines = [";".join(rows[0])] + [";".join(",".join(v) if isinstance(v, list) else v for v in r.values()) for r in rows]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path, behaviour


async def post_delivery(url: str, headers: dict[str, str], body: bytes) -> int:
    async with aiohttp.ClientSession() as s, s.post(url, data=body, headers=headers,
                                                    timeout=aiohttp.ClientTimeout(total=10)) as r:
        return r.status


async def wait_listening(url: str, proc: asyncio.subprocess.Process) -> None:
    """Until the client's webhook server answers (Node starting up; it listens before it
    calls the controller); a GET is answered 404 and is not a delivery."""
    delay = 0.05
    async with asyncio.timeout(20):
        while True:
            assert proc.returncode is None, "the client exited before it listened"
            try:
                async with aiohttp.ClientSession() as s, s.get(url) as r:
                    assert r.status == 404
                    return
            except aiohttp.ClientConnectionError:
                await asyncio.sleep(delay)
                delay = min(delay * 2, 0.5)


def forged_deliveries(secret: str) -> list[tuple[str, dict[str, str], bytes]]:
    """Deliveries the client must refuse, each with the reason it should give: a body
    changed after signing, a wrong secret, a genuine signature replayed ten minutes later,
    and no signature at all."""
    body = json.dumps({"type": "result", "seq": 1, "campaign_id": CAMPAIGN, "contact_id": 1, "external_id": "D-1001",
                       "kind": "call", "outcome": "answered_human", "final": True, "at": time.time()}).encode()
    now = str(int(time.time()))
    stale = str(int(time.time()) - 600)

    def headers(ts: str, signature: str | None, delivery: str) -> dict[str, str]:
        h = {"Content-Type": "application/json", "X-Simrotor-Timestamp": ts, "X-Simrotor-Event": "result",
             "X-Simrotor-Delivery": delivery}
        return h if signature is None else {**h, "X-Simrotor-Signature": signature}

    return [
        ("bad_signature", headers(now, sign(secret, now, body), "900001"), body.replace(b"D-1001", b"D-1002")),
        ("bad_signature", headers(now, sign("whsec_" + "0" * 32, now, body), "900002"), body),
        ("stale_timestamp", headers(stale, sign(secret, stale, body), "900003"), body),
        ("no_signature", headers(now, None, "900004"), body),
    ]


@pytest.mark.parametrize("form", ["csv", "json"])
async def test_node_client_runs_the_whole_contract_against_a_live_system(tmp_path, bank, controller, crm, form):
    c, key = controller
    contacts, behaviour = contacts_file(tmp_path, form)
    port, secret = free_port(), "whsec_" + secrets.token_hex(24)
    hook_url = f"http://127.0.0.1:{port}/simrotor/webhook"
    proc = await asyncio.create_subprocess_exec(
        node(), str(CLIENT), "--url", c.url, "--contacts", str(contacts), "--campaign", CAMPAIGN,
        "--listen-port", str(port), "--webhook-secret", secret, "--page-size", "3", "--lose-answers", str(LOST),
        "--timeout", "180", "--webhook-wait", "30", "--wait-inbound", "1",
        env={**os.environ, "SIMROTOR_API_KEY": key},  # the key by env, as the README says
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    finished = asyncio.ensure_future(proc.communicate())
    app = None
    try:
        await wait_listening(hook_url, proc)
        forged = forged_deliveries(secret)
        for reason, headers, body in forged:  # before any appliance is linked: the campaign cannot end first
            assert await post_delivery(hook_url, headers, body) == 401, reason
        credential = await enroll(crm.s, c, "box-01")
        (tmp_path / "cred").write_text(credential)
        link = c.url.replace("http", "ws") + "/v1/link"
        app = Appliance(parse_config(appliance_config(tmp_path, bank.state, link, tmp_path / "cred")), seed=3)
        await app.start()
        async with asyncio.timeout(60):  # the first debtor answers, then texts back the number he was shown
            while not (reached := [r for r in await crm.all_results(CAMPAIGN)
                                   if r["external_id"] == "D-1001" and r["outcome"] == "answered_human"]):
                await asyncio.sleep(0.2)
        await bank.emu.inbound_sms(reached[0]["callee"], reached[0]["number_shown"], REPLY)
        async with asyncio.timeout(240):
            out, err = await finished
    finally:
        if proc.returncode is None:
            proc.kill()
            await finished
        if app is not None:
            await app.stop()
    log = err.decode(errors="replace")
    assert proc.returncode == 0, log[-4000:]
    summary: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    assert summary["ok"] and summary["campaign_id"] == CAMPAIGN, summary

    # what the controller stored, read through its API and its store
    results = await crm.all_results(CAMPAIGN)
    finals = [r for r in results if r["final"]]
    assert summary["contacts"] == {"imported": 8, "created": 8, "updated": 0, "warnings": 1,  # the formula-like key
                                   "delimiter": "semicolon" if form == "csv" else None}
    assert summary["idempotent_replay"] is True and summary["recipe_checked"] == ["inbound", "result"]
    assert summary["results"]["paged"] == len(results) and summary["results"]["final"] == len(finals)
    assert summary["results"]["pages"] == -(-len(results) // 3)  # pages of 3, by the cursor
    assert summary["results"]["outcomes"] == dict(Counter(r["outcome"] for r in finals))
    assert {r["external_id"] for r in results} == set(behaviour)  # every debtor was worked
    answered = {r["external_id"] for r in finals if r["outcome"] == "answered_human"}
    assert answered == {e for e, b in behaviour.items() if b == "0"}
    assert summary["lookups"] == {"by_external_id": 8, "matched": 8}
    assert summary["export"] == {"rows": len(results)}
    assert summary["report"]["results"] == {"total": len(results), "final": len(finals)}

    hooks = summary["webhooks"]
    assert hooks["rejected_by_reason"] == dict(Counter(reason for reason, _, _ in forged))
    assert hooks["rejected"] == len(forged)
    assert hooks["received"] == hooks["verified"] + hooks["rejected"]  # every delivery judged, none ignored
    assert hooks["lost_answers"] == hooks["duplicates"] == LOST  # each lost answer came again, dropped as a repeat
    assert hooks["verified"] == len(hooks["delivery_ids"]) + LOST
    assert hooks["accepted"] == {"result": len(results), "inbound": 1}
    assert summary["inbound"] == {"paged": 1, "by_webhook": 1, "replies": [
        {"external_id": "D-1001", "kind": "sms", "text": REPLY, "opted_out": False}]}
    rows = c.store.conn.execute("SELECT id, state, attempts FROM deliveries WHERE webhook_id = ?",
                                (summary["webhook_id"],)).fetchall()
    assert sorted(str(r[0]) for r in rows) == sorted(hooks["delivery_ids"])  # exactly what the controller sent
    assert {r[1] for r in rows} == {"delivered"}
    assert sum(r[2] for r in rows) == len(rows) + LOST  # the lost answers cost one retry each
    assert "MISMATCH" not in log


async def test_node_client_stops_with_the_controllers_reason_on_a_refused_key(tmp_path, controller):
    contacts, _ = contacts_file(tmp_path)
    proc = await asyncio.create_subprocess_exec(
        node(), str(CLIENT), "--url", controller.c.url, "--api-key", "not-a-key", "--contacts", str(contacts),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    async with asyncio.timeout(60):
        out, err = await proc.communicate()
    assert proc.returncode == 1, err.decode()
    summary = json.loads(out.decode().strip().splitlines()[-1])
    assert not summary["ok"] and "POST /v1/webhooks: 401 unauthorized" in summary["error"], summary
    assert "MISMATCH: POST /v1/webhooks: 401 unauthorized" in err.decode()


async def test_node_client_refuses_a_document_whose_recipe_differs_from_its_own(tmp_path):
    """A controller whose /openapi.json states another signature recipe (a tolerance of
    600 s): the client stops before it registers anything, naming the field that differs."""
    from aiohttp import web

    from controller.openapi import document

    doc = document()
    doc["webhooks"]["result"]["post"]["x-signature"]["tolerance_seconds"] = 600.0
    async def served(request: web.Request) -> web.Response:
        return web.json_response(doc)

    app = web.Application()
    app.router.add_get("/openapi.json", served)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        contacts, _ = contacts_file(tmp_path)
        proc = await asyncio.create_subprocess_exec(
            node(), str(CLIENT), "--url", f"http://127.0.0.1:{port}", "--api-key", "k", "--contacts", str(contacts),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        async with asyncio.timeout(60):
            out, err = await proc.communicate()
    finally:
        await runner.cleanup()
    assert proc.returncode == 1, err.decode()
    summary = json.loads(out.decode().strip().splitlines()[-1])
    assert summary["error"] == "/openapi.json webhooks.result.post.x-signature.tolerance_seconds: got 600, expected 300"
    assert "webhook_id" not in summary  # nothing was registered


async def test_node_client_names_a_bad_option(tmp_path):
    proc = await asyncio.create_subprocess_exec(
        node(), str(CLIENT), "--api-key", "k", "--contacts", str(tmp_path / "none.csv"), "--page-size", "0",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    async with asyncio.timeout(60):
        _, err = await proc.communicate()
    assert proc.returncode == 2
    assert "--page-size: \"0\" is not an integer of at least 1" in err.decode()


# -- docs/controller.md, "Integrating a CRM": the client's lines are its own, the curls the document's ---------------

def integration_section() -> str:
    docs = (CLIENT.parent.parent.parent / "docs" / "controller.md").read_text()
    return docs.split("## Integrating a CRM", 1)[1].split("\n## ", 1)[0]


def blocks(section: str, lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", section, re.DOTALL)


def curl_requests(block: str) -> list[tuple[str, str, set[str]]]:
    """(method, path, query names) of each curl command in a shell block (a command goes on
    until the next curl or comment line): POST with -X POST, -d or --data-binary, else GET."""
    commands: list[str] = []
    for line in block.splitlines():
        if line.startswith("curl "):
            commands.append(line)
        elif commands and not line.startswith("#"):
            commands[-1] += " " + line
    out = []
    for cmd in commands:
        url = re.search(r'"\$SIMROTOR(/[^"]*)"', cmd)
        assert url, cmd
        path, _, query = url.group(1).partition("?")
        method = "POST" if re.search(r"-X POST|\s-d\s|--data-binary", cmd) else "GET"
        out.append((method, path, {kv.split("=", 1)[0] for kv in query.split("&") if kv}))
    return out


def test_the_integration_sections_client_lines_are_the_clients():
    code = "\n".join(p.read_text() for p in CLIENT.parent.glob("*.mjs"))
    lines = {ln.strip() for ln in code.splitlines()}
    js = blocks(integration_section(), "js")
    assert len(js) >= 9  # one or more a step
    for block in js:
        for line in block.splitlines():
            assert line.strip() in lines, f"docs/controller.md shows a line examples/crm-client-node does not have: {line}"


def test_the_integration_sections_curls_are_operations_of_the_document():
    from controller.openapi import document

    doc = document()
    templates = [(re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", p) + "$"), p) for p in doc["paths"]]
    seen = set()
    for block in blocks(integration_section(), "sh"):
        for method, path, query in curl_requests(block):
            template = next((t for rx, t in templates if rx.match(path)), None)
            assert template, f"{method} {path}: no such path in /openapi.json"
            op = doc["paths"][template].get(method.lower())
            assert op, f"{method} {path}: /openapi.json has no {method} on {template}"
            params = {p["name"] for p in op.get("parameters", []) if p.get("in") == "query"}
            assert query <= params, f"{method} {path}: query {sorted(query - params)} not among {sorted(params)}"
            seen.add((method, template))
    assert {("POST", "/v1/webhooks"), ("POST", "/v1/campaigns"), ("POST", "/v1/campaigns/{id}/contacts"),
            ("POST", "/v1/campaigns/{id}/start"), ("GET", "/v1/results"), ("GET", "/v1/contacts"),
            ("GET", "/v1/campaigns/{id}/report"), ("GET", "/v1/results/export")} <= seen
