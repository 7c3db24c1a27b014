"""Applies ``sql/`` to the target: files in name order, each once, each in its own
transaction, recorded with its sha256 in ``migration.schema_migrations``.

Re-running is a no-op; a file whose content changed after it was applied is refused
(write a new migration instead of editing history).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import psycopg

from migration_assets.target import bookkeeping as bk

SQL_DIR = Path(__file__).resolve().parents[2] / "sql"
_LOCK_KEY = 0x6D696772  # advisory lock: one schema runner at a time


class SchemaDrift(RuntimeError):
    """An applied migration file no longer has the content it was applied with."""


@dataclass
class SchemaResult:
    applied: list[str]
    skipped: list[str]


def migration_files(sql_dir: Path = SQL_DIR) -> list[Path]:
    files = sorted(p for p in sql_dir.glob("*.sql") if p.is_file())
    if not files:
        raise FileNotFoundError(f"no .sql files in {sql_dir}")
    return files


def apply_migrations(conn: psycopg.Connection, sql_dir: Path = SQL_DIR) -> SchemaResult:
    files = migration_files(sql_dir)
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", [_LOCK_KEY])
        done = bk.ensure_schema_record(conn)
    drift = []
    for f in files:
        recorded = done.get(f.name)
        if recorded is not None and recorded != hashlib.sha256(f.read_bytes()).hexdigest():
            drift.append(f.name)
    if drift:
        raise SchemaDrift(
            f"applied migration(s) changed on disk: {', '.join(drift)}; add a new file instead of editing one"
        )
    applied, skipped = [], []
    for f in files:
        if f.name in done:
            skipped.append(f.name)
            continue
        body = f.read_bytes()
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", [_LOCK_KEY])
            # Another runner may have applied it while we waited for the lock.
            if bk.schema_file_recorded(conn, f.name):
                skipped.append(f.name)
                continue
            conn.execute(body.decode("utf-8"))
            bk.record_schema_file(conn, f.name, hashlib.sha256(body).hexdigest())
        applied.append(f.name)
    return SchemaResult(applied, skipped)
