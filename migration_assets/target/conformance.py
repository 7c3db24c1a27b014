"""Conformance of a live target to the specs, before any row is loaded into it.

The target may be the application's own database, built by its own migrations and named
its own way. What the load relies on is checked there, object by object: tables and
columns (types, nullability), the foreign keys the asset graph follows, enum labels, the
unique keys the upserts conflict on (the key, ``legacy_object_id``, ``id_map``), the funds
ledger's immutability triggers and money CHECKs, and the platform's own schema. A mismatch
is one line naming the object, what the specs expect and what the target has; a loader
refuses a table that does not conform. Notes (an extra column with a default, a label the
specs do not know, a role with more power than it needs) are listed but refuse nothing.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import psycopg

from migration_assets.specs.kinds import Enum, Int, Numeric
from migration_assets.specs.model import LoaderSpec, TableSpec
from migration_assets.specs.registry import all_loaders
from migration_assets.target.adoption import Catalog
from migration_assets.target.grants import ledger_risks

PLATFORM_TABLES = ("migration.quarantine", "migration.load_checkpoints", "migration.deferred_refs",
                   "migration.schema_migrations", "migration.ledger_entry_snapshot", "migration.removed_rows",
                   "migration.ledger_conflict_acks", "migration.source_digests", "migration.load_ranges")
DATABASE = "(database)"


class SchemaMismatch(RuntimeError):
    """The target does not conform to the specs; nothing was written."""

    def __init__(self, mismatches: Sequence[Mismatch]):
        self.mismatches = list(mismatches)
        first = self.mismatches[0]
        more = f" (and {len(self.mismatches) - 1} more)" if len(self.mismatches) > 1 else ""
        super().__init__(f"the target does not conform to the specs: {first.line()}{more}; "
                         f"`migration-assets doctor` lists every mismatch")


@dataclass(frozen=True)
class Mismatch:
    table: str  # whose (a table of the specs, or DATABASE)
    object: str
    expected: str
    actual: str
    blocking: bool = True  # False: a note

    def line(self) -> str:
        return f"{self.object}: the specs expect {self.expected}, the target has {self.actual}"


@dataclass
class Conformance:
    by_table: dict[str, list[Mismatch]] = field(default_factory=dict)
    database: list[Mismatch] = field(default_factory=list)

    def of(self, table: str) -> list[Mismatch]:
        return self.by_table.get(table, [])

    def blocking(self, tables: Sequence[str] | None = None) -> list[Mismatch]:
        tables = list(self.by_table) if tables is None else tables
        return [m for m in self.database + [m for t in tables for m in self.of(t)] if m.blocking]

    @property
    def all(self) -> list[Mismatch]:
        return self.database + [m for ms in self.by_table.values() for m in ms]


def expected_type(kind) -> tuple[str, ...]:
    """format_type() names a column of this kind may have."""
    if isinstance(kind, Numeric):
        return (f"numeric({kind.precision},{kind.scale})", "numeric")
    if isinstance(kind, Enum):
        return (kind.pg_type,)
    if isinstance(kind, Int):
        return (kind.pg_type,)
    return tuple(kind.pg_types)


def _unique_on(catalog: Catalog, table: str, columns: Sequence[str]) -> str | None:
    """A unique constraint or unique index on exactly these columns (ON CONFLICT needs one)."""
    want = sorted(columns)
    for t, name, contype, cols, _, _ in catalog.constraints:
        if t == table and contype in ("p", "u") and sorted(cols) == want:
            return name
    for t, name, unique, keys, predicate in catalog.indexes:
        if t == table and unique and not predicate and sorted(keys) == want:
            return name
    return None


def table_mismatches(catalog: Catalog, loader: LoaderSpec, table: TableSpec) -> list[Mismatch]:
    t = table.table
    if t not in catalog.tables:
        return [Mismatch(t, f"table {t}", f"a table (fed by {loader.collection})", "none")]
    out = []
    spec_columns = {c.name: c for c in table.columns}
    for c in table.columns:
        found = catalog.columns.get((t, c.name))
        if found is None:
            out.append(Mismatch(t, f"column {t}.{c.name}", expected_type(c.kind)[0], "no such column"))
            continue
        typ, not_null, has_default = found
        if typ not in expected_type(c.kind):
            out.append(Mismatch(t, f"column {t}.{c.name}", f"type {expected_type(c.kind)[0]}", f"type {typ}"))
        if not_null and not c.required and not c.deferred and not has_default:
            out.append(Mismatch(t, f"column {t}.{c.name}", "NULL allowed (the source may lack it)", "NOT NULL"))
        elif not not_null and c.required and not c.deferred:
            out.append(Mismatch(t, f"column {t}.{c.name}", "NOT NULL", "NULL allowed", blocking=False))
    for (tt, name), (typ, not_null, has_default) in sorted(catalog.columns.items()):
        if tt == t and name not in spec_columns:
            out.append(Mismatch(t, f"column {t}.{name}", "no such column", f"{typ}"
                                + (" NOT NULL without a default: inserts would fail" if not_null and not has_default
                                   else " (left to its default)"),
                                blocking=not_null and not has_default))
    fks = {(cols, ref.split(".")[-1]): name for tt, name, contype, cols, ref, _ in catalog.constraints
           if tt == t and contype == "f"}
    want = {((c.name,), c.ref_table): c.name for c in table.fk_columns}
    for (cols, ref), column in sorted(want.items()):
        if (cols, ref) not in fks:
            out.append(Mismatch(t, f"foreign key {t}.{column} -> {ref}", f"a foreign key to {ref}", "none"))
    for (cols, ref), name in sorted(fks.items()):
        if (cols, ref) not in want:
            out.append(Mismatch(t, f"foreign key {name} ({t}.{', '.join(cols)} -> {ref})", "no such foreign key "
                                "(the asset graph would not order the loads by it)", "one"))
    if not _unique_on(catalog, t, table.key):
        out.append(Mismatch(t, f"unique key {t}({', '.join(table.key)})", "a unique constraint or index "
                            "(the upsert's ON CONFLICT)", "none"))
    if table.has_legacy_id and not _unique_on(catalog, t, ["legacy_object_id"]):
        out.append(Mismatch(t, f"unique key {t}(legacy_object_id)", "a unique constraint or index", "none"))
    for c in table.columns:
        if isinstance(c.kind, Enum):
            labels = catalog.labels.get(c.kind.pg_type)
            if labels is None:
                continue  # the column's type mismatch says it
            missing = [v for v in c.kind.values if v not in labels]
            extra = [v for v in labels if v not in c.kind.values]
            if missing:
                out.append(Mismatch(t, f"enum {c.kind.pg_type}", f"labels {', '.join(missing)}", f"{', '.join(labels)}"))
            if extra:
                out.append(Mismatch(t, f"enum {c.kind.pg_type}", "only the specs' labels", f"also {', '.join(extra)}",
                                    blocking=False))
    return out


# pg_trigger.tgtype: ROW 1, BEFORE 2, DELETE 8, UPDATE 16, TRUNCATE 32.
LEDGER_GUARDS = (("UPDATE", 16, True), ("DELETE", 8, True), ("TRUNCATE", 32, False))


def ledger_mismatches(conn: psycopg.Connection, catalog: Catalog, loader: LoaderSpec) -> list[Mismatch]:
    t = loader.root.table
    out = []
    for op, bit, row in LEDGER_GUARDS:
        guards = [(name, enabled) for tt, name, _, tgtype, enabled in catalog.triggers
                  if tt == t and tgtype & bit and tgtype & 2 and bool(tgtype & 1) == row]
        if not guards:
            out.append(Mismatch(t, f"trigger on {t}", f"a BEFORE {op} trigger refusing it (immutability)", "none"))
        elif not any(enabled for _, enabled in guards):
            out.append(Mismatch(t, f"trigger {guards[0][0]} on {t}", f"the BEFORE {op} guard enabled", "it disabled"))
    for table, column in loader.ledger.money_columns:
        checks = [d for tt, _, contype, _, _, d in catalog.constraints
                  if tt == table and contype == "c" and re.search(rf"\b{column}\b\s*>\s*\(?0", d)]
        if not checks:
            out.append(Mismatch(t, f"check on {table}.{column}", f"CHECK ({column} > 0)", "none"))
    role, risks = ledger_risks(conn, [t])
    out += [Mismatch(t, f"role {role}", "neither superuser nor owner of the ledger (either could switch its "
                     "triggers off; see `schema --print-grants`)", risk, blocking=False) for risk in risks]
    return out


def database_mismatches(catalog: Catalog) -> list[Mismatch]:
    out = []
    if "id_map" not in catalog.tables:
        out.append(Mismatch(DATABASE, "table id_map", "a table", "none"))
    elif not _unique_on(catalog, "id_map", ["entity", "legacy_id"]):
        out.append(Mismatch(DATABASE, "unique key id_map(entity, legacy_id)", "a unique constraint or index", "none"))
    missing = [t for t in PLATFORM_TABLES if t not in catalog.tables]
    if missing:
        out.append(Mismatch(DATABASE, "the migration schema", f"{', '.join(missing)} (run `migration-assets schema`)",
                            "none of them" if len(missing) == len(PLATFORM_TABLES) else "some missing"))
    return out


def check_conformance(conn: psycopg.Connection, loaders: Sequence[LoaderSpec] | None = None) -> Conformance:
    """The mismatches of these loaders' tables (every loader by default) and of the database."""
    catalog = Catalog.read(conn)
    out = Conformance(database=database_mismatches(catalog))
    for loader in all_loaders() if loaders is None else loaders:
        for table in loader.tables:
            out.by_table[table.table] = table_mismatches(catalog, loader, table)
        if loader.ledger is not None:
            out.by_table[loader.root.table] += ledger_mismatches(conn, catalog, loader)
    return out


def require_conformance(conn: psycopg.Connection, loader: LoaderSpec | None = None) -> Conformance:
    """The loader's conformance (None: the database's alone: id_map and the migration
    schema); raises :class:`SchemaMismatch` when anything blocks its load."""
    result = check_conformance(conn, [loader] if loader else [])
    blocking = result.blocking(loader.table_names if loader else [])
    if blocking:
        raise SchemaMismatch(blocking)
    return result
