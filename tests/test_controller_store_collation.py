"""Text compares bytewise on both backends (schema version 5): on PostgreSQL every text
column of the store is ``COLLATE "C"``, in a new database (``Dialect.ddl``) and in one a
version-4 controller made in the locale's default collation (``schema.PG_MIGRATIONS[5]``),
its rows and unique keys intact; on SQLite (BINARY already) version 5 changes nothing.

Tests that take ``store_url`` run on SQLite and on PostgreSQL (tests/conftest.py).
"""
from __future__ import annotations

import psycopg
import pytest

from controller.contacts import ContactRow
from controller.store import Store, schema
from controller.store.backend import POSTGRESQL, SQLITE
from controller_harness import RawDb

#: The store's text columns on PostgreSQL and their collation (null: the database's default).
PG_TEXT_COLUMNS = """
SELECT c.relname, a.attname, CASE WHEN a.attcollation = 100 THEN NULL ELSE co.collname END
FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_collation co ON co.oid = a.attcollation
WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind = 'r' AND c.relname = ANY(%s)
  AND a.atttypid = 'text'::regtype AND a.attnum > 0 AND NOT a.attisdropped
"""
#: The index keys' collations on PostgreSQL: index -> its key columns' collation names.
PG_INDEX_COLLATIONS = """
SELECT i.relname, array_agg(COALESCE(co.collname, '-') ORDER BY k.n)
FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid
CROSS JOIN LATERAL unnest(x.indcollation::oid[]) WITH ORDINALITY AS k(coll, n)
LEFT JOIN pg_collation co ON co.oid = k.coll
WHERE t.relnamespace = current_schema()::regnamespace AND t.relname = ANY(%s)
GROUP BY i.relname
"""
#: A version-4 store's rows: a campaign and two contacts (one with a name in non-ASCII
#: text, compared and kept as given).
V4_ROWS = ("INSERT INTO meta VALUES ('schema', '4');"
           " INSERT INTO campaigns VALUES ('c1', 'c1', 'running', '[]', '{}', 0, 0);"
           " INSERT INTO contacts(campaign_id, external_id, name, phones, state, next_at, created_at, updated_at)"
           " VALUES ('c1', 'debtor-7', 'Łukasz Żółć', '[\"+48600100200\"]', 'waiting', 0, 0, 0),"
           " ('c1', 'Debtor-8', NULL, '[\"+48600100201\"]', 'waiting', 0, 0, 0);"
           " INSERT INTO campaign_counts VALUES ('c1', 'waiting', 2);")


def text_columns(raw: RawDb) -> dict[tuple[str, str], str | None]:
    return {(t, c): coll for t, c, coll in raw.conn.execute(PG_TEXT_COLUMNS, (list(schema.TABLES),))}


def index_collations(raw: RawDb) -> dict[str, list[str]]:
    return {name: colls for name, colls in raw.conn.execute(PG_INDEX_COLLATIONS, (list(schema.TABLES),))}


def test_dialect_ddl_gives_text_columns_the_c_collation_and_leaves_names_and_sqlite_alone():
    ddl = POSTGRESQL.ddl(schema.RESULTS)
    assert "dedupe TEXT COLLATE \"C\" NOT NULL UNIQUE" in ddl
    assert "    kind TEXT COLLATE \"C\" NOT NULL, from_number" in ddl
    assert " text TEXT COLLATE \"C\", at DOUBLE PRECISION" in ddl  # inbound's column named text keeps its name
    assert POSTGRESQL.ddl(ddl) == ddl  # translated once, not twice
    assert POSTGRESQL.ddl(schema.MIGRATIONS[2][0]) == "ALTER TABLE contacts ADD COLUMN promise_date TEXT COLLATE \"C\""
    assert POSTGRESQL.ddl("CREATE INDEX IF NOT EXISTS x ON results(callee, at)") == "CREATE INDEX IF NOT EXISTS x ON results(callee, at)"
    assert SQLITE.ddl(schema.RESULTS) == schema.RESULTS


