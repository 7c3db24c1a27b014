"""Ranged loads: one collection in ``_id`` ranges, one Dagster step each.

* the range planner's edge cases, on both sources (empty, fewer documents than ranges,
  mixed ``_id`` types);
* notifications loaded in 3 ranges by the multiprocess executor equal the same documents
  loaded in 1 range: rows, uuids, quarantine, id_map and both sides' checksums (the dump
  repeats an ``_id`` across ranges, and holds documents that must be quarantined);
* a range step SIGKILLed in a real run resumes alone in the next run (the other ranges keep
  what they committed), with zero difference and no duplicates;
* a second run of the same loader, started while the first one's ranges load, waits for the
  lock and gives up naming it; it writes nothing.
"""

from __future__ import annotations

import copy
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import psutil
import psycopg
import pytest
from bson import ObjectId

from migration_assets.generator import generate
from migration_assets.generator.writers import write_dump
from migration_assets.source.dump import DumpSource
from migration_assets.source.live import LiveSource
from migration_assets.specs.registry import loader_for_table
from migration_assets.verify.checksums import verify_loader
from migration_assets_tests.fixtures import dagster_proc as dp
from migration_assets_tests.fixtures.ranged_run import notifications_job, run_config, run_in_own_process
from migration_assets_tests.helpers import table_rows

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[1]

NOTIFICATIONS = loader_for_table("notifications")
USERS = loader_for_table("users")


def notification_world():
    """Users and notifications; one notification repeated later in the file (its first
    occurrence counts) and two that must be quarantined."""
    world = generate(seed=31, scale=2)
    notes = list(world.docs["notifications"])
    twin = copy.deepcopy(notes[3])
    twin["title"] = "the later copy, which must not win"
    bad = copy.deepcopy(notes[10])
    bad["_id"] = ObjectId()
    del bad["title"]  # required
    orphan = copy.deepcopy(notes[11])
    orphan["_id"] = ObjectId()
    orphan["user"] = ObjectId()  # no such user
    notes += [bad, orphan, twin]
    return {"users": world.docs["users"], "notifications": notes}


# --- the planner ------------------------------------------------------------------------


def test_dump_planner_edges(tmp_path):
    docs = [{"_id": ObjectId(), "n": i} for i in range(5)]
    write_dump(tmp_path, "db", {"empty": [], "few": docs[:2], "mixed": [{"_id": "a-string"}, *docs, {"_id": 7}]})
    src = DumpSource(tmp_path, "db")
    empty = src.plan_spans("empty", 4)
    assert [(s.start, s.end) for s in empty.spans] == [(None, None)] and "empty" in empty.note
    few = src.plan_spans("few", 4)
    assert len(few.spans) == 2 and "2 document(s) make 2 range(s) instead of 4" in few.note
    mixed = src.plan_spans("mixed", 3)  # record offsets: any _id type, in file order
    assert len(mixed.spans) == 3
    got = [src.iter_span("mixed", s) for s in mixed.spans]
    ids = [b for g in got for batch in g for b in batch.docs]
    assert len(ids) == 7  # every document exactly once
    assert sum(s.docs for s in mixed.spans) == 7


def test_live_planner_edges(mongo_client, mongo_db_name):
    db = mongo_client[mongo_db_name]
    db["few"].insert_many([{"_id": ObjectId()} for _ in range(2)])
    db["many"].insert_many([{"_id": ObjectId()} for _ in range(300)])
    db["mixed"].insert_many([{"_id": ObjectId()} for _ in range(20)] + [{"_id": "legacy-7"}])
    src = LiveSource(mongo_client.address and f"mongodb://{mongo_client.address[0]}:{mongo_client.address[1]}/"
                     "?directConnection=true", mongo_db_name)
    try:
        empty = src.plan_spans("empty", 4)
        assert empty.whole and "empty" in empty.note
        few = src.plan_spans("few", 4)
        assert 1 <= len(few.spans) <= 2
        many = src.plan_spans("many", 3)
        assert len(many.spans) == 3
        seen = [d for s in many.spans for b in src.iter_span("many", s) for d in b.docs]
        assert len(seen) == 300 and len(set(seen)) == 300  # covered exactly once
        mixed = src.plan_spans("mixed", 3)
        assert mixed.whole and "not an ObjectId" in mixed.note
        assert sum(len(b.docs) for b in src.iter_span("mixed", mixed.spans[0])) == 21
    finally:
        src.close()
        for c in ("few", "many", "mixed"):
            db[c].delete_many({})


