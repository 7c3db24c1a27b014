"""Removing the rows of a document, child rows first, every row (and what an ON DELETE
action would change with it) copied to ``migration.removed_rows`` in the same transaction:
for documents Mongo no longer holds (the catch-up, a re-sync) and for documents that no
longer map (the load path withdraws their stale rows when it quarantines them)."""

from __future__ import annotations

from collections.abc import Sequence

import psycopg

from migration_assets.specs.model import LoaderSpec
from migration_assets.target import bookkeeping as bk


def remove_documents(conn: psycopg.Connection, loader: LoaderSpec, legacy_ids: Sequence[str], run_id: str
                     ) -> tuple[list[str], list[str], dict[str, str]]:
    """Remove the rows of documents (that Mongo no longer holds, or that no longer map),
    child rows first, each copied to ``migration.removed_rows`` first (a wrong delete is
    undone from there), and so are the rows of other tables that an ON DELETE action would
    change with them. Returns (removed, already absent, refused): a document that another
    table's row still references is not removed, and both are named."""
    removed, absent, refused = [], [], {}
    root = loader.root
    for legacy in legacy_ids:
        row = conn.execute(f"SELECT id FROM public.{root.table} WHERE legacy_object_id = %s", [legacy]).fetchone()
        if row is None:
            absent.append(legacy)  # nothing to remove: in sync
            continue
        if loader.append_only:
            refused[legacy] = f"{root.table} is append-only: an entry Mongo no longer holds is never deleted"
            continue
        try:
            with conn.transaction():
                for t in [*loader.tables[1:], root]:
                    column = "id" if t.is_root else t.parent_column
                    where = (f"{column} = %s", [row[0]])
                    save_affected(conn, loader.name, f"public.{t.table}", where, legacy, run_id)
                    bk.save_removed(conn, loader.name, f"public.{t.table}", *where, legacy, run_id)
                    conn.execute(f"DELETE FROM public.{t.table} WHERE {where[0]}", where[1])
            removed.append(legacy)
        except psycopg.errors.ForeignKeyViolation as e:
            refused[legacy] = still_referenced(conn, root.table, legacy, row[0], e.diag.constraint_name)
        except UnsavedRows as e:
            refused[legacy] = f"{root.table} {legacy} not removed: {e}"
    return removed, absent, refused


class UnsavedRows(RuntimeError):
    """Rows a delete would change that cannot be copied to the audit table first."""


ON_DELETE = {"c": "deleted by ON DELETE CASCADE", "n": "set to NULL by ON DELETE SET NULL",
             "d": "set to its default by ON DELETE SET DEFAULT"}


def on_delete_actions(conn: psycopg.Connection, relation: str) -> list[tuple[str, str, str, str]]:
    """(referencing relation, its column, the referenced column, action) of the foreign keys
    whose ON DELETE action changes other rows when a row of ``relation`` is deleted."""
    return [tuple(r) for r in conn.execute(
        "SELECT c.conrelid::regclass::text, a.attname, r.attname, c.confdeltype FROM pg_constraint c "
        "JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1] "
        "JOIN pg_attribute r ON r.attrelid = c.confrelid AND r.attnum = c.confkey[1] "
        "WHERE c.contype = 'f' AND c.confrelid = %s::regclass AND c.confdeltype IN ('c', 'n', 'd') "
        "ORDER BY 1, 2", [relation]).fetchall()]


def save_affected(conn: psycopg.Connection, loader: str, relation: str, where: tuple[str, list], document: str,
                  run_id: str, depth: int = 0) -> None:
    """Copy to ``migration.removed_rows`` the rows that deleting ``relation``'s rows matching
    ``where`` changes through ON DELETE actions (followed down cascades), before the delete."""
    for referencing, column, referenced, action in on_delete_actions(conn, relation):
        if depth > 8:
            raise UnsavedRows(f"ON DELETE CASCADE chain from {relation} deeper than 8 tables")
        sub = (f"{column} IN (SELECT {referenced} FROM {relation} WHERE {where[0]})", where[1])
        try:
            with conn.transaction():
                bk.save_removed(conn, loader, referencing, *sub, document, run_id, f"{ON_DELETE[action]} of {relation}")
        except psycopg.errors.InsufficientPrivilege as e:
            raise UnsavedRows(
                f"the rows of {referencing} that its foreign key's ON DELETE action would change cannot be copied "
                f"to migration.removed_rows first ({e.diag.message_primary}); GRANT SELECT ON {referencing} to "
                f"the platform's role") from e
        if action == "c":
            save_affected(conn, loader, referencing, sub, document, run_id, depth + 1)


def still_referenced(conn: psycopg.Connection, table: str, legacy: str, pk, constraint: str | None) -> str:
    """Why a row was not removed: the rows (by legacy id) whose foreign key still names it."""
    found = conn.execute(
        "SELECT conrelid::regclass::text, a.attname FROM pg_constraint c JOIN pg_attribute a "
        "ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1] WHERE c.conname = %s AND c.contype = 'f'",
        [constraint]).fetchone() if constraint else None
    if found is None:
        return f"{table} {legacy} not removed: still referenced ({constraint or 'a foreign key'})"
    referencing, column = found
    has_legacy = conn.execute("SELECT 1 FROM pg_attribute WHERE attrelid = %s::regclass AND attname = "
                              "'legacy_object_id'", [referencing]).fetchone()
    label = "legacy_object_id" if has_legacy else "ctid::text"
    ids = [r[0] for r in conn.execute(f"SELECT {label} FROM {referencing} WHERE {column} = %s ORDER BY 1 LIMIT 5",
                                      [pk]).fetchall()]
    return (f"{table} {legacy} not removed: {referencing} {', '.join(ids)} still references it "
            f"({constraint}); remove or re-point that row first")
