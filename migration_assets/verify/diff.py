"""Row-level diff by bisection over ``_id`` prefixes: find the differing rows of a loader's
tables without reading whole tables into memory.

The key of every row is its source document's ``_id`` (child tables use their root
document's), so one document's rows always fall in the same range. Ranges are hex
prefixes of the ``_id``: a prefix of ``L`` characters is the range
``[prefix, next prefix)`` and has 16**step children at the next level. ObjectIds start
with their creation second, so the first characters split by time and later ones by
random bits: ranges stay balanced whatever the time distribution, and every level's
range boundaries are known before reading anything.

Level by level, each range is hashed on both sides (:class:`Digest`: row count + sum of
60-bit row hashes, Python from the Mongo documents, SQL from the loaded rows):

* level 0 is the verification pass itself (``verify_loader`` keeps per-prefix digests of
  ``BUCKET_PREFIX`` characters on both sides), so it costs nothing extra;
* each next level re-reads only the documents under the ranges that differed
  (``Source.iter_ranges``: a live server answers one ``_id`` range query per range, a
  mongodump directory one pass over its file for all the ranges of a level); PostgreSQL
  with one statement per table (an index range scan per range);
* when the ranges that differ hold more than ``WIDE_SHARE`` of the rows (changes scattered
  over the whole collection: nearly every range differs at every level, and descending would
  re-read nearly everything level after level), the next level is the documents themselves:
  one pass digests each document under those ranges on both sides, and only the documents
  that differ are compared;
* a range with few rows left is a leaf: its rows are compared one by one and every
  difference is reported as missing in PostgreSQL, extra in PostgreSQL, or changed with
  the names of the differing columns.
"""

from __future__ import annotations

import datetime as dt
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

import psycopg

from migration_assets.source.documents import Source
from migration_assets.source.scan import Scanned, scan
from migration_assets.specs.model import LoaderSpec, TableSpec
from migration_assets.transform.context import prepare_context
from migration_assets.verify.canonical import (
    OBJECT_ID_HEX,
    Digest,
    expected_rows,
    identity_columns,
    object_id_bounds,
    table_sql,
)
from migration_assets.verify.checksums import LoaderVerification, verify_loader
from migration_assets.verify.compiled_canon import BUCKET_PREFIX, Buckets, compile_canon, digest_documents, fold
from migration_assets.verify.quarantined import QuarantineIndex

STEP = 2  # hex characters per level: up to 256 children per range
LEAF_ROWS = 256  # a range with at most this many rows on either side is compared row by row
WIDE_SHARE = 0.05  # differing ranges holding more of the rows than this: digest per document next

ORPHAN = "(document row missing)"  # the "document" of child rows whose root row is gone
KIND_LABELS = {"missing": "missing in PostgreSQL", "extra": "extra in PostgreSQL", "changed": "changed"}


@dataclass(frozen=True)
class RowDifference:
    kind: str  # "missing" | "extra" | "changed"
    document: str  # legacy id of the source document the row belongs to
    row: str = ""  # for child rows: which one ("position=2", "legacy_object_id=…")
    columns: tuple[str, ...] = ()  # for "changed": the differing columns

    @property
    def label(self) -> str:
        return KIND_LABELS[self.kind]


@dataclass
class TableDiff:
    table: str
    limit: int | None = 50  # None: every difference kept (the reconciliation acts on all)
    missing: int = 0
    extra: int = 0
    changed: int = 0
    sample: list[RowDifference] = field(default_factory=list)

    @property
    def total(self) -> int:
        return self.missing + self.extra + self.changed

    def add(self, d: RowDifference) -> None:
        setattr(self, d.kind, getattr(self, d.kind) + 1)
        if self.limit is None or len(self.sample) < self.limit:
            self.sample.append(d)

    def of_kind(self, kind: str) -> list[RowDifference]:
        return [d for d in self.sample if d.kind == kind]

    def changed_columns(self) -> dict[str, int]:
        out: dict[str, int] = defaultdict(int)
        for d in self.sample:
            for c in d.columns:
                out[c] += 1
        return dict(out)


