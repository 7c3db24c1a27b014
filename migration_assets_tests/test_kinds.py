"""Pure unit tests of column kinds: coercion and rejection reasons."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from bson import Decimal128, ObjectId
from bson.datetime_ms import DatetimeMS

from migration_assets.specs.enums import CURRENCY
from migration_assets.specs.kinds import (
    BOOL,
    INT,
    JSON,
    LEGACY_ID,
    MONEY,
    SMALLINT,
    TEXT,
    TEXT_ARRAY,
    TIMESTAMP,
    LegacyRef,
    Ref,
    Reject,
    canon_json_source,
    dumps_json,
)

pytestmark = pytest.mark.unit


def reject_code(kind, value) -> str:
    with pytest.raises(Reject) as e:
        kind.coerce(value)
    return e.value.code


def test_text():
    assert TEXT.coerce("héllo 🎁") == "héllo 🎁"
    assert reject_code(TEXT, 5) == "wrong_type"
    assert reject_code(TEXT, "a\x00b") == "nul_byte"
    assert reject_code(TEXT, "bad \ud800 surrogate") == "invalid_unicode"


def test_int_accepts_integral_doubles_and_rejects_the_rest():
    assert INT.coerce(3) == 3
    assert INT.coerce(3.0) == 3  # Mongoose Number is a BSON double
    assert reject_code(INT, 3.5) == "not_integral"
    assert reject_code(INT, "3") == "wrong_type"
    assert reject_code(INT, True) == "wrong_type"
    assert reject_code(INT, float("nan")) == "non_finite_number"
    assert reject_code(INT, 2**31) == "out_of_range"
    assert reject_code(SMALLINT, 40000) == "out_of_range"


def test_money_is_exact_or_rejected():
    assert MONEY.coerce(Decimal128("12.50")) == Decimal("12.50")
    assert MONEY.coerce(0.1) == Decimal("0.1")
    assert MONEY.coerce(7) == Decimal(7)
    assert MONEY.coerce(Decimal128("1.000000000000000000000")) == Decimal("1.000000000000000000000")
    assert reject_code(MONEY, Decimal128("0.0000000000000000001")) == "precision_loss"  # 19 decimals
    assert reject_code(MONEY, Decimal128("1E+25")) == "precision_loss"  # 26 integer digits
    assert reject_code(MONEY, Decimal128("NaN")) == "non_finite_number"
    assert reject_code(MONEY, Decimal128("Infinity")) == "non_finite_number"
    assert reject_code(MONEY, float("inf")) == "non_finite_number"
    assert reject_code(MONEY, "12.50") == "wrong_type"


def test_timestamps():
    before_1970 = dt.datetime(1950, 5, 1, tzinfo=dt.timezone.utc)
    assert TIMESTAMP.coerce(before_1970) == before_1970
    assert TIMESTAMP.canon_source(before_1970) == "d" + str(int(before_1970.timestamp() * 1000))
    assert reject_code(TIMESTAMP, DatetimeMS(2**62)) == "date_out_of_range"
    assert reject_code(TIMESTAMP, "2024-01-01") == "wrong_type"


def test_enum_bool_arrays_refs():
    assert CURRENCY.coerce("TRY") == "TRY"
    assert reject_code(CURRENCY, "DOGE") == "unknown_enum"
    assert reject_code(BOOL, 1) == "wrong_type"
    assert TEXT_ARRAY.coerce(["a", "b"]) == ["a", "b"]
    assert reject_code(TEXT_ARRAY, ["a", 1]) == "wrong_type"
    oid = ObjectId()
    assert Ref("users").coerce(oid) == LegacyRef("users", str(oid))
    assert Ref("users").coerce(str(oid)) == LegacyRef("users", str(oid))  # legacy string references
    assert reject_code(Ref("users"), 42) == "wrong_type"
    assert reject_code(LEGACY_ID, "not-an-objectid") == "invalid_id"


def test_json_is_exact_and_canonical():
    value = {"b": [1, 2.5, Decimal128("0.10")], "a": {"z": None, "y": True}, "c": "x"}
    coerced = JSON.coerce(value)
    assert dumps_json(coerced) == '{"b":[1,2.5,0.1],"a":{"z":null,"y":true},"c":"x"}'
    # Key order does not matter to the canonical form; numbers are trimmed.
    assert canon_json_source(value) == canon_json_source({"c": "x", "a": {"y": True, "z": None}, "b": [1, 2.5, Decimal128("0.1")]})
    assert reject_code(JSON, {"x": float("nan")}) == "non_finite_number"
    assert reject_code(JSON, {"x": "nul\x00"}) == "nul_byte"
