"""The ranged form of a loader's multi-asset: a graph of three steps, so the executor in use
(multiprocess, celery, k8s) runs a big collection's ``_id`` ranges side by side.

    plan_<loader>  --DynamicOut-->  load_<loader>_range (one mapped step per range)
                   --collect-->     finish_<loader> (one output per table)

The finish step is in the loader's pool ``table_<loader>``, which dagster.yaml enforces per run
(``granularity: run``): a run holds it from start to end, so no second run of the table is
dequeued meanwhile, and its ranges run side by side. Only the finish carries it: at op
granularity a pool on the ranges would run them one by one, and one on the plan would let a
waiting run's plan hold the slot the owner's finish needs. PostgreSQL stays the guard against two
writers whatever launched them: the ranges share the loader's lock, and the load's lease
keeps it with this run between its steps (``load/ranged.py``). The run config keeps the one-step shape,
``ops: {load_<loader>: {config: {ranges: auto | N, ...}}}``: a config mapping hands it to
the three steps."""

import inspect
import os
import time
from typing import Any

import dagster as dg

from migration_assets.factory.assets import (
    LoadConfig,
    ProgressLog,
    conforming,
    dry_run_observations,
    load_options,
    loader_specs,
    materialize_results,
    release_on_failure,
)
from migration_assets.factory.executors import in_process
from migration_assets.factory.metadata import progress_line
from migration_assets.factory.naming import (
    TABLE_KINDS,
    finish_op,
    kind_tags,
    load_op,
    plan_op,
    pool,
    range_op,
    table_key,
)
from migration_assets.factory.resources import MongoSourceResource, PostgresTargetResource
from migration_assets.load.ranged import RangeTask, finish_load, load_range, plan_load, ranges_committed
from migration_assets.load.report import LoadReport
from migration_assets.load.run import run_loader
from migration_assets.specs.model import LoaderSpec
from migration_assets.target import bookkeeping as bk
from migration_assets.target.guard import TargetUnavailable
from migration_assets.transform.context import needs_context


class RangedLoadConfig(LoadConfig):
    # "auto": one range per 50,000 documents, at most as many as the executor runs at once.
    ranges: str = "auto"


def executor_concurrency(run_config: dict[str, Any]) -> int:
    """Steps the run's executor runs at once: 1 in process, else its ``max_concurrent`` (the
    platform's executor, multiprocess, k8s), else the cores."""
    if in_process(run_config):
        return 1
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
    in_pool = pool(loader.name)

    # Every upstream asset (the source collection, the FK parents) is a Nothing input of the
    # plan: the job runs this load after its parents' loads, as for a one-step loader.
    upstream = sorted({d.asset_key for spec in specs for d in spec.deps}, key=lambda k: k.to_user_string())
    inputs = {"after_" + "__".join(k.path): k for k in upstream}

    @dg.op(name=plan_op(loader.name), out=dg.DynamicOut(RangeTask, is_required=False),
           ins={name: dg.In(dg.Nothing) for name in inputs},
           description=f"Splits `{loader.collection}` into _id ranges (or resumes the interrupted ones).")
    def plan(context: dg.OpExecutionContext, config: RangedLoadConfig, mongo: MongoSourceResource,
             postgres: PostgresTargetResource):
        options = load_options(config, context)
        with mongo.session() as source, postgres.connect(plan_op(loader.name)) as conn:
            yield from conforming(loader, conn)
            if config.dry_run:  # one pass, nothing written, nothing to finish
                report = run_loader(loader, source, conn, options, log=context.log.info)
                for observation in dry_run_observations(loader, report, conn, postgres.database_name):
                    context.log_event(observation)
                return

            planned = plan_load(loader, source, conn, options, config.ranges,
                                executor_concurrency(context.run_config), log=context.log.info)
        for task in planned.tasks:
            yield dg.DynamicOutput(task, mapping_key=f"range_{task.span.no}")

    @dg.op(name=range_op(loader.name),
           description=f"Loads one _id range of `{loader.collection}`; its batches commit with its own checkpoint.")
    def load_one(context: dg.OpExecutionContext, config: RangedLoadConfig, mongo: MongoSourceResource,
                 postgres: PostgresTargetResource, task: RangeTask) -> tuple[RangeTask, LoadReport]:
        options = load_options(config, context)
        context.log.info(f"{loader.name}: {task.span.describe()} of {task.ranges}, "
                         f"{task.span.docs if task.span.docs is not None else 'unknown'} documents, "
                         f"in process {os.getpid()}")
        with mongo.session() as source, postgres.connect(f"{range_op(loader.name)}_{task.span.no}") as conn:
            progress = TableProgress(context.log, loader, task, conn, config.progress_interval_s)
            try:
                report = load_range(loader, source, conn, options, task, progress, log=context.log.info)
            except TargetUnavailable as e:  # say what the whole load has, not this range alone
                raise TargetUnavailable(f"{e} {ranges_committed(postgres.connect, loader.name)}") from e
        context.log.info(f"{loader.name}: {task.span.describe()} landed: {report.docs_read} read, "
                         f"{report.docs_quarantined} quarantined in {report.seconds:.2f}s")
        return task, report

    outs = {t.table: dg.Out(dg.Nothing, is_required=False) for t in loader.tables}

    @dg.op(name=finish_op(loader.name), out=outs, pool=in_pool,
           description="Once every range has landed: self-references, id_map, the tables' metadata.")
    def finish(context: dg.OpExecutionContext, config: RangedLoadConfig, postgres: PostgresTargetResource,
               landed: list[tuple[RangeTask, LoadReport]]):
        options = load_options(config, context)
        with postgres.connect(finish_op(loader.name)) as conn:
            report = finish_load(loader, conn, options, landed[0][0], [r for _, r in landed])
            context.log.info(f"{loader.name}: {report.docs_read} read, {report.docs_loaded} loaded, "
                             f"{report.docs_quarantined} quarantined in {len(landed)} range(s), "
                             f"{report.seconds:.2f}s since the plan")
            for t, meta in materialize_results(loader, report, conn, postgres.database_name):
                meta["ranges"] = len(landed)
                yield dg.Output(None, output_name=t.table, metadata=meta)

    def fan_out(config: dict[str, Any]) -> dict[str, Any]:
        return {name: {"config": config} for name in (plan.name, load_one.name, finish.name)}

    names = [t.table for t in loader.tables]

    def with_inputs(fn):
        fn.__signature__ = inspect.Signature([inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY) for n in inputs])
        return fn

    @dg.graph(name=load_op(loader.name), out={n: dg.GraphOut() for n in names},
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
        tags_by_output_name={t.table: {**s.tags, **kind_tags(TABLE_KINDS)} for t, s in zip(loader.tables, specs)},
        hook_defs={release_on_failure(loader)},
    )