@dataclass
class DiffStats:
    levels: int = 0  # passes over the source after the verification pass (leaf pass included)
    ranges_hashed_source: int = 0
    ranges_hashed_target: int = 0
    leaf_ranges: int = 0
    docs_decoded: int = 0  # source documents decoded by the diff itself
    rows_fetched: int = 0  # PostgreSQL rows brought to Python (leaf ranges only)
    seconds: float = 0.0


@dataclass
class LoaderDiff:
    loader: str
    tables: dict[str, TableDiff]
    stats: DiffStats

    @property
    def total(self) -> int:
        return sum(t.total for t in self.tables.values())


# --- ranges ------------------------------------------------------------------------------

def _covering(key: str, prefixes: set[str], lengths: list[int]) -> str | None:
    for n in lengths:
        if key[:n] in prefixes:
            return key[:n]
    return None


def scan_prefixes(source: Source, collection: str, prefixes: Iterable[str],
                  qindex: QuarantineIndex) -> Iterator[tuple[str, Scanned]]:
    """(prefix, scanned document) of every loadable source document under ``prefixes``, read
    in one request to the source (``Source.iter_ranges``). Quarantined documents are skipped,
    as in verification; the caller decodes (or not) what it needs."""
    wanted = set(prefixes)
    lengths = sorted({len(p) for p in wanted}, reverse=True)
    ranges = [b for b in (object_id_bounds(p) for p in sorted(wanted)) if b is not None]
    for d in scan(source, collection, skip=qindex.scanner(), ranges=ranges):
        if d.skipped or d.key in qindex.exclude:
            continue
        prefix = _covering(d.key, wanted, lengths)
        if prefix is not None:
            yield prefix, d


# --- pretty row identities -----------------------------------------------------------------

def split_canonical(text: str) -> list[str]:
    """Split ``/``-joined canonical texts (strings are length-prefixed, so a ``/`` inside
    one does not split it)."""
    out, i = [], 0
    while i < len(text):
        if text[i] == "s" and ":" in text[i:]:
            colon = text.index(":", i)
            try:
                n = int(text[i + 1:colon])
                end = colon + 1 + n
                out.append(text[i:end])
                i = end + 1
                continue
            except ValueError:
                pass
        end = text.find("/", i)
        end = len(text) if end < 0 else end
        out.append(text[i:end])
        i = end + 1
    return out


def readable(canon: str) -> str:
    """``s5:hello`` -> hello, ``r65a…`` -> 65a…, ``n3`` -> 3, ``d<ms>`` -> ISO time, ``z`` -> null."""
    if canon == "z":
        return "null"
    if canon.startswith("s") and ":" in canon:
        return canon.split(":", 1)[1]
    if canon[:1] in ("r", "n"):
        return canon[1:]
    if canon.startswith("d"):
        try:
            return (dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
                    + dt.timedelta(milliseconds=int(canon[1:]))).isoformat()
        except ValueError:
            return canon
    return canon


def row_label(table: TableSpec, identity: str) -> str:
    """Which row of its document: empty for the document's own row."""
    if table.is_root:
        return ""
    names = identity_columns(table)
    parts = split_canonical(identity)
    return ", ".join(f"{n}={readable(v)}" for n, v in zip(names, parts) if n != table.parent_column)


# --- the diff -----------------------------------------------------------------------------

