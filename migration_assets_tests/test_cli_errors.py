"""Every failure an operator can meet ends in one line on standard error naming what failed
and the next thing to do, exit status 1 (2 for an unknown name), and no traceback unless
--debug. Each path is driven for real: servers that are not there, a host off the
allowlist, databases that do not match sql/, a lock held by another session, bad settings."""

from __future__ import annotations

import uuid

import psycopg
import pytest

from migration_assets.target.guard import lock_key
from migration_assets_tests.cli_helpers import Stack, fresh_home, make_env, one_line
from migration_assets_tests.conftest import APP_ROLE, create_database, db_url, drop_databases

pytestmark = pytest.mark.integration


@pytest.fixture
def blank(stack_env, make_target_db, tmp_path) -> Stack:
    """An empty target with the schema, an empty Mongo database and a Dagster home of its own."""
    url = make_target_db()
    home = fresh_home(tmp_path / "home")
    return Stack(make_env(stack_env, url, f"ma_none_{uuid.uuid4().hex[:8]}", home), url.rsplit("/", 1)[1], home)


def test_unreachable_source_and_target(blank, capsys):
    rc, _, err = blank.with_env(MONGODB_URI="mongodb://127.0.0.1:1/?directConnection=true").call(
        capsys, "migrate", "--domain", "auth")
    line = one_line(err)
    assert rc == 1 and line.startswith("error: migrate_auth load_users.plan_users: MongoDB at mongodb://127.0.0.1:1/")
    assert "is unreachable" in line and "next: check MONGODB_URI" in line

    rc, _, err = blank.with_env(MIGRATION_PG_URL="postgresql://postgres:s3cret@127.0.0.1:1/x").call(capsys, "status")
    line = one_line(err)
    assert rc == 1 and line.startswith("error: status: PostgreSQL at ") and "127.0.0.1:1/x is unreachable" in line
    assert "next: check MIGRATION_PG_URL" in line and "s3cret" not in line


def test_host_not_allowed(blank, capsys):
    rc, _, err = blank.with_env(MIGRATION_PG_URL="postgresql://postgres@10.9.9.9:5432/prod").call(
        capsys, "migrate", "--domain", "auth")
    line = one_line(err)
    assert rc == 1 and line.startswith("error: migrate_auth ") and "load_users" in line.split(": ")[1]
    assert "host '10.9.9.9' is not in MIGRATION_PG_ALLOWED_HOSTS" in line and "next: point MIGRATION_PG_URL" in line


def test_schema_mismatch(blank, pg_server, capsys):
    bare, foreign = create_database(pg_server, "ma_bare"), create_database(pg_server, "ma_foreign")
    try:
        # Never migrated: every step refuses before writing, naming the first thing missing.
        rc, _, err = blank.with_env(MIGRATION_PG_URL=db_url(pg_server, bare)).call(capsys, "migrate", "--domain", "auth")
        line = one_line(err)
        assert rc == 1 and "the target does not conform to the specs: table id_map" in line, line
        assert "next: `migration-assets doctor` lists every mismatch" in line
        # Objects sql/ would create, made by someone else: schema names the one it collides with.
        owner = db_url(pg_server, foreign, APP_ROLE)
        with psycopg.connect(owner, autocommit=True) as c:
            c.execute("CREATE TYPE user_role AS ENUM ('someone_else')")
        rc, _, err = blank.with_env(MIGRATION_PG_URL=db_url(pg_server, foreign), MIGRATION_PG_OWNER_URL=owner).call(
            capsys, "schema")
        line = one_line(err)
        assert rc == 1 and line.startswith("error: schema: application/0000_core_enums_id_map_categories.sql")
        assert 'type "user_role" already exists' in line and "`migration-assets schema -v` lists" in line
    finally:
        drop_databases(pg_server, bare, foreign)


def test_loader_lock_held_by_another_run(blank, capsys):
    with psycopg.connect(blank.env["MIGRATION_PG_URL"], autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(%s, %s)", list(lock_key("users")))
        rc, _, err = blank.call(capsys, "migrate", "--domain", "auth", "--lock-timeout", "1")
    line = one_line(err)
    assert rc == 1 and line.startswith("error: migrate_auth load_users.plan_users: gave up after")
    assert "load lock of loader 'users'" in line and "`migration-assets watch`" in line


@pytest.mark.parametrize("name, value, command, says", [
    ("MIGRATION_SOURCE", "bogus", ("verify", "--domain", "auth"), "MIGRATION_SOURCE must be 'live' or 'dump', not 'bogus'"),
    ("MIGRATION_CHECKSUM_WORKERS", "many", ("verify", "--domain", "auth"),
     'env variable "MIGRATION_CHECKSUM_WORKERS" cannot be coerced into an int'),
    ("MIGRATION_PG_URL", "postgresql://postgres@127.0.0.1/x?sslmode", ("status",), "not a valid connection string"),
])
def test_bad_config_value(blank, capsys, name, value, command, says):
    rc, _, err = blank.with_env(**{name: value}).call(capsys, *command)
    line = one_line(err)
    assert rc == 1 and says in line and "; next: " in line


@pytest.mark.parametrize("command, says", [
    (("diff", "no_such_table"), "unknown table 'no_such_table'"),
    (("verify", "--domain", "nope"), "unknown domain 'nope'"),
    (("readiness", "--domain", "nope"), "unknown domain 'nope'"),
    (("watch", "--domain", "nope"), "unknown domain 'nope'"),
])
def test_unknown_name_exits_2(blank, capsys, command, says):
    rc, out, err = blank.call(capsys, *command)
    assert rc == 2 and out == "" and says in one_line(err)


def test_debug_prints_the_traceback(blank, capsys):
    rc, _, err = blank.with_env(MIGRATION_PG_URL="postgresql://postgres@127.0.0.1:1/x").call(capsys, "status", "--debug")
    assert rc == 1 and "Traceback (most recent call last)" in err and "TargetUnavailable" in err
    assert err.splitlines()[-1].startswith("error: status: PostgreSQL at ")
