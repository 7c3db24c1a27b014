"""The PostgreSQL side: guarded connections, bulk writes, quarantine and checkpoints.

Writes go only to hosts on the allowlist (the seed's ``MIGRATION_PG_URL`` guard), checked
before any connection is opened.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import re
import time
import uuid
import weakref
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg.types.json import Jsonb

from migration_assets.kinds import Json, dumps_json


class TargetRefused(RuntimeError):
    """The target host is not on the allowlist; nothing was connected or written."""


class TargetUnavailable(RuntimeError):
    """PostgreSQL cannot be reached; the message names the endpoint without its password."""


class LoadLocked(RuntimeError):
    """Another run holds the load lock of this loader (it is writing the same tables)."""


_SECRET_KEYS = ("password", "sslpassword", "passfile")


def redact_url(url: str) -> str:
    """The URL (or ``key=value`` DSN) with every password masked."""
    if "://" not in url:
        # libpq key=value form: mask every secret value.
        return re.sub(r"\b(" + "|".join(_SECRET_KEYS) + r")\s*=\s*('(?:[^'\\]|\\.)*'|\S+)", r"\1=***", url)
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable url>"
    netloc = parts.netloc
    if "@" in netloc:
        creds, host = netloc.rsplit("@", 1)
        netloc = f"{creds.split(':', 1)[0]}:***@{host}" if ":" in creds else f"{creds}@{host}"
    query = "&".join(
        f"{k}=***" if k.lower() in _SECRET_KEYS else (f"{k}={v}" if v else k)
        for k, _, v in (pair.partition("=") for pair in parts.query.split("&") if pair)
    )
    return f"{parts.scheme}://{netloc}{parts.path}" + (f"?{query}" if query else "")


def url_secrets(url: str) -> list[str]:
    """Secret values in ``url`` (the password, wherever libpq would read it from)."""
    found = []
    try:
        params = conninfo_to_dict(url)
    except Exception:
        params = {}
    for key in _SECRET_KEYS:
        if params.get(key):
            found.append(str(params[key]))
    try:
        pw = urlsplit(url).password
    except ValueError:
        pw = None
    if pw:
        found.append(pw)
        found.append(unquote(pw))
    return sorted({s for s in found if s}, key=len, reverse=True)


def scrub(text: str, url: str) -> str:
    """``text`` with every secret of ``url`` masked (error messages quote their input)."""
    for secret in url_secrets(url):
        text = text.replace(secret, "***")
    return text


def url_host(url: str) -> str:
    """The host(s) libpq would connect to, comma separated ('' for a Unix socket)."""
    return ",".join(target_endpoints(url)[0])


def target_endpoints(url: str) -> tuple[list[str], list[str]]:
    """(hosts, hostaddrs) libpq would use for ``url``, parsed exactly as libpq parses it
    (``?host=`` overrides the authority, ``hostaddr`` bypasses name resolution) and
    completed from ``PGHOST`` / ``PGHOSTADDR`` like libpq. Never connects."""
    try:
        params = conninfo_to_dict(url)
    except psycopg.ProgrammingError as e:
        raise TargetRefused(f"refusing {redact_url(url)}: not a valid connection string "
                            f"({scrub(str(e).strip().splitlines()[0], url)})") from None
    if params.get("service") or os.environ.get("PGSERVICE"):
        raise TargetRefused(f"refusing {redact_url(url)}: a pg_service.conf service names its host "
                            "outside the URL, so the allowlist cannot check it")
    host = params.get("host") or os.environ.get("PGHOST") or ""
    hostaddr = params.get("hostaddr") or os.environ.get("PGHOSTADDR") or ""
    hosts = [h.strip() for h in host.split(",") if h.strip()]
    addrs = [a.strip() for a in hostaddr.split(",") if a.strip()]
    return hosts, addrs


def _allowed(host: str, allowed: list[str]) -> bool:
    h = host.lower().strip("[]")
    if h in allowed or "*" in allowed:
        return True
    for entry in allowed:
        if "/" in entry and not entry.startswith("/"):
            try:
                if ipaddress.ip_address(h) in ipaddress.ip_network(entry, strict=False):
                    return True
            except ValueError:
                continue
    return False


def check_target_allowed(url: str, allowed_hosts: Iterable[str]) -> str:
    """Refuse ``url`` unless every host (and ``hostaddr``) it can reach is allowlisted;
    returns the host(s). Never connects."""
    allowed = [h.strip().lower() for h in allowed_hosts if h and h.strip()]
    hosts, addrs = target_endpoints(url)
    if not hosts and not addrs:
        raise TargetRefused(f"refusing {redact_url(url)}: no host in the URL (a Unix socket is not allowlisted)")
    for h in [*hosts, *addrs]:
        if not _allowed(h, allowed):
            what = "hostaddr" if h in addrs and h not in hosts else "host"
            raise TargetRefused(
                f"refusing to write to {redact_url(url)}: {what} {h!r} is not in MIGRATION_PG_ALLOWED_HOSTS "
                f"({', '.join(allowed) or 'empty'})"
            )
    return ",".join(hosts or addrs)


def connect(url: str, allowed_hosts: Iterable[str], *, application_name: str = "migration_assets",
            autocommit: bool = True, connect_timeout: int = 5) -> psycopg.Connection:
    """Guarded connection. Autocommit by default: every ``conn.transaction()`` block is then
    a real transaction (not a savepoint inside an implicit one), which checkpoints rely on."""
    check_target_allowed(url, allowed_hosts)
    try:
        return psycopg.connect(url, autocommit=autocommit, application_name=application_name,
                               connect_timeout=connect_timeout)
    except psycopg.Error as e:
        text = str(e).strip()
        first = text.splitlines()[0] if text else type(e).__name__
        raise TargetUnavailable(f"PostgreSQL at {redact_url(url)} is unreachable: {scrub(first, url)}") from None


def describe_conn(conn: psycopg.Connection) -> str:
    """host:port/dbname of an open connection (never the password)."""
    try:
        info = conn.info
        return f"{info.host}:{info.port}/{info.dbname}"
    except Exception:
        return "<closed connection>"


# --- one writer per loader -------------------------------------------------------------

LOCK_CLASS = 0x6D61  # advisory lock namespace of loaders ("ma"); schema.py uses the 1-key form


def lock_key(loader: str) -> tuple[int, int]:
    return LOCK_CLASS, zlib.crc32(loader.encode("utf-8")) & 0x7FFFFFFF


def try_loader_lock(conn: psycopg.Connection, loader: str) -> bool:
    return conn.execute("SELECT pg_try_advisory_lock(%s, %s)", list(lock_key(loader))).fetchone()[0]


def release_loader_lock(conn: psycopg.Connection, loader: str) -> None:
    conn.execute("SELECT pg_advisory_unlock(%s, %s)", list(lock_key(loader)))


def loader_lock_holder(conn: psycopg.Connection, loader: str) -> str:
    """Who holds the load lock: backend pid, application name, client and since when."""
    row = conn.execute(
        "SELECT a.pid, a.application_name, a.client_addr::text, a.backend_start "
        "FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
        "WHERE l.locktype = 'advisory' AND l.granted AND l.database = (SELECT oid FROM pg_database "
        "WHERE datname = current_database()) AND l.classid = %s::oid AND l.objid = %s::oid AND l.objsubid = 2",
        list(lock_key(loader)),
    ).fetchone()
    if row is None:
        return "an unknown session"
    pid, app, client, since = row
    return f"backend pid {pid} ({app or 'no application_name'}, client {client or 'local'}, connected {since:%Y-%m-%d %H:%M:%S%z})"


@contextlib.contextmanager
def loader_lock(conn: psycopg.Connection, loader: str, *, timeout_s: float = 600.0,
                log: Callable[[str], None] | None = None, poll_s: float = 0.5,
                log_every_s: float = 30.0) -> Iterator[float]:
    """Hold the session advisory lock of ``loader`` while loading: a second run of the same
    loader (another process, another Dagster instance, the CLI) waits here, logging who
    holds the lock, and fails with :class:`LoadLocked` after ``timeout_s``. Yields the
    seconds waited. A killed holder's lock goes with its connection."""
    t0 = time.monotonic()
    last_log = None
    while not try_loader_lock(conn, loader):
        waited = time.monotonic() - t0
        holder = loader_lock_holder(conn, loader)
        if waited >= timeout_s:
            raise LoadLocked(
                f"gave up after {waited:.0f}s waiting for the load lock of loader {loader!r} on "
                f"{describe_conn(conn)}: {holder} is loading the same tables. Let that run finish "
                "(or stop it), then run again; committed batches are kept."
            )
        if log and (last_log is None or time.monotonic() - last_log >= log_every_s):
            log(f"{loader}: waiting for the load lock (another run is loading these tables): held by {holder}; "
                f"waited {waited:.0f}s of at most {timeout_s:.0f}s")
            last_log = time.monotonic()
        time.sleep(poll_s)
    waited = time.monotonic() - t0
    if log and last_log is not None:
        log(f"{loader}: acquired the load lock after waiting {waited:.1f}s")
    try:
        yield waited
    finally:
        if not conn.closed and not conn.broken:
            try:
                release_loader_lock(conn, loader)
            except psycopg.Error:
                pass  # the lock goes with the session anyway


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

