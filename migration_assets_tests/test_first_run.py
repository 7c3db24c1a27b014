"""A newcomer's first run: ``migration-assets migrate --domain all`` against a Dagster storage
database nobody has used yet (the project's own dagster.yaml: PostgreSQL run and event
storage, pools at run granularity, the monitored launcher), every domain, every step in a
process of its own. The README's main command failed exactly here once (a pool's first
claim collided with the executor's own on fresh storage); warm fixtures never showed it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import psycopg
import pytest

from migration_assets.specs.registry import DOMAINS, all_loaders
from migration_assets_tests.cli_helpers import make_env
from migration_assets_tests.conftest import ROOT, admin_url, create_database, drop_databases

pytestmark = [pytest.mark.integration, pytest.mark.process]

BIN = Path(sys.executable).parent


def test_first_migrate_of_every_domain_on_a_brand_new_instance(tmp_path, pg_server, make_target_db, dump_dir,
                                                                 stack_env):
    storage = create_database(pg_server, "ma_fresh_dagster")
    try:
        home = tmp_path / "dagster_home"
        home.mkdir()
        shutil.copy(ROOT / "dagster.yaml", home / "dagster.yaml")
        storage_url = admin_url(pg_server, storage).replace("postgres@", "postgres:x@")
        env = {**os.environ, **make_env(stack_env, make_target_db(), "marketplace", home),
               "MIGRATION_SOURCE": "dump", "MONGODUMP_DIR": str(dump_dir), "DAGSTER_PG_URL": storage_url}
        with psycopg.connect(admin_url(pg_server, storage)) as c:  # nothing there yet, not even Dagster's tables
            assert c.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone()[0] == 0
        done = subprocess.run([str(BIN / "migration-assets"), "migrate", "--domain", "all", "--executor",
                               "multiprocess"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
        assert "Traceback" not in done.stdout + done.stderr
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("DAGSTER_PG_URL", storage_url)
            with dg.DagsterInstance.from_config(str(home)) as inst:
                runs = inst.get_runs()
                assert {r.job_name for r in runs} == {f"migrate_{d}" for d in DOMAINS if any(
                    l.domain == d for l in all_loaders())}
                assert all(r.status == dg.DagsterRunStatus.SUCCESS for r in runs)
                # each run held its tables' pools (run granularity), recorded when it was created
                marketplace = next(r for r in runs if r.job_name == "migrate_marketplace")
                assert "table_purchase_requests" in marketplace.run_op_concurrency.all_pools
        for d in DOMAINS:
            assert f"migrate_{d}" in done.stdout
        assert "FAILED" not in done.stdout
    finally:
        drop_databases(pg_server, storage)
