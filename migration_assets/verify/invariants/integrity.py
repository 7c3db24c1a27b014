"""Integrity of the migrated data, each finding with a typed reason:

* no orphan reference in PostgreSQL (physical FKs make one impossible, unless a constraint
  was dropped or bypassed);
* references in Mongo that point nowhere, one by one, each of which the loader must have
  quarantined (``missing_reference``);
* enum columns hold only their type's values, and the types hold the spec's values.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from typing import Any

import psycopg
from bson import ObjectId

from migration_assets.source.documents import Source, raw_key
from migration_assets.source.scan import scan
from migration_assets.specs.kinds import Enum, Reject, RowId, legacy_hex
from migration_assets.specs.model import MISSING, LoaderSpec, TableSpec, resolve_source
from migration_assets.specs.registry import all_tables
from migration_assets.verify.invariants.result import SAMPLE, InvariantResult, Violation, row_label_sql
from migration_assets.verify.quarantined import QuarantineIndex


def chunks(items: list, n: int = 5000) -> Iterable[list]:
    for i in range(0, len(items), n):
        yield items[i:i + n]


def orphan_references(conn: psycopg.Connection, table: TableSpec, *, limit: int = SAMPLE) -> InvariantResult:
    """Rows whose reference names no row of the referenced table."""
    out = InvariantResult("no_orphan_references", table.table, limit=limit)
    join, label = row_label_sql(table)
    for c in table.columns:
        if not c.ref_table or isinstance(c.kind, RowId):
            continue
        cond = (f"t.{c.name} IS NOT NULL AND NOT EXISTS "
                f"(SELECT 1 FROM public.{c.ref_table} r WHERE r.id = t.{c.name})")
        n = conn.execute(f"SELECT count(*) FROM public.{table.table} t WHERE {cond}").fetchone()[0]
        out.measures[f"orphans_{c.name}"] = n
        if not n:
            continue
        out.reasons["orphan_reference"] = out.reasons.get("orphan_reference", 0) + n
        for row, ref in conn.execute(
            f"SELECT {label}, t.{c.name}::text FROM public.{table.table} t{join} WHERE {cond} "
            f"ORDER BY 1 LIMIT %s", [limit]).fetchall():
            if len(out.violations) < limit:
                out.violations.append(Violation("orphan_reference", row, f"{c.name} -> {c.ref_table} {ref} does not exist"))
    out.measures["orphan_references"] = out.reasons.get("orphan_reference", 0)
    return out


def reference_columns(loader: LoaderSpec):
    """(table, column) of every reference a document holds, except the enclosing-document
    link of child rows and deferred references to other loaders' tables (those are the
    remap's, checked by its ``reference_parity``)."""
    own = set(loader.table_names)
    for t in loader.tables:
        for c in t.columns:
            if not c.ref_table or isinstance(c.kind, RowId) or c.name == t.parent_column:
                continue
            if c.deferred and c.ref_table not in own:
                continue
            yield t, c


def existing_source_ids(source: Source, collection: str, ids: Iterable[str]) -> set[str]:
    """Which of ``ids`` exist as ``_id`` in ``collection`` of the source."""
    wanted = sorted(set(ids))
    return {raw_key(r) for r in source.find_by_ids(collection, [ObjectId(i) for i in wanted])} if wanted else set()


def references(loader: LoaderSpec, source: Source, refs) -> Iterator[tuple[str, str, str, Any]]:
    """(document _id, where, referenced table, raw value) of every reference in the source."""
    for d in scan(source, loader.collection):
        if not d.object_id or d.doc is None:
            continue
        for t, c in refs:
            for src, idx in t.rows.sources(d.doc):
                try:
                    v = resolve_source(c, src, d.doc, idx, {})
                except Exception:
                    continue
                if v is None or v is MISSING:
                    continue
                field_name = f"{t.rows.path}[{idx}].{c.path}" if t.rows.mode == "array" else (c.path or c.name)
                yield d.key, f"{t.table}.{c.name} ({field_name})", c.ref_table, v


