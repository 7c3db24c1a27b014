"""Table metadata Dagster shows: schema, column lineage back to Mongo field paths, markdown."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import dagster as dg

from migration_assets.factory.keys import collection_key
from migration_assets.spec import LoaderSpec, TableSpec, source_path


def column_schema(table: TableSpec) -> dg.TableSchema:
    cols = []
    for c in table.columns:
        source = ", ".join(c.source_paths) or "-"
        desc = f"from {source}" + (f"; {c.doc}" if c.doc else "")
        if c.deferred:
            desc += "; set after its target loads"
        cols.append(dg.TableColumn(
            name=c.name,
            type=c.kind.describe(),
            description=desc,
            constraints=dg.TableColumnConstraints(nullable=not c.required),
        ))
    return dg.TableSchema(columns=cols)


def column_lineage(loader: LoaderSpec, table: TableSpec) -> dg.TableColumnLineage:
    key = collection_key(loader.collection)
    deps = {}
    for c in table.columns:
        paths = [source_path(table, p) for p in c.source_paths]
        if paths:
            deps[c.name] = [dg.TableColumnDep(asset_key=key, column_name=p) for p in paths]
    return dg.TableColumnLineage(deps_by_column=deps)


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    def esc(v: Any) -> str:
        return str(v).replace("|", "\\|").replace("\n", " ")[:200]

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(esc(v) for v in r) + " |" for r in rows]
    return "\n".join(lines)


def static_table_metadata(loader: LoaderSpec, table: TableSpec, database: str = "migration") -> Mapping[str, Any]:
    return {
        "dagster/column_schema": column_schema(table),
        "dagster/table_name": f"{database}.public.{table.table}",
        "source_collection": loader.collection,
        "loader": loader.name,
        "rows_from": table.rows.mode + (f" {table.rows.path}" if table.rows.path else ""),
        "fk_parents": ", ".join(sorted(table.fk_parents())) or "-",
    }