def test_on_postgresql_a_new_store_has_every_text_column_in_the_c_collation(pg_server):
    with pg_server.database() as url:
        Store(url).close()
        raw = RawDb(url)
        columns = text_columns(raw)
        assert {("contacts", "external_id"), ("inbound", "text"), ("meta", "value")} <= set(columns)
        assert {tc: coll for tc, coll in columns.items() if coll != "C"} == {}
        indexes = index_collations(raw)
        assert indexes["contacts_campaign_id_external_id_key"] == ["C", "C"]
        assert indexes["contacts_external"] == ["C"]
        assert indexes["results_callee"] == ["C", "-"]  # at: a number, no collation
        raw.close()


def test_on_postgresql_a_version_4_store_in_the_default_collation_is_migrated_to_c(pg_server):
    with pg_server.database() as url:
        raw = RawDb(url)
        old_ddl = POSTGRESQL.ddl("".join(schema.BASE)).replace(' COLLATE "C"', "")  # what version 4 wrote
        raw.conn.execute(old_ddl + V4_ROWS)
        before = text_columns(raw)
        assert before and set(before.values()) == {None}  # the database's default collation
        indexes_before = set(index_collations(raw))
        rows_before = raw.conn.execute("SELECT id, campaign_id, external_id, name, phones FROM contacts ORDER BY id").fetchall()

        store = Store(url)
        assert store.ping() == 5 == schema.SCHEMA_VERSION
        after = text_columns(raw)
        assert set(after) == set(before)
        assert {tc: coll for tc, coll in after.items() if coll != "C"} == {}
        indexes = index_collations(raw)
        assert set(indexes) == indexes_before  # every index rebuilt, none lost
        assert indexes["contacts_campaign_id_external_id_key"] == ["C", "C"]
        assert raw.conn.execute("SELECT id, campaign_id, external_id, name, phones FROM contacts ORDER BY id").fetchall() \
            == rows_before
        assert raw.one("SELECT value FROM meta WHERE key = 'schema'") == "5"
        # bytewise order: upper case before lower case, as on SQLite
        assert [r[0] for r in raw.conn.execute("SELECT external_id FROM contacts ORDER BY external_id")] == \
            ["Debtor-8", "debtor-7"]
        with pytest.raises(psycopg.errors.UniqueViolation):
            raw.conn.execute("INSERT INTO contacts(campaign_id, external_id, phones, state, next_at, created_at, updated_at)"
                             " VALUES ('c1', 'debtor-7', '[]', 'waiting', 0, 0, 0)")
        # the store's re-import of known external_ids (its temporary table, then the join
        # on the unique key) updates them and creates the new one
        rows = [ContactRow("debtor-7", ("+48600100209",), name="Łukasz"), ContactRow("debtor-9", ("+48600100210",))]
        assert store.upsert_contacts("c1", rows, 1.0) == (1, 1)
        assert store.contacts_by_external_id("debtor-7", "c1", 0, 10)[0]["phones"] == ["+48600100209"]
        assert store.campaign_counts("c1")["total"] == 3
        store.close()
        Store(url).close()  # a second open runs nothing again
        assert text_columns(raw) == after
        raw.close()


def test_on_sqlite_a_version_4_store_goes_to_5_unchanged(tmp_path):
    url = str(tmp_path / "v4.db")
    raw = RawDb(url)
    raw.script("".join(schema.BASE) + V4_ROWS)
    ddl_before = raw.conn.execute("SELECT type, name, sql FROM sqlite_master ORDER BY name").fetchall()
    rows_before = raw.conn.execute("SELECT * FROM contacts ORDER BY id").fetchall()
    store = Store(url)
    assert store.ping() == 5 == schema.SCHEMA_VERSION
    store.close()
    assert raw.conn.execute("SELECT type, name, sql FROM sqlite_master ORDER BY name").fetchall() == ddl_before
    assert raw.conn.execute("SELECT * FROM contacts ORDER BY id").fetchall() == rows_before
    assert raw.one("SELECT value FROM meta WHERE key = 'schema'") == "5"
    assert [r[0] for r in raw.conn.execute("SELECT external_id FROM contacts ORDER BY external_id")] == \
        ["Debtor-8", "debtor-7"]
    raw.close()
