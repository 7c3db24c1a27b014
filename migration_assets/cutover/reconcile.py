"""The catch-up that misses nothing: a reconciliation pass per loader, without an oplog.

The per-``_id``-prefix digests of both sides (the verification pass) and the bisection diff
find exactly the documents that are new, that changed (``updatedAt`` bumped or not) and
that disappeared; those documents, and only those, are re-synced through the load path in
one transaction (``load/resync.py``): new and changed ones are re-written, vanished ones are
removed with their child rows, each removed row copied first to ``migration.removed_rows``.
The funds ledger is never rewritten: a changed or vanished entry is an immutable conflict,
reported for an auditor to acknowledge (``migration-assets ledger-conflicts``).

Each pass says what it read: documents on the Mongo side, ranges hashed, PostgreSQL rows
fetched, and how long it took.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import psycopg

from migration_assets.load.resync import ResyncReport, resync_documents
from migration_assets.source.documents import Source
from migration_assets.specs.model import LoaderSpec
from migration_assets.target import bookkeeping as bk
from migration_assets.verify.checksums import verify_loader
from migration_assets.verify.diff import ORPHAN, bisect_diff

NEW, CHANGED, REMOVED = "new", "changed", "removed"


@dataclass
class Reconciliation:
    loader: str
    dry_run: bool = False
    new: list[str] = field(default_factory=list)  # documents in Mongo that PostgreSQL lacks
    changed: list[str] = field(default_factory=list)  # documents whose rows differ
    # rows PostgreSQL holds that the source does not map: vanished documents, or documents that
    # no longer map (the re-sync tells which, and what it did: ``deleted``, ``withdrawn``)
    removed: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)  # append-only: changed or vanished entries, left as they are
    orphans: int = 0  # child rows whose document row is gone (reported, never guessed at)
    documents_read: int = 0  # Mongo documents read (bytes hashed at least)
    documents_decoded: int = 0  # of those, decoded and canonicalized (changed prefixes, the diff, re-syncs)
    ranges_hashed: int = 0
    rows_fetched: int = 0
    seconds: float = 0.0
    seconds_verifying: float = 0.0  # both sides digested per prefix (the verification pass)
    seconds_locating: float = 0.0  # the diff down to the documents
    resync: ResyncReport | None = None
    context: Mapping = field(default_factory=dict)  # the loader context the verification pass computed

    @property
    def documents(self) -> int:
        return len(self.new) + len(self.changed) + len(self.removed)

    @property
    def refused(self) -> dict[str, str]:
        return dict(self.resync.refused) if self.resync else {}

    @property
    def written(self) -> list[str]:
        """Documents whose rows were written (new or changed)."""
        return self.resync.loaded if self.resync else []

    @property
    def deleted(self) -> list[str]:
        """Documents Mongo no longer holds whose rows were removed (copied to removed_rows)."""
        return self.resync.removed if self.resync else []

    @property
    def withdrawn(self) -> list[str]:
        """Documents that no longer map: quarantined, and their rows removed (copied first)."""
        return self.resync.withdrawn if self.resync else []

    @property
    def unresolved(self) -> dict[str, str]:
        """Differences this pass found and could not resolve (document -> why)."""
        return self.resync.unresolved if self.resync else {}

    @property
    def summary(self) -> str:
        found = (f"{self.loader}: found {len(self.new)} new, {len(self.changed)} changed, {len(self.removed)} extra, "
                 f"{len(self.conflicts)} immutable conflict(s)")
        done = ("dry run: nothing written" if self.dry_run else
                f"{len(self.written)} written, {len(self.deleted)} removed, {len(self.withdrawn)} no longer map "
                f"(quarantined, rows removed), {len(self.unresolved)} not resolved")
        return (f"{found}; {done}; read {self.documents_read} documents (decoded {self.documents_decoded}), hashed "
                f"{self.ranges_hashed} ranges, fetched {self.rows_fetched} PostgreSQL rows in {self.seconds:.2f}s")


def locate(loader: LoaderSpec, source: Source, conn: psycopg.Connection, out: Reconciliation, workers: int = 1,
           full: bool = False) -> dict[str, str]:
    """The documents of ``loader`` whose rows differ between the two sides: document -> NEW (in
    Mongo only), CHANGED or REMOVED (in PostgreSQL only), read either way (the reverse sync reads
    them backwards). The source side reuses the digests the last pass saved for the ``_id``
    prefixes whose bytes did not change (``full``: canonicalize every document), and saves its
    own for the next; ``out`` gets what the pass read and how long it took."""
    t0 = time.perf_counter()
    saved = (None, {}) if full else bk.saved_source_digests(conn, loader.name)
    v = verify_loader(loader, source, conn, workers=workers, census=False, reuse=saved, documents=True)
    bk.save_source_digests(conn, loader.name, v.fingerprint, v.saved_buckets())
    out.context = v.context
    out.documents_read += v.source_docs
    out.documents_decoded += v.docs_canonicalized
    out.ranges_hashed += sum(len(t.source_buckets) + len(t.target_buckets) for t in v.tables.values())
    out.seconds_verifying = time.perf_counter() - t0
    if v.ok:
        return {}
    differing = [t.table for t in loader.tables if not v.tables[t.table].checksums_match]
    diff = bisect_diff(loader, source, conn, verification=v, tables=differing, limit=None)
    out.seconds_locating = diff.stats.seconds
    out.documents_read += diff.stats.docs_decoded
    out.documents_decoded += diff.stats.docs_decoded
    out.ranges_hashed += diff.stats.ranges_hashed_source + diff.stats.ranges_hashed_target
    out.rows_fetched += diff.stats.rows_fetched
    kinds: dict[str, str] = {}
    root = loader.root.table
    for table, td in diff.tables.items():
        for d in td.sample:
            if d.document == ORPHAN:
                out.orphans += 1
                continue
            if table == root and d.kind == "missing":
                kinds[d.document] = NEW
            elif table == root and d.kind == "extra":
                kinds[d.document] = REMOVED
            else:
                kinds.setdefault(d.document, CHANGED)
    return kinds


def plan(loader: LoaderSpec, source: Source, conn: psycopg.Connection, out: Reconciliation, workers: int = 1,
         full: bool = False) -> None:
    """Fill ``out`` with the differing documents of ``loader``'s tables (``locate``); the
    ledger's changed or vanished entries are conflicts, never rewritten."""
    for document, kind in sorted(locate(loader, source, conn, out, workers, full).items()):
        if loader.append_only and kind != NEW:
            out.conflicts.append(document)
        else:
            {NEW: out.new, CHANGED: out.changed, REMOVED: out.removed}[kind].append(document)


