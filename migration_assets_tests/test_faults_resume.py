"""SIGKILL a real Dagster run mid-load, twice, and start it again: the final state equals the
source (row counts, checksums and a row-level diff), holds no duplicate, and each rerun
resumed from the killed run's checkpoint instead of redoing the committed batches. The checks
after a resumed load add up the source digests its batches committed, the killed run's too.

The runs are ``dagster asset materialize`` processes (own DAGSTER_HOME, SQLite storage)
over the marketplace core, reading a mongodump at scale 8 (5.2k documents, 10k rows) in
batches of 10, so a load is always mid-way when the kill lands.
"""

from __future__ import annotations

import bson
import psycopg
import pytest

from migration_assets.generator import generate
from migration_assets.generator.writers import write_dump
from migration_assets.load.report import LoadOptions
from migration_assets.load.run import run_loader
from migration_assets.source.dump import DumpSource
from migration_assets.specs.registry import loader_for_table
from migration_assets.target import bookkeeping as bk
from migration_assets.target import guard as tg
from migration_assets.verify.checksums import verify_loader
from migration_assets.verify.diff import diff_rows
from migration_assets_tests.fixtures import dagster_proc as dp

pytestmark = [pytest.mark.integration, pytest.mark.process]

CORE = [loader_for_table(t) for t in ("users", "categories", "request_templates", "purchase_requests", "seller_offers")]
BATCH = 10


@pytest.fixture(scope="module")
def scale8_dump(tmp_path_factory):
    world = generate(seed=11, scale=8)
    d = tmp_path_factory.mktemp("dump8")
    write_dump(d, "marketplace", world.docs)
    return d, {c: len(v) for c, v in world.docs.items()}


def checkpoint(conn, loader: str):
    cp = bk.read_checkpoint(conn, loader)  # a ranged loader's: its ranges' sums
    return (cp.status, cp.position, cp.docs_read, cp.docs_quarantined, cp.rows_written) if cp else None


def counts(conn, loader) -> dict[str, int]:
    return {t: conn.execute(f"SELECT count(*) FROM public.{t}").fetchone()[0] for t in loader.table_names}


def kill_mid_load(run: dp.DagsterRun, conn, loader, after_docs: int, total: int) -> dict:
    """SIGKILL ``run`` once ``loader`` has committed ``after_docs`` documents; returns what
    PostgreSQL holds afterwards (committed rows and the checkpoint)."""
    def mid():
        assert run.alive(), f"the run ended before the kill point:\n{run.output()[-3000:]}"
        cp = checkpoint(conn, loader.name)
        return cp if cp and cp[0] == "running" and cp[2] >= after_docs else None

    dp.wait_until(mid, timeout=300, interval=0.01, what=f"{loader.name} mid-load")
    run.kill()
    # The whole process group is gone.
    dp.wait_until(lambda: not run.live_group_members(), timeout=10, what="the run's processes to die")
    # The killed backends end when PostgreSQL sees their sockets close.
    dp.wait_until(lambda: conn.execute(
        "SELECT count(*) = 0 FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() "
        "AND application_name LIKE 'load_%'").fetchone()[0], timeout=30, what="killed backends to end")
    status, position, docs_read, docs_quarantined, rows_written = checkpoint(conn, loader.name)
    held = counts(conn, loader)
    assert status == "running" and position is not None and after_docs <= docs_read < total
    # The checkpoint was committed with exactly the rows it covers.
    assert held == {t: rows_written.get(t, 0) for t in loader.table_names}
    assert docs_quarantined == 0
    return {"position": position, "docs_read": docs_read, "rows": held}


