"""The dry run: everything a real run does except writing.

The rows go to temporary shadow tables carrying the target's NOT NULL, CHECK and unique
constraints, in a session PostgreSQL keeps read-only. Parent loaders are simulated the same
way first, so a reference to a parent the real run would load counts as resolved and one
it would quarantine does not.
"""

from __future__ import annotations

import weakref

import psycopg

from migration_assets.load.loop import fresh_tables, load_batches
from migration_assets.load.report import LoadOptions, LoadReport, Log, Progress
from migration_assets.source.documents import Source
from migration_assets.specs.model import LoaderSpec
from migration_assets.specs.registry import ancestors
from migration_assets.target.write import create_shadows, enter_read_only, leave_read_only

# Loaders a connection's dry runs have already simulated into shadow tables.
_simulated: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def dry_run(loader: LoaderSpec, source: Source, conn: psycopg.Connection, options: LoadOptions, report: LoadReport,
            progress: Progress | None, total_docs: int | None, say: Log) -> None:
    done: set[str] = _simulated.setdefault(conn, set())
    parents = [p for p in ancestors(loader) if p.name not in done]
    create_shadows(conn, [t for l in [*parents, loader] for t in l.table_names])
    done.discard(loader.name)
    enter_read_only(conn)
    try:
        for parent in parents:
            sub = LoadReport(parent.name, dry_run=True)
            load_batches(parent, source, conn, options, sub, None, None, position=None,
                         fresh=fresh_tables(conn, parent), dry=True)
            done.add(parent.name)
            report.simulated_parents[parent.name] = {"documents": sub.docs_read, "loadable": sub.docs_loaded,
                                                     "quarantined": sub.docs_quarantined}
            say(f"{loader.name}: dry run simulated parent loader {parent.name}: {sub.docs_loaded} of "
                f"{sub.docs_read} documents would load")
        report.fresh = fresh_tables(conn, loader)
        load_batches(loader, source, conn, options, report, progress, total_docs, position=None,
                     fresh=report.fresh, dry=True)
        done.add(loader.name)
    finally:
        leave_read_only(conn)
