"""The fast path of the load and of the source-side checksums, equal by construction to the
reference implementation (``transform.py``, ``load.resolve_references``,
``canonical.source_rows``) and proven equal by ``test_fastpath.py`` against PostgreSQL.

Profiling the reference path (bench/README.md) showed the time in generic interpretation
of the specs (``resolve_source``/``get_path``/``isinstance`` per column per row), in
tz-aware BSON date decoding, in ``Decimal128.to_decimal`` and in scanning every value of
every row for references. The fast path removes those costs and nothing else:

* **compiled specs**: each :class:`LoaderSpec` is turned once into straight-line Python
  (``compile_loader``) that reads each column's path with ``dict.get``, converts only the
  values whose type is the expected one, and *bails out* on anything else. A document that
  bails goes through the reference ``decode_and_transform`` unchanged, so quarantine
  reasons, rejections and their wording are the reference's own;
* **cheaper decoding**: dates decode as naive UTC (and get ``tzinfo=UTC`` only where a
  Timestamp column takes them) or, for checksums, as epoch milliseconds; Decimal128 is
  unpacked from its bits instead of digit by digit;
* **references**: only the columns that hold references are visited; parent lookups are
  cached for the run (a parent row found once keeps its id);
* **binary COPY** with the column types taken from the catalog (``set_types``);
* **checksums**: the same canonical texts, hashed with the first 60 bits of md5 read as
  one integer, optionally over several processes (digests are sums, so they merge).

Pure logic: no dagster import.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import os
import queue
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import bson
import psycopg
from bson import Decimal128, ObjectId
from bson.codec_options import CodecOptions, DatetimeConversion
from bson.datetime_ms import DatetimeMS

from migration_assets import kinds as K
from migration_assets import target as tg
from migration_assets.ids import NAMESPACE
from migration_assets.kinds import LegacyRef, Reject
from migration_assets.source import DECODE_OPTIONS, decode, raw_id, raw_id_hex
from migration_assets.spec import MISSING, Column, LoaderSpec, TableSpec, get_path
from migration_assets.transform import Deferred, DocResult

UTC = dt.timezone.utc
# Naive datetimes are UTC wall times; out-of-range dates still come back as DatetimeMS.
LOAD_OPTIONS = CodecOptions(tz_aware=False, datetime_conversion=DatetimeConversion.DATETIME_AUTO)
# Checksums only need epoch milliseconds (canonical dates are "d<ms>").
CANON_OPTIONS = CodecOptions(datetime_conversion=DatetimeConversion.DATETIME_MS)

_D128_SPECIAL = 0x6000000000000000  # infinities, NaNs and the "11" form: left to pymongo
_D128_MAX_COEFFICIENT = 10**34 - 1
_NORMALIZE_DIGITS = 10**28  # Decimal.normalize() rounds beyond the default 28 digits


class Bail(Exception):
    """A value the compiled code does not handle: the document takes the reference path."""


# --- Decimal128 ------------------------------------------------------------------------

def d128_parts(value: Decimal128) -> tuple[int, int, int] | None:
    """(sign, coefficient, exponent) of a finite Decimal128, None for anything unusual."""
    high = value._Decimal128__high  # type: ignore[attr-defined]
    if high & _D128_SPECIAL == _D128_SPECIAL:
        return None
    coefficient = ((high & 0x1FFFFFFFFFFFF) << 64) | value._Decimal128__low  # type: ignore[attr-defined]
    if coefficient > _D128_MAX_COEFFICIENT:
        return None
    exponent = ((high & 0x7FFF800000000000) >> 49) - 6176
    if not -200 <= exponent <= 200:
        return None
    return (1 if high >> 63 else 0), coefficient, exponent


def d128_to_decimal(value: Decimal128) -> Decimal:
    """``value.to_decimal()``, same digits and exponent, about five times cheaper."""
    parts = d128_parts(value)
    if parts is None:
        return value.to_decimal()
    sign, coefficient, exponent = parts
    return Decimal(f"{'-' if sign else ''}{coefficient}E{exponent}")


def _normalized(coefficient: int, exponent: int) -> tuple[int, int]:
    if coefficient == 0:
        return 0, 0
    while coefficient % 10 == 0:
        coefficient //= 10
        exponent += 1
    return coefficient, exponent


def coerce_money(kind: K.Numeric, value: Any) -> Any:
    """``Numeric.coerce`` for Decimal128 and plain ints; anything else goes to it."""
    if type(value) is Decimal128:
        parts = d128_parts(value)
        if parts is None:
            return kind.coerce(value)
        sign, coefficient, exponent = parts
        if coefficient >= _NORMALIZE_DIGITS:
            return kind.coerce(value)
        c, e = _normalized(coefficient, exponent)
        frac = max(0, -e)
        whole = max(0, len(str(c)) + e)
        if frac > kind.scale or whole > kind.precision - kind.scale:
            raise Bail
        return Decimal(f"{'-' if sign else ''}{coefficient}E{exponent}")
    return kind.coerce(value)


def canon_d128(value: Decimal128) -> str:
    """``canon_number(value)`` for a Decimal128: plain decimal, no trailing zeros."""
    parts = d128_parts(value)
    if parts is None:
        return K.canon_number(value)
    sign, coefficient, exponent = parts
    if coefficient >= _NORMALIZE_DIGITS:
        return K.canon_number(value)
    c, e = _normalized(coefficient, exponent)
    if c == 0:
        return "n0"
    digits = str(c)
    if e >= 0:
        text = digits + "0" * e
    else:
        digits = digits.rjust(1 - e, "0")
        text = digits[:e] + "." + digits[e:]
    return ("n-" if sign else "n") + text


def hash60_fast(text: str) -> int:
    """``canonical.hash60``: the first 60 bits of md5, read as one integer."""
    return int.from_bytes(hashlib.md5(text.encode("utf-8")).digest()[:8], "big") >> 4


# --- code generation -------------------------------------------------------------------

def _path_expr(base: str, path: str, env: dict[str, Any], *, generic: bool = False) -> str:
    """Expression reading ``path`` from ``base`` (MISSING when absent). ``base`` is a dict
    unless ``generic`` (array elements of scalar tables may be anything)."""
    parts = path.split(".")
    if len(parts) == 1 and not generic:
        return f"{base}.get({parts[0]!r}, MISSING)"
    key = f"_p{len(env)}"
    env[key] = path
    if len(parts) == 2 and not generic:
        # inline the common two-level read; anything but a plain dict goes to get_path
        inner = f"_t.get({parts[1]!r}, MISSING)"
        return (f"({inner} if type(_t := {base}.get({parts[0]!r}, MISSING)) is dict "
                f"else (MISSING if _t is MISSING or not isinstance(_t, Mapping) else get_path({base}, {key})))")
    return f"get_path({base}, {key})"


def _value_expr(column: Column, ci: str, env: dict[str, Any], scalar: bool = False) -> str:
    """Expression for ``resolve_source(column, source, doc, index, ctx)`` before defaults."""
    if column.compute is not None:
        env[f"compute_{ci}"] = column.compute
        return f"compute_{ci}(src, doc, ctx)"
    if column.path == "$index":
        return "idx"
    if column.path == "$element":
        return "src"
    if column.path and column.path.startswith("$root."):
        return _path_expr("doc", column.path[len("$root."):], env)
    if not column.path:
        return "MISSING"
    return _path_expr("src", column.path, env, generic=scalar)


def _coerce_lines(column: Column, ci: str, table: str, env: dict[str, Any]) -> list[str]:
    """Lines turning ``v`` (not None) into the COPY value, exactly as ``kind.coerce``."""
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
        bound = K._INT_RANGES[kind.pg_type]
        return [f"if type(v) is not int or not {-bound} <= v < {bound}: v = kind_{ci}.coerce(v)"]
    if kt is K.Numeric:
        return [f"v = coerce_money(kind_{ci}, v)"]
    if kt is K.Bool:
        return ["if type(v) is not bool: raise Bail"]
    if kt is K.Timestamp:
        return ["if type(v) is datetime: v = v.replace(tzinfo=UTC) if v.tzinfo is None else v",
                f"else: v = kind_{ci}.coerce(v)"]
    return [f"v = kind_{ci}.coerce(v)"]


def _canon_expr(column: Column, ci: str, env: dict[str, Any]) -> list[str]:
    """Lines setting ``c`` to ``kind.canon_source(v)`` (v: the value, None when missing)."""
    kind = column.kind
    env[f"kind_{ci}"] = kind
    kt = type(kind)
    generic = f"c = kind_{ci}.canon_source(v)"
    if kt in (K.Text, K.Enum):
        return ["if type(v) is str: c = f's{len(v)}:{v}'", "elif v is None: c = 'z'", f"else: {generic}"]
    if kt is K.LegacyId:
        return ["if type(v) is ObjectId: c = 's24:' + v.binary.hex()", f"else: {generic}"]
    if kt is K.Ref:
        return ["if type(v) is ObjectId: c = 'r' + v.binary.hex()", "elif v is None: c = 'z'", f"else: {generic}"]
    if kt is K.Int:
        return ["if type(v) is int: c = 'n' + str(v)", "elif v is None: c = 'z'", f"else: {generic}"]
    if kt is K.Numeric:
        return ["if type(v) is Decimal128: c = canon_d128(v)", "elif type(v) is int: c = 'n' + str(v)",
                "elif v is None: c = 'z'", f"else: {generic}"]
    if kt is K.Bool:
        return ["if v is True: c = 't'", "elif v is False: c = 'f'", "elif v is None: c = 'z'", f"else: {generic}"]
    if kt is K.Timestamp:
        return ["if type(v) is DatetimeMS: c = 'd' + str(int(v))", "elif v is None: c = 'z'", f"else: {generic}"]
    return [generic]


def utf8_ok(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _row_sources(table: TableSpec, ti: int, env: dict[str, Any], *, strict: bool) -> tuple[list[str], str]:
    """Loop header lines binding ``src``/``idx`` per row of ``table``; returns (lines, indent).

    ``strict`` (the transform) bails where the reference rejects; otherwise (checksums)
    it skips what ``canonical.source_rows`` skips."""
    mode, path = table.rows.mode, table.rows.path
    if mode == "root":
        return ["src = doc", "idx = 0", "if True:"], "    "
    scalar = any(c.path == "$element" for c in table.columns)
    lines = [f"cont = {_path_expr('doc', path, env)}"]
    if mode == "embedded":
        lines.append("if cont is not MISSING and cont is not None and type(cont) is not dict: raise Bail")
        lines += ["src = cont", "idx = 0", "if cont is not MISSING and cont is not None:"]
        return lines, "    "
    if strict:
        lines.append("if cont is not MISSING and cont is not None and type(cont) is not list: raise Bail")
        lines.append("for idx, src in (enumerate(cont) if type(cont) is list else ()):")
        if not scalar:
            lines.append("    if type(src) is not dict: raise Bail")
    else:
        lines.append("for idx, src in (enumerate(cont) if type(cont) is list else ()):")
        if not scalar:
            lines.append("    if type(src) is not dict:")
            lines.append("        if isinstance(src, Mapping): raise Bail")
            lines.append("        continue")
    return lines, "    "


def _env() -> dict[str, Any]:
    return {
        "MISSING": MISSING, "Bail": Bail, "LegacyRef": LegacyRef, "Deferred": Deferred, "FastDocResult": FastDocResult,
        "ObjectId": ObjectId, "Decimal128": Decimal128, "DatetimeMS": DatetimeMS, "datetime": dt.datetime,
        "UTC": UTC, "get_path": get_path, "coerce_money": coerce_money, "canon_d128": canon_d128,
        "utf8_ok": utf8_ok, "Mapping": Mapping, "md5": hashlib.md5, "from_bytes": int.from_bytes,
        "own_id": own_id,
    }


def _transform_source(loader: LoaderSpec, env: dict[str, Any], *, fresh: bool = False) -> str:
    """``fresh``: the loader's tables were empty when the load started, so references to
    its own rows are their uuid5 already (``resolve_references`` would compute the same)."""
    out = ["def transform(doc, ctx, legacy_id):", "    rows = {}", "    deferred = []"]
    own_tables = set(loader.table_names)
    for ti, table in enumerate(loader.tables):
        header, ind = _row_sources(table, ti, env, strict=True)
        out.append(f"    out = rows[{table.table!r}] = []")
        out += ["    " + h for h in header]
        scalar = any(c.path == "$element" for c in table.columns)
        body = ["own = None"]
        names = []
        for cj, column in enumerate(table.columns):
            ci = f"{ti}_{cj}"
            var = f"x{cj}"
            names.append(var)
            body.append(f"v = {_value_expr(column, ci, env, scalar)}")
            if column.default is not MISSING:
                env[f"default_{ci}"] = column.default
                body.append(f"if v is MISSING: v = default_{ci}")
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
                body += ["    " + line for line in _coerce_lines(column, ci, table.table, env)]
            if column.name == "id" and not own_ref:
                body.append("    if type(v) is LegacyRef: own = v")
            if column.deferred:
                env[f"table_{ti}"] = table.table
                env[f"colname_{ci}"] = column.name
                body.append(f"    deferred.append(Deferred(table_{ti}, colname_{ci}, "
                            f"own or LegacyRef(table_{ti}, legacy_id), v))")
                body.append("    v = None")
            body.append(f"{var} = v")
        body.append(f"out.append([{', '.join(names)}])")
        out += ["    " + ind + b for b in body]
    out.append("    return FastDocResult(legacy_id, rows, [], deferred)")
    return "\n".join(out)


def _canon_source_code(loader: LoaderSpec, env: dict[str, Any]) -> str:
    out = ["def canon(doc, ctx, counts, totals):"]
    for ti, table in enumerate(loader.tables):
        header, ind = _row_sources(table, ti, env, strict=False)
        out += ["    " + h for h in header]
        scalar = any(c.path == "$element" for c in table.columns)
        body = []
        parts = []
        for cj, column in enumerate(table.hashed_columns):
            ci = f"{ti}_{cj}"
            body.append(f"v = {_value_expr(column, ci, env, scalar)}")
            if column.default is not MISSING:
                env[f"default_{ci}"] = column.default
                body.append(f"if v is MISSING: v = default_{ci}")
            body.append("if v is MISSING: v = None")
            body += _canon_expr(column, ci, env)
            body.append(f"c{cj} = c")
            parts.append(f"c{cj}")
        body.append(f"text = '|'.join(({', '.join(parts)},))")
        body.append(f"counts[{ti}] += 1")
        body.append(f"totals[{ti}] += from_bytes(md5(text.encode()).digest()[:8], 'big') >> 4")
        out += ["    " + ind + b for b in body]
    out.append("    return None")
    return "\n".join(out)


_NS = NAMESPACE.bytes
_V5_CLEAR = ~((0xC000 << 48) | (0xF000 << 64))
_V5_SET = (0x8000 << 48) | (5 << 76)
_new_uuid = object.__new__
_set = object.__setattr__


def fast_new_id(table: str, legacy_id: str) -> uuid.UUID:
    """``ids.new_id`` (uuid5 of ``table:legacy_id``) without ``UUID.__init__``'s checks:
    the same 128 bits, built about three times faster."""
    digest = hashlib.sha1(_NS + f"{table}:{legacy_id}".encode()).digest()[:16]
    value = (int.from_bytes(digest, "big") & _V5_CLEAR) | _V5_SET
    u = _new_uuid(uuid.UUID)
    _set(u, "int", value)
    _set(u, "is_safe", uuid.SafeUUID.unknown)
    return u


@functools.lru_cache(maxsize=1 << 14)
def own_id(table: str, legacy_id: str) -> uuid.UUID:
    """``ids.new_id``, remembered: a document's child rows all name its root row."""
    return fast_new_id(table, legacy_id)