@dataclass
class _Level:
    """Digests of one level's ranges: table -> prefix -> Digest, on each side."""

    source: dict[str, dict[str | None, Digest]]
    target: dict[str, dict[str | None, Digest]]

    def differing(self, tables: Iterable[str]) -> dict[str | None, list[str]]:
        """prefix -> tables whose digest differs there."""
        out: dict[str | None, list[str]] = defaultdict(list)
        for t in tables:
            src, tgt = self.source.get(t, {}), self.target.get(t, {})
            for p in set(src) | set(tgt):
                if src.get(p, Digest()) != tgt.get(p, Digest()):
                    out[p].append(t)
        return out

    def size(self, prefix: str | None, tables: Iterable[str]) -> int:
        return max((max(self.source.get(t, {}).get(prefix, Digest()).count,
                        self.target.get(t, {}).get(prefix, Digest()).count) for t in tables), default=0)


def bisect_diff(loader: LoaderSpec, source, conn: psycopg.Connection, *,
                verification: LoaderVerification | None = None, tables: Iterable[str] | None = None,
                limit: int | None = 50, leaf_rows: int = LEAF_ROWS, step: int = STEP,
                wide_share: float = WIDE_SHARE) -> LoaderDiff:
    """The differing rows of ``loader``'s tables (``tables``: a subset), found by bisection.

    ``verification`` (a whole-table ``verify_loader`` result) supplies level 0; without
    it the diff runs that pass itself. At most ``limit`` differences per table are kept
    as a sample; the counts are exact.
    """
    t0 = time.perf_counter()
    stats = DiffStats()
    names = [t.table for t in loader.tables] if tables is None else list(tables)
    specs = {n: loader.table(n) for n in names}
    out = LoaderDiff(loader.name, {n: TableDiff(n, limit) for n in names}, stats)
    if verification is None:
        verification = verify_loader(loader, source, conn)
        stats.docs_decoded += verification.source_docs
    ctx: Mapping = verification.context
    qindex = QuarantineIndex(conn, loader.name)
    qindex.exclude = set(verification.acknowledged)  # out of both sides, as in the verification
    sqls = {n: table_sql(specs[n], qindex.exclude) for n in names}

    level = _Level({n: dict(verification.tables[n].source_buckets) for n in names},
                   {n: dict(verification.tables[n].target_buckets) for n in names})
    length = BUCKET_PREFIX
    total = sum(level.size(p, names) for p in {p for side in (level.source, level.target)
                                               for buckets in side.values() for p in buckets})
    leaves: dict[str | None, list[str]] = {}
    known = KnownDocuments.of(verification)
    while True:
        descend: dict[str, list[str]] = {}
        for prefix, differing in level.differing(names).items():
            if prefix is None or len(prefix) >= OBJECT_ID_HEX or level.size(prefix, differing) <= leaf_rows:
                leaves[prefix] = differing
            else:
                descend[prefix] = differing
        if not descend:
            break
        wide = sum(level.size(p, ts) for p, ts in descend.items()) > wide_share * total
        length = OBJECT_ID_HEX if wide else min(OBJECT_ID_HEX, length + step)
        stats.levels += 1
        level = _next_level(loader, source, conn, qindex, ctx, specs, sqls, descend, length, stats, known)

    stats.leaf_ranges = len(leaves)
    if leaves:
        stats.levels += 1
        _compare_leaves(loader, source, conn, qindex, ctx, specs, sqls, leaves, out, stats)
    for td in out.tables.values():
        td.sample.sort(key=lambda d: (d.document, d.row, d.kind))
    stats.seconds = time.perf_counter() - t0
    return out


@dataclass
class KnownDocuments:
    """The per-document digests the verification pass kept, by bucket prefix; ``prefixes``:
    the buckets all of whose documents are in it."""

    by_bucket: dict[str, list[str]]
    digests: Buckets
    prefixes: set[str]

    @classmethod
    def of(cls, v: LoaderVerification) -> KnownDocuments:
        by_bucket: dict[str, list[str]] = defaultdict(list)
        for key in v.document_digests:
            by_bucket[key[:BUCKET_PREFIX]].append(key)
        return cls(by_bucket, v.document_digests, v.documents_known)

    def covers(self, prefix: str) -> bool:
        return prefix[:BUCKET_PREFIX] in self.prefixes

    def under(self, prefix: str) -> Iterator[tuple[str, tuple[list[int], list[int]]]]:
        for key in self.by_bucket.get(prefix[:BUCKET_PREFIX], ()):
            if key.startswith(prefix):
                yield key, self.digests[key]


