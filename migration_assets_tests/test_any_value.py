"""Any BSON value in any mapped field goes through every path of the platform without raising
(the pure paths here; ``test_any_value_loads.py`` loads them into PostgreSQL, from a dump and
through the live server).

For every spec, documents of its collection (the generator's, the shape the spec expects) get
one field replaced by any BSON value, or removed (``fixtures/any_bson.py``). For each:

* the reference transform returns rows or a rejection, and the compiled transform the same;
* the source side of the checksums (compiled and reference) renders its rows, or says the
  document cannot map (``Unmappable``): only ever for a document the transform rejects;
* the census takes it, and a scaffold drafted from that census is Python that compiles.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
import os

import pytest
from bson import Binary, Code, Decimal128, MaxKey, MinKey, ObjectId, Regex, Timestamp
from bson.datetime_ms import DatetimeMS
from bson.int64 import Int64
from hypothesis import HealthCheck, Phase, find, given, settings
from hypothesis import strategies as st

from migration_assets.generator import generate
from migration_assets.generator.writers import write_dump
from migration_assets.source.census import Census
from migration_assets.source.documents import decode
from migration_assets.source.dump import DumpSource
from migration_assets.source.scaffold import draft
from migration_assets.specs.registry import all_loaders
from migration_assets.transform.context import needs_context, prepare_context
from migration_assets.transform.document import DocumentTransform, reference_document
from migration_assets.transform.results import Rejected
from migration_assets.verify.canonical import Unmappable, canonical_rows
from migration_assets.verify.compiled_canon import compile_canon
from migration_assets_tests.fixtures.any_bson import MARKER, Mutation, encode, mutate, mutations, values

pytestmark = pytest.mark.unit

LOADERS = all_loaders()
EXAMPLES = int(os.environ.get("ANY_VALUE_EXAMPLES", "40"))  # per loader


@functools.cache
def world():
    return generate(seed=11, scale=0.2)


def base_docs(loader):
    docs = world().docs.get(loader.collection) or []
    assert docs, f"the generator makes no {loader.collection}"
    return docs


def context(loader, docs, tmp_path_factory):
    if not needs_context(loader):
        return {}
    d = tmp_path_factory.mktemp("ctx")
    write_dump(d, "marketplace", {loader.collection: docs})
    return prepare_context(loader, DumpSource(d, "marketplace"))


@pytest.mark.parametrize("loader", LOADERS, ids=[l.name for l in LOADERS])
def test_any_value_in_any_field_goes_through_every_pure_path(loader, tmp_path_factory):
    docs = base_docs(loader)
    seen = {"cases": 0, "rejected": 0}

    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(st.integers(0, len(docs) - 1), mutations(loader))
    def one(i: int, m: Mutation):
        doc = mutate(docs[i], m)
        raw = encode(doc)
        ctx = context(loader, [*docs[:i], doc, *docs[i + 1:]], tmp_path_factory)
        ref = reference_document(loader, raw, ctx)
        fast = DocumentTransform(loader, ctx, compiled=True)(raw)
        assert type(fast) is type(ref), m.describe()
        if isinstance(ref, Rejected):
            seen["rejected"] += 1
            assert [p["code"] for p in fast.problems] == [p["code"] for p in ref.problems], m.describe()
        else:
            assert fast.rows == ref.rows, m.describe()
        seen["cases"] += 1

        # the source side of the checksums: rows, or Unmappable for a document the transform rejects
        counts, totals = [0] * len(loader.tables), [0] * len(loader.tables)
        try:
            compile_canon(loader).add(raw, ctx, counts, totals)
            compiled_ok = True
        except Unmappable:
            compiled_ok = False
        try:
            decoded = decode(raw)
        except Exception:
            decoded = None
        if decoded is None:
            assert isinstance(ref, Rejected) and not compiled_ok, m.describe()
        else:
            try:
                rows = canonical_rows(loader, loader.tables, decoded, ctx)
                reference_ok = True
            except Unmappable:
                reference_ok = False
            assert compiled_ok == reference_ok, m.describe()
            if not isinstance(ref, Rejected):
                assert reference_ok, f"the transform loads it, the checksum cannot render it: {m.describe()}"
                assert counts == [len(rows[t.table]) for t in loader.tables], m.describe()

        # the census and a scaffold drafted from it
        census = Census()
        for d in docs[:20]:
            census.add(d, str(d["_id"]))
        if decoded is not None:
            census.add(decoded, "mutated")
        text = draft(loader.collection, loader.domain, census, name=f"draft_{loader.name}")
        compile(text, f"draft_{loader.name}.py", "exec")

    one()
    assert seen["cases"] == EXAMPLES


BSON_TYPES = {
    "string": lambda v: isinstance(v, str) and v != MARKER, "invalid UTF-8": lambda v: v == MARKER,
    "string with NUL": lambda v: isinstance(v, str) and "\x00" in v, "huge string": lambda v: isinstance(v, str) and len(v) > 100_000,
    "int32": lambda v: type(v) is int, "int64": lambda v: isinstance(v, Int64),
    "NaN": lambda v: isinstance(v, float) and math.isnan(v), "±Inf": lambda v: isinstance(v, float) and math.isinf(v),
    "-0.0": lambda v: isinstance(v, float) and v == 0 and math.copysign(1, v) < 0,
    "Decimal128 NaN": lambda v: isinstance(v, Decimal128) and v.to_decimal().is_nan(),
    "Decimal128 Inf": lambda v: isinstance(v, Decimal128) and v.to_decimal().is_infinite(),
    "Decimal128 1E+6000": lambda v: isinstance(v, Decimal128) and str(v) in ("1E+6000", "1E-6000"),
    "bool": lambda v: isinstance(v, bool), "null": lambda v: v is None,
    "date year 1": lambda v: isinstance(v, dt.datetime) and v.year == 1,
    "date year 9999": lambda v: isinstance(v, dt.datetime) and v.year == 9999,
    "date before 1970": lambda v: isinstance(v, dt.datetime) and 1 < v.year < 1970,
    "date beyond datetime": lambda v: isinstance(v, DatetimeMS),
    "ObjectId": lambda v: isinstance(v, ObjectId), "empty array": lambda v: v == [] and isinstance(v, list),
    "nested array": lambda v: isinstance(v, list) and any(isinstance(x, list) for x in v),
    "mixed array": lambda v: isinstance(v, list) and len({type(x) for x in v}) > 1,
    "empty object": lambda v: v == {} and isinstance(v, dict),
    "deep object": lambda v: isinstance(v, dict) and _depth(v) >= 4,
    "binary": lambda v: isinstance(v, Binary), "regex": lambda v: isinstance(v, Regex),
    "timestamp": lambda v: isinstance(v, Timestamp), "MinKey": lambda v: isinstance(v, MinKey),
    "MaxKey": lambda v: isinstance(v, MaxKey), "code": lambda v: isinstance(v, Code),
}


def _depth(v) -> int:
    return 1 + max((_depth(x) for x in v.values()), default=0) if isinstance(v, dict) else 0


@pytest.mark.filterwarnings("ignore:Generating overly large repr")  # the 200 kB string found
def test_the_values_cover_every_bson_type():
    """Every type the property tests promise is one ``values()`` generates. A fixed number of
    derandomized draws meets most; any it missed is searched for directly (``find``): which
    draws come out depends on the constants of the modules already imported, so on test order."""
    quiet = dict(derandomize=True, database=None, deadline=None, suppress_health_check=list(HealthCheck))
    seen: set[str] = set()

    @settings(max_examples=2000, **quiet)
    @given(values())
    def one(v):
        seen.update(k for k, is_kind in BSON_TYPES.items() if is_kind(v))

    one()
    for kind in sorted(BSON_TYPES.keys() - seen):
        found = find(values(), BSON_TYPES[kind], settings=settings(max_examples=5000, phases=[Phase.generate], **quiet))
        assert BSON_TYPES[kind](found)