def _exec(source: str, env: dict[str, Any], name: str, label: str) -> Callable:
    code = compile(source, f"<fastpath {label}>", "exec")
    exec(code, env)  # generated from the specs above, never from data
    return env[name]


class FastDocResult(DocResult):
    """A compiled transform's result. ``doc`` (used only when the document is rejected
    later: quarantine keeps its readable copy) is the reference decoding of ``raw``."""

    raw: bytes = b""
    _doc: Any = None

    @property
    def doc(self) -> Any:
        if self._doc is None:
            self._doc = decode(self.raw)
        return self._doc

    @doc.setter
    def doc(self, value: Any) -> None:
        self._doc = value


# --- compiled loaders ------------------------------------------------------------------

@dataclass
class CompiledLoader:
    loader: LoaderSpec
    transform: Callable[[Mapping[str, Any], Mapping[str, Any], str], DocResult]
    transform_fresh: Callable[[Mapping[str, Any], Mapping[str, Any], str], DocResult]
    canon: Callable[[Mapping[str, Any], Mapping[str, Any], list[int], list[int]], None]
    load_options: CodecOptions
    canon_options: CodecOptions
    ref_positions: dict[str, list[int]] = field(default_factory=dict)
    external_positions: dict[str, list[int]] = field(default_factory=dict)  # references to other loaders
    transform_source: str = ""
    canon_source: str = ""


