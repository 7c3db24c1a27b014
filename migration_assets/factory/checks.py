"""Asset checks built from the specs: per table row-count and checksum parity (blocking:
children of a failing table do not load), per loader the open quarantine, per remap the
reference parity."""


import dagster as dg

from migration_assets.factory.keys import column_key, table_key
from migration_assets.factory.metadata import markdown_table
from migration_assets.resources import MongoSourceResource, PostgresTargetResource
from migration_assets.spec import DeferredRemap, LoaderSpec
from migration_assets.verify import TableVerification, diff_rows, verify_loader, verify_remap

DIFF_SAMPLE = 50


def parity_results(key: dg.AssetKey, tv: TableVerification, diff=None, *, extra=None):
    """The row-count and checksum AssetCheckResults of one table."""
    count_meta = {
        "expected_rows": tv.source.count,
        "actual_rows": tv.target.count,
        "diff": tv.target.count - tv.source.count,
        "quarantined_rows": tv.quarantined_rows,
        **(extra or {}),
    }
    yield dg.AssetCheckResult(
        asset_key=key, check_name="row_count_parity", passed=tv.counts_match,
        severity=dg.AssetCheckSeverity.ERROR, metadata=count_meta,
        description=None if tv.counts_match else
        f"PostgreSQL has {tv.target.count} rows, the source {tv.source.count} (+{tv.quarantined_rows} quarantined)",
    )
    meta = {
        "expected_checksum": tv.source.hexdigest,
        "actual_checksum": tv.target.hexdigest,
        "rows_compared": tv.source.count,
    }
    if diff is not None:
        meta.update({
            "rows_missing_in_postgres": len(diff.missing),
            "rows_extra_in_postgres": len(diff.extra),
            "rows_changed": len(diff.changed),
            "differing_rows": dg.MetadataValue.md(markdown_table(
                ["row (document _id | row)", "difference", "columns"],
                [(k, "missing in PostgreSQL", "") for k in diff.missing[:DIFF_SAMPLE]]
                + [(k, "extra in PostgreSQL", "") for k in diff.extra[:DIFF_SAMPLE]]
                + [(k, "changed", ", ".join(cols)) for k, cols in diff.changed[:DIFF_SAMPLE]],
            )),
        })
    yield dg.AssetCheckResult(
        asset_key=key, check_name="checksum_parity", passed=tv.checksums_match,
        severity=dg.AssetCheckSeverity.ERROR, metadata=meta,
        description=None if tv.checksums_match or diff is None else
        f"{len(diff.missing)} missing, {len(diff.extra)} extra, {len(diff.changed)} changed rows",
    )


def build_loader_checks(loader: LoaderSpec) -> dg.AssetChecksDefinition:
    specs = []
    for t in loader.tables:
        key = table_key(t.table)
        specs.append(dg.AssetCheckSpec("row_count_parity", asset=key, blocking=True,
                                       description="PostgreSQL rows = source rows - quarantined rows"))
        specs.append(dg.AssetCheckSpec("checksum_parity", asset=key, blocking=True,
                                       description="canonical projection checksum, Mongo (Python) vs PostgreSQL (SQL)"))
    specs.append(dg.AssetCheckSpec("quarantine_empty", asset=table_key(loader.root.table), blocking=False,
                                   description="documents of this collection that could not be mapped (WARN)"))

    @dg.multi_asset_check(name=f"verify_{loader.name}", specs=specs,
                          description=f"Verifies {', '.join(loader.table_names)} against Mongo `{loader.collection}`.")
    def _verify(context: dg.AssetCheckExecutionContext, mongo: MongoSourceResource,
                postgres: PostgresTargetResource):
        with mongo.session() as source, postgres.connect(f"verify_{loader.name}") as conn:
            v = verify_loader(loader, source, conn)
            for t in loader.tables:
                tv = v.tables[t.table]
                diff = None if tv.checksums_match else diff_rows(loader, t.table, source, conn, limit=DIFF_SAMPLE)
                yield from parity_results(table_key(t.table), tv, diff, extra={
                    "source_documents": v.source_docs, "quarantined_documents": v.quarantined_docs,
                    "source_seconds": round(v.seconds_source, 3), "target_seconds": round(v.seconds_target, 3),
                })
            sample = conn.execute(
                "SELECT legacy_id, reason_code, reason FROM migration.quarantine "
                "WHERE loader = %s AND resolved_at IS NULL ORDER BY legacy_id LIMIT 20", [loader.name]).fetchall()
            by_code = dict(conn.execute(
                "SELECT reason_code, count(*) FROM migration.quarantine WHERE loader = %s AND resolved_at IS NULL "
                "GROUP BY 1", [loader.name]).fetchall())
        n = sum(by_code.values())
        meta = {"quarantined_documents": n, "by_reason": by_code or {"none": 0}}
        if sample:
            meta["sample"] = dg.MetadataValue.md(markdown_table(["_id", "code", "reason"], sample))
        yield dg.AssetCheckResult(asset_key=table_key(loader.root.table), check_name="quarantine_empty",
                                  passed=n == 0, severity=dg.AssetCheckSeverity.WARN, metadata=meta)

    return _verify


def build_remap_checks(loader: LoaderSpec, remap: DeferredRemap) -> dg.AssetChecksDefinition:
    key = column_key(remap.table, remap.column)

    @dg.asset_check(asset=key, name="reference_parity", blocking=True,
                    description="every source reference is set in PostgreSQL or refused into quarantine")
    def _check(mongo: MongoSourceResource, postgres: PostgresTargetResource) -> dg.AssetCheckResult:
        with mongo.session() as source, postgres.connect(f"verify_{remap.name}") as conn:
            tv = verify_remap(loader, remap, source, conn)
        return dg.AssetCheckResult(
            passed=tv.checksums_match, severity=dg.AssetCheckSeverity.ERROR,
            metadata={"expected_references": tv.source.count, "actual_references": tv.target.count,
                      "diff": tv.target.count - tv.source.count, "refused_references": tv.quarantined_rows,
                      "expected_checksum": tv.source.hexdigest, "actual_checksum": tv.target.hexdigest},
        )

    return _check
