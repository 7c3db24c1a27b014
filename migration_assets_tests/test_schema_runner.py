"""sql/ runner: applies every file once, records it, is safe to re-run, refuses edited files."""

from __future__ import annotations

import shutil

import psycopg
import pytest

from migration_assets.target.schema import SQL_DIR, SchemaDrift, apply_migrations, migration_files

pytestmark = pytest.mark.integration


@pytest.fixture
def empty_db(pg_server, make_target_db):
    # make_target_db clones the migrated template; this test needs a blank database.
    url = make_target_db()
    name = url.rsplit("/", 1)[1]
    with psycopg.connect(pg_server, autocommit=True) as c:
        c.execute(f"DROP DATABASE {name} WITH (FORCE)")
        c.execute(f"CREATE DATABASE {name}")
    return url


def test_applies_in_order_then_skips(empty_db):
    with psycopg.connect(empty_db, autocommit=True) as c:
        first = apply_migrations(c)
        assert first.applied == [p.name for p in migration_files()]
        assert first.applied[0].startswith("0000") and "0017_user_role_guard.sql" in first.applied
        second = apply_migrations(c)
        assert second.applied == [] and len(second.skipped) == len(first.applied)
        recorded = c.execute("SELECT count(*) FROM migration.schema_migrations").fetchone()[0]
        assert recorded == len(first.applied)


def test_refuses_a_changed_applied_file(empty_db, tmp_path):
    sql_dir = tmp_path / "sql"
    shutil.copytree(SQL_DIR, sql_dir)
    with psycopg.connect(empty_db, autocommit=True) as c:
        apply_migrations(c, sql_dir)
        edited = sql_dir / "0012_disputes.sql"
        edited.write_text(edited.read_text() + "\n-- edited after it was applied\n")
        with pytest.raises(SchemaDrift, match="0012_disputes.sql"):
            apply_migrations(c, sql_dir)


def test_schema_reproduces_the_seed_constraints(target_conn):
    q = lambda sql: target_conn.execute(sql).fetchall()  # noqa: E731
    enum = lambda t: [r[0] for r in q(  # noqa: E731
        f"SELECT enumlabel FROM pg_enum WHERE enumtypid = '{t}'::regtype ORDER BY enumsortorder")]
    assert "guard" in enum("user_role") and "TRY" in enum("offer_currency")
    assert enum("address_type") == ["shipping", "billing", "pickup"]
    pk = q("SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) "
           "WHERE i.indrelid = 'id_map'::regclass AND i.indisprimary ORDER BY a.attnum")
    assert [r[0] for r in pk] == ["entity", "legacy_id"]
    triggers = {r[0] for r in q("SELECT tgname FROM pg_trigger WHERE tgrelid = 'funds_ledger_entries'::regclass AND NOT tgisinternal")}
    assert triggers == {"funds_ledger_entries_no_update", "funds_ledger_entries_no_delete", "funds_ledger_entries_no_truncate"}
    idx = dict(q("SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'"))
    assert "lower(btrim(name))" in idx["categories_active_name_norm_uq"] and "WHERE is_active" in idx["categories_active_name_norm_uq"]
    assert "WHERE is_primary" in idx["addresses_one_primary_per_user_uq"]
    checks = {r[0] for r in q("SELECT conname FROM pg_constraint WHERE contype = 'c'")}
    assert {"payments_amount_positive_ck", "funds_ledger_entries_amount_positive_ck"} <= checks
    assert q("SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND NOT convalidated")[0][0] == 0
    legacy_uniques = q("SELECT count(*) FROM pg_constraint WHERE contype = 'u' AND conname LIKE '%legacy_object_id_uq'")[0][0]
    assert legacy_uniques >= 25
    assert q("SELECT to_regclass('public.pg_dualwrite_gaps') IS NOT NULL")[0][0]
    # Chat is normalized: no JSONB blobs left on chats.
    assert not q("SELECT 1 FROM information_schema.columns WHERE table_name = 'chats' AND data_type = 'jsonb'")


def test_ledger_triggers_refuse_update_delete_truncate(target_conn):
    for stmt in ("UPDATE funds_ledger_entries SET description = 'x'",
                 "DELETE FROM funds_ledger_entries", "TRUNCATE funds_ledger_entries"):
        target_conn.execute(
            "INSERT INTO users (id, legacy_object_id, email, created_at) VALUES "
            "('00000000-0000-0000-0000-000000000001', 'u1', 'u1@x', now()) ON CONFLICT DO NOTHING")
        target_conn.execute(
            "INSERT INTO funds_ledger_entries (id, legacy_object_id, user_id, account, currency, direction, amount, entry_type, created_at) "
            "VALUES (gen_random_uuid(), gen_random_uuid()::text, '00000000-0000-0000-0000-000000000001', 'buyer_wallet', 'USDT', 'credit', 1, 'deposit', now())")
        with pytest.raises(psycopg.errors.RestrictViolation, match="append-only"):
            with target_conn.transaction():
                target_conn.execute(stmt)
