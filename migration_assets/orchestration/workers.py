"""The process behind a run, and whether it still lives.

A CLI run records its own host, pid and process start time as tags when it is created. A
run the daemon launched gets its host tag from :class:`MonitoredRunLauncher`; its pid is the
one Dagster's run worker logs in its first engine event ("Started process for run (pid: N)").
A process counts as the run's worker only if it started no later than the run recorded it:
a pid reused by a later process is not mistaken for the dead worker."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass

import dagster as dg
import psutil

HOST_TAG = "migration/host"
PID_TAG = "migration/pid"
PID_STARTED_TAG = "migration/pid_started"
SLACK_S = 1.0  # process start times are kept to 1/100 s; the event's timestamp comes after


def this_host() -> str:
    return socket.gethostname()


def process_started(pid: int) -> float:
    return psutil.Process(pid).create_time()


def worker_tags() -> dict[str, str]:
    """Tags of a run executed by this very process."""
    pid = os.getpid()
    return {HOST_TAG: this_host(), PID_TAG: str(pid), PID_STARTED_TAG: f"{process_started(pid):.2f}"}


@dataclass(frozen=True)
class Worker:
    host: str
    pid: int
    since: float  # the process started at or before this time

    @property
    def local(self) -> bool:
        return self.host == this_host()

    def alive(self) -> bool:
        """Only meaningful for a worker on this host (see ``local``)."""
        try:
            p = psutil.Process(self.pid)
            return p.status() != psutil.STATUS_ZOMBIE and p.create_time() <= self.since + SLACK_S
        except psutil.NoSuchProcess:
            return False

    def describe(self) -> str:
        return f"pid {self.pid} on {self.host}"


def logged_pid(instance: dg.DagsterInstance, run_id: str) -> tuple[int, float] | None:
    """(pid, when) of the first engine event of the run that names its process."""
    records = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT, limit=20).records
    for r in records:
        data = r.event_log_entry.dagster_event.engine_event_data
        pid = data.metadata.get("pid") if data else None
        if pid is not None:
            return int(pid.value), r.event_log_entry.timestamp
    return None


def worker_of(instance: dg.DagsterInstance, run: dg.DagsterRun) -> Worker | None:
    """The run's worker, or None when the run has not said where it runs (not yet started,
    or launched by something that records no host)."""
    host = run.tags.get(HOST_TAG)
    if not host:
        return None
    if PID_TAG in run.tags:
        return Worker(host, int(run.tags[PID_TAG]), float(run.tags[PID_STARTED_TAG]))
    logged = logged_pid(instance, run.run_id)
    return Worker(host, *logged) if logged else None