def _uses_compute(loader: LoaderSpec) -> bool:
    return any(c.compute is not None for t in loader.tables for c in t.columns)


def _dates_only_as_timestamps(loader: LoaderSpec) -> bool:
    """Whether epoch-millisecond dates are enough for every hashed column's canonical text."""
    plain = (K.Text, K.Enum, K.LegacyId, K.Ref, K.RowId, K.Int, K.Numeric, K.Bool, K.Timestamp)
    return all(type(c.kind) in plain for t in loader.tables for c in t.hashed_columns)


_compiled: dict[str, CompiledLoader] = {}


def compile_loader(loader: LoaderSpec) -> CompiledLoader:
    cached = _compiled.get(loader.name)
    if cached is not None and cached.loader is loader:
        return cached
    env_t, env_f, env_c = _env(), _env(), _env()
    tsrc = _transform_source(loader, env_t)
    fsrc = _transform_source(loader, env_f, fresh=True)
    csrc = _canon_source_code(loader, env_c)
    # Compute columns see the document as the reference decodes it (tz-aware dates).
    reference_decode = _uses_compute(loader)
    compiled = CompiledLoader(
        loader=loader,
        transform=_exec(tsrc, env_t, "transform", f"{loader.name} transform"),
        transform_fresh=_exec(fsrc, env_f, "transform", f"{loader.name} transform (fresh)"),
        canon=_exec(csrc, env_c, "canon", f"{loader.name} canon"),
        load_options=DECODE_OPTIONS if reference_decode else LOAD_OPTIONS,
        canon_options=DECODE_OPTIONS if reference_decode or not _dates_only_as_timestamps(loader) else CANON_OPTIONS,
        ref_positions={t.table: [i for i, c in enumerate(t.columns) if isinstance(c.kind, K.Ref) and not c.deferred]
                       for t in loader.tables},
        external_positions={t.table: [i for i, c in enumerate(t.columns) if isinstance(c.kind, K.Ref) and not c.deferred
                                      and c.kind.table not in loader.table_names] for t in loader.tables},
        transform_source=tsrc,
        canon_source=csrc,
    )
    _compiled[loader.name] = compiled
    return compiled


