"""Canonical projections of a table, computed independently on each side.

* Source side (Python): straight from the decoded Mongo document, through each column's
  ``canon_source`` (never through the transform).
* Target side (SQL): from the loaded rows, through each column's ``canon_sql``; references
  are rendered by joining the referenced table and reading its ``legacy_object_id``.

A row's canonical text is its hashed columns' canonical texts joined by ``|``. A range's
checksum is (row count, sum of the first 60 bits of each row text's md5): order-independent,
so Mongo's ``_id`` order and PostgreSQL's heap order never matter, and cheap to compute for
any ``_id`` range on both sides (which is what the bisection diff needs).
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from psycopg import sql

from migration_assets.specs.kinds import Ref, Reject, legacy_hex
from migration_assets.specs.model import MISSING, Column, LoaderSpec, TableSpec, resolve_source
from migration_assets.target.aggregates import RefJoins


def hash60(text: str) -> int:
    """The first 60 bits of the text's md5, as ``migration.hash60`` computes them in SQL."""
    return int.from_bytes(hashlib.md5(text.encode("utf-8")).digest()[:8], "big") >> 4


def raw_hash60(raw: bytes) -> int:
    """The same of a document's BSON bytes: two equal digests mean byte-identical documents."""
    return int.from_bytes(hashlib.md5(raw).digest()[:8], "big") >> 4


@dataclass(slots=True)  # one per document in a wide diff
class Digest:
    """Row count and hash sum of a set of rows; equal digests mean equal row multisets."""

    count: int = 0
    total: int = 0

    def add(self, text: str) -> None:
        self.count += 1
        self.total += hash60(text)

    def merge(self, other: Digest) -> None:
        self.count += other.count
        self.total += other.total

    @property
    def hexdigest(self) -> str:
        return f"{self.count}:{self.total % (1 << 64):016x}"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Digest) and (self.count, self.total) == (other.count, other.total)


# --- identity of a row inside its document ---------------------------------------------

def identity_columns(table: TableSpec) -> tuple[str, ...]:
    """Columns naming a row: legacy id for documents, parent + key for child rows."""
    if table.is_root:
        return ("legacy_object_id",)
    names = [n for n in table.key if n != "id"]
    if "id" in table.key and table.has_legacy_id:
        names.append("legacy_object_id")
    return tuple(names)


# --- source side -----------------------------------------------------------------------

@dataclass
class SourceRow:
    root_key: str
    identity: str
    values: list[str]

    @property
    def text(self) -> str:
        return "|".join(self.values)


