"""Running a job for the operator, and following runs already in progress.

Every command that runs a Dagster job (``migrate``, ``verify``, ``readiness``, ``reconcile``)
goes through :func:`run_job`: the run executes in a run worker process of its own on the
instance of ``DAGSTER_HOME`` (the UI shows it; ``orchestration/launch.py``), Dagster's
console logger is silenced unless ``--verbose`` (the event log stays in the instance), and
the run's events, as the instance stores them, drive the view. ``watch`` reads the same
events of other processes' runs. SIGINT/SIGTERM, waiting or running, cancel the run through
Dagster's own termination."""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any

import dagster as dg

from migration_assets.console.progress import RunState
from migration_assets.console.render import View
from migration_assets.console.signals import StopRequest
from migration_assets.factory.naming import load_op
from migration_assets.orchestration.launch import (
    RunSpec,
    StartedRun,
    wait_for_end,
    wait_for_pools,
)
from migration_assets.orchestration.pools import job_pools
from migration_assets.orchestration.records import events_after
from migration_assets.specs.registry import all_loaders


def merge(base: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in extra.items():
        out[k] = merge(out[k], v) if isinstance(v, Mapping) and isinstance(out.get(k), Mapping) else v
    return out


def console_config(job: dg.JobDefinition, *, every: float, verbose: bool,
                   lock_timeout_s: float | None = None) -> dict[str, Any]:
    """Run config of a CLI run: the console logger's level, and on every load op of the job
    how often it logs progress (the bars read those lines) and how long it waits for a lock."""
    load = {"progress_interval_s": every, **({"lock_timeout_s": lock_timeout_s} if lock_timeout_s is not None else {})}
    nodes = set(job.graph.node_names())
    ops = {load_op(l.name): {"config": load} for l in all_loaders() if load_op(l.name) in nodes}
    return {"loggers": {"console": {"config": {"log_level": "DEBUG" if verbose else "CRITICAL"}}}, "ops": ops}


class EventReader:
    """A run's events, read from the instance after the last one read."""

    def __init__(self, instance: dg.DagsterInstance, run_id: str):
        self.instance, self.run_id, self.cursor = instance, run_id, None

    def apply(self, state: RunState, view: View | None = None) -> None:
        """Applies the new events to ``state``, updating ``view`` after each (a progress line
        shows even when its step ended before the next read)."""
        while True:
            entries, self.cursor, more = events_after(self.instance, self.run_id, self.cursor)
            for entry in entries:
                state.apply(entry)
                if view is not None:
                    view.update(state)
            if not more:
                return


def run_job(defs: dg.Definitions, instance: dg.DagsterInstance, name: str, view: View, *, every: float,
            verbose: bool, partition_key: str | None = None, run_config: Mapping[str, Any] | None = None,
            asset_selection: Sequence[dg.AssetKey] | None = None, lock_timeout_s: float | None = None,
            executor: Mapping[str, Any] | None = None, debug: bool = False) -> RunState:
    """Runs the job in a run worker of its own, after releasing the dead runs that hold its
    pools and waiting (asleep) for the live ones, and follows it to its end."""
    job = defs.resolve_job_def(name)
    planned = job.get_subset(asset_selection=set(asset_selection)) if asset_selection else job
    config = merge(merge(console_config(planned, every=every, verbose=verbose, lock_timeout_s=lock_timeout_s),
                         executor or {}), run_config or {})
    tags = {"dagster/partition": partition_key} if partition_key else {}
    with StopRequest() as stop:
        if not wait_for_pools(instance, name, job_pools(planned), view.say, stop.wait):
            return not_started(name, partition_key, stop, view)
        started = StartedRun(instance, RunSpec(name, config, tags, asset_selection))
        if started.wait_for_run(stop.wait) is None:
            started.kill()
            return not_started(name, partition_key, stop, view)
        run = RunState(started.run_id, name, partition_key)
        events = EventReader(instance, started.run_id)

        def follow() -> None:
            if verbose:  # Dagster's own console log of the run, as its worker prints it
                sys.stderr.write(started.new_output())
            events.apply(run, view)

        def cancel() -> None:
            view.say(f"{name}: {stop.name} received; canceling run {started.run_id[:8]}")
            started.terminate(f"{stop.name} received by the command line")

        wait_for_end(started, follow, stop.wait, cancel)
        follow()
        run.signum = stop.signum
    view.end(run, debug)
    return run


def not_started(name: str, partition_key: str | None, stop: StopRequest, view: View) -> RunState:
    view.say(f"{name}: {stop.name} while waiting; no run was started")
    run = RunState("", name, partition_key)
    run.status, run.signum = "NOT STARTED", stop.signum
    return run


def follow(instance: dg.DagsterInstance, runs: Sequence[dg.DagsterRun], view: View, *, poll_s: float = 0.5,
           debug: bool = False) -> list[RunState]:
    """Follows ``runs`` (of any process) from their first event until each has ended."""
    states = {r.run_id: RunState(r.run_id, r.job_name, r.tags.get("dagster/partition")) for r in runs}
    readers = {run_id: EventReader(instance, run_id) for run_id in states}
    open_runs = set(states)
    while open_runs:
        for run_id in sorted(open_runs):
            record = instance.get_run_by_id(run_id)
            ended = record is None or record.is_finished  # then the events read next are all of them
            state = states[run_id]
            readers[run_id].apply(state, None if ended else view)
            if ended:
                # A run cancelled in the queue never logs an end event.
                state.status = state.status or (record.status.value if record else "CANCELED")
                view.end(state, debug)
                open_runs.discard(run_id)
            else:
                view.update(state)
        if open_runs:
            time.sleep(poll_s)
    return list(states.values())
