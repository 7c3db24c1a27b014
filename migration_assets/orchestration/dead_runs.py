"""Runs recorded as running whose process is gone, and releasing them.

A run whose process was killed (SIGKILL, a dead machine) stays STARTED in Dagster's storage
and keeps the pool slots its steps claimed, so the next run of the same table waits forever
for ``table_<loader>``. Releasing it marks it failed and frees its slots; the data needs
nothing, since each batch commits with its checkpoint and the next load resumes there.
PostgreSQL's advisory lock stays the guard against two writers: it died with the dead
process's session. A run whose worker is alive, or lives on another host, is never released
here (``release RUN_ID`` is the explicit way for the latter)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable
from dataclasses import dataclass

import dagster as dg

from migration_assets.factory.table_pool import POOL_TAG
from migration_assets.orchestration.workers import Worker, worker_of

RUNNING = [dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING]


def job_pools(job: dg.JobDefinition) -> set[str]:
    """Pools the job's steps claim, and those a ranged load claims for its whole run."""
    return {op.pool or op.tags[POOL_TAG] for op in job.graph.iterate_op_defs() if op.pool or POOL_TAG in op.tags}


def claimed_slots(instance: dg.DagsterInstance, pools: Iterable[str] | None = None) -> dict[str, list[str]]:
    """run id -> the pools it holds a slot of (one entry per slot), for ``pools`` or all."""
    storage = instance.event_log_storage
    if not storage.supports_global_concurrency_limits:
        return {}
    keys = sorted(pools) if pools is not None else sorted(storage.get_concurrency_keys())
    held: dict[str, list[str]] = defaultdict(list)
    for key, info in storage.get_concurrency_infos(keys).items():
        for slot in info.claimed_slots:
            held[slot.run_id].append(key)
    return dict(held)


@dataclass(frozen=True)
class RunHolder:
    """A run that holds pool slots or is recorded as running, with its worker."""

    run: dg.DagsterRun
    worker: Worker | None
    pools: tuple[str, ...]

    @property
    def alive(self) -> bool:
        """It has not ended and its process is known to live (on this host)."""
        return not self.run.is_finished and self.worker is not None and self.worker.local and self.worker.alive()

    @property
    def dead(self) -> bool:
        """Its process is known to be gone (on this host), or it ended and kept its slots."""
        if self.run.is_finished:
            return bool(self.pools)
        return self.worker is not None and self.worker.local and not self.worker.alive()

    def describe(self) -> str:
        where = self.worker.describe() if self.worker else "no worker recorded"
        pools = f", holds {', '.join(sorted(set(self.pools)))}" if self.pools else ""
        return f"run {self.run.run_id[:8]} ({self.run.job_name}, {self.run.status.value}, {where}{pools})"


def holders(instance: dg.DagsterInstance, pools: Iterable[str] | None = None) -> list[RunHolder]:
    """Runs recorded as running, and runs holding slots of ``pools`` (or of any pool)."""
    held = claimed_slots(instance, pools)
    running = {r.run_id: r for r in instance.get_runs(filters=dg.RunsFilter(statuses=RUNNING))}
    missing = [rid for rid in held if rid not in running]
    if missing:
        running |= {r.run_id: r for r in instance.get_runs(filters=dg.RunsFilter(run_ids=missing))}
    return [RunHolder(run, worker_of(instance, run), tuple(held.get(rid, ())))
            for rid, run in sorted(running.items())]


def stuck_runs(instance: dg.DagsterInstance) -> list[RunHolder]:
    """Runs holding slots or a queue place with no live process behind them."""
    return [h for h in holders(instance) if h.dead]


def release(instance: dg.DagsterInstance, holder: RunHolder, why: str) -> int:
    """Marks the run failed (when it has not ended) and frees its slots; the slots freed."""
    if not holder.run.is_finished:
        instance.report_run_failed(holder.run, f"released: {why}")
    instance.event_log_storage.free_concurrency_slots_for_run(holder.run.run_id)
    return len(holder.pools)


@dataclass(frozen=True)
class Released:
    holder: RunHolder
    slots: int

    def line(self) -> str:
        w = self.holder.worker
        gone = f"its process ({w.describe()}) is gone" if w and not self.holder.run.is_finished else "it had ended"
        return (f"released run {self.holder.run.run_id[:8]} ({self.holder.run.job_name}): {gone}; "
                f"marked failed, {self.slots} pool slot(s) freed")


def release_dead_runs(instance: dg.DagsterInstance, job_name: str, pools: Collection[str]) -> list[Released]:
    """Releases the dead runs of ``job_name`` or of any of ``pools`` on this host."""
    out = []
    for h in holders(instance):
        if h.dead and (h.run.job_name == job_name or set(h.pools) & set(pools)):
            out.append(Released(h, release(instance, h, f"{h.describe()} has no live process")))
    return out


def blocked_pools(instance: dg.DagsterInstance, pools: Collection[str]) -> dict[str, list[RunHolder]]:
    """The pools of ``pools`` with no free slot, and the runs holding their slots."""
    storage = instance.event_log_storage
    if not pools or not storage.supports_global_concurrency_limits:
        return {}
    full = {key: info for key, info in storage.get_concurrency_infos(sorted(pools)).items()
            if info.limit is not None and len(info.claimed_slots) >= info.limit}
    if not full:
        return {}
    by_run = {h.run.run_id: h for h in holders(instance, full)}
    return {key: [by_run[rid] for rid in sorted({s.run_id for s in info.claimed_slots}) if rid in by_run]
            for key, info in full.items()}


def find_holder(instance: dg.DagsterInstance, run_id: str) -> RunHolder | None:
    """The run of this id, or of this id's prefix (as the CLI prints it) among the runs
    recorded as running or holding slots."""
    run = instance.get_run_by_id(run_id)
    if run is not None:
        return RunHolder(run, worker_of(instance, run), tuple(claimed_slots(instance).get(run.run_id, ())))
    matches = [h for h in holders(instance) if h.run.run_id.startswith(run_id)]
    return matches[0] if len(matches) == 1 else None
