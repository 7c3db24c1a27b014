"""Cutover readiness per domain: ``migration/cutover_readiness`` (partitioned by domain) says
GO or NO-GO with its evidence, the flags to set and the rollback steps. The verdict logic is
in :mod:`migration_assets.cutover.readiness`; this module reads the check history from the instance."""

import random
import zlib

import dagster as dg

from migration_assets.cutover import readiness as rd
from migration_assets.factory.naming import GAPS, ID_MAP, INFRASTRUCTURE, READINESS, READINESS_JOB, TABLE_KINDS
from migration_assets.factory.partitions import DOMAIN_PARTITIONS
from migration_assets.factory.resources import MongoSourceResource, PostgresTargetResource
from migration_assets.orchestration import records
from migration_assets.specs.registry import loaders_in_domain
from migration_assets.verify.acknowledged import held_acknowledgements


class ReadinessConfig(dg.Config):
    """How strict the verdict is (the launchpad shows these)."""

    green_runs: int = 3
    sample_documents: int = 20
    seed: int | None = None


def check_history(instance: dg.DagsterInstance, check_keys, runs: int) -> list[rd.CheckHistory]:
    return [rd.CheckHistory(h.key.asset_key.to_user_string(), h.key.name, h.outcomes)
            for h in records.check_history(instance, check_keys, runs)]


def code_location_graph():
    """Every asset and check of the code location, whatever job this run is of (a run
    rebuilt from its job alone carries only that job's assets)."""
    from migration_assets.definitions import loaded

    return loaded().resolve_asset_graph()


def domain_check_keys(domain: str) -> list[dg.AssetCheckKey]:
    graph = code_location_graph()
    return [k for k in graph.asset_check_keys
            if graph.has(k.asset_key) and graph.get(k.asset_key).group_name == domain]


@dg.asset(
    key=READINESS,
    group_name=INFRASTRUCTURE,
    kinds=TABLE_KINDS,
    partitions_def=DOMAIN_PARTITIONS,
    deps=[ID_MAP, GAPS],
    description="Cutover readiness of one domain (partition): **GO** only when every check of the "
    "domain's tables passed in each of its last N executions, the domain has no open "
    "pg_dualwrite_gaps, and a random sample of documents reads identically from Mongo and "
    "PostgreSQL. Lists the application flags to set (dual, then pg) and the rollback steps.",
)
def cutover_readiness(context: dg.AssetExecutionContext, config: ReadinessConfig, mongo: MongoSourceResource,
                      postgres: PostgresTargetResource) -> dg.MaterializeResult:
    domain = context.partition_key
    loaders = loaders_in_domain(domain)
    seed = config.seed if config.seed is not None else zlib.crc32(context.run.run_id.encode())
    rng = random.Random(seed)
    checks = check_history(context.instance, domain_check_keys(domain), config.green_runs)
    samples, acknowledged = [], {}
    with mongo.session() as source, postgres.connect("cutover_readiness") as conn:
        gaps = rd.domain_gaps(conn, loaders)
        for loader in loaders:
            acknowledged.update(held_acknowledgements(loader, source, conn))
            samples.append(rd.sample_loader(loader, source, conn, config.sample_documents, rng))
            context.log.info(f"{domain}: sampled {samples[-1].documents} {loader.collection} documents, "
                             f"{len(samples[-1].differences)} difference(s)")
    result = rd.Readiness(
        domain=domain,
        runs_required=config.green_runs,
        tables=[t for l in loaders for t in l.table_names],
        checks=checks,
        gaps=gaps,
        samples=samples,
        flags=rd.flag_steps(rd.domain_flags(loaders)),
        acknowledged=acknowledged,
    )
    context.log.info(f"{domain}: {result.verdict}" + (f" ({'; '.join(result.reasons)})" if result.reasons else ""))
    return dg.MaterializeResult(
        metadata={
            "verdict": result.verdict,
            "go": result.go,
            "summary": dg.MetadataValue.md(rd.render_summary(result)),
            "green_runs_required": config.green_runs,
            "checks_green": result.green_checks,
            "checks_total": len(result.checks),
            "check_history": dg.MetadataValue.md(rd.render_checks(result)),
            "open_dualwrite_gaps": sum(gaps.values()),
            "gaps_by_entity": gaps or {"none": 0},
            "sample_documents_compared": sum(s.documents for s in samples),
            "sample_rows_compared": sum(s.rows for s in samples),
            "sample_differences": result.sample_differences,
            "sample_seed": seed,
            "sample_comparison": dg.MetadataValue.md(rd.render_samples(result)),
            "acknowledged_ledger_conflicts": len(acknowledged),
            "acknowledged": dg.MetadataValue.md(rd.render_acknowledged(result)),
            "flags_to_set": dg.MetadataValue.md(rd.render_flags(result)),
            "rollback": dg.MetadataValue.md(rd.render_rollback(result)),
        },
        tags={"verdict": result.verdict},
    )


cutover_readiness_job = dg.define_asset_job(
    READINESS_JOB,
    selection=dg.AssetSelection.assets(READINESS),
    partitions_def=DOMAIN_PARTITIONS,
    description="Decides GO / NO-GO for one domain (launch with the domain as partition).",
)



@dg.schedule(name="hourly_cutover_readiness", job=cutover_readiness_job, cron_schedule="30 * * * *",
             default_status=dg.DefaultScheduleStatus.RUNNING,
             description="Re-assesses every domain's readiness half an hour after each hourly verification.")
def hourly_cutover_readiness(context: dg.ScheduleEvaluationContext):
    tick = context.scheduled_execution_time.strftime("%Y-%m-%dT%H:%M") if context.scheduled_execution_time else "now"
    for domain in DOMAIN_PARTITIONS.get_partition_keys():
        yield dg.RunRequest(run_key=f"{domain}:{tick}", partition_key=domain)


defs = dg.Definitions(assets=[cutover_readiness], jobs=[cutover_readiness_job], schedules=[hourly_cutover_readiness])
