"""The reverse sync's bookkeeping (``migration`` schema, 0027): who writes a domain now and since
when (the cutover record), a reverse sync's plan with its checkpoint, the previous version of
every Mongo document it changes, and the ObjectIds it gives rows that were born in PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from bson import ObjectId, json_util
from psycopg.types.json import Jsonb

from migration_assets.target.bookkeeping import add_id_map

WRITES = ("mongo", "dual", "pg")
OBJECT_ID_RE = "^[0-9a-f]{24}$"


# --- the cutover record ---------------------------------------------------------------------

@dataclass(frozen=True)
class CutoverRecord:
    domain: str
    writes: str  # 'pg': the application writes PostgreSQL only; 'dual'/'mongo': Mongo is written too
    cutover_at: dt.datetime
    recorded_by: str
    reason: str | None
    readiness: str | None
    recorded_at: dt.datetime

    @property
    def mongo_written(self) -> bool:
        return self.writes != "pg"


def record_cutover(conn: psycopg.Connection, domain: str, writes: str, cutover_at: dt.datetime, *, by: str,
                   reason: str | None = None, readiness: str | None = None) -> None:
    if writes not in WRITES:
        raise ValueError(f"writes must be one of {', '.join(WRITES)}, not {writes!r}")
    with conn.transaction():
        conn.execute("INSERT INTO migration.cutover_records (domain, writes, cutover_at, readiness, recorded_by, reason) "
                     "VALUES (%s, %s, %s, %s, %s, %s)", [domain, writes, cutover_at, readiness, by, reason])


def latest_cutover(conn: psycopg.Connection, domain: str) -> CutoverRecord | None:
    row = conn.execute("SELECT domain, writes, cutover_at, recorded_by, reason, readiness, recorded_at "
                       "FROM migration.cutover_records WHERE domain = %s ORDER BY id DESC LIMIT 1", [domain]).fetchone()
    return CutoverRecord(*row) if row else None


# --- the plan and its checkpoint ----------------------------------------------------------------

@dataclass(frozen=True)
class Plan:
    run_id: str
    forced: str | None
    items: list[tuple[str, str]]  # (document, action) still to apply
    applied: int  # items the interrupted run applied already


def open_plan(conn: psycopg.Connection, loader: str) -> Plan | None:
    """The plan of an interrupted reverse sync of ``loader`` (items still planned), if any."""
    row = conn.execute("SELECT run_id FROM migration.reverse_sync_items WHERE loader = %s AND state = 'planned' "
                       "ORDER BY planned_at LIMIT 1", [loader]).fetchone()
    if row is None:
        return None
    rows = conn.execute("SELECT document, action, state, forced FROM migration.reverse_sync_items "
                        "WHERE loader = %s AND run_id = %s ORDER BY document", [loader, row[0]]).fetchall()
    return Plan(row[0], rows[0][3], [(d, a) for d, a, s, _ in rows if s == "planned"],
                sum(1 for r in rows if r[2] != "planned"))


def save_plan(conn: psycopg.Connection, loader: str, run_id: str, items: Sequence[tuple[str, str]],
              forced: str | None) -> None:
    with conn.transaction():
        conn.execute(
            "INSERT INTO migration.reverse_sync_items (loader, run_id, document, action, forced) "
            "SELECT %s, %s, d, a, %s FROM unnest(%s::text[], %s::text[]) AS u(d, a) ON CONFLICT DO NOTHING",
            [loader, run_id, forced, [d for d, _ in items], [a for _, a in items]])


def mark_items(conn: psycopg.Connection, loader: str, run_id: str, states: Sequence[tuple[str, str, str]]) -> None:
    """(document, state, detail) of applied, unchanged or refused items."""
    if states:
        conn.execute(
            "UPDATE migration.reverse_sync_items i SET state = u.s, detail = nullif(u.d, ''), applied_at = now() "
            "FROM unnest(%s::text[], %s::text[], %s::text[]) AS u(doc, s, d) "
            "WHERE i.loader = %s AND i.run_id = %s AND i.document = u.doc",
            [[s[0] for s in states], [s[1] for s in states], [s[2] for s in states], loader, run_id])


# --- the audit copies -----------------------------------------------------------------------------

def extended_json(doc: Mapping[str, Any]) -> Any:
    """A document as canonical extended JSON: every BSON type survives (restore with json_util.loads)."""
    return json.loads(json_util.dumps(doc, json_options=json_util.CANONICAL_JSON_OPTIONS))


def save_previous(conn: psycopg.Connection, loader: str, collection: str, run_id: str,
                  docs: Sequence[tuple[str, str, Mapping[str, Any]]]) -> None:
    """(document, effect, document as Mongo holds it) before the reverse sync changes it."""
    if docs:
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO migration.removed_rows (loader, table_name, document, row, effect, run_id, direction) "
                "VALUES (%s, %s, %s, %s, %s, %s, 'to_mongo')",
                [(loader, collection, d, Jsonb(extended_json(doc)), effect, run_id) for d, effect, doc in docs])


def previous_versions(conn: psycopg.Connection, loader: str, document: str) -> list[tuple[str, dict]]:
    """(effect, document) of the Mongo versions the reverse sync replaced, oldest first."""
    return [(e, json_util.loads(json.dumps(r))) for e, r in conn.execute(
        "SELECT effect, row FROM migration.removed_rows WHERE loader = %s AND document = %s "
        "AND direction = 'to_mongo' ORDER BY id", [loader, document]).fetchall()]


# --- ObjectIds for rows born in PostgreSQL -------------------------------------------------------

def rows_without_object_id(conn: psycopg.Connection, table: str) -> int:
    return conn.execute(f"SELECT count(*) FROM public.{table} WHERE legacy_object_id !~ %s",
                        [OBJECT_ID_RE]).fetchone()[0]


def assign_object_ids(conn: psycopg.Connection, table: str) -> dict[str, str]:
    """Rows of ``table`` whose legacy id is no ObjectId get a new one, with its id_map entry, in
    one transaction: a rerun finds them holding it and never makes a second. Returns old -> new."""
    with conn.transaction():
        rows = conn.execute(f"SELECT id, legacy_object_id FROM public.{table} WHERE legacy_object_id !~ %s "
                            "FOR UPDATE", [OBJECT_ID_RE]).fetchall()
        if not rows:
            return {}
        fresh = [(r[0], r[1], str(ObjectId())) for r in rows]
        conn.execute(f"UPDATE public.{table} t SET legacy_object_id = u.n FROM unnest(%s::uuid[], %s::text[]) "
                     "AS u(i, n) WHERE t.id = u.i", [[f[0] for f in fresh], [f[2] for f in fresh]])
        add_id_map(conn, table, [(f[2], f[0]) for f in fresh])
    return {f[1]: f[2] for f in fresh}


def in_id_map(conn: psycopg.Connection, table: str, legacy_ids: Sequence[str]) -> set[str]:
    return {r[0] for r in conn.execute("SELECT legacy_id FROM public.id_map WHERE entity = %s AND legacy_id = ANY(%s)",
                                       [table, list(legacy_ids)]).fetchall()}

