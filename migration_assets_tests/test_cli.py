"""The ``migration-assets`` command line against the real services: every command, its
output and its exit status, on a Dagster instance of its own (DAGSTER_HOME in a temp dir)."""

from __future__ import annotations

import datetime as dt
import json
import os
import pty
import re
import shutil
import subprocess
import threading
import time
import uuid

import dagster as dg
import psycopg
import pytest
from bson import ObjectId

from migration_assets.cli.main import main
from migration_assets.specs.registry import DOMAINS, all_loaders
from migration_assets.target.guard import lock_key
from migration_assets_tests.cli_helpers import Stack, fresh_home, make_env
from migration_assets_tests.conftest import APP_ROLE, ROOT, create_database, db_url, drop_databases

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def migrated(stack_env, pg_server, schema_template, mongo_client, world, tmp_path_factory):
    """The sample world in Mongo, migrated once with ``migration-assets migrate --domain all``."""
    from migration_assets.generator.writers import write_mongo

    name = create_database(pg_server, "ma_cli", schema_template)
    write_mongo(mongo_client[name], world.docs, clear=False)
    home = fresh_home(tmp_path_factory.mktemp("dagster_home"))
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
    lines = out.splitlines()
    for d in {l.domain for l in all_loaders()}:
        assert any(line.startswith(f"migrate_{d} ") and " SUCCESS " in line for line in lines), out
    # One line per table as it finishes, with its checks; nothing failed, no Dagster event log.
    for l in all_loaders():
        for t in l.table_names:
            line = next(x for x in lines if x.split()[1:2] == [f"public/{t}"])
            assert line.split()[0] == "ok" and " passed" in line, line
    assert "FAILED" not in out and "WARN" not in out and "DEBUG" not in out and "STEP_START" not in out
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
        assert rc == 0 and "schema: install: 184 created" in out, out
        assert "0000_core_enums_id_map_categories.sql: type user_role: created" in out
        rc, out = stack.run(capsys, "schema")
        assert rc == 0 and "schema: adopt: 0 created, 186 present, 0 kept" in out, out
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
    rc, out, err = migrated.call(capsys, "verify", "--domain", "marketplace")
    assert rc == 0 and err == "", out + err
    assert out.startswith("verify_marketplace: run ")
    table_lines = [line for line in out.splitlines() if line.startswith("  ")]
    assert table_lines and all(line.split()[0] == "ok" and " passed" in line for line in table_lines)
    summary = next(line for line in out.splitlines() if line.startswith("verify_marketplace ") and "SUCCESS" in line)
    passed, total = summary.split()[-2].split("/")
    assert passed == total and int(total) > 0


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
    line = next(x for x in out.splitlines() if " public/seller_offers " in x)
    assert rc == 1 and line.split()[0] == "FAILED" and "failed: checksum_parity (ERROR: 0 missing, 0 extra, 1 changed" in line

    rc, out = scratch.run(capsys, "status")
    assert rc == 1 and "marketplace: check public/seller_offers checksum_parity (failed (ERROR))" in out

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
    assert rc == 0 and "migrate: dry run, nothing was written to the target" in out, out
    users = next(x for x in out.splitlines() if " public/users " in x)
    assert users.split()[0] == "ok" and "dry run: " in users and " would be quarantined" in users
    with psycopg.connect(empty) as c:
        assert c.execute("SELECT count(*) FROM users").fetchone()[0] == 0
        assert c.execute("SELECT count(*) FROM migration.quarantine").fetchone()[0] == 0


def test_console_script_is_installed(first_migration, migrated):
    exe = ROOT / ".venv" / "bin" / "migration-assets"
    out = subprocess.run([str(exe), "--help"], capture_output=True, text=True)
    assert out.returncode == 0
    for command in ("schema", "generate", "migrate", "verify", "status", "diff", "readiness", "summary", "watch"):
        assert command in out.stdout
    env = {**os.environ, **migrated.env, "PATH": f"{ROOT / '.venv' / 'bin'}:{os.environ['PATH']}"}
    status = subprocess.run([str(exe), "status"], capture_output=True, text=True, env=env, timeout=300)
    assert status.returncode == 0, status.stdout + status.stderr
    assert {line.split()[0] for line in status.stdout.splitlines()[1:] if line.split() and line.split()[0] in DOMAINS}


