"""The two canonical renderings agree: Python over source values == SQL over loaded values,
for every kind, checked against the real PostgreSQL."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from bson import Decimal128
from psycopg.types.json import Jsonb

from migration_assets.specs.kinds import BOOL, INT, JSON, MONEY, TEXT, TEXT_ARRAY, TIMESTAMP, dumps_json

pytestmark = pytest.mark.integration

CASES = [
    (TEXT, "text", ["", "a|b", "ünï 🎁 李", "s3:abc"]),
    (INT, "integer", [0, -5, 2**31 - 1, 7.0]),
    (MONEY, "numeric(38,18)", [Decimal128("0"), Decimal128("100.500"), Decimal128("-0.000000000000000001"),
                               0.1, 12345678901234567890, Decimal128("1.000000000000000000000")]),
    (BOOL, "boolean", [True, False]),
    (TIMESTAMP, "timestamptz", [dt.datetime(1969, 12, 31, 23, 59, 59, 999000, tzinfo=dt.timezone.utc),
                                dt.datetime(2024, 2, 29, 12, 0, 0, 1000, tzinfo=dt.timezone.utc),
                                dt.datetime(1, 1, 1, tzinfo=dt.timezone.utc),
                                dt.datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=dt.timezone.utc)]),
    (TEXT_ARRAY, "text[]", [[], ["a"], ["x|y", ""]]),
    (JSON, "jsonb", [{"b": 1, "a": [1.5, None, True, "s"]}, [1, 2], "str", 3, 1e20, {"é": {"z": 0.10}},
                     Decimal128("12.340")]),
]


@pytest.mark.parametrize("kind,pg_type,values", CASES, ids=[c[1] for c in CASES])
def test_python_and_sql_canonical_forms_agree(target_conn, kind, pg_type, values):
    for value in values:
        coerced = kind.coerce(value)
        param = Jsonb(coerced, dumps=dumps_json) if kind is JSON else coerced
        sql_text = target_conn.execute(f"SELECT {kind.canon_sql('v')} FROM (SELECT %s::{pg_type} AS v) s",
                                       [param]).fetchone()[0]
        assert sql_text == kind.canon_source(value), (pg_type, value)
    assert target_conn.execute(f"SELECT {kind.canon_sql('v')} FROM (SELECT NULL::{pg_type} AS v) s").fetchone()[0] \
        == kind.canon_source(None)


def test_money_canonical_ignores_scale(target_conn):
    assert MONEY.canon_source(Decimal128("1.10")) == MONEY.canon_source(1.1) == "n1.1"
    assert target_conn.execute("SELECT trim_scale(1.100::numeric)::text").fetchone()[0] == "1.1"
    assert MONEY.coerce(Decimal128("2.50")) == Decimal("2.5")
