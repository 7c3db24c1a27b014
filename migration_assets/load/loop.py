"""The batch loop every load shares: the collection read after a position, batch by batch,
each through one :class:`~migration_assets.load.batch.BatchStep`."""

from __future__ import annotations

import time

import psycopg

from migration_assets.load.batch import BatchStep
from migration_assets.load.report import LoadOptions, LoadReport, Progress
from migration_assets.source.documents import Source
from migration_assets.source.spans import Span
from migration_assets.specs.model import LoaderSpec
from migration_assets.target.lease import Heartbeat
from migration_assets.target.write import table_has_rows
from migration_assets.transform.context import prepare_context


def fresh_tables(conn: psycopg.Connection, loader: LoaderSpec) -> bool:
    """Whether every table of the loader is empty (its rows may be copied straight in)."""
    return not any(table_has_rows(conn, t) for t in loader.table_names)


def load_batches(loader: LoaderSpec, source: Source, conn: psycopg.Connection, options: LoadOptions,
                 report: LoadReport, progress: Progress | None, total_docs: int | None, *,
                 position: str | None, fresh: bool, dry: bool = False, span: Span | None = None) -> None:
    """Every batch after ``position`` (of the collection, or of one ``span`` of a ranged
    load) through one :class:`BatchStep`."""
    t0 = time.perf_counter() - report.seconds
    cpu0 = time.process_time()
    t = time.perf_counter()
    ctx = prepare_context(loader, source)
    report.timings["prepare"] += time.perf_counter() - t
    # Where ids may repeat, every later occurrence of an _id is quarantined as a duplicate,
    # whatever became of the first (loaded, or quarantined for its content).
    seen: set[str] | None = None
    if not source.ids_unique:
        # A span's reader also learns what the spans before it hold: their first occurrences count.
        seen = set(source.keys_before(loader.collection, position or (span.start if span else None)))
    digest = None
    if options.digests is not None and not dry:
        expected = span.docs if span else total_docs
        digest = options.digests(loader, ctx, source.count(loader.collection) if expected is None else expected)
    step = BatchStep(loader, conn, ctx, report, run_id=options.run_id, fresh=fresh, compiled=options.compiled,
                     dry=dry, seen=seen, range_no=span.no if span else None, digest=digest)
    batches = (source.iter_span(loader.collection, span, after=position, batch_size=options.batch_size) if span
               else source.iter_batches(loader.collection, after=position, batch_size=options.batch_size))
    beat = Heartbeat(conn, loader.name, None if dry else options.owner)
    try:
        for batch in batches:
            step.run(batch.docs, batch.position)
            beat()
            report.seconds = time.perf_counter() - t0
            if progress:
                progress(report, total_docs)
    finally:
        if digest is not None:
            digest.close()
    report.immutable_conflicts = sorted(step.writer.conflicts)
    report.cpu_s += time.process_time() - cpu0
