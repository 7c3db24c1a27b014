"""Asset checks built from the specs: per table row-count and checksum parity (blocking:
children of a failing table do not load), per loader the open quarantine, per remap the
reference parity."""


import dagster as dg

from migration_assets.factory.keys import collection_key, column_key, table_key
from migration_assets.factory.metadata import markdown_table
from migration_assets.factory.resources import MongoSourceResource, PostgresTargetResource
from migration_assets.source.census import IGNORED, MAPPED, UNMAPPED, Census, mapped_paths, verdicts
from migration_assets.specs.model import DeferredRemap, LoaderSpec
from migration_assets.target.bookkeeping import open_quarantine_by_reason, open_quarantine_sample
from migration_assets.target.conformance import Conformance, Mismatch, check_conformance
from migration_assets.verify.checksums import TableVerification, verify_loader, verify_remap
from migration_assets.verify.diff import TableDiff, bisect_diff, summary_rows

DIFF_SAMPLE = 50


def parity_results(key: dg.AssetKey, tv: TableVerification, diff: TableDiff | None = None, *, extra=None,
                   diff_stats: dict | None = None, listed: dict | None = None):
    """The row-count and checksum AssetCheckResults of one table."""
    count_meta = {
        "expected_rows": tv.source.count,
        "actual_rows": tv.target.count,
        "diff": tv.target.count - tv.source.count,
        "quarantined_rows": tv.quarantined_rows,
        **(extra or {}),
        **(listed or {}),
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
        **(listed or {}),
    }
    if diff is not None:
        # Found by bisection over _id ranges (migration_assets/diff.py); counts are exact, the
        # table lists the first DIFF_SAMPLE differences.
        meta.update({
            "rows_missing_in_postgres": diff.missing,
            "rows_extra_in_postgres": diff.extra,
            "rows_changed": diff.changed,
            "differing_rows_total": diff.total,
            "differing_rows": dg.MetadataValue.md(markdown_table(
                ["document _id", "row", "difference", "columns"], summary_rows(diff))),
            **(diff_stats or {}),
        })
    yield dg.AssetCheckResult(
        asset_key=key, check_name="checksum_parity", passed=tv.checksums_match,
        severity=dg.AssetCheckSeverity.ERROR, metadata=meta,
        description=None if tv.checksums_match or diff is None else
        f"{diff.missing} missing, {diff.extra} extra, {diff.changed} changed rows",
    )


FIELDS = "fields_accounted_for"
FIELDS_DESCRIPTION = ("every field path the collection's documents hold is mapped to a column, or ignored in the "
                      "spec with a reason (ERROR while any is unmapped; the rows loaded are right, a column is missing)")


def census_check(loader: LoaderSpec, census: Census) -> dg.AssetCheckResult:
    """``fields_accounted_for``, from the census the verification pass took."""
    found = verdicts(loader, census)
    unmapped = [v for v in found if v.status == UNMAPPED]
    exact, subtrees = mapped_paths(loader)
    mixed = [v for v in found if v.status == MAPPED and v.path in exact and len(v.stats.types) > 1
             and not any(v.path.startswith(s + ".") or v.path.startswith(s + "[]") for s in subtrees)]
    meta = {"documents": census.documents, "paths": len(found),
            "mapped": sum(1 for v in found if v.status == MAPPED),
            "ignored": sum(1 for v in found if v.status == IGNORED), "unmapped": len(unmapped)}
    if unmapped:
        meta["unmapped_paths"] = dg.MetadataValue.md(markdown_table(
            ["path", "documents", "BSON types", "sample _ids"],
            [(v.path, v.stats.documents, ", ".join(sorted(v.stats.types)), ", ".join(v.stats.sample_ids))
             for v in unmapped]))
    if mixed:
        meta["mapped_paths_of_several_types"] = dg.MetadataValue.md(markdown_table(
            ["path", "documents per BSON type"],
            [(v.path, ", ".join(f"{t} {n}" for t, n in v.stats.types.most_common())) for v in mixed]))
    ignored = [v for v in found if v.status == IGNORED]
    if ignored:
        meta["ignored_paths"] = dg.MetadataValue.md(markdown_table(
            ["path", "documents", "why"], [(v.path, v.stats.documents, v.reason) for v in ignored]))
    return dg.AssetCheckResult(
        asset_key=table_key(loader.root.table), check_name=FIELDS, passed=not unmapped,
        severity=dg.AssetCheckSeverity.ERROR, metadata=meta,
        description=None if not unmapped else "unmapped: " + ", ".join(
            f"{v.path} ({v.stats.documents} documents)" for v in unmapped[:10]))


def census_observation(loader: LoaderSpec, census: Census) -> dg.AssetObservation:
    """The collection's size and shape, on its source asset (the UI shows them over time)."""
    columns = [dg.TableColumn(name=v.path, type=" | ".join(sorted(v.stats.types)),
                              description=f"{v.stats.documents} documents "
                                          f"({100 * v.stats.documents / max(census.documents, 1):.1f}%), {v.status}"
                                          + (f": {v.reason}" if v.reason else ""))
               for v in verdicts(loader, census)]
    return dg.AssetObservation(asset_key=collection_key(loader.collection), metadata={
        "dagster/row_count": census.documents, "dagster/column_schema": dg.TableSchema(columns=columns),
        "unmapped_paths": sum(1 for c in columns if c.description.endswith(UNMAPPED))})


