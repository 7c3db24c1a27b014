"""Who owns a loader's load: a lease on its ``migration.load_checkpoints`` row.

The row's ``run_id`` is the run that owns the loader's running generation. A ranged load
spans several steps, and between them no process holds the loader's advisory lock; another
run that takes the exclusive lock there must still leave the load to its owner while that
owner lives. So the row also records the owner's run worker (host, pid, start time), a
heartbeat, and whether the owner gave the load up (its run failed). A second run, of any
Dagster instance, replaces the owner only when it is gone:

* it released the load, or the second run's instance records its run as ended;
* its worker ran on this host and that process no longer exists (a pid reused by a later
  process does not count);
* it ran elsewhere and sent no heartbeat for ``ttl_s`` seconds.

A worker on this host that lives keeps the load however long it is silent (a stopped or
busy process is not a dead one). Rows written without an owner (direct calls, no Dagster
run) hold no lease, as before.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import psycopg

from migration_assets.processes import Process

HEARTBEAT_S = 10.0  # how often a step holding the lease says it lives
TTL_S = 900.0  # a worker on another host silent this long is taken for dead

# run id -> whether the caller's Dagster instance records that run as ended (None: unknown there)
RunEnded = Callable[[str], bool | None]


@dataclass(frozen=True)
class Owner:
    """The run asking for (or holding) a load, and the process that runs it, where known."""

    run_id: str
    worker: Process | None = None
    ttl_s: float = TTL_S
    run_ended: RunEnded | None = None


@dataclass(frozen=True)
class Lease:
    loader: str
    run_id: str | None
    status: str
    worker: Process | None
    heartbeat_age_s: float | None
    released: bool

    def holder(self) -> str:
        who = f"run {self.run_id[:8]}" if self.run_id else "an unnamed run"
        where = f", worker {self.worker.describe()}" if self.worker else ""
        beat = f", heartbeat {self.heartbeat_age_s:.0f}s ago" if self.heartbeat_age_s is not None else ""
        return who + where + beat


def read_lease(conn: psycopg.Connection, loader: str) -> Lease | None:
    row = conn.execute(
        "SELECT run_id, status, owner_host, owner_pid, owner_started, "
        "extract(epoch FROM clock_timestamp() - heartbeat_at), released_at IS NOT NULL "
        "FROM migration.load_checkpoints WHERE loader = %s", [loader]).fetchone()
    if row is None:
        return None
    run_id, status, host, pid, started, age, released = row
    worker = Process(host, pid, started) if host and pid is not None and started is not None else None
    return Lease(loader, run_id, status, worker, float(age) if age is not None else None, released)


def live_holder(lease: Lease | None, me: Owner | None) -> str | None:
    """Why ``lease`` is held by another run that lives (None: ``me`` may take the load)."""
    if lease is None or lease.status != "running" or lease.released:
        return None
    if me is not None and lease.run_id == me.run_id:
        return None
    if lease.worker is None and lease.heartbeat_age_s is None:
        return None  # written without an owner: no lease
    if me is not None and me.run_ended is not None and lease.run_id and me.run_ended(lease.run_id):
        return None
    if lease.worker is not None and lease.worker.local:
        return f"{lease.holder()} (alive)" if lease.worker.alive() else None
    ttl = me.ttl_s if me is not None else TTL_S
    if lease.heartbeat_age_s is not None and lease.heartbeat_age_s < ttl:
        return f"{lease.holder()} (within the {ttl:.0f}s lease)"
    return None


def why_free(lease: Lease | None) -> str | None:
    """Said when a run takes over a load another run owned: why that owner counts as gone."""
    if lease is None or lease.status != "running" or lease.run_id is None:
        return None
    if lease.released:
        return f"run {lease.run_id[:8]} gave it up"
    if lease.worker is not None and lease.worker.local and not lease.worker.alive():
        return f"run {lease.run_id[:8]}'s worker {lease.worker.describe()} is gone"
    if lease.worker is None and lease.heartbeat_age_s is None:
        return f"run {lease.run_id[:8]} recorded no lease"
    return f"run {lease.run_id[:8]} has ended or sent no heartbeat"


def take(conn: psycopg.Connection, loader: str, owner: Owner | None, run_id: str) -> None:
    """The load is now ``run_id``'s (under the loader's exclusive lock), with ``owner``'s
    worker and a fresh heartbeat; without an owner it holds no lease."""
    w = owner.worker if owner else None
    conn.execute(
        "UPDATE migration.load_checkpoints SET run_id = %s, owner_host = %s, owner_pid = %s, owner_started = %s, "
        "heartbeat_at = CASE WHEN %s THEN clock_timestamp() END, released_at = NULL, updated_at = now() "
        "WHERE loader = %s",
        [run_id, w.host if w else None, w.pid if w else None, w.since if w else None, owner is not None, loader])


def heartbeat(conn: psycopg.Connection, loader: str, run_id: str) -> None:
    conn.execute("UPDATE migration.load_checkpoints SET heartbeat_at = clock_timestamp() "
                 "WHERE loader = %s AND run_id = %s AND owner_host IS NOT NULL", [loader, run_id])


def release(conn: psycopg.Connection, loader: str, run_id: str) -> bool:
    """``run_id`` gives the load up (its run failed): the next run may take it at once and
    resume from what was committed. True when it owned it."""
    return conn.execute("UPDATE migration.load_checkpoints SET released_at = clock_timestamp() "
                        "WHERE loader = %s AND run_id = %s AND status = 'running' RETURNING loader",
                        [loader, run_id]).fetchone() is not None


class Heartbeat:
    """Called between batches: a heartbeat at most every :data:`HEARTBEAT_S` seconds, outside
    any batch's transaction."""

    def __init__(self, conn: psycopg.Connection, loader: str, owner: Owner | None, clock=time.monotonic):
        self.conn, self.loader, self.owner, self.clock = conn, loader, owner, clock
        self.last = clock()

    def __call__(self) -> None:
        if self.owner is None or self.clock() - self.last < HEARTBEAT_S:
            return
        heartbeat(self.conn, self.loader, self.owner.run_id)
        self.last = self.clock()