# --- 3 ranges == 1 range ----------------------------------------------------------------


def snapshot(url: str) -> dict:
    with psycopg.connect(url.replace("migration_platform@", "postgres@", 1)) as c:
        return {
            "rows": table_rows(c, "notifications"),
            "id_map": sorted(c.execute("SELECT legacy_id, new_id FROM public.id_map WHERE entity = 'notifications'")
                             .fetchall()),
            "quarantine": sorted(c.execute("SELECT legacy_id, reason_code, raw_sha256 FROM migration.quarantine "
                                           "WHERE loader = 'notifications' AND resolved_at IS NULL").fetchall()),
            "deferred": sorted(c.execute("SELECT target_table, row_id::text, ref_legacy_id FROM migration.deferred_refs "
                                         "WHERE target_table = 'notifications'").fetchall()),
        }


def test_three_ranges_equal_one(tmp_path, make_target_db, migration_env, pg_server, definitions):
    docs = notification_world()
    write_dump(tmp_path, "marketplace", docs)
    source = DumpSource(tmp_path, "marketplace")
    results = {}
    with dg.instance_for_test() as instance:
        for ranges, multiprocess in ((1, False), (3, True)):
            url = make_target_db()
            migration_env(mode="dump", dump=tmp_path, url=url)
            users = definitions.resolve_job_def("migrate_all_tables").get_subset(
                asset_selection={dg.AssetKey(["public", "users"]), dg.AssetKey(["public", "user_passkeys"])})
            assert users.execute_in_process(instance=instance, raise_on_error=False).success
            if multiprocess:
                home = tmp_path / f"home_{ranges}"
                run_id = run_in_own_process(dict(os.environ), home, str(ranges), 500)
                with dg.DagsterInstance.from_config(str(home)) as own:
                    events = own.all_logs(run_id)
            else:
                config = run_config(str(ranges), 500)
                del config["execution"]
                result = notifications_job().execute_in_process(instance=instance, run_config=config,
                                                                raise_on_error=False)
                assert result.success
                events = instance.all_logs(result.run_id)
            logs = [e.message for e in events if e.message]
            # the checks step added up what the range steps kept of their reads (no second read)
            parity = dp.check_metadata(events)[("public/notifications", "checksum_parity")]
            assert parity["source_read"] == "by this run's load", parity
            assert sum("landed:" in m for m in logs) == ranges
            if multiprocess:  # side by side: each range step in a process of its own
                pids = {m.rsplit("in process ", 1)[1] for m in logs if " in process " in m}
                assert len(pids) == 3
                # progress per range, and the table's progress and ETA over every range
                assert any(m.startswith("notifications range ") and "docs/s" in m for m in logs)
                assert any(m.startswith("notifications: ") and "ETA" in m for m in logs)
            with psycopg.connect(url, autocommit=True) as conn:
                outcome = verify_loader(NOTIFICATIONS, source, conn)
                assert outcome.ok, outcome
            results[ranges] = snapshot(url)
    one, three = results[1], results[3]
    assert len(one["rows"]) == len(docs["notifications"]) - 3  # the twin, the bad one and the orphan
    assert len(one["quarantine"]) == 3
    assert one == three
    twin_title = [r for r in three["rows"] if r[1] == str(docs["notifications"][3]["_id"])]
    assert twin_title and "must not win" not in repr(twin_title)


# --- a killed range; two runs ------------------------------------------------------------------


@pytest.fixture(scope="module")
def big_dump(tmp_path_factory):
    """25,000 notifications of 600 users, as a mongodump."""
    world = generate(seed=23, scale=10)
    d = tmp_path_factory.mktemp("ranged_dump")
    write_dump(d, "marketplace", {"users": world.docs["users"], "notifications": world.docs["notifications"]})
    return d, len(world.docs["notifications"])


@pytest.fixture
def run_env(big_dump, make_target_db, migration_env, tmp_path, definitions):
    """A target with its users loaded, and the environment of a run process against it."""
    url = make_target_db()
    migration_env(mode="dump", dump=big_dump[0], url=url)
    users = definitions.resolve_job_def("migrate_all_tables").get_subset(
        asset_selection={dg.AssetKey(["public", "users"]), dg.AssetKey(["public", "user_passkeys"])})
    assert users.execute_in_process(instance=dg.DagsterInstance.ephemeral(), raise_on_error=False).success
    home = tmp_path / "dagster_home"
    home.mkdir()
    # the project's pools: one run at a time per table_<loader>
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\nconcurrency:\n  pools:\n    granularity: run\n"
                                       "    default_limit: 1\n")
    return url, {**os.environ, "DAGSTER_HOME": str(home)}


