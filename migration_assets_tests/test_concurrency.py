"""Two runs of the same table at once cannot both write.

Dagster's ``table_<loader>`` pools serialize the runs of one instance; PostgreSQL covers
runs that do not share one (two deployments, the CLI next to the UI): the loader's advisory
lock while a step writes, and the load's lease (``target/lease.py``) between a ranged load's
steps, where no step holds the lock. Here three real Dagster processes with separate
DAGSTER_HOMEs load ``users`` into one target: A is frozen (SIGSTOP) mid-load while holding
the lock; B waits with a clear log line and writes nothing until A is done, and never takes
A's load over in the gap before A's finish step (A stays alive); C gives up after its
``lock_timeout_s`` with an error naming the holder.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import psycopg
import pytest

from migration_assets.generator import generate
from migration_assets.generator.writers import write_dump
from migration_assets.source.dump import DumpSource
from migration_assets.specs.registry import loader_for_table
from migration_assets.target import guard as tg
from migration_assets.target.bookkeeping import read_checkpoint
from migration_assets.verify.checksums import verify_loader
from migration_assets_tests.fixtures import dagster_proc as dp

pytestmark = [pytest.mark.integration, pytest.mark.process]

USERS = loader_for_table("users")


def state(conn):
    c = read_checkpoint(conn, "users")  # users is ranged: its counts are its ranges' sums
    cp = (c.run_id, c.generation, c.status, c.docs_read) if c else None
    n = conn.execute("SELECT count(*) FROM public.users").fetchone()[0]
    return cp, n


def settled(conn, quiet_s: float = 1.0):
    """The state once it stopped changing for ``quiet_s``."""
    last = state(conn)
    while True:
        time.sleep(quiet_s)
        now = state(conn)
        if now == last:
            return now
        last = now


def test_second_run_waits_for_the_lock_and_a_third_times_out(tmp_path, make_target_db):
    world = generate(seed=17, scale=20)
    dump = tmp_path / "dump"
    write_dump(dump, "marketplace", world.docs)
    total = len(world.docs["users"])
    url = make_target_db()
    env = {"MIGRATION_SOURCE": "dump", "MONGODUMP_DIR": str(dump), "MONGODB_DATABASE": "marketplace",
           "MONGODB_URI": "mongodb://127.0.0.1:1/?directConnection=true",
           "MIGRATION_PG_URL": url, "MIGRATION_PG_ALLOWED_HOSTS": "127.0.0.1"}
    select = dp.loader_selection([USERS])
    conn = psycopg.connect(url, autocommit=True)

    a = dp.launch(dp.make_home(tmp_path / "home_a"), env, select, dp.load_config([USERS], batch_size=5), name="a")

    def a_mid():
        assert a.alive(), a.output()[-3000:]
        cp, _ = state(conn)
        return cp and cp[2] == "running" and cp[3] >= 100

    dp.wait_until(a_mid, timeout=120, interval=0.005, what="run A mid-load")
    os.killpg(a.pid, signal.SIGSTOP)  # A keeps its connection, its lock and its open checkpoint
    try:
        frozen = settled(conn)  # a COMMIT A sent just before it stopped may still land
        a_run_id = frozen[0][0]
        assert tg.loader_lock_holder(conn, "users").startswith("backend pid")

        b = dp.launch(dp.make_home(tmp_path / "home_b"), env, select,
                      dp.load_config([USERS], batch_size=5, lock_timeout_s=300), name="b")
        c = dp.launch(dp.make_home(tmp_path / "home_c"), env, select,
                      dp.load_config([USERS], batch_size=5, lock_timeout_s=2), name="c")
        dp.wait_until(lambda: "users: waiting for the load lock" in b.output(), timeout=120, interval=0.1,
                      what="run B to report that it waits")
        assert c.wait(120) != 0  # C gave up
        time.sleep(1.0)
        # Neither B nor C wrote anything: same checkpoint (A's run, A's progress), same rows.
        assert state(conn) == frozen
        assert b.alive()
    finally:
        os.killpg(a.pid, signal.SIGCONT)

    assert a.wait(300) == 0, a.output()[-3000:]
    assert b.wait(300) == 0, b.output()[-3000:]

    a_events = next(iter(dp.run_events(a.home).values()))
    b_events = next(iter(dp.run_events(b.home).values()))
    c_events = next(iter(dp.run_events(c.home).values()))

    waiting = [m for _, m in dp.log_messages(b_events) if "waiting for the load lock" in m]
    assert waiting and f"load_users run {a_run_id[:8]}" in waiting[0]  # names the holder
    acquired = [(ts, m) for ts, m in dp.log_messages(b_events) if "acquired the load lock" in m]
    assert acquired
    a_done = max(ts for ts, m in dp.log_messages(a_events) if m.startswith("users: ") and " loaded, " in m)
    assert acquired[0][0] >= a_done  # B started writing only after A had finished

    c_failure = "\n".join(dp.step_failures(c_events))
    assert "gave up after 2s waiting for the load lock of loader 'users'" in c_failure
    assert f"load_users run {a_run_id[:8]}" in c_failure

    # A loaded everything; B's pass found nothing to change; no duplicates, no difference.
    mats_a, mats_b = dp.materializations(a_events), dp.materializations(b_events)
    assert mats_a["public/users"]["rows_inserted_or_changed"] == total
    assert mats_b["public/users"]["rows_inserted_or_changed"] == 0
    assert mats_b["public/users"]["lock_waited_s"] > 0
    cp, n = state(conn)
    assert n == total and cp[2] == "completed"
    assert conn.execute("SELECT count(DISTINCT legacy_object_id) FROM users").fetchone()[0] == total
    v = verify_loader(USERS, DumpSource(dump, "marketplace"), conn)
    assert v.ok
    print(f"\nconcurrency: B waited {mats_b['public/users']['lock_waited_s']}s for A's lock, C failed after 2s; "
          f"{n} users, 0 duplicates")
    conn.close()


def test_remap_waits_for_the_loader_lock(target_url, stack_env, live_source_db):
    """The selectedOffer remap rewrites purchase_requests: it takes the same lock as its loader."""
    from migration_assets.load.remap import apply_remap
    from migration_assets.source.live import LiveSource
    from migration_assets.specs.registry import loader_for_table
    from migration_assets.target import guard as tg

    loader = loader_for_table("purchase_requests")
    holder = tg.connect(target_url, ["127.0.0.1"])
    other = tg.connect(target_url, ["127.0.0.1"])
    source = LiveSource(stack_env["MONGODB_URI"], live_source_db)
    try:
        assert tg.try_loader_lock(holder, loader.name)
        with pytest.raises(tg.LoadLocked, match="purchase_requests"):
            apply_remap(loader, loader.remaps[0], source, other, run_id="t", lock_timeout_s=1.0)
        holder.close()
        apply_remap(loader, loader.remaps[0], source, other, run_id="t", lock_timeout_s=5.0)
    finally:
        source.close()
        other.close()


def test_between_its_steps_a_live_run_keeps_its_load(tmp_path, make_target_db):
    """The gap the first test can fall into, made certain: run A planned its ranges and no
    step of it holds the lock. B takes the exclusive lock, finds the load owned by A, whose
    worker lives, and waits instead of taking over; once A's worker is gone, B takes over
    and says whose load it resumed."""
    from migration_assets.load.ranged import plan_load
    from migration_assets.load.report import LoadOptions
    from migration_assets.processes import Process, this_host
    from migration_assets.target.lease import Owner

    world = generate(seed=17, scale=2)
    dump = tmp_path / "dump"
    write_dump(dump, "marketplace", {"users": world.docs["users"]})
    source = DumpSource(dump, "marketplace")
    url = make_target_db()
    worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])  # A's run worker
    try:
        a = Owner("run-a", Process(this_host(), worker.pid, time.time()))
        with tg.connect(url, ["127.0.0.1"]) as conn:
            planned = plan_load(USERS, source, conn, LoadOptions(run_id="run-a", owner=a), 2, 2, log=print)
            assert len(planned.tasks) == 2 and not planned.resumed
            said: list[str] = []
            with pytest.raises(tg.LoadLocked, match="owned by run run-a.*alive"):
                plan_load(USERS, source, conn, LoadOptions(run_id="run-b", owner=Owner("run-b"), lock_timeout_s=1.5),
                          2, 2, log=said.append)
            assert state(conn)[0][0] == "run-a"  # still A's
            worker.kill()
            worker.wait()
            taken = plan_load(USERS, source, conn, LoadOptions(run_id="run-b", owner=Owner("run-b")), 2, 2,
                              log=said.append)
            assert taken.resumed and state(conn)[0][0] == "run-b"
            assert any(f"run run-a's worker pid {worker.pid}" in m and "is gone" in m for m in said), said
    finally:
        worker.kill()