# --- the load --------------------------------------------------------------------------

# Decode and transform the next batch in a thread while PostgreSQL works on this one. Off
# by default: on the shared 2-core machine it measured ~20 % more client CPU (GIL hand-offs)
# for no wall-clock gain; where a core is free for the client it overlaps client and server.
PREFETCH = False


class FastLoad:
    """The per-run state of the fast path of :func:`migration_assets.load.run_loader`."""

    def __init__(self, loader: LoaderSpec, conn: psycopg.Connection, ctx: Mapping[str, Any], writer=None,
                 *, fresh: bool = False, prefetch: bool | None = None):
        from migration_assets.load import decode_and_transform

        self.loader = loader
        self.compiled = compile_loader(loader)
        self.transform = self.compiled.transform_fresh if fresh else self.compiled.transform
        self.report = getattr(writer, "report", None)
        self.prefetching = PREFETCH if prefetch is None else prefetch
        self._ready: Iterator[Any] = iter(())
        self.ctx = ctx
        self.excluded = ctx.get("excluded", {})
        self.reference = decode_and_transform
        self.parents: dict[tuple[str, str], Any] = {}  # (table, legacy id) -> uuid, this run
        self.own_tables = set(loader.table_names)
        self.copy = BinaryCopy()
        self.bailed = 0  # documents that took the reference path
        if writer is not None:
            writer.copy_rows = self.copy.copy_rows

    def prefetch(self, batches: Iterable[Any]) -> Iterator[Any]:
        """The batches, each decoded and transformed ahead in a thread while the previous
        one is resolved and written: the thread's Python work runs while this thread waits
        for PostgreSQL (COPY, bookkeeping), so the client and the server work at once.
        Results are handed over in order; ``decode_and_transform`` then just returns them."""
        if not self.prefetching:
            yield from batches
            return
        handoff: queue.Queue = queue.Queue(maxsize=1)  # bounded: at most two batches ahead
        stop = threading.Event()
        busy = [0.0]

        def work() -> None:
            try:
                for batch in batches:
                    t = time.perf_counter()
                    outs = [self._decode_and_transform(raw) for raw in batch.docs]
                    busy[0] += time.perf_counter() - t
                    while not stop.is_set():
                        try:
                            handoff.put((batch, outs), timeout=0.5)
                            break
                        except queue.Full:
                            continue
                    if stop.is_set():
                        return
                handoff.put(None)
            except BaseException as e:  # the source failed: raised in the loop's thread
                handoff.put(e)

        thread = threading.Thread(target=work, name=f"prefetch-{self.loader.name}", daemon=True)
        # The loop's thread comes back from each PostgreSQL round trip wanting the GIL; the
        # default 5 ms switch interval would add up to 5 ms to each of them.
        interval = sys.getswitchinterval()
        sys.setswitchinterval(min(interval, 0.0005))
        thread.start()
        try:
            while True:
                item = handoff.get()
                if item is None:
                    return
                if isinstance(item, BaseException):
                    raise item
                batch, outs = item
                self._ready = iter(outs)
                yield batch
        finally:
            stop.set()
            sys.setswitchinterval(interval)
            if self.report is not None:
                self.report.timings["decode_transform_prefetched"] += busy[0]

    def decode_and_transform(self, raw: bytes):
        """``load.decode_and_transform(loader, raw, ctx)``, compiled where possible."""
        out = next(self._ready, None)
        if out is not None and getattr(out, "raw", None) is raw:
            return out
        return self._decode_and_transform(raw)

    def _decode_and_transform(self, raw: bytes):
        legacy_id = raw_id_hex(raw)
        if legacy_id is not None and legacy_id not in self.excluded:
            try:
                doc = bson.decode(raw, self.compiled.load_options)
                result = self.transform(doc, self.ctx, legacy_id)
            except (Bail, Reject):
                pass
            except Exception:  # invalid BSON and friends: the reference names the error
                pass
            else:
                if not self._repeats_a_child_key(result):
                    result.raw = raw
                    return result
                # A repeated child key: the reference rejects it as duplicate_key (transform.py).
        self.bailed += 1
        return self.reference(self.loader, raw, self.ctx)

    def _repeats_a_child_key(self, result: DocResult) -> bool:
        from migration_assets.transform import _reject_duplicate_keys

        for table, rows in result.rows.items():
            if len(rows) > 1:
                probe = DocResult(result.legacy_id)
                _reject_duplicate_keys(probe, self.loader.table(table), rows)
                if probe.problems:
                    return True
        return False

    def resolve(self, conn: psycopg.Connection, results: list[DocResult], fresh: bool):
        """``load.resolve_references``: same ids, same rejections (same order of problems).
        Only reference columns are visited (in a fresh load, a compiled result's own
        references are uuids already); parent lookups are cached for the run."""
        from migration_assets.load import _rejection

        loader = self.loader
        own_tables = self.own_tables
        all_pos = self.compiled.ref_positions
        ext_pos = self.compiled.external_positions if fresh else all_pos
        parents = self.parents
        slots = []  # (result index, row, position, reference), in the reference's order
        wanted_own: dict[str, set[str]] = {}
        wanted_ext: dict[str, set[str]] = {}
        for ri, res in enumerate(results):
            positions = ext_pos if type(res) is FastDocResult else all_pos
            for table, rows in res.rows.items():
                pos = positions[table]
                if not pos:
                    continue
                for row in rows:
                    for i in pos:
                        v = row[i]
                        if type(v) is LegacyRef:
                            slots.append((ri, table, row, i, v))
                            if v.table in own_tables:
                                wanted_own.setdefault(v.table, set()).add(v.legacy_id)
                            elif (v.table, v.legacy_id) not in parents:
                                wanted_ext.setdefault(v.table, set()).add(v.legacy_id)
        resolved: dict[tuple[str, str], Any] = {}
        for table, ids in wanted_own.items():
            existing = {} if fresh else lookup_ids(conn, table, ids)
            for legacy in ids:
                resolved[(table, legacy)] = existing.get(legacy) or fast_new_id(table, legacy)
        for table, ids in wanted_ext.items():
            for legacy, pk in lookup_ids(conn, table, ids).items():
                parents[(table, legacy)] = pk
        missing: dict[int, list[dict[str, str]]] = {}
        for ri, table, row, i, v in slots:
            key = (v.table, v.legacy_id)
            pk = resolved.get(key) or parents.get(key)
            if pk is None:
                column = loader.table(table).columns[i]
                missing.setdefault(ri, []).append({
                    "code": "missing_reference", "field": column.path or column.name,
                    "message": f"{table}.{column.name} -> {v.table} {v.legacy_id} does not exist in PostgreSQL"})
            else:
                row[i] = pk
        if not missing:
            return results, [], resolved
        ok = [res for ri, res in enumerate(results) if ri not in missing]
        rejected = [_rejection(results[ri].raw, results[ri].legacy_id, problems, results[ri].doc)  # type: ignore[attr-defined]
                    for ri, problems in sorted(missing.items())]
        return ok, rejected, resolved


