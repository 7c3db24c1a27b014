"""Rows into PostgreSQL: binary COPY (the only copy path), upserts from staging tables, the
append-only comparison, id lookups, and the dry run's shadow tables in a read-only session.

A loader's rows go straight into its tables when they were empty at the start of the load
(``fresh``), otherwise through a staging table and an upsert that rewrites only rows that
differ. Append-only tables are insert-if-absent: an existing row is never rewritten.
"""

from __future__ import annotations

import re
import uuid
import weakref
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from migration_assets.specs.kinds import Json, dumps_json
from migration_assets.specs.model import LoaderSpec, TableSpec
from migration_assets.transform.results import DocResult


class UnsupportedColumnType(RuntimeError):
    """A target column whose type binary COPY cannot send (a domain, a composite)."""


class RowRefused(Exception):
    """PostgreSQL refused row ``row`` (0-based) of a COPY into ``table``; ``error`` says why."""

    def __init__(self, table: str, row: int, error: psycopg.Error):
        super().__init__(f"{table} row {row}: {error}")
        self.table, self.row, self.error = table, row, error


_COPY_LINE = re.compile(r"^COPY \S+, line (\d+)")
# What PostgreSQL refuses a row for (its data, not the session): these isolate a document.
REFUSED = (psycopg.errors.IntegrityError, psycopg.errors.DataError, psycopg.errors.ProgramLimitExceeded,
           psycopg.errors.CardinalityViolation)  # the last: a child key repeated inside one document


# --- lookups ---------------------------------------------------------------------------

def lookup_ids(conn: psycopg.Connection, table: str, legacy_ids: Iterable[str],
               *, also: str | None = None) -> dict[str, uuid.UUID]:
    """legacy id -> id of ``public.table`` rows; ``also`` names a second relation (a dry
    run's shadow table) searched after it. The ids travel as one binary text[]."""
    ids = sorted(legacy_ids)
    if not ids:
        return {}
    sql = f"SELECT legacy_object_id, id, 0 FROM public.{table} WHERE legacy_object_id = ANY(%b)"
    params: list[Any] = [ids]
    if also:
        sql += f" UNION ALL SELECT legacy_object_id, id, 1 FROM {also} WHERE legacy_object_id = ANY(%b)"
        params.append(ids)
    out: dict[str, uuid.UUID] = {}
    for legacy, pk, _ in sorted(conn.execute(sql, params).fetchall(), key=lambda r: r[2]):
        out.setdefault(legacy, pk)  # public first: an existing row keeps its id
    return out


def table_has_rows(conn: psycopg.Connection, table: str) -> bool:
    return conn.execute(f"SELECT EXISTS (SELECT 1 FROM public.{table})").fetchone()[0]


# --- dry runs: shadow tables in a read-only session -------------------------------------

def shadow_name(table: str) -> str:
    """A dry run's stand-in for ``public.table``: a session-private temporary table."""
    return f"pg_temp.dry_{table}"


_read_only: weakref.WeakSet = weakref.WeakSet()


def create_shadows(conn: psycopg.Connection, tables: Iterable[str]) -> None:
    """Empty temporary copies of ``tables`` with their NOT NULL, CHECK and unique
    constraints (not FKs: the dry run resolves references itself), plus their staging
    tables. Must run before :func:`enter_read_only`."""
    for table in tables:
        conn.execute(f"DROP TABLE IF EXISTS {shadow_name(table)}")
        conn.execute(
            f"CREATE TEMP TABLE dry_{table} (LIKE public.{table} INCLUDING DEFAULTS INCLUDING CONSTRAINTS "
            f"INCLUDING INDEXES INCLUDING GENERATED)"
        )
        conn.execute(f"CREATE TEMP TABLE IF NOT EXISTS stg_{table} (LIKE public.{table} INCLUDING DEFAULTS)")


def shadow_exists(conn: psycopg.Connection, table: str) -> bool:
    return conn.execute("SELECT to_regclass(%s) IS NOT NULL", [shadow_name(table)]).fetchone()[0]


def enter_read_only(conn: psycopg.Connection) -> None:
    """From here on PostgreSQL itself refuses any write to a non-temporary table on this
    session: the dry run's guarantee does not rest on the loader's code paths."""
    conn.execute("SET default_transaction_read_only = on")
    _read_only.add(conn)


def leave_read_only(conn: psycopg.Connection) -> None:
    _read_only.discard(conn)
    if not conn.closed and not conn.broken:
        conn.execute("RESET default_transaction_read_only")


