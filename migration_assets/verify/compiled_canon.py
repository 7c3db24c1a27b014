"""The source side of the checksums, compiled: each loader's canonical row texts
(``canonical.source_rows``) as straight-line Python, hashed as they are made.

The canonical format itself comes from ``specs.kinds`` (its ``canon_*`` encoders); the
generated code only picks the encoder by the value's type and hands anything unusual to the
column kind's own ``canon_source``, or bails to the reference for the whole document.
Dates decode as epoch milliseconds where every hashed column allows it. Digests are sums,
so documents may be hashed in any order and in other processes (``digest_documents``).
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bson
from bson.codec_options import CodecOptions, DatetimeConversion

from migration_assets.source.census import Census
from migration_assets.source.documents import DECODE_OPTIONS, decode, raw_key
from migration_assets.specs import kinds as K
from migration_assets.specs.model import Column, LoaderSpec
from migration_assets.specs.registry import loader_named
from migration_assets.transform.codegen import base_env, build, default_lines, row_loop, value_expr
from migration_assets.transform.compiled import uses_compute
from migration_assets.verify.canonical import Unmappable, canonical_rows, hash60

# ObjectIds start with their creation second in hex: 4 characters = ~18-hour windows.
BUCKET_PREFIX = 4
# Checksums only need epoch milliseconds (canonical dates are "d<ms>").
CANON_OPTIONS = CodecOptions(datetime_conversion=DatetimeConversion.DATETIME_MS)


def canon_lines(column: Column, ci: str, env: dict[str, Any]) -> list[str]:
    """Lines setting ``c`` to ``kind.canon_source(v)`` (v: the value, None when missing)."""
    kind = column.kind
    env[f"kind_{ci}"] = kind
    kt = type(kind)
    generic = f"c = kind_{ci}.canon_source(v)"
    if kt in (K.Text, K.Enum):
        return ["if type(v) is str: c = canon_str(v)", "elif v is None: c = NULL", f"else: {generic}"]
    if kt is K.LegacyId:
        return ["if type(v) is ObjectId: c = canon_str(v.binary.hex())", f"else: {generic}"]
    if kt is K.Ref:
        return ["if type(v) is ObjectId: c = canon_ref(v.binary.hex())", "elif v is None: c = NULL", f"else: {generic}"]
    if kt is K.Int:
        return ["if type(v) is int: c = canon_int(v)", "elif v is None: c = NULL", f"else: {generic}"]
    if kt is K.Numeric:
        return ["if type(v) is Decimal128: c = canon_decimal128(v)", "elif type(v) is int: c = canon_int(v)",
                "elif v is None: c = NULL", f"else: {generic}"]
    if kt is K.Bool:
        return ["if type(v) is bool: c = canon_bool(v)", "elif v is None: c = NULL", f"else: {generic}"]
    if kt is K.Timestamp:
        return ["if type(v) is DatetimeMS: c = canon_ms(int(v))", "elif v is None: c = NULL", f"else: {generic}"]
    return [generic]


def canon_source_code(loader: LoaderSpec, env: dict[str, Any]) -> str:
    env.update({"NULL": K.NULL, "canon_str": K.canon_str, "canon_int": K.canon_int, "canon_bool": K.canon_bool,
                "canon_ms": K.canon_ms, "canon_ref": K.canon_ref, "canon_decimal128": K.canon_decimal128,
                "md5": hashlib.md5, "from_bytes": int.from_bytes})
    out = ["def canon(doc, ctx, counts, totals):"]
    for ti, table in enumerate(loader.tables):
        out += ["    " + h for h in row_loop(table, env, strict=False)]
        body, parts = [], []
        for cj, column in enumerate(table.hashed_columns):
            ci = f"{ti}_{cj}"
            body.append(f"v = {value_expr(column, ci, env, table.scalar_elements)}")
            body += default_lines(column, ci, env)
            body.append("if v is MISSING: v = None")
            body += canon_lines(column, ci, env)
            body.append(f"c{cj} = c")
            parts.append(f"c{cj}")
        body.append(f"text = '|'.join(({', '.join(parts)},))")
        body.append(f"counts[{ti}] += 1")
        body.append(f"totals[{ti}] += from_bytes(md5(text.encode()).digest()[:8], 'big') >> 4")
        out += ["        " + b for b in body]
    out.append("    return None")
    return "\n".join(out)


def dates_only_as_timestamps(loader: LoaderSpec) -> bool:
    """Whether epoch-millisecond dates are enough for every hashed column's canonical text."""
    plain = (K.Text, K.Enum, K.LegacyId, K.Ref, K.RowId, K.Int, K.Numeric, K.Bool, K.Timestamp)
    return all(type(c.kind) in plain for t in loader.tables for c in t.hashed_columns)


