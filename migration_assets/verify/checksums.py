"""Source-vs-target verification of one loader's tables: row counts and checksums.

The source side scans the collection and renders each row canonically from the raw
document (the compiled canon of ``compiled_canon.py``, or the reference
``canonical.source_rows``: ``compiled=False``); the target side is one SQL aggregate per
table. Documents in the open quarantine are counted apart, never silently dropped: for
every table, ``source rows = target rows + quarantined rows`` must hold.
"""

from __future__ import annotations

import multiprocessing as mp
import time
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, field

import psycopg

from migration_assets.source.census import Census
from migration_assets.source.documents import Source
from migration_assets.source.scan import Scanned, scan
from migration_assets.specs.columns import legacy_column
from migration_assets.specs.model import MISSING, Column, DeferredRemap, LoaderSpec, TableSpec, resolve_source
from migration_assets.target.bookkeeping import Acknowledgement, SavedBuckets
from migration_assets.transform.context import prepare_context
from migration_assets.verify.acknowledged import held_acknowledgements
from migration_assets.verify.canonical import (
    OBJECT_ID_HEX,
    Digest,
    Unmappable,
    canonical_rows,
    object_id_bounds,
    raw_hash60,
    table_sql,
)
from migration_assets.verify.compiled_canon import (
    BUCKET_PREFIX,
    Buckets,
    compile_canon,
    digest_batch,
    digest_documents,
    fold,
    merge_buckets,
    source_fingerprint,
)
from migration_assets.verify.load_digests import FromLoad, default_signals, source_from_load
from migration_assets.verify.quarantined import QuarantineIndex

PARALLEL_MIN_DOCS = 50_000  # below this, starting worker processes costs more than it saves


@dataclass
class TableVerification:
    table: str
    source: Digest = field(default_factory=Digest)
    target: Digest = field(default_factory=Digest)
    quarantined_rows: int = 0
    # Digests per _id prefix of BUCKET_PREFIX characters (whole-table runs only): the first
    # level of the bisection diff, computed in the same pass on both sides.
    source_buckets: dict[str, Digest] = field(default_factory=dict)
    target_buckets: dict[str | None, Digest] = field(default_factory=dict)

    @property
    def counts_match(self) -> bool:
        return self.source.count == self.target.count

    @property
    def checksums_match(self) -> bool:
        return self.source == self.target


@dataclass
class LoaderVerification:
    loader: str
    source_docs: int = 0
    quarantined_docs: int = 0
    tables: dict[str, TableVerification] = field(default_factory=dict)
    seconds_source: float = 0.0
    # PostgreSQL's side runs while the source side is read: this is what was left to wait for
    seconds_target: float = 0.0
    context: Mapping = field(default_factory=dict)  # the loader context the source side used
    census: Census = field(default_factory=Census)  # every document's field paths, taken in the same pass
    # Acknowledged ledger conflicts that still hold: left out of both sides, listed apart.
    acknowledged: dict[str, Acknowledgement] = field(default_factory=dict)
    # With ``reuse``: digests of the documents' bytes per prefix, what the source side's
    # canonical code and context were (``fingerprint``), and how many documents it decoded.
    raw_buckets: dict[str, list[int]] = field(default_factory=dict)
    fingerprint: str = ""
    docs_canonicalized: int = 0
    read_source: bool = True  # False: the source side is what the load before it kept
    # Documents whose rows cannot be rendered (a value of a type its column does not take):
    # expected absent from PostgreSQL, as the transform rejects them; key -> why.
    unmappable: dict[str, str] = field(default_factory=dict)
    # With ``documents``: each canonicalized document's own digests (key -> per-table counts and
    # sums), and the prefixes all of whose documents are in it. The diff's deeper levels read
    # these instead of reading and canonicalizing the documents again.
    document_digests: Buckets = field(default_factory=dict)
    documents_known: set[str] = field(default_factory=set)

    def saved_buckets(self) -> SavedBuckets:
        """What a catch-up pass saves for the next one to reuse."""
        out: SavedBuckets = {}
        for p, (c, s) in self.raw_buckets.items():
            digests = [t.source_buckets.get(p, Digest()) for t in self.tables.values()]
            out[p] = (c, s, [d.count for d in digests], [d.total for d in digests])
        return out

    @property
    def ok(self) -> bool:
        return all(t.checksums_match for t in self.tables.values())


