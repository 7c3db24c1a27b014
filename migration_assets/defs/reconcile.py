"""The catch-up that misses nothing (``cutover/reconcile.py``) as Dagster pieces:

* ``reconcile``: a job that reconciles the loaders its config names (FK order), re-syncing
  exactly the new, changed and vanished documents; each table's asset gets an observation
  with the pass's counts (the UI shows them on the table);
* ``parity_failure_sensor``: the second trigger next to ``source_change_sensor``. A
  ``row_count_parity`` or ``checksum_parity`` that a scheduled verification found failing,
  on a non-ledger table, requests one reconciliation of that loader (run key: the loader and
  the failing run). A loader still failing after ``records.MAX_RECONCILIATIONS`` of them is
  left to people; ``migration-assets status`` says so.
"""

import dagster as dg

from migration_assets.cutover.reconcile import Reconciliation, reconcile_loaders
from migration_assets.factory.metadata import markdown_table
from migration_assets.factory.naming import RECONCILE, table_key
from migration_assets.factory.resources import MongoSourceResource, PostgresTargetResource
from migration_assets.orchestration.records import RECONCILE_TAG, failing_scheduled, left_to_people
from migration_assets.specs.model import LoaderSpec
from migration_assets.specs.registry import all_loaders

LABELS = {"new": "new", "changed": "changed", "extra": "extra in PostgreSQL", "conflicts": "immutable conflict (kept)",
          "withdrawn": "no longer maps: quarantined, its rows removed",
          "unresolved": "not resolved: its row stays (the run's failure says why)"}
LISTED = 1000  # document ids per kind an observation lists (the counts are exact)


class ReconcileConfig(dg.Config):
    """Which loaders to reconcile (names; empty: every loader), and whether to write."""

    loaders: list[str] = []
    dry_run: bool = False
    full: bool = False  # canonicalize every document instead of reusing the last pass's digests


def observation(loader: LoaderSpec, r: Reconciliation, table: str) -> dg.AssetObservation:
    meta = {"reconciliation": "dry run: nothing written" if r.dry_run else "applied",
            "documents_new": len(r.new), "documents_changed": len(r.changed), "documents_extra": len(r.removed),
            "documents_written": len(r.written), "documents_removed": len(r.deleted),
            "documents_withdrawn": len(r.withdrawn), "documents_unresolved": len(r.unresolved),
            "immutable_conflicts": len(r.conflicts), "documents_read": r.documents_read,
            "documents_decoded": r.documents_decoded,
            "ranges_hashed": r.ranges_hashed, "postgres_rows_fetched": r.rows_fetched,
            "seconds": round(r.seconds, 3), "seconds_verifying": round(r.seconds_verifying, 3),
            "seconds_locating": round(r.seconds_locating, 3)}
    if r.resync is not None:
        meta["rows_inserted_or_changed"] = r.resync.rows_changed.get(table, 0)
        meta["documents_not_applied"] = len(r.refused)
    if table == loader.root.table and (r.documents or r.conflicts):
        kinds = {"new": r.new, "changed": r.changed, "extra": r.removed, "conflicts": r.conflicts,
                 "withdrawn": r.withdrawn, "unresolved": sorted(r.unresolved)}
        rows = [(d, LABELS[kind]) for kind, ids in kinds.items() for d in ids]
        meta["documents"] = dg.MetadataValue.md(markdown_table(["document _id", "difference"], rows[:200]))
        meta["document_ids"] = dg.MetadataValue.json({k: ids[:LISTED] for k, ids in kinds.items()})
    return dg.AssetObservation(asset_key=table_key(table), metadata=meta)


@dg.op(name="reconcile_step", description="Reconciles the configured loaders: finds the new, changed and vanished "
                                          "documents by digests and bisection and re-syncs exactly those.")