def reconcile(loader: LoaderSpec, source: Source, conn: psycopg.Connection, *, run_id: str,
              dry_run: bool = False, workers: int = 1, full: bool = False) -> Reconciliation:
    """One catch-up pass of ``loader``; ``dry_run``: find the documents, write nothing;
    ``workers``: processes hashing the source side (as the checks do)."""
    t0 = time.perf_counter()
    out = Reconciliation(loader.name, dry_run=dry_run)
    plan(loader, source, conn, out, workers, full)
    if out.documents and not dry_run:
        out.resync = resync_documents(loader, source, conn, out.new + out.changed + out.removed, run_id=run_id)
        out.documents_read += len(out.new) + len(out.changed)  # read again, by _id, to be written
        out.documents_decoded += len(out.new) + len(out.changed)
    out.seconds = time.perf_counter() - t0
    return out


def reconcile_loaders(loaders: Sequence[LoaderSpec], source: Source, conn: psycopg.Connection, *, run_id: str,
                      dry_run: bool = False, workers: int = 1, full: bool = False) -> list[Reconciliation]:
    """Reconcile ``loaders`` in FK order (parents written before their children). A removal
    a foreign key refused because the referencing row's own document vanished too is tried
    again once the children are done, in reverse FK order."""
    done = [reconcile(l, source, conn, run_id=run_id, dry_run=dry_run, workers=workers, full=full) for l in loaders]
    if dry_run:
        return done
    for loader, r in reversed(list(zip(loaders, done))):
        blocked = [d for d in r.removed if d in r.refused]
        if not blocked:
            continue
        t0 = time.perf_counter()
        again = resync_documents(loader, source, conn, blocked, run_id=run_id)
        for d in again.removed:
            r.resync.refused.pop(d, None)
            r.resync.removed.append(d)
        r.resync.refused.update(again.refused)
        r.seconds += time.perf_counter() - t0
    return done

