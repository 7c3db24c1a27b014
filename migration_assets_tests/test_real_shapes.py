"""The census and scaffold on collections the generator did not make (``fixtures/real_shapes.py``):
maps keyed by data collapse to one ``<key>`` path, and a draft stays within PostgreSQL's
limits and loads as definitions; a draft that would clash with a spec there is refused."""

from __future__ import annotations

import ast
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from migration_assets.cli.source import DraftRefused, validate_draft
from migration_assets.source.census import MAP_KEY, MAP_MIN_KEYS, Census
from migration_assets.source.scaffold import MAX_COLUMNS, MAX_IDENTIFIER, draft, quoted
from migration_assets_tests.fixtures.real_shapes import LONG_NAME, WIDE_FIELDS, customers

pytestmark = pytest.mark.unit

COLUMN = re.compile(r'^\s+Column\("([^"]+)", ([A-Za-z_]+[^,]*), "([^"]*)"', re.M)


def census_of(docs) -> Census:
    census = Census(examples={})
    for d in docs:
        census.add(d, str(d["_id"]))
    return census


def test_maps_keyed_by_data_collapse_to_one_path():
    docs = customers()
    paths = census_of(docs).paths
    # a handful of paths besides the 1,700 fields of ``attributes`` (fields, not a map: their
    # values have many shapes): not one per key of its maps
    wide = [p for p in paths if p.startswith("attributes.")]
    assert len(paths) - len(wide) < 60, sorted(set(paths) - set(wide))
    assert len({p.split(".")[1].removesuffix("[]") for p in wide}) == WIDE_FIELDS
    accounts = paths[f"tier_and_details.{MAP_KEY}"]
    assert accounts.distinct_keys == sum(len(d["tier_and_details"]) for d in docs)
    assert dict(paths[f"tier_and_details.{MAP_KEY}.tier"].types) == {"string": len(docs)}
    assert f"tier_and_details.{MAP_KEY}.benefits[]" in paths
    assert f"daily_logins.{MAP_KEY}" in paths  # keyed by dates
    assert paths[f"scores.{MAP_KEY}"].distinct_keys >= MAP_MIN_KEYS  # ordinary keys, many, one shape
    assert not any(re.search(r"[0-9a-f]{32}|\d{4}-\d{2}-\d{2}|game_\d", p) for p in paths)
    # GeoJSON, an integer array, a mixed-type field and deep nesting are paths as they are
    assert dict(paths["address.location.coordinates[]"].types) == {"double": len(docs)}
    assert set(paths["limit"].types) == {"int", "string", "null", "decimal"}
    assert "settings.ui.theme.colors.primary.alpha" in paths and "products[]" in paths


def test_a_draft_stays_within_postgres_limits_and_loads():
    text = draft("customers", "marketplace", census_of(customers()), name="customers_draft")
    columns = COLUMN.findall(text)
    names = [c[0] for c in columns]
    assert 0 < len(columns) <= MAX_COLUMNS and len(names) == len(set(names))
    assert all(len(n.encode()) <= MAX_IDENTIFIER for n in names)
    assert any(path == LONG_NAME for _, _, path in columns)  # its column name was cut, the path kept
    by_path = {path: (name, kind) for name, kind, path in columns}
    assert by_path["tier_and_details"][1] == "JSON" and by_path["attributes"][1] == "JSON"
    lines = {path: line for line in text.splitlines() for _, _, path in [*COLUMN.findall(line)]}
    assert "# review: a map keyed by data" in lines["tier_and_details"]
    assert "kept as one JSON column" in lines["attributes"]
    validate_draft(text, "marketplace", "customers_draft")  # loads as definitions beside every spec


def test_a_draft_that_names_what_a_spec_has_is_refused():
    census = census_of(customers(5))
    with pytest.raises(DraftRefused, match=r"loader 'users' \(auth/users.py\)"):
        validate_draft(draft("customers", "auth", census, name="users"), "auth", "users")
    with pytest.raises(DraftRefused, match="table 'categories'"):
        validate_draft(draft("customers", "content_social", census, name="categories"), "content_social",
                       "categories")


KEYS = {
    "ObjectId hex": st.binary(min_size=12, max_size=12).map(bytes.hex),
    "uuid": st.uuids().map(str),
    "uuid without dashes": st.uuids().map(lambda u: u.hex),
    "integer": st.integers(-10**12, 10**12).map(str),
    "date": st.dates().map(lambda d: d.isoformat()),
}


@pytest.mark.parametrize("kind", KEYS)
def test_any_map_keyed_by_ids_collapses(kind):
    """Whatever ids key a map, and however few there are, the census holds one path for it."""

    @settings(max_examples=30, derandomize=True, database=None, deadline=None)
    @given(st.lists(st.dictionaries(KEYS[kind], st.integers() | st.text(max_size=5), min_size=1, max_size=6),
                    min_size=1, max_size=5))
    def one(maps):
        census = Census()
        for i, m in enumerate(maps):
            census.add({"_id": i, "m": m}, str(i))
        assert {p for p in census.paths if p.startswith("m.")} == {f"m.{MAP_KEY}"}

    one()


@settings(max_examples=300, derandomize=True, database=None, deadline=None)
@given(st.text())
def test_any_field_name_is_a_python_string_literal_in_a_draft(name):
    assert ast.literal_eval(quoted(name)) == name and quoted(name)[0] == '"'
