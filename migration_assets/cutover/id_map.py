"""id_map reconciliation: the map made complete for a domain's tables, and its inconsistencies found."""

from __future__ import annotations

from dataclasses import dataclass, field

import psycopg

from migration_assets.target.bookkeeping import id_map_from_table


@dataclass
class Reconciled:
    inserted: int = 0
    stale: int = 0
    entries: int = 0
    by_entity: dict[str, int] = field(default_factory=dict)


@dataclass
class EntityConsistency:
    entity: str
    missing: int  # rows without an entry
    wrong: int  # entries whose new_id is not the row's id
    orphaned: int  # entries without a row (the document was not migrated, or was removed)


def reconcile_id_map(conn: psycopg.Connection, tables: list[str]) -> Reconciled:
    """Insert missing entries (never rewrite or delete one: the map is an audit trail)."""
    out = Reconciled()
    with conn.transaction():
        for t in tables:
            out.inserted += id_map_from_table(conn, t)
            n = conn.execute("SELECT count(*) FROM public.id_map WHERE entity = %s", [t]).fetchone()[0]
            out.by_entity[t] = n
            out.entries += n
        for p in id_map_consistency(conn, tables):
            out.stale += p.wrong + p.orphaned
    return out


def id_map_consistency(conn: psycopg.Connection, tables: list[str]) -> list[EntityConsistency]:
    out = []
    for t in tables:
        missing, wrong = conn.execute(
            f"SELECT count(*) FILTER (WHERE m.legacy_id IS NULL), count(*) FILTER (WHERE m.new_id <> r.id) "
            f"FROM public.{t} r LEFT JOIN public.id_map m ON m.entity = %s AND m.legacy_id = r.legacy_object_id",
            [t],
        ).fetchone()
        orphaned = conn.execute(
            f"SELECT count(*) FROM public.id_map m WHERE m.entity = %s "
            f"AND NOT EXISTS (SELECT 1 FROM public.{t} r WHERE r.legacy_object_id = m.legacy_id)",
            [t],
        ).fetchone()[0]
        if missing or wrong or orphaned:
            out.append(EntityConsistency(t, missing, wrong, orphaned))
    return out
