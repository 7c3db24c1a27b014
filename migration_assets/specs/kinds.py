"""Column kinds: how one BSON value becomes one PostgreSQL value, and how both sides of the
migration render that value canonically for checksums.

Each kind has three independent faces:

* ``coerce(value)``: BSON value -> Python value for COPY, or raises :class:`Reject`.
* ``canon_source(value)``: the canonical text of the *source* value, computed straight from
  the BSON value (not from ``coerce``), so a coercion bug shows up as a checksum mismatch.
* ``canon_sql(expr)``: SQL producing the same canonical text from the loaded column.

Canonical texts: ``z`` is NULL; strings are length-prefixed (``s5:hello``) so no separator
can be forged; numbers are ``n`` + the plain decimal without trailing zeros; timestamps are
``d`` + epoch milliseconds; references are ``r`` + the referenced document's legacy id.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from bson import Decimal128, ObjectId
from bson.datetime_ms import DatetimeMS
from bson.int64 import Int64

from migration_assets.specs.ids import new_id

NULL = "z"
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
_MS = dt.timedelta(milliseconds=1)


class Reject(Exception):
    """A source value that cannot be mapped; the document goes to quarantine."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def type_name(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, Decimal128):
        return "decimal128"
    if isinstance(value, ObjectId):
        return "objectId"
    if isinstance(value, (dt.datetime, DatetimeMS)):
        return "date"
    return type(value).__name__


# --- the canonical text format: defined here once, used by every source-side renderer ------

def canon_str(s: str) -> str:
    return f"s{len(s)}:{s}"


def canon_int(i: int) -> str:
    return f"n{i}"


def canon_bool(b: bool) -> str:
    return "t" if b else "f"


def canon_ms(ms: int) -> str:
    """A timestamp as epoch milliseconds."""
    return f"d{ms}"


def canon_ref(legacy: str) -> str:
    """A reference, as the referenced document's legacy id."""
    return f"r{legacy}"


def canon_decimal(d: Decimal) -> str:
    if d == 0:
        return "n0"
    return "n" + format(d.normalize(), "f")


# Decimal128 read from its bits (the public BID encoding), about five times cheaper than
# ``to_decimal()``; anything unusual (infinities, NaNs, huge coefficients or exponents) is
# left to pymongo.
_D128_SPECIAL = 0x6000000000000000
_D128_MAX_COEFFICIENT = 10**34 - 1
NORMALIZE_DIGITS = 10**28  # Decimal.normalize() rounds beyond the default 28 digits


def d128_parts(value: Decimal128) -> tuple[int, int, int] | None:
    """(sign, coefficient, exponent) of a finite Decimal128, None for anything unusual."""
    bits = int.from_bytes(value.bid, "little")
    high = bits >> 64
    if high & _D128_SPECIAL == _D128_SPECIAL:
        return None
    coefficient = bits & ((1 << 113) - 1)
    if coefficient > _D128_MAX_COEFFICIENT:
        return None
    exponent = ((high & 0x7FFF800000000000) >> 49) - 6176
    if not -200 <= exponent <= 200:
        return None
    return (1 if high >> 63 else 0), coefficient, exponent


def normalized(coefficient: int, exponent: int) -> tuple[int, int]:
    """Trailing zeros moved from the coefficient into the exponent."""
    if coefficient == 0:
        return 0, 0
    while coefficient % 10 == 0:
        coefficient //= 10
        exponent += 1
    return coefficient, exponent


def canon_decimal128(value: Decimal128) -> str:
    """``canon_decimal(value.to_decimal())``, from the bits."""
    parts = d128_parts(value)
    if parts is None or parts[1] >= NORMALIZE_DIGITS:
        return canon_decimal(value.to_decimal())
    sign, coefficient, exponent = parts
    c, e = normalized(coefficient, exponent)
    if c == 0:
        return "n0"
    digits = str(c)
    if e >= 0:
        text = digits + "0" * e
    else:
        digits = digits.rjust(1 - e, "0")
        text = digits[:e] + "." + digits[e:]
    return ("n-" if sign else "n") + text


def canon_number(value: Any) -> str:
    """Canonical text of any BSON number (int, Int64, double, Decimal128)."""
    if isinstance(value, Decimal128):
        return canon_decimal128(value)
    if isinstance(value, float):
        return canon_decimal(Decimal(repr(value)))
    return canon_int(int(value))


def _number(value: Any) -> Any:
    """A BSON number (int, Int64, double, Decimal128), or the rejection the transform gives."""
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal128)):
        raise Reject("wrong_type", f"expected a number, got {type_name(value)}")
    return value


def _sql_str(expr: str) -> str:
    return f"coalesce('s' || length({expr}) || ':' || {expr}, '{NULL}')"