def lookup_ids(conn: psycopg.Connection, table: str, legacy_ids: Iterable[str]) -> dict[str, Any]:
    """``target.lookup_ids`` with the ids sent as one binary text[] (psycopg's text-array
    dumping quotes element by element, in Python)."""
    ids = sorted(legacy_ids)
    if not ids:
        return {}
    return dict(conn.execute(f"SELECT legacy_object_id, id FROM public.{table} WHERE legacy_object_id = ANY(%b)",
                             [ids]).fetchall())


# --- binary COPY -----------------------------------------------------------------------

def copy_types(conn: psycopg.Connection, table: str) -> dict[str, str]:
    """Column -> a type name psycopg can dump in binary (enums travel as their label text)."""
    rows = conn.execute(
        """
        SELECT a.attname, t.typname, t.typtype, t.typcategory, e.typname, e.typtype
        FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
        LEFT JOIN pg_type e ON e.oid = t.typelem AND t.typcategory = 'A'
        WHERE a.attrelid = to_regclass(%s) AND a.attnum > 0 AND NOT a.attisdropped
        """,
        [table],
    ).fetchall()
    out = {}
    for name, typname, typtype, category, elem, elemtype in rows:
        if category == "A" and elem:
            out[name] = ("text" if elemtype == "e" else elem) + "[]"
        else:
            out[name] = "text" if typtype == "e" else typname
    return out


