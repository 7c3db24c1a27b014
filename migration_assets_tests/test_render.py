"""The transform read backwards (``transform/render.py``), as properties over generated rows of
every spec: ``transform(render(rows)) == rows``, and a real document keeps every field the spec
does not map through ``render`` and its ``$set`` / ``$unset``."""

from __future__ import annotations

import copy
import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from bson import Decimal128, Int64, ObjectId
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from migration_assets.specs.ids import new_id
from migration_assets.specs.kinds import (
    Bool,
    DerivedId,
    Enum,
    Int,
    Json,
    LegacyId,
    LegacyRef,
    Numeric,
    Ref,
    RowId,
    Text,
    TextArray,
    Timestamp,
)
from migration_assets.specs.model import Column, LoaderSpec, TableSpec
from migration_assets.specs.registry import all_loaders
from migration_assets.transform.reference import transform_document
from migration_assets.transform.render import render

pytestmark = pytest.mark.unit

LOADERS = {l.name: l for l in all_loaders()}
UTC = dt.timezone.utc
texts = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
               max_size=12)  # PostgreSQL text holds neither a lone surrogate nor NUL
object_ids = st.binary(min_size=12, max_size=12).map(lambda b: str(ObjectId(b)))
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**62), 2**62) | texts
    | st.decimals(allow_nan=False, allow_infinity=False, places=4, min_value=-10**9, max_value=10**9),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3), max_leaves=8)


def money(kind: Numeric) -> st.SearchStrategy[Decimal]:
    most = 10 ** min(kind.precision - kind.scale, 15) - 1
    return st.builds(lambda i, f: Decimal(i).scaleb(-f), st.integers(-most, most), st.integers(0, min(kind.scale, 6)))