def reconcile_step(context: dg.OpExecutionContext, config: ReconcileConfig, mongo: MongoSourceResource,
                   postgres: PostgresTargetResource) -> dg.Output:
    unknown = set(config.loaders) - {l.name for l in all_loaders()}
    if unknown:
        raise dg.Failure(f"no loader named {', '.join(sorted(unknown))}")
    loaders = [l for l in all_loaders() if not config.loaders or l.name in config.loaders]
    with mongo.session() as source, postgres.connect("reconcile") as conn:
        done = reconcile_loaders(loaders, source, conn, run_id=context.run.run_id, dry_run=config.dry_run,
                                 workers=mongo.checksum_workers, full=config.full)
    totals = {"loaders": len(done), "documents_new": 0, "documents_changed": 0, "documents_extra": 0,
              "documents_written": 0, "documents_removed": 0, "documents_withdrawn": 0,
              "documents_quarantined": 0, "immutable_conflicts": 0, "documents_read": 0, "documents_decoded": 0,
              "ranges_hashed": 0,
              "postgres_rows_fetched": 0}
    refused: dict[str, str] = {}
    for loader, r in zip(loaders, done):
        for t in loader.table_names:
            context.log_event(observation(loader, r, t))
        context.log.info(r.summary)
        for k, v in (("documents_new", len(r.new)), ("documents_changed", len(r.changed)),
                     ("documents_extra", len(r.removed)), ("documents_written", len(r.written)),
                     ("documents_removed", len(r.deleted)), ("documents_withdrawn", len(r.withdrawn)),
                     ("immutable_conflicts", len(r.conflicts)),
                     ("documents_read", r.documents_read), ("documents_decoded", r.documents_decoded),
                     ("ranges_hashed", r.ranges_hashed),
                     ("postgres_rows_fetched", r.rows_fetched)):
            totals[k] += v
        quarantined = set(r.resync.quarantined) if r.resync else set()
        totals["documents_quarantined"] += len(quarantined)  # bad input: quarantined with its reason, as in a load
        # what remains different fails the run; a quarantined document with no row left is settled
        refused.update({f"{loader.name} {d}": why for d, why in r.unresolved.items()})
    if refused:
        first = next(iter(sorted(refused.values())))
        more = f" (and {len(refused) - 1} more)" if len(refused) > 1 else ""
        raise dg.Failure(description=f"{len(refused)} difference(s) not resolved: {first}{more}", metadata={
            **totals, "not_applied": dg.MetadataValue.md(markdown_table(["document", "why"], sorted(refused.items())))})
    return dg.Output(totals, metadata=totals)


@dg.job(name=RECONCILE, tags={"kind": "reconcile"},
        description="The catch-up that misses nothing: new, changed (updatedAt or not) and deleted documents reach "
                    "PostgreSQL; removed rows are kept in migration.removed_rows; the ledger is never rewritten.")
def reconcile_job():
    reconcile_step()


# --- the second trigger -----------------------------------------------------------------------

@dg.sensor(name="parity_failure_sensor", job=reconcile_job, minimum_interval_seconds=120,
           default_status=dg.DefaultSensorStatus.RUNNING,
           description="A parity check a scheduled verification found failing (non-ledger table) -> one "
                       "reconciliation of its loader; left to people after a few that did not help.")
def parity_failure_sensor(context: dg.SensorEvaluationContext):
    requests, notes = [], []
    for loader in all_loaders():
        if loader.append_only:
            continue  # the ledger is never rewritten: its conflicts are for auditors
        run_id = failing_scheduled(context.instance, loader)
        if run_id is None:
            continue
        done = left_to_people(context.instance, loader)
        if done is not None:
            notes.append(f"{loader.name}: still failing after {done} reconciliations; left to people")
            continue
        requests.append(dg.RunRequest(
            run_key=f"reconcile-{loader.name}-{run_id}",
            run_config={"ops": {"reconcile_step": {"config": {"loaders": [loader.name]}}}},
            tags={RECONCILE_TAG: loader.name, "failing_run": run_id}))
    if not requests:
        return dg.SensorResult(skip_reason="; ".join(notes) or "no parity check of a scheduled verification fails")
    return dg.SensorResult(run_requests=requests)


defs = dg.Definitions(jobs=[reconcile_job], sensors=[parity_failure_sensor])
