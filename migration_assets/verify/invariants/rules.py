"""Business rules of the loaded rows, read from the table specs that declare them
(``TableSpec.rules``; a remap's ``belongs`` is its rule too)."""

from __future__ import annotations

import psycopg

from migration_assets.specs.model import BusinessRule, DeferredRemap, LoaderSpec
from migration_assets.specs.registry import all_loaders
from migration_assets.verify.invariants.result import SAMPLE, InvariantResult


def remap_rule(loader: LoaderSpec, remap: DeferredRemap) -> BusinessRule | None:
    """The rule a remap's ``belongs`` declares, as SQL over the loaded column."""
    if remap.belongs is None:
        return None
    b = remap.belongs
    target = loader.table(remap.table).column(remap.column).ref_table
    return BusinessRule(b.rule, b.description, b.reason, f"""
        SELECT p.legacy_object_id, '{remap.column} ' || o.legacy_object_id || ' belongs to {remap.table} '
               || coalesce(op.legacy_object_id, 'none')
        FROM public.{remap.table} p JOIN public.{target} o ON o.id = p.{remap.column}
        LEFT JOIN public.{remap.table} op ON op.id = o.{b.via}
        WHERE o.{b.via} IS DISTINCT FROM p.id ORDER BY 1""")


def declared_rules() -> list[tuple[str, BusinessRule]]:
    """(table, rule) of every rule the specs declare: table rules and remaps' ``belongs``."""
    out = [(t.table, r) for l in all_loaders() for t in l.tables for r in t.rules]
    out += [(m.table, r) for l in all_loaders() for m in l.remaps if (r := remap_rule(l, m)) is not None]
    return out


def index_exists(conn: psycopg.Connection, name: str) -> bool:
    return conn.execute("SELECT to_regclass(%s) IS NOT NULL", [f"public.{name}"]).fetchone()[0]


def business_rule(conn: psycopg.Connection, rule: BusinessRule, table: str, *, limit: int = SAMPLE) -> InvariantResult:
    out = InvariantResult(rule.name, table, limit=limit)
    rows = conn.execute(rule.sql).fetchall()
    for subject, detail in rows:
        out.add(rule.reason, subject, detail)
    out.measures["violations"] = len(rows)
    if rule.guard_index and not index_exists(conn, rule.guard_index):
        out.add("guard_index_missing", rule.guard_index, f"the unique index enforcing '{rule.description}' is gone")
    return out
