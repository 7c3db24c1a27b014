"""The PostgreSQL side: guarded connections, bulk writes, quarantine and checkpoints.

Writes go only to hosts on the allowlist (the seed's ``MIGRATION_PG_URL`` guard), checked
before any connection is opened.
"""

from __future__ import annotations

import ipaddress
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg.types.json import Jsonb

from migration_assets.kinds import Json, dumps_json


class TargetRefused(RuntimeError):
    """The target host is not on the allowlist; nothing was connected or written."""


class TargetUnavailable(RuntimeError):
    """PostgreSQL cannot be reached; the message names the endpoint without its password."""


def redact_url(url: str) -> str:
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable url>"
    netloc = parts.netloc
    if "@" in netloc:
        creds, host = netloc.rsplit("@", 1)
        netloc = f"{creds.split(':', 1)[0]}:***@{host}" if ":" in creds else f"{creds}@{host}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def url_host(url: str) -> str:
    parts = urlsplit(url)
    if parts.hostname:
        return parts.hostname
    # libpq also takes the host from ?host=...; an empty host means a Unix socket.
    for pair in parts.query.split("&"):
        if pair.startswith("host="):
            return pair[5:]
    return ""


def check_target_allowed(url: str, allowed_hosts: Iterable[str]) -> str:
    """Refuse ``url`` unless its host is allowlisted; returns the host. Never connects."""
    allowed = [h.strip().lower() for h in allowed_hosts if h and h.strip()]
    host = url_host(url).lower()
    if not host:
        raise TargetRefused(f"refusing {redact_url(url)}: no host in the URL (a Unix socket is not allowlisted)")
    if host in allowed or "*" in allowed:
        return host
    for entry in allowed:
        if "/" in entry:
            try:
                if ipaddress.ip_address(host) in ipaddress.ip_network(entry, strict=False):
                    return host
            except ValueError:
                continue
    raise TargetRefused(
        f"refusing to write to {redact_url(url)}: host {host!r} is not in MIGRATION_PG_ALLOWED_HOSTS "
        f"({', '.join(allowed) or 'empty'})"
    )


def connect(url: str, allowed_hosts: Iterable[str], *, application_name: str = "migration_assets",
            autocommit: bool = True, connect_timeout: int = 5) -> psycopg.Connection:
    """Guarded connection. Autocommit by default: every ``conn.transaction()`` block is then
    a real transaction (not a savepoint inside an implicit one), which checkpoints rely on."""
    check_target_allowed(url, allowed_hosts)
    try:
        return psycopg.connect(url, autocommit=autocommit, application_name=application_name,
                               connect_timeout=connect_timeout)
    except psycopg.OperationalError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise TargetUnavailable(f"PostgreSQL at {redact_url(url)} is unreachable: {first}") from None


# --- checkpoints -----------------------------------------------------------------------

@dataclass
class Checkpoint:
    loader: str
    generation: int
    source_fingerprint: str
    position: str | None
    status: str
    fresh: bool
    docs_read: int
    docs_quarantined: int
    rows_written: dict[str, int]


def read_checkpoint(conn: psycopg.Connection, loader: str) -> Checkpoint | None:
    row = conn.execute(
        "SELECT loader, generation, source_fingerprint, position, status, fresh, docs_read, "
        "docs_quarantined, rows_written FROM migration.load_checkpoints WHERE loader = %s",
        [loader],
    ).fetchone()
    return Checkpoint(*row) if row else None


def start_generation(conn: psycopg.Connection, loader: str, fingerprint: str, fresh: bool, run_id: str) -> Checkpoint:
    row = conn.execute(
        """
        INSERT INTO migration.load_checkpoints AS c
            (loader, generation, source_fingerprint, position, status, fresh, run_id)
        VALUES (%s, 1, %s, NULL, 'running', %s, %s)
        ON CONFLICT (loader) DO UPDATE SET
            generation = c.generation + 1, source_fingerprint = EXCLUDED.source_fingerprint,
            position = NULL, status = 'running', fresh = EXCLUDED.fresh, run_id = EXCLUDED.run_id,
            docs_read = 0, docs_quarantined = 0, rows_written = '{}', started_at = now(),
            updated_at = now(), completed_at = NULL
        RETURNING loader, generation, source_fingerprint, position, status, fresh, docs_read,
                  docs_quarantined, rows_written
        """,
        [loader, fingerprint, fresh, run_id],
    ).fetchone()
    return Checkpoint(*row)


def advance_checkpoint(conn: psycopg.Connection, cp: Checkpoint, run_id: str) -> None:
    conn.execute(
        "UPDATE migration.load_checkpoints SET position = %s, docs_read = %s, docs_quarantined = %s, "
        "rows_written = %s, run_id = %s, updated_at = now() WHERE loader = %s",
        [cp.position, cp.docs_read, cp.docs_quarantined, Jsonb(cp.rows_written), run_id, cp.loader],
    )


