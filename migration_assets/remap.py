"""Deferred remaps: a reference column written after its target table loads.

The purchase-request loader records each ``selectedOfferId`` in
``migration.deferred_refs``; once ``seller_offers`` is loaded the remap sets
``purchase_requests.selected_offer_id``. References the remap's rule refuses (an offer of
another request, an offer that does not exist) are quarantined under the remap's name,
with the raw document, and the column stays NULL.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import psycopg
from bson import ObjectId

from migration_assets import target as tg
from migration_assets.load import quarantine_entry, Rejected
from migration_assets.source import decode
from migration_assets.spec import DeferredRemap, LoaderSpec


@dataclass
class RemapResult:
    updated: int = 0
    pending: int = 0
    rows_set: int = 0
    refused: list[tuple[str, str, str]] = field(default_factory=list)
    seconds: float = 0.0


def refused_references(conn: psycopg.Connection, remap: DeferredRemap) -> list[tuple[str, str, str]]:
    if not remap.validate_sql:
        return []
    return [tuple(r) for r in conn.execute(remap.validate_sql).fetchall()]


def apply_remap(loader: LoaderSpec, remap: DeferredRemap, source, conn: psycopg.Connection, *, run_id: str,
                lock_timeout_s: float = 600.0) -> RemapResult:
    """Apply the remap under the loader's advisory lock: it rewrites the loader's table, so it
    never runs while another process is loading that table."""
    with tg.loader_lock(conn, loader.name, timeout_s=lock_timeout_s):
        return _apply_remap(loader, remap, source, conn, run_id=run_id)


def _apply_remap(loader: LoaderSpec, remap: DeferredRemap, source, conn: psycopg.Connection, *, run_id: str) -> RemapResult:
    t0 = time.perf_counter()
    column = loader.table(remap.table).column(remap.column)
    result = RemapResult()
    with conn.transaction():
        result.refused = refused_references(conn, remap)
        refused_ids = [r[0] for r in result.refused]
        if result.refused:
            raws = source.find_by_ids(loader.collection, [ObjectId(i) for i in refused_ids])
            by_id = {str(decode(r)["_id"]): r for r in raws}
            entries = []
            for legacy, ref, reason in result.refused:
                raw = by_id.get(legacy, b"")
                doc = decode(raw) if raw else None
                entries.append(quarantine_entry(Rejected(legacy, raw, [{
                    "code": "invalid_reference", "field": column.path or column.name,
                    "message": f"{remap.table}.{remap.column} -> {ref}: {reason}"}], doc)))
            tg.write_quarantine(conn, remap.name, loader.collection, run_id, entries)
            conn.execute(
                f"UPDATE public.{remap.table} x SET {remap.column} = NULL FROM migration.deferred_refs d "
                f"WHERE d.target_table = %s AND d.target_column = %s AND x.id = d.row_id "
                f"AND d.source_legacy_id = ANY(%s) AND x.{remap.column} IS NOT NULL",
                [remap.table, remap.column, refused_ids],
            )
        conn.execute(
            "UPDATE migration.quarantine SET resolved_at = now(), resolution = %s "
            "WHERE loader = %s AND resolved_at IS NULL AND NOT (legacy_id = ANY(%s))",
            [f"remapped by run {run_id}", remap.name, refused_ids],
        )
        result.updated = conn.execute(
            f"""
            UPDATE public.{remap.table} x SET {remap.column} = r.id
            FROM migration.deferred_refs d JOIN public.{column.ref_table} r ON r.legacy_object_id = d.ref_legacy_id
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
