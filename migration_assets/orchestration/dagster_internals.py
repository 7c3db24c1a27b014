"""The one module that reaches into Dagster's private API (``dagster._core``) or calls its
storage directly, and why each piece has no public way:

* ``MonitoredRunLauncher`` (named in ``dagster.yaml``): Dagster's default run launcher has no
  worker-liveness check, so run monitoring could never tell a SIGKILLed run worker from a busy
  one; a launcher is configured by class, and its base class and result types live in
  ``dagster._core.launcher``. It also terminates a run the command line started (no gRPC
  server runs it, so the default launcher cannot) the way Dagster terminates its own: the run
  is marked canceling, then its worker is interrupted.
* Asset check executions, latest and past: the instance has no public reader of a check's
  history (readiness needs the last N outcomes of every check). ``records.py`` is the only
  caller, and turns these records into the one vocabulary of ``verify/outcomes.py``.

``test_structure.py`` fails on any other module that imports ``dagster._`` or calls the event
log storage."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Self

import dagster as dg
from dagster._core.launcher import CheckRunHealthResult, LaunchRunContext, WorkerStatus
from dagster._core.launcher.default_run_launcher import DefaultRunLauncher

from migration_assets.factory.workers import HOST_TAG, PID_TAG, interrupt_worker, worker_of
from migration_assets.processes import this_host


class MonitoredRunLauncher(DefaultRunLauncher):
    @classmethod
    def from_config_value(cls, inst_data, config_value) -> Self:
        return cls(inst_data=inst_data)

    def launch_run(self, context: LaunchRunContext) -> None:
        self._instance.add_run_tags(context.dagster_run.run_id, {HOST_TAG: this_host()})
        super().launch_run(context)

    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def check_run_worker_health(self, run: dg.DagsterRun) -> CheckRunHealthResult:
        worker = worker_of(self._instance, run)
        if worker is None or not worker.local:
            return CheckRunHealthResult(WorkerStatus.UNKNOWN, "no worker recorded on this host")
        if worker.alive():
            return CheckRunHealthResult(WorkerStatus.RUNNING)
        return CheckRunHealthResult(WorkerStatus.FAILED, f"the run's worker ({worker.describe()}) no longer exists")

    def terminate(self, run_id: str) -> bool:
        run = self._instance.get_run_by_id(run_id)
        if run is None or run.is_finished or PID_TAG not in run.tags:
            return super().terminate(run_id)
        return interrupt_worker(self._instance, run, "termination requested")


def check_executions(instance: dg.DagsterInstance, key: dg.AssetCheckKey, limit: int) -> Sequence:
    """The check's most recent execution records, newest first."""
    return instance.event_log_storage.get_asset_check_execution_history(key, limit=limit)


def latest_check_executions(instance: dg.DagsterInstance, keys: Sequence[dg.AssetCheckKey]) -> dict:
    """check key -> its latest execution record, for every key that has one (one query)."""
    return dict(instance.event_log_storage.get_latest_asset_check_execution_by_key(list(keys)))