def values(column: Column) -> st.SearchStrategy[Any]:
    """A value PostgreSQL could hold in the column, as psycopg returns it (references: the
    referenced row's legacy id)."""
    kind = column.kind
    if isinstance(kind, Enum):
        return st.sampled_from(kind.values)
    if isinstance(kind, (Ref, LegacyId)):
        return object_ids
    if isinstance(kind, Text):
        return texts
    if isinstance(kind, Bool):
        return st.booleans()
    if isinstance(kind, Int):
        lo, hi = kind.bounds
        return st.integers(lo, hi - 1)
    if isinstance(kind, Numeric):
        return money(kind)
    if isinstance(kind, Timestamp):
        return st.datetimes(min_value=dt.datetime(1, 1, 2), max_value=dt.datetime(9999, 12, 30)).map(
            lambda d: d.replace(microsecond=d.microsecond // 1000 * 1000, tzinfo=UTC))
    if isinstance(kind, TextArray):
        return st.lists(texts, max_size=3)
    if isinstance(kind, Json):
        return json_values.filter(lambda v: v is not None)  # a top-level JSON null is SQL NULL here
    raise AssertionError(f"no strategy for {kind}")


def free(column: Column) -> bool:
    """Columns whose value the row's place gives (own uuid, parent link, position)."""
    return isinstance(column.kind, RowId) or (column.path or "").startswith("$root.") or column.path == "$index"


@st.composite
def table_rows(draw, table: TableSpec, root_id: str) -> list[dict[str, Any]]:
    n = 1 if table.is_root else draw(st.integers(0, 1 if table.rows.mode == "embedded" else 3))
    rows: list[dict[str, Any]] = []
    seen: set[tuple] = set()
    for i in range(n):
        row: dict[str, Any] = {}
        for c in table.columns:
            if c.path == "$index":
                row[c.name] = i
            elif (c.path or "").startswith("$root.") or isinstance(c.kind, RowId):
                row[c.name] = root_id
            elif isinstance(c.kind, LegacyId) and table.is_root:
                row[c.name] = root_id
            else:
                row[c.name] = draw(values(c) if c.required else st.none() | values(c))
        own = "legacy_object_id" if table.has_legacy_id else None
        keys = [tuple(row[own if k == "id" else k] for k in key if k != table.parent_column)
                for key in (table.key, *table.unique_keys) if own or "id" not in key]
        if any(k in seen for k in keys):
            continue  # one document's child rows are unique on their keys
        seen.update(keys)
        rows.append(row)
    return rows


@st.composite
def aggregates(draw, loader: LoaderSpec) -> tuple[str, dict[str, list[dict[str, Any]]]]:
    root_id = draw(object_ids)
    rows = {t.table: draw(table_rows(t, root_id)) for t in loader.tables}
    for t in loader.tables:  # an object inside an absent object has no document form
        for outer in loader.tables[1:]:
            if outer is not t and (t.rows.path or "").startswith(f"{outer.rows.path}.") and not rows[outer.table]:
                rows[t.table] = []
    return root_id, rows


def norm(v: Any) -> Any:
    """Equal values compare equal whatever their Python type (1.5 == Decimal('1.50'))."""
    if isinstance(v, bool) or v is None or isinstance(v, str):
        return v
    if isinstance(v, (int, float, Decimal, Decimal128, Int64)):
        d = v.to_decimal() if isinstance(v, Decimal128) else Decimal(repr(v)) if isinstance(v, float) else Decimal(v)
        return d.normalize() if d else Decimal(0)
    if isinstance(v, LegacyRef):
        return v.legacy_id
    if isinstance(v, dt.datetime):
        return v.astimezone(UTC)
    if isinstance(v, list):
        return [norm(x) for x in v]
    if isinstance(v, dict):
        return {k: norm(x) for k, x in v.items()}
    return v


def unordered(table: TableSpec, rows: list[list[Any]]) -> list[list[Any]]:
    """Rows of an array PostgreSQL keeps no position of: equal in any order."""
    return rows if any(c.path == "$index" for c in table.columns) else sorted(rows, key=repr)


def expected(loader: LoaderSpec, rows: dict[str, list[dict[str, Any]]]) -> dict[str, list[list[Any]]]:
    return {t.table: unordered(t, [[norm(r[c.name]) for c in t.columns if not free(c) and not c.deferred]
                                   for r in rows[t.table]]) for t in loader.tables}


def transformed(loader: LoaderSpec, doc: dict[str, Any], root_id: str) -> dict[str, list[list[Any]]]:
    result = transform_document(loader, doc, {}, root_id)
    assert not result.problems, result.problems
    out = {}
    for t in loader.tables:
        idx = [i for i, c in enumerate(t.columns) if not free(c) and not c.deferred]
        out[t.table] = unordered(t, [[norm(row[i]) for i in idx] for row in result.rows[t.table]])
    return out


def check_free_columns(loader: LoaderSpec, doc: dict[str, Any], root_id: str, rows) -> None:
    """Own uuids, parent links and positions come back as the document's place gives them."""
    result = transform_document(loader, doc, {}, root_id)
    for t in loader.tables:
        for got, row in zip(result.rows[t.table], rows[t.table]):
            for c, value in zip(t.columns, got):
                if isinstance(c.kind, DerivedId):
                    assert value == new_id(t.table, root_id)
                elif c.path == "$index":
                    assert value == row[c.name]
                elif (c.path or "").startswith("$root._id"):
                    assert norm(value) == root_id
        deferred = {(d.column, d.ref.legacy_id) for d in result.deferred if d.table == t.table}
        for c in t.columns:
            if c.deferred and rows[t.table] and rows[t.table][0][c.name] is not None:
                assert (c.name, rows[t.table][0][c.name]) in deferred


def apply_update(doc: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """Mongo's $set / $unset on dotted paths, written apart from the renderer."""
    out = copy.deepcopy(doc)
    for path, value in update.get("$set", {}).items():
        *parents, last = path.split(".")
        obj = out
        for p in parents:
            obj = obj.setdefault(p, {})
        obj[last] = copy.deepcopy(value)
    for path in update.get("$unset", {}):
        *parents, last = path.split(".")
        obj = out
        for p in parents:
            obj = obj.get(p, {})
        if isinstance(obj, dict):
            obj.pop(last, None)
    return out


EXAMPLES = 60
RENDER_SETTINGS = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                           suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


@pytest.mark.parametrize("name", sorted(LOADERS))
def test_transform_of_the_rendered_rows_is_the_rows(name):
    loader = LOADERS[name]

    @RENDER_SETTINGS
    @given(aggregates(loader))
    def check(aggregate):
        root_id, rows = aggregate
        doc = render(loader, None, rows, {}, root_id).document
        assert doc["_id"] == ObjectId(root_id)
        assert transformed(loader, doc, root_id) == expected(loader, rows)
        check_free_columns(loader, doc, root_id, rows)

    check()


UNMAPPED = st.dictionaries(st.sampled_from(["legacyNote", "__v", "x-audit", "meta"]), json_values, max_size=2)


def with_unmapped(loader: LoaderSpec, doc: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """``doc`` with fields no spec maps: at its top, in its embedded objects and array elements."""
    out = copy.deepcopy(doc)
    out.update({f"unmapped_{k}": v for k, v in extra.items()})
    for t in loader.tables[1:]:
        holder = out
        for p in (t.rows.path or "").split("."):
            holder = holder.get(p) if isinstance(holder, dict) else None
        items = holder if isinstance(holder, list) else [holder]
        for item in items:
            if isinstance(item, dict):
                item.update({f"unmapped_{k}": v for k, v in extra.items()})
    return out


def unmapped(doc: Any) -> Any:
    """Every unmapped field of a document, where it is."""
    if isinstance(doc, dict):
        found = {k: v for k, v in doc.items() if k.startswith("unmapped_")}
        nested = {k: unmapped(v) for k, v in doc.items() if not k.startswith("unmapped_") and isinstance(v, (dict, list))}
        return {**found, **{k: v for k, v in nested.items() if v}}
    if isinstance(doc, list):
        return [unmapped(v) for v in doc]
    return None


@pytest.mark.parametrize("name", sorted(LOADERS))
def test_a_real_document_keeps_its_unmapped_fields_through_render_and_its_update(name):
    loader = LOADERS[name]

    @RENDER_SETTINGS
    @given(aggregates(loader), aggregates(loader), UNMAPPED)
    def check(before, after, extra):
        root_id, rows = before
        _, rows_after = after
        for t in loader.tables:  # the same document, other values
            for r in rows_after[t.table]:
                for c in t.columns:
                    if (c.path or "").startswith("$root.") or isinstance(c.kind, RowId) or (
                            isinstance(c.kind, LegacyId) and t.is_root):
                        r[c.name] = root_id
        current = with_unmapped(loader, render(loader, None, rows, {}, root_id).document, extra)
        r = render(loader, current, rows_after, {}, root_id)
        assert apply_update(current, r.update) == r.document
        assert transformed(loader, r.document, root_id) == expected(loader, rows_after)
        top = {k: v for k, v in current.items() if k.startswith("unmapped_")}
        assert {k: v for k, v in r.document.items() if k.startswith("unmapped_")} == top
        # kept elements and objects keep theirs too (new ones have none)
        for t in loader.tables[1:]:
            if t.rows.mode == "embedded" and rows[t.table] and rows_after[t.table]:
                holder = r.document
                for p in (t.rows.path or "").split("."):
                    holder = holder[p]
                assert {k for k in holder if k.startswith("unmapped_")} == {f"unmapped_{k}" for k in extra}
        again = render(loader, r.document, rows_after, {}, root_id)
        assert again.empty, again.update  # rendering the result again changes nothing

    check()
