"""The schema runner: installs sql/ on an empty database (each file as psql would run it),
finds everything present when run again, records the platform's files and refuses an edited
one, and every file applies with plain psql in file order."""

from __future__ import annotations

import shutil
import subprocess

import psycopg
import pytest

from migration_assets.target.schema import SQL_DIR, SchemaDrift, apply_schema, migration_files
from migration_assets_tests.conftest import APP_ROLE, admin_url, create_database, db_url, drop_databases

pytestmark = pytest.mark.integration


@pytest.fixture
def empty_db(pg_server):
    """A blank target database (owned by the application's role), dropped afterwards."""
    name = create_database(pg_server, "ma_empty")
    yield name
    drop_databases(pg_server, name)


def test_installs_then_finds_everything_present(pg_server, empty_db):
    with psycopg.connect(db_url(pg_server, empty_db, APP_ROLE), autocommit=True) as owner, \
            psycopg.connect(db_url(pg_server, empty_db), autocommit=True) as platform:
        first = apply_schema(owner, platform)
        assert first.mode == "install"
        names = [f.name for f in migration_files()]
        assert first.applied == names and names[0].startswith("0000") and "0017_user_role_guard.sql" in names
        second = apply_schema(owner, platform)
        assert second.mode == "adopt" and second.applied == []
        assert second.count("created") == second.count("kept") == second.count("dropped") == 0
        assert second.count("present") > 140
        recorded = platform.execute("SELECT filename FROM migration.schema_migrations ORDER BY 1").fetchall()
        assert [r[0] for r in recorded] == [f.name for f in migration_files() if f.part == "platform"]
        owners = dict(owner.execute("SELECT c.relname, pg_get_userbyid(c.relowner) FROM pg_class c "
                                    "WHERE c.relname IN ('users', 'quarantine')").fetchall())
        assert owners == {"users": APP_ROLE, "quarantine": "migration_platform"}  # each side owns its objects


def test_refuses_a_changed_applied_platform_file(pg_server, empty_db, tmp_path):
    sql_dir = tmp_path / "sql"
    shutil.copytree(SQL_DIR, sql_dir)
    with psycopg.connect(admin_url(pg_server, empty_db), autocommit=True) as c:
        apply_schema(c, sql_dir=sql_dir)
        edited = sql_dir / "platform" / "0021_ledger_entry_snapshot.sql"
        edited.write_text(edited.read_text() + "\n-- edited after it was applied\n")
        with pytest.raises(SchemaDrift, match="0021_ledger_entry_snapshot.sql"):
            apply_schema(c, sql_dir=sql_dir)


def test_every_file_applies_with_plain_psql_in_file_order(pg_server, empty_db):
    url = admin_url(pg_server, empty_db)
    for f in migration_files():
        out = subprocess.run(["psql", "-v", "ON_ERROR_STOP=1", "-q", "-X", url, "-f", str(f.path)],
                             capture_output=True, text=True)
        assert out.returncode == 0, f"{f.part}/{f.name}: {out.stderr}"
    with psycopg.connect(url) as c:
        assert c.execute("SELECT to_regclass('migration.quarantine') IS NOT NULL").fetchone()[0]


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
