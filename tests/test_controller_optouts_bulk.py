"""Opt-outs in bulk (POST /v1/optouts/bulk): a JSON list or a CSV of numbers, all stored in
one transaction or none, every bad row named by line and field; sending the same list
again changes nothing (idempotent) and says so."""
from __future__ import annotations

import time

import aiohttp
from controller_harness import running


def bad_rows(problem: dict) -> list[tuple[int, str]]:
    """(line, field) of every bad row a refusal lists."""
    errors = problem["errors"] if "errors" in problem else problem["detail"]["errors"]
    return [(e["line"], e["field"]) for e in errors]


async def all_optouts(s: aiohttp.ClientSession, url: str, h: dict[str, str]) -> list[str]:
    async with s.get(f"{url}/v1/optouts?limit=1000", headers=h) as r:
        return [o["number"] for o in (await r.json())["items"]]


async def test_bulk_opt_outs_json_and_csv_all_or_nothing_and_idempotent(tmp_path, make_controller_config):
    async with running(make_controller_config(), time.time, dispatch=False) as (c, key), \
            aiohttp.ClientSession() as s:
        h = {"Authorization": f"Bearer {key}"}
        url = f"{c.url}/v1/optouts/bulk"
        # one bad row among good ones: refused whole, each bad row named, nothing stored
        async with s.post(url, json=["+48600100200", "12", {"number": "+48600100201", "reason": "x" * 201},
                                     "+48 600 100 202"], headers=h) as r:
            problem = await r.json()
        assert r.status == 422, problem
        assert bad_rows(problem) == [(2, "number"), (3, "reason")]
        assert await all_optouts(s, c.url, h) == []

        body = {"numbers": ["+48600100200", "+48 600 100 202", "+48600100200"], "reason": "CRM do-not-call register"}
        async with s.post(url, json=body, headers=h) as r:
            first = await r.json()
        assert r.status == 200
        assert first == {"rows": 3, "numbers": 2, "created": 2, "existing": 0}
        async with s.post(url, json=body, headers=h) as r:
            assert (await r.json()) == {"rows": 3, "numbers": 2, "created": 0, "existing": 2}  # the same again: no change
        assert await all_optouts(s, c.url, h) == ["+48600100200", "+48600100202"]

        # a CSV from a Polish spreadsheet: semicolons, a national number with ?region=PL
        csv_body = "number;reason\r\n600 100 203;prośba klienta\r\n+48600100200;\r\n".encode()
        async with s.post(url + "?region=PL", data=csv_body, headers={**h, "Content-Type": "text/csv"}) as r:
            answer = await r.json()
        assert r.status == 200, answer
        assert answer == {"rows": 2, "numbers": 2, "created": 1, "existing": 1, "delimiter": "semicolon"}
        async with s.get(f"{c.url}/v1/optouts?limit=1000", headers=h) as r:
            reasons = {o["number"]: o["reason"] for o in (await r.json())["items"]}
        assert reasons["+48600100203"] == "prośba klienta"
        assert reasons["+48600100200"] == "CRM do-not-call register"  # a listed number keeps its first reason

        # a CSV with bad rows: every one named by its file line
        async with s.post(url, data=b"number,reason\n+48600100204,\nnot a number,\n\n+4860,x\n",
                          headers={**h, "Content-Type": "text/csv"}) as r:
            problem = await r.json()
        assert r.status == 422 and bad_rows(problem) == [(3, "number"), (5, "number")]
        assert "+48600100204" not in await all_optouts(s, c.url, h)
        # what cannot be read at all
        for data, ctype, status in ((b"nummer\n+48600100204\n", "text/csv", 400), (b"", "text/csv", 400),
                                    (b"[]", "application/json", 400), (b'{"numbers": "x"}', "application/json", 400),
                                    (b"+48600100204", "text/plain", 415)):
            async with s.post(url, data=data, headers={**h, "Content-Type": ctype}) as r:
                assert r.status == status, (data, await r.text())