def _check_text(value: str, what: str = "string") -> str:
    if "\x00" in value:
        raise Reject("nul_byte", f"{what} contains a NUL byte, which PostgreSQL text cannot store")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise Reject("invalid_unicode", f"{what} contains a lone surrogate (not valid UTF-8)") from None
    return value


class Kind:
    """Base class; subclasses set ``name`` and ``pg_types`` (accepted catalog type names)."""

    name = "kind"
    pg_types: tuple[str, ...] = ()
    bson_types: tuple[str, ...] = ()

    def coerce(self, value: Any) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def canon_source(self, value: Any) -> str:  # pragma: no cover - abstract
        raise NotImplementedError

    def canon_sql(self, expr: str) -> str:  # pragma: no cover - abstract
        raise NotImplementedError

    def describe(self) -> str:
        return self.name


@dataclass(frozen=True)
class Text(Kind):
    name = "text"
    pg_types = ("text",)
    bson_types = ("string",)

    def coerce(self, value):
        if not isinstance(value, str):
            raise Reject("wrong_type", f"expected a string, got {type_name(value)}")
        return _check_text(value)

    def canon_source(self, value):
        if value is None:
            return NULL
        if not isinstance(value, str):
            raise Reject("wrong_type", f"expected a string, got {type_name(value)}")
        return canon_str(value)

    def canon_sql(self, expr):
        return _sql_str(expr)


@dataclass(frozen=True)
class Enum(Text):
    """A string restricted to the values of a PostgreSQL enum type."""

    pg_type: str = ""
    values: tuple[str, ...] = ()
    name = "enum"
    bson_types = ("string",)

    @property
    def pg_types(self):  # type: ignore[override]
        return (self.pg_type,)

    def coerce(self, value):
        value = super().coerce(value)
        if value not in self.values:
            raise Reject("unknown_enum", f"{value!r} is not a {self.pg_type} value {list(self.values)}")
        return value

    def canon_sql(self, expr):
        return _sql_str(f"{expr}::text")

    def describe(self):
        return f"enum {self.pg_type}"


INT_BOUNDS = {"smallint": 2**15, "integer": 2**31, "bigint": 2**63}


@dataclass(frozen=True)
class Int(Kind):
    pg_type: str = "integer"
    name = "int"
    bson_types = ("int", "long", "double (integral)")

    @property
    def pg_types(self):  # type: ignore[override]
        return (self.pg_type,)

    @property
    def bounds(self) -> tuple[int, int]:
        """[lo, hi) of the PostgreSQL type."""
        bound = INT_BOUNDS[self.pg_type]
        return -bound, bound

    def coerce(self, value):
        if isinstance(value, bool) or not isinstance(value, (int, float, Decimal128)):
            raise Reject("wrong_type", f"expected a number, got {type_name(value)}")
        if isinstance(value, Decimal128):
            value = value.to_decimal()
            if not value.is_finite() or value != value.to_integral_value():
                raise Reject("not_integral", f"{value} is not an integer")
        elif isinstance(value, float):
            if not math.isfinite(value):
                raise Reject("non_finite_number", f"{value} is not a finite number")
            if not value.is_integer():
                raise Reject("not_integral", f"{value!r} is not an integer")
        result = int(value)
        lo, hi = self.bounds
        if not lo <= result < hi:
            raise Reject("out_of_range", f"{result} does not fit {self.pg_type}")
        return result

    def canon_source(self, value):
        return NULL if value is None else canon_number(_number(value))

    def canon_sql(self, expr):
        return f"coalesce('n' || {expr}::text, '{NULL}')"

    def describe(self):
        return self.pg_type


@dataclass(frozen=True)
class Numeric(Kind):
    """Exact decimal money. Values that PostgreSQL would round are rejected, not rounded."""

    precision: int = 38
    scale: int = 18
    name = "numeric"
    pg_types = ("numeric",)
    bson_types = ("decimal", "int", "long", "double")

    def coerce(self, value):
        if isinstance(value, bool) or not isinstance(value, (int, float, Decimal128, Int64)):
            raise Reject("wrong_type", f"expected a number, got {type_name(value)}")
        if isinstance(value, Decimal128):
            d = value.to_decimal()
        elif isinstance(value, float):
            if not math.isfinite(value):
                raise Reject("non_finite_number", f"{value} is not a finite number")
            d = Decimal(repr(value))
        else:
            d = Decimal(int(value))
        if not d.is_finite():
            raise Reject("non_finite_number", f"{d} is not a finite number")
        sign, digits, exponent = d.normalize().as_tuple()
        frac = max(0, -exponent)
        whole = max(0, len(digits) + exponent)
        if frac > self.scale or whole > self.precision - self.scale:
            raise Reject(
                "precision_loss",
                f"{d} does not fit numeric({self.precision},{self.scale}) without rounding",
            )
        return d

    def canon_source(self, value):
        return NULL if value is None else canon_number(_number(value))

    def canon_sql(self, expr):
        return f"coalesce('n' || trim_scale({expr})::text, '{NULL}')"

    def describe(self):
        return f"numeric({self.precision},{self.scale})"


