"""Declarative table specs: which Mongo collection feeds which PostgreSQL tables, column by
column. The FK graph, the asset graph, the source contract, column lineage, transforms and
checksums are all derived from these specs; nothing else lists tables.

A :class:`LoaderSpec` is one Mongo collection loaded in one pass into one or more tables:
the root table (one row per document) and child tables built from embedded objects or
arrays of the same document, which PostgreSQL stores relationally.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from migration_assets.kinds import LEGACY_ID, TEXT, DerivedId, Kind, LegacyId, Ref, RowId

DOMAINS = ("auth", "marketplace", "payments", "points_wallet", "config_ops", "content_social", "chat")

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
    def has_legacy_id(self) -> bool:
        return any(isinstance(c.kind, LegacyId) for c in self.columns)

    @property
    def root_key_column(self) -> str:
        """Column holding (or referencing) the source document's ``_id``: bisection key."""
        return "legacy_object_id" if self.is_root else self.parent_column  # type: ignore[return-value]

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
class DeferredRemap:
    """A reference column set after its target table loads (breaks an FK cycle).

    It becomes its own asset downstream of both tables, e.g. the selectedOffer remap.
    """

    name: str
    table: str
    column: str
    description: str
    validate_sql: str | None = None


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
    prepare_fields: tuple[str, ...] = ()
    flags: tuple[str, ...] = ()
    extra: Mapping[str, Any] = field(default_factory=dict)

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


# --- helpers that keep specs short ------------------------------------------------------

def id_column(table: str, path: str = "_id") -> Column:
    return Column("id", RowId(table), path, required=True, doc="uuid5 of the legacy id (or the existing row's id)")


def derived_id_column(table: str) -> Column:
    """``id`` of a zero-or-one child row without a legacy id: uuid5 of table + document ``_id``."""
    return Column("id", DerivedId(table), "$root._id", required=True,
                  doc="uuid5 of this table and the enclosing document's _id")


def demote_duplicates(docs: Iterable[Mapping[str, Any]], *, flagged: Callable[[Mapping[str, Any]], bool],
                      group: Callable[[Mapping[str, Any]], Any], rank: Callable[[Mapping[str, Any]], Any],
                      keep: str = "first") -> dict[str, str]:
    """A flag PostgreSQL allows once per group (an active category name, a user's primary
    address) that Mongo holds several times: among the flagged documents of a group, keep the
    first (or last) by ``rank``; returns each other one's ``_id`` -> the kept one's ``_id``."""
    members = []
    for d in docs:
        if flagged(d):
            g = group(d)
            if g is not None:
                members.append((g, rank(d), str(d["_id"])))
    kept: dict[Any, str] = {}
    for g, _, oid in sorted(members, key=lambda m: m[1], reverse=keep == "last"):
        kept.setdefault(g, oid)
    return {oid: kept[g] for g, _, oid in members if kept[g] != oid}


def flag_unless_demoted(field: str, default: bool, ctx_key: str):
    """``compute`` of a flag column: the document's flag, false for a demoted duplicate."""

    def compute(source: Mapping[str, Any], doc: Mapping[str, Any], ctx: Mapping[str, Any]) -> Any:
        value = doc.get(field, default)
        if value is True and str(doc["_id"]) in ctx.get(ctx_key, {}):
            return False
        return value

    return compute


def postal_address_columns() -> tuple[Column, ...]:
    """The postal address shape the backend uses everywhere (user addresses, delivery addresses)."""
    return (
        Column("recipient_name", TEXT, "recipientName"),
        Column("line1", TEXT, "line1", required=True),
        Column("line2", TEXT, "line2"),
        Column("city", TEXT, "city", required=True),
        Column("region", TEXT, "region"),
        Column("postal_code", TEXT, "postalCode"),
        Column("country_code", TEXT, "country", required=True),
        Column("phone", TEXT, "phone"),
    )


def legacy_column(path: str = "_id") -> Column:
    return Column("legacy_object_id", LEGACY_ID, path, required=True, doc="Mongo _id as 24 hex characters")


def parent_column(name: str, table: str) -> Column:
    return Column(name, Ref(table), "$root._id", required=True, doc=f"the enclosing {table} document")


# --- discovery -------------------------------------------------------------------------

@cache
def all_loaders() -> tuple[LoaderSpec, ...]:
    """Every ``LOADER`` defined under ``migration_assets.tables``, in dependency order."""
    import migration_assets.tables as pkg

    found: list[LoaderSpec] = []
    for info in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + "."):
        module = importlib.import_module(info.name)
        loader = getattr(module, "LOADER", None)
        if isinstance(loader, LoaderSpec):
            found.append(loader)
    names = [l.name for l in found]
    dupes = {n for n in names if names.count(n) > 1}
    if dupes:
        raise ValueError(f"duplicate loader names: {sorted(dupes)}")
    return tuple(toposort(found))


def toposort(loaders: list[LoaderSpec]) -> list[LoaderSpec]:
    by_table = {t: l for l in loaders for t in l.table_names}
    done: set[str] = set()
    out: list[LoaderSpec] = []

    def visit(l: LoaderSpec, stack: tuple[str, ...]) -> None:
        if l.name in done:
            return
        if l.name in stack:
            raise ValueError(f"FK cycle through loaders {stack + (l.name,)}; mark one column deferred")
        for parent in sorted(l.external_parents()):
            if parent not in by_table:
                raise ValueError(f"{l.name} references {parent}, which no loader produces")
            visit(by_table[parent], stack + (l.name,))
        done.add(l.name)
        out.append(l)

    for l in sorted(loaders, key=lambda x: x.name):
        visit(l, ())
    return out


def all_tables() -> dict[str, tuple[LoaderSpec, TableSpec]]:
    return {t.table: (l, t) for l in all_loaders() for t in l.tables}


def loaders_in_domain(domain: str) -> tuple[LoaderSpec, ...]:
    return tuple(l for l in all_loaders() if l.domain == domain)


def loader_for_table(table: str) -> LoaderSpec:
    return all_tables()[table][0]
