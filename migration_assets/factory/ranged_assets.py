"""The ranged form of a loader's multi-asset: a graph of three steps, so the executor in use
(multiprocess, celery, k8s) runs a big collection's ``_id`` ranges side by side.

    plan_<loader>  --DynamicOut-->  load_<loader>_range (one mapped step per range)
                   --collect-->     finish_<loader> (one output per table)

The run holds the loader's pool slot from the plan to the finish (``table_pool.py``); the
ranges share the loader's lock (``load/ranged.py``). The run config keeps the one-step shape,
``ops: {load_<loader>: {config: {ranges: auto | N, ...}}}``: a config mapping hands it to
the three steps."""

import dataclasses
import inspect
import os
import time
from typing import Any

import dagster as dg

from migration_assets.factory.assets import (
    LoadConfig,
    ProgressLog,
    dry_run_observations,
    load_options,
    loader_specs,
    materialize_results,
    refuse_nonconforming,
)
from migration_assets.factory.keys import table_key
from migration_assets.factory.metadata import progress_line
from migration_assets.factory.resources import MongoSourceResource, PostgresTargetResource
from migration_assets.factory.table_pool import POOL_TAG, claim_table_pool, free_on_failure, free_table_pool
from migration_assets.load.ranged import RangeTask, finish_load, load_range, plan_load
from migration_assets.load.report import LoadReport
from migration_assets.load.run import run_loader
from migration_assets.specs.model import LoaderSpec
from migration_assets.target import bookkeeping as bk
from migration_assets.transform.context import needs_context


class RangedLoadConfig(LoadConfig):
    # "auto": one range per 50,000 documents, at most as many as the executor runs at once.
    ranges: str = "auto"


def executor_concurrency(run_config: dict[str, Any]) -> int:
    """The executor's ``max_concurrent`` in the run config (multiprocess, k8s), else the cores."""
    stack = [run_config.get("execution") or {}]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if isinstance(node.get("max_concurrent"), int) and node["max_concurrent"] > 0:
                return node["max_concurrent"]
            stack.extend(node.values())
    return os.cpu_count() or 1


class TableProgress:
    """Per range: its own progress line (``<loader> range i/n: ...``), and the table's
    (``<loader>: done/total ..., ETA``) summed over every range's checkpoint."""

    def __init__(self, log, loader: LoaderSpec, task: RangeTask, conn, interval: float):
        self.ranged = ProgressLog(log, f"{loader.name} range {task.span.no + 1}/{task.ranges}", interval)
        self.log, self.loader, self.task, self.conn = log, loader, task, conn

    def __call__(self, report: LoadReport, total: int | None) -> None:
        last = self.ranged.last
        self.ranged(report, total)
        if self.ranged.last == last:
            return  # not yet time for another line
        cp = bk.read_checkpoint(self.conn, self.loader.name)
        rate = cp.docs_read / max(1e-6, time.time() - self.task.planned_at)
        self.log.info(progress_line(self.loader.name, cp.docs_read, self.task.total_docs,
                                    sum(cp.rows_written.values()), cp.docs_quarantined, rate))