@dataclass(frozen=True)
class Bool(Kind):
    name = "bool"
    pg_types = ("boolean",)
    bson_types = ("bool",)

    def coerce(self, value):
        if not isinstance(value, bool):
            raise Reject("wrong_type", f"expected a boolean, got {type_name(value)}")
        return value

    def canon_source(self, value):
        if value is None:
            return NULL
        if not isinstance(value, bool):
            raise Reject("wrong_type", f"expected a boolean, got {type_name(value)}")
        return canon_bool(value)

    def canon_sql(self, expr):
        # CASE WHEN NULL falls to ELSE, so NULL is tested first.
        return f"CASE WHEN {expr} IS NULL THEN '{NULL}' WHEN {expr} THEN 't' ELSE 'f' END"


def epoch_ms(value: dt.datetime) -> int:
    return (value - EPOCH) // _MS


@dataclass(frozen=True)
class Timestamp(Kind):
    name = "timestamp"
    pg_types = ("timestamp with time zone",)
    bson_types = ("date",)

    def coerce(self, value):
        if isinstance(value, DatetimeMS):
            raise Reject("date_out_of_range", f"date {value!r} is outside years 1..9999")
        if not isinstance(value, dt.datetime):
            raise Reject("wrong_type", f"expected a date, got {type_name(value)}")
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.timezone.utc)
        return value

    def canon_source(self, value):
        if value is None:
            return NULL
        if isinstance(value, DatetimeMS):
            return canon_ms(int(value))
        if not isinstance(value, dt.datetime):
            raise Reject("wrong_type", f"expected a date, got {type_name(value)}")
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.timezone.utc)
        return canon_ms(epoch_ms(value))

    def canon_sql(self, expr):
        return f"coalesce('d' || floor(extract(epoch FROM {expr}) * 1000)::bigint::text, '{NULL}')"


@dataclass(frozen=True)
class TextArray(Kind):
    name = "text[]"
    pg_types = ("text[]",)
    bson_types = ("array<string>",)

    def coerce(self, value):
        if not isinstance(value, list):
            raise Reject("wrong_type", f"expected an array, got {type_name(value)}")
        for item in value:
            if not isinstance(item, str):
                raise Reject("wrong_type", f"expected an array of strings, found {type_name(item)}")
            _check_text(item, "array element")
        return list(value)

    def canon_source(self, value):
        if value is None:
            return NULL
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise Reject("wrong_type", f"expected an array of strings, got {type_name(value)}")
        return "[" + "".join(canon_str(v) for v in value) + "]"

    def canon_sql(self, expr):
        inner = (
            f"(SELECT string_agg('s' || length(x) || ':' || x, '' ORDER BY o) "
            f"FROM unnest({expr}) WITH ORDINALITY AS u(x, o))"
        )
        return f"CASE WHEN {expr} IS NULL THEN '{NULL}' ELSE '[' || coalesce({inner}, '') || ']' END"


