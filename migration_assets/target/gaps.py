"""``pg_dualwrite_gaps``, the application's table of writes its dual-write path could not
apply to PostgreSQL: reading the open gaps, and settling them after a re-sync."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import psycopg


@dataclass(frozen=True)
class Gap:
    id: int
    entity: str
    legacy_id: str | None
    pg_id: str | None
    operation: str
    attempts: int = 1


_COLUMNS = "id, entity, legacy_id, pg_id::text, operation, attempts"


def open_gaps(conn: psycopg.Connection, *, max_attempts: int | None = None, limit: int = 1000) -> list[Gap]:
    """Unresolved gaps, oldest first (``max_attempts``: only those tried fewer times)."""
    where = "resolved_at IS NULL" + (" AND attempts < %s" if max_attempts is not None else "")
    params = ([max_attempts] if max_attempts is not None else []) + [limit]
    rows = conn.execute(f"SELECT {_COLUMNS} FROM public.pg_dualwrite_gaps WHERE {where} ORDER BY id LIMIT %s",
                        params).fetchall()
    return [Gap(*r) for r in rows]


def gaps_by_id(conn: psycopg.Connection, ids: Sequence[int]) -> list[Gap]:
    rows = conn.execute(f"SELECT {_COLUMNS} FROM public.pg_dualwrite_gaps "
                        f"WHERE id = ANY(%s) AND resolved_at IS NULL ORDER BY id", [list(ids)]).fetchall()
    return [Gap(*r) for r in rows]


def open_gap_counts(conn: psycopg.Connection) -> dict[str, int]:
    """Open gaps by entity, as the application wrote it."""
    return dict(conn.execute("SELECT entity, count(*) FROM public.pg_dualwrite_gaps WHERE resolved_at IS NULL "
                             "GROUP BY 1 ORDER BY 1").fetchall())


def resolve_gaps(conn: psycopg.Connection, ids: Sequence[int], resolution: str) -> None:
    if ids:
        conn.execute("UPDATE public.pg_dualwrite_gaps SET resolved_at = now(), resolution = %s "
                     "WHERE id = ANY(%s) AND resolved_at IS NULL", [resolution, list(ids)])


def leave_gaps_open(conn: psycopg.Connection, why: Mapping[int, str]) -> None:
    """Gaps a re-sync could not apply: one more attempt counted, the reason recorded."""
    for gap_id, reason in why.items():
        if gap_id > 0:
            conn.execute("UPDATE public.pg_dualwrite_gaps SET attempts = attempts + 1, error = %s "
                         "WHERE id = %s AND resolved_at IS NULL", [f"re-sync: {reason}"[:1000], gap_id])
