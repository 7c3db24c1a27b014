"""The guard around the target: which hosts may be written to, the one way a PostgreSQL
connection is opened, and the per-loader lock that keeps two writers of one table apart.

Writes go only to hosts on the allowlist (the seed's ``MIGRATION_PG_URL`` guard), checked
before any connection is opened, with the URL parsed exactly as libpq parses it.
"""

from __future__ import annotations

import contextlib
import os
import time
import zlib
from collections.abc import Callable, Iterable, Iterator

import psycopg
from psycopg.conninfo import conninfo_to_dict

from migration_assets.allowlist import host_allowed
from migration_assets.redaction import redact, scrub
from migration_assets.target.lease import Owner, live_holder, read_lease


class TargetRefused(RuntimeError):
    """The target host is not on the allowlist; nothing was connected or written."""


class TargetUnavailable(RuntimeError):
    """PostgreSQL cannot be reached; the message names the endpoint without its password."""


class LoadLocked(RuntimeError):
    """Another run holds the load lock of this loader (it is writing the same tables)."""


def target_endpoints(url: str) -> tuple[list[str], list[str]]:
    """(hosts, hostaddrs) libpq would use for ``url``, parsed exactly as libpq parses it
    (``?host=`` overrides the authority, ``hostaddr`` bypasses name resolution) and
    completed from ``PGHOST`` / ``PGHOSTADDR`` like libpq. Never connects."""
    try:
        params = conninfo_to_dict(url)
    except psycopg.ProgrammingError as e:
        raise TargetRefused(f"refusing {redact(url)}: not a valid connection string "
                            f"({scrub(str(e).strip().splitlines()[0], url)})") from None
    if params.get("service") or os.environ.get("PGSERVICE"):
        raise TargetRefused(f"refusing {redact(url)}: a pg_service.conf service names its host "
                            "outside the URL, so the allowlist cannot check it")
    host = params.get("host") or os.environ.get("PGHOST") or ""
    hostaddr = params.get("hostaddr") or os.environ.get("PGHOSTADDR") or ""
    hosts = [h.strip() for h in host.split(",") if h.strip()]
    addrs = [a.strip() for a in hostaddr.split(",") if a.strip()]
    return hosts, addrs


def check_target_allowed(url: str, allowed_hosts: Iterable[str]) -> str:
    """Refuse ``url`` unless every host (and ``hostaddr``) it can reach is allowlisted;
    returns the host(s). Never connects."""
    allowed = [h.strip().lower() for h in allowed_hosts if h and h.strip()]
    hosts, addrs = target_endpoints(url)
    if not hosts and not addrs:
        raise TargetRefused(f"refusing {redact(url)}: no host in the URL (a Unix socket is not allowlisted)")
    for h in [*hosts, *addrs]:
        if not host_allowed(h, allowed):
            what = "hostaddr" if h in addrs and h not in hosts else "host"
            raise TargetRefused(
                f"refusing to write to {redact(url)}: {what} {h!r} is not in MIGRATION_PG_ALLOWED_HOSTS "
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
        raise TargetUnavailable(f"PostgreSQL at {redact(url)} is unreachable: {scrub(first, url)}") from None


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


def try_loader_lock(conn: psycopg.Connection, loader: str, shared: bool = False) -> bool:
    fn = "pg_try_advisory_lock_shared" if shared else "pg_try_advisory_lock"
    return conn.execute(f"SELECT {fn}(%s, %s)", list(lock_key(loader))).fetchone()[0]


def release_loader_lock(conn: psycopg.Connection, loader: str, shared: bool = False) -> None:
    fn = "pg_advisory_unlock_shared" if shared else "pg_advisory_unlock"
    conn.execute(f"SELECT {fn}(%s, %s)", list(lock_key(loader)))


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
                log_every_s: float = 30.0, shared: bool = False, owner: Owner | None = None) -> Iterator[float]:
    """Hold the session advisory lock of ``loader`` while loading: a second run of the same
    loader (another process, another Dagster instance, the CLI) waits here, logging who
    holds it, and fails with :class:`LoadLocked` after ``timeout_s``. Yields the seconds
    waited. A killed holder's lock goes with its connection.

    ``shared``: the ranges of one ranged load hold it together; any exclusive holder (a plan,
    a one-stream load, a remap, a re-sync) excludes them and they it. Between a ranged load's
    steps nobody holds the lock, so an exclusive holder also waits while another run that
    lives owns the load (``lease.py``); ``owner`` is the run asking."""
    t0 = time.monotonic()
    last_log = None
    while True:
        holder = None
        if try_loader_lock(conn, loader, shared):
            holder = None if shared else live_holder(read_lease(conn, loader), owner)
            if holder is None:
                break
            release_loader_lock(conn, loader, shared)
            holder = f"the load is owned by {holder}"
        waited = time.monotonic() - t0
        holder = holder or f"the load lock is held by {loader_lock_holder(conn, loader)}"
        if waited >= timeout_s:
            raise LoadLocked(
                f"gave up after {waited:.0f}s waiting for the load lock of loader {loader!r} on {describe_conn(conn)}: "
                f"{holder}, loading the same tables. Let that run finish (or stop it), then run again; "
                "committed batches are kept."
            )
        if log and (last_log is None or time.monotonic() - last_log >= log_every_s):
            log(f"{loader}: waiting for the load lock (another run is loading these tables): {holder}; "
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
                release_loader_lock(conn, loader, shared)
            except psycopg.Error:
                pass  # the lock goes with the session anyway