def verify_loader(loader: LoaderSpec, source: Source, conn: psycopg.Connection, *,
                  lo: str | None = None, hi: str | None = None, compiled: bool = True,
                  workers: int = 1, census: bool = True,
                  reuse: tuple[str | None, SavedBuckets] | None = None,
                  documents: bool = False, loaded_by: str | None = None) -> LoaderVerification:
    """Counts and checksums of every table of ``loader``, both sides. ``workers`` > 1 hashes
    the source side in that many processes (large collections without a context);
    ``census``: take the field-path census in the same pass (the checks do; a catch-up
    pass does not need it). ``reuse``: digests a previous pass saved (fingerprint, buckets):
    every document's bytes are read and hashed, but only the prefixes whose bytes changed
    (or all, under another fingerprint) are canonicalized. ``documents``: keep each
    canonicalized document's digests too (a catch-up pass that will locate differences).
    ``loaded_by``: the run asking; when it completed the loader's load, the source side is what
    that load's batches kept (``load_digests.py``), if it still holds, instead of a read."""
    result = LoaderVerification(loader.name)
    bucketed = lo is None and hi is None
    for t in loader.tables:
        result.tables[t.table] = TableVerification(t.table)
    qindex = QuarantineIndex(conn, loader.name)
    ctx = prepare_context(loader, source)
    result.context = ctx
    result.acknowledged = held_acknowledgements(loader, source, conn)

    t0 = time.perf_counter()
    scanned = scan(source, loader.collection, skip=qindex.scanner(), lo=lo, hi=hi)
    kept = counted(loader, result, (d for d in scanned if d.key not in result.acknowledged))
    loaded = None
    if loaded_by is not None and bucketed and compiled and reuse is None and not documents:
        loaded = source_from_load(loader, conn, loaded_by, ctx, qindex, result.acknowledged)
    # The target side's aggregates go to PostgreSQL now (pipeline mode) and are read after the
    # source side: the server computes them while this process reads the source.
    with conn.pipeline():
        target = [(t, conn.execute(*target_query(t, result.acknowledged, bucketed, lo, hi))) for t in loader.tables]
        source_side(loader, source, result, kept, ctx, qindex, loaded, reuse=reuse, compiled=compiled,
                    workers=workers, census=census, documents=documents, bucketed=bucketed)
        result.seconds_source = time.perf_counter() - t0
        t0 = time.perf_counter()
        for t, cur in target:
            tv = result.tables[t.table]
            if bucketed:
                for p, count, total in cur.fetchall():
                    # prefix None: child rows whose parent is gone (the diff reports them apart)
                    tv.target_buckets[p] = Digest(int(count), int(total))
                    tv.target.merge(Digest(int(count), int(total)))
            else:
                count, total = cur.fetchone()
                tv.target = Digest(int(count), int(total))
        result.seconds_target = time.perf_counter() - t0  # what the source side left to wait for
    return result


def target_query(table: TableSpec, acknowledged: Collection[str], bucketed: bool, lo: str | None,
                 hi: str | None) -> tuple[str, list]:
    """The table's digest in SQL: per ``_id`` prefix, or of the range [lo, hi)."""
    sql = table_sql(table, acknowledged)
    return sql.prefix_digest_query(BUCKET_PREFIX) if bucketed else sql.digest_query(lo, hi)