class BinaryCopy:
    """``target.copy_rows`` in binary format, column types read from the catalog once per
    table; a table with a type psycopg cannot dump in binary (a domain, a composite) keeps
    the text format."""

    def __init__(self) -> None:
        self.types: dict[tuple[str, tuple[str, ...]], list[str] | None] = {}

    def types_for(self, conn: psycopg.Connection, table: str, columns: Sequence[str]) -> list[str] | None:
        key = (table, tuple(columns))
        if key not in self.types:
            names = copy_types(conn, table)
            types = [names.get(c) for c in columns]
            registry = conn.adapters.types
            try:
                ok = all(n is not None and registry.get_oid(n) for n in types)
            except KeyError:
                ok = False
            self.types[key] = types if ok else None  # type: ignore[assignment]
        return self.types[key]

    def copy_rows(self, conn: psycopg.Connection, table: str, columns: Sequence[str], rows: Iterable[list[Any]]) -> int:
        types = self.types_for(conn, table, columns)
        if types is None:
            return tg.copy_rows(conn, table, columns, rows)
        n = 0
        with conn.cursor() as cur, cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(types)
            for row in rows:
                copy.write_row(row)
                n += 1
        return n


# --- checksums (source side) -----------------------------------------------------------

def canon_raw(compiled: CompiledLoader, raw: bytes, ctx: Mapping[str, Any], counts: list[int], totals: list[int]) -> None:
    """Add one document's rows to the per-table (count, hash sum) of ``canonical.source_rows``."""
    before = (counts[:], totals[:])
    try:
        compiled.canon(bson.decode(raw, compiled.canon_options), ctx, counts, totals)
        return
    except Bail:
        counts[:], totals[:] = before
    from migration_assets.canonical import hash60, source_rows

    doc = decode(raw)
    for i, t in enumerate(compiled.loader.tables):
        for row in source_rows(compiled.loader, t, doc, ctx):
            counts[i] += 1
            totals[i] += hash60(row.text)


