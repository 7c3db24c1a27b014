"""Rows -> document: the transform read backwards, from the same spec (the reverse sync).

A document's PostgreSQL rows (per table, one mapping of column -> value each, references
given as the referenced row's legacy id) are rendered into the Mongo document the spec
maps them from: columns become field paths, embedded tables objects, array tables arrays
in their order; references become ObjectIds, and every kind gets its BSON type back
(Decimal128 money, Int64 bigints, dates to the millisecond).

The render starts from the document Mongo holds now and changes only what differs, value
by value, by the column's own canonical form (the one both verification sides use): a field
the spec does not map keeps its value, and so does a mapped one whose value is equal under
another BSON type (an int stored as a double). The result is the new document and the
``$set`` / ``$unset`` that turn the current one into it; a document is never replaced whole.
"""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from bson import Decimal128, Int64, ObjectId

from migration_assets.specs.kinds import Int, Json, LegacyId, Numeric, Ref, RowId, Timestamp
from migration_assets.specs.model import MISSING, Column, LoaderSpec, TableSpec, get_path, resolve_source

Row = Mapping[str, Any]
INT32 = 2**31


class Unrenderable(Exception):
    """A value with no BSON form the spec's transform reads back as the same value."""


@dataclass
class Rendered:
    """The new document, and the update that makes it from the current one."""

    document: dict[str, Any]
    set: dict[str, Any] = field(default_factory=dict)
    unset: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.set and not self.unset

    @property
    def update(self) -> dict[str, Any]:
        ops: dict[str, Any] = {}
        if self.set:
            ops["$set"] = self.set
        if self.unset:
            ops["$unset"] = {p: "" for p in self.unset}
        return ops


# --- one value --------------------------------------------------------------------------