def source_side(loader: LoaderSpec, source: Source, result: LoaderVerification, kept: Iterator[Scanned],
                ctx: Mapping, qindex: QuarantineIndex, loaded: FromLoad | None, *,
                reuse: tuple[str | None, SavedBuckets] | None, compiled: bool, workers: int, census: bool,
                documents: bool, bucketed: bool) -> None:
    """The Mongo side of ``result``: from what the run's load kept (``loaded``), or read."""
    prefix = BUCKET_PREFIX if bucketed else None
    acc: Buckets = {}
    if loaded is not None:
        result.read_source = False
        acc = loaded.buckets
        result.source_docs, result.quarantined_docs = loaded.source_docs, loaded.quarantined_docs
        result.unmappable = loaded.unmappable
        if census:
            result.census = loaded.census
        for t, rows in zip(loader.tables, loaded.quarantined_rows, strict=True):
            result.tables[t.table].quarantined_rows = rows
    elif compiled:
        if reuse is not None and bucketed:
            kept = changed_documents(loader, source, qindex, result, kept, reuse, acc)
        # Per document first, then folded into the prefixes: only for the prefixes whose bytes
        # changed since the last pass (a pass that canonicalizes everything keeps nothing).
        if not documents:
            result.documents_known = set()
        if result.documents_known:
            digest_documents(result.document_digests, compile_canon(loader), (d.raw for d in kept), ctx,
                             OBJECT_ID_HEX, result.census if census else None, result.unmappable)
            fold(acc, result.document_digests.items(), BUCKET_PREFIX)
        elif workers > 1 and not ctx and source.count(loader.collection) >= PARALLEL_MIN_DOCS:
            hash_in_processes(loader, kept, prefix, workers, acc, result.census if census else None,
                              result.unmappable)
        else:
            digest_documents(acc, compile_canon(loader), (d.raw for d in kept), ctx, prefix,
                             result.census if census else None, result.unmappable)
    else:
        for d in kept:
            if d.doc is None:
                result.unmappable[d.key] = "invalid_bson: the document cannot be decoded"
                continue
            if census:
                result.census.add(d.doc, d.key)
            try:
                rows = canonical_rows(loader, loader.tables, d.doc, ctx)
            except Unmappable as e:
                result.unmappable[d.key] = e.reason
                continue
            for t in loader.tables:
                tv = result.tables[t.table]
                bucket = tv.source_buckets.setdefault(d.key[:BUCKET_PREFIX], Digest()) if bucketed else None
                for row in rows[t.table]:
                    tv.source.add(row.text)
                    if bucket is not None:
                        bucket.add(row.text)
    for i, t in enumerate(loader.tables):  # the compiled side's or the load's per-prefix sums
        tv = result.tables[t.table]
        for p, (c, s) in acc.items():
            d = Digest(c[i], s[i])
            tv.source.merge(d)
            if bucketed:
                tv.source_buckets[p] = d


def changed_documents(loader: LoaderSpec, source: Source, qindex: QuarantineIndex, result: LoaderVerification,
                      kept: Iterator[Scanned], reuse: tuple[str | None, SavedBuckets], acc: Buckets
                      ) -> Iterator[Scanned]:
    """Hash every kept document's bytes per prefix; fill ``acc`` with the saved canonical
    digests of the prefixes whose bytes are unchanged, and return the documents of the
    others, read again by range, to be canonicalized."""
    raw = result.raw_buckets
    result.fingerprint = source_fingerprint(loader, result.context)
    saved_fp, saved = reuse

    def hashed(docs: Iterator[Scanned], canonicalized: bool) -> Iterator[Scanned]:
        for d in docs:
            r = raw.setdefault(d.key[:BUCKET_PREFIX], [0, 0])
            r[0] += 1
            r[1] += raw_hash60(d.raw)
            if canonicalized:
                result.docs_canonicalized += 1
                yield d

    if saved_fp != result.fingerprint or not saved:
        return hashed(kept, True)  # nothing to reuse: one pass, everything canonicalized
    for _ in hashed(kept, False):
        pass
    stale = {p for p, (c, s) in raw.items() if p not in saved or tuple(saved[p][:2]) != (c, s)}
    for p in raw.keys() - stale:
        acc[p] = (list(saved[p][2]), list(saved[p][3]))
    result.documents_known = set(stale)  # kept per document when asked (``documents``)

    def again() -> Iterator[Scanned]:
        ranges = [object_id_bounds(p) for p in sorted(stale)]
        for d in scan(source, loader.collection, skip=qindex.scanner(), ranges=ranges):
            if not d.skipped and d.key not in result.acknowledged and d.key[:BUCKET_PREFIX] in stale:
                result.docs_canonicalized += 1
                yield d
    return again() if stale else iter(())


