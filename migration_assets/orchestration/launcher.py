"""The run launcher of ``dagster.yaml``: Dagster's default one (each run in a subprocess of
its code server), with the worker-liveness check that run monitoring asks a launcher for.
Dagster's default launcher has none, so the daemon could never tell a SIGKILLed worker from
a busy one. The check answers only for workers on the daemon's own host, which is where the
default launcher starts them (the code locations of workspace.yaml run as local processes);
CLI runs on the same host are covered by the same check."""

from __future__ import annotations

from typing import Self

import dagster as dg
from dagster._core.launcher import CheckRunHealthResult, LaunchRunContext, WorkerStatus
from dagster._core.launcher.default_run_launcher import DefaultRunLauncher

from migration_assets.orchestration.workers import HOST_TAG, this_host, worker_of


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
