"""The reference transform (the specification): a :class:`LoaderSpec` applied to one
decoded Mongo document, generically, column by column.

The result holds, per table, rows of Python values ready for COPY, except that
references are :class:`LegacyRef` placeholders the loader resolves against PostgreSQL
in one query per batch (that is also where missing parents are found). Any value that
cannot be mapped makes the whole document a rejection: its aggregate (root row and child
rows) is quarantined together, never half-loaded.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from migration_assets.specs.kinds import LegacyRef, Reject
from migration_assets.specs.model import MISSING, LoaderSpec, TableSpec, get_path, resolve_source
from migration_assets.transform.results import Deferred, DocResult, Problem


def field_label(table_path: str | None, column_path: str | None, index: int, mode: str) -> str:
    if mode == "root" or not table_path:
        return column_path or "?"
    prefix = f"{table_path}[{index}]" if mode == "array" else table_path
    return f"{prefix}.{column_path}" if column_path else prefix


def transform_document(loader: LoaderSpec, doc: Mapping[str, Any], ctx: Mapping[str, Any], legacy_id: str) -> DocResult:
    result = DocResult(legacy_id)
    for table in loader.tables:
        out: list[list[Any]] = []
        container = get_path(doc, table.rows.path) if table.rows.path else None
        container = None if container is MISSING else container
        if table.rows.mode == "array":
            if container is not None and not isinstance(container, list):
                result.reject("wrong_type", table.rows.path or "?", f"expected an array, got {type(container).__name__}")
                continue
        elif table.rows.mode == "embedded":
            if container is not None and not isinstance(container, Mapping):
                result.reject("wrong_type", table.rows.path or "?", f"expected an object, got {type(container).__name__}")
                continue
        for source, index in table.rows.sources(doc):
            if table.rows.mode == "array" and not isinstance(source, Mapping) and not table.scalar_elements:
                result.reject("wrong_type", f"{table.rows.path}[{index}]", f"expected an object, got {type(source).__name__}")
                continue
            row: list[Any] = []
            own: LegacyRef | None = None
            for column in table.columns:
                raw = resolve_source(column, source, doc, index, ctx)
                label = field_label(table.rows.path, column.path or column.name, index, table.rows.mode)
                if raw is MISSING or raw is None:
                    if column.required:
                        result.reject("missing_required", label, f"{table.table}.{column.name} is required")
                    row.append(None)
                    continue
                try:
                    value = column.kind.coerce(raw)
                except Reject as r:
                    result.reject(r.code, label, r.message)
                    row.append(None)
                    continue
                if column.name == "id" and isinstance(value, LegacyRef):
                    own = value
                if column.deferred:
                    target = own or LegacyRef(table.table, legacy_id)
                    result.deferred.append(Deferred(table.table, column.name, target, value))
                    value = None
                row.append(value)
            out.append(row)
        if len(out) > 1:
            result.problems += duplicate_key_problems(table, out)
        result.rows[table.table] = out
    return result


def duplicate_key_problems(table: TableSpec, rows: list[list[Any]]) -> list[Problem]:
    """Two child rows of one document with the same key (a seller listed twice, a chat
    participant twice, a repeated specification key) cannot both load: name it."""
    for key_cols in {table.key, *table.unique_keys}:
        idx = [table.column_names.index(k) for k in key_cols]
        seen: set[tuple] = set()
        for row in rows:
            key = tuple(row[i] for i in idx)
            if any(v is None for v in key):
                continue
            if key in seen:
                shown = ", ".join(str(getattr(v, "legacy_id", v)) for v in key)
                return [Problem("duplicate_key", table.rows.path or table.table,
                                f"{table.table} ({', '.join(key_cols)}) = ({shown}) appears more than once in this document")]
            seen.add(key)
    return []
