"""Session fixtures: the real local PostgreSQL 15 and Mongo (jongodb) servers, started once
by the project's own script, plus per-test databases cloned from a migrated template, and
(for the celery executor) Redis and two Celery workers."""

from __future__ import annotations

import os
import re
import subprocess
import uuid
from pathlib import Path

import psycopg
import pytest

ROOT = Path(__file__).resolve().parents[1]


def _script_env() -> dict[str, str]:
    out = subprocess.run(["bash", "-c", f"source {ROOT}/scripts/env.sh && env -0"], check=True,
                         capture_output=True, text=True).stdout
    return dict(item.split("=", 1) for item in out.split("\0") if "=" in item)


@pytest.fixture(scope="session")
def stack_env() -> dict[str, str]:
    """Environment of scripts/env.sh, with the services started (idempotent)."""
    env = _script_env()
    subprocess.run([str(ROOT / "scripts" / "services.sh"), "start"], check=True, env={**os.environ, **env},
                   capture_output=True, text=True)
    return env


@pytest.fixture(scope="session")
def pg_server(stack_env) -> str:
    """URL of the server's maintenance database, as the superuser (CREATE/DROP DATABASE)."""
    return f"postgresql://postgres@127.0.0.1:{stack_env['PG_PORT']}/postgres"


# Created by scripts/services.sh: the application's owner role and the platform's own role.
APP_ROLE, PLATFORM_ROLE = "marketplace_app", "migration_platform"


def db_url(pg_server: str, name: str, role: str = PLATFORM_ROLE) -> str:
    """A database's URL as ``role``: by default the platform's, as the code runs in production."""
    return pg_server.replace("postgres@", f"{role}@", 1).rsplit("/", 1)[0] + "/" + name


def admin_url(pg_server: str, name: str) -> str:
    """The superuser's URL of a database, for what tests do that no migration tool may."""
    return db_url(pg_server, name, "postgres")


def as_admin(url: str) -> str:
    """The same database as the superuser."""
    return url.replace(f"{PLATFORM_ROLE}@", "postgres@", 1)


def prepare_target(pg_server: str, name: str) -> None:
    """sql/ applied as production does it: the application's files as its owner, the
    platform's as the platform's role, then the GRANTs the owner gives the platform."""
    from migration_assets.target.grants import grant_statements
    from migration_assets.target.schema import apply_schema

    with psycopg.connect(db_url(pg_server, name, APP_ROLE), autocommit=True) as owner, \
            psycopg.connect(db_url(pg_server, name), autocommit=True) as platform:
        apply_schema(owner, platform)
        for statement in grant_statements(PLATFORM_ROLE, name):
            owner.execute(statement)