def counted(loader: LoaderSpec, result: LoaderVerification, docs: Iterator[Scanned]) -> Iterator[Scanned]:
    """The documents expected in PostgreSQL; the others are counted as quarantined, with
    the rows each would have given."""
    for d in docs:
        result.source_docs += 1
        if not d.skipped:
            yield d
            continue
        result.quarantined_docs += 1
        if d.doc is not None:
            result.census.add(d.doc, d.key)
            for t in loader.tables:
                result.tables[t.table].quarantined_rows += sum(1 for _ in t.rows.sources(d.doc))


def hash_in_processes(loader: LoaderSpec, docs: Iterator[Scanned], prefix: int | None, workers: int,
                      acc: Buckets, census: Census | None, unmappable: dict[str, str]) -> None:
    """Batches hashed in other processes (digests are sums: any order). Which documents are
    kept was decided here, in source order. Workers come from a fork server: forking this
    process (threads of Dagster, pymongo, an earlier pool) can copy a lock in its taken
    state and hang the child."""

    def batches():
        batch: list[bytes] = []
        for d in docs:
            batch.append(d.raw)
            if len(batch) >= 5000:
                yield loader.name, batch, prefix, census is not None
                batch = []
        if batch:
            yield loader.name, batch, prefix, census is not None

    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(["migration_assets.verify.compiled_canon"])
    # Workers start with the default signal dispositions (a parent that ignores SIGTERM
    # would hand that on, and a pool could then never be stopped), and a pool that finished
    # is closed and joined rather than terminated (terminating idle workers can leave the
    # task queue's lock taken, and the join waits forever).
    pool = ctx.Pool(workers, initializer=default_signals)
    try:
        for part, their_census, their_unmappable in pool.imap_unordered(digest_batch, batches()):
            merge_buckets(acc, part)
            unmappable.update(their_unmappable)
            if census is not None:
                census.merge(their_census)
        pool.close()
    except BaseException:
        pool.terminate()
        raise
    finally:
        pool.join()


# --- remaps -------------------------------------------------------------------------------

def remap_projection(loader: LoaderSpec, remap: DeferredRemap) -> TableSpec:
    """The (document, reference) pairs a remap owns, as a two-column table spec."""
    column = loader.table(remap.table).column(remap.column)
    return TableSpec(table=remap.table, columns=(legacy_column(), Column(column.name, column.kind, column.path)))


def verify_remap(loader: LoaderSpec, remap: DeferredRemap, source: Source, conn: psycopg.Connection) -> TableVerification:
    """Every reference the source holds is set in PostgreSQL, or refused into quarantine."""
    pseudo = remap_projection(loader, remap)
    ref_col = pseudo.columns[1]
    loaded = QuarantineIndex(conn, loader.name)
    refused = QuarantineIndex(conn, remap.name).ids()
    out = TableVerification(f"{remap.table}.{remap.column}")
    for d in scan(source, loader.collection, skip=loaded.scanner()):
        if d.skipped or d.doc is None:
            continue
        if resolve_source(ref_col, d.doc, d.doc, 0, {}) in (None, MISSING):
            continue
        if d.key in refused:
            out.quarantined_rows += 1
            continue
        try:
            rows = canonical_rows(loader, [pseudo], d.doc, {})[pseudo.table]
        except Unmappable:  # the document does not load: its reference is not expected either
            continue
        for row in rows:
            out.source.add(row.text)
    tsql = table_sql(pseudo)
    count, total = conn.execute(
        f"SELECT count(*), coalesce(sum(migration.hash60({tsql.row_text})), 0) FROM {tsql.from_sql} "
        f"WHERE t.{remap.column} IS NOT NULL"
    ).fetchone()
    out.target = Digest(int(count), int(total))
    return out
