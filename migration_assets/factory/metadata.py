"""Table metadata Dagster shows: schema, column lineage back to Mongo field paths, the
source collection's field schema, quarantine samples and progress lines."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import dagster as dg

from migration_assets.factory.naming import collection_key
from migration_assets.markdown import md_table
from migration_assets.specs.model import LoaderSpec, TableSpec, source_path


def column_schema(table: TableSpec) -> dg.TableSchema:
    cols = []
    for c in table.columns:
        source = ", ".join(source_path(table, p) for p in c.source_paths) or "-"
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


def column_sources_markdown(loader: LoaderSpec, table: TableSpec) -> str:
    """The column lineage as a table a person reads on the asset page (the OSS UI keeps
    ``dagster/column_lineage`` for its lineage features and does not list it)."""
    rows = []
    for c in table.columns:
        paths = [source_path(table, p) for p in c.source_paths]
        rows.append((c.name, ", ".join(f"`{p}`" for p in paths) or "(generated)", c.kind.describe()))
    return (f"PostgreSQL column <- field of Mongo `{loader.collection}` (asset `mongodb/{loader.collection}`)\n\n"
            + markdown_table(["column", "Mongo field path", "type"], rows))


def collection_schema(loader: LoaderSpec) -> dg.TableSchema:
    """The Mongo collection's mapped fields as a table schema: the upstream end of every
    column-lineage edge, named exactly as :func:`column_lineage` names them."""
    fields: dict[str, tuple[set[str], list[str]]] = {}
    for t in loader.tables:
        for c in t.columns:
            for p in c.source_paths:
                types, targets = fields.setdefault(source_path(t, p), (set(), []))
                if c.compute is None:  # a rule's inputs have no type of the output column
                    types.update(c.kind.bson_types)
                targets.append(f"{t.table}.{c.name}")
    return dg.TableSchema(columns=[
        dg.TableColumn(name=path, type=" | ".join(sorted(types)) or "any", description="-> " + ", ".join(targets))
        for path, (types, targets) in fields.items()
    ])


def quarantine_markdown(rows: Sequence[Sequence[Any]], total: int) -> str:
    """(``_id``, reason code, reason) rows as a markdown table, or a sentence when empty."""
    if not rows:
        return "No document of this collection is in the open quarantine."
    shown = f"{len(rows)} of {total}" if total > len(rows) else f"all {total}"
    return (f"{shown} open quarantine entries (query `migration.quarantine` for the raw documents):\n\n"
            + markdown_table(["_id", "code", "reason"], rows))


def progress_line(name: str, docs: int, total: int | None, rows: int, quarantined: int, rate: float) -> str:
    """One run-log line: documents done of total, rows written, rate and ETA."""
    if total:
        left = max(0, total - docs)
        eta = f", ETA {left / rate:.0f}s" if rate > 0 else ", ETA unknown"
        done = f"{docs}/{total} documents ({100.0 * docs / total:.1f}%)"
    else:
        eta, done = "", f"{docs} documents"
    return f"{name}: {done}, {rows} rows written, {quarantined} quarantined, {rate:.0f} docs/s{eta}"


@dataclass(frozen=True)
class LoadProgress:
    """A progress line read back from a run's log (the command line draws its bars from it)."""

    name: str
    docs: int
    total: int | None
    rows: int
    quarantined: int
    rate: float


# What progress_line writes, and nothing else: a loader's other log lines do not match.
_PROGRESS = re.compile(r"(?P<name>[^:\s]+): (?P<docs>\d+)(?:/(?P<total>\d+))? documents(?: \([\d.]+%\))?, "
                       r"(?P<rows>\d+) rows written, (?P<quarantined>\d+) quarantined, (?P<rate>\d+) docs/s")


def read_progress_line(text: str) -> LoadProgress | None:
    """The inverse of :func:`progress_line`; None for any other log line."""
    m = _PROGRESS.match(text)
    if m is None:
        return None
    total = m["total"]
    return LoadProgress(m["name"], int(m["docs"]), int(total) if total else None, int(m["rows"]),
                        int(m["quarantined"]), float(m["rate"]))


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A markdown table for the UI's metadata (cells cut at 200 characters)."""
    return md_table(headers, rows, width=200)


def static_table_metadata(loader: LoaderSpec, table: TableSpec, database: str = "migration") -> Mapping[str, Any]:
    return {
        "dagster/column_schema": column_schema(table),
        "dagster/table_name": f"{database}.public.{table.table}",
        "source_collection": loader.collection,
        "loader": loader.name,
        "rows_from": table.rows.mode + (f" {table.rows.path}" if table.rows.path else ""),
        "fk_parents": ", ".join(sorted(table.fk_parents())) or "-",
        "column_sources": dg.MetadataValue.md(column_sources_markdown(loader, table)),
    }
