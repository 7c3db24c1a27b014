"""What the operator's reports read off the target's tables."""

from __future__ import annotations

import psycopg


def row_count(conn: psycopg.Connection, table: str, not_null: str | None = None) -> int:
    """Rows of ``public.<table>`` (with ``not_null`` set, when given: a remapped column)."""
    where = f" WHERE {not_null} IS NOT NULL" if not_null else ""
    return conn.execute(f"SELECT count(*) FROM public.{table}{where}").fetchone()[0]
