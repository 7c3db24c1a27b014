"""The compiled transform: each :class:`LoaderSpec` turned once into straight-line Python.

Profiling the reference (bench/README.md) put the time in generic interpretation of the
specs (``resolve_source``/``get_path``/``isinstance`` per column per row), tz-aware BSON
date decoding, ``Decimal128.to_decimal`` and scanning every value for references. The
compiled code removes exactly those costs: it reads each column's path with ``dict.get``,
converts only values of the expected type, decodes dates as naive UTC (made aware only
where a Timestamp column takes them), unpacks Decimal128 from its bits, and *bails out*
(:class:`~migration_assets.transform.codegen.Bail`) on anything else. A document that bails
goes through the reference unchanged, so rejections and their wording are the reference's.
``test_compiled.py`` proves both give the same rows, rejections and checksums.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import bson
from bson import Decimal128
from bson.codec_options import CodecOptions, DatetimeConversion

from migration_assets.source.documents import DECODE_OPTIONS, raw_id_hex
from migration_assets.specs import kinds as K
from migration_assets.specs.ids import cached_new_id
from migration_assets.specs.kinds import LegacyRef
from migration_assets.specs.model import Column, LoaderSpec
from migration_assets.transform.codegen import Bail, base_env, build, default_lines, row_loop, value_expr
from migration_assets.transform.reference import duplicate_key_problems
from migration_assets.transform.results import Deferred, DocResult

# Naive datetimes are UTC wall times; out-of-range dates still come back as DatetimeMS.
LOAD_OPTIONS = CodecOptions(tz_aware=False, datetime_conversion=DatetimeConversion.DATETIME_AUTO)


def coerce_money(kind: K.Numeric, value: Any) -> Any:
    """``Numeric.coerce`` for Decimal128 (from its bits); anything else goes to it, and a
    value it would reject bails (the reference words the rejection)."""
    if type(value) is Decimal128:
        parts = K.d128_parts(value)
        if parts is None or parts[1] >= K.NORMALIZE_DIGITS:
            return kind.coerce(value)
        sign, coefficient, exponent = parts
        c, e = K.normalized(coefficient, exponent)
        frac = max(0, -e)
        whole = max(0, len(str(c)) + e)
        if frac > kind.scale or whole > kind.precision - kind.scale:
            raise Bail
        return Decimal(f"{'-' if sign else ''}{coefficient}E{exponent}")
    return kind.coerce(value)


def utf8_ok(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def coerce_lines(column: Column, ci: str, env: dict[str, Any]) -> list[str]:
    """Lines turning ``v`` (not None) into the COPY value exactly as ``kind.coerce``, or bailing."""
    kind = column.kind
    env[f"kind_{ci}"] = kind
    kt = type(kind)
    if kt is K.Text:
        return ["if type(v) is not str or '\\x00' in v or not (v.isascii() or utf8_ok(v)): raise Bail"]
    if kt is K.Enum:
        env[f"enum_{ci}"] = frozenset(kind.values)
        return [f"if type(v) is not str or v not in enum_{ci}: raise Bail"]
    if kt is K.LegacyId:
        return ["if type(v) is not ObjectId: raise Bail", "v = v.binary.hex()"]
    if kt is K.Ref or kt is K.RowId:
        env[f"reftable_{ci}"] = kind.table
        return [f"v = LegacyRef(reftable_{ci}, v.binary.hex()) if type(v) is ObjectId else kind_{ci}.coerce(v)"]
    if kt is K.Int:
        lo, hi = kind.bounds
        return [f"if type(v) is not int or not {lo} <= v < {hi}: v = kind_{ci}.coerce(v)"]
    if kt is K.Numeric:
        return [f"v = coerce_money(kind_{ci}, v)"]
    if kt is K.Bool:
        return ["if type(v) is not bool: raise Bail"]
    if kt is K.Timestamp:
        return ["if type(v) is datetime: v = v.replace(tzinfo=UTC) if v.tzinfo is None else v",
                f"else: v = kind_{ci}.coerce(v)"]
    return [f"v = kind_{ci}.coerce(v)"]


def transform_source(loader: LoaderSpec, env: dict[str, Any], *, fresh: bool = False) -> str:
    """``fresh``: the loader's tables were empty when the load started, so references to
    its own rows are their uuid5 already (what resolution would give them)."""
    env.update({"LegacyRef": LegacyRef, "Deferred": Deferred, "DocResult": DocResult,
                "coerce_money": coerce_money, "utf8_ok": utf8_ok, "own_id": cached_new_id})
    out = ["def transform(doc, ctx, legacy_id):", "    rows = {}", "    deferred = []"]
    own_tables = set(loader.table_names)
    for ti, table in enumerate(loader.tables):
        out.append(f"    out = rows[{table.table!r}] = []")
        out += ["    " + h for h in row_loop(table, env, strict=True)]
        body = ["own = None"]
        names = []
        for cj, column in enumerate(table.columns):
            ci = f"{ti}_{cj}"
            names.append(f"x{cj}")
            body.append(f"v = {value_expr(column, ci, env, table.scalar_elements)}")
            body += default_lines(column, ci, env)
            body.append("if v is MISSING or v is None:")
            body.append("    raise Bail" if column.required else "    v = None")
            body.append("else:")
            own_ref = fresh and type(column.kind) in (K.Ref, K.RowId) and column.kind.table in own_tables
            if own_ref and not column.deferred:
                env[f"reftable_{ci}"] = column.kind.table
                env[f"kind_{ci}"] = column.kind
                body.append(f"    if type(v) is not ObjectId: v = kind_{ci}.coerce(v); h = v.legacy_id")
                body.append("    else: h = v.binary.hex()")
                if column.name == "id":
                    body.append(f"    own = LegacyRef(reftable_{ci}, h)")
                body.append(f"    v = own_id(reftable_{ci}, h)")
            else:
                body += ["    " + line for line in coerce_lines(column, ci, env)]
            if column.name == "id" and not own_ref:
                body.append("    if type(v) is LegacyRef: own = v")
            if column.deferred:
                env[f"table_{ti}"] = table.table
                env[f"colname_{ci}"] = column.name
                body.append(f"    deferred.append(Deferred(table_{ti}, colname_{ci}, "
                            f"own or LegacyRef(table_{ti}, legacy_id), v))")
                body.append("    v = None")
            body.append(f"x{cj} = v")
        body.append(f"out.append([{', '.join(names)}])")
        out += ["        " + b for b in body]
    out.append("    return DocResult(legacy_id, rows, [], deferred)")
    return "\n".join(out)


def uses_compute(loader: LoaderSpec) -> bool:
    return any(c.compute is not None for t in loader.tables for c in t.columns)


@dataclass
class CompiledLoader:
    loader: LoaderSpec
    transform: Callable[[Mapping[str, Any], Mapping[str, Any], str], DocResult]
    transform_fresh: Callable[[Mapping[str, Any], Mapping[str, Any], str], DocResult]
    load_options: CodecOptions
    source: dict[str, str] = field(default_factory=dict)  # generated code, by variant (for reading)

    def try_document(self, raw: bytes, ctx: Mapping[str, Any], excluded: Mapping[str, Any], *,
                     fresh: bool) -> DocResult | None:
        """The document's rows, or None when the reference must handle it."""
        legacy_id = raw_id_hex(raw)
        if legacy_id is None or legacy_id in excluded:
            return None
        try:
            doc = bson.decode(raw, self.load_options)
            result = (self.transform_fresh if fresh else self.transform)(doc, ctx, legacy_id)
        except Exception:  # Bail, Reject, invalid BSON: the reference names the problem
            return None
        for table, rows in result.rows.items():
            if len(rows) > 1 and duplicate_key_problems(self.loader.table(table), rows):
                return None  # the reference rejects it as duplicate_key
        result.raw = raw
        return result


_compiled: dict[str, CompiledLoader] = {}


def compile_loader(loader: LoaderSpec) -> CompiledLoader:
    cached = _compiled.get(loader.name)
    if cached is not None and cached.loader is loader:
        return cached
    env_t, env_f = base_env(), base_env()
    tsrc = transform_source(loader, env_t)
    fsrc = transform_source(loader, env_f, fresh=True)
    compiled = CompiledLoader(
        loader=loader,
        transform=build(tsrc, env_t, "transform", f"{loader.name} transform"),
        transform_fresh=build(fsrc, env_f, "transform", f"{loader.name} transform (fresh)"),
        # Compute columns see the document as the reference decodes it (tz-aware dates).
        load_options=DECODE_OPTIONS if uses_compute(loader) else LOAD_OPTIONS,
        source={"transform": tsrc, "transform_fresh": fsrc},
    )
    _compiled[loader.name] = compiled
    return compiled

