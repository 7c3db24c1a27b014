"""Running a job for the operator, and following runs already in progress.

Every command that runs a Dagster job (``migrate``, ``verify``, ``readiness``; ``reconcile``
next) goes through :func:`run_job`: the run executes in this process on the instance of
``DAGSTER_HOME`` (the UI shows it), Dagster's console logger is silenced unless ``--verbose``
(the event log stays in the instance), and the run's own events, as the instance stores
them, drive the view. ``watch`` reads the same events of other processes' runs."""

from __future__ import annotations

import time
import uuid
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import dagster as dg

from migration_assets.console.progress import RunState
from migration_assets.console.render import View
from migration_assets.specs.registry import all_loaders

IN_PROGRESS = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING,
               dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING]


def silence_dagster_warnings() -> None:
    """Dagster's beta and preview notices speak to whoever writes the definitions, not to
    operators; every other warning still shows."""
    warnings.filterwarnings("ignore", category=dg.BetaWarning)
    warnings.filterwarnings("ignore", category=dg.PreviewWarning)


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
    ops = {f"load_{l.name}": {"config": load} for l in all_loaders() if f"load_{l.name}" in nodes}
    return {"loggers": {"console": {"config": {"log_level": "DEBUG" if verbose else "CRITICAL"}}}, "ops": ops}


def run_job(defs: dg.Definitions, instance: dg.DagsterInstance, name: str, view: View, *, every: float,
            verbose: bool, partition_key: str | None = None, run_config: Mapping[str, Any] | None = None,
            asset_selection: Sequence[dg.AssetKey] | None = None, lock_timeout_s: float | None = None,
            debug: bool = False) -> RunState:
    job = defs.resolve_job_def(name)
    planned = job.get_subset(asset_selection=set(asset_selection)) if asset_selection else job
    config = merge(console_config(planned, every=every, verbose=verbose, lock_timeout_s=lock_timeout_s),
                   run_config or {})
    run = RunState(str(uuid.uuid4()), name, partition_key)

    def on_event(entry: dg.EventLogEntry) -> None:  # called as the instance stores each event
        run.apply(entry)
        view.update(run)

    instance.add_event_listener(run.run_id, on_event)
    job.execute_in_process(instance=instance, partition_key=partition_key, raise_on_error=False, run_id=run.run_id,
                           run_config=config, asset_selection=asset_selection)
    view.end(run, debug)
    return run


def runs_in_progress(instance: dg.DagsterInstance) -> list[dg.DagsterRun]:
    return list(instance.get_runs(filters=dg.RunsFilter(statuses=IN_PROGRESS)))


def follow(instance: dg.DagsterInstance, runs: Sequence[dg.DagsterRun], view: View, *, poll_s: float = 0.5,
           debug: bool = False) -> list[RunState]:
    """Follows ``runs`` (of any process) from their first event until each has ended."""
    states = {r.run_id: RunState(r.run_id, r.job_name, r.tags.get("dagster/partition")) for r in runs}
    cursors: dict[str, str | None] = dict.fromkeys(states)
    open_runs = set(states)
    while open_runs:
        for run_id in sorted(open_runs):
            record = instance.get_run_by_id(run_id)
            ended = record is None or record.is_finished  # then the events read next are all of them
            state = states[run_id]
            while True:
                conn = instance.get_records_for_run(run_id, cursor=cursors[run_id])
                for rec in conn.records:
                    state.apply(rec.event_log_entry)
                cursors[run_id] = conn.cursor
                if not conn.has_more:
                    break
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