def _canon_batch(args) -> dict[str, tuple[list[int], list[int]]]:
    name, raws, prefix_len = args
    from migration_assets.spec import all_loaders

    compiled = compile_loader(next(l for l in all_loaders() if l.name == name))
    return _canon_into({}, compiled, raws, {}, prefix_len)


def _canon_into(acc: dict[str, tuple[list[int], list[int]]], compiled: CompiledLoader,
                raws: Iterable[bytes], ctx: Mapping[str, Any], prefix_len: int | None):
    """Per ``_id`` prefix (one bucket when ``prefix_len`` is None): per-table counts and sums."""
    n = len(compiled.loader.tables)
    for raw in raws:
        prefix = (raw_id_hex(raw) or str(raw_id(raw)))[:prefix_len] if prefix_len else ""
        bucket = acc.get(prefix)
        if bucket is None:
            bucket = acc[prefix] = ([0] * n, [0] * n)
        canon_raw(compiled, raw, ctx, bucket[0], bucket[1])
    return acc


def workers_default() -> int:
    """Processes for source checksums: ``MIGRATION_CHECKSUM_WORKERS``, else 1 (in process)."""
    try:
        return max(1, int(os.environ.get("MIGRATION_CHECKSUM_WORKERS", "1")))
    except ValueError:
        return 1


