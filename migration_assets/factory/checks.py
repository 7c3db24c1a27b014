"""Asset checks built from the specs: per table the target's conformance, row-count and
checksum parity (blocking: children of a failing table do not load), per loader the census
and the open quarantine, the invariants (``invariant_checks.py``), per remap the reference
parity. A one-step loader computes them in its load step (``check_specs``), a ranged loader
in a ``checks_<loader>`` step after its finish; either runs them alone in a verification."""


from collections.abc import Collection, Iterator

import dagster as dg
import psycopg

from migration_assets.factory.invariant_checks import (
    invariant_results,
    invariant_specs,
    ledger_specs,
    remap_rule_result,
    remap_rule_spec,
)
from migration_assets.factory.metadata import markdown_table
from migration_assets.factory.naming import (
    CHECKSUM,
    CONFORMS,
    FIELDS,
    QUARANTINE,
    REFERENCE_PARITY,
    ROW_COUNT,
    checks_op,
    collection_key,
    column_key,
    table_key,
)
from migration_assets.factory.resources import MongoSourceResource, PostgresTargetResource
from migration_assets.source.census import IGNORED, MAPPED, UNMAPPED, Census, mapped_paths, verdicts
from migration_assets.source.documents import Source
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
        asset_key=key, check_name=ROW_COUNT, passed=tv.counts_match,
        severity=dg.AssetCheckSeverity.ERROR, metadata=count_meta,
        description=None if tv.counts_match else
        f"PostgreSQL has {tv.target.count} rows, the source {tv.source.count} (+{tv.quarantined_rows} quarantined)",
    )
    meta = {
        "expected_checksum": tv.source.hexdigest,
        "actual_checksum": tv.target.hexdigest,
        "rows_compared": tv.source.count,
        **(extra or {}),
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
        asset_key=key, check_name=CHECKSUM, passed=tv.checksums_match,
        severity=dg.AssetCheckSeverity.ERROR, metadata=meta,
        description=None if tv.checksums_match or diff is None else
        f"{diff.missing} missing, {diff.extra} extra, {diff.changed} changed rows",
    )


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


def parity_specs(loader: LoaderSpec) -> list[dg.AssetCheckSpec]:
    specs = []
    for t in loader.tables:
        key = table_key(t.table)
        specs.append(dg.AssetCheckSpec(CONFORMS, asset=key, blocking=True, description=CONFORMS_DESCRIPTION))
        specs.append(dg.AssetCheckSpec(ROW_COUNT, asset=key, blocking=True,
                                       description="PostgreSQL rows = source rows - quarantined rows"))
        specs.append(dg.AssetCheckSpec(CHECKSUM, asset=key, blocking=True,
                                       description="canonical projection checksum, Mongo (Python) vs PostgreSQL (SQL)"))
    root = table_key(loader.root.table)
    specs.append(dg.AssetCheckSpec(QUARANTINE, asset=root, blocking=False,
                                   description="documents of this collection that could not be mapped (WARN)"))
    specs.append(dg.AssetCheckSpec(FIELDS, asset=root, blocking=False, description=FIELDS_DESCRIPTION))
    return specs


def loader_check_specs(loader: LoaderSpec) -> list[dg.AssetCheckSpec]:
    """Every check of a loader's tables: parity, census, quarantine, invariants, the ledger's."""
    return parity_specs(loader) + invariant_specs(loader) + ledger_specs(loader)


def as_result(e: dg.AssetCheckEvaluation) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(asset_key=e.asset_key, check_name=e.check_name, passed=e.passed,
                               metadata=e.metadata, severity=e.severity, description=e.description)


def loader_check_results(loader: LoaderSpec, source: Source, conn: psycopg.Connection,
                         selected: Collection[dg.AssetCheckKey], *, log_event, run_id: str, workers: int = 1,
                         conformance: Conformance | None = None) -> Iterator[dg.AssetCheckResult]:
    """The loader's checks that are in ``selected``, each computed once (one verification
    pass for the parity checks, the census and the quarantine)."""
    names = {k.name for k in selected}
    if CONFORMS in names:
        for e in conformance_evaluations(loader, conformance or check_conformance(conn, [loader])):
            if e.asset_check_key in selected:
                yield as_result(e)
    root = table_key(loader.root.table)
    if names & {ROW_COUNT, CHECKSUM, FIELDS}:
        yield from parity_pass(loader, source, conn, selected, log_event=log_event, workers=workers, run_id=run_id)
    if dg.AssetCheckKey(root, QUARANTINE) in selected:
        yield quarantine_result(loader, conn)
    yield from invariant_results(loader, source, conn, selected, run_id)