def json_bson(value: Any) -> Any:
    """A JSON value (numbers parsed as Decimal) as BSON: integers as int/Int64, a decimal as
    the double that prints back the same, else Decimal128."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return value if -INT32 <= value < INT32 else Int64(value)
    if isinstance(value, (Decimal, float)):
        d = Decimal(str(value)) if isinstance(value, float) else value
        if d == d.to_integral_value() and abs(d) < 2**63 and "E" not in str(d) and "." not in str(d):
            return json_bson(int(d))
        f = float(d)
        return f if Decimal(repr(f)) == d else Decimal128(d)
    if isinstance(value, list):
        return [json_bson(v) for v in value]
    if isinstance(value, dict):
        return {k: json_bson(v) for k, v in value.items()}
    raise Unrenderable(f"{type(value).__name__} is not a JSON value")


def bson_value(column: Column, value: Any) -> Any:
    """A column's PostgreSQL value as the BSON value its transform reads back unchanged."""
    kind = column.kind
    if value is None:
        return None
    if isinstance(kind, (Ref, LegacyId)):
        return ObjectId(str(value))
    if isinstance(kind, Int):
        return Int64(value) if kind.pg_type == "bigint" else int(value)
    if isinstance(kind, Numeric):
        d = Decimal(value).normalize()
        if d.as_tuple().exponent > 0:  # 1E+2 is 100: no exponent in a money amount
            d = d.quantize(Decimal(1))
        try:
            return Decimal128(d)
        except Exception as e:  # noqa: BLE001 - Decimal128 holds 34 digits, numeric(38,18) more
            raise Unrenderable(f"{column.name} = {value} has no exact Decimal128 form ({type(e).__name__})") from None
    if isinstance(kind, Timestamp):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.timezone.utc)
        return value.astimezone(dt.timezone.utc).replace(microsecond=value.microsecond // 1000 * 1000)
    if isinstance(kind, Json):
        return json_bson(value)
    if isinstance(value, list):
        return list(value)
    return value


def canon(column: Column, raw: Any) -> str | None:
    """The column's canonical text of a raw value (None: the value does not map at all)."""
    try:
        return column.kind.canon_source(None if raw is MISSING else raw)
    except Exception:  # noqa: BLE001 - a value the kind refuses (Reject, or worse) differs from any that maps
        return None


# --- where a column goes --------------------------------------------------------------------

def writable_path(column: Column) -> str | None:
    """The field a column's value is written to, relative to its row's source object; None for
    columns the document's shape gives (own uuids, the parent link, positions) and for ``_id``
    of the document itself."""
    if isinstance(column.kind, RowId):
        return None
    path = column.lineage[0] if column.compute is not None and column.lineage else column.path
    if path is None or path.startswith("$"):
        return None
    return path


def set_path(obj: dict[str, Any], path: str, value: Any) -> None:
    parts = path.split(".")
    for part in parts[:-1]:
        nxt = obj.get(part)
        if not isinstance(nxt, dict):
            nxt = obj[part] = {}
        obj = nxt
    obj[parts[-1]] = value


def unset_path(obj: dict[str, Any], path: str) -> None:
    parts = path.split(".")
    for part in parts[:-1]:
        obj = obj.get(part) if isinstance(obj, dict) else None
        if not isinstance(obj, dict):
            return
    if isinstance(obj, dict):
        obj.pop(parts[-1], None)


class _Changes:
    """Changed paths of the new document; folded at the end so no path is set under another."""

    def __init__(self) -> None:
        self.set: set[str] = set()
        self.unset: set[str] = set()

    def fold(self, doc: Mapping[str, Any], current: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
        def covered(p: str, by: set[str]) -> bool:
            return any(p.startswith(a + ".") for a in by)

        def lift(p: str) -> str:
            """A path under a value that is no object (Mongo refuses to create a field in it):
            the whole value is set instead."""
            obj: Any = current
            parts = p.split(".")
            for i, part in enumerate(parts[:-1]):
                if not isinstance(obj, Mapping) or part not in obj:
                    return p
                obj = obj[part]
                if not isinstance(obj, Mapping):
                    return ".".join(parts[:i + 1])
            return p

        self.set = {lift(p) for p in self.set}
        every = self.set | self.unset
        sets = {p: get_path(doc, p) for p in sorted(self.set) if not covered(p, every)}
        unsets = sorted(p for p in self.unset if not covered(p, every) and p not in self.set)
        return sets, unsets


def _fill(obj: dict[str, Any], table: TableSpec, row: Row, doc: Mapping[str, Any], index: int,
          ctx: Mapping[str, Any], prefix: str, changes: _Changes | None, fresh: bool) -> None:
    """Write ``row``'s columns into ``obj`` (an existing object: only values that differ)."""
    for column in table.columns:
        path = writable_path(column)
        if path is None or (table.is_root and path == "_id"):
            continue
        new = bson_value(column, row.get(column.name))
        current = resolve_source(column, obj, doc, index, ctx)
        if current is not MISSING and canon(column, current) == canon(column, new) is not None and (
                not fresh or new is None or get_path(obj, path) is not MISSING):
            continue  # equal (a new object still gets its defaults written, as the application writes them)
        if current is MISSING and new is None and column.default is MISSING:
            continue  # absent and NULL are one value for a column without a default
        if new is None and column.default is MISSING and not column.required:
            if get_path(obj, path) is not MISSING:
                unset_path(obj, path)
                if changes is not None:
                    changes.unset.add(prefix + path)
            continue
        set_path(obj, path, new)
        if changes is not None:
            changes.set.add(prefix + path)


def _position(table: TableSpec) -> str | None:
    return next((c.name for c in table.columns if c.path == "$index"), None)


def identity(table: TableSpec) -> tuple[Column, ...]:
    """What names an element on both sides: its own ``_id``, else its position, else its key."""
    own = tuple(c for c in table.columns if isinstance(c.kind, LegacyId) and c.path == "_id")
    if own:
        return own
    pos = tuple(c for c in table.columns if c.path == "$index")
    return pos or tuple(table.column(k) for k in table.key if k != table.parent_column and k != "id")


def _render_array(table: TableSpec, rows: Sequence[Row], doc: dict[str, Any], ctx: Mapping[str, Any],
                  changes: _Changes) -> None:
    path = table.rows.path
    assert path is not None
    current = get_path(doc, path)
    current_list = current if isinstance(current, list) else []
    ident = identity(table)
    existing: dict[tuple, tuple[int, Any]] = {}
    for i, element in enumerate(current_list):
        key = tuple(canon(c, resolve_source(c, element, doc, i, ctx)) for c in ident)
        existing.setdefault(key, (i, element))
    keyed = [(tuple(canon(c, bson_value(c, row.get(c.name))) for c in ident), row) for row in rows]
    pos = _position(table)
    if pos is not None:
        keyed.sort(key=lambda kr: kr[1].get(pos))
    else:  # no order in PostgreSQL: Mongo's, new elements last
        keyed.sort(key=lambda kr: existing.get(kr[0], (len(current_list),))[0])
    new_list: list[Any] = []
    for index, (key, row) in enumerate(keyed):
        old = existing.get(key, (None, MISSING))[1]
        if table.scalar_elements:
            element_col = next(c for c in table.columns if c.path == "$element")
            new = bson_value(element_col, row.get(element_col.name))
            keep = old is not MISSING and canon(element_col, old) == canon(element_col, new) is not None
            new_list.append(old if keep else new)
            continue
        element = copy.deepcopy(dict(old)) if isinstance(old, Mapping) else {}
        _fill(element, table, row, doc, index, ctx, "", None, not isinstance(old, Mapping))
        new_list.append(element)
    if current is MISSING and not new_list:
        return
    if isinstance(current, list) and current == new_list:
        return
    set_path(doc, path, new_list)
    changes.set.add(path)


def render(loader: LoaderSpec, current: Mapping[str, Any] | None, rows: Mapping[str, Sequence[Row]],
           ctx: Mapping[str, Any], legacy_id: str) -> Rendered:
    """The document ``legacy_id`` rendered from its rows over ``current`` (None: a new one)."""
    doc: dict[str, Any] = copy.deepcopy(dict(current)) if current is not None else {"_id": ObjectId(legacy_id)}
    changes = _Changes()
    root_rows = rows.get(loader.root.table) or []
    if len(root_rows) != 1:
        raise Unrenderable(f"{loader.root.table} holds {len(root_rows)} rows for {legacy_id}")
    _fill(doc, loader.root, root_rows[0], doc, 0, ctx, "", changes, current is None)
    for table in loader.tables[1:]:
        table_rows = rows.get(table.table) or []
        path = table.rows.path
        assert path is not None
        if table.rows.mode == "array":
            _render_array(table, table_rows, doc, ctx, changes)
            continue
        current_obj = get_path(doc, path)
        if not table_rows:
            if isinstance(current_obj, Mapping):
                unset_path(doc, path)
                changes.unset.add(path)
            continue
        fresh = not isinstance(current_obj, dict)
        if fresh:
            set_path(doc, path, {})
            changes.set.add(path)
            current_obj = get_path(doc, path)
        _fill(current_obj, table, table_rows[0], doc, 0, ctx, path + ".", changes, fresh)
    sets, unsets = changes.fold(doc, current or {})
    return Rendered(doc, sets, unsets)
