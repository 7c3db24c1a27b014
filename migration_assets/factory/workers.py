"""The process behind a Dagster run (its run worker), and whether it still lives.

A CLI run records its own host, pid and process start time as tags when it is created. A
run the daemon launched gets its host tag from the run launcher of ``dagster.yaml``; its pid
is the one its run worker logs in its first engine event ("Started process for run (pid:
N)", or the executor's "parent process (pid: N)"). A pid recorded after its process started
names that process only: a pid reused by a later process is not the dead worker.

A step reads its own run's worker from here to put it on the load's lease
(``target/lease.py``), so that a run of another instance can tell whether it lives."""

from __future__ import annotations

import os
import signal

import dagster as dg
import psutil

from migration_assets.processes import Process, this_host

HOST_TAG = "migration/host"
PID_TAG = "migration/pid"
PID_STARTED_TAG = "migration/pid_started"


def worker_tags(process: Process | None = None) -> dict[str, str]:
    """Tags of a run executed by ``process`` (this very process by default)."""
    p = process or Process.current()
    return {HOST_TAG: p.host, PID_TAG: str(p.pid), PID_STARTED_TAG: f"{p.since:.2f}"}


def logged_pid(instance: dg.DagsterInstance, run_id: str) -> tuple[int, float] | None:
    """(pid, when) of the first engine event of the run that names its process."""
    records = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT, limit=20).records
    for r in records:
        data = r.event_log_entry.dagster_event.engine_event_data
        pid = data.metadata.get("pid") if data else None
        if pid is not None:
            return int(pid.value), r.event_log_entry.timestamp
    return None


def worker_of(instance: dg.DagsterInstance, run: dg.DagsterRun, *, this_step: int | None = None) -> Process | None:
    """The run's worker, or None when the run has not said where it runs. A run without a
    host tag (``dagster asset materialize``, ``dagster job execute``) runs here when the pid
    its executor logged is ``this_step``'s own process or one of its ancestors (the in-process
    and multiprocess executors; not a Celery worker on another machine)."""
    host = run.tags.get(HOST_TAG)
    if host and PID_TAG in run.tags:
        return Process(host, int(run.tags[PID_TAG]), float(run.tags[PID_STARTED_TAG]))
    logged = logged_pid(instance, run.run_id)
    if logged is None:
        return None
    if not host and this_step is not None and ancestor_or_self(logged[0], this_step):
        host = this_host()
    return Process(host, *logged) if host else None


def ancestor_or_self(pid: int, of: int) -> bool:
    try:
        me = psutil.Process(of)
        return pid == of or any(p.pid == pid for p in me.parents())
    except psutil.NoSuchProcess:
        return False


def interrupt_worker(instance: dg.DagsterInstance, run: dg.DagsterRun, message: str) -> bool:
    """Terminates a run the way Dagster terminates the runs it launched: marked canceling,
    then its run worker interrupted (SIGINT), whose own interrupt handling stops its steps (a
    step rolls back its open batch) and ends the run CANCELED. False when the worker is not a
    live process on this host."""
    worker = worker_of(instance, run)
    if run.is_finished or worker is None or not worker.local or not worker.alive():
        return False
    instance.report_run_canceling(run, message=message)
    os.kill(worker.pid, signal.SIGINT)
    return True
