"""A target this project did not create: the application's own migrations (sql/application,
applied with plain psql as the application's role) and rows the application dual-wrote with
its own random uuids. ``migration-assets schema`` adopts it (applies only what is missing,
changes nothing the application owns), the target is found conforming, the migration keeps
the application's uuids, and a drifted target is refused with the mismatches named."""

from __future__ import annotations

import contextlib
import io
import subprocess

import psycopg
import pytest

from migration_assets.cli.main import main
from migration_assets.generator.writers import write_mongo
from migration_assets.target.conformance import check_conformance
from migration_assets.target.schema import migration_files
from migration_assets_tests.conftest import APP_ROLE, admin_url, create_database, db_url, drop_databases
from migration_assets_tests.helpers import check_evaluations, failed_checks, meta_value, run_job

pytestmark = pytest.mark.integration


def chain(error):
    while error is not None:
        yield error
        error = error.cause


def cli(env: dict[str, str], *args: str) -> tuple[int, str]:
    out = io.StringIO()
    with pytest.MonkeyPatch.context() as mp, contextlib.redirect_stdout(out):
        for k, v in env.items():
            mp.setenv(k, v)
        rc = main(list(args))
    return rc, out.getvalue()


@pytest.fixture
def application_db(pg_server):
    """sql/application applied by psql as the application's role, as its own tool would."""
    name = create_database(pg_server, "ma_app")
    owner = db_url(pg_server, name, APP_ROLE)
    for f in migration_files():
        if f.part == "application":
            done = subprocess.run(["psql", "-v", "ON_ERROR_STOP=1", "-q", "-X", owner, "-f", str(f.path)],
                                  capture_output=True, text=True)
            assert done.returncode == 0, f"{f.name}: {done.stderr}"
    yield name
    drop_databases(pg_server, name)


def dual_write(owner_url: str, world) -> dict[str, str]:
    """Rows the application wrote itself: two users, a category and a purchase request, with
    uuids of its own (gen_random_uuid) and legacy_object_id = the Mongo _id; one user also
    has the id_map entry the application sometimes writes. Returns legacy id -> uuid."""
    users, category, request = world.docs["users"][:2], world.docs["categories"][0], None
    request = next(p for p in world.docs["purchaserequests"]
                   if str(p["buyer"]) == str(users[0]["_id"]) or str(p["buyer"]) == str(users[1]["_id"]))
    cat_doc = next(c for c in world.docs["categories"] if c["_id"] == request["category"])
    ids = {}
    with psycopg.connect(owner_url, autocommit=True) as c:
        for u in users:
            ids[str(u["_id"])] = c.execute(
                "INSERT INTO users (id, legacy_object_id, email, created_at) VALUES (gen_random_uuid(), %s, %s, now()) "
                "RETURNING id::text", [str(u["_id"]), u["email"]]).fetchone()[0]
        for cat in {str(category["_id"]): category, str(cat_doc["_id"]): cat_doc}.values():
            ids[str(cat["_id"])] = c.execute(
                "INSERT INTO categories (id, legacy_object_id, name, slug, is_active, created_at) "
                "VALUES (gen_random_uuid(), %s, %s, %s, false, now()) RETURNING id::text",
                [str(cat["_id"]), cat["name"], cat["slug"]]).fetchone()[0]
        ids[str(request["_id"])] = c.execute(
            "INSERT INTO purchase_requests (id, legacy_object_id, buyer_id, category_id, title, created_at) "
            "VALUES (gen_random_uuid(), %s, %s, %s, 'dual-written', now()) RETURNING id::text",
            [str(request["_id"]), ids[str(request["buyer"])], ids[str(request["category"])]]).fetchone()[0]
        c.execute("INSERT INTO id_map (entity, legacy_id, new_id) VALUES ('users', %s, %s)",
                  [str(users[0]["_id"]), ids[str(users[0]["_id"])]])
    return ids


