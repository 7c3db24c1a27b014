"""Document -> rows: applies a :class:`LoaderSpec` to one decoded Mongo document.

The result holds, per table, rows of Python values ready for COPY, except that
references are :class:`LegacyRef` placeholders the loader resolves against PostgreSQL
in one query per batch (that is also where missing parents are found). Any value that
cannot be mapped makes the whole document a rejection: its aggregate (root row and child
rows) is quarantined together, never half-loaded.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from migration_assets.kinds import LegacyRef, Reject
from migration_assets.spec import MISSING, LoaderSpec, get_path, resolve_source


@dataclass(frozen=True)
class Problem:
    code: str
    field: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"code": self.code, "field": self.field, "message": self.message}


@dataclass
class Deferred:
    """A reference written after its target loads (self-references, the selectedOffer remap)."""

    table: str
    column: str
    row: LegacyRef
    ref: LegacyRef


@dataclass
class DocResult:
    legacy_id: str
    rows: dict[str, list[list[Any]]] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    deferred: list[Deferred] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def reject(self, code: str, field_name: str, message: str) -> None:
        self.problems.append(Problem(code, field_name, message))


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
            if table.rows.mode == "array" and not isinstance(source, Mapping) and not _scalar_element_table(table):
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
            _reject_duplicate_keys(result, table, out)
        result.rows[table.table] = out
    return result


def _reject_duplicate_keys(result: DocResult, table, rows: list[list[Any]]) -> None:
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
                result.reject("duplicate_key", table.rows.path or table.table,
                              f"{table.table} ({', '.join(key_cols)}) = ({shown}) appears more than once in this document")
                return
            seen.add(key)


def _scalar_element_table(table) -> bool:
    """Tables built from arrays of scalars (e.g. preferredSellers ObjectIds) read ``$element``."""
    return any(c.path == "$element" for c in table.columns)
