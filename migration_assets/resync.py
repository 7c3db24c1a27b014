"""Re-sync exactly the given documents from Mongo into PostgreSQL, through the load path.

Used for dual-write gaps (``pg_dualwrite_gaps``: writes the application could not apply to
PostgreSQL): each gap names an entity (a table, or a collection) and a legacy id. The
documents are read by ``_id`` and go through the same steps as a load (decode, transform,
resolve references, write with refused documents isolated, quarantine, id_map, deferred
references), under the loader's advisory lock, all in one transaction together with the
gaps' resolution: a gap is marked resolved only if its document was written (or, absent
from Mongo, removed from PostgreSQL) in that very transaction. A gap whose document could
not be applied (quarantined, immutable, unknown) stays open with ``attempts`` + 1 and the
reason in ``error``.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import psycopg
from bson import ObjectId

from migration_assets import target as tg
from migration_assets.load import (
    BatchWriter,
    LoadReport,
    Rejected,
    _commit_batch_bookkeeping,
    decode_and_transform,
    prepare_context,
    resolve_references,
)
from migration_assets.remap import apply_remap
from migration_assets.source import decode, raw_id_hex
from migration_assets.spec import LoaderSpec, all_loaders, all_tables


class ResyncError(RuntimeError):
    """A re-sync request that cannot be carried out at all (nothing was written)."""


@dataclass(frozen=True)
class Gap:
    id: int
    entity: str
    legacy_id: str | None
    pg_id: str | None
    operation: str
    attempts: int = 1


@dataclass
class ResyncReport:
    loader: str
    requested: list[str] = field(default_factory=list)  # document legacy ids
    loaded: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)  # absent from Mongo: removed from PostgreSQL
    refused: dict[str, str] = field(default_factory=dict)  # legacy id -> why it was not applied
    rows_changed: dict[str, int] = field(default_factory=dict)
    gaps_resolved: list[int] = field(default_factory=list)
    gaps_left_open: dict[int, str] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def applied(self) -> set[str]:
        return set(self.loaded) | set(self.removed)


def loader_for_entity(entity: str) -> LoaderSpec | None:
    """The loader of a gap's entity: a table name (as the dual-write path records it) or a
    Mongo collection name."""
    tables = all_tables()
    if entity in tables:
        return tables[entity][0]
    for l in all_loaders():
        if l.collection == entity or l.name == entity:
            return l
    return None


def is_object_id(value: str | None) -> bool:
    return isinstance(value, str) and len(value) == 24 and ObjectId.is_valid(value) and value == value.lower()


def documents_of(conn: psycopg.Connection, loader: LoaderSpec, entity: str, gaps: Sequence[Gap],
                 source=None) -> tuple[dict[str, list[int]], dict[int, str]]:
    """Map gaps to the legacy ids of the source documents to re-sync.

    Returns (document legacy id -> gap ids, gap id -> why it cannot be located). A child
    table's row is located through its PostgreSQL row (its document is its parent's)."""
    docs: dict[str, list[int]] = defaultdict(list)
    lost: dict[int, str] = {}
    table = loader.table(entity) if entity in loader.table_names else loader.root
    for g in gaps:
        legacy = g.legacy_id
        if legacy is None and g.pg_id is not None and table.has_legacy_id:
            row = conn.execute(f"SELECT legacy_object_id FROM public.{table.table} WHERE id = %s", [g.pg_id]).fetchone()
            legacy = row[0] if row else None
        if table.is_root:
            if is_object_id(legacy):
                docs[legacy].append(g.id)
            else:
                lost[g.id] = f"no document _id for {entity} (legacy_id {legacy!r}, pg_id {g.pg_id})"
            continue
        parent = table.column(table.parent_column).ref_table
        row = None
        if legacy is not None and not table.has_legacy_id:
            # A child row without an id of its own is named by its document's _id.
            row = (legacy,) if is_object_id(legacy) else None
        elif legacy is not None:
            row = conn.execute(
                f"SELECT p.legacy_object_id FROM public.{table.table} t JOIN public.{parent} p "
                f"ON p.id = t.{table.parent_column} WHERE t.legacy_object_id = %s", [legacy]).fetchone()
            if row is None and source is not None and is_object_id(legacy):
                found = document_holding(source, loader, table, legacy)
                row = (found,) if found else None
        elif g.pg_id is not None and "id" in table.column_names:
            row = conn.execute(
                f"SELECT p.legacy_object_id FROM public.{table.table} t JOIN public.{parent} p "
                f"ON p.id = t.{table.parent_column} WHERE t.id = %s", [g.pg_id]).fetchone()
        if row:
            docs[row[0]].append(g.id)
        else:
            lost[g.id] = (f"{entity} row {legacy or g.pg_id} is neither in PostgreSQL nor in any {loader.collection} "
                          f"document; record the gap against {parent}")
    return dict(docs), lost


def document_holding(source, loader: LoaderSpec, table, legacy: str) -> str | None:
    """The ``_id`` of the document whose embedded row (``table``) has this legacy id."""
    path = f"{table.rows.path}._id"
    if hasattr(source, "db"):  # a live server answers directly
        doc = source.db[loader.collection].find_one({path: ObjectId(legacy)}, {"_id": 1})
        return str(doc["_id"]) if doc and isinstance(doc.get("_id"), ObjectId) else None
    for batch in source.iter_batches(loader.collection, batch_size=5000):  # a dump: one scan
        for raw in batch.docs:
            if ObjectId(legacy).binary not in raw:
                continue
            try:
                doc = decode(raw)
            except Exception:
                continue
            for src, _ in table.rows.sources(doc):
                if isinstance(src, Mapping) and str(src.get("_id")) == legacy:
                    return str(doc["_id"])
    return None


def remove_documents(conn: psycopg.Connection, loader: LoaderSpec, legacy_ids: Sequence[str]) -> tuple[list[str], dict[str, str]]:
    """Remove the rows of documents Mongo no longer holds (child rows first). A document
    another table still references is not removed (the refusal is reported)."""
    removed, refused = [], {}
    root = loader.root
    for legacy in legacy_ids:
        row = conn.execute(f"SELECT id FROM public.{root.table} WHERE legacy_object_id = %s", [legacy]).fetchone()
        if row is None:
            removed.append(legacy)  # already absent: in sync
            continue
        if loader.append_only:
            refused[legacy] = f"{root.table} is append-only: an entry Mongo no longer holds is never deleted"
            continue
        try:
            with conn.transaction():
                for t in loader.tables[1:]:
                    conn.execute(f"DELETE FROM public.{t.table} WHERE {t.parent_column} = %s", [row[0]])
                conn.execute(f"DELETE FROM public.{root.table} WHERE id = %s", [row[0]])
            removed.append(legacy)
        except psycopg.errors.IntegrityError as e:
            refused[legacy] = f"not removed: {(e.diag.message_primary or str(e)).strip()}"[:300]
    return removed, refused


def resync_documents(loader: LoaderSpec, source, conn: psycopg.Connection, legacy_ids: Iterable[str], *,
                     run_id: str, gaps: Mapping[str, Sequence[int]] | None = None,
                     lock_timeout_s: float = 300.0) -> ResyncReport:
    """Re-sync these documents of ``loader`` (and resolve ``gaps``: document -> gap ids)."""
    if not conn.autocommit:
        raise ResyncError("resync needs an autocommit connection (it commits one transaction)")
    t0 = time.perf_counter()
    wanted = sorted({i for i in legacy_ids if is_object_id(i)})
    report = ResyncReport(loader.name, requested=wanted)
    for bad in sorted(set(legacy_ids) - set(wanted)):
        report.refused[bad] = "not an ObjectId"
    if not wanted:
        return report
    ctx = prepare_context(loader, source)  # collection-wide rules (demoted names, self-references)
    first: dict[str, bytes] = {}
    for raw in source.find_by_ids(loader.collection, [ObjectId(i) for i in wanted]):
        first.setdefault(raw_id_hex(raw), raw)  # a duplicated _id: the first occurrence counts
    load = LoadReport(loader.name)
    with tg.loader_lock(conn, loader.name, timeout_s=lock_timeout_s):
        with conn.transaction():
            results, rejected = [], []
            for legacy in wanted:
                if legacy in first:
                    out = decode_and_transform(loader, first[legacy], ctx)
                    (rejected if isinstance(out, Rejected) else results).append(out)
            results, missing, _ = resolve_references(conn, loader, results, False)
            rejected += missing
            writer = BatchWriter(conn, loader, load)
            refused = writer.write_isolating(results, False)
            refused_ids = {r.legacy_id for r in refused}
            results = [r for r in results if r.legacy_id not in refused_ids]
            rejected += refused
            _commit_batch_bookkeeping(conn, loader, results, rejected, run_id, load, None)
            for table, column in loader.self_deferred:
                tg.apply_deferred(conn, table.table, column.name, column.ref_table)
            for owner in all_loaders():  # remaps of, or pointing at, these tables
                for remap in owner.remaps:
                    ref = owner.table(remap.table).column(remap.column).ref_table
                    if remap.table in loader.table_names or ref in loader.table_names:
                        apply_remap(owner, remap, source, conn, run_id=run_id)
            conflicts = set(writer.conflicts)
            report.loaded = sorted(r.legacy_id for r in results if r.legacy_id not in conflicts)
            for legacy in conflicts:
                report.refused[legacy] = "immutable entry differs in Mongo; PostgreSQL keeps the original"
            for r in rejected:
                report.refused[r.legacy_id] = "quarantined: " + "; ".join(p["message"] for p in r.problems)[:300]
            absent = [i for i in wanted if i not in first]
            report.removed, not_removed = remove_documents(conn, loader, absent)
            report.refused.update(not_removed)
            report.rows_changed = dict(load.rows_changed)
            if gaps:
                _settle_gaps(conn, report, gaps, run_id)
    report.seconds = time.perf_counter() - t0
    return report


def _settle_gaps(conn: psycopg.Connection, report: ResyncReport, gaps: Mapping[str, Sequence[int]], run_id: str) -> None:
    applied = report.applied
    for legacy, ids in gaps.items():
        if legacy in applied:
            report.gaps_resolved += list(ids)
        else:
            why = report.refused.get(legacy, "not applied")
            report.gaps_left_open.update({i: why for i in ids})
    real = [i for i in report.gaps_resolved if i > 0]
    if real:
        conn.execute(
            "UPDATE public.pg_dualwrite_gaps SET resolved_at = now(), resolution = %s "
            "WHERE id = ANY(%s) AND resolved_at IS NULL",
            [f"re-synced from Mongo by run {run_id}", real])
    leave_open(conn, report.gaps_left_open)


def leave_open(conn: psycopg.Connection, why: Mapping[int, str]) -> None:
    """Gaps a re-sync could not apply: one more attempt counted, the reason recorded."""
    for gap_id, reason in why.items():
        if gap_id <= 0:
            continue
        conn.execute(
            "UPDATE public.pg_dualwrite_gaps SET attempts = attempts + 1, error = %s "
            "WHERE id = %s AND resolved_at IS NULL", [f"re-sync: {reason}"[:1000], gap_id])


def open_gaps(conn: psycopg.Connection, *, max_attempts: int | None = None, limit: int = 1000) -> list[Gap]:
    where = "resolved_at IS NULL" + (" AND attempts < %s" if max_attempts is not None else "")
    rows = conn.execute(
        f"SELECT id, entity, legacy_id, pg_id::text, operation, attempts FROM public.pg_dualwrite_gaps "
        f"WHERE {where} ORDER BY id LIMIT %s",
        ([max_attempts] if max_attempts is not None else []) + [limit]).fetchall()
    return [Gap(*r) for r in rows]


def gaps_by_id(conn: psycopg.Connection, ids: Sequence[int]) -> list[Gap]:
    rows = conn.execute(
        "SELECT id, entity, legacy_id, pg_id::text, operation, attempts FROM public.pg_dualwrite_gaps "
        "WHERE id = ANY(%s) AND resolved_at IS NULL ORDER BY id", [list(ids)]).fetchall()
    return [Gap(*r) for r in rows]


def resync_gaps(source, conn: psycopg.Connection, gaps: Sequence[Gap], *, run_id: str) -> list[ResyncReport]:
    """Re-sync the documents of these gaps, loaders in dependency order. Gaps with an id
    <= 0 are rows asked for without a gap: re-synced, nothing to resolve."""
    by_loader: dict[str, list[Gap]] = defaultdict(list)
    unknown: dict[int, str] = {}
    for g in gaps:
        l = loader_for_entity(g.entity)
        if l is None:
            unknown[g.id] = f"no loader migrates entity {g.entity!r}"
        else:
            by_loader[l.name].append(g)
    if unknown:
        leave_open(conn, unknown)
    reports = []
    for loader in all_loaders():
        mine = by_loader.get(loader.name)
        if not mine:
            continue
        docs: dict[str, list[int]] = defaultdict(list)
        lost: dict[int, str] = {}
        for entity in sorted({g.entity for g in mine}):
            d, l = documents_of(conn, loader, entity, [g for g in mine if g.entity == entity], source)
            for k, v in d.items():
                docs[k] += v
            lost.update(l)
        if lost:
            leave_open(conn, lost)
        report = resync_documents(loader, source, conn, list(docs), run_id=run_id, gaps=docs)
        report.gaps_left_open.update(lost)
        reports.append(report)
    if unknown:
        reports.append(ResyncReport("(unknown entity)", gaps_left_open=unknown))
    return reports
