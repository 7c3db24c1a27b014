"""The asset graph is the foreign-key graph: read from pg_catalog after sql/ is applied,
for every public table, with no exemption list."""

from __future__ import annotations

import psycopg
import pytest

from migration_assets.specs.kinds import Enum
from migration_assets.specs.registry import all_tables

pytestmark = pytest.mark.integration

FK_SQL = """
SELECT c.conrelid::regclass::text AS child, a.attname AS column, c.confrelid::regclass::text AS parent
FROM pg_constraint c
JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = ANY (c.conkey)
WHERE c.contype = 'f' AND c.connamespace = 'public'::regnamespace
"""


@pytest.fixture(scope="module")
def catalog(pg_server, schema_template):
    url = pg_server.rsplit("/", 1)[0] + "/" + schema_template
    with psycopg.connect(url) as c:
        fks = c.execute(FK_SQL).fetchall()
        tables = {r[0] for r in c.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'").fetchall()}
        columns = c.execute(
            "SELECT table_name, column_name, CASE WHEN data_type = 'ARRAY' THEN 'text[]' "
            "WHEN data_type = 'USER-DEFINED' THEN udt_name ELSE data_type END, is_nullable = 'NO' "
            "FROM information_schema.columns WHERE table_schema = 'public'").fetchall()
        enums = c.execute(
            "SELECT t.typname, array_agg(e.enumlabel ORDER BY e.enumsortorder) FROM pg_type t "
            "JOIN pg_enum e ON e.enumtypid = t.oid GROUP BY 1").fetchall()
    return {"fks": fks, "tables": tables, "columns": columns, "enums": dict(enums)}


def public_deps(definitions) -> dict[tuple[str, ...], set[tuple[str, ...]]]:
    graph = definitions.resolve_asset_graph()
    out = {}
    for key in graph.get_all_asset_keys():
        if key.path[0] != "public":
            continue
        out[tuple(key.path)] = {tuple(p.path) for p in graph.get(key).parent_keys if p.path[0] == "public"}
    return out


def test_every_public_table_is_an_asset(definitions, catalog):
    assets = {k[1] for k in public_deps(definitions) if len(k) == 2}
    assert catalog["tables"] - assets == set(), "tables without an asset"
    assert assets - catalog["tables"] == set(), "assets without a table"


def test_asset_deps_equal_fk_graph(definitions, catalog):
    """Each FK edge child.column -> parent is a dependency of the asset that writes the column:
    the table's own asset, or (for a deferred column) the remap asset keyed by the column.
    Self-references are resolved inside the loader and create no dependency."""
    specs = all_tables()
    expected: dict[tuple[str, ...], set[tuple[str, ...]]] = {}
    for child, column, parent in catalog["fks"]:
        if child == parent:
            assert specs[child][1].column(column).deferred, f"self-reference {child}.{column} must be deferred"
            continue
        deferred = specs[child][1].column(column).deferred
        owner = ("public", child, column) if deferred else ("public", child)
        expected.setdefault(owner, set()).add(("public", parent))
        if deferred:
            expected[owner].add(("public", child))
    actual = public_deps(definitions)
    for key in actual:
        expected.setdefault(key, set())
    assert actual == expected


def test_spec_columns_match_catalog(catalog):
    cols: dict[str, dict[str, tuple[str, bool]]] = {}
    for table, column, dtype, not_null in catalog["columns"]:
        cols.setdefault(table, {})[column] = (dtype, not_null)
    for table, (loader, spec) in all_tables().items():
        assert set(spec.column_names) == set(cols[table]), table
        for c in spec.columns:
            dtype, not_null = cols[table][c.name]
            assert dtype in c.kind.pg_types, f"{table}.{c.name}: catalog {dtype}, spec {c.kind.pg_types}"
            assert c.required == not_null or c.deferred, f"{table}.{c.name}: NOT NULL {not_null}, required {c.required}"


def test_enum_values_match_catalog(catalog):
    for _, (_, spec) in all_tables().items():
        for c in spec.columns:
            if isinstance(c.kind, Enum):
                assert tuple(catalog["enums"][c.kind.pg_type]) == c.kind.values, c.kind.pg_type