# --- binary COPY ------------------------------------------------------------------------

def json_positions(table: TableSpec) -> list[int]:
    return [i for i, c in enumerate(table.columns) if isinstance(c.kind, Json)]


def adapt_row(row: list[Any], positions: Sequence[int]) -> list[Any]:
    """JSON values wrapped for psycopg, written in the exact canonical number form."""
    for i in positions:
        if row[i] is not None:
            row[i] = Jsonb(row[i], dumps=dumps_json)
    return row


def copy_types(conn: psycopg.Connection, relation: str) -> dict[str, str]:
    """Column -> a type name psycopg dumps in binary (enums travel as their label text)."""
    rows = conn.execute(
        """
        SELECT a.attname, t.typname, t.typtype, t.typcategory, e.typname, e.typtype
        FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
        LEFT JOIN pg_type e ON e.oid = t.typelem AND t.typcategory = 'A'
        WHERE a.attrelid = to_regclass(%s) AND a.attnum > 0 AND NOT a.attisdropped
        """,
        [relation],
    ).fetchall()
    out = {}
    for name, typname, typtype, category, elem, elemtype in rows:
        if category == "A" and elem:
            out[name] = ("text" if elemtype == "e" else elem) + "[]"
        else:
            out[name] = "text" if typtype == "e" else typname
    return out


class Copier:
    """Binary COPY with the column types read from the catalog once per relation."""

    def __init__(self) -> None:
        self.types: dict[tuple[str, tuple[str, ...]], list[str]] = {}

    def types_for(self, conn: psycopg.Connection, relation: str, columns: Sequence[str]) -> list[str]:
        key = (relation, tuple(columns))
        if key not in self.types:
            names = copy_types(conn, relation)
            types = [names.get(c) for c in columns]
            registry = conn.adapters.types
            for column, name in zip(columns, types):
                if name is None or registry.get(name) is None:
                    raise UnsupportedColumnType(
                        f"{relation}.{column}: type {name or '(no such column)'} cannot be written by binary COPY")
            self.types[key] = types  # type: ignore[assignment]
        return self.types[key]

    def copy(self, conn: psycopg.Connection, relation: str, columns: Sequence[str], rows: Iterable[list[Any]]) -> int:
        types = self.types_for(conn, relation, columns)
        n = 0
        with conn.cursor() as cur, cur.copy(f"COPY {relation} ({', '.join(columns)}) FROM STDIN (FORMAT BINARY)") as cp:
            cp.set_types(types)
            for row in rows:
                cp.write_row(row)
                n += 1
        return n


# --- upserts ------------------------------------------------------------------------------

def staging(conn: psycopg.Connection, table: str) -> str:
    """The session's empty staging table of ``table``."""
    name = f"stg_{table}"
    if conn in _read_only:
        # TRUNCATE counts as a write in a read-only transaction; a temp table's DELETE does not.
        conn.execute(f"DELETE FROM pg_temp.{name}")
        return name
    conn.execute(f"CREATE TEMP TABLE IF NOT EXISTS {name} (LIKE public.{table} INCLUDING DEFAULTS)")
    conn.execute(f"TRUNCATE {name}")
    return name


def upsert_sql(target: str, staged: str, columns: Sequence[str], key: Sequence[str], *,
               append_only: bool, keep: Sequence[str] = ()) -> str:
    """INSERT from staging; on a key conflict rewrite only the columns that differ (never
    ``keep``), or nothing at all for append-only tables."""
    cols = ", ".join(columns)
    upd = [] if append_only else [c for c in columns if c not in key and c not in keep]
    if upd:
        sets = ", ".join(f"{c} = EXCLUDED.{c}" for c in upd)
        old = ", ".join(f"t.{c}" for c in upd)
        new = ", ".join(f"EXCLUDED.{c}" for c in upd)
        action = f"DO UPDATE SET {sets} WHERE ({old}) IS DISTINCT FROM ({new})"
    else:
        action = "DO NOTHING"
    return f"INSERT INTO {target} AS t ({cols}) SELECT {cols} FROM {staged} ON CONFLICT ({', '.join(key)}) {action}"