def build_ranged_loader_asset(loader: LoaderSpec) -> dg.AssetsDefinition:
    if needs_context(loader):
        raise ValueError(f"loader {loader.name} needs a collection-wide context and cannot be ranged")
    specs = loader_specs(loader)
    pool = f"table_{loader.name}"

    # Every upstream asset (the source collection, the FK parents) is a Nothing input of the
    # plan: the job runs this load after its parents' loads, as for a one-step loader.
    upstream = sorted({d.asset_key for spec in specs for d in spec.deps}, key=lambda k: k.to_user_string())
    inputs = {"after_" + "__".join(k.path): k for k in upstream}

    @dg.op(name=f"plan_{loader.name}", out=dg.DynamicOut(RangeTask, is_required=False), tags={POOL_TAG: pool},
           ins={name: dg.In(dg.Nothing) for name in inputs},
           description=f"Splits `{loader.collection}` into _id ranges (or resumes the interrupted ones).")
    def plan(context: dg.OpExecutionContext, config: RangedLoadConfig, mongo: MongoSourceResource,
             postgres: PostgresTargetResource):
        options = load_options(config, context.run.run_id)
        waited = claim_table_pool(context.instance, pool, context.run.run_id, timeout_s=config.lock_timeout_s,
                                  log=lambda m: context.log.info(f"{loader.name}: {m}"))
        if waited >= 1:
            context.log.info(f"{loader.name}: claimed pool {pool} after waiting {waited:.0f}s")
        with mongo.session() as source, postgres.connect(f"plan_{loader.name}") as conn:
            yield from refuse_nonconforming(loader, conn)
            if config.dry_run:  # one pass, nothing written, nothing to finish
                report = run_loader(loader, source, conn, options, log=context.log.info)
                for observation in dry_run_observations(loader, report, conn, postgres.database_name):
                    context.log_event(observation)
                free_table_pool(context.instance, pool, context.run.run_id)
                return

            planned = plan_load(loader, source, conn, options, config.ranges,
                                executor_concurrency(context.run_config), log=context.log.info)
        for task in planned.tasks:
            task = dataclasses.replace(task, lock_waited_s=task.lock_waited_s + waited)
            yield dg.DynamicOutput(task, mapping_key=f"range_{task.span.no}")

    @dg.op(name=f"load_{loader.name}_range",
           description=f"Loads one _id range of `{loader.collection}`; its batches commit with its own checkpoint.")
    def load_one(context: dg.OpExecutionContext, config: RangedLoadConfig, mongo: MongoSourceResource,
                 postgres: PostgresTargetResource, task: RangeTask) -> tuple[RangeTask, LoadReport]:
        options = load_options(config, context.run.run_id)
        context.log.info(f"{loader.name}: {task.span.describe()} of {task.ranges}, "
                         f"{task.span.docs if task.span.docs is not None else 'unknown'} documents, "
                         f"in process {os.getpid()}")
        with mongo.session() as source, postgres.connect(f"load_{loader.name}_range_{task.span.no}") as conn:
            progress = TableProgress(context.log, loader, task, conn, config.progress_interval_s)
            report = load_range(loader, source, conn, options, task, progress, log=context.log.info)
        context.log.info(f"{loader.name}: {task.span.describe()} landed: {report.docs_read} read, "
                         f"{report.docs_quarantined} quarantined in {report.seconds:.2f}s")
        return task, report

    outs = {t.table: dg.Out(dg.Nothing, is_required=False) for t in loader.tables}

    @dg.op(name=f"finish_{loader.name}", out=outs, tags={POOL_TAG: pool},
           description="Once every range has landed: self-references, id_map, the tables' metadata.")
    def finish(context: dg.OpExecutionContext, config: RangedLoadConfig, postgres: PostgresTargetResource,
               landed: list[tuple[RangeTask, LoadReport]]):
        options = load_options(config, context.run.run_id)
        with postgres.connect(f"finish_{loader.name}") as conn:
            report = finish_load(loader, conn, options, landed[0][0], [r for _, r in landed])
            context.log.info(f"{loader.name}: {report.docs_read} read, {report.docs_loaded} loaded, "
                             f"{report.docs_quarantined} quarantined in {len(landed)} range(s), "
                             f"{report.seconds:.2f}s since the plan")
            for t, meta in materialize_results(loader, report, conn, postgres.database_name):
                meta["ranges"] = len(landed)
                yield dg.Output(None, output_name=t.table, metadata=meta)
        free_table_pool(context.instance, pool, context.run.run_id)

    def fan_out(config: dict[str, Any]) -> dict[str, Any]:
        return {name: {"config": config} for name in (plan.name, load_one.name, finish.name)}

    names = [t.table for t in loader.tables]

    def with_inputs(fn):
        fn.__signature__ = inspect.Signature([inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY) for n in inputs])
        return fn

    @dg.graph(name=f"load_{loader.name}", out={n: dg.GraphOut() for n in names},
              ins={name: dg.GraphIn() for name in inputs}, config=dg.ConfigMapping(
        config_fn=fan_out, config_schema=RangedLoadConfig.to_config_schema()))
    @with_inputs
    def load_graph(**after):
        tables = finish(plan(**after).map(load_one).collect())
        return dict(zip(names, tables if len(names) > 1 else (tables,)))

    return dg.AssetsDefinition.from_graph(
        load_graph,
        keys_by_input_name=inputs,
        keys_by_output_name={t.table: table_key(t.table) for t in loader.tables},
        internal_asset_deps={t.table: {d.asset_key for d in spec.deps} for t, spec in zip(loader.tables, specs)},
        group_name=loader.domain,
        descriptions_by_output_name={t.table: s.description for t, s in zip(loader.tables, specs)},
        metadata_by_output_name={t.table: s.metadata for t, s in zip(loader.tables, specs)},
        tags_by_output_name={t.table: {**s.tags, "dagster/kind/mongodb": "", "dagster/kind/postgres": ""}
                             for t, s in zip(loader.tables, specs)},
        hook_defs={free_on_failure(pool)},
    )