def to_json_value(value: Any, path: str = "") -> Any:
    """BSON value -> a JSON-compatible value (ObjectId -> hex, date -> ISO-8601, decimals exact)."""
    if value is None or isinstance(value, (bool, str)):
        if isinstance(value, str):
            _check_text(value, f"JSON string at {path or '$'}")
        return value
    if isinstance(value, Decimal128):
        d = value.to_decimal()
        if not d.is_finite():
            raise Reject("non_finite_number", f"{d} at {path or '$'} is not a finite number")
        return d
    if isinstance(value, float):
        if not math.isfinite(value):
            raise Reject("non_finite_number", f"{value} at {path or '$'} is not a finite number")
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, ObjectId):
        return str(value)
    if isinstance(value, dt.datetime):
        return iso_ms(value)
    if isinstance(value, DatetimeMS):
        raise Reject("date_out_of_range", f"date at {path or '$'} is outside years 1..9999")
    if isinstance(value, list):
        return [to_json_value(v, f"{path}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            _check_text(k, f"JSON key at {path or '$'}")
            out[k] = to_json_value(v, f"{path}.{k}" if path else k)
        return out
    raise Reject("wrong_type", f"{type_name(value)} at {path or '$'} has no JSON form")


def iso_ms(value: dt.datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    value = value.astimezone(dt.timezone.utc)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def dumps_json(value: Any) -> str:
    """Serialize a ``to_json_value`` result; Decimals are written as exact JSON numbers."""
    import json

    if isinstance(value, Decimal):
        return canon_decimal(value)[1:]
    if isinstance(value, float):
        return canon_decimal(Decimal(repr(value)))[1:]
    if isinstance(value, list):
        return "[" + ",".join(dumps_json(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(k)}:{dumps_json(v)}" for k, v in value.items()) + "}"
    return json.dumps(value)


def canon_json_source(value: Any) -> str:
    """Canonical text of a BSON value seen as JSON; mirrors ``migration.canon_jsonb``."""
    if value is None:
        return NULL
    if isinstance(value, bool):
        return canon_bool(value)
    if isinstance(value, (int, float, Decimal128)):
        return canon_number(value)
    if isinstance(value, str):
        return canon_str(value)
    if isinstance(value, ObjectId):
        return canon_str(str(value))
    if isinstance(value, dt.datetime):
        return canon_str(iso_ms(value))
    if isinstance(value, list):
        return "[" + "".join(canon_json_source(v) for v in value) + "]"
    if isinstance(value, dict):
        keys = sorted(value, key=lambda k: k.encode("utf-8"))
        return "{" + "".join(canon_str(k) + canon_json_source(value[k]) for k in keys) + "}"
    return canon_str(repr(value))


@dataclass(frozen=True)
class Json(Kind):
    name = "json"
    pg_types = ("jsonb",)
    bson_types = ("any",)

    def coerce(self, value):
        return to_json_value(value)

    def canon_source(self, value):
        # A missing field is SQL NULL; an explicit BSON null inside is JSON null. A value with
        # no JSON form (binary, regex, NaN, ...) is rejected, as the transform rejects it.
        if value is None:
            return NULL
        to_json_value(value)
        return canon_json_source(value)

    def canon_sql(self, expr):
        return f"coalesce(migration.canon_jsonb({expr}), '{NULL}')"


def legacy_hex(value: Any) -> str:
    """The legacy id text of a reference: an ObjectId, or a 24-hex string older code stored."""
    if isinstance(value, ObjectId):
        return str(value)
    if isinstance(value, str) and len(value) == 24:
        try:
            return str(ObjectId(value))
        except Exception:
            pass
    raise Reject("wrong_type", f"expected an ObjectId reference, got {type_name(value)} {value!r:.40}")


@dataclass(frozen=True)
class LegacyRef:
    """A reference resolved by the loader into a uuid: ``table`` row with this legacy id."""

    table: str
    legacy_id: str


@dataclass(frozen=True)
class Ref(Kind):
    """A foreign key: an ObjectId in Mongo, the referenced row's uuid in PostgreSQL."""

    table: str = ""
    name = "ref"
    pg_types = ("uuid",)
    bson_types = ("objectId",)

    def coerce(self, value):
        return LegacyRef(self.table, legacy_hex(value))

    def canon_source(self, value):
        return NULL if value is None else canon_ref(legacy_hex(value))

    def canon_sql(self, expr):  # the caller joins the referenced table; expr is its legacy id
        return f"coalesce('r' || {expr}, '{NULL}')"

    def describe(self):
        return f"ref -> {self.table}"


@dataclass(frozen=True)
class RowId(Ref):
    """The row's own uuid, derived from its legacy id; not part of the checksum."""

    name = "id"

    def describe(self):
        return "uuid (from _id)"


@dataclass(frozen=True)
class DerivedId(RowId):
    """The own uuid of a row that has no legacy id (an embedded object: zero or one row per
    document): uuid5 of ``table`` and the enclosing document's ``_id``, so it is deterministic
    without a lookup. Not part of the checksum."""

    name = "derived_id"

    def coerce(self, value):
        return new_id(self.table, legacy_hex(value))

    def describe(self):
        return "uuid (from the document's _id)"


@dataclass(frozen=True)
class LegacyId(Kind):
    """``legacy_object_id``: the document's ``_id`` as 24 hex characters."""

    name = "legacy_id"
    pg_types = ("text",)
    bson_types = ("objectId",)

    def coerce(self, value):
        if not isinstance(value, ObjectId):
            raise Reject("invalid_id", f"_id must be an ObjectId, got {type_name(value)}")
        return str(value)

    def canon_source(self, value):
        return canon_str(legacy_hex(value))

    def canon_sql(self, expr):
        return _sql_str(expr)


# Shared instances for specs.
TEXT = Text()
BOOL = Bool()
INT = Int("integer")
SMALLINT = Int("smallint")
BIGINT = Int("bigint")
MONEY = Numeric(38, 18)
TIMESTAMP = Timestamp()
JSON = Json()
TEXT_ARRAY = TextArray()
LEGACY_ID = LegacyId()