@pytest.fixture(scope="session")
def schema_template(pg_server):
    """A database with sql/ applied, cloned by every test that needs a target."""
    # One template per session: concurrent sessions on the same server never share it.
    name = create_database(pg_server, f"ma_tpl_{os.getpid()}")
    # As scripts/services.sh does it (the DBA's way); test_adoption has the owner make it.
    with psycopg.connect(admin_url(pg_server, name), autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA migration AUTHORIZATION {PLATFORM_ROLE}")
    prepare_target(pg_server, name)
    yield name
    drop_databases(pg_server, name)


def create_database(pg_server: str, prefix: str, template: str | None = None) -> str:
    """A new target database owned by the application's role (a copy of ``template`` when
    given), which the platform's role may connect to and make temporary tables in, nothing
    more (its ``migration`` schema comes from the owner: ``schema``); returns its name."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(pg_server, autocommit=True) as c:
        c.execute(f"CREATE DATABASE {name} OWNER {APP_ROLE}" + (f" TEMPLATE {template}" if template else ""))
        c.execute(f"GRANT CONNECT, TEMPORARY ON DATABASE {name} TO {PLATFORM_ROLE}")  # no CREATE: see grants.py
    return name


def drop_databases(pg_server: str, *names: str) -> None:
    with psycopg.connect(pg_server, autocommit=True) as c:
        for name in names:
            c.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def make_target_db(pg_server, schema_template):
    """Factory of fresh target databases with the schema applied (dropped after the test);
    ``template`` clones another database instead (the migrated template)."""
    created = []

    def make(template: str | None = None) -> str:
        created.append(create_database(pg_server, "ma_t", template or schema_template))
        return db_url(pg_server, created[-1])

    yield make
    drop_databases(pg_server, *created)


@pytest.fixture
def target_url(request, make_target_db) -> str:
    """The test's target database: empty with the schema, or, for a test that asks for
    ``migrated``, a copy of the session's migrated template."""
    if "migrated" in request.fixturenames:
        return make_target_db(request.getfixturevalue("migrated_template"))
    return make_target_db()


@pytest.fixture
def target_conn(target_url):
    """The test's target as the superuser: to look at it, and to tamper with it as no
    migration tool may (disable a trigger, drop an index)."""
    with psycopg.connect(as_admin(target_url), autocommit=True) as c:
        yield c


@pytest.fixture
def platform_conn(target_url):
    """The test's target as the platform's role, for calling the platform's code directly."""
    with psycopg.connect(target_url, autocommit=True) as c:
        yield c


@pytest.fixture(scope="session")
def world():
    """The deterministic sample world the tests share (seed 7, scale 0.5)."""
    from migration_assets.generator import generate

    return generate(seed=7, scale=0.5)


@pytest.fixture(scope="session")
def mongo_client(stack_env):
    import pymongo

    client = pymongo.MongoClient(stack_env["MONGODB_URI"], serverSelectionTimeoutMS=5000)
    yield client
    client.close()


@pytest.fixture
def mongo_db_name(mongo_client):
    """A fresh Mongo database name (jongodb cannot drop; collections are emptied after)."""
    name = f"ma_{uuid.uuid4().hex[:10]}"
    yield name
    db = mongo_client[name]
    for coll in {"users", "categories", "requesttemplates", "purchaserequests", "selleroffers"} | set(_known_collections()):
        db[coll].delete_many({})


def _known_collections():
    from migration_assets.specs.registry import all_loaders

    return {l.collection for l in all_loaders()}


@pytest.fixture
def live_source_db(mongo_client, mongo_db_name, world):
    """The sample world written to a fresh Mongo database; returns its name."""
    from migration_assets.generator.writers import write_mongo

    write_mongo(mongo_client[mongo_db_name], world.docs, clear=False)
    return mongo_db_name


@pytest.fixture(scope="session")
def dump_dir(tmp_path_factory, world) -> Path:
    from migration_assets.generator.writers import write_dump

    d = tmp_path_factory.mktemp("dump")
    write_dump(d, "marketplace", world.docs)
    return d


@pytest.fixture
def migration_env(monkeypatch, stack_env, target_url):
    """Point the Definitions' EnvVars at a fresh target; returns a setter for the source."""

    def configure(*, mode: str = "live", database: str = "marketplace", dump: Path | None = None, url: str | None = None):
        monkeypatch.setenv("MONGODB_URI", stack_env["MONGODB_URI"])
        monkeypatch.setenv("MONGODB_DATABASE", database)
        monkeypatch.setenv("MIGRATION_SOURCE", mode)
        monkeypatch.setenv("MONGODUMP_DIR", str(dump or ""))
        monkeypatch.setenv("MIGRATION_PG_URL", url or target_url)
        monkeypatch.setenv("MIGRATION_PG_ALLOWED_HOSTS", "127.0.0.1,localhost")
        return url or target_url

    return configure


@pytest.fixture(scope="session")
def definitions():
    from migration_assets.definitions import defs

    return defs()


@pytest.fixture(scope="session")
def migrated_template(pg_server, schema_template, mongo_client, world, stack_env, definitions):
    """Every domain of the sample world migrated once per session, by ``migrate_all_tables``
    from a live Mongo database into a database that tests clone (PostgreSQL's CREATE
    DATABASE ... TEMPLATE); its source database is dropped afterwards."""
    from migration_assets.generator.writers import write_mongo
    from migration_assets_tests.helpers import failed_checks, run_job

    name = create_database(pg_server, "ma_migrated", schema_template)
    source = f"ma_src_{uuid.uuid4().hex[:8]}"
    write_mongo(mongo_client[source], world.docs, clear=False)
    with pytest.MonkeyPatch.context() as mp:
        for k, v in {"MONGODB_URI": stack_env["MONGODB_URI"], "MONGODB_DATABASE": source, "MIGRATION_SOURCE": "live",
                     "MONGODUMP_DIR": "", "MIGRATION_PG_URL": db_url(pg_server, name),
                     "MIGRATION_PG_ALLOWED_HOSTS": "127.0.0.1,localhost"}.items():
            mp.setenv(k, v)
        result = run_job(definitions, "migrate_all_tables")
    assert result.success, failed_checks(result)
    for coll in world.docs:
        mongo_client[source][coll].delete_many({})
    yield name
    drop_databases(pg_server, name)


@pytest.fixture
def migrated(migration_env, live_source_db, target_conn):
    """The target (``target_url``) as every domain's migration left it, with the same sample
    world in a fresh Mongo database as its source; the target connection."""
    migration_env(mode="live", database=live_source_db)
    return target_conn


@pytest.fixture(scope="module")
def celery_env() -> dict[str, str]:
    """Variables the Celery workers get on top of scripts/env.sh's: a step's resources
    (``dg.EnvVar``) resolve in the worker, so a module points them at its own target."""
    return {}


@pytest.fixture(scope="module")
def celery_workers(stack_env, celery_env):
    """Two Celery workers for dagster-celery's ``celery_executor`` (scripts/celery_workers.sh;
    the broker, Redis, is started with the other services by ``stack_env``): ``broker`` and
    ``backend`` URLs, ``run_config`` (the executor's run config for them) and ``worker_pids``,
    the pids steps run in (``os.getpid()`` inside an op): each worker's one pool process. A
    job's code must be importable by the workers (an installed module, or an absolute ``-f``
    file), and its run must be on an instance they can open (not ``DagsterInstance.ephemeral()``;
    the step reads the run's instance ref). The module's workers are started for it, with its
    ``celery_env`` (workers of this checkout already running are restarted), and stopped after."""
    env = {**os.environ, **stack_env, **celery_env}
    script = str(ROOT / "scripts" / "celery_workers.sh")
    subprocess.run([script, "stop"], env=env, capture_output=True, text=True, check=True)
    started = subprocess.run([script, "start", "2"], env=env, capture_output=True, text=True)
    assert started.returncode == 0, f"celery_workers.sh start 2 failed:\n{started.stdout}{started.stderr}"
    # "celery: worker1@host (pid MAIN, pool CHILD[,CHILD]) on BROKER", one line per worker.
    pools = re.findall(r"^celery: worker\d+@\S+ \(pid \d+, pool ([\d,]+)\)", started.stdout, re.M)
    assert len(pools) == 2, started.stdout
    broker, backend = stack_env["CELERY_BROKER_URL"], stack_env["CELERY_BACKEND_URL"]
    yield {
        "broker": broker,
        "backend": backend,
        "run_config": {"execution": {"config": {"broker": broker, "backend": backend}}},
        "worker_pids": sorted(int(p) for pool in pools for p in pool.split(",")),
    }
    subprocess.run([script, "stop"], env=env, capture_output=True, text=True, check=True)