def test_an_application_built_target_is_adopted_found_conforming_and_migrated(
        application_db, pg_server, stack_env, mongo_client, mongo_db_name, world, definitions, monkeypatch):
    owner_url, platform_url = db_url(pg_server, application_db, APP_ROLE), db_url(pg_server, application_db)
    ids = dual_write(owner_url, world)
    env = {"MIGRATION_PG_URL": platform_url, "MIGRATION_PG_OWNER_URL": owner_url,
           "MIGRATION_PG_ALLOWED_HOSTS": "127.0.0.1", "MONGODB_URI": stack_env["MONGODB_URI"],
           "MONGODB_DATABASE": mongo_db_name, "MIGRATION_SOURCE": "live", "MONGODUMP_DIR": ""}

    rc, out = cli(env, "schema")
    assert rc == 0, out
    assert "schema: adopt:" in out and " created" in out and "0 created" not in out
    # The application's own objects: left as they are; the proposals applied; the JSONB
    # blobs the application still uses kept (dropping them takes --alter-application).
    assert "0018_chat_normalization.sql: table chat_participants: created" in out
    assert "0018_chat_normalization.sql: column chats.participants: kept" in out
    assert "0019_release_holds_level_configs.sql: table release_holds: created" in out
    assert "0003_core_domain_rebuild.sql: table users: created" not in out
    rc, out = cli(env, "schema", "--verbose")
    assert rc == 0 and "0003_core_domain_rebuild.sql: table users: present" in out
    assert "schema: adopt: 0 created" in out  # nothing left to apply

    rc, grants = cli(env, "schema", "--print-grants")
    assert rc == 0 and "GRANT SELECT, INSERT ON public.funds_ledger_entries TO migration_platform;" in grants
    done = subprocess.run(["psql", "-v", "ON_ERROR_STOP=1", "-q", "-X", owner_url], input=grants,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr

    with psycopg.connect(platform_url, autocommit=True) as platform:
        conformance = check_conformance(platform)
    assert conformance.blocking() == [], [m.line() for m in conformance.blocking()]
    notes = {m.object for m in conformance.all}
    assert {"column chats.participants", "column chats.messages"} <= notes  # extra, with defaults: notes

    write_mongo(mongo_client[mongo_db_name], world.docs, clear=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    for domain in ("auth", "marketplace"):
        result = run_job(definitions, f"migrate_{domain}", partition_key=domain)
        assert result.success, failed_checks(result)
        assert all(e.passed for e in check_evaluations(result).values()), failed_checks(result)
        if domain == "auth":
            # The application's category and purchase request still have no id_map entry:
            # marketplace's to reconcile, never a failure of auth's id_map_consistent.
            with psycopg.connect(admin_url(pg_server, application_db)) as c:
                assert c.execute("SELECT count(*) FROM id_map WHERE entity IN ('categories', 'purchase_requests')"
                                 ).fetchone()[0] == 0
            id_map_check = check_evaluations(result)[("public/id_map", "id_map_consistent")]
            assert meta_value(id_map_check, "domains") == "auth"
    with psycopg.connect(admin_url(pg_server, application_db)) as c:
        for legacy, pk in ids.items():
            table = next(t for t in ("users", "categories", "purchase_requests")
                         if c.execute(f"SELECT 1 FROM {t} WHERE legacy_object_id = %s", [legacy]).fetchone())
            assert c.execute(f"SELECT id::text FROM {table} WHERE legacy_object_id = %s", [legacy]).fetchone()[0] == pk
            assert c.execute("SELECT new_id::text FROM id_map WHERE entity = %s AND legacy_id = %s",
                             [table, legacy]).fetchone()[0] == pk
        # Children reference the application's rows, and its row now holds the source's values.
        request = next(k for k in ids if c.execute("SELECT 1 FROM purchase_requests WHERE legacy_object_id = %s",
                                                   [k]).fetchone())
        offers = c.execute("SELECT count(*) FROM seller_offers WHERE purchase_request_id = %s", [ids[request]]).fetchone()[0]
        expected = sum(1 for o in world.docs["selleroffers"] if str(o["purchaseRequest"]) == request)
        assert offers == expected
        assert c.execute("SELECT title FROM purchase_requests WHERE legacy_object_id = %s",
                         [request]).fetchone()[0] != "dual-written"


def test_a_drifted_target_is_refused_naming_each_mismatch(target_url, target_conn, migration_env, definitions,
                                                           live_source_db):
    target_conn.execute("ALTER TABLE users ALTER COLUMN points TYPE bigint")
    target_conn.execute("ALTER TABLE purchase_requests DROP CONSTRAINT purchase_requests_buyer_id_fk")
    with psycopg.connect(target_url) as c:
        found = {m.line() for m in check_conformance(c).blocking()}
    assert found == {"column users.points: the specs expect type integer, the target has type bigint",
                     "foreign key purchase_requests.buyer_id -> users: the specs expect a foreign key to users, "
                     "the target has none"}
    migration_env(mode="live", database=live_source_db)
    rc, out = cli({}, "doctor")  # the environment migration_env set
    assert rc == 1 and "doctor: source mongodb://" in out and ": reachable" in out
    assert "  mismatch: column users.points: the specs expect type integer, the target has type bigint" in out
    assert "doctor: 2 mismatch(es)" in out
    result = run_job(definitions, "migrate_auth", partition_key="auth")
    assert not result.success
    causes = [c for e in result.get_step_failure_events() for c in chain(e.step_failure_data.error)]
    assert any(c.cls_name == "SchemaMismatch" and "column users.points" in c.message for c in causes)
    evaluation = check_evaluations(result)[("public/users", "schema_conforms")]
    assert not evaluation.passed and evaluation.metadata["mismatches"].value == 1
    with psycopg.connect(target_url) as c:
        assert c.execute("SELECT count(*) FROM users").fetchone()[0] == 0  # refused before writing


def test_the_platform_role_cannot_touch_the_ledger_guards(target_url, target_conn):
    """Least privilege: the platform may read and append to the ledger, nothing more."""
    with psycopg.connect(target_url, autocommit=True) as platform:
        assert platform.execute("SELECT current_user").fetchone()[0] == "migration_platform"
        for statement in ("ALTER TABLE funds_ledger_entries DISABLE TRIGGER USER",
                          "DELETE FROM funds_ledger_entries", "UPDATE funds_ledger_entries SET description = 'x'",
                          "TRUNCATE funds_ledger_entries"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                platform.execute(statement)
        notes = [m for m in check_conformance(platform).all if m.object.startswith("role ")]
        assert notes == []
    risky = [m for m in check_conformance(target_conn).all if m.object.startswith("role ")]
    assert [m.actual for m in risky] == ["superuser"] and not risky[0].blocking



def test_the_platform_role_creates_only_in_its_own_schema(target_url, target_conn, migration_env):
    """Least privilege, to the letter: no extension, nothing in ``public``, no schema of its
    own making; its tables live in ``migration``, which the owner made for it. ``doctor`` names
    a role that could do more."""
    with psycopg.connect(target_url, autocommit=True) as platform:
        for statement in ("CREATE EXTENSION hstore", "CREATE SCHEMA elsewhere", "CREATE TABLE public.x (i int)",
                          "CREATE FUNCTION public.f() RETURNS int LANGUAGE sql AS 'SELECT 1'"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                platform.execute(statement)
        platform.execute("CREATE TABLE migration.scratch (i int)")  # its own schema: yes
        platform.execute("DROP TABLE migration.scratch")
        assert platform.execute("SELECT has_database_privilege(current_database(), 'CREATE')").fetchone()[0] is False
    migration_env(mode="live")
    rc, out = cli({}, "doctor")
    assert "could create schemas and extensions" not in out, out
    database = target_url.rsplit("/", 1)[1]
    target_conn.execute(f"GRANT CREATE ON DATABASE {database} TO migration_platform")
    rc, out = cli({}, "doctor")
    assert ("warning: role migration_platform holds CREATE on the database: it could create schemas and "
            "extensions outside its migration schema") in out, out
