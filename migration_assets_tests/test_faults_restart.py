"""PostgreSQL restarted in the middle of a real Dagster run: the load fails with a clear
message naming the endpoint and the checkpoint, and a rerun converges (resumes there, zero
difference from the source, no duplicates).

The restarted server is a private PostgreSQL 15 started for this module (its own data
directory and port), never the shared one other tests use.
"""

from __future__ import annotations

import re

import psycopg
import pytest

from migration_assets.generator import generate
from migration_assets.generator.writers import write_dump
from migration_assets.source.dump import DumpSource
from migration_assets.specs.registry import loader_for_table
from migration_assets.target.bookkeeping import read_checkpoint
from migration_assets.target.schema import apply_schema
from migration_assets.verify.checksums import verify_loader
from migration_assets_tests.fixtures import dagster_proc as dp
from migration_assets_tests.fixtures.private_pg import PrivatePostgres

pytestmark = [pytest.mark.integration, pytest.mark.process]

CORE = [loader_for_table(t) for t in ("users", "categories", "request_templates", "purchase_requests", "seller_offers")]


@pytest.fixture(scope="module")
def private_pg():
    pg = PrivatePostgres()
    pg.start()
    yield pg
    pg.destroy()


def connect_retrying(url: str) -> psycopg.Connection:
    return dp.wait_until(lambda: _try_connect(url), timeout=60, interval=0.2, what="PostgreSQL to accept connections")


def _try_connect(url: str):
    try:
        return psycopg.connect(url, autocommit=True, connect_timeout=2)
    except psycopg.OperationalError:
        return None


def test_postgres_restart_mid_run_fails_clearly_and_rerun_converges(tmp_path, private_pg):
    world = generate(seed=13, scale=8)
    dump = tmp_path / "dump"
    write_dump(dump, "marketplace", world.docs)
    with psycopg.connect(private_pg.url(), autocommit=True) as c:
        c.execute("CREATE DATABASE migration")
    url = private_pg.url("migration")
    with psycopg.connect(url, autocommit=True) as c:
        apply_schema(c)

    env = {"MIGRATION_SOURCE": "dump", "MONGODUMP_DIR": str(dump), "MONGODB_DATABASE": "marketplace",
           "MONGODB_URI": "mongodb://127.0.0.1:1/?directConnection=true",
           "MIGRATION_PG_URL": url, "MIGRATION_PG_ALLOWED_HOSTS": "127.0.0.1"}
    home = dp.make_home(tmp_path / "dagster_home")
    select = dp.loader_selection(CORE)
    config = dp.load_config(CORE, batch_size=10)
    total = len(world.docs["selleroffers"])

    run1 = dp.launch(home, env, select, config, name="run1")
    watch = psycopg.connect(url, autocommit=True)

    def mid():
        assert run1.alive(), run1.output()[-3000:]
        cp = read_checkpoint(watch, "seller_offers")  # a ranged loader: its ranges' sums
        return cp and cp.status == "running" and cp.docs_read >= 500

    dp.wait_until(mid, timeout=300, interval=0.01, what="seller_offers mid-load")
    # The load's batches commit without waiting for the disk (bookkeeping.load_session): a crash
    # may lose the last ones, each with its checkpoint; the rerun must resume exactly all the same.
    private_pg.restart("immediate")  # a crash: no flush, every session cut, WAL replayed at start
    assert run1.wait(300) != 0

    events = dp.run_events(home)
    (run_id,) = events
    failures = "\n".join(dp.step_failures(events[run_id]))
    assert re.search(rf"seller_offers range 0 \[start, end\) of 1: lost the connection to PostgreSQL at "
                     rf"127\.0\.0\.1:{private_pg.port}/migration after \d+ documents", failures), failures[-3000:]
    assert "run the load again to resume from the checkpoint PostgreSQL kept" in failures
    # what the whole load had committed, read over a new connection once PostgreSQL was back
    said = re.search(r"Committed so far across the 1 range\(s\): (\d+) documents; landed: none\.", failures)
    assert said, failures[-3000:]

    conn = connect_retrying(url)
    cp = read_checkpoint(conn, "seller_offers")
    status, position, docs_read, rows_written = cp.status, cp.position, cp.docs_read, cp.rows_written
    committed = conn.execute("SELECT count(*) FROM public.seller_offers").fetchone()[0]
    assert status == "running" and 500 <= docs_read < total and int(said.group(1)) == docs_read
    assert committed == rows_written["seller_offers"] == docs_read  # the checkpoint matches its rows
    # The message names the last batch this process saw committed (the checkpoint's, unless
    # the restart cut the very reply to a COMMIT).
    assert re.search(r"Every batch up to position \d+ was committed with its checkpoint \(a server crash may "
                     r"have lost the last ones", failures)

    run2 = dp.launch(home, env, select, config, name="run2")
    assert run2.wait(600) == 0, run2.output()[-5000:]
    events = dp.run_events(home)
    rerun = next(r for r in events if r != run_id)
    mats = dp.materializations(events[rerun])
    assert mats["public/seller_offers"]["resumed_from"] == position
    assert mats["public/seller_offers"]["rows_inserted_or_changed"] == total - committed
    checks = dp.check_results(events[rerun])
    assert checks and all(checks.values()), [k for k, ok in checks.items() if not ok]

    source = DumpSource(dump, "marketplace")
    compared = 0
    for loader in CORE:
        v = verify_loader(loader, source, conn)
        assert v.ok and v.quarantined_docs == 0, loader.name
        compared += sum(tv.source.count for tv in v.tables.values())
    dupes = conn.execute("SELECT count(*) FROM (SELECT legacy_object_id FROM seller_offers GROUP BY 1 "
                         "HAVING count(*) > 1) d").fetchone()[0]
    assert dupes == 0
    assert conn.execute("SELECT count(*) FROM seller_offers").fetchone()[0] == total
    print(f"\nPostgreSQL restart at {docs_read}/{total} seller_offers: run failed clearly; rerun resumed at "
          f"{position}, wrote {total - committed} rows; {compared} rows compared, 0 differences, 0 duplicates")
    conn.close()
    watch.close()
