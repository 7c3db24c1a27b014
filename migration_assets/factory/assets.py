"""The asset factory: one multi-asset per loader (one Mongo collection -> its tables, then
their checks, in one step), one asset per deferred remap (with its checks), and one external
asset per Mongo collection."""


import os
import time

import dagster as dg

from migration_assets.factory.checks import (
    conformance_evaluations,
    loader_check_results,
    loader_check_specs,
    remap_check_results,
    remap_check_specs,
)
from migration_assets.factory.metadata import (
    collection_schema,
    column_lineage,
    markdown_table,
    progress_line,
    quarantine_markdown,
    static_table_metadata,
)
from migration_assets.factory.naming import (
    SOURCE_KINDS,
    TABLE_KINDS,
    TARGET_KINDS,
    collection_key,
    column_key,
    domain_tags,
    load_op,
    pool,
    table_key,
)
from migration_assets.factory.resources import MongoSourceResource, PostgresTargetResource
from migration_assets.factory.workers import worker_of
from migration_assets.load.remap import apply_remap
from migration_assets.load.report import LoadOptions, LoadReport
from migration_assets.load.run import run_loader
from migration_assets.specs.contract import describe_collection
from migration_assets.specs.model import DeferredRemap, LoaderSpec
from migration_assets.target.bookkeeping import open_quarantine_count, open_quarantine_sample
from migration_assets.target.conformance import SchemaMismatch, check_conformance
from migration_assets.target.lease import TTL_S, Owner, release
from migration_assets.verify.canonical import table_sql
from migration_assets.verify.load_digests import LoadDigests


class LoadConfig(dg.Config):
    """Run configuration of a table load (the launchpad shows these)."""

    batch_size: int = 2000
    resume: bool = True
    dry_run: bool = False
    progress_interval_s: float = 10.0
    # Another live run loading the same tables holds the loader's lock or its lease: wait this long, then fail.
    lock_timeout_s: float = 600.0
    # A run on another host that sends no heartbeat this long is taken for dead (target/lease.py);
    # a run on this host keeps its lease while its worker process lives.
    lease_ttl_s: float = TTL_S


class ProgressLog:
    """Logs documents done of total, rows written, rate and ETA to the run log, at most every
    ``interval`` seconds. The rate counts this run's documents only (a resumed load starts
    from its checkpoint's count)."""

    def __init__(self, log, name: str, interval: float = 10.0, clock=time.monotonic):
        self.log, self.name, self.interval, self.clock = log, name, interval, clock
        self.last = clock()
        self.base: tuple[float, int] | None = None  # (time, documents) at the first batch

    def __call__(self, report: LoadReport, total: int | None) -> None:
        now = self.clock()
        if self.base is None:
            self.base = (now, report.docs_read)
            rate = report.docs_per_second if report.resumed_from is None else 0.0
        else:
            rate = (report.docs_read - self.base[1]) / (now - self.base[0]) if now > self.base[0] else 0.0
        if now - self.last < self.interval:
            return
        self.last = now
        self.log.info(progress_line(self.name, report.docs_read, total, sum(report.rows.values()),
                                    report.docs_quarantined, rate))


def source_collection_asset(loader: LoaderSpec) -> dg.AssetSpec:
    return dg.AssetSpec(
        key=collection_key(loader.collection),
        group_name=loader.domain,
        kinds=SOURCE_KINDS,
        description=f"Mongo collection `{loader.collection}` (the source).\n\n{describe_collection(loader)}",
        metadata={"source_contract": dg.MetadataValue.md(describe_collection(loader)),
                  "dagster/column_schema": collection_schema(loader)},
        tags={**domain_tags(loader.domain), "layer": "source"},
    )


def loader_specs(loader: LoaderSpec) -> list[dg.AssetSpec]:
    specs = []
    for t in loader.tables:
        deps = [collection_key(loader.collection)]
        deps += [table_key(p) for p in sorted(t.fk_parents(include_deferred=False)) if p != t.table]
        specs.append(dg.AssetSpec(
            key=table_key(t.table),
            group_name=loader.domain,
            kinds=TABLE_KINDS,
            deps=deps,
            description=t.description or f"{t.table} from {loader.collection}",
            metadata=static_table_metadata(loader, t),
            tags=domain_tags(loader.domain),
            skippable=True,  # a dry run reports observations and materializes nothing
        ))
    return specs


