"""A loader's documents as PostgreSQL holds them: each document's rows in every table of its
aggregate, references given as the referenced row's legacy id (what the reverse sync renders)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import psycopg

from migration_assets.specs.kinds import Json
from migration_assets.specs.model import Column, LoaderSpec, TableSpec

Rows = dict[str, list[dict[str, Any]]]


class RefJoins:
    """A table's references read as the referenced rows' legacy ids: each referenced table
    LEFT JOINed once per column, as it is first asked for (aliases ``j0``, ``j1`` …), to the
    table aliased ``t``. The verification's SQL canonical and the reverse sync's rows share it."""

    def __init__(self) -> None:
        self.alias_for: dict[str, str] = {}
        self.joins: list[str] = []

    def legacy_id(self, column: Column) -> str:
        """The legacy id of the row ``column`` references (NULL for none, or a dangling one)."""
        if column.name not in self.alias_for:
            alias = self.alias_for[column.name] = f"j{len(self.alias_for)}"
            self.joins.append(f" LEFT JOIN public.{column.ref_table} {alias} ON {alias}.id = t.{column.name}")
        return f"{self.alias_for[column.name]}.legacy_object_id"

    def document_key(self, table: TableSpec) -> str:
        """The legacy id of the document a row of ``table`` belongs to."""
        return "t.legacy_object_id" if table.is_root else self.legacy_id(table.column(table.parent_column))

    @property
    def sql(self) -> str:
        return "".join(self.joins)


def _select(table: TableSpec) -> tuple[str, list[str]]:
    """The statement of ``table``'s rows of given documents: (key, columns...)."""
    refs = RefJoins()
    cols = []
    for c in table.columns:
        if c.ref_table:
            cols.append(refs.legacy_id(c))
        elif isinstance(c.kind, Json):
            cols.append(f"t.{c.name}::text")  # parsed with exact decimals, not floats
        else:
            cols.append(f"t.{c.name}")
    key = refs.document_key(table)
    sql = f"SELECT {key}, {', '.join(cols)} FROM public.{table.table} t{refs.sql} WHERE {key} = ANY(%s)"
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