def parity_pass(loader: LoaderSpec, source: Source, conn: psycopg.Connection, selected: Collection[dg.AssetCheckKey],
                *, log_event, workers: int, run_id: str) -> Iterator[dg.AssetCheckResult]:
    # After this run's own load, the source side is what the load read (one read of Mongo).
    v = verify_loader(loader, source, conn, workers=workers, loaded_by=run_id)
    log_event(census_observation(loader, v.census))
    if dg.AssetCheckKey(table_key(loader.root.table), FIELDS) in selected:
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
        table_diff = diff.tables.get(t.table) if diff is not None else None
        for result in parity_results(table_key(t.table), v.tables[t.table], table_diff, diff_stats=stats, extra={
            "source_documents": v.source_docs, "quarantined_documents": v.quarantined_docs,
            "source_seconds": round(v.seconds_source, 3), "target_seconds": round(v.seconds_target, 3),
            "source_read": "afresh" if v.read_source else "by this run's load",
        }, listed=acknowledged):
            if dg.AssetCheckKey(result.asset_key, result.check_name) in selected:
                yield result


def quarantine_result(loader: LoaderSpec, conn: psycopg.Connection) -> dg.AssetCheckResult:
    sample = open_quarantine_sample(conn, loader.name)
    by_code = open_quarantine_by_reason(conn, loader.name)
    n = sum(by_code.values())
    meta = {"quarantined_documents": n, "by_reason": by_code or {"none": 0}}
    if sample:
        meta["sample"] = dg.MetadataValue.md(markdown_table(["_id", "code", "reason"], sample))
    return dg.AssetCheckResult(asset_key=table_key(loader.root.table), check_name=QUARANTINE,
                               passed=n == 0, severity=dg.AssetCheckSeverity.WARN, metadata=meta)


def build_loader_checks(loader: LoaderSpec) -> dg.AssetChecksDefinition:
    """A ranged loader's checks, as a step of their own after its finish (a one-step loader
    computes the same checks in its load step)."""

    @dg.multi_asset_check(name=checks_op(loader.name), specs=loader_check_specs(loader), can_subset=True,
                          description=f"Verifies {', '.join(loader.table_names)} against Mongo `{loader.collection}`.")
    def _verify(context: dg.AssetCheckExecutionContext, mongo: MongoSourceResource,
                postgres: PostgresTargetResource):
        with mongo.session() as source, postgres.connect(checks_op(loader.name)) as conn:
            yield from loader_check_results(loader, source, conn, context.selected_asset_check_keys,
                                            log_event=context.op_execution_context.log_event,
                                            run_id=context.run.run_id, workers=mongo.checksum_workers)

    return _verify


def remap_check_specs(loader: LoaderSpec, remap: DeferredRemap) -> list[dg.AssetCheckSpec]:
    key = column_key(remap.table, remap.column)
    rule = remap_rule_spec(loader, remap, key)
    return [dg.AssetCheckSpec(REFERENCE_PARITY, asset=key, blocking=True,
                              description="every source reference is set in PostgreSQL or refused into quarantine"),
            *([rule] if rule else [])]


def remap_check_results(loader: LoaderSpec, remap: DeferredRemap, source: Source, conn: psycopg.Connection,
                        selected: Collection[dg.AssetCheckKey]) -> Iterator[dg.AssetCheckResult]:
    key = column_key(remap.table, remap.column)
    if dg.AssetCheckKey(key, REFERENCE_PARITY) in selected:
        tv = verify_remap(loader, remap, source, conn)
        yield dg.AssetCheckResult(
            asset_key=key, check_name=REFERENCE_PARITY, passed=tv.checksums_match,
            severity=dg.AssetCheckSeverity.ERROR,
            metadata={"expected_references": tv.source.count, "actual_references": tv.target.count,
                      "diff": tv.target.count - tv.source.count, "refused_references": tv.quarantined_rows,
                      "expected_checksum": tv.source.hexdigest, "actual_checksum": tv.target.hexdigest},
        )
    rule = remap_rule_spec(loader, remap, key)
    if rule is not None and rule.key in selected:
        yield remap_rule_result(loader, remap, conn, key)
