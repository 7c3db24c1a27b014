"""Jobs by domain (migrate, verify), the full migration, the hourly verification, and the
re-sync of given rows (launched by the dual-write gap sensor).

Every job runs on ``factory/executors.py``'s executor: by default a process per step, forked
from a server that has the definitions loaded; ``in_process: true`` for small runs (the
command line chooses it when every collection of the run fits one range)."""

import dagster as dg

from migration_assets.factory.executors import EXECUTOR
from migration_assets.factory.metadata import markdown_table
from migration_assets.factory.naming import (
    HOURLY_VERIFICATION,
    ID_MAP,
    MIGRATE_ALL,
    RESYNC,
    VERIFY_ALL,
    domain_tags,
    migrate_job,
    table_key,
    verify_job,
)
from migration_assets.factory.resources import MongoSourceResource, PostgresTargetResource
from migration_assets.load.resync import resync_gaps
from migration_assets.specs.registry import DOMAINS
from migration_assets.target.gaps import Gap, gaps_by_id


def domain_tables(domain: str) -> dg.AssetSelection:
    return dg.AssetSelection.groups(domain).materializable()


migrate_jobs = [
    dg.define_asset_job(
        migrate_job(d),
        selection=domain_tables(d) | dg.AssetSelection.assets(ID_MAP),
        description=f"Loads and verifies every {d} table, then reconciles id_map for {d} "
        f"(launch with partition '{d}').",
        tags=domain_tags(d),
    )
    for d in DOMAINS
]

verify_jobs = [
    dg.define_asset_job(
        verify_job(d),
        selection=dg.AssetSelection.all_asset_checks() & dg.AssetSelection.groups(d),
        description=f"Runs every check of the {d} tables without loading data.",
        tags=domain_tags(d),
    )
    for d in DOMAINS
]

migrate_all = dg.define_asset_job(
    MIGRATE_ALL,
    selection=dg.AssetSelection.groups(*DOMAINS).materializable(),
    description="Loads and verifies every table of every domain in FK order (id_map is per domain).",
)

verify_all = dg.define_asset_job(
    VERIFY_ALL,
    selection=dg.AssetSelection.all_asset_checks(),
    description="Runs every asset check (counts, checksums, integrity, ledger) without loading data.",
)

hourly_verification = dg.ScheduleDefinition(
    name=HOURLY_VERIFICATION,
    job=verify_all,
    cron_schedule="0 * * * *",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Re-verifies every table every hour.",
)

class ResyncRows(dg.Config):
    """Rows of one entity (a table name, as pg_dualwrite_gaps records it, or a collection)."""

    entity: str
    legacy_ids: list[str]


class ResyncConfig(dg.Config):
    """What to re-sync: rows by entity and legacy id, and/or the open dual-write gaps
    ``gap_ids`` (each resolved only if its row was re-synced in the same transaction)."""

    rows: list[ResyncRows] = []
    gap_ids: list[int] = []


@dg.op(name=f"{RESYNC}_step", description="Re-syncs exactly the given rows from Mongo through the load path.")
def resync_rows_op(context: dg.OpExecutionContext, config: ResyncConfig, mongo: MongoSourceResource,
                   postgres: PostgresTargetResource) -> dg.Output:
    with mongo.session() as source, postgres.connect("resync_rows") as conn:
        gaps = gaps_by_id(conn, config.gap_ids) if config.gap_ids else []
        covered = {(g.entity, g.legacy_id) for g in gaps}
        # Rows asked for without a gap ride along as pseudo-gaps (negative ids: nothing to resolve).
        extra = [(r.entity, i) for r in config.rows for i in r.legacy_ids if (r.entity, i) not in covered]
        gaps += [Gap(-1 - n, entity, legacy, None, "upsert") for n, (entity, legacy) in enumerate(extra)]
        reports = resync_gaps(source, conn, gaps, run_id=context.run.run_id)
    resolved = sorted(i for r in reports for i in r.gaps_resolved if i > 0)
    left = {i: why for r in reports for i, why in r.gaps_left_open.items() if i > 0}
    refused = {f"{r.loader} {k}": why for r in reports for k, why in r.refused.items()}
    for r in reports:
        for table, n in r.rows_changed.items():
            if n:
                context.log_event(dg.AssetMaterialization(
                    asset_key=table_key(table), description=f"re-sync of {len(r.loaded)} document(s)",
                    metadata={"resync": True, "rows_inserted_or_changed": n, "documents": ", ".join(r.loaded)[:2000]}))
    meta = {
        "documents_loaded": sum(len(r.loaded) for r in reports),
        "documents_removed": sum(len(r.removed) for r in reports),
        "documents_refused": len(refused),
        "gaps_resolved": len(resolved),
        "gaps_left_open": len(left),
    }
    if refused or left:
        context.log.warning(f"re-sync left gaps open: {left}; refused documents: {refused}")
        raise dg.Failure(
            description=f"{len(resolved)} gap(s) resolved, {len(left)} left open, {len(refused)} document(s) not applied",
            metadata={**meta, "not_applied": dg.MetadataValue.md(markdown_table(
                ["document", "why"], sorted(refused.items()) + [(f"gap {k}", v) for k, v in sorted(left.items())]))},
        )
    return dg.Output(resolved, metadata=meta)


@dg.job(name=RESYNC, tags={"kind": "resync"},
        description="Re-syncs exactly the rows its config lists (entity + legacy ids, and the dual-write gaps "
        "they close) from Mongo into PostgreSQL through the load path; launched by dualwrite_gap_sensor.")
def resync_rows_job():
    # The node keeps the name "resync_rows" (the run config key); the op definition may not
    # share the job's name (Dagster refuses the code location otherwise).
    resync_rows_op.alias(RESYNC)()


defs = dg.Definitions(jobs=[*migrate_jobs, *verify_jobs, migrate_all, verify_all, resync_rows_job],
                      schedules=[hourly_verification], executor=EXECUTOR)