def test_json_documents(first_migration, migrated, tmp_path, capfd):
    """--json: one document per command, its exit status inside; the shapes the README gives."""
    rc, out, err = migrated.call(capfd, "status", "--json")
    doc = json.loads(out)
    assert rc == doc["exit_status"] == 0 and err == "" and doc["attention"] == []
    auth = next(d for d in doc["domains"] if d["domain"] == "auth")
    with migrated.conn() as c:
        assert auth["rows"] == sum(c.execute(f"SELECT count(*) FROM public.{t}").fetchone()[0]
                                   for l in all_loaders() if l.domain == "auth" for t in l.table_names)
    assert auth["checks"]["passed"] == auth["checks"]["total"] > 0 and auth["checks"]["failed"] == []
    assert auth["last_migrate_run"]["status"] == "SUCCESS" and auth["quarantined"] == 0

    rc, out, _ = migrated.call(capfd, "summary", "--json")
    doc = json.loads(out)
    assert rc == doc["exit_status"] == 0 and doc["totals"]["not_all_passed"] == 0
    assert {t for l in all_loaders() for t in l.table_names} <= {t["table"] for t in doc["tables"]}
    assert all(t["checks"] and set(t["checks"].values()) == {"passed"} for t in doc["tables"])

    rc, out, _ = migrated.call(capfd, "diff", "seller_offers", "--json")
    doc = json.loads(out)
    assert rc == doc["exit_status"] == 0 and doc["table"] == "seller_offers"
    assert (doc["missing"], doc["extra"], doc["changed"], doc["rows"]) == (0, 0, 0, [])

    # verify and readiness on a Dagster home of their own: the shared history stays as it was.
    fresh = migrated.with_env(DAGSTER_HOME=str(fresh_home(tmp_path / "home")))
    rc, out, err = fresh.call(capfd, "verify", "--domain", "chat", "--json")
    doc = json.loads(out)
    assert rc == doc["exit_status"] == 0 and err == "", err  # nothing but the document, no Dagster log
    run = doc["runs"][0]
    assert run["job"] == "verify_chat" and run["status"] == "SUCCESS" and run["errors"] == []
    assert run["assets"] and all(a["checks"] and all(c["passed"] for c in a["checks"]) and not a["checks_not_run"]
                                 for a in run["assets"])
    chat = next(d for d in json.loads(fresh.call(capfd, "status", "--json")[1])["domains"] if d["domain"] == "chat")
    assert chat["checks"]["passed"] == sum(len(a["checks"]) for a in run["assets"])  # recorded in the instance

    # One green execution of each check, two required: NO-GO, and the document says why.
    rc, out, _ = fresh.call(capfd, "readiness", "--domain", "chat", "--runs", "2", "--json")
    doc = json.loads(out)
    verdict = doc["domains"][0]
    assert rc == doc["exit_status"] == 1 and verdict["domain"] == "chat" and verdict["verdict"] == "NO-GO"
    assert verdict["go"] is False and verdict["green_runs_required"] == 2 and "have fewer than 2" in verdict["summary"]
    assert verdict["run"]["status"] == "SUCCESS"

    # --verbose adds Dagster's own event log, written by the run worker to the terminal it shares.
    rc, out, err = fresh.call(capfd, "verify", "--domain", "chat", "--verbose")
    assert rc == 0 and "STEP_SUCCESS" in out + err


def test_only_warnings_exit_3(scratch, mongo_client, capsys):
    """A run that only quarantined documents says so with 3, not with the 1 of wrong data."""
    mongo_client[scratch.target]["users"].insert_one(
        {"_id": ObjectId(), "email": "quarantined@example.com", "role": "superuser", "createdAt": dt.datetime(2026, 1, 2)})
    rc, out, err = scratch.call(capsys, "migrate", "--domain", "auth")
    assert rc == 3, out + err
    users = next(x for x in out.splitlines() if " public/users " in x)
    assert users.split()[0] == "WARN" and "1 quarantined" in users and "failed: quarantine_empty (WARN)" in users
    assert "FAILED" not in out and err == ""
    doc = json.loads(scratch.call(capsys, "status", "--json")[1])
    assert doc["exit_status"] == 3
    assert json.loads(scratch.call(capsys, "verify", "--domain", "auth", "--json")[1])["exit_status"] == 3


