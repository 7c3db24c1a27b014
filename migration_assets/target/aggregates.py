"""A loader's documents as PostgreSQL holds them: each document's rows in every table of its
aggregate, references given as the referenced row's legacy id (what the reverse sync renders)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import psycopg

from migration_assets.specs.kinds import Json
from migration_assets.specs.model import LoaderSpec, TableSpec

Rows = dict[str, list[dict[str, Any]]]


def _select(table: TableSpec) -> tuple[str, list[str]]:
    """The statement of ``table``'s rows of given documents: (key, columns...)."""
    cols, joins, alias_for = [], [], {}
    for c in table.columns:
        if c.ref_table:
            alias = alias_for.setdefault(c.name, f"j{len(alias_for)}")
            joins.append(f" LEFT JOIN public.{c.ref_table} {alias} ON {alias}.id = t.{c.name}")
            cols.append(f"{alias}.legacy_object_id")
        elif isinstance(c.kind, Json):
            cols.append(f"t.{c.name}::text")  # parsed with exact decimals, not floats
        else:
            cols.append(f"t.{c.name}")
    key = "t.legacy_object_id" if table.is_root else f"{alias_for[table.parent_column]}.legacy_object_id"
    sql = f"SELECT {key}, {', '.join(cols)} FROM public.{table.table} t{''.join(joins)} WHERE {key} = ANY(%s)"
    return sql, [c.name for c in table.columns]


def document_rows(conn: psycopg.Connection, loader: LoaderSpec, documents: Sequence[str]) -> dict[str, Rows]:
    """document -> table -> rows (column -> value) of ``documents``; a document PostgreSQL does
    not hold has no root row."""
    out: dict[str, Rows] = {d: {t.table: [] for t in loader.tables} for d in documents}
    if not documents:
        return out
    for table in loader.tables:
        sql, names = _select(table)
        json_columns = [c.name for c in table.columns if isinstance(c.kind, Json)]
        for key, *values in conn.execute(sql, [list(documents)]):
            row = dict(zip(names, values))
            for name in json_columns:
                if row[name] is not None:
                    row[name] = json.loads(row[name], parse_float=Decimal)
            out[key][table.table].append(row)
    return out