def complete_checkpoint(conn: psycopg.Connection, loader: str) -> None:
    conn.execute(
        "UPDATE migration.load_checkpoints SET status = 'completed', completed_at = now(), "
        "updated_at = now() WHERE loader = %s",
        [loader],
    )


# --- lookups ---------------------------------------------------------------------------

def lookup_ids(conn: psycopg.Connection, table: str, legacy_ids: Sequence[str]) -> dict[str, uuid.UUID]:
    if not legacy_ids:
        return {}
    rows = conn.execute(
        f"SELECT legacy_object_id, id FROM public.{table} WHERE legacy_object_id = ANY(%s)",
        [list(legacy_ids)],
    ).fetchall()
    return dict(rows)


def table_has_rows(conn: psycopg.Connection, table: str) -> bool:
    return conn.execute(f"SELECT EXISTS (SELECT 1 FROM public.{table})").fetchone()[0]


# --- writes ----------------------------------------------------------------------------

def adapt_row(row: list[Any], json_positions: Sequence[int]) -> list[Any]:
    for i in json_positions:
        if row[i] is not None:
            row[i] = Jsonb(row[i], dumps=dumps_json)
    return row


def json_positions(columns) -> list[int]:
    return [i for i, c in enumerate(columns) if isinstance(c.kind, Json)]