def materialize_results(loader: LoaderSpec, report: LoadReport, conn, database: str):
    """Per-table MaterializeResults with counts, rates, timings and the target checksum."""
    for t in loader.tables:
        sql, params = table_sql(t).digest_query()
        count, total = conn.execute(sql, params).fetchone()
        rows = report.rows.get(t.table, 0)
        meta = {
            "dagster/row_count": int(count),
            "dagster/table_name": f"{database}.public.{t.table}",
            "dagster/column_schema": static_table_metadata(loader, t)["dagster/column_schema"],
            "dagster/column_lineage": column_lineage(loader, t),
            "rows_loaded": rows,
            "rows_inserted_or_changed": report.rows_changed.get(t.table, 0),
            "documents_read": report.docs_read,
            "documents_quarantined": report.docs_quarantined,
            "duration_s": round(report.seconds, 3),
            "rows_per_second": round(rows / report.seconds, 1) if report.seconds else 0.0,
            "pg_checksum": f"{int(count)}:{int(total) % (1 << 64):016x}",
            "load_path": "COPY into empty tables" if report.fresh else "COPY to staging + upsert",
            "resumed_from": report.resumed_from or "-",
            "lock_waited_s": round(report.lock_waited_s, 3),
        }
        if loader.append_only:
            # Immutable rows the source changed: never rewritten, reported here (and by checksum_parity).
            meta["immutable_conflicts"] = len(report.immutable_conflicts)
        if t.is_root:
            meta["timings_s"] = {k: round(v, 3) for k, v in report.timings.items()}
            meta["client_cpu_s"] = round(report.cpu_s, 3)  # the load steps' own CPU, every range together
            meta["quarantine_reasons"] = dict(report.quarantine_reasons) or {"none": 0}
            # rows an earlier load wrote for documents that no longer map: removed (audited in migration.removed_rows)
            meta["documents_withdrawn"] = len(report.withdrawn)
            if report.kept:  # no longer mapping, but their rows must stay: the parity checks name them
                meta["stale_rows_kept"] = dg.MetadataValue.md(markdown_table(
                    ["document _id", "why its rows stay"], sorted(report.kept.items())[:50]))
            if report.dry_run:  # nothing was written: show what this pass would quarantine
                sample = [(q["_id"], q["code"], q["reason"]) for q in report.quarantine_sample]
                open_total = report.docs_quarantined
            else:  # the open quarantine: what PostgreSQL lacks, from this run or earlier ones
                sample, open_total = open_quarantine_sample(conn, loader.name), open_quarantine_count(conn, [loader.name])
            meta["open_quarantine"] = open_total
            meta["quarantine_sample"] = dg.MetadataValue.md(quarantine_markdown(sample, open_total))
        yield t, meta


def load_owner(context: dg.OpExecutionContext | dg.AssetExecutionContext, config: LoadConfig) -> Owner:
    """This run as the owner of a load's lease: its run worker, and how to tell whether
    another run of this instance has ended."""
    instance = context.instance

    def ended(run_id: str) -> bool | None:
        run = instance.get_run_by_id(run_id)
        return None if run is None else run.is_finished

    return Owner(context.run.run_id, worker_of(instance, context.run, this_step=os.getpid()), config.lease_ttl_s,
                 ended)


def load_options(config: LoadConfig, context: dg.OpExecutionContext | dg.AssetExecutionContext) -> LoadOptions:
    return LoadOptions(batch_size=config.batch_size, resume=config.resume, dry_run=config.dry_run,
                       run_id=context.run.run_id, lock_timeout_s=config.lock_timeout_s,
                       owner=load_owner(context, config), digests=LoadDigests)


def release_on_failure(loader: LoaderSpec) -> dg.HookDefinition:
    """A failed step of a load gives its lease up: the next run resumes at once from what was
    committed, without waiting for this run's worker to end."""

    @dg.failure_hook(name=f"release_{loader.name}", required_resource_keys={"postgres"})
    def _release(context: dg.HookContext):
        with context.resources.postgres.connect(f"release_{loader.name}") as conn:
            if release(conn, loader.name, context.run_id):
                context.log.info(f"{loader.name}: this run gave its load up; the next run resumes it")

    return _release


def conforming(loader: LoaderSpec, conn):
    """Nothing is written to a target that does not conform: yields the tables'
    ``schema_conforms`` evaluations (the UI says why) and raises ``SchemaMismatch``; else
    returns the conformance (``yield from``), which the checks reuse."""
    conformance = check_conformance(conn, [loader])
    refused = conformance.blocking(loader.table_names)
    if refused:
        yield from conformance_evaluations(loader, conformance)
        raise SchemaMismatch(refused)
    return conformance