def lookup_ids(conn: psycopg.Connection, table: str, legacy_ids: Sequence[str],
               *, also: str | None = None) -> dict[str, uuid.UUID]:
    """legacy id -> id of ``public.table`` rows; ``also`` names a second relation (a dry
    run's shadow table) searched too."""
    if not legacy_ids:
        return {}
    sql = f"SELECT legacy_object_id, id FROM public.{table} WHERE legacy_object_id = ANY(%s)"
    params: list[Any] = [list(legacy_ids)]
    if also:
        sql += f" UNION ALL SELECT legacy_object_id, id FROM {also} WHERE legacy_object_id = ANY(%s)"
        params.append(list(legacy_ids))
    out: dict[str, uuid.UUID] = {}
    for legacy, pk in conn.execute(sql, params).fetchall():
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
    if conn in _read_only:
        # TRUNCATE counts as a write in a read-only transaction; a temp table's DELETE does not.
        conn.execute(f"DELETE FROM pg_temp.{name}")
        return name
    conn.execute(
        f"CREATE TEMP TABLE IF NOT EXISTS {name} (LIKE public.{table} INCLUDING DEFAULTS)"
    )
    conn.execute(f"TRUNCATE {name}")
    return name


def merge_root(conn: psycopg.Connection, table: str, columns: Sequence[str], key: Sequence[str],
               rows: list[list[Any]], *, append_only: bool, keep: Sequence[str] = (),
               into: str | None = None) -> int:
    """Upsert rows (or insert-if-absent for append-only tables); returns rows inserted or changed.

    ``keep`` columns are never overwritten (deferred references set by a later step);
    ``into`` replaces ``public.table`` (a dry run's shadow).
    """
    target = into or f"public.{table}"
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
    cur = conn.execute(f"INSERT INTO {target} AS t ({cols}) SELECT {cols} FROM {stg} ON CONFLICT ({conflict}) {action}")
    return cur.rowcount


