"""Runs recorded as in progress whose process is gone, and releasing them.

A run whose process was killed (SIGKILL, a dead machine) stays STARTED in Dagster's storage,
and at run granularity it holds its pools until it ends: the next run of the same table
would wait for it forever. Releasing it marks it failed, which is all it holds; the data
needs nothing, since each batch commits with its checkpoint and the next load resumes there
(its lease names the dead worker, so the load passes to the next run at once). A run whose
worker is alive, or lives on another host, is never released here; the daemon's run
monitoring asks the same question of the run launcher (``dagster_internals.py``)."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

import dagster as dg

from migration_assets.factory.workers import worker_of
from migration_assets.orchestration.pools import run_pools, runs_holding_pools
from migration_assets.processes import Process


@dataclass(frozen=True)
class RunHolder:
    """A run recorded as in progress, with its worker and the pools it holds."""

    run: dg.DagsterRun
    worker: Process | None
    pools: frozenset[str]

    @property
    def alive(self) -> bool:
        """It has not ended and its process is known to live (on this host)."""
        return not self.run.is_finished and self.worker is not None and self.worker.local and self.worker.alive()

    @property
    def dead(self) -> bool:
        """It has not ended and its process is known to be gone (on this host)."""
        return not self.run.is_finished and self.worker is not None and self.worker.local and not self.worker.alive()

    def describe(self, pools: bool = True) -> str:
        where = self.worker.describe() if self.worker else "no worker recorded"
        held = f", holds {', '.join(sorted(self.pools))}" if pools and self.pools else ""
        return f"run {self.run.run_id[:8]} ({self.run.job_name}, {self.run.status.value}, {where}{held})"


def holder_of(instance: dg.DagsterInstance, run: dg.DagsterRun) -> RunHolder:
    return RunHolder(run, worker_of(instance, run), frozenset(run_pools(run)))


def holders(instance: dg.DagsterInstance) -> list[RunHolder]:
    """Runs recorded as in progress (queued ones hold nothing)."""
    return [holder_of(instance, r) for r in runs_holding_pools(instance)]


def stuck_runs(instance: dg.DagsterInstance) -> list[RunHolder]:
    return [h for h in holders(instance) if h.dead]


def release(instance: dg.DagsterInstance, holder: RunHolder, why: str) -> None:
    """Marks the run failed: it holds its pools no longer."""
    if not holder.run.is_finished:
        instance.report_run_failed(holder.run, f"released: {why}")


@dataclass(frozen=True)
class Released:
    holder: RunHolder

    def line(self) -> str:
        w = self.holder.worker
        return (f"released run {self.holder.run.run_id[:8]} ({self.holder.run.job_name}): its process "
                f"({w.describe() if w else 'unknown'}) is gone; marked failed"
                + (f", freeing {', '.join(sorted(self.holder.pools))}" if self.holder.pools else ""))


def release_dead_runs(instance: dg.DagsterInstance, job_name: str, pools: Collection[str]) -> list[Released]:
    """Releases the dead runs of ``job_name`` or of any of ``pools`` on this host."""
    out = []
    for h in holders(instance):
        if h.dead and (h.run.job_name == job_name or h.pools & set(pools)):
            release(instance, h, f"{h.describe()} has no live process")
            out.append(Released(h))
    return out


def find_holder(instance: dg.DagsterInstance, run_id: str) -> RunHolder | None:
    """The run of this id, or of this id's prefix (as the CLI prints it) among the runs in progress."""
    run = instance.get_run_by_id(run_id)
    if run is not None:
        return holder_of(instance, run)
    matches = [h for h in holders(instance) if h.run.run_id.startswith(run_id)]
    return matches[0] if len(matches) == 1 else None