CONFORMS = "schema_conforms"
CONFORMS_DESCRIPTION = ("the target's table matches the spec before any load: columns and types, nullability, "
                        "foreign keys, enum labels, the upserts' unique keys, the ledger's triggers and CHECKs")


def conformance_evaluations(loader: LoaderSpec, conformance: Conformance) -> list[dg.AssetCheckEvaluation]:
    """``schema_conforms`` of each of the loader's tables (the database-wide mismatches, such
    as a missing migration schema, count on the root table)."""
    out = []
    for t in loader.tables:
        found: list[Mismatch] = conformance.of(t.table) + (conformance.database if t.is_root else [])
        blocking = [m for m in found if m.blocking]
        meta = {"mismatches": len(blocking), "notes": len(found) - len(blocking)}
        if found:
            meta["details"] = dg.MetadataValue.md(markdown_table(
                ["object", "the specs expect", "the target has", "refuses the load"],
                [(m.object, m.expected, m.actual, "yes" if m.blocking else "no (a note)") for m in found]))
        out.append(dg.AssetCheckEvaluation(
            asset_key=table_key(t.table), check_name=CONFORMS, passed=not blocking, metadata=meta,
            severity=dg.AssetCheckSeverity.ERROR,
            description="; ".join(m.line() for m in blocking[:3]) + (" ..." if len(blocking) > 3 else "") or None))
    return out


def build_loader_checks(loader: LoaderSpec) -> dg.AssetChecksDefinition:
    specs = []
    for t in loader.tables:
        key = table_key(t.table)
        specs.append(dg.AssetCheckSpec(CONFORMS, asset=key, blocking=True, description=CONFORMS_DESCRIPTION))
        specs.append(dg.AssetCheckSpec("row_count_parity", asset=key, blocking=True,
                                       description="PostgreSQL rows = source rows - quarantined rows"))
        specs.append(dg.AssetCheckSpec("checksum_parity", asset=key, blocking=True,
                                       description="canonical projection checksum, Mongo (Python) vs PostgreSQL (SQL)"))
    specs.append(dg.AssetCheckSpec("quarantine_empty", asset=table_key(loader.root.table), blocking=False,
                                   description="documents of this collection that could not be mapped (WARN)"))
    specs.append(dg.AssetCheckSpec(FIELDS, asset=table_key(loader.root.table), blocking=False,
                                   description=FIELDS_DESCRIPTION))

    # Op name "checks_<loader>": "verify_<domain>" is a job name, and a loader may share its domain's name.
    @dg.multi_asset_check(name=f"checks_{loader.name}", specs=specs,
                          description=f"Verifies {', '.join(loader.table_names)} against Mongo `{loader.collection}`.")
    def _verify(context: dg.AssetCheckExecutionContext, mongo: MongoSourceResource,
                postgres: PostgresTargetResource):
        with mongo.session() as source, postgres.connect(f"verify_{loader.name}") as conn:
            for e in conformance_evaluations(loader, check_conformance(conn, [loader])):
                yield dg.AssetCheckResult(asset_key=e.asset_key, check_name=e.check_name, passed=e.passed,
                                          metadata=e.metadata, severity=e.severity, description=e.description)
            v = verify_loader(loader, source, conn, workers=mongo.checksum_workers)
            context.op_execution_context.log_event(census_observation(loader, v.census))
            yield census_check(loader, v.census)
            mismatched = [t.table for t in loader.tables if not v.tables[t.table].checksums_match]
            diff = bisect_diff(loader, source, conn, verification=v, tables=mismatched,
                               limit=DIFF_SAMPLE) if mismatched else None
            stats = {} if diff is None else {
                "diff_ranges_hashed": diff.stats.ranges_hashed_source + diff.stats.ranges_hashed_target,
                "diff_documents_reread": diff.stats.docs_decoded,
                "diff_seconds": round(diff.stats.seconds, 3),
            }
            acknowledged = {} if not v.acknowledged else {
                "acknowledged_conflicts": len(v.acknowledged),
                "acknowledged": dg.MetadataValue.md(markdown_table(
                    ["entry", "what differs", "acknowledged by", "when", "why"],
                    [(k, a.differs, a.acknowledged_by, a.acknowledged_at, a.reason) for k, a in sorted(v.acknowledged.items())]))}
            for t in loader.tables:
                tv = v.tables[t.table]
                table_diff = diff.tables.get(t.table) if diff is not None else None
                yield from parity_results(table_key(t.table), tv, table_diff, diff_stats=stats, extra={
                    "source_documents": v.source_docs, "quarantined_documents": v.quarantined_docs,
                    "source_seconds": round(v.seconds_source, 3), "target_seconds": round(v.seconds_target, 3),
                }, listed=acknowledged)
            sample = open_quarantine_sample(conn, loader.name)
            by_code = open_quarantine_by_reason(conn, loader.name)
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