def _next_level(loader, source, conn, qindex, ctx, specs, sqls, descend: dict[str, list[str]],
                length: int, stats: DiffStats, known: KnownDocuments) -> _Level:
    """Digests of the children (``length`` characters) of the ranges in ``descend``: from the
    documents' digests the verification pass kept, or read and canonicalized again."""
    tables = sorted({t for ts in descend.values() for t in ts})
    with conn.pipeline():  # PostgreSQL computes its side while this process computes the source's
        pending = {t: conn.execute(*sqls[t].prefix_digest_query(length, [p for p, ts in descend.items() if t in ts]))
                   for t in tables}
        src = _next_level_source(loader, source, qindex, ctx, tables, descend, length, stats, known)
        tgt: dict[str, dict[str | None, Digest]] = {}
        for t in tables:
            tgt[t] = {p: Digest(int(c), int(s)) for p, c, s in pending[t].fetchall()}
            stats.ranges_hashed_target += len(tgt[t])
            stats.ranges_hashed_source += len(src[t])
    return _Level(src, tgt)


def _next_level_source(loader, source, qindex, ctx, tables: list[str], descend: dict[str, list[str]], length: int,
                       stats: DiffStats, known: KnownDocuments) -> dict[str, dict[str | None, Digest]]:
    src: dict[str, dict[str | None, Digest]] = {t: {} for t in tables}
    # The compiled canon digests every table of a document in one go, as verification does
    # (it falls back to the reference on anything unusual; the two are tested equal).
    acc: Buckets = {}
    parent: dict[str, str] = {}
    for prefix in [p for p in descend if known.covers(p)]:
        parts = list(known.under(prefix))
        parent.update((key[:length], prefix) for key, _ in parts)
        fold(acc, parts, length)
    unknown = {p: ts for p, ts in descend.items() if not known.covers(p)}

    def raws() -> Iterator[bytes]:
        for prefix, d in scan_prefixes(source, loader.collection, unknown, qindex):
            stats.docs_decoded += 1
            parent[d.key[:length]] = prefix
            yield d.raw

    if unknown:
        digest_documents(acc, compile_canon(loader), raws(), ctx, length, None, {})
    index = {t.table: i for i, t in enumerate(loader.tables)}
    for child, (counts, sums) in acc.items():
        for t in descend[parent[child]]:
            if counts[index[t]]:
                src[t][child] = Digest(counts[index[t]], sums[index[t]])
    return src


def _compare_leaves(loader, source, conn, qindex, ctx, specs, sqls, leaves: dict[str | None, list[str]],
                    out: LoaderDiff, stats: DiffStats) -> None:
    """Row-by-row comparison of the leaf ranges."""
    by_table: dict[str, list[str | None]] = defaultdict(list)
    for prefix, ts in leaves.items():
        for t in ts:
            by_table[t].append(prefix)
    with conn.pipeline():  # PostgreSQL reads its rows while this process canonicalizes the documents
        pending: dict[str, list[tuple[psycopg.Cursor, str | None]]] = defaultdict(list)
        for t, prefixes in by_table.items():
            ranges = [p for p in prefixes if p is not None]
            if ranges:
                pending[t].append((conn.execute(*sqls[t].prefix_rows_query(ranges)), None))
            if None in prefixes:  # child rows whose document row is gone from PostgreSQL
                sql, _ = sqls[t].rows_query()
                pending[t].append((conn.execute(f"{sql} WHERE {sqls[t].key_expr} IS NULL"), ORPHAN))
        src: dict[str, dict[tuple[str, str], list[list[str]]]] = {t: defaultdict(list) for t in by_table}
        real = {p: ts for p, ts in leaves.items() if p is not None}
        for prefix, d in scan_prefixes(source, loader.collection, real, qindex):
            stats.docs_decoded += 1
            doc = d.doc
            if doc is None:
                continue
            for t in real[prefix]:
                for row in expected_rows(loader, specs[t], doc, ctx):
                    src[t][(row.root_key, row.identity)].append(row.values)
        for t in by_table:
            tgt: dict[tuple[str, str], list[list[str]]] = defaultdict(list)
            for cur, orphan in pending[t]:
                for key, ident, values in cur.fetchall():
                    tgt[(orphan or key, ident)].append(list(values))
                    stats.rows_fetched += 1
            _compare_rows(specs[t], src[t], tgt, out.tables[t])


