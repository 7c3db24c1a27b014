"""Pools the way Dagster counts them at run granularity (``dagster.yaml``): a run holds every
pool one of its steps is in, from its start to its end. The queued-run coordinator will not
start a run while another run in progress holds one of its pools; the command line, which
starts runs itself, waits by the same rule (``launch.py``)."""

from __future__ import annotations

from collections.abc import Collection

import dagster as dg

from migration_assets.orchestration.records import runs_in_progress


def job_pools(job: dg.JobDefinition) -> set[str]:
    """The pools of a job's steps."""
    return {op.pool for op in job.graph.iterate_op_defs() if op.pool}


def run_pools(run: dg.DagsterRun) -> set[str]:
    """The pools a run holds while in progress, as recorded when it was created."""
    return set(run.run_op_concurrency.all_pools or ()) if run.run_op_concurrency else set()


def runs_holding_pools(instance: dg.DagsterInstance) -> list[dg.DagsterRun]:
    """Runs in progress, which hold their pools (a queued run holds nothing yet)."""
    return [r for r in runs_in_progress(instance) if r.status != dg.DagsterRunStatus.QUEUED]


def pool_holders(instance: dg.DagsterInstance, pools: Collection[str],
                 exclude: Collection[str] = ()) -> dict[str, list[dg.DagsterRun]]:
    """Of ``pools``, those held by a run in progress (other than ``exclude``), and by which."""
    held: dict[str, list[dg.DagsterRun]] = {}
    for run in runs_holding_pools(instance):
        if run.run_id in exclude:
            continue
        for name in run_pools(run) & set(pools):
            held.setdefault(name, []).append(run)
    return held
