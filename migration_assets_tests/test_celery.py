"""A ranged load on a real distributed engine: dagster-celery's ``celery_executor`` with a
Redis broker and two Celery worker processes (scripts/celery_workers.sh).

The notifications table loads in 3 ranges through the workers; the range steps ran in the
workers' pool processes (2 of them, so both took ranges), and the result equals the same
documents loaded in 3 ranges by the multiprocess executor."""

from __future__ import annotations

import os

import dagster as dg
import psycopg
import pytest

from migration_assets.generator.writers import write_dump
from migration_assets.source.dump import DumpSource
from migration_assets.verify.checksums import verify_loader
from migration_assets_tests.conftest import create_database, db_url, drop_databases
from migration_assets_tests.fixtures.ranged_run import notifications_celery_job, run_config, run_in_own_process
from migration_assets_tests.test_ranged import NOTIFICATIONS, notification_world, snapshot

pytestmark = [pytest.mark.integration, pytest.mark.process]


@pytest.fixture(scope="module")
def celery_dump(tmp_path_factory):
    d = tmp_path_factory.mktemp("celery_dump")
    write_dump(d, "marketplace", notification_world())
    return d


@pytest.fixture(scope="module")
def celery_target(pg_server, schema_template):
    name = create_database(pg_server, "ma_celery", schema_template)
    yield db_url(pg_server, name)
    drop_databases(pg_server, name)


def source_env(dump, url: str) -> dict[str, str]:
    return {"MIGRATION_SOURCE": "dump", "MONGODUMP_DIR": str(dump), "MONGODB_DATABASE": "marketplace",
            "MIGRATION_PG_URL": url, "MIGRATION_PG_ALLOWED_HOSTS": "127.0.0.1,localhost"}


@pytest.fixture(scope="module")
def celery_env(celery_dump, celery_target):
    """What the workers' steps read their resources from (dg.EnvVar resolves in the worker)."""
    return source_env(celery_dump, celery_target)


def load_users(definitions, instance) -> None:
    users = definitions.resolve_job_def("migrate_all_tables").get_subset(
        asset_selection={dg.AssetKey(["public", "users"]), dg.AssetKey(["public", "user_passkeys"])})
    assert users.execute_in_process(instance=instance, raise_on_error=False).success


def test_ranges_run_in_celery_workers_and_equal_the_multiprocess_load(
        celery_workers, celery_env, celery_dump, celery_target, make_target_db, monkeypatch, stack_env, definitions,
        tmp_path):
    for k, v in {**stack_env, **celery_env}.items():
        monkeypatch.setenv(k, v)
    with dg.DagsterInstance.get() as instance:  # the workers' instance (DAGSTER_HOME of scripts/env.sh)
        load_users(definitions, instance)
        config = run_config("3", 500)
        config["execution"] = celery_workers["run_config"]["execution"]
        result = dg.execute_job(dg.reconstructable(notifications_celery_job), instance=instance, run_config=config)
        assert result.success
        logs = [e.message for e in instance.all_logs(result.run_id) if e.message]
    pids = {int(m.rsplit("in process ", 1)[1]) for m in logs if " in process " in m}
    assert sum("landed:" in m for m in logs) == 3
    assert pids <= set(celery_workers["worker_pids"]) and len(pids) == 2, (pids, celery_workers)
    with psycopg.connect(celery_target, autocommit=True) as conn:
        assert verify_loader(NOTIFICATIONS, DumpSource(celery_dump, "marketplace"), conn).ok

    other = make_target_db()
    for k, v in source_env(celery_dump, other).items():
        monkeypatch.setenv(k, v)
    with dg.instance_for_test() as instance:
        load_users(definitions, instance)
    run_in_own_process(dict(os.environ), tmp_path / "home", "3", 500)
    assert snapshot(celery_target) == snapshot(other)