def append_only_conflicts(conn: psycopg.Connection, table: str, columns: Sequence[str], key: Sequence[str],
                          *, into: str | None = None, staged: str | None = None,
                          ids: Sequence[Any] | None = None) -> list[str]:
    """Legacy ids whose staged row differs from the row already in the table (an immutable
    entry the source changed). Reported, never rewritten. ``staged`` defaults to the staging
    table of the last merge; a dry run passes its shadow and this batch's ``ids`` instead."""
    target = into or f"public.{table}"
    cmp = [c for c in columns if c not in key]
    if not cmp or "legacy_object_id" not in columns:
        return []
    on = " AND ".join(f"t.{k} = s.{k}" for k in key)
    where = f"({', '.join('t.' + c for c in cmp)}) IS DISTINCT FROM ({', '.join('s.' + c for c in cmp)})"
    params: list[Any] = []
    if ids is not None:
        where += " AND s.id = ANY(%s)"
        params.append(list(ids))
    rows = conn.execute(
        f"SELECT s.legacy_object_id FROM {staged or 'stg_' + table} s JOIN {target} t ON {on} WHERE {where} ORDER BY 1",
        params,
    ).fetchall()
    return [r[0] for r in rows]


def merge_children(conn: psycopg.Connection, table: str, columns: Sequence[str], key: Sequence[str],
                   parent_column: str, parent_ids: Sequence[uuid.UUID], rows: list[list[Any]],
                   *, append_only: bool = False, into: str | None = None) -> int:
    """Make the child rows of these parents exactly ``rows``: drop the ones the documents no
    longer hold, upsert the rest. Append-only: insert the absent ones, touch nothing else."""
    target = into or f"public.{table}"
    stg = ensure_staging(conn, table)
    copy_rows(conn, stg, columns, rows)
    keys = ", ".join(key)
    cols = ", ".join(columns)
    if append_only:
        cur = conn.execute(f"INSERT INTO {target} AS t ({cols}) SELECT {cols} FROM {stg} ON CONFLICT ({keys}) DO NOTHING")
        return cur.rowcount
    conn.execute(
        f"DELETE FROM {target} t WHERE t.{parent_column} = ANY(%s) "
        f"AND ({', '.join('t.' + k for k in key)}) NOT IN (SELECT {keys} FROM {stg})",
        [list(parent_ids)],
    )
    upd = [c for c in columns if c not in key]
    if upd:
        sets = ", ".join(f"{c} = EXCLUDED.{c}" for c in upd)
        old = ", ".join(f"t.{c}" for c in upd)
        new = ", ".join(f"EXCLUDED.{c}" for c in upd)
        action = f"DO UPDATE SET {sets} WHERE ({old}) IS DISTINCT FROM ({new})"
    else:
        action = "DO NOTHING"
    cur = conn.execute(f"INSERT INTO {target} AS t ({cols}) SELECT {cols} FROM {stg} ON CONFLICT ({keys}) {action}")
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
