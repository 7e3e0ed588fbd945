"""Contact CSVs as spreadsheets save them: the separator (comma, semicolon, tab) read off
the header line and named in the import's answer; a Polish-locale file (semicolons, a
decimal comma in amount, numbers in a phones cell split by ``;`` quoted or by ``,``,
windows-1250 when the Content-Type says so) imports; what stays refused is named."""
from __future__ import annotations

import time

import aiohttp
import pytest
from controller_harness import running

from controller.contacts import validate_rows
from controller.contacts_csv import decode_csv, detect_delimiter, parse_csv

#: What Excel in a Polish locale writes for "CSV (rozdzielany średnikami)": semicolons, a
#: decimal comma, a cell with a ';' quoted, Polish letters.
POLISH = ('external_id;phones;name;amount;currency;due_date\r\n'
          'PL-1;+48 600 100 200;Żaneta Łęcka;1234,50;PLN;2026-12-31\r\n'
          'PL-2;"+48600100201;+48600100202";Grzegorz Brzęczyszczykiewicz;99,9;PLN;2026-12-31\r\n'
          'PL-3;+48600100203,+48600100204;Ścibor;0,01;PLN;2026-12-31\r\n')


@pytest.mark.parametrize(("header", "sep"), [
    ("external_id,phones,name", ","),
    ("external_id;phones;name", ";"),
    ("external_id\tphones\tname", "\t"),
    ('"external_id;x",phones', ","),      # a separator inside quotes is not counted
    ("external_id", ","),                 # one column: comma, the RFC 4180 default
])
def test_the_separator_is_read_off_the_header_line(header, sep):
    assert detect_delimiter(header + "\r\n1;2,3\t4\n") == sep


def test_a_polish_locale_file_reads_with_its_amounts_and_phones():
    parsed = parse_csv(POLISH)
    assert parsed.delimiter == ";" and parsed.bad == []
    good, bad, _ = validate_rows(parsed.items, "PL")
    assert bad == []
    assert [(r.external_id, r.phones, r.amount, r.name) for r in good] == [
        ("PL-1", ("+48600100200",), "1234.50", "Żaneta Łęcka"),
        ("PL-2", ("+48600100201", "+48600100202"), "99.90", "Grzegorz Brzęczyszczykiewicz"),
        ("PL-3", ("+48600100203", "+48600100204"), "0.01", "Ścibor")]


def test_tab_separated_rows_and_their_errors_name_the_line_and_column():
    parsed = parse_csv("external_id\tphones\tamount\nT-1\t+48600100200\t10\nT-2\t+48600100201\t1\t2\n")
    assert parsed.delimiter == "\t"
    assert [line for line, _ in parsed.items] == [2]
    assert [(b.line, b.field) for b in parsed.bad] == [(3, "column 4")]
    assert "quote values holding a tab" in parsed.bad[0].reason


def test_grouped_amounts_stay_refused_rather_than_guessed():
    """1.234,50 (a thousands point) and 1 234,50 (a space) are refused: "1.234" alone could
    be either reading, and an amount is never changed silently."""
    parsed = parse_csv("external_id;phones;amount\nA;+48600100200;1.234,50\nB;+48600100201;1 234,50\n")
    _, bad, _ = validate_rows(parsed.items, "PL")
    assert [(b.line, b.field) for b in bad] == [(2, "amount"), (3, "amount")]


def test_a_charset_named_in_the_content_type_is_decoded_and_an_unknown_one_named():
    assert decode_csv(POLISH.encode("cp1250"), "windows-1250") == POLISH
    with pytest.raises(ValueError, match="not utf-8"):
        decode_csv(POLISH.encode("cp1250"))
    with pytest.raises(ValueError, match="charset 'klingon' is unknown"):
        decode_csv(b"external_id\n", "klingon")


async def test_the_import_answer_names_the_separator_over_http(tmp_path, make_controller_config):
    async with running(make_controller_config(), time.time, dispatch=False) as (c, key), \
            aiohttp.ClientSession() as s:
        h = {"Authorization": f"Bearer {key}"}
        async with s.post(f"{c.url}/v1/campaigns", json={"id": "pl", "strategy": [{"kind": "call"}]}, headers=h) as r:
            assert r.status == 201
        async with s.post(f"{c.url}/v1/campaigns/pl/contacts", data=POLISH.encode("cp1250"),
                          headers={**h, "Content-Type": "text/csv; charset=windows-1250"}) as r:
            report = await r.json()
        assert r.status == 200, report
        assert (report["delimiter"], report["created"], report["rejected"]) == ("semicolon", 3, 0)
        async with s.get(f"{c.url}/v1/contacts?external_id=PL-1", headers=h) as r:
            contact = (await r.json())["items"][0]
        assert (contact["name"], contact["amount"]) == ("Żaneta Łęcka", "1234.50")
        async with s.post(f"{c.url}/v1/campaigns/pl/contacts", data=b"external_id,phones\nC-1,+48600100300\n",
                          headers={**h, "Content-Type": "text/csv"}) as r:
            assert r.status == 200 and (await r.json())["delimiter"] == "comma"
        async with s.post(f"{c.url}/v1/campaigns/pl/contacts", json=[{"external_id": "J-1", "phones": ["+48600100301"]}],
                          headers=h) as r:
            assert r.status == 200 and "delimiter" not in await r.json()  # a JSON body has none