def dry_run_observations(loader: LoaderSpec, report: LoadReport, conn, database: str):
    """What a dry run would have materialized, as observations (no ``dagster/`` keys)."""
    for t, meta in materialize_results(loader, report, conn, database):
        meta = {k: v for k, v in meta.items() if not k.startswith("dagster/")}
        yield dg.AssetObservation(asset_key=table_key(t.table), metadata={"dry_run": True, **meta})


def build_loader_asset(loader: LoaderSpec) -> dg.AssetsDefinition:
    """One step: the load of every table of the collection, then their checks. Subsettable,
    so a verification runs the checks alone."""
    tables = {table_key(t.table) for t in loader.tables}

    @dg.multi_asset(
        name=load_op(loader.name),
        specs=loader_specs(loader),
        check_specs=loader_check_specs(loader),
        can_subset=True,
        description=f"Loads Mongo `{loader.collection}` into {', '.join(loader.table_names)}, then checks them.",
        pool=pool(loader.name),
        hooks={release_on_failure(loader)},
    )
    def _load(context: dg.AssetExecutionContext, config: LoadConfig, mongo: MongoSourceResource,
              postgres: PostgresTargetResource):
        selected = set(context.selected_asset_keys) & tables
        conformance = None
        with mongo.session() as source, postgres.connect(load_op(loader.name)) as conn:
            if selected:
                conformance = yield from conforming(loader, conn)
                total = source.count(loader.collection)
                context.log.info(f"{loader.name}: {total} documents in {source.describe()} -> {postgres.redacted_url}")
                report = run_loader(loader, source, conn, load_options(config, context),
                                    ProgressLog(context.log, loader.name, config.progress_interval_s), total,
                                    log=context.log.info)
                context.log.info(
                    f"{loader.name}: {report.docs_read} read, {report.docs_loaded} loaded, "
                    f"{report.docs_quarantined} quarantined in {report.seconds:.2f}s"
                )
                if config.dry_run:  # nothing written: nothing to materialize or check
                    for observation in dry_run_observations(loader, report, conn, postgres.database_name):
                        context.log_event(observation)
                    return
                for t, meta in materialize_results(loader, report, conn, postgres.database_name):
                    if table_key(t.table) in selected:
                        yield dg.MaterializeResult(asset_key=table_key(t.table), metadata=meta)
                    else:  # its rows come from the same documents: written, though not asked for
                        context.log.info(f"{loader.name}: also wrote {t.table} (not selected)")
            yield from loader_check_results(loader, source, conn, context.selected_asset_check_keys,
                                            log_event=context.log_event, run_id=context.run.run_id,
                                            workers=mongo.checksum_workers, conformance=conformance)

    return _load


def build_remap_asset(loader: LoaderSpec, remap: DeferredRemap) -> dg.AssetsDefinition:
    column = loader.table(remap.table).column(remap.column)
    key = column_key(remap.table, remap.column)

    @dg.multi_asset(
        name=remap.name,
        specs=[dg.AssetSpec(key, group_name=loader.domain, kinds=TARGET_KINDS, description=remap.description,
                            deps=[table_key(remap.table), table_key(column.ref_table)],
                            tags=domain_tags(loader.domain), skippable=True)],
        check_specs=remap_check_specs(loader, remap),
        can_subset=True,
        pool=pool(loader.name),
    )
    def _remap(context: dg.AssetExecutionContext, mongo: MongoSourceResource, postgres: PostgresTargetResource):
        with mongo.session() as source, postgres.connect(remap.name) as conn:
            if key in context.selected_asset_keys:
                result = apply_remap(loader, remap, source, conn, run_id=context.run.run_id)
                meta = {
                    "dagster/row_count": result.rows_set,
                    "rows_updated": result.updated,
                    "references_pending": result.pending,
                    "references_refused": len(result.refused),
                    "duration_s": round(result.seconds, 3),
                }
                if result.refused:
                    meta["refused_sample"] = dg.MetadataValue.md(markdown_table(
                        ["purchase request", "selected offer", "reason"], result.refused[:20]))
                yield dg.MaterializeResult(asset_key=key, metadata=meta)
            yield from remap_check_results(loader, remap, source, conn, context.selected_asset_check_keys)

    return _remap
