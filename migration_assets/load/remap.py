"""Deferred remaps: a reference column written after its target table loads.

The purchase-request loader records each ``selectedOfferId`` in ``migration.deferred_refs``;
once ``seller_offers`` is loaded the remap sets ``purchase_requests.selected_offer_id``.
References the remap's rule refuses (an offer that does not exist, or, with
``belongs``, an offer of another request) are quarantined under the remap's name, with
the raw document, and the column stays NULL.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import psycopg
from bson import ObjectId

from migration_assets.source.documents import Source, decode
from migration_assets.specs.model import DeferredRemap, LoaderSpec
from migration_assets.target import bookkeeping as bk
from migration_assets.target.guard import loader_lock
from migration_assets.target.lease import Owner
from migration_assets.transform.results import Rejected


@dataclass
class RemapResult:
    updated: int = 0
    pending: int = 0
    rows_set: int = 0
    refused: list[tuple[str, str, str]] = field(default_factory=list)
    seconds: float = 0.0


def ref_table(loader: LoaderSpec, remap: DeferredRemap) -> str:
    return loader.table(remap.table).column(remap.column).ref_table  # type: ignore[return-value]


def refusal_sql(loader: LoaderSpec, remap: DeferredRemap) -> str:
    """Pending references the remap refuses: (document, referenced legacy id, why)."""
    target = ref_table(loader, remap)
    if remap.belongs:
        via = remap.belongs.via
        reason = (f"CASE WHEN o.id IS NULL THEN 'does not exist in {target}' "
                  f"ELSE 'belongs to {remap.table} ' || coalesce(op.legacy_object_id, '?') END")
        joins = f" LEFT JOIN public.{remap.table} op ON op.id = o.{via}"
        cond = f"(o.id IS NULL OR o.{via} IS DISTINCT FROM d.row_id)"
    else:
        reason, joins, cond = f"'does not exist in {target}'", "", "o.id IS NULL"
    return (f"SELECT d.source_legacy_id, d.ref_legacy_id, {reason} "
            f"FROM migration.deferred_refs d LEFT JOIN public.{target} o ON o.legacy_object_id = d.ref_legacy_id"
            f"{joins} WHERE d.target_table = %s AND d.target_column = %s AND {cond} ORDER BY 1")


def apply_remap(loader: LoaderSpec, remap: DeferredRemap, source: Source, conn: psycopg.Connection, *, run_id: str,
                lock_timeout_s: float = 600.0) -> RemapResult:
    """Apply the remap under the loader's advisory lock: it rewrites the loader's table, so it
    never runs while another process is loading that table."""
    with loader_lock(conn, loader.name, timeout_s=lock_timeout_s, owner=Owner(run_id)):
        return _apply(loader, remap, source, conn, run_id=run_id)


def _apply(loader: LoaderSpec, remap: DeferredRemap, source: Source, conn: psycopg.Connection, *,
           run_id: str) -> RemapResult:
    t0 = time.perf_counter()
    column = loader.table(remap.table).column(remap.column)
    target = ref_table(loader, remap)
    result = RemapResult()
    with conn.transaction():
        result.refused = [tuple(r) for r in conn.execute(refusal_sql(loader, remap),
                                                          [remap.table, remap.column]).fetchall()]
        refused_ids = [r[0] for r in result.refused]
        if result.refused:
            by_id = {str(decode(r)["_id"]): r for r in source.find_by_ids(loader.collection,
                                                                          [ObjectId(i) for i in refused_ids])}
            entries = []
            for legacy, ref, reason in result.refused:
                raw = by_id.get(legacy, b"")
                entries.append(bk.quarantine_entry(Rejected(legacy, raw, [{
                    "code": "invalid_reference", "field": column.path or column.name,
                    "message": f"{remap.table}.{remap.column} -> {ref}: {reason}"}], decode(raw) if raw else None)))
            bk.write_quarantine(conn, remap.name, loader.collection, run_id, entries)
            conn.execute(
                f"UPDATE public.{remap.table} x SET {remap.column} = NULL FROM migration.deferred_refs d "
                f"WHERE d.target_table = %s AND d.target_column = %s AND x.id = d.row_id "
                f"AND d.source_legacy_id = ANY(%s) AND x.{remap.column} IS NOT NULL",
                [remap.table, remap.column, refused_ids],
            )
        bk.resolve_quarantine_except(conn, remap.name, refused_ids, f"remapped by run {run_id}")
        result.updated = conn.execute(
            f"""
            UPDATE public.{remap.table} x SET {remap.column} = r.id
            FROM migration.deferred_refs d JOIN public.{target} r ON r.legacy_object_id = d.ref_legacy_id
            WHERE d.target_table = %s AND d.target_column = %s AND x.id = d.row_id
              AND NOT (d.source_legacy_id = ANY(%s)) AND x.{remap.column} IS DISTINCT FROM r.id
            """,
            [remap.table, remap.column, refused_ids],
        ).rowcount
        result.pending = conn.execute(
            "SELECT count(*) FROM migration.deferred_refs WHERE target_table = %s AND target_column = %s",
            [remap.table, remap.column],
        ).fetchone()[0]
        result.rows_set = conn.execute(
            f"SELECT count(*) FROM public.{remap.table} WHERE {remap.column} IS NOT NULL"
        ).fetchone()[0]
    result.seconds = time.perf_counter() - t0
    return result