def console_script_env(stack: Stack, **extra: str) -> dict[str, str]:
    return {**os.environ, **stack.env, "PATH": f"{ROOT / '.venv' / 'bin'}:{os.environ['PATH']}", **extra}


def test_watch_follows_a_run_and_a_pipe_gets_plain_lines(scratch, capsys, monkeypatch):
    """A migrate run waits for a load lock while ``watch`` picks it up from the instance;
    the console script's standard output is a pipe: plain progress lines, no escape codes."""
    exe = str(ROOT / ".venv" / "bin" / "migration-assets")
    ui = "http://ui.example:3000"
    holder = psycopg.connect(scratch.env["MIGRATION_PG_URL"], autocommit=True)
    holder.execute("SELECT pg_advisory_lock(%s, %s)", list(lock_key("users")))
    proc = subprocess.Popen([exe, "migrate", "--domain", "auth", "--progress-every", "0"], text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=console_script_env(scratch, DAGSTER_WEBSERVER_URL=ui))
    try:
        monkeypatch.setenv("DAGSTER_HOME", str(scratch.home))
        inst = dg.DagsterInstance.get()
        deadline = time.monotonic() + 120
        while not inst.get_runs(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED])):
            assert time.monotonic() < deadline and proc.poll() is None, proc.stderr.read()
            time.sleep(0.5)
        threading.Timer(3.0, holder.close).start()  # the load proceeds once watch is following
        rc, out, err = scratch.call(capsys, "watch", "--progress-every", "0")
        stdout, stderr = proc.communicate(timeout=300)
    finally:
        proc.kill()
        holder.close()
    run_id = out.splitlines()[0].split(" run ")[1]
    assert rc == 0 and err == "" and out.startswith("migrate_auth: run "), out + err
    users = next(x for x in out.splitlines() if " public/users " in x)
    assert users.split()[0] == "ok" and re.search(r"checks (\d+)/\1 passed", users), users
    assert any(x.startswith("migrate_auth ") and "SUCCESS" in x for x in out.splitlines())

    assert proc.returncode == 0, stdout + stderr
    assert "\x1b" not in stdout + stderr and stderr == ""  # no escape codes, no warnings, no event log
    assert f"migrate_auth: run {run_id}" in stdout and f"{ui}/runs/{run_id}" in stdout
    progress = [x for x in stdout.splitlines() if x.startswith("  users: ")]
    assert progress and " documents (" in progress[0] and " rows written, " in progress[0] and "docs/s" in progress[0]
    # Dagster captures each step's standard output for the UI; the console's lines are not in it.
    captured = list((scratch.home / "storage" / run_id).rglob("*.out"))
    assert captured and not any("public/users" in f.read_text() for f in captured)


def read_terminal(args: list[str], env: dict[str, str]) -> tuple[int, str]:
    """Runs the console script with a terminal (a pty) as its standard output."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(args, stdin=slave, stdout=slave, stderr=slave, env=env, close_fds=True)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    return proc.wait(timeout=300), b"".join(chunks).decode("utf-8", "replace")


def test_a_terminal_gets_live_output_and_a_pipe_does_not(first_migration, migrated, tmp_path):
    exe = str(ROOT / ".venv" / "bin" / "migration-assets")
    stack = migrated.with_env(DAGSTER_HOME=str(fresh_home(tmp_path / "home")))
    env = console_script_env(stack, TERM="xterm-256color", COLUMNS="120")
    rc, screen = read_terminal([exe, "verify", "--domain", "auth"], env)
    assert rc == 0 and "\x1b[" in screen and "public/users" in screen, screen
    piped = subprocess.run([exe, "verify", "--domain", "auth"], capture_output=True, text=True, env=env, timeout=300)
    assert piped.returncode == 0 and "\x1b" not in piped.stdout + piped.stderr
    assert "public/users" in piped.stdout and "BetaWarning" not in piped.stderr
