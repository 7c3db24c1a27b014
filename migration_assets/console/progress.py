"""What a run has done so far, read from its own events: the same events whether the run
executes in this process (``migrate``, ``verify``, ``readiness``) or elsewhere (``watch``).

The run plans every materialization and check before its first step, so each asset knows
the steps it waits for; when those steps end, the asset's line can be printed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import dagster as dg

from migration_assets.console.errors import Explained, explain_recorded
from migration_assets.console.exits import Exit, for_checks
from migration_assets.factory.metadata import LoadProgress, read_progress_line

if TYPE_CHECKING:
    from dagster_shared.error import SerializableErrorInfo

ET = dg.DagsterEventType
STEP_ENDS = {ET.STEP_SUCCESS, ET.STEP_FAILURE, ET.STEP_SKIPPED}
RUN_ENDS = {ET.RUN_SUCCESS: "SUCCESS", ET.RUN_FAILURE: "FAILURE", ET.RUN_CANCELED: "CANCELED"}


@dataclass(frozen=True)
class CheckResult:
    name: str
    passed: bool
    severity: str  # ERROR or WARN
    description: str | None = None  # what failed, as the check said it (the paths, the rows)


@dataclass
class AssetState:
    key: str
    partition: str | None = None
    steps: set[str] = field(default_factory=set)  # the steps that materialize or check it
    planned: bool = False
    checks_planned: list[str] = field(default_factory=list)
    metadata: dict[str, Any] | None = None  # of its materialization, or a dry run's observation
    observed: bool = False
    checks: dict[str, CheckResult] = field(default_factory=dict)
    reported: bool = False

    @property
    def label(self) -> str:
        return f"{self.key} [{self.partition}]" if self.partition else self.key

    @property
    def failed_checks(self) -> list[CheckResult]:
        return [c for c in self.checks.values() if not c.passed]


@dataclass(frozen=True)
class StepFailure:
    step: str | None  # None: the run failed outside any step
    error: SerializableErrorInfo


class RunState:
    def __init__(self, run_id: str, job: str, partition: str | None = None):
        self.run_id, self.job, self.partition = run_id, job, partition
        self.assets: dict[str, AssetState] = {}
        self.loads: dict[str, LoadProgress] = {}  # step -> latest progress of a load still running
        self.running: set[str] = set()
        self.finished_steps: set[str] = set()
        self.failures: list[StepFailure] = []
        self.status: str | None = None  # SUCCESS / FAILURE / CANCELED once the run ended
        self.started_at: float | None = None
        self.ended_at: float | None = None
        self.signum: int | None = None  # the signal that canceled it from this command line

    @property
    def label(self) -> str:
        """The job, and its partition unless the job is named after it (``migrate_auth``)."""
        if self.partition and not self.job.endswith(f"_{self.partition}"):
            return f"{self.job} [{self.partition}]"
        return self.job

    @property
    def seconds(self) -> float | None:
        return self.ended_at - self.started_at if self.started_at and self.ended_at else None

    def asset(self, key: dg.AssetKey, partition: str | None = None) -> AssetState:
        name = key.to_user_string()
        state = self.assets.setdefault(name, AssetState(name))
        state.partition = partition or state.partition
        return state

    def apply(self, entry: dg.EventLogEntry) -> None:
        ev = entry.dagster_event
        if ev is None:  # a log line: a loader's progress, or anything else a step says
            progress = read_progress_line(entry.user_message) if entry.step_key else None
            if progress and entry.step_key not in self.finished_steps:
                self.loads[entry.step_key] = progress
            return
        kind, step = ev.event_type, ev.step_key
        if kind == ET.ASSET_MATERIALIZATION_PLANNED:
            a = self.asset(ev.asset_key, ev.partition)
            a.planned = True
            a.steps.add(step)
        elif kind == ET.ASSET_CHECK_EVALUATION_PLANNED:
            planned = ev.asset_check_planned_data
            a = self.asset(planned.asset_key)
            a.checks_planned.append(planned.check_name)
            a.steps.add(step)
        elif kind == ET.ASSET_MATERIALIZATION:
            mat = ev.step_materialization_data.materialization
            self.asset(mat.asset_key, mat.partition).metadata = values(mat.metadata)
        elif kind == ET.ASSET_OBSERVATION:
            obs = ev.asset_observation_data.asset_observation
            meta = values(obs.metadata)
            if meta.get("dry_run"):  # other observations (a census, a reconciliation) are not a table's result
                a = self.asset(obs.asset_key, obs.partition)
                a.metadata, a.observed = meta, True
        elif kind == ET.ASSET_CHECK_EVALUATION:
            e = ev.asset_check_evaluation_data
            self.asset(e.asset_key).checks[e.check_name] = CheckResult(e.check_name, e.passed, e.severity.value,
                                                                       e.description)
        elif kind == ET.STEP_START:
            self.running.add(step)
        elif kind in STEP_ENDS:
            self.running.discard(step)
            self.finished_steps.add(step)
            self.loads.pop(step, None)
            if kind == ET.STEP_FAILURE:
                self.failures.append(StepFailure(step, ev.step_failure_data.error))
        elif kind == ET.RUN_START:
            self.started_at = entry.timestamp
        elif kind in RUN_ENDS:
            self.status, self.ended_at = RUN_ENDS[kind], entry.timestamp
            self.running.clear()
            self.loads.clear()
            error = ev.job_failure_data.error if kind == ET.RUN_FAILURE else None
            if error is not None and not self.failures:
                self.failures.append(StepFailure(None, error))

    def newly_finished(self) -> list[AssetState]:
        """Assets whose steps have all ended (every one, once the run ended), each returned once."""
        done = [a for a in self.assets.values() if not a.reported
                and (self.status is not None or a.steps <= self.finished_steps)]
        for a in done:
            a.reported = True
        return done

    def exit_status(self) -> Exit:
        if self.signum:
            return Exit.for_signal(self.signum)
        severities = [c.severity for a in self.assets.values() for c in a.failed_checks]
        return for_checks(severities, run_failed=self.status != "SUCCESS")

    def errors(self) -> list[Explained]:
        """One line per next step: the steps it concerns, and the first failure it answers."""
        grouped: dict[str, tuple[Explained, list[str], set[str]]] = {}
        for f in self.failures:
            e = explain_recorded(f.error, self.job)
            first, steps, texts = grouped.setdefault(e.next_step, (e, [], set()))
            steps.append(f.step or "run")
            texts.add(e.text)
        return [Explained(f"{self.job} {', '.join(steps[:2])}" + (f" and {len(steps) - 2} more steps" if len(steps) > 2 else ""),
                          first.text + (f" (and {len(texts) - 1} more like it)" if len(texts) > 1 else ""),
                          first.next_step, first.status)
                for first, steps, texts in grouped.values()]


def values(metadata) -> dict[str, Any]:
    return {k: getattr(v, "value", v) for k, v in metadata.items()}