@dataclass
class CompiledCanon:
    loader: LoaderSpec
    canon: Callable[[Mapping[str, Any], Mapping[str, Any], list[int], list[int]], None]
    options: CodecOptions
    source: str

    def add(self, raw: bytes, ctx: Mapping[str, Any], counts: list[int], totals: list[int],
            census: Census | None = None, key: str = "") -> None:
        """One document's rows added to the per-table (count, hash sum), through the compiled
        code or, when it bails, through the reference ``canonical_rows``; and its field paths
        to ``census`` (from the same decoding). A document that cannot be decoded or rendered
        adds nothing and raises :class:`Unmappable`."""
        before = (counts[:], totals[:])
        try:
            fast = bson.decode(raw, self.options)
        except Exception as e:  # invalid BSON or UTF-8: the transform rejects it too
            raise Unmappable.of(e) from e
        if census is not None:
            census.add(fast, key)
        try:
            self.canon(fast, ctx, counts, totals)
            return
        except Exception:  # Bail, or a value no fast path takes: the reference decides
            counts[:], totals[:] = before
        rows = canonical_rows(self.loader, self.loader.tables, decode(raw), ctx)
        for i, t in enumerate(self.loader.tables):
            for row in rows[t.table]:
                counts[i] += 1
                totals[i] += hash60(row.text)


_compiled: dict[str, CompiledCanon] = {}


def compile_canon(loader: LoaderSpec) -> CompiledCanon:
    cached = _compiled.get(loader.name)
    if cached is not None and cached.loader is loader:
        return cached
    env = base_env()
    src = canon_source_code(loader, env)
    options = DECODE_OPTIONS if uses_compute(loader) or not dates_only_as_timestamps(loader) else CANON_OPTIONS
    compiled = CompiledCanon(loader, build(src, env, "canon", f"{loader.name} canon"), options, src)
    _compiled[loader.name] = compiled
    return compiled


Buckets = dict[str, tuple[list[int], list[int]]]  # _id prefix -> (counts, sums) per table


def digest_documents(acc: Buckets, code: CompiledCanon, raws: Iterable[bytes], ctx: Mapping[str, Any],
                     prefix_len: int | None, census: Census | None = None,
                     unmappable: dict[str, str] | None = None) -> Buckets:
    """Per ``_id`` prefix (one bucket when ``prefix_len`` is None): per-table counts and sums.
    A document that cannot be rendered adds nothing; its key and reason go to ``unmappable``."""
    n = len(code.loader.tables)
    for raw in raws:
        key = raw_key(raw)
        prefix = key[:prefix_len] if prefix_len else ""
        bucket = acc.get(prefix)
        if bucket is None:
            bucket = acc[prefix] = ([0] * n, [0] * n)
        try:
            code.add(raw, ctx, bucket[0], bucket[1], census, key)
        except Unmappable as e:
            if unmappable is not None:
                unmappable[key] = e.reason
    return acc


def digest_batch(args: tuple[str, list[bytes], int | None, bool]) -> tuple[Buckets, Census | None, dict[str, str]]:
    """A worker process's share: one batch of one loader's documents (no context: loaders
    that need one hash in the calling process), with its census when asked for."""
    name, raws, prefix_len, with_census = args
    census = Census() if with_census else None
    unmappable: dict[str, str] = {}
    acc = digest_documents({}, compile_canon(loader_named(name)), raws, {}, prefix_len, census, unmappable)
    return acc, census, unmappable


def fold(acc: Buckets, parts: Iterable[tuple[str, tuple[list[int], list[int]]]], length: int) -> None:
    """Digests of longer prefixes (documents) added into their prefixes of ``length``."""
    for key, (c, t) in parts:
        bucket = acc.get(key[:length])
        if bucket is None:
            bucket = acc[key[:length]] = ([0] * len(c), [0] * len(c))
        for i in range(len(c)):
            bucket[0][i] += c[i]
            bucket[1][i] += t[i]


def merge_buckets(acc: Buckets, part: Buckets) -> None:
    for prefix, (c, t) in part.items():
        bucket = acc.setdefault(prefix, ([0] * len(c), [0] * len(c)))
        for i in range(len(c)):
            bucket[0][i] += c[i]
            bucket[1][i] += t[i]


def source_fingerprint(loader: LoaderSpec, ctx: Mapping) -> str:
    """What the canonical digests of unchanged bytes depend on: the loader's canonical code,
    the code of the canonical forms, and the collection-wide context."""
    code = compile_canon(loader).source + "".join(canonical_code())
    context = repr(sorted((k, sorted(v) if isinstance(v, (set, frozenset)) else v) for k, v in ctx.items()))
    return hashlib.sha256(f"{code}\0{context}\0{BUCKET_PREFIX}".encode()).hexdigest()[:32]


@functools.cache
def canonical_code() -> tuple[str, ...]:
    from migration_assets.specs import kinds
    from migration_assets.verify import canonical, compiled_canon

    return tuple(Path(m.__file__).read_text() for m in (kinds, canonical, compiled_canon))
