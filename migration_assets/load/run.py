"""The load loop of one :class:`LoaderSpec`: the collection read in batches, each through the
:class:`~migration_assets.load.batch.BatchStep` in its own transaction with its checkpoint.

A run killed at any point resumes after the last committed batch with nothing lost and
nothing doubled. A real run holds the loader's advisory lock (a second run of the same
loader waits, then fails clearly); a PostgreSQL connection lost mid-run becomes a
``TargetUnavailable`` naming the endpoint and the committed position. Append-only loaders
(the funds ledger) only ever insert: an existing row the source changed is reported
(``immutable_conflicts``), never updated or deleted.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

import psycopg

from migration_assets.load.dry_run import dry_run
from migration_assets.load.loop import fresh_tables, load_batches
from migration_assets.load.report import LoadOptions, LoadReport, Log, Progress
from migration_assets.source.documents import Source
from migration_assets.specs.model import LoaderSpec
from migration_assets.target import bookkeeping as bk
from migration_assets.target import lease
from migration_assets.target.guard import TargetUnavailable, describe_conn, loader_lock


def run_loader(loader: LoaderSpec, source: Source, conn: psycopg.Connection, options: LoadOptions,
               progress: Progress | None = None, total_docs: int | None = None,
               log: Log | None = None) -> LoadReport:
    """Load ``loader``'s collection into its tables (a dry run: into shadows; see ``dry_run.py``)."""
    if not conn.autocommit:
        raise ValueError("run_loader needs an autocommit connection (each batch is its own transaction)")
    say: Log = log or (lambda msg: None)
    report = LoadReport(loader.name, dry_run=options.dry_run)
    t0 = time.perf_counter()
    with target_loss(loader.name, conn, report):
        bk.load_session(conn, f"load_{loader.name} run {options.run_id[:8]}")
        if options.dry_run:
            dry_run(loader, source, conn, options, report, progress, total_docs, say)
        else:
            with loader_lock(conn, loader.name, timeout_s=options.lock_timeout_s, log=say,
                             owner=options.owner) as waited:
                report.lock_waited_s = waited
                real_run(loader, source, conn, options, report, progress, total_docs, say)
    report.seconds = time.perf_counter() - t0
    return report


@contextlib.contextmanager
def target_loss(name: str, conn: psycopg.Connection, report: LoadReport) -> Iterator[None]:
    """A connection lost mid-load becomes :class:`TargetUnavailable`, naming the endpoint and
    the position every batch up to which is committed."""
    endpoint = describe_conn(conn)
    try:
        yield
    except psycopg.OperationalError as e:
        if not (conn.closed or conn.broken):
            raise
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise TargetUnavailable(
            f"{name}: lost the connection to PostgreSQL at {endpoint} after {report.docs_read} documents "
            f"({type(e).__name__}: {first}). Every batch up to position {report.position or '(start)'} was committed "
            f"with its checkpoint (a server crash may have lost the last ones, their checkpoint with them); run the "
            f"load again to resume from the checkpoint PostgreSQL kept."
        ) from e


def real_run(loader: LoaderSpec, source: Source, conn: psycopg.Connection, options: LoadOptions, report: LoadReport,
             progress: Progress | None, total_docs: int | None, say: Log) -> None:
    fingerprint = source.fingerprint(loader.collection)
    cp = bk.read_checkpoint(conn, loader.name)
    took_over = lease.why_free(lease.read_lease(conn, loader.name)) if cp and cp.run_id != options.run_id else None
    resume = (options.resume and cp is not None and cp.status == "running"
              and cp.source_fingerprint == fingerprint)
    if resume:
        position, fresh = cp.position, cp.fresh
        report.resumed_from = report.position = position
        report.docs_read, report.docs_quarantined = cp.docs_read, cp.docs_quarantined
        report.rows = dict(cp.rows_written)
        say(f"{loader.name}: resuming the interrupted load at position {position or '(start)'} "
            f"({cp.docs_read} documents already committed)" + (f"; {took_over}" if took_over else ""))
        with conn.transaction():
            lease.take(conn, loader.name, options.owner, options.run_id)
    else:
        if cp is not None and cp.status == "running" and options.resume:
            say(f"{loader.name}: the interrupted load read another source ({cp.source_fingerprint}); starting over")
        fresh = fresh_tables(conn, loader)
        with conn.transaction():
            bk.start_generation(conn, loader.name, fingerprint, fresh, options.run_id)
            lease.take(conn, loader.name, options.owner, options.run_id)
        position = None
    report.fresh = fresh
    load_batches(loader, source, conn, options, report, progress, total_docs, position=position, fresh=fresh)
    with conn.transaction():
        for table, column in loader.self_deferred:
            applied, unresolved = bk.apply_deferred(conn, table.table, column.name, column.ref_table)
            report.deferred_applied += applied
            report.deferred_unresolved += unresolved
        bk.complete_checkpoint(conn, loader.name)