def dangling_source_references(loader: LoaderSpec, source: Source, conn: psycopg.Connection, *,
                               limit: int = SAMPLE) -> InvariantResult:
    """References in the Mongo documents whose target is not in PostgreSQL, one by one.

    Each must belong to a quarantined document (the loader refuses it as
    ``missing_reference``): then it is surfaced (reason ``dangling_reference``, a warning);
    one whose document is *not* quarantined is an error (``dangling_reference_not_quarantined``).
    One pass collects the distinct referenced ids (memory: distinct targets, not references);
    a second pass, only if some target is missing, lists the documents holding them.
    """
    out = InvariantResult("source_references_resolve", loader.root.table, limit=limit,
                          warnings=frozenset({"dangling_reference", "reference_not_object_id"}))
    refs = list(reference_columns(loader))
    quarantined: set[str] = set()
    for name in [loader.name, *(r.name for r in loader.remaps)]:
        q = QuarantineIndex(conn, name)
        quarantined |= q.ids() | set(q.dupes)
    targets: dict[str, set[str]] = defaultdict(set)
    n_refs, n_bad = 0, 0
    for _, _, ref_table, v in references(loader, source, refs):
        n_refs += 1
        try:
            targets[ref_table].add(legacy_hex(v))
        except Reject:
            n_bad += 1
    out.measures["references_checked"] = n_refs
    missing: dict[str, dict[str, str]] = {}  # table -> legacy id -> why
    for ref_table, ids in targets.items():
        present: set[str] = set()
        for chunk in chunks(sorted(ids)):
            present |= {r[0] for r in conn.execute(
                f"SELECT legacy_object_id FROM public.{ref_table} WHERE legacy_object_id = ANY(%s)", [chunk]).fetchall()}
        absent = ids - present
        if absent:
            collection = all_tables()[ref_table][0].collection if ref_table in all_tables() else None
            in_source = existing_source_ids(source, collection, absent) if collection else set()
            missing[ref_table] = {r: "quarantined or not loaded" if r in in_source
                                  else f"absent from Mongo {collection or ref_table}" for r in absent}
    found: list[tuple[str, str, str]] = []  # (document, reason-free detail, kind)
    if missing or n_bad:
        for key, where, ref_table, v in references(loader, source, refs):
            try:
                ref = legacy_hex(v)
            except Reject:
                found.append((key, f"{where} = {repr(v)[:60]}: not an ObjectId", "reference_not_object_id"))
                continue
            why = missing.get(ref_table, {}).get(ref)
            if why is not None:
                found.append((key, f"{where} -> {ref_table} {ref}: {why}", "dangling_reference"))
    for key, detail, kind in sorted(found):
        out.add(kind if key in quarantined else "dangling_reference_not_quarantined", key, detail)
    out.measures["dangling_references"] = len(found)
    out.measures["dangling_not_quarantined"] = out.reasons.get("dangling_reference_not_quarantined", 0)
    return out


def enum_values(conn: psycopg.Connection, table: TableSpec, *, limit: int = SAMPLE) -> InvariantResult:
    """Enum columns hold their PostgreSQL type, whose labels are the spec's values, and
    every stored value is one of them."""
    out = InvariantResult("enum_values_valid", table.table, limit=limit)
    types = dict(conn.execute(
        "SELECT column_name, udt_name FROM information_schema.columns "
        "WHERE table_schema = 'public' AND table_name = %s", [table.table]).fetchall())
    label, join = row_label_sql(table)[1], row_label_sql(table)[0]
    for c in table.columns:
        if not isinstance(c.kind, Enum):
            continue
        kind: Enum = c.kind
        actual_type = types.get(c.name)
        if actual_type != kind.pg_type:
            out.add("column_type_differs", f"{table.table}.{c.name}", f"type {actual_type}, spec says {kind.pg_type}")
        labels = conn.execute(
            "SELECT array_agg(e.enumlabel::text ORDER BY e.enumsortorder) FROM pg_type t "
            "JOIN pg_enum e ON e.enumtypid = t.oid WHERE t.typname = %s", [kind.pg_type]).fetchone()[0] or []
        if list(labels) != list(kind.values):
            out.add("type_labels_differ", kind.pg_type, f"PostgreSQL {labels}, spec {list(kind.values)}")
        rows = conn.execute(
            f"SELECT {label}, t.{c.name}::text FROM public.{table.table} t{join} "
            f"WHERE t.{c.name} IS NOT NULL AND NOT (t.{c.name}::text = ANY(%s)) ORDER BY 1",
            [list(kind.values)]).fetchall()
        for subject, value in rows:
            out.add("invalid_enum_value", subject, f"{c.name} = {value!r} is not one of {list(kind.values)}")
        out.measures[f"invalid_{c.name}"] = len(rows)
    return out
