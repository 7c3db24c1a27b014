"""Source-vs-target verification of one loader's tables: row counts and checksums.

The source side scans the collection and renders each row canonically from the raw
document (:mod:`migration_assets.canonical`); the target side is one SQL aggregate per
table. Documents in the open quarantine are counted apart, never silently dropped: for
every table, ``source rows = target rows + quarantined rows`` must hold.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

import psycopg
from bson import ObjectId

from migration_assets import target as tg
from migration_assets.canonical import Digest, source_rows, table_sql
from migration_assets.fastpath import source_digests as fast_source_digests
from migration_assets.load import prepare_context
from migration_assets.source import decode, legacy_key, raw_id
from migration_assets.spec import MISSING, Column, LoaderSpec, TableSpec, legacy_column, resolve_source


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
    seconds_target: float = 0.0
    context: Mapping = field(default_factory=dict)  # the loader context the source side used

    @property
    def ok(self) -> bool:
        return all(t.checksums_match for t in self.tables.values())


class QuarantineIndex:
    """Which occurrences of which ``_id`` the open quarantine holds.

    A document quarantined for its content is skipped in every occurrence; for an ``_id``
    quarantined only as a duplicate, the first occurrence loaded and later ones did not.
    """

    def __init__(self, conn: psycopg.Connection, loader: str):
        rows = conn.execute(
            "SELECT legacy_id, count(*) FILTER (WHERE reason_code = 'duplicate_id'), "
            "count(*) FILTER (WHERE reason_code <> 'duplicate_id') "
            "FROM migration.quarantine WHERE loader = %s AND resolved_at IS NULL GROUP BY 1",
            [loader],
        ).fetchall()
        self.dupes = {r[0]: r[1] for r in rows if r[1]}
        self.content = {r[0] for r in rows if r[2]}
        self.seen: Counter[str] = Counter()

    def ids(self) -> set[str]:
        return set(self.content)

    def reset(self) -> None:
        """Forget the occurrences seen (before another scan of the source)."""
        self.seen.clear()

    def skip(self, key: str) -> bool:
        self.seen[key] += 1
        if key in self.content:
            return True
        return key in self.dupes and self.seen[key] > 1


# ObjectIds start with their creation second in hex: 4 characters = ~18-hour windows.
BUCKET_PREFIX = 4


def verify_loader(loader: LoaderSpec, source, conn: psycopg.Connection, *,
                  lo: str | None = None, hi: str | None = None) -> LoaderVerification:
    result = LoaderVerification(loader.name)
    bucketed = lo is None and hi is None
    for t in loader.tables:
        result.tables[t.table] = TableVerification(t.table)
    qindex = QuarantineIndex(conn, loader.name)
    ctx: Mapping = prepare_context(loader, source, quarantined=qindex.ids()) if (loader.prepare or loader.self_deferred) else {}
    result.context = ctx

    t0 = time.perf_counter()
    # fastpath.py computes the same source side faster (compiled canonical texts); the loop
    # below is the reference it is tested against.
    fast = fast_source_digests(loader, source, result, qindex, ctx, lo=lo, hi=hi,
                               bucket_prefix=BUCKET_PREFIX if bucketed else None)
    for batch in () if fast else source.iter_batches(loader.collection, lo=lo, hi=hi, batch_size=5000):
        for raw in batch.docs:
            ident = raw_id(raw)
            key = legacy_key(ident)
            result.source_docs += 1
            if qindex.skip(key) or not isinstance(ident, ObjectId):
                result.quarantined_docs += 1
                try:
                    doc = decode(raw)
                except Exception:
                    continue
                for t in loader.tables:
                    result.tables[t.table].quarantined_rows += sum(1 for _ in t.rows.sources(doc))
                continue
            doc = decode(raw)
            prefix = key[:BUCKET_PREFIX]
            for t in loader.tables:
                tv = result.tables[t.table]
                bucket = tv.source_buckets.setdefault(prefix, Digest()) if bucketed else None
                for row in source_rows(loader, t, doc, ctx):
                    tv.source.add(row.text)
                    if bucket is not None:
                        bucket.add(row.text)
    result.seconds_source = time.perf_counter() - t0

    t0 = time.perf_counter()
    for t in loader.tables:
        tv = result.tables[t.table]
        if bucketed:
            sql, params = table_sql(t).prefix_digest_query(BUCKET_PREFIX)
            for prefix, count, total in conn.execute(sql, params).fetchall():
                # prefix None: child rows whose parent is gone (the diff reports them apart)
                tv.target_buckets[prefix] = Digest(int(count), int(total))
                tv.target.merge(Digest(int(count), int(total)))
        else:
            sql, params = table_sql(t).digest_query(lo, hi)
            count, total = conn.execute(sql, params).fetchone()
            tv.target = Digest(int(count), int(total))
    result.seconds_target = time.perf_counter() - t0
    return result


@dataclass
class RowDiff:
    table: str
    missing: list[str] = field(default_factory=list)  # in source, not in PostgreSQL
    extra: list[str] = field(default_factory=list)  # in PostgreSQL, not in source
    changed: list[tuple[str, list[str]]] = field(default_factory=list)  # (row, differing columns)

    @property
    def total(self) -> int:
        return len(self.missing) + len(self.extra) + len(self.changed)


def diff_rows(loader: LoaderSpec, table_name: str, source, conn: psycopg.Connection, *,
              lo: str | None = None, hi: str | None = None, limit: int = 1000) -> RowDiff:
    """Row-level comparison of one table over an ``_id`` range (the whole table by default)."""
    table = loader.table(table_name)
    qindex = QuarantineIndex(conn, loader.name)
    ctx = prepare_context(loader, source, quarantined=qindex.ids()) if (loader.prepare or loader.self_deferred) else {}
    src: dict[str, list[str]] = {}
    for batch in source.iter_batches(loader.collection, lo=lo, hi=hi, batch_size=5000):
        for raw in batch.docs:
            ident = raw_id(raw)
            if qindex.skip(legacy_key(ident)) or not isinstance(ident, ObjectId):
                continue
            for row in source_rows(loader, table, decode(raw), ctx):
                src[f"{row.root_key}|{row.identity}"] = row.values
    tsql = table_sql(table)
    sql, params = tsql.rows_query(lo, hi)
    tgt = {f"{k}|{ident}": list(vals) for k, ident, vals in conn.execute(sql, params).fetchall()}
    names = [c.name for c in table.hashed_columns]
    out = RowDiff(table_name)
    for key in sorted(src.keys() - tgt.keys())[:limit]:
        out.missing.append(key)
    for key in sorted(tgt.keys() - src.keys())[:limit]:
        out.extra.append(key)
    for key in sorted(src.keys() & tgt.keys()):
        if src[key] != tgt[key]:
            cols = [n for n, a, b in zip(names, src[key], tgt[key]) if a != b]
            out.changed.append((key, cols))
            if len(out.changed) >= limit:
                break
    return out


def target_counts(conn: psycopg.Connection, tables: list[str]) -> dict[str, int]:
    return {t: conn.execute(f"SELECT count(*) FROM public.{t}").fetchone()[0] for t in tables}


def open_quarantine_count(conn: psycopg.Connection, loader: str) -> int:
    return sum(tg.open_quarantine_ids(conn, loader).values())


def remap_projection(loader: LoaderSpec, remap) -> TableSpec:
    """The (document, reference) pairs a remap owns, as a two-column table spec."""
    column = loader.table(remap.table).column(remap.column)
    return TableSpec(table=remap.table, columns=(legacy_column(), Column(column.name, column.kind, column.path)))


def verify_remap(loader: LoaderSpec, remap, source, conn: psycopg.Connection) -> TableVerification:
    """Every reference the source holds is set in PostgreSQL, or refused into quarantine."""
    pseudo = remap_projection(loader, remap)
    ref_col = pseudo.columns[1]
    loaded = QuarantineIndex(conn, loader.name)
    refused = QuarantineIndex(conn, remap.name).ids()
    out = TableVerification(f"{remap.table}.{remap.column}")
    for batch in source.iter_batches(loader.collection, batch_size=5000):
        for raw in batch.docs:
            ident = raw_id(raw)
            key = legacy_key(ident)
            if loaded.skip(key) or not isinstance(ident, ObjectId):
                continue
            doc = decode(raw)
            if resolve_source(ref_col, doc, doc, 0, {}) in (None, MISSING):
                continue
            if key in refused:
                out.quarantined_rows += 1
                continue
            for row in source_rows(loader, pseudo, doc, {}):
                out.source.add(row.text)
    tsql = table_sql(pseudo)
    count, total = conn.execute(
        f"SELECT count(*), coalesce(sum(migration.hash60({tsql.row_text})), 0) FROM {tsql.from_sql} "
        f"WHERE t.{remap.column} IS NOT NULL"
    ).fetchone()
    out.target = Digest(int(count), int(total))
    return out
