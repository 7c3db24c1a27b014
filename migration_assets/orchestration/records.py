"""Everything the platform reads back from the Dagster instance, in one place and one
vocabulary (``verify/outcomes.py``): check outcomes (latest and past), runs, the latest
readiness verdict, and the reconciliation trigger's bookkeeping. The CLI, readiness and the
sensors read through here; the storage calls themselves are in ``dagster_internals.py``."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import dagster as dg

from migration_assets.factory.naming import HOURLY_VERIFICATION, PARITY, READINESS, table_key
from migration_assets.orchestration.dagster_internals import check_executions, latest_check_executions
from migration_assets.specs.model import LoaderSpec
from migration_assets.verify.outcomes import NOT_EXECUTED, PASSED, RUNNING, SKIPPED, failed

IN_PROGRESS = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING,
               dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING]
RECONCILE_TAG = "reconcile_loader"
SCHEDULE_TAG = "dagster/schedule_name"
MAX_RECONCILIATIONS = 3  # a loader still failing after this many is left to people
HISTORY = 20  # executions of a check looked back at for its last pass


# --- check outcomes ------------------------------------------------------------------------

def outcome(instance: dg.DagsterInstance, record) -> str:
    """One check execution in the one vocabulary."""
    status = record.status.value
    if status == "SUCCEEDED":
        return PASSED
    if status == "FAILED":
        data = record.event.dagster_event.event_specific_data if record.event and record.event.dagster_event else None
        return failed(getattr(getattr(data, "severity", None), "value", "ERROR"))
    run = instance.get_run_by_id(record.run_id)
    if run is None or not run.is_finished:
        return RUNNING
    return SKIPPED if run.status == dg.DagsterRunStatus.SUCCESS else NOT_EXECUTED


def latest_outcomes(instance: dg.DagsterInstance, keys: Iterable[dg.AssetCheckKey]) -> dict[dg.AssetCheckKey, str]:
    """Each check's latest outcome (checks never executed are absent)."""
    return {k: outcome(instance, r) for k, r in latest_check_executions(instance, list(keys)).items()}


@dataclass(frozen=True)
class History:
    key: dg.AssetCheckKey
    outcomes: list[str]  # newest first, ended executions only


def check_history(instance: dg.DagsterInstance, keys: Iterable[dg.AssetCheckKey], runs: int) -> list[History]:
    out = []
    for key in sorted(keys, key=lambda k: (k.asset_key.to_user_string(), k.name)):
        outcomes = [o for o in (outcome(instance, r) for r in check_executions(instance, key, runs + 5))
                    if o != RUNNING]
        out.append(History(key, outcomes[:runs]))
    return out


# --- runs ----------------------------------------------------------------------------------

def runs_in_progress(instance: dg.DagsterInstance) -> list[dg.DagsterRun]:
    return list(instance.get_runs(filters=dg.RunsFilter(statuses=IN_PROGRESS)))


def latest_run(instance: dg.DagsterInstance, job_name: str) -> dg.RunRecord | None:
    records = instance.get_run_records(filters=dg.RunsFilter(job_name=job_name), limit=1)
    return records[0] if records else None


def runs_tagged(instance: dg.DagsterInstance, tag: str, value: str, limit: int | None = None) -> list[dg.DagsterRun]:
    return list(instance.get_runs(filters=dg.RunsFilter(tags={tag: value}), limit=limit))


def run_by_tag(instance: dg.DagsterInstance, tag: str, value: str) -> dg.DagsterRun | None:
    runs = runs_tagged(instance, tag, value, limit=1)
    return runs[0] if runs else None


def unfinished_runs_of(instance: dg.DagsterInstance, job_name: str) -> list[dg.DagsterRun]:
    unfinished = [s for s in dg.DagsterRunStatus if s not in (dg.DagsterRunStatus.SUCCESS,
                                                                dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED)]
    return list(instance.get_runs(filters=dg.RunsFilter(job_name=job_name, statuses=unfinished)))


def latest_readiness(instance: dg.DagsterInstance, domain: str) -> tuple[dict[str, Any], float] | None:
    """The newest cutover-readiness materialization of ``domain``: (metadata values, when)."""
    records = instance.fetch_materializations(dg.AssetRecordsFilter(asset_key=READINESS, asset_partitions=[domain]),
                                              limit=1).records
    if not records:
        return None
    mat = records[0].asset_materialization
    return {k: getattr(v, "value", v) for k, v in mat.metadata.items()}, records[0].timestamp


def events_after(instance: dg.DagsterInstance, run_id: str, cursor: str | None):
    """A run's events stored after ``cursor``, a page at a time: (entries, next cursor, more to read)."""
    page = instance.get_records_for_run(run_id, cursor=cursor)
    return [r.event_log_entry for r in page.records], page.cursor, page.has_more


def observations_of_run(instance: dg.DagsterInstance, run_id: str) -> list[dg.AssetObservation]:
    return [e.dagster_event.event_specific_data.asset_observation
            for e in instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_OBSERVATION)]


def materializations_of_run(instance: dg.DagsterInstance, run_id: str) -> list[dg.AssetMaterialization]:
    return [e.dagster_event.event_specific_data.materialization
            for e in instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION)]


# --- the reconciliation's trigger ----------------------------------------------------------

def parity_keys(loader: LoaderSpec) -> list[dg.AssetCheckKey]:
    return [dg.AssetCheckKey(table_key(t), name) for t in loader.table_names for name in PARITY]


def failing_scheduled(instance: dg.DagsterInstance, loader: LoaderSpec) -> str | None:
    """The run of a scheduled verification in which a parity check of ``loader`` failed last."""
    for record in latest_check_executions(instance, parity_keys(loader)).values():
        if record.status.value != "FAILED":
            continue
        run = instance.get_run_by_id(record.run_id)
        if run is not None and run.tags.get(SCHEDULE_TAG) == HOURLY_VERIFICATION:
            return record.run_id
    return None


def reconciliations_since_green(instance: dg.DagsterInstance, loader: LoaderSpec) -> int:
    """Reconciliation runs of ``loader`` since its parity checks last all passed (for a check
    that never passed: since ever)."""
    last_passed = [next((r.create_timestamp for r in check_executions(instance, k, HISTORY)
                         if r.status.value == "SUCCEEDED"), None) for k in parity_keys(loader)]
    since = 0.0 if None in last_passed else min(last_passed, default=0.0)
    runs = instance.get_run_records(filters=dg.RunsFilter(tags={RECONCILE_TAG: loader.name}), limit=50)
    return sum(1 for r in runs if r.create_timestamp.timestamp() > since)


def left_to_people(instance: dg.DagsterInstance, loader: LoaderSpec) -> int | None:
    """The reconciliations that did not help, when a loader's parity still fails after
    ``MAX_RECONCILIATIONS`` of them (None otherwise)."""
    if loader.append_only or failing_scheduled(instance, loader) is None:
        return None
    done = reconciliations_since_green(instance, loader)
    return done if done >= MAX_RECONCILIATIONS else None
