"""Running a job for the operator, and following runs already in progress.

Every command that runs a Dagster job (``migrate``, ``verify``, ``readiness``; ``reconcile``
next) goes through :func:`run_job`: the run executes in this process on the instance of
``DAGSTER_HOME`` (the UI shows it), Dagster's console logger is silenced unless ``--verbose``
(the event log stays in the instance), and the run's own events, as the instance stores
them, drive the view. ``watch`` reads the same events of other processes' runs."""

from __future__ import annotations

import ctypes
import threading
import time
import uuid
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import dagster as dg

from migration_assets.console.progress import RunState
from migration_assets.console.render import View
from migration_assets.console.signals import StopRequest
from migration_assets.orchestration.dead_runs import blocked_pools, job_pools, release_dead_runs
from migration_assets.orchestration.workers import worker_tags
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
    """Runs the job in this process, after releasing the dead runs that hold its pools and
    waiting (asleep) for the live ones. SIGINT / SIGTERM, waiting or running, cancel it."""
    job = defs.resolve_job_def(name)
    planned = job.get_subset(asset_selection=set(asset_selection)) if asset_selection else job
    config = merge(console_config(planned, every=every, verbose=verbose, lock_timeout_s=lock_timeout_s),
                   run_config or {})
    run = RunState(str(uuid.uuid4()), name, partition_key)
    pools = job_pools(planned)
    with StopRequest() as stop:
        for released in release_dead_runs(instance, name, pools):
            view.say(f"{name}: {released.line()}")
        if not wait_for_pools(instance, name, pools, view, stop):
            view.say(f"{name}: {stop.name} while waiting; no run was started")
            run.status, run.signum = "NOT STARTED", stop.signum
            return run

        def on_event(entry: dg.EventLogEntry) -> None:  # called as the instance stores each event
            run.apply(entry)
            view.update(run)

        instance.add_event_listener(run.run_id, on_event)

        raised: list[BaseException] = []

        def execute() -> None:
            try:
                job.execute_in_process(instance=instance, partition_key=partition_key, raise_on_error=False,
                                       run_id=run.run_id, run_config=config, asset_selection=asset_selection,
                                       tags=worker_tags())
            except dg.DagsterExecutionInterruptedError:
                pass  # cancel() interrupted it; the run's record says so
            except BaseException as e:  # e.g. invalid run config: the caller reports it in one line
                raised.append(e)

        worker = threading.Thread(target=execute, name=f"run {run.run_id[:8]}", daemon=True)
        worker.start()
        while worker.is_alive() and not stop.wait(0.25):
            pass
        if worker.is_alive():
            cancel(instance, run, worker, stop, view)
        elif raised:
            raise raised[0]
    view.end(run, debug)
    return run


def wait_for_pools(instance: dg.DagsterInstance, name: str, pools: set[str], view: View, stop: StopRequest,
                   *, poll_s: float = 2.0) -> bool:
    """Sleeps until every pool of the job has a free slot: False when told to stop first.
    Says what it waits for, and for whom, each time that changes; a holder that dies
    meanwhile is released."""
    said = None
    while blocked := blocked_pools(instance, pools):
        text = "; ".join(f"pool {pool} is held by " + (", ".join(h.describe() for h in hs) or "a run")
                         for pool, hs in sorted(blocked.items()))
        if text != said:
            view.say(f"{name}: waiting: {text} (Ctrl-C stops)")
            said = text
        if stop.wait(poll_s):
            return False
        for released in release_dead_runs(instance, name, pools):
            view.say(f"{name}: {released.line()}")
    return True


CANCEL_GRACE_S = 10.0


def cancel(instance: dg.DagsterInstance, run: RunState, worker: threading.Thread, stop: StopRequest,
           view: View) -> None:
    """Cancels the run executing in ``worker``: marked canceling, then interrupted where it
    is (a step rolls back its open batch; committed batches and checkpoints stay). A run that
    does not end within the grace (a call blocked in C) is marked canceled and its slots
    freed here; its database session ends with this process."""
    view.say(f"{run.job}: {stop.name} received; canceling run {run.run_id[:8]}")
    record = instance.get_run_by_id(run.run_id)
    if record is not None and not record.is_finished:
        instance.report_run_canceling(record, message=f"{stop.name} received by the command line")
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(worker.ident),
                                               ctypes.py_object(dg.DagsterExecutionInterruptedError))
    worker.join(CANCEL_GRACE_S)
    record = instance.get_run_by_id(run.run_id)
    if record is not None and not record.is_finished:
        instance.report_run_canceled(record, message=f"did not stop within {CANCEL_GRACE_S:.0f}s of {stop.name}")
    instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
    run.status, run.signum = "CANCELED", stop.signum


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