def append_only_conflicts(conn: psycopg.Connection, table: TableSpec, *, target: str, staged: str,
                          ids: Sequence[Any] | None = None) -> list[str]:
    """Legacy ids whose staged row differs from the row already in the table (an immutable
    entry the source changed). Reported, never rewritten. ``ids`` limits the comparison to
    this batch (a dry run's shadow holds every batch)."""
    columns = table.column_names
    cmp = [c for c in columns if c not in table.key]
    if not cmp or "legacy_object_id" not in columns:
        return []
    on = " AND ".join(f"t.{k} = s.{k}" for k in table.key)
    where = f"({', '.join('t.' + c for c in cmp)}) IS DISTINCT FROM ({', '.join('s.' + c for c in cmp)})"
    params: list[Any] = []
    if ids is not None:
        where += " AND s.id = ANY(%s)"
        params.append(list(ids))
    rows = conn.execute(f"SELECT s.legacy_object_id FROM {staged} s JOIN {target} t ON {on} WHERE {where} ORDER BY 1",
                        params).fetchall()
    return [r[0] for r in rows]


class LoaderWriter:
    """Writes the rows of a batch of documents into the loader's tables (or, for a dry run,
    into the relations ``into`` names) and collects the append-only conflicts."""

    def __init__(self, conn: psycopg.Connection, loader: LoaderSpec, into: Callable[[str], str] | None = None):
        self.conn = conn
        self.loader = loader
        self.into = into or (lambda t: f"public.{t}")
        self.keep = {t.table: [c.name for c in t.columns if c.deferred] for t in loader.tables}
        self.json = {t.table: json_positions(t) for t in loader.tables}
        self.copier = Copier()
        self.conflicts: set[str] = set()

    @property
    def dry(self) -> bool:
        return not self.into(self.loader.root.table).startswith("public.")

    def identity_conflict(self, table: str, index: str | None) -> bool:
        """Whether a unique index that refused a row is on the row's identity (its key, or
        its legacy id): another writer holds that row, so it is merged, not refused. A
        shadow table has no other writer."""
        if self.dry or index is None:
            return False
        spec = self.loader.table(table)
        columns = {r[0] for r in self.conn.execute(
            "SELECT a.attname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey) "
            "WHERE c.relname = %s AND i.indrelid = %s::regclass", [index, f"public.{table}"]).fetchall()}
        return bool(columns) and (columns <= set(spec.key) or columns == {"legacy_object_id"})

    def rows(self, results: Sequence[DocResult], table: TableSpec) -> list[list[Any]]:
        pos = self.json[table.table]
        return [adapt_row(list(row), pos) if pos else row for r in results for row in r.rows.get(table.table, ())]

    def write(self, results: Sequence[DocResult], fresh: bool) -> dict[str, int]:
        """Rows inserted or changed per table. ``fresh``: COPY straight into the tables."""
        changed: dict[str, int] = {}
        for table in self.loader.tables:
            rows = self.rows(results, table)
            target = self.into(table.table)
            if fresh:
                try:
                    changed[table.table] = self.copier.copy(self.conn, target, table.column_names, rows)
                except REFUSED as e:
                    line = _COPY_LINE.match(e.diag.context or "")
                    if line is None:
                        raise
                    raise RowRefused(table.table, int(line.group(1)) - 1, e) from e
                if self.loader.append_only and table.is_root and self.dry:
                    # The immutable rows a real run would find changed in the target.
                    ids = [row[table.column_names.index("id")] for row in rows]
                    self.conflicts.update(append_only_conflicts(self.conn, table, target=f"public.{table.table}",
                                                                staged=target, ids=ids))
                continue
            staged = staging(self.conn, table.table)
            self.copier.copy(self.conn, staged, table.column_names, rows)
            if not table.is_root and not self.loader.append_only:
                # Child rows the documents no longer hold go; the rest is upserted.
                root_idx = self.loader.root.column_names.index("id")
                parents = [row[root_idx] for r in results for row in r.rows[self.loader.root.table]]
                keys = ", ".join(table.key)
                self.conn.execute(
                    f"DELETE FROM {target} t WHERE t.{table.parent_column} = ANY(%s) "
                    f"AND ({', '.join('t.' + k for k in table.key)}) NOT IN (SELECT {keys} FROM {staged})",
                    [parents])
            keep = self.keep[table.table] if table.is_root else ()
            changed[table.table] = self.conn.execute(upsert_sql(
                target, staged, table.column_names, table.key, append_only=self.loader.append_only, keep=keep)).rowcount
            if self.loader.append_only and table.is_root:
                # Immutable rows are never rewritten; a source that changed one is reported.
                self.conflicts.update(append_only_conflicts(self.conn, table, target=target, staged=staged))
        return changed
