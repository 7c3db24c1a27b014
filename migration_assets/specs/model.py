"""The spec model: which Mongo collection feeds which PostgreSQL tables, column by column.
The FK graph, the asset graph, the source contract, column lineage, transforms and
checksums are all derived from these specs; nothing else lists tables.

A :class:`LoaderSpec` is one Mongo collection loaded in one pass into one or more tables:
the root table (one row per document) and child tables built from embedded objects or
arrays of the same document, which PostgreSQL stores relationally.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from migration_assets.specs.kinds import Kind, LegacyId, Ref, RowId

MISSING = object()


@dataclass(frozen=True)
class Column:
    """One PostgreSQL column and where its value comes from.

    ``path`` is a dotted path in the row's source object (the document, or the array
    element / embedded object of a child table). ``$root.`` paths read the enclosing
    document, ``$index`` is the element's position and ``$element`` the element itself
    (arrays of scalars). ``compute`` replaces ``path`` for
    the rare column a collection-level rule decides (it receives the row source, the
    document and the loader context) and ``lineage`` then names the fields it reads.
    """

    name: str
    kind: Kind
    path: str | None = None
    required: bool = False
    default: Any = MISSING
    deferred: bool = False
    compute: Callable[[Any, Mapping[str, Any], Mapping[str, Any]], Any] | None = None
    lineage: tuple[str, ...] = ()
    doc: str = ""

    @property
    def hashed(self) -> bool:
        """Whether the column is part of the checksum (own uuids and deferred refs are not)."""
        return not isinstance(self.kind, RowId) and not self.deferred

    @property
    def ref_table(self) -> str | None:
        return self.kind.table if isinstance(self.kind, Ref) and not isinstance(self.kind, RowId) else None

    @property
    def source_paths(self) -> tuple[str, ...]:
        if self.compute is not None:
            return self.lineage
        return (self.path,) if self.path else ()


@dataclass(frozen=True)
class Rows:
    """Where a table's rows come from inside one document.

    ``mode``: ``root`` (the document itself), ``embedded`` (an optional nested object at
    ``path``: zero or one row) or ``array`` (one row per element of the array at ``path``).
    """

    mode: str = "root"
    path: str | None = None

    def sources(self, doc: Mapping[str, Any]) -> Iterator[tuple[Any, int]]:
        if self.mode == "root":
            yield doc, 0
            return
        value = get_path(doc, self.path)
        if value is MISSING or value is None:
            return
        if self.mode == "embedded":
            yield value, 0
        else:
            if not isinstance(value, list):
                # The transform reports the wrong type; no rows come from a non-array.
                return
            for i, element in enumerate(value):
                yield element, i


ROOT = Rows("root")


def embedded(path: str) -> Rows:
    return Rows("embedded", path)


def array(path: str) -> Rows:
    return Rows("array", path)


@dataclass(frozen=True)
class BusinessRule:
    """A rule the application holds its rows to, as SQL returning ``(subject, detail)`` per
    violation (subjects are legacy ids). ``guard_index`` names the unique index that
    enforces it in PostgreSQL, whose absence is a violation too."""

    name: str
    description: str
    reason: str
    sql: str
    guard_index: str | None = None


@dataclass(frozen=True)
class TableSpec:
    table: str
    columns: tuple[Column, ...]
    rows: Rows = ROOT
    key: tuple[str, ...] = ("id",)
    parent_column: str | None = None
    description: str = ""
    checksum_excludes: tuple[str, ...] = ()
    # Other unique keys among one document's child rows (e.g. specification key per request).
    unique_keys: tuple[tuple[str, ...], ...] = ()
    # Rules the loaded rows must satisfy (checked after every load, named in the table's file).
    rules: tuple[BusinessRule, ...] = ()

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"{self.table} has no column {name}")

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    @property
    def is_root(self) -> bool:
        return self.rows.mode == "root"

    @property
    def scalar_elements(self) -> bool:
        """Rows built from an array of scalars (preferredSellers ObjectIds) read ``$element``."""
        return any(c.path == "$element" for c in self.columns)

    @property
    def has_legacy_id(self) -> bool:
        return any(isinstance(c.kind, LegacyId) for c in self.columns)

    @property
    def fk_columns(self) -> tuple[Column, ...]:
        return tuple(c for c in self.columns if c.ref_table)

    def fk_parents(self, *, include_deferred: bool = True) -> set[str]:
        return {
            c.ref_table  # type: ignore[misc]
            for c in self.fk_columns
            if include_deferred or not c.deferred
        }

    @property
    def hashed_columns(self) -> tuple[Column, ...]:
        return tuple(c for c in self.columns if c.hashed and c.name not in self.checksum_excludes)


@dataclass(frozen=True)
class BelongsTo:
    """A reference must point at a row that points back: ``via`` is the column of the
    referenced table naming the referring row (a purchase request's selected offer is one of
    *its* offers). ``rule``/``reason``/``description`` name the check and its failures."""

    via: str
    rule: str
    reason: str
    description: str


@dataclass(frozen=True)
class DeferredRemap:
    """A reference column set after its target table loads (breaks an FK cycle).

    It becomes its own asset downstream of both tables, e.g. the selectedOffer remap.
    ``belongs``: the rule that the referenced row names the referring one; the remap refuses
    a reference that breaks it, and a check holds the loaded column to it.
    """

    name: str
    table: str
    column: str
    description: str
    belongs: BelongsTo | None = None


@dataclass(frozen=True)
class LedgerAccounts:
    """The account names of a double-entry ledger, by the part each plays."""

    payer_wallet: str
    escrow: str
    payee_wallet: str
    fees: str
    external: str

    @property
    def house(self) -> tuple[str, ...]:
        """Accounts that belong to no user."""
        return (self.escrow, self.fees, self.external)


@dataclass(frozen=True)
class LedgerSpec:
    """What makes a table an append-only funds ledger: its accounts, the payments table its
    entries settle, and the money columns whose CHECK (> 0) it relies on."""

    accounts: LedgerAccounts
    payments_table: str
    money_columns: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class LoaderSpec:
    """One Mongo collection -> its PostgreSQL tables, loaded together in one pass."""

    name: str
    collection: str
    domain: str
    tables: tuple[TableSpec, ...]
    description: str = ""
    append_only: bool = False
    remaps: tuple[DeferredRemap, ...] = ()
    prepare: Callable[[Iterator[Mapping[str, Any]]], Mapping[str, Any]] | None = None
    flags: tuple[str, ...] = ()
    ledger: LedgerSpec | None = None
    # Mongoose model names of the collection, where they do not follow from its name.
    models: tuple[str, ...] = ()
    # Source field paths left out on purpose, each with why (``{"__v": "Mongoose version key"}``);
    # a path covers its subtree. Every other path a document holds must be mapped.
    ignored: Mapping[str, str] = field(default_factory=dict)
    # A collection that grows without bound: its load may be split into _id ranges, one Dagster
    # step each (load/ranged.py). Only for collections whose transform needs no collection-wide
    # context; a small collection gains nothing from the extra steps.
    ranged: bool = False

    @property
    def root(self) -> TableSpec:
        return self.tables[0]

    def table(self, name: str) -> TableSpec:
        for t in self.tables:
            if t.table == name:
                return t
        raise KeyError(name)

    @property
    def table_names(self) -> tuple[str, ...]:
        return tuple(t.table for t in self.tables)

    def external_parents(self) -> set[str]:
        """Tables outside this loader that non-deferred FKs point at."""
        own = set(self.table_names)
        return {p for t in self.tables for p in t.fk_parents(include_deferred=False)} - own

    @property
    def self_deferred(self) -> tuple[tuple[TableSpec, Column], ...]:
        own = set(self.table_names)
        return tuple(
            (t, c) for t in self.tables for c in t.fk_columns if c.deferred and c.ref_table in own
        )


def get_path(obj: Any, path: str | None) -> Any:
    if path is None:
        return MISSING
    cur = obj
    for part in path.split("."):
        if isinstance(cur, Mapping) and part in cur:
            cur = cur[part]
        else:
            return MISSING
    return cur


def resolve_source(column: Column, source: Any, doc: Mapping[str, Any], index: int, ctx) -> Any:
    """The raw source value of ``column`` for one row (defaults applied; MISSING if absent)."""
    if column.compute is not None:
        value = column.compute(source, doc, ctx)
    elif column.path == "$index":
        value = index
    elif column.path == "$element":
        value = source
    elif column.path and column.path.startswith("$root."):
        value = get_path(doc, column.path[len("$root."):])
    else:
        value = get_path(source, column.path)
    if value is MISSING and column.default is not MISSING:
        value = column.default
    return value


def source_path(table: TableSpec, path: str) -> str:
    """A column path relative to the whole document (``specifications[].key``)."""
    if path.startswith("$root."):
        return path[len("$root."):]
    if path == "$index":
        return f"{table.rows.path}[] (position)"
    if path == "$element":
        return f"{table.rows.path}[]"
    if table.rows.mode == "array":
        return f"{table.rows.path}[].{path}"
    if table.rows.mode == "embedded":
        return f"{table.rows.path}.{path}"
    return path
