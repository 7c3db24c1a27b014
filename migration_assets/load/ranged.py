"""A ranged load: one collection split into spans (``source/spans.py``) that separate steps
load side by side, then finished once for the table.

* :func:`plan_load` (exclusive loader lock): a new generation with its spans, or the
  interrupted one resumed with the spans it had; the run becomes the generation's owner.
* :func:`load_range` (the lock shared with the other ranges): one span, batch by batch; each
  batch commits with the range's own checkpoint, so a killed range resumes alone.
* :func:`finish_load` (exclusive again): what needs every range landed: self-references,
  the ``id_map`` reconciliation of the tables (one ``INSERT … SELECT`` each: the batches
  write their entries with their rows, so it adds none unless something else wrote rows),
  and the generation marked complete.

Two runs of one loader exclude each other: a range loads only while its run owns the
generation, and ownership changes only under the exclusive lock, which no range holds, and
only from an owner that is gone (``target/lease.py``): between this run's steps, another run
that takes the exclusive lock finds the load owned by a live run and waits."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, replace

import psycopg

from migration_assets.load.loop import fresh_tables, load_batches
from migration_assets.load.report import LoadOptions, LoadReport, Log, Progress, merge_reports
from migration_assets.load.run import target_loss
from migration_assets.source.documents import Source
from migration_assets.source.spans import Span, SpanPlan, wanted_ranges
from migration_assets.specs.model import LoaderSpec
from migration_assets.target import bookkeeping as bk
from migration_assets.target import lease
from migration_assets.target.guard import TargetUnavailable, loader_lock

LANDED = "landed earlier"  # a range's resumed_from when an earlier run had loaded it whole


class LoadSuperseded(RuntimeError):
    """Another run took over the loader's generation; this run's ranges stop."""


@dataclass(frozen=True)
class RangeTask:
    """What the plan hands one range step (pickled between steps)."""

    loader: str
    generation: int
    span: Span
    ranges: int
    total_docs: int
    planned_at: float  # time.time() of the plan: the table's load time is measured from it
    lock_waited_s: float = 0.0  # what the plan waited for another run of the loader
    resumed: bool = False  # the plan resumed an interrupted generation (its ranges keep what they committed)


@dataclass
class LoadPlan:
    tasks: list[RangeTask]
    basis: str
    note: str
    resumed: bool
    completed: int  # ranges that had already landed


def plan_load(loader: LoaderSpec, source: Source, conn: psycopg.Connection, options: LoadOptions,
              asked: int | str, concurrency: int, *, log: Log) -> LoadPlan:
    """Under the exclusive lock (no range of any run is loading): the spans, and this run as
    the generation's owner. The lock is taken only while no other live run owns the load
    (its lease); a run that lost its lease anyway (taken for dead) fails at its next range or
    its finish (``LoadSuperseded``) rather than write beside the new owner."""
    with loader_lock(conn, loader.name, timeout_s=options.lock_timeout_s, log=log, owner=options.owner) as waited:
        planned = _plan(loader, source, conn, options, asked, concurrency, bk.read_checkpoint(conn, loader.name), log)
    planned.tasks = [replace(t, lock_waited_s=waited) for t in planned.tasks]
    return planned


def _plan(loader: LoaderSpec, source: Source, conn: psycopg.Connection, options: LoadOptions, asked: int | str,
          concurrency: int, cp: bk.Checkpoint | None, log: Log) -> LoadPlan:
    fingerprint = source.fingerprint(loader.collection)
    total = source.count(loader.collection)
    if (options.resume and cp is not None and cp.status == "running" and cp.ranges is not None
            and cp.source_fingerprint == fingerprint):
        took_over = lease.why_free(lease.read_lease(conn, loader.name)) if cp.run_id != options.run_id else None
        with conn.transaction():
            lease.take(conn, loader.name, options.owner, options.run_id)
        parts = bk.read_ranges(conn, loader.name)
        done = sum(p.status == "completed" for p in parts)
        log(f"{loader.name}: resuming the interrupted load in its {len(parts)} range(s): {done} landed, "
            f"{sum(p.docs_read for p in parts)} documents committed" + (f"; {took_over}" if took_over else ""))
        tasks = [RangeTask(loader.name, cp.generation, Span(p.range_no, p.span_start, p.span_end, p.planned_docs),
                           len(parts), total, time.time(), resumed=True) for p in parts]
        return LoadPlan(tasks, "the interrupted load's ranges", "", True, done)
    if cp is not None and cp.status == "running" and options.resume:
        log(f"{loader.name}: the interrupted load read another source or ran as one stream; starting over")
    plan: SpanPlan = source.plan_spans(loader.collection, wanted_ranges(asked, total, concurrency))
    fresh = fresh_tables(conn, loader)
    with conn.transaction():
        gen = bk.start_generation(conn, loader.name, fingerprint, fresh, options.run_id).generation
        lease.take(conn, loader.name, options.owner, options.run_id)
        bk.start_ranges(conn, loader.name, [(s.no, s.start, s.end, s.docs) for s in plan.spans], options.run_id)
    log(f"{loader.name}: {total} documents in {len(plan.spans)} range(s) ({plan.basis})"
        + (f"; {plan.note}" if plan.note else ""))
    now = time.time()
    tasks = [RangeTask(loader.name, gen, s, len(plan.spans), total, now) for s in plan.spans]
    return LoadPlan(tasks, plan.basis, plan.note, False, 0)


def _owned(conn: psycopg.Connection, task: RangeTask, run_id: str) -> bk.Checkpoint:
    cp = bk.read_checkpoint(conn, task.loader)
    if cp is None or cp.generation != task.generation or cp.run_id != run_id:
        who = f"run {cp.run_id}, generation {cp.generation}" if cp else "nobody"
        raise LoadSuperseded(f"{task.loader}: this run no longer owns the load (now {who}); its committed "
                             "batches are kept and the owner goes on from them")
    return cp


def load_range(loader: LoaderSpec, source: Source, conn: psycopg.Connection, options: LoadOptions,
               task: RangeTask, progress: Progress | None = None, log: Log | None = None) -> LoadReport:
    """One span of the plan, resumed from its own checkpoint."""
    say: Log = log or (lambda msg: None)
    report = LoadReport(loader.name)
    t0 = time.perf_counter()
    # who holds the lock, as pg_stat_activity and a waiting run name it
    bk.load_session(conn, f"load_{loader.name} run {options.run_id[:8]} range {task.span.no}")
    with target_loss(f"{loader.name} {task.span.describe()} of {task.ranges}", conn, report), \
            loader_lock(conn, loader.name, timeout_s=options.lock_timeout_s, log=say, shared=True):
        cp = _owned(conn, task, options.run_id)
        part = bk.read_ranges(conn, loader.name)[task.span.no]
        report.fresh = cp.fresh
        report.docs_read, report.docs_quarantined = part.docs_read, part.docs_quarantined
        report.docs_before = part.docs_read
        report.rows = dict(part.rows_written)
        if part.status == "completed":
            report.resumed_from = LANDED
            say(f"{loader.name}: {task.span.describe()} had landed ({part.docs_read} documents)")
            return report
        if part.position is not None:
            report.resumed_from = report.position = part.position
            say(f"{loader.name}: {task.span.describe()} resumes at {part.position} "
                f"({part.docs_read} documents committed)")
        load_batches(loader, source, conn, options, report, progress, task.span.docs, position=part.position,
                     fresh=cp.fresh, span=task.span)
        with conn.transaction():
            _owned(conn, task, options.run_id)
            bk.complete_range(conn, loader.name, task.span.no)
    report.seconds = time.perf_counter() - t0
    return report


def finish_load(loader: LoaderSpec, conn: psycopg.Connection, options: LoadOptions, task: RangeTask,
                reports: Sequence[LoadReport]) -> LoadReport:
    """Once every range has landed: self-references, ``id_map`` reconciled, the generation completed."""
    report = merge_reports(loader.name, reports, resumed=task.resumed)
    report.lock_waited_s = max(report.lock_waited_s, task.lock_waited_s)
    with loader_lock(conn, loader.name, timeout_s=options.lock_timeout_s, owner=options.owner):
        _owned(conn, task, options.run_id)
        open_ranges = [p.range_no for p in bk.read_ranges(conn, loader.name) if p.status != "completed"]
        if open_ranges:
            raise LoadSuperseded(f"{loader.name}: range(s) {', '.join(map(str, open_ranges))} did not land; "
                                 "run the load again to resume them")
        t = time.perf_counter()
        with conn.transaction():
            for table, column in loader.self_deferred:
                applied, unresolved = bk.apply_deferred(conn, table.table, column.name, column.ref_table)
                report.deferred_applied += applied
                report.deferred_unresolved += unresolved
            for table in loader.tables:
                if table.has_legacy_id and "id" in table.column_names:
                    report.id_map_added += bk.id_map_from_table(conn, table.table)
            bk.complete_checkpoint(conn, loader.name)
        report.timings["finish"] += time.perf_counter() - t
    report.seconds = time.time() - task.planned_at
    return report


def ranges_committed(connect, loader: str, *, wait_s: float = 10.0) -> str:
    """After a lost connection: what every range of the load has committed, read over a new
    connection (a restarting PostgreSQL is given ``wait_s``)."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            with connect() as conn:
                parts = bk.read_ranges(conn, loader)
            break
        except (TargetUnavailable, psycopg.Error):
            if time.monotonic() > deadline:
                return "What the other ranges committed could not be read: PostgreSQL is still unreachable."
            time.sleep(1.0)
    landed = [str(p.range_no) for p in parts if p.status == "completed"]
    return (f"Committed so far across the {len(parts)} range(s): {sum(p.docs_read for p in parts)} documents; "
            f"landed: {'range ' + ', '.join(landed) if landed else 'none'}.")
