"""A killed run never blocks the next one.

Real processes against the real servers, with the project's own dagster.yaml (PostgreSQL
run storage, ``table_<loader>`` pools at run granularity, run monitoring, the monitored
launcher) on a Dagster database of the test's own. A CLI run executes in a run worker of its
own (its own session, with its steps):

* the run worker and its steps are SIGKILLed mid-load, and the CLI with them (a dead
  machine); the rerun releases the dead run, resumes from the checkpoint, and ends with zero
  difference. A CLI killed alone takes its run down with it: the run ends failed by itself;
* a CLI run waiting for a live run's pools sleeps, says for whom it waits, and SIGTERM ends
  it; SIGTERM to a run mid-load cancels it through Dagster's own termination (canceled, its
  pools free) and keeps its checkpoint;
* with ``dagster-daemon`` running, a run whose worker was SIGKILLed mid-load is marked failed
  within the monitoring bound, and a queued run of the same pools then runs.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import psutil
import psycopg
import pytest
import yaml

from migration_assets.factory.workers import PID_TAG
from migration_assets.generator import generate
from migration_assets.generator.writers import write_dump
from migration_assets.orchestration.pools import pool_holders
from migration_assets.source.dump import DumpSource
from migration_assets.specs.registry import loader_for_table
from migration_assets.target.bookkeeping import read_checkpoint
from migration_assets.verify.checksums import verify_loader
from migration_assets_tests.cli_helpers import make_env
from migration_assets_tests.conftest import create_database, drop_databases
from migration_assets_tests.fixtures.dagster_proc import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.process]

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
NOTIFICATIONS = loader_for_table("notifications")
POOL = "table_notifications"


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """75,000 notifications of 1,800 users (the rest of content_social empty), as a
    mongodump directory: jongodb takes inserts at a few hundred per second at this size."""
    world = generate(seed=23, scale=30)
    dump = tmp_path_factory.mktemp("dump")
    write_dump(dump, "marketplace", {"users": world.docs["users"], "notifications": world.docs["notifications"]})
    return dump, len(world.docs["notifications"])


def source_env(stack_env, url: str, dump: Path, home: Path) -> dict[str, str]:
    return {**os.environ, **make_env(stack_env, url, "marketplace", home), "MIGRATION_SOURCE": "dump",
            "MONGODUMP_DIR": str(dump)}


@pytest.fixture(scope="module")
def auth_template(pg_server, schema_template, source, stack_env, tmp_path_factory):
    """A target with the auth domain migrated (content_social's parents), cloned per test."""
    name = create_database(pg_server, "ma_dead_tpl", schema_template)
    url = pg_server.replace("postgres@", "migration_platform@", 1).rsplit("/", 1)[0] + "/" + name
    home = tmp_path_factory.mktemp("auth_home")
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    env = source_env(stack_env, url, source[0], home)
    done = subprocess.run([str(BIN / "migration-assets"), "migrate", "--domain", "auth"], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    yield name
    drop_databases(pg_server, name)


class Stack:
    """One target, the Mongo source, and a Dagster instance of the project's dagster.yaml
    whose run storage is a PostgreSQL database of its own."""

    def __init__(self, env: dict[str, str], home: Path, target: str):
        self.env, self.home, self.target = env, home, target

    def cli(self, *args: str, name: str) -> subprocess.Popen:
        log = self.home / f"{name}.log"
        with open(log, "wb") as out:
            return subprocess.Popen([str(BIN / "migration-assets"), *args], cwd=ROOT, env=self.env, stdout=out,
                                    stderr=subprocess.STDOUT, start_new_session=True)

    def command(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(BIN / "migration-assets"), *args], cwd=ROOT, env=self.env, capture_output=True,
                              text=True, timeout=120)

    def output(self, name: str) -> str:
        return (self.home / f"{name}.log").read_text(errors="replace")

    @contextlib.contextmanager
    def instance(self) -> Iterator[dg.DagsterInstance]:
        """The instance, as the CLI sees it (dagster.yaml reads DAGSTER_PG_URL when loaded)."""
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("DAGSTER_PG_URL", self.env["DAGSTER_PG_URL"])
            with dg.DagsterInstance.from_config(str(self.home)) as inst:
                yield inst

    def checkpoint(self) -> tuple[str, int] | None:
        with psycopg.connect(self.target, autocommit=True) as c:
            cp = read_checkpoint(c, NOTIFICATIONS.name)  # a ranged load's: its ranges' sums
            return (cp.status, cp.docs_read) if cp else None


def holders_of_pool(instance: dg.DagsterInstance) -> set[str]:
    """Runs in progress holding the pool, as the queued-run coordinator counts them."""
    return {r.run_id for r in pool_holders(instance, [POOL]).get(POOL, [])}


def the_run(stack: Stack) -> tuple[dg.DagsterRun, int]:
    """The newest content_social run, and the pid of its run worker."""
    with stack.instance() as inst:
        run = inst.get_runs(filters=dg.RunsFilter(job_name="migrate_content_social"), limit=1)[0]
    return run, int(run.tags[PID_TAG])


def kill_session(pid: int, sig: int = signal.SIGKILL) -> None:
    """A run worker leads a session of its own: it and its steps."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, sig)


@pytest.fixture
def stack(tmp_path, pg_server, make_target_db, auth_template, source, stack_env):
    dagster_db = create_database(pg_server, "ma_dagster")
    home = tmp_path / "home"
    home.mkdir()
    config = yaml.safe_load((ROOT / "dagster.yaml").read_text())
    # The daemon test's bound: checked every 2 s.
    config["run_monitoring"].update(poll_interval_seconds=2)
    (home / "dagster.yaml").write_text(yaml.safe_dump(config))
    target = make_target_db(auth_template)
    env = {**source_env(stack_env, target, source[0], home),
           "DAGSTER_PG_URL": pg_server.rsplit("/", 1)[0] + "/" + dagster_db, "PYTHONUNBUFFERED": "1"}
    yield Stack(env, home, target)
    drop_databases(pg_server, dagster_db)


def mid_load(stack: Stack, proc: subprocess.Popen, name: str, at: int):
    def reached():
        assert proc.poll() is None, stack.output(name)[-3000:]
        cp = stack.checkpoint()
        return cp and cp[0] == "running" and cp[1] >= at

    wait_until(reached, timeout=180, interval=0.01, what=f"{name} to commit {at} notifications")


def test_a_killed_run_is_released_and_its_rerun_resumes_with_zero_diff(stack, source):
    total = source[1]
    first = stack.cli("migrate", "--domain", "content_social", "--executor", "in_process", name="killed")
    mid_load(stack, first, "killed", total // 3)
    dead, worker = the_run(stack)
    kill_session(worker)  # the run worker and its steps, and the CLI: a dead machine
    os.killpg(first.pid, signal.SIGKILL)
    first.wait(30)
    committed = stack.checkpoint()
    assert committed[0] == "running" and 0 < committed[1] < total
    with stack.instance() as inst:
        assert inst.get_run_by_id(dead.run_id).status == dg.DagsterRunStatus.STARTED  # what Dagster believes
        assert holders_of_pool(inst) == {dead.run_id}  # and the pools it still holds
    status = stack.command("status").stdout
    assert (f"content_social: load of notifications interrupted after {committed[1]} documents; run "
            f"{dead.run_id[:8]} (migrate_content_social, STARTED, pid {worker} on") in status, status
    assert f"`migration-assets release {dead.run_id[:8]}`" in status

    started = time.monotonic()
    rerun = stack.cli("migrate", "--domain", "content_social", name="rerun")
    assert rerun.wait(300) == 0, stack.output("rerun")[-3000:]
    out = stack.output("rerun")
    released = [line for line in out.splitlines() if "released run" in line]
    assert len(released) == 1 and released[0].startswith(
        f"migrate_content_social: released run {dead.run_id[:8]} (migrate_content_social): its process "
        f"(pid {worker} on {os.uname().nodename}) is gone; marked failed, freeing ") and POOL in released[0], out
    assert "waiting" not in out
    assert "resumed the interrupted load" in out  # the notifications line says so
    with stack.instance() as inst:
        assert inst.get_run_by_id(dead.run_id).status == dg.DagsterRunStatus.FAILURE
        assert holders_of_pool(inst) == set()
    with psycopg.connect(stack.target, autocommit=True) as conn:
        n, distinct = conn.execute("SELECT count(*), count(DISTINCT legacy_object_id) FROM notifications").fetchone()
        assert n == distinct == total
        v = verify_loader(NOTIFICATIONS, DumpSource(source[0], "marketplace"), conn)
        assert v.ok
    print(f"\nkilled at {committed[1]}/{total} notifications; rerun released it and finished in "
          f"{time.monotonic() - started:.0f}s with zero diff")


def test_a_cli_killed_alone_takes_its_run_down_with_it(stack, source):
    """The run worker does not go on unseen when its command line dies: it is told (SIGTERM),
    stops its steps through Dagster's interrupt handling and ends the run failed."""
    cli = stack.cli("migrate", "--domain", "content_social", "--executor", "in_process", name="orphan")
    mid_load(stack, cli, "orphan", source[1] // 5)
    run, worker = the_run(stack)
    os.killpg(cli.pid, signal.SIGKILL)
    cli.wait(30)
    with stack.instance() as inst:
        wait_until(lambda: inst.get_run_by_id(run.run_id).is_finished, timeout=60, interval=0.2,
                   what="the orphaned run to end")
        assert inst.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.FAILURE
    wait_until(lambda: not psutil.pid_exists(worker) or psutil.Process(worker).status() == psutil.STATUS_ZOMBIE,
               timeout=30, what="the run worker to exit")
    assert stack.checkpoint()[0] == "running"  # its committed batches stay for the next run


def test_a_waiting_run_sleeps_names_its_holder_and_signals_cancel_runs_cleanly(stack, source):
    total = source[1]
    holder = stack.cli("migrate", "--domain", "content_social", "--executor", "in_process", name="holder")
    mid_load(stack, holder, "holder", total // 4)
    holder_run, worker = the_run(stack)
    kill_session(worker, signal.SIGSTOP)  # alive, holding its pools, its lease and its load lock
    try:
        waiter = stack.cli("migrate", "--domain", "content_social", name="waiter")
        wait_until(lambda: "waiting: " in stack.output("waiter"), timeout=120, interval=0.2,
                   what="the second run to say what it waits for")
        out = stack.output("waiter")
        assert POOL in out and f"held by run {holder_run.run_id[:8]} (migrate_content_social, STARTED, pid {worker} on" \
            in out, out
        assert "released" not in out  # a live run is never released
        refused = stack.command("release", holder_run.run_id[:8])
        assert refused.returncode == 1 and f"is alive (pid {worker} on" in refused.stderr, refused.stderr
        cpu = psutil.Process(waiter.pid).cpu_percent(interval=3.0)
        assert cpu < 20, f"the waiting CLI used {cpu:.0f}% of a core"
        t = time.monotonic()
        waiter.send_signal(signal.SIGTERM)
        assert waiter.wait(15) == 143
        stopped_in = time.monotonic() - t
        assert "SIGTERM while waiting; no run was started" in stack.output("waiter")
    finally:
        kill_session(worker, signal.SIGCONT)

    # The running one, mid-load: SIGTERM cancels its run (Dagster's termination: canceling,
    # then its worker interrupted), frees its pools, keeps its checkpoint.
    before = stack.checkpoint()
    t = time.monotonic()
    holder.send_signal(signal.SIGTERM)
    assert holder.wait(60) == 143, stack.output("holder")[-3000:]
    canceled_in = time.monotonic() - t
    assert f"SIGTERM received; canceling run {holder_run.run_id[:8]}" in stack.output("holder")
    with stack.instance() as inst:
        assert inst.get_run_by_id(holder_run.run_id).status == dg.DagsterRunStatus.CANCELED
        assert holders_of_pool(inst) == set()
        assert len(inst.get_runs(filters=dg.RunsFilter(job_name="migrate_content_social"))) == 1
    after = stack.checkpoint()
    assert after[0] == "running" and before[1] <= after[1] < total  # committed batches stay
    print(f"\nwaiting CLI: {cpu:.1f}% of a core, stopped {stopped_in:.1f}s after SIGTERM; "
          f"running CLI canceled {canceled_in:.1f}s after SIGTERM at {after[1]}/{total}")


def test_the_daemon_marks_a_killed_cli_run_failed_and_the_queued_run_starts(stack, source, tmp_path):
    """A CLI run's worker SIGKILLed with its command line, and no CLI started after it: only
    run monitoring can find it (a run the daemon launched whose worker dies is also marked
    failed by its code server; a CLI run has none)."""
    run_config = tmp_path / "in_process.yaml"
    run_config.write_text(yaml.safe_dump({"execution": {"config": {"in_process": True}}}))
    daemon = subprocess.Popen([str(BIN / "dagster-daemon"), "run", "-w", "workspace.yaml"], cwd=ROOT, env=stack.env,
                              stdout=open(tmp_path / "daemon.log", "wb"), stderr=subprocess.STDOUT,
                              start_new_session=True)
    try:
        cli = stack.cli("migrate", "--domain", "content_social", "--executor", "in_process", name="killed")
        mid_load(stack, cli, "killed", source[1] // 4)
        _, worker = the_run(stack)
        kill_session(worker)  # the run worker dies with nobody to say so: a dead machine
        os.killpg(cli.pid, signal.SIGKILL)
        cli.wait(30)
        killed_at = time.monotonic()
        done = subprocess.run([str(BIN / "dagster"), "job", "launch", "-w", "workspace.yaml", "-j",
                               "migrate_content_social", "--tags", '{"dagster/partition": "content_social"}',
                               "-c", str(run_config)], cwd=ROOT, env=stack.env, capture_output=True, text=True,
                              timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr
        with stack.instance() as inst:
            queued, dead = inst.get_runs(filters=dg.RunsFilter(job_name="migrate_content_social"), limit=2)
            wait_until(lambda: inst.get_run_by_id(dead.run_id).status == dg.DagsterRunStatus.FAILURE, timeout=60,
                       interval=0.2, what="run monitoring to mark the killed run failed")
            failed_in = time.monotonic() - killed_at
            assert failed_in < 30  # polls every 2 s; the slack is this 2-core machine under a load and a launch
            said = [f"{e.user_message} {e.dagster_event.message or ''}" if e.dagster_event else e.user_message
                    for e in inst.all_logs(dead.run_id)]
            assert any(f"the run's worker (pid {worker} on" in m and "no longer exists" in m for m in said), said[-3:]
            wait_until(lambda: inst.get_run_by_id(queued.run_id).is_finished, timeout=300, interval=0.5,
                       what="the queued run to start and finish")
            assert inst.get_run_by_id(queued.run_id).status == dg.DagsterRunStatus.SUCCESS
            ran_in = time.monotonic() - killed_at
    finally:
        os.killpg(daemon.pid, signal.SIGTERM)
        daemon.wait(60)
    with psycopg.connect(stack.target, autocommit=True) as conn:
        n, distinct = conn.execute("SELECT count(*), count(DISTINCT legacy_object_id) FROM notifications").fetchone()
        assert n == distinct == source[1]
    print(f"\ndaemon: the killed CLI run marked failed {failed_in:.1f}s after the kill; the queued run "
          f"finished {ran_in:.0f}s after it")
