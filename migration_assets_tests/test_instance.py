"""Dagster's own storage on PostgreSQL: a run launched against the dagster-postgres-backed
instance (dagster.yaml) succeeds. This proves the sqlalchemy<2.1 pin: with SQLAlchemy 2.1
dagster-postgres fails on 'NOTIFY run_events, $1'."""

from __future__ import annotations

import shutil
import uuid

import dagster as dg
import psycopg
import pytest
import sqlalchemy

from migration_assets_tests.conftest import ROOT, admin_url
from migration_assets_tests.helpers import failed_checks


@pytest.mark.unit
def test_sqlalchemy_is_pinned_below_2_1():
    major, minor = (int(x) for x in sqlalchemy.__version__.split(".")[:2])
    assert (major, minor) < (2, 1)


@pytest.mark.integration
def test_run_against_postgres_backed_instance(tmp_path, monkeypatch, pg_server, migration_env, dump_dir, definitions):
    name = f"ma_dagster_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_server, autocommit=True) as c:
        c.execute(f"CREATE DATABASE {name}")
    try:
        home = tmp_path / "dagster_home"
        home.mkdir()
        shutil.copy(ROOT / "dagster.yaml", home / "dagster.yaml")
        monkeypatch.setenv("DAGSTER_HOME", str(home))
        monkeypatch.setenv("DAGSTER_PG_URL", admin_url(pg_server, name).replace("postgres@", "postgres:x@"))
        migration_env(mode="dump", dump=dump_dir)
        with dg.DagsterInstance.get() as instance:
            assert type(instance.run_storage).__name__ == "PostgresRunStorage"
            assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
            result = definitions.resolve_job_def("migrate_auth").execute_in_process(
                instance=instance, partition_key="auth", raise_on_error=False)
            assert result.success, failed_checks(result)
            run = instance.get_run_by_id(result.run_id)
            assert run.status == dg.DagsterRunStatus.SUCCESS
            assert instance.get_latest_materialization_event(dg.AssetKey(["public", "users"])) is not None
        with psycopg.connect(admin_url(pg_server, name)) as c:
            assert c.execute("SELECT count(*) FROM runs").fetchone()[0] == 1
            assert c.execute("SELECT count(*) FROM event_logs").fetchone()[0] > 10
    finally:
        with psycopg.connect(pg_server, autocommit=True) as c:
            c.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