def test_sigkill_mid_load_then_resume(tmp_path, scale8_dump, make_target_db):
    dump, sizes = scale8_dump
    url = make_target_db()
    env = {"MIGRATION_SOURCE": "dump", "MONGODUMP_DIR": str(dump), "MONGODB_DATABASE": "marketplace",
           "MONGODB_URI": "mongodb://127.0.0.1:1/?directConnection=true",  # unused in dump mode
           "MIGRATION_PG_URL": url, "MIGRATION_PG_ALLOWED_HOSTS": "127.0.0.1"}
    home = dp.make_home(tmp_path / "dagster_home")
    select = dp.loader_selection(CORE)
    config = dp.load_config(CORE, batch_size=BATCH, progress_interval_s=1.0)
    pr, offers = loader_for_table("purchase_requests"), loader_for_table("seller_offers")
    conn = psycopg.connect(url, autocommit=True)

    # Run 1: killed while purchase_requests (8 tables, one transaction per batch) is loading.
    first = dp.launch(home, env, select, config, name="run1")
    killed_pr = kill_mid_load(first, conn, pr, after_docs=200, total=sizes["purchaserequests"])

    # Run 2: resumes purchase_requests, then is killed while seller_offers is loading.
    second = dp.launch(home, env, select, config, name="run2")
    killed_offers = kill_mid_load(second, conn, offers, after_docs=600, total=sizes["selleroffers"])

    # Run 3: completes.
    third = dp.launch(home, env, select, config, name="run3")
    assert third.wait(600) == 0, third.output()[-5000:]

    events = dp.run_events(home)
    run_ids = sorted(events, key=lambda r: events[r][0].timestamp)
    assert len(run_ids) == 3
    mats2, mats3 = dp.materializations(events[run_ids[1]]), dp.materializations(events[run_ids[2]])

    final = {l.name: counts(conn, l) for l in CORE}
    # Resumed, not redone: the rerun started at the killed run's checkpoint and wrote only
    # the rows that checkpoint did not cover.
    for mats, loader, killed in ((mats2, pr, killed_pr), (mats3, offers, killed_offers)):
        for t in loader.table_names:
            meta = mats[f"public/{t}"]
            assert meta["resumed_from"] == killed["position"], t
            assert meta["rows_inserted_or_changed"] == final[loader.name][t] - killed["rows"][t], t
        root = mats[f"public/{loader.root.table}"]
        assert root["documents_read"] == sizes[loader.collection]
    # Loaders that had completed before a kill reload as a new pass that changes nothing.
    for t in loader_for_table("users").table_names:
        assert mats3[f"public/{t}"]["rows_inserted_or_changed"] == 0

    checks = dp.check_results(events[run_ids[2]])
    assert checks and all(checks.values()), [k for k, ok in checks.items() if not ok]
    # The checks after each load took the source side from that load's own batches, those the
    # killed run committed included (one read of the source), and passed.
    meta = dp.check_metadata(events[run_ids[2]])
    for loader in CORE:
        for t in loader.table_names:
            assert meta[(f"public/{t}", "checksum_parity")]["source_read"] == "by this run's load", t

    # Zero difference from the source, counted and row by row; no duplicates.
    source = DumpSource(dump, "marketplace")
    compared = 0
    for loader in CORE:
        v = verify_loader(loader, source, conn)
        assert v.ok, {t: (tv.source.hexdigest, tv.target.hexdigest) for t, tv in v.tables.items()}
        assert v.quarantined_docs == 0
        for t in loader.table_names:
            assert v.tables[t].source.count == final[loader.name][t]
            compared += v.tables[t].source.count
            assert diff_rows(loader, t, source, conn).total == 0, t
            if "legacy_object_id" in loader.table(t).column_names:
                dupes = conn.execute(f"SELECT count(*) FROM (SELECT legacy_object_id FROM public.{t} "
                                     "GROUP BY 1 HAVING count(*) > 1) d").fetchone()[0]
                assert dupes == 0, t
        assert checkpoint(conn, loader.name)[0] == "completed"
    assert compared == sum(sum(c.values()) for c in final.values()) > 9_000
    for name, mats, loader, killed in (("run 2", mats2, pr, killed_pr), ("run 3", mats3, offers, killed_offers)):
        kept, written = sum(killed["rows"].values()), sum(
            mats[f"public/{t}"]["rows_inserted_or_changed"] for t in loader.table_names)
        print(f"\n{loader.name}: SIGKILL at {killed['docs_read']}/{sizes[loader.collection]} documents with "
              f"{kept} rows committed; {name} resumed at byte {killed['position']} and wrote {written} rows "
              f"(= {sum(final[loader.name].values())} - {kept})")
    print(f"after 2 SIGKILLs: {compared} rows compared, 0 differences, 0 duplicates")
    conn.close()


class Interrupted(Exception):
    """Stands in for a crash right after a batch committed."""


def test_resumed_dump_keeps_spotting_duplicates_exactly(tmp_path, world, target_url):
    """A resumed dump load re-learns the _ids it already passed, up to the checkpoint's byte
    offset exactly: the later duplicate is still caught, and no document after the offset is
    mistaken for one."""
    users = world.docs["users"]
    dup = dict(users[2], email="another-email@example.com")  # same _id, later in the file
    write_dump(tmp_path, "marketplace", {"users": users}, raw={"users": [bson.encode(dup)]})
    source = DumpSource(tmp_path, "marketplace")
    loader = loader_for_table("users")

    def crash_after_two_batches(report, total):
        if report.batches == 2:
            raise Interrupted

    with tg.connect(target_url, ["127.0.0.1"]) as conn:
        with pytest.raises(Interrupted):
            run_loader(loader, source, conn, LoadOptions(batch_size=5), progress=crash_after_two_batches)
        cp = bk.read_checkpoint(conn, "users")
        assert cp.status == "running" and cp.docs_read == 10
        # its batches committed without waiting for the disk (test_faults_restart crashes the server)
        assert conn.execute("SHOW synchronous_commit").fetchone()[0] == "off"
        report = run_loader(loader, source, conn, LoadOptions(batch_size=5))
        assert report.resumed_from == cp.position
        assert (report.docs_read, report.docs_loaded, report.docs_quarantined) == (len(users) + 1, len(users) - 10, 1)
        assert report.rows_changed["users"] == len(users) - 10
        assert conn.execute("SELECT legacy_id, reason_code FROM migration.quarantine").fetchall() == \
            [(str(users[2]["_id"]), "duplicate_id")]
        assert conn.execute("SELECT count(*) FROM users").fetchone()[0] == len(users)
        assert verify_loader(loader, source, conn).ok
