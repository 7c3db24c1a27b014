"""The ``migration-assets`` command line against the real services: every command, its
output and its exit status, on a Dagster instance of its own (DAGSTER_HOME in a temp dir)."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from pathlib import Path

import psycopg
import pytest

from migration_assets.cli import main
from migration_assets.specs.registry import DOMAINS, all_loaders
from migration_assets_tests.conftest import APP_ROLE, ROOT, create_database, db_url, drop_databases

pytestmark = pytest.mark.integration


class Stack:
    """Environment of one migrated target + Mongo database + Dagster home."""

    def __init__(self, env: dict[str, str], target: str, home: Path):
        self.env, self.target, self.home = env, target, home

    def run(self, capsys, *args: str) -> tuple[int, str]:
        with pytest.MonkeyPatch.context() as mp:
            for k, v in self.env.items():
                mp.setenv(k, v)
            capsys.readouterr()
            try:
                rc = main(list(args))
            except SystemExit as e:  # argparse and usage errors
                rc = e.code if isinstance(e.code, int) else 1
            return rc, capsys.readouterr().out

    def conn(self):
        return psycopg.connect(self.env["MIGRATION_PG_URL"], autocommit=True)


def make_env(stack_env, url: str, mongo_db: str, home: Path) -> dict[str, str]:
    return {
        "MONGODB_URI": stack_env["MONGODB_URI"], "MONGODB_DATABASE": mongo_db, "MIGRATION_SOURCE": "live",
        "MONGODUMP_DIR": "", "MIGRATION_PG_URL": url, "MIGRATION_PG_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DAGSTER_HOME": str(home),
    }


@pytest.fixture(scope="module")
def migrated(stack_env, pg_server, schema_template, mongo_client, world, tmp_path_factory):
    """The sample world in Mongo, migrated once with ``migration-assets migrate --domain all``."""
    from migration_assets.generator.writers import write_mongo

    name = create_database(pg_server, "ma_cli", schema_template)
    write_mongo(mongo_client[name], world.docs, clear=False)
    home = tmp_path_factory.mktemp("dagster_home")
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    stack = Stack(make_env(stack_env, db_url(pg_server, name), name, home), name, home)
    yield stack
    with psycopg.connect(pg_server, autocommit=True) as c:
        c.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        c.execute("SELECT 1")
    for coll in world.docs:
        mongo_client[name][coll].delete_many({})


@pytest.fixture(scope="module")
def first_migration(migrated):
    """Output of the initial migration (captured without capsys: module scope)."""
    import contextlib
    import io

    out = io.StringIO()
    with pytest.MonkeyPatch.context() as mp, contextlib.redirect_stdout(out):
        for k, v in migrated.env.items():
            mp.setenv(k, v)
        rc = main(["migrate", "--domain", "all"])
    return rc, out.getvalue()


@pytest.fixture
def scratch(migrated, first_migration, pg_server, mongo_client, world, tmp_path, stack_env):
    """A copy of the migrated stack (target database, Mongo data, Dagster history) that a
    test may break."""
    from migration_assets.generator.writers import write_mongo

    name = f"ma_clix_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_server, autocommit=True) as c:
        c.execute(f"CREATE DATABASE {name} TEMPLATE {migrated.target}")
    write_mongo(mongo_client[name], world.docs, clear=False)
    home = tmp_path / "dagster_home"
    shutil.copytree(migrated.home, home)
    yield Stack(make_env(stack_env, db_url(pg_server, name), name, home), name, home)
    with psycopg.connect(pg_server, autocommit=True) as c:
        c.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    for coll in world.docs:
        mongo_client[name][coll].delete_many({})


def test_migrate_all_domains(first_migration, migrated, world):
    rc, out = first_migration
    assert rc == 0, out
    present = {l.domain for l in all_loaders()}
    for d in present:
        assert f"migrate {d}: ok" in out
    assert "0 failed" in out and "FAILED" not in out
    with migrated.conn() as c:
        assert c.execute("SELECT count(*) FROM users").fetchone()[0] == len(world.docs["users"])


def test_schema_installs_then_adopts(stack_env, pg_server, tmp_path, capsys):
    name = create_database(pg_server, "ma_clis")
    try:
        home = tmp_path / "home"
        home.mkdir()
        env = {**make_env(stack_env, db_url(pg_server, name), name, home),
               "MIGRATION_PG_OWNER_URL": db_url(pg_server, name, APP_ROLE)}
        stack = Stack(env, name, home)
        rc, out = stack.run(capsys, "schema")
        assert rc == 0 and "schema: install: 149 created" in out, out
        assert "0000_core_enums_id_map_categories.sql: type user_role: created" in out
        rc, out = stack.run(capsys, "schema")
        assert rc == 0 and "schema: adopt: 0 created, 145 present, 0 kept" in out, out
    finally:
        drop_databases(pg_server, name)


def test_generate_writes_a_mongodump_directory(migrated, tmp_path, capsys):
    from migration_assets.source.dump import DumpSource

    stack = Stack({**migrated.env, "MONGODUMP_DIR": str(tmp_path / "dump"), "MONGODB_DATABASE": "gen"}, "", migrated.home)
    rc, out = stack.run(capsys, "generate", "--dump", "--scale", "0.2", "--seed", "3")
    assert rc == 0 and "(seed 3, scale 0.2)" in out and "mongodump directory" in out
    total = int(out.split("generate: ")[1].split(" documents")[0])
    dump = DumpSource(tmp_path / "dump", "gen")
    files = sorted((tmp_path / "dump" / "gen").glob("*.bson"))
    assert sum(dump.count(f.stem) for f in files) == total > 0


def test_summary_lists_every_table(first_migration, migrated, capsys):
    rc, out = migrated.run(capsys, "summary")
    assert rc == 0, out
    for l in all_loaders():
        for t in l.table_names:
            assert f" {t} " in out
    assert "with checks not all passed" in out and ", 0 with checks not all passed" in out


def test_verify_a_domain(first_migration, migrated, capsys):
    rc, out = migrated.run(capsys, "verify", "--domain", "marketplace")
    assert rc == 0, out
    assert out.startswith("verify marketplace: checks ") and " / 0 failed" in out


def test_status_reports_every_domain(first_migration, migrated, capsys):
    rc, out = migrated.run(capsys, "status")
    assert rc == 0, out
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["domain", "tables", "rows"]
    with migrated.conn() as c:
        auth_rows = sum(c.execute(f"SELECT count(*) FROM public.{t}").fetchone()[0]
                        for l in all_loaders() if l.domain == "auth" for t in l.table_names)
    auth = next(line.split() for line in lines if line.startswith("auth "))
    assert int(auth[2]) == auth_rows > 0
    assert "SUCCESS" in " ".join(auth) and "passed" in " ".join(auth)
    assert "status: nothing needs attention" in out


def test_diff_of_a_clean_table(first_migration, migrated, capsys):
    rc, out = migrated.run(capsys, "diff", "seller_offers")
    assert rc == 0, out
    assert out.startswith("diff seller_offers: 0 missing in PostgreSQL, 0 extra in PostgreSQL, 0 changed (")


def test_readiness_go_and_no_go(first_migration, migrated, capsys):
    rc, out = migrated.run(capsys, "readiness", "--domain", "marketplace", "--runs", "1", "--seed", "3")
    assert rc == 0, out
    assert "## marketplace: GO" in out and "readiness marketplace: GO" in out
    assert "`REPO_MARKETPLACE=dual`" in out and "`REPO_MARKETPLACE=pg`" in out and "Rollback" in out
    # Five green executions are required but only the first migration (+ one verify) ran.
    rc, out = migrated.run(capsys, "readiness", "--domain", "marketplace", "--runs", "5")
    assert rc == 1 and "readiness marketplace: NO-GO" in out and "have fewer than 5" in out
    # The verdict is recorded: status shows the latest one per domain.
    rc, out = migrated.run(capsys, "status")
    assert next(line for line in out.splitlines() if line.startswith("marketplace ")).split()[-4] == "NO-GO"


def test_usage_errors_exit_2(first_migration, migrated, capsys):
    assert migrated.run(capsys, "diff", "no_such_table")[0] == 2
    assert migrated.run(capsys, "verify", "--domain", "nope")[0] == 2
    assert migrated.run(capsys, "readiness", "--domain", "nope")[0] == 2
    assert migrated.run(capsys, "bogus")[0] == 2


def test_a_corrupted_row_fails_diff_verify_status_readiness_until_resync(scratch, capsys):
    with scratch.conn() as c:
        key = c.execute("SELECT min(legacy_object_id) FROM seller_offers").fetchone()[0]
        c.execute("UPDATE seller_offers SET price = price + 1 WHERE legacy_object_id = %s", [key])

    rc, out = scratch.run(capsys, "diff", "seller_offers")
    assert rc == 1 and out.startswith("diff seller_offers: 0 missing in PostgreSQL, 0 extra in PostgreSQL, 1 changed")
    assert f"  changed  {key}  columns: price" in out

    rc, out = scratch.run(capsys, "verify", "--domain", "marketplace")
    assert rc == 1 and "FAILED public/seller_offers checksum_parity (ERROR)" in out

    rc, out = scratch.run(capsys, "status")
    assert rc == 1 and "marketplace: check public/seller_offers checksum_parity (failed/ERROR)" in out

    rc, out = scratch.run(capsys, "readiness", "--domain", "marketplace", "--runs", "1")
    assert rc == 1 and "NO-GO" in out and "public/seller_offers checksum_parity: last runs: failed (ERROR)" in out

    # Re-sync: migrating the domain again upserts the source's values back.
    rc, out = scratch.run(capsys, "migrate", "--domain", "marketplace")
    assert rc == 0, out
    assert scratch.run(capsys, "diff", "seller_offers")[0] == 0
    assert scratch.run(capsys, "status")[0] == 0
    assert scratch.run(capsys, "readiness", "--domain", "marketplace", "--runs", "1")[0] == 0


def test_dry_run_writes_nothing(migrated, make_target_db, tmp_path, capsys):
    empty = make_target_db()
    home = tmp_path / "home"
    home.mkdir()
    stack = Stack({**migrated.env, "MIGRATION_PG_URL": empty, "DAGSTER_HOME": str(home)}, "", home)
    rc, out = stack.run(capsys, "migrate", "--domain", "auth", "--dry-run")
    assert rc == 0 and out.startswith("migrate auth: ok"), out
    with psycopg.connect(empty) as c:
        assert c.execute("SELECT count(*) FROM users").fetchone()[0] == 0
        assert c.execute("SELECT count(*) FROM migration.quarantine").fetchone()[0] == 0


def test_console_script_is_installed(first_migration, migrated):
    exe = ROOT / ".venv" / "bin" / "migration-assets"
    out = subprocess.run([str(exe), "--help"], capture_output=True, text=True)
    assert out.returncode == 0
    for command in ("schema", "generate", "migrate", "verify", "status", "diff", "readiness", "summary"):
        assert command in out.stdout
    env = {**os.environ, **migrated.env, "PATH": f"{ROOT / '.venv' / 'bin'}:{os.environ['PATH']}"}
    status = subprocess.run([str(exe), "status"], capture_output=True, text=True, env=env, timeout=300)
    assert status.returncode == 0, status.stdout + status.stderr
    assert {line.split()[0] for line in status.stdout.splitlines()[1:] if line.split() and line.split()[0] in DOMAINS}