def _compare_rows(table: TableSpec, src: Mapping[tuple[str, str], list[list[str]]],
                  tgt: Mapping[tuple[str, str], list[list[str]]], out: TableDiff) -> None:
    names = [c.name for c in table.hashed_columns]
    for key in sorted(set(src) | set(tgt)):
        a = list(src.get(key, ()))
        b = list(tgt.get(key, ()))
        for row in list(a):  # identical rows on both sides are not differences
            if row in b:
                a.remove(row)
                b.remove(row)
        doc, ident = key
        label = row_label(table, ident)
        for x, y in zip(a, b):
            cols = tuple(n for n, u, v in zip(names, x, y) if u != v)
            out.add(RowDifference("changed", doc, label, cols))
        for _ in a[len(b):]:
            out.add(RowDifference("missing", doc, label))
        for _ in b[len(a):]:
            out.add(RowDifference("extra", doc, label))


def summary_rows(diff: TableDiff) -> list[tuple[str, str, str, str]]:
    """(document _id, row, difference, columns) for a markdown table."""
    return [(d.document, d.row, d.label, ", ".join(d.columns)) for d in diff.sample]


# --- the full comparison (what the bisection is tested against) -----------------------------

@dataclass
class RowDiff:
    table: str
    missing: list[str] = field(default_factory=list)  # in source, not in PostgreSQL
    extra: list[str] = field(default_factory=list)  # in PostgreSQL, not in source
    changed: list[tuple[str, list[str]]] = field(default_factory=list)  # (row, differing columns)

    @property
    def total(self) -> int:
        return len(self.missing) + len(self.extra) + len(self.changed)


def diff_rows(loader: LoaderSpec, table_name: str, source: Source, conn: psycopg.Connection, *,
              lo: str | None = None, hi: str | None = None, limit: int = 1000) -> RowDiff:
    """Row-level comparison of one table over an ``_id`` range (the whole table by default),
    every row read on both sides."""
    table = loader.table(table_name)
    qindex = QuarantineIndex(conn, loader.name)
    ctx = prepare_context(loader, source)
    src: dict[str, list[str]] = {}
    for d in scan(source, loader.collection, skip=qindex.scanner(), lo=lo, hi=hi):
        if d.skipped or d.doc is None:
            continue
        for row in expected_rows(loader, table, d.doc, ctx):
            src[f"{row.root_key}|{row.identity}"] = row.values
    sql, params = table_sql(table).rows_query(lo, hi)
    tgt = {f"{k}|{ident}": list(vals) for k, ident, vals in conn.execute(sql, params).fetchall()}
    names = [c.name for c in table.hashed_columns]
    out = RowDiff(table_name)
    out.missing = sorted(src.keys() - tgt.keys())[:limit]
    out.extra = sorted(tgt.keys() - src.keys())[:limit]
    for key in sorted(src.keys() & tgt.keys()):
        if src[key] != tgt[key]:
            out.changed.append((key, [n for n, a, b in zip(names, src[key], tgt[key]) if a != b]))
            if len(out.changed) >= limit:
                break
    return out
