"""Cross-domain tables: ``id_map`` (legacy ObjectId <-> new id, partitioned by domain) and
``pg_dualwrite_gaps`` (written by the application's dual-write path, watched here)."""

import dagster as dg

from migration_assets.cutover.id_map import id_map_consistency, reconcile_id_map
from migration_assets.factory.metadata import markdown_table
from migration_assets.factory.naming import GAPS, ID_MAP, ID_MAP_CONSISTENT, INFRASTRUCTURE, NO_OPEN_GAPS, TARGET_KINDS
from migration_assets.factory.partitions import DOMAIN_PARTITIONS
from migration_assets.factory.resources import PostgresTargetResource
from migration_assets.specs.registry import loaders_in_domain
from migration_assets.target.conformance import require_conformance
from migration_assets.target.gaps import open_gap_counts


@dg.multi_asset(
    name="id_map",
    specs=[dg.AssetSpec(ID_MAP, group_name=INFRASTRUCTURE, kinds=TARGET_KINDS, skippable=True,
                        description="Every migrated entity: legacy ObjectId <-> new uuid, with a reverse-lookup "
                        "index. Loaders write their entries in the same transaction as the rows; materializing a "
                        "domain partition reconciles the map with the domain's tables and reports stale entries.")],
    check_specs=[dg.AssetCheckSpec(
        ID_MAP_CONSISTENT, asset=ID_MAP, blocking=True,
        description="every migrated row of the run's domain (of every domain, in a run without one) has exactly its "
                    "own id_map entry; rows the application dual-wrote for other domains are theirs to reconcile")],
    partitions_def=DOMAIN_PARTITIONS,
    can_subset=True,
)
def id_map(context: dg.AssetExecutionContext, postgres: PostgresTargetResource):
    domains = [context.partition_key] if context.has_partition_key else DOMAIN_PARTITIONS.get_partition_keys()
    with postgres.connect("id_map") as conn:
        if ID_MAP in context.selected_asset_keys:
            require_conformance(conn)  # a target without id_map or the migration schema: one clear refusal
            result = reconcile_id_map(conn, entity_tables(domains))
            yield dg.MaterializeResult(asset_key=ID_MAP, metadata={
                "dagster/row_count": result.entries,
                "entries_by_entity": result.by_entity or {"none": 0},
                "entries_inserted": result.inserted,
                "stale_entries": result.stale,
                "domain": ", ".join(domains),
            })
        if context.selected_asset_check_keys:
            yield consistency_result(conn, domains)


def entity_tables(domains) -> list[str]:
    return [t.table for d in domains for l in loaders_in_domain(d) for t in l.tables if t.has_legacy_id]


def consistency_result(conn, domains) -> dg.AssetCheckResult:
    problems = id_map_consistency(conn, entity_tables(domains))
    rows = [(p.entity, p.missing, p.wrong, p.orphaned) for p in problems]
    return dg.AssetCheckResult(
        asset_key=ID_MAP, check_name=ID_MAP_CONSISTENT,
        passed=not any(p.missing or p.wrong for p in problems),
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={
            "domains": ", ".join(domains),
            "rows_without_entry": sum(p.missing for p in problems),
            "entries_with_wrong_id": sum(p.wrong for p in problems),
            "entries_without_row": sum(p.orphaned for p in problems),
            "by_entity": dg.MetadataValue.md(markdown_table(["entity", "missing", "wrong", "without row"], rows))
            if rows else "all consistent",
        },
    )


pg_dualwrite_gaps = dg.AssetSpec(
    key=GAPS,
    group_name=INFRASTRUCTURE,
    kinds=TARGET_KINDS,
    description="Writes the application's dual-write path could not apply to PostgreSQL. Written by "
    "the backend; the gap sensor re-syncs the affected rows and marks the gaps resolved.",
)


@dg.asset_check(asset=GAPS, name=NO_OPEN_GAPS, blocking=False,
                description="open (unresolved) dual-write gaps per entity (WARN)")
def no_open_gaps(postgres: PostgresTargetResource) -> dg.AssetCheckResult:
    with postgres.connect("gaps_check") as conn:
        by_entity = open_gap_counts(conn)
    n = sum(by_entity.values())
    return dg.AssetCheckResult(
        passed=n == 0, severity=dg.AssetCheckSeverity.WARN,
        metadata={"open_gaps": n, "by_entity": by_entity or {"none": 0}},
    )