PARALLEL_MIN_DOCS = 50_000  # below this, starting worker processes costs more than it saves
CHECKSUMS_ENABLED = True  # False: verify.py runs its reference loop (tests compare both)


def source_digests(loader: LoaderSpec, source, result, qindex, ctx: Mapping[str, Any], *,
                   lo: str | None = None, hi: str | None = None, bucket_prefix: int | None = None,
                   workers: int | None = None) -> bool:
    """Fill ``result`` (a ``verify.LoaderVerification``) with the source side of
    ``verify.verify_loader``: the same documents skipped and counted, the same canonical
    texts, the same digests (and per-prefix buckets). Returns False when disabled (the
    caller then runs its own loop)."""
    if not CHECKSUMS_ENABLED:
        return False
    from migration_assets.canonical import Digest
    from migration_assets.source import legacy_key

    compiled = compile_loader(loader)
    workers = workers_default() if workers is None else workers

    def skipped(raw: bytes) -> bool:
        key = raw_id_hex(raw)
        ident = ObjectId(key) if key is not None else raw_id(raw)
        result.source_docs += 1
        if qindex.skip(legacy_key(ident)) or not isinstance(ident, ObjectId):
            result.quarantined_docs += 1
            try:
                doc = decode(raw)
            except Exception:
                return True
            for t in loader.tables:
                result.tables[t.table].quarantined_rows += sum(1 for _ in t.rows.sources(doc))
            return True
        return False

    acc: dict[str, tuple[list[int], list[int]]] = {}
    batches = source.iter_batches(loader.collection, lo=lo, hi=hi, batch_size=5000)
    if (workers > 1 and loader.prepare is None and not loader.self_deferred
            and source.count(loader.collection) >= PARALLEL_MIN_DOCS):
        # Digests are sums: batches hash in any order, in other processes. Which documents
        # are skipped is decided here, in source order (duplicates depend on it). Workers
        # come from a fork server: forking this process (threads of Dagster, pymongo, an
        # earlier pool) can copy a lock in its taken state and hang the child.
        import multiprocessing as mp

        def kept():
            for batch in batches:
                yield loader.name, [raw for raw in batch.docs if not skipped(raw)], bucket_prefix

        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload(["migration_assets.fastpath"])
        with ctx.Pool(workers) as pool:
            for part in pool.imap_unordered(_canon_batch, kept()):
                for prefix, (c, t) in part.items():
                    bucket = acc.setdefault(prefix, ([0] * len(c), [0] * len(c)))
                    for i in range(len(c)):
                        bucket[0][i] += c[i]
                        bucket[1][i] += t[i]
    else:
        for batch in batches:
            _canon_into(acc, compiled, (raw for raw in batch.docs if not skipped(raw)), ctx, bucket_prefix)
    for i, t in enumerate(loader.tables):
        tv = result.tables[t.table]
        for prefix, (c, s) in acc.items():
            d = Digest(c[i], s[i])
            tv.source.merge(d)
            if bucket_prefix:
                tv.source_buckets[prefix] = d
    return True