def copy_rows(conn: psycopg.Connection, table: str, columns: Sequence[str], rows: Iterable[list[Any]]) -> int:
    n = 0
    cols = ", ".join(columns)
    with conn.cursor() as cur, cur.copy(f"COPY {table} ({cols}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)
            n += 1
    return n


def ensure_staging(conn: psycopg.Connection, table: str) -> str:
    name = f"stg_{table}"
    conn.execute(
        f"CREATE TEMP TABLE IF NOT EXISTS {name} (LIKE public.{table} INCLUDING DEFAULTS)"
    )
    conn.execute(f"TRUNCATE {name}")
    return name


def merge_root(conn: psycopg.Connection, table: str, columns: Sequence[str], key: Sequence[str],
               rows: list[list[Any]], *, append_only: bool, keep: Sequence[str] = ()) -> int:
    """Upsert rows (or insert-if-absent for append-only tables); returns rows inserted or changed.

    ``keep`` columns are never overwritten (deferred references set by a later step).
    """
    stg = ensure_staging(conn, table)
    copy_rows(conn, stg, columns, rows)
    cols = ", ".join(columns)
    conflict = ", ".join(key)
    if append_only:
        action = "DO NOTHING"
    else:
        upd = [c for c in columns if c not in key and c not in keep]
        sets = ", ".join(f"{c} = EXCLUDED.{c}" for c in upd)
        old = ", ".join(f"t.{c}" for c in upd)
        new = ", ".join(f"EXCLUDED.{c}" for c in upd)
        action = f"DO UPDATE SET {sets} WHERE ({old}) IS DISTINCT FROM ({new})" if upd else "DO NOTHING"
    cur = conn.execute(f"INSERT INTO public.{table} AS t ({cols}) SELECT {cols} FROM {stg} ON CONFLICT ({conflict}) {action}")
    return cur.rowcount


def merge_children(conn: psycopg.Connection, table: str, columns: Sequence[str], key: Sequence[str],
                   parent_column: str, parent_ids: Sequence[uuid.UUID], rows: list[list[Any]]) -> int:
    """Make the child rows of these parents exactly ``rows``: drop the ones the documents no
    longer hold, upsert the rest."""
    stg = ensure_staging(conn, table)
    copy_rows(conn, stg, columns, rows)
    keys = ", ".join(key)
    conn.execute(
        f"DELETE FROM public.{table} t WHERE t.{parent_column} = ANY(%s) "
        f"AND ({', '.join('t.' + k for k in key)}) NOT IN (SELECT {keys} FROM {stg})",
        [list(parent_ids)],
    )
    cols = ", ".join(columns)
    upd = [c for c in columns if c not in key]
    if upd:
        sets = ", ".join(f"{c} = EXCLUDED.{c}" for c in upd)
        old = ", ".join(f"t.{c}" for c in upd)
        new = ", ".join(f"EXCLUDED.{c}" for c in upd)
        action = f"DO UPDATE SET {sets} WHERE ({old}) IS DISTINCT FROM ({new})"
    else:
        action = "DO NOTHING"
    cur = conn.execute(f"INSERT INTO public.{table} AS t ({cols}) SELECT {cols} FROM {stg} ON CONFLICT ({keys}) {action}")
    return cur.rowcount


def upsert_id_map(conn: psycopg.Connection, entity: str, pairs: Sequence[tuple[str, uuid.UUID]]) -> None:
    if not pairs:
        return
    conn.execute(
        "INSERT INTO public.id_map (entity, legacy_id, new_id) "
        "SELECT %s, l, n FROM unnest(%s::text[], %s::uuid[]) AS u(l, n) ON CONFLICT (entity, legacy_id) DO NOTHING",
        [entity, [p[0] for p in pairs], [p[1] for p in pairs]],
    )


def upsert_deferred(conn: psycopg.Connection, items: Sequence[tuple[str, str, uuid.UUID, str, str, str]]) -> None:
    """items: (target_table, target_column, row_id, source_legacy_id, ref_table, ref_legacy_id)."""
    if not items:
        return
    cols = list(zip(*items))
    conn.execute(
        """
        INSERT INTO migration.deferred_refs
            (target_table, target_column, row_id, source_legacy_id, ref_table, ref_legacy_id)
        SELECT * FROM unnest(%s::text[], %s::text[], %s::uuid[], %s::text[], %s::text[], %s::text[])
        ON CONFLICT (target_table, target_column, row_id) DO UPDATE SET
            ref_table = EXCLUDED.ref_table, ref_legacy_id = EXCLUDED.ref_legacy_id,
            source_legacy_id = EXCLUDED.source_legacy_id
        """,
        [list(c) for c in cols],
    )


def clear_deferred(conn: psycopg.Connection, table: str, column: str, row_ids: Sequence[uuid.UUID]) -> None:
    """Documents that no longer hold the reference drop their pending entry."""
    if row_ids:
        conn.execute(
            "DELETE FROM migration.deferred_refs WHERE target_table = %s AND target_column = %s AND row_id = ANY(%s)",
            [table, column, list(row_ids)],
        )


def apply_deferred(conn: psycopg.Connection, table: str, column: str, ref_table: str) -> tuple[int, int]:
    """Set ``table.column`` from pending deferred references whose target now exists.

    Returns (rows updated, references still unresolved)."""
    updated = conn.execute(
        f"""
        UPDATE public.{table} x SET {column} = r.id
        FROM migration.deferred_refs d JOIN public.{ref_table} r ON r.legacy_object_id = d.ref_legacy_id
        WHERE d.target_table = %s AND d.target_column = %s AND x.id = d.row_id
          AND x.{column} IS DISTINCT FROM r.id
        """,
        [table, column],
    ).rowcount
    unresolved = conn.execute(
        f"""
        SELECT count(*) FROM migration.deferred_refs d
        LEFT JOIN public.{ref_table} r ON r.legacy_object_id = d.ref_legacy_id
        WHERE d.target_table = %s AND d.target_column = %s AND r.id IS NULL
        """,
        [table, column],
    ).fetchone()[0]
    return updated, unresolved


# --- quarantine ------------------------------------------------------------------------

@dataclass
class QuarantineEntry:
    legacy_id: str
    raw_sha256: str
    reason_code: str
    reason: str
    reasons: list[dict[str, str]]
    raw_bson: bytes | None
    raw_json: str | None


def write_quarantine(conn: psycopg.Connection, loader: str, collection: str, run_id: str,
                     entries: Sequence[QuarantineEntry]) -> None:
    if not entries:
        return
    with conn.cursor() as cur:
        cur.executemany(
            """
            INSERT INTO migration.quarantine AS q
                (loader, collection, legacy_id, raw_sha256, reason_code, reason, reasons, raw_bson, raw_json, run_id)
            VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
            ON CONFLICT (loader, legacy_id, raw_sha256) WHERE resolved_at IS NULL DO UPDATE SET
                reason_code = EXCLUDED.reason_code, reason = EXCLUDED.reason, reasons = EXCLUDED.reasons,
                run_id = EXCLUDED.run_id, last_seen_at = now()
            """,
            [
                (loader, collection, e.legacy_id, e.raw_sha256, e.reason_code, e.reason[:2000],
                 Jsonb(e.reasons), e.raw_bson, e.raw_json, run_id)
                for e in entries
            ],
        )


def resolve_quarantine(conn: psycopg.Connection, loader: str, legacy_ids: Sequence[str], run_id: str) -> int:
    """Documents that now load close their open quarantine entries (kept, marked resolved)."""
    if not legacy_ids:
        return 0
    return conn.execute(
        "UPDATE migration.quarantine SET resolved_at = now(), resolution = %s "
        "WHERE loader = %s AND resolved_at IS NULL AND reason_code <> 'duplicate_id' AND legacy_id = ANY(%s)",
        [f"loaded by run {run_id}", loader, list(legacy_ids)],
    ).rowcount


def open_quarantine_ids(conn: psycopg.Connection, loader: str) -> dict[str, int]:
    """legacy id -> number of open quarantine entries (duplicates of one _id count apart)."""
    rows = conn.execute(
        "SELECT legacy_id, count(*) FROM migration.quarantine WHERE loader = %s AND resolved_at IS NULL GROUP BY 1",
        [loader],
    ).fetchall()
    return dict(rows)