def start_run(env: dict, ranges: str, batch: int, lock_timeout: float = 600.0) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "migration_assets_tests.fixtures.ranged_run", ranges, str(batch),
                             str(lock_timeout)], env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)


def ranges_of(conn) -> dict[int, tuple]:
    return {r[0]: r[1:] for r in conn.execute(
        "SELECT range_no, status, docs_read, updated_at, planned_docs FROM migration.load_ranges "
        "WHERE loader = 'notifications'").fetchall()}


def range_pid(conn, no: int) -> int | None:
    """The process of a range step: its connection's client port, found among this host's sockets."""
    row = conn.execute("SELECT client_port FROM pg_stat_activity WHERE application_name LIKE %s",
                       [f"load_notifications run % range {no}"]).fetchone()
    if row is None:
        return None
    for c in psutil.net_connections(kind="tcp"):
        if c.laddr and c.laddr.port == row[0] and c.pid:
            return c.pid
    return None


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = predicate()
        if got:
            return got
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_killed_range_resumes_alone(run_env, big_dump):
    url, env = run_env
    admin = url.replace("migration_platform@", "postgres@", 1)
    proc = start_run(env, "3", 100)
    with psycopg.connect(admin, autocommit=True) as conn:
        def victim():
            r = ranges_of(conn).get(1)
            return r is not None and r[0] == "running" and 1000 <= r[1] <= r[3] // 2 and range_pid(conn, 1)
        pid = wait_for(victim, 120, "range 1 to be mid-load")
        os.kill(pid, signal.SIGKILL)
        out, _ = proc.communicate(timeout=180)
        assert proc.returncode == 1, out
        before = ranges_of(conn)
        assert before[1][0] == "running" and 0 < before[1][1] < before[1][3]
        landed = {no: r for no, r in before.items() if r[0] == "completed"}
        assert set(landed) == {0, 2}, before  # the other ranges went on and landed

        rerun = start_run(env, "3", 100)
        out, _ = rerun.communicate(timeout=300)
        assert rerun.returncode == 0, out
        after = ranges_of(conn)
        assert all(r[0] == "completed" for r in after.values())
        assert {no: after[no] for no in landed} == landed  # untouched: only range 1 ran again
        count, distinct = conn.execute("SELECT count(*), count(DISTINCT legacy_object_id) FROM public.notifications"
                                       ).fetchone()
        assert count == distinct == big_dump[1]
    with psycopg.connect(url, autocommit=True) as conn:
        outcome = verify_loader(NOTIFICATIONS, DumpSource(big_dump[0], "marketplace"), conn)
        assert outcome.ok, outcome


def test_two_runs_of_one_loader_exclude_each_other(run_env, big_dump):
    url, env = run_env
    admin = url.replace("migration_platform@", "postgres@", 1)
    first = start_run(env, "2", 100)
    with psycopg.connect(admin, autocommit=True) as conn:
        wait_for(lambda: any(r[0] == "running" and r[1] > 0 for r in ranges_of(conn).values()), 120,
                 "the first run's ranges to load")
        owner = conn.execute("SELECT run_id, generation FROM migration.load_checkpoints "
                             "WHERE loader = 'notifications'").fetchone()
        second = start_run(env, "2", 100, lock_timeout=3)
        out2, _ = second.communicate(timeout=180)
        assert second.returncode == 1
        # started beside the queue (execute_job), so no pool held it back: PostgreSQL did
        assert "notifications: waiting for the load lock" in out2, out2[-3000:]
        assert "gave up after 3s waiting for the load lock of loader 'notifications'" in out2, out2[-3000:]
        out1, _ = first.communicate(timeout=300)
        assert first.returncode == 0, out1[-3000:]
        # the second run never became the owner, and the first one's generation completed
        cp = conn.execute("SELECT run_id, generation, status FROM migration.load_checkpoints "
                          "WHERE loader = 'notifications'").fetchone()
        assert cp == (*owner, "completed")
    with psycopg.connect(url, autocommit=True) as conn:
        outcome = verify_loader(NOTIFICATIONS, DumpSource(big_dump[0], "marketplace"), conn)
        assert outcome.ok, outcome