class Unmappable(Exception):
    """A document whose canonical rows cannot be rendered: a value of a type its column does
    not take (the transform rejects such a document too). It is expected absent from
    PostgreSQL and listed apart, never half-counted."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason

    @classmethod
    def of(cls, exc: BaseException) -> Unmappable:
        if isinstance(exc, Unmappable):
            return exc
        if isinstance(exc, Reject):
            return cls(f"{exc.code}: {exc.message}")
        return cls(f"{type(exc).__name__}: {exc}"[:300])


def _canon(column: Column, raw: Any) -> str:
    return column.kind.canon_source(None if raw is MISSING else raw)


def source_rows(loader: LoaderSpec, table: TableSpec, doc: Mapping[str, Any], ctx: Mapping[str, Any]) -> Iterator[SourceRow]:
    root_key = legacy_hex(doc["_id"])
    cols = table.hashed_columns
    id_cols = [table.column(n) for n in identity_columns(table)]
    for source, index in table.rows.sources(doc):
        if table.rows.mode == "array" and not isinstance(source, Mapping) and not table.scalar_elements:
            continue
        values = [_canon(c, resolve_source(c, source, doc, index, ctx)) for c in cols]
        ident = "/".join(_canon(c, resolve_source(c, source, doc, index, ctx)) for c in id_cols)
        yield SourceRow(root_key, ident, values)


def canonical_rows(loader: LoaderSpec, tables: Collection[TableSpec], doc: Mapping[str, Any],
                   ctx: Mapping[str, Any]) -> dict[str, list[SourceRow]]:
    """Every row of the document in each of ``tables``, whole or not at all: any failure of
    any column is :class:`Unmappable` (with the column's reason)."""
    try:
        out = {t.table: list(source_rows(loader, t, doc, ctx)) for t in tables}
        for rows in out.values():
            for row in rows:
                row.text.encode("utf-8")  # a lone surrogate cannot be hashed: nor stored
        return out
    except Exception as e:  # noqa: BLE001 - whatever a value does to a renderer, the document is unmappable
        raise Unmappable.of(e) from e


def expected_rows(loader: LoaderSpec, table: TableSpec, doc: Mapping[str, Any], ctx: Mapping[str, Any]) -> list[SourceRow]:
    """The rows PostgreSQL is expected to hold for the document in ``table``: none for an
    unmappable one (a row there is one too many)."""
    try:
        return canonical_rows(loader, [table], doc, ctx)[table.table]
    except Unmappable:
        return []


# --- target side (SQL) -----------------------------------------------------------------

@dataclass
class TableSQL:
    table: TableSpec
    from_sql: str
    key_expr: str
    identity_expr: str
    column_exprs: list[str] = field(default_factory=list)

    @property
    def row_text(self) -> str:
        return "concat_ws('|', " + ", ".join(self.column_exprs) + ")"

    def where(self, lo: str | None, hi: str | None) -> tuple[str, list[str]]:
        parts, params = [], []
        if lo is not None:
            parts.append(f"{self.key_expr} >= %s")
            params.append(lo)
        if hi is not None:
            parts.append(f"{self.key_expr} < %s")
            params.append(hi)
        return (" WHERE " + " AND ".join(parts)) if parts else "", params

    def digest_query(self, lo: str | None = None, hi: str | None = None) -> tuple[str, list[str]]:
        where, params = self.where(lo, hi)
        sql = (
            f"SELECT count(*), coalesce(sum(migration.hash60({self.row_text})), 0) "
            f"FROM {self.from_sql}{where}"
        )
        return sql, params

    # Above this many prefixes one scan filtering by prefix beats one index range scan each.
    MAX_RANGE_SCANS = 64

    def _under(self, prefixes: list[str], select: str, suffix: str = "") -> tuple[str, list[Any]]:
        """``select`` restricted to keys under ``prefixes``: one index range scan per prefix,
        or, for many prefixes, one scan per prefix length keeping the keys whose prefix is listed."""
        parts, params = [], []
        if len(prefixes) <= self.MAX_RANGE_SCANS:
            for p in prefixes:
                where, pp = self.where(*prefix_bounds(p))
                parts.append(f"({select}{where}{suffix})")
                params += pp
        else:
            by_length: dict[int, list[str]] = {}
            for p in prefixes:
                by_length.setdefault(len(p), []).append(p)
            for n, ps in sorted(by_length.items()):
                parts.append(f"({select} WHERE left({self.key_expr}, {n}) = ANY(%s){suffix})")
                params.append(ps)
        return " UNION ALL ".join(parts), params

    def prefix_digest_query(self, length: int, prefixes: list[str] | None = None) -> tuple[str, list[Any]]:
        """Digest per key prefix of ``length`` characters: rows (prefix, count, hash sum).

        Without ``prefixes``: one scan of the table. With them: only keys under those
        (shorter) prefixes (see ``_under``), in one statement.
        """
        select = (f"SELECT left({self.key_expr}, {int(length)}), count(*), "
                  f"coalesce(sum(migration.hash60({self.row_text})), 0) FROM {self.from_sql}")
        if prefixes is None:
            return f"{select} GROUP BY 1", []
        return self._under(prefixes, select, " GROUP BY 1")

    def prefix_rows_query(self, prefixes: list[str]) -> tuple[str, list[Any]]:
        """The canonical rows (key, identity, column texts) under the given key prefixes."""
        select, _ = self.rows_query()
        return self._under(prefixes, select)

    def documents_rows_query(self, documents: list[str]) -> tuple[str, list[Any]]:
        """The canonical rows of the given documents (legacy ids of their roots)."""
        select, _ = self.rows_query()
        return f"{select} WHERE {self.key_expr} = ANY(%s)", [documents]

    def rows_query(self, lo: str | None = None, hi: str | None = None) -> tuple[str, list[str]]:
        where, params = self.where(lo, hi)
        cols = ", ".join(self.column_exprs)
        sql = (
            f"SELECT {self.key_expr}, {self.identity_expr}, ARRAY[{cols}]::text[] "
            f"FROM {self.from_sql}{where}"
        )
        return sql, params


def prefix_bounds(prefix: str) -> tuple[str, str | None]:
    """``[lo, hi)`` holding exactly the strings that start with ``prefix`` (code-point order:
    the database collation is C.UTF-8)."""
    if not prefix:
        return None, None  # type: ignore[return-value]
    nxt = ord(prefix[-1]) + 1
    if nxt > 0x10FFFF:
        return prefix, None
    if 0xD800 <= nxt <= 0xDFFF:  # surrogates are not text; the next character is U+E000
        nxt = 0xE000
    return prefix, prefix[:-1] + chr(nxt)


OBJECT_ID_HEX = 24


def object_id_bounds(prefix: str) -> tuple[str, str | None] | None:
    """The ObjectId range (24 hex) of a hex prefix, or None if no ObjectId starts with it."""
    try:
        n = int(prefix, 16)
    except ValueError:
        return None
    if len(prefix) > OBJECT_ID_HEX or prefix != prefix.lower():
        return None
    lo = prefix.ljust(OBJECT_ID_HEX, "0")
    if n + 1 >= 16 ** len(prefix):
        return lo, None
    return lo, format(n + 1, f"0{len(prefix)}x").ljust(OBJECT_ID_HEX, "0")



def table_sql(table: TableSpec, exclude: Collection[str] = ()) -> TableSQL:
    """SQL rendering of ``table``'s canonical projection; ``exclude``: documents (legacy ids)
    left out on this side as they are on the other (acknowledged ledger conflicts)."""
    refs = RefJoins()

    def expr(column: Column) -> str:
        if isinstance(column.kind, Ref) and column.ref_table:
            return column.kind.canon_sql(refs.legacy_id(column))
        return column.kind.canon_sql(f"t.{column.name}")

    column_exprs = [expr(c) for c in table.hashed_columns]
    identity_exprs = [expr(table.column(n)) for n in identity_columns(table)]
    key_expr = refs.document_key(table)
    relation = f"public.{table.table}"
    if exclude:
        ids = sql.Literal(sorted(exclude)).as_string(None)
        relation = (f"(SELECT * FROM public.{table.table} WHERE legacy_object_id <> ALL({ids}::text[]))"
                    if table.is_root else
                    f"(SELECT c.* FROM public.{table.table} c JOIN public.{table.column(table.parent_column).ref_table} "
                    f"p ON p.id = c.{table.parent_column} WHERE p.legacy_object_id <> ALL({ids}::text[]))")
    from_sql = f"{relation} t{refs.sql}"
    identity_expr = "concat_ws('/', " + ", ".join(identity_exprs) + ")"
    return TableSQL(table, from_sql, key_expr, identity_expr, column_exprs)
