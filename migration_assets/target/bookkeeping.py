"""Bookkeeping of the migration, the only writer of the ``migration`` schema's rows (and
of ``id_map``): load checkpoints, the quarantine, id_map entries, deferred references,
the rows the catch-up removed, acknowledged ledger conflicts, the source digests a load keeps,
the ledger snapshot and the record of applied schema files.

:func:`record_batch` writes everything a batch owes in the batch's own transaction, so its
rows and its checkpoint commit together or not at all.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from bson import json_util
from psycopg.types.json import Jsonb

from migration_assets.specs.model import LoaderSpec
from migration_assets.transform.results import DocResult, Rejected

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
    run_id: str | None = None
    ranges: int | None = None  # a ranged load's number of ranges (their rows: load_ranges)
    range_no: int | None = None  # set on a range's own checkpoint (advance_checkpoint)


@dataclass
class RangeCheckpoint:
    range_no: int
    span_start: str | None
    span_end: str | None
    planned_docs: int | None
    position: str | None
    status: str
    docs_read: int
    docs_quarantined: int
    rows_written: dict[str, int]
    run_id: str | None


def read_checkpoint(conn: psycopg.Connection, loader: str) -> Checkpoint | None:
    """The loader's checkpoint; a ranged load's counts are its ranges' sums (and, in one range,
    its position that range's)."""
    row = conn.execute(
        "SELECT loader, generation, source_fingerprint, position, status, fresh, docs_read, "
        "docs_quarantined, rows_written, run_id, ranges FROM migration.load_checkpoints WHERE loader = %s",
        [loader],
    ).fetchone()
    if row is None:
        return None
    cp = Checkpoint(*row)
    if cp.ranges is not None:
        parts = read_ranges(conn, loader)
        if len(parts) == 1:  # one range: its position is the load's
            cp.position = parts[0].position
        cp.docs_read = sum(r.docs_read for r in parts)
        cp.docs_quarantined = sum(r.docs_quarantined for r in parts)
        cp.rows_written = {}
        for r in parts:
            for table, n in r.rows_written.items():
                cp.rows_written[table] = cp.rows_written.get(table, 0) + n
    return cp


def read_ranges(conn: psycopg.Connection, loader: str) -> list[RangeCheckpoint]:
    return [RangeCheckpoint(*r) for r in conn.execute(
        "SELECT range_no, span_start, span_end, planned_docs, position, status, docs_read, docs_quarantined, "
        "rows_written, run_id FROM migration.load_ranges WHERE loader = %s ORDER BY range_no", [loader]).fetchall()]


def start_ranges(conn: psycopg.Connection, loader: str, spans: Sequence[tuple[int, str | None, str | None, int | None]],
                 run_id: str) -> None:
    """A new generation's ranges (after :func:`start_generation`): (no, start, end, docs)."""
    conn.execute("UPDATE migration.load_checkpoints SET ranges = %s WHERE loader = %s", [len(spans), loader])
    conn.execute("DELETE FROM migration.load_ranges WHERE loader = %s", [loader])
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO migration.load_ranges (loader, range_no, span_start, span_end, planned_docs, status, run_id) "
            "VALUES (%s, %s, %s, %s, %s, 'running', %s)", [(loader, *s, run_id) for s in spans])


def load_session(conn: psycopg.Connection, name: str) -> None:
    """A load's session: named (``pg_stat_activity``, and a waiting run, name the holder by it),
    its batches committed without waiting for the WAL flush (``synchronous_commit = off``). A
    server crash can then lose the last batches, each with the checkpoint committed in its own
    transaction, so a rerun resumes exactly where what survived ends. The commits that complete
    a range or a load wait (:func:`durable`): a flushed commit flushes every commit before it."""
    conn.execute("SELECT set_config('application_name', %s, false), set_config('synchronous_commit', 'off', false)",
                 [name[:63]])


def durable(conn: psycopg.Connection) -> None:
    """This transaction's commit waits for the disk, and with it every earlier commit's."""
    conn.execute("SELECT set_config('synchronous_commit', 'on', true)")


def complete_range(conn: psycopg.Connection, loader: str, range_no: int) -> None:
    durable(conn)
    conn.execute("UPDATE migration.load_ranges SET status = 'completed', completed_at = now(), updated_at = now() "
                 "WHERE loader = %s AND range_no = %s", [loader, range_no])


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
            updated_at = now(), completed_at = NULL, ranges = NULL
        RETURNING loader, generation, source_fingerprint, position, status, fresh, docs_read,
                  docs_quarantined, rows_written, run_id, ranges
        """,
        [loader, fingerprint, fresh, run_id],
    ).fetchone()
    conn.execute("DELETE FROM migration.load_source_digests WHERE loader = %s", [loader])
    return Checkpoint(*row)


def advance_checkpoint(conn: psycopg.Connection, cp: Checkpoint) -> None:
    if cp.range_no is not None:
        conn.execute(
            "UPDATE migration.load_ranges SET position = %s, docs_read = %s, docs_quarantined = %s, "
            "rows_written = %s, run_id = %s, updated_at = now() WHERE loader = %s AND range_no = %s",
            [cp.position, cp.docs_read, cp.docs_quarantined, Jsonb(cp.rows_written), cp.run_id, cp.loader,
             cp.range_no])
        return
    conn.execute(
        "UPDATE migration.load_checkpoints SET position = %s, docs_read = %s, docs_quarantined = %s, "
        "rows_written = %s, run_id = %s, updated_at = now() WHERE loader = %s",
        [cp.position, cp.docs_read, cp.docs_quarantined, Jsonb(cp.rows_written), cp.run_id, cp.loader],
    )


def interrupted_loads(conn: psycopg.Connection) -> dict[str, int]:
    """Loaders whose last load did not complete -> documents it had committed."""
    return dict(conn.execute(
        "SELECT loader, CASE WHEN ranges IS NULL THEN docs_read ELSE (SELECT coalesce(sum(r.docs_read), 0) "
        "FROM migration.load_ranges r WHERE r.loader = c.loader) END "
        "FROM migration.load_checkpoints c WHERE status = 'running'").fetchall())


def complete_checkpoint(conn: psycopg.Connection, loader: str) -> None:
    durable(conn)
    conn.execute(
        "UPDATE migration.load_checkpoints SET status = 'completed', completed_at = now(), "
        "updated_at = now() WHERE loader = %s",
        [loader],
    )


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


RAW_JSON_LIMIT = 64 * 1024  # the quarantine keeps all raw bytes; the readable copy is capped
MAX_REASONS = 100  # a 100k-element array of bad values is one document, not 100k reasons


def quarantine_entry(r: Rejected) -> QuarantineEntry:
    """The quarantine row of a rejected document: every reason (capped), the raw bytes and
    a readable JSON copy."""
    problems = r.problems
    if len(problems) > MAX_REASONS:
        problems = problems[:MAX_REASONS] + [{"code": "more_problems", "field": "$",
                                              "message": f"... and {len(r.problems) - MAX_REASONS} more problems"}]
    reason = "; ".join(f"{p['field']}: {p['message']}" for p in problems[:20])
    if len(problems) > 20:
        reason += f"; ... ({len(r.problems)} problems in all)"
    raw_json = None
    if r.doc is not None:
        try:
            raw_json = json_util.dumps(r.doc)
        except Exception:
            raw_json = None
    if raw_json is not None and len(raw_json) > RAW_JSON_LIMIT:
        raw_json = raw_json[:RAW_JSON_LIMIT] + f"... [{len(raw_json)} characters; raw_bson holds all]"
    if raw_json is not None:
        raw_json = raw_json.replace("\x00", "\\u0000")
    return QuarantineEntry(legacy_id=r.legacy_id, raw_sha256=hashlib.sha256(r.raw).hexdigest(),
                           reason_code=r.problems[0]["code"], reason=reason, reasons=problems,
                           raw_bson=r.raw, raw_json=raw_json)



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
        "WHERE loader = %s AND resolved_at IS NULL AND reason_code <> 'duplicate_id' AND legacy_id = ANY(%b)",
        [f"loaded by run {run_id}", loader, list(legacy_ids)],
    ).rowcount


def resolve_quarantine_except(conn: psycopg.Connection, loader: str, keep_open: Sequence[str], resolution: str) -> int:
    """Close every open entry of ``loader`` but those of ``keep_open`` (a remap's refusals
    that still stand)."""
    return conn.execute(
        "UPDATE migration.quarantine SET resolved_at = now(), resolution = %s "
        "WHERE loader = %s AND resolved_at IS NULL AND NOT (legacy_id = ANY(%s))",
        [resolution, loader, list(keep_open)]).rowcount


def open_quarantine_sample(conn: psycopg.Connection, loader: str, limit: int = 20) -> list[tuple[str, str, str]]:
    """(legacy id, reason code, reason) of the newest open entries."""
    return [tuple(r) for r in conn.execute(
        "SELECT legacy_id, reason_code, reason FROM migration.quarantine WHERE loader = %s AND resolved_at IS NULL "
        "ORDER BY last_seen_at DESC, legacy_id LIMIT %s", [loader, limit]).fetchall()]


def open_quarantine_by_reason(conn: psycopg.Connection, loader: str) -> dict[str, int]:
    return dict(conn.execute(
        "SELECT reason_code, count(*) FROM migration.quarantine WHERE loader = %s AND resolved_at IS NULL GROUP BY 1",
        [loader]).fetchall())


def open_quarantine_count(conn: psycopg.Connection, loaders: Sequence[str]) -> int:
    """Open entries of these loaders (or remaps) together."""
    return conn.execute("SELECT count(*) FROM migration.quarantine WHERE resolved_at IS NULL AND loader = ANY(%s)",
                        [list(loaders)]).fetchone()[0]


def open_quarantine_keys(conn: psycopg.Connection, loader: str) -> tuple[dict[str, int], set[str]]:
    """(legacy id -> open entries as a duplicate ``_id``, legacy ids quarantined for their content)."""
    rows = conn.execute(
        "SELECT legacy_id, count(*) FILTER (WHERE reason_code = 'duplicate_id'), "
        "count(*) FILTER (WHERE reason_code <> 'duplicate_id') "
        "FROM migration.quarantine WHERE loader = %s AND resolved_at IS NULL GROUP BY 1", [loader]).fetchall()
    return {r[0]: r[1] for r in rows if r[1]}, {r[0] for r in rows if r[2]}


# --- id_map and deferred references -------------------------------------------------------

def add_id_map(conn: psycopg.Connection, entity: str, pairs: Sequence[tuple[str, uuid.UUID]], *,
               fresh: bool = False) -> None:
    """Entries for ``pairs`` that have none. ``fresh`` (the rows were copied into empty tables,
    so their entries are new): one binary COPY, 1.8x cheaper than the insert-if-absent measured
    here; a conflict (entries left from an earlier load) rolls back to its savepoint and takes
    the insert-if-absent. Arrays go in binary either way."""
    if not pairs:
        return
    if fresh:
        try:
            with conn.transaction(), conn.cursor() as cur, \
                    cur.copy("COPY public.id_map (entity, legacy_id, new_id) FROM STDIN (FORMAT BINARY)") as cp:
                cp.set_types(["text", "text", "uuid"])
                for legacy, new in pairs:
                    cp.write_row((entity, legacy, new))
            return
        except psycopg.errors.UniqueViolation:
            pass
    conn.execute(
        "INSERT INTO public.id_map (entity, legacy_id, new_id) "
        "SELECT %s, l, n FROM unnest(%b::text[], %b::uuid[]) AS u(l, n) ON CONFLICT (entity, legacy_id) DO NOTHING",
        [entity, [p[0] for p in pairs], [p[1] for p in pairs]],
    )

def id_map_from_table(conn: psycopg.Connection, table: str) -> int:
    """Entries for every row of ``table`` that has none, in one statement (never rewriting
    or deleting one: the map is an audit trail). Returns the entries added."""
    return conn.execute(
        f"INSERT INTO public.id_map (entity, legacy_id, new_id) SELECT %s, legacy_object_id, id FROM public.{table} "
        f"ON CONFLICT (entity, legacy_id) DO NOTHING", [table]).rowcount


def upsert_deferred(conn: psycopg.Connection, items: Sequence[tuple[str, str, uuid.UUID, str, str, str]]) -> None:
    """items: (target_table, target_column, row_id, source_legacy_id, ref_table, ref_legacy_id)."""
    if not items:
        return
    cols = list(zip(*items))
    conn.execute(
        """
        INSERT INTO migration.deferred_refs
            (target_table, target_column, row_id, source_legacy_id, ref_table, ref_legacy_id)
        SELECT * FROM unnest(%b::text[], %b::text[], %b::uuid[], %b::text[], %b::text[], %b::text[])
        ON CONFLICT (target_table, target_column, row_id) DO UPDATE SET
            ref_table = EXCLUDED.ref_table, ref_legacy_id = EXCLUDED.ref_legacy_id,
            source_legacy_id = EXCLUDED.source_legacy_id
        """,
        [list(c) for c in cols],
    )


def has_deferred(conn: psycopg.Connection, loader: LoaderSpec) -> bool:
    """Whether any pending deferred reference names one of the loader's tables (none can,
    without a deferred column: then nothing is asked)."""
    if not any(c.deferred for t in loader.tables for c in t.columns):
        return False
    return conn.execute("SELECT EXISTS (SELECT 1 FROM migration.deferred_refs WHERE target_table = ANY(%s))",
                        [list(loader.table_names)]).fetchone()[0]


def clear_deferred(conn: psycopg.Connection, table: str, column: str, row_ids: Sequence[uuid.UUID]) -> None:
    """Documents that no longer hold the reference drop their pending entry."""
    if row_ids:
        conn.execute(
            "DELETE FROM migration.deferred_refs WHERE target_table = %s AND target_column = %s AND row_id = ANY(%b)",
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


# --- one batch ----------------------------------------------------------------------------

def record_batch(conn: psycopg.Connection, loader: LoaderSpec, results: Sequence[DocResult],
                 rejected: Sequence[Rejected], run_id: str, checkpoint: Checkpoint | None, *,
                 fresh: bool = False, clear_deferred_refs: bool = True) -> None:
    """Everything a written batch owes, in its transaction: quarantine entries for the
    rejected documents and the closing of entries of documents that now load, id_map
    entries, pending deferred references, and the checkpoint (None: a re-sync, which has no
    position). ``fresh``: the rows went into empty tables (their id_map entries are new).
    ``clear_deferred_refs=False``: no document of the batch can have a pending entry (see
    ``BatchStep``), so none is looked for; the lookup's cost grows with the pending entries."""
    root = loader.root
    id_idx = root.column_names.index("id")
    write_quarantine(conn, loader.name, loader.collection, run_id, [quarantine_entry(r) for r in rejected])
    resolve_quarantine(conn, loader.name, [r.legacy_id for r in results], run_id)
    for table in loader.tables:
        if table.has_legacy_id and "id" in table.column_names:
            i, li = table.column_names.index("id"), table.column_names.index("legacy_object_id")
            add_id_map(conn, table.table, [(row[li], row[i]) for r in results for row in r.rows.get(table.table, ())],
                       fresh=fresh)
    pending = []
    for r in results:
        root_id = r.rows[root.table][0][id_idx]
        for d in r.deferred:
            pending.append((d.table, d.column, root_id, r.legacy_id, d.ref.table, d.ref.legacy_id))
    for table in loader.tables if clear_deferred_refs else ():
        for c in table.columns:
            if c.deferred:
                # Documents that no longer hold the reference drop their pending entry.
                with_ref = {r.legacy_id for r in results for d in r.deferred if d.column == c.name}
                clear_deferred(conn, table.table, c.name,
                               [r.rows[root.table][0][id_idx] for r in results if r.legacy_id not in with_ref])
    upsert_deferred(conn, pending)
    if checkpoint is not None:
        advance_checkpoint(conn, checkpoint)


# --- removed rows -------------------------------------------------------------------------------

DELETED = "deleted"


def save_removed(conn: psycopg.Connection, loader: str, relation: str, where: str, params: Sequence[Any],
                 document: str, run_id: str, effect: str = DELETED) -> int:
    """Copy the rows of ``relation`` matching ``where`` into ``migration.removed_rows``
    (before they are deleted or changed, in the same transaction); returns how many."""
    return conn.execute(
        f"INSERT INTO migration.removed_rows (loader, table_name, document, row, effect, run_id) "
        f"SELECT %s, %s, %s, to_jsonb(t), %s, %s FROM {relation} t WHERE {where}",
        [loader, relation.removeprefix("public."), document, effect, run_id, *params]).rowcount


def removed_rows(conn: psycopg.Connection, loader: str | None = None) -> list[tuple[str, str, str, str, Any]]:
    """(table, document, effect, run, row) of the rows the catch-up removed, newest first."""
    return [tuple(r) for r in conn.execute(
        "SELECT table_name, document, effect, run_id, row FROM migration.removed_rows "
        "WHERE (%s::text IS NULL OR loader = %s) ORDER BY id DESC", [loader, loader]).fetchall()]


# --- acknowledged ledger conflicts ----------------------------------------------------------------

@dataclass(frozen=True)
class Acknowledgement:
    legacy_object_id: str
    source_text: str | None  # the document's canonical row when acknowledged (None: it had vanished)
    target_text: str
    differs: str
    acknowledged_by: str
    reason: str
    acknowledged_at: Any


def acknowledgements(conn: psycopg.Connection, loader: str) -> dict[str, Acknowledgement]:
    """The latest acknowledgement of each entry of ``loader``."""
    rows = conn.execute(
        "SELECT DISTINCT ON (legacy_object_id) legacy_object_id, source_text, target_text, differs, "
        "acknowledged_by, reason, acknowledged_at FROM migration.ledger_conflict_acks WHERE loader = %s "
        "ORDER BY legacy_object_id, acknowledged_at DESC", [loader]).fetchall()
    return {r[0]: Acknowledgement(*r) for r in rows}


def acknowledge(conn: psycopg.Connection, loader: str, ack: Acknowledgement) -> None:
    conn.execute(
        "INSERT INTO migration.ledger_conflict_acks (loader, legacy_object_id, source_text, target_text, differs, "
        "acknowledged_by, reason) VALUES (%s, %s, %s, %s, %s, %s, %s)",
        [loader, ack.legacy_object_id, ack.source_text, ack.target_text, ack.differs, ack.acknowledged_by, ack.reason])


# --- source digests of the last catch-up pass ---------------------------------------------------

# prefix -> (raw count, raw sum, per-table row counts, per-table row sums)
SavedBuckets = dict[str, tuple[int, int, list[int], list[int]]]


def saved_source_digests(conn: psycopg.Connection, loader: str) -> tuple[str | None, SavedBuckets]:
    """(fingerprint, buckets) the last catch-up pass of ``loader`` saved."""
    rows = conn.execute("SELECT prefix, fingerprint, raw_count, raw_sum, row_counts, row_sums "
                        "FROM migration.source_digests WHERE loader = %s", [loader]).fetchall()
    fingerprints = {r[1] for r in rows}
    if len(fingerprints) != 1:
        return None, {}
    return fingerprints.pop(), {p: (int(c), int(s), [int(x) for x in rc], [int(x) for x in rs])
                                for p, _, c, s, rc, rs in rows}


def save_source_digests(conn: psycopg.Connection, loader: str, fingerprint: str, buckets: SavedBuckets) -> None:
    with conn.transaction():
        conn.execute("DELETE FROM migration.source_digests WHERE loader = %s", [loader])
        conn.cursor().executemany(
            "INSERT INTO migration.source_digests (loader, prefix, fingerprint, raw_count, raw_sum, row_counts, "
            "row_sums) VALUES (%s, %s, %s, %s, %s, %s, %s)",
            [[loader, p, fingerprint, c, s, rc, rs] for p, (c, s, rc, rs) in buckets.items()])


# --- the source side a load keeps for the verification after it -------------------------------

def record_load_digests(conn: psycopg.Connection, loader: str, range_no: int | None, position: str,
                        documents: int, digests: Mapping[str, Any]) -> None:
    """One batch's share (in the batch's transaction: it commits with the rows and checkpoint)."""
    conn.execute("INSERT INTO migration.load_source_digests (loader, range_no, position, documents, digests) "
                 "VALUES (%s, %s, %s, %s, %s)", [loader, range_no, position, documents, Jsonb(digests)])


def load_digests(conn: psycopg.Connection, loader: str) -> list[tuple[int, dict[str, Any]]]:
    """(documents, digests) of every batch of the loader's current generation, in source order."""
    return conn.execute("SELECT documents, digests FROM migration.load_source_digests WHERE loader = %s "
                        "ORDER BY range_no NULLS FIRST, id", [loader]).fetchall()


# --- the ledger snapshot ------------------------------------------------------------------

SNAPSHOT = "migration.ledger_entry_snapshot"


def record_ledger_snapshot(conn: psycopg.Connection, table: str, entry_hash: str, run_id: str) -> tuple[int, int]:
    """Record the entries of ``table`` not seen before (their row hash ``entry_hash``, an
    SQL expression over ``f``); returns (entries recorded now, entries recorded in all)."""
    recorded = conn.execute(
        f"INSERT INTO {SNAPSHOT} (legacy_object_id, entry_id, entry_hash, first_seen_run) "
        f"SELECT f.legacy_object_id, f.id, {entry_hash}, %s FROM public.{table} f "
        f"ON CONFLICT (legacy_object_id) DO NOTHING", [run_id]).rowcount
    (total,) = conn.execute(f"SELECT count(*) FROM {SNAPSHOT}").fetchone()
    return recorded, total


# --- applied schema files ----------------------------------------------------------------

def ensure_schema_record(conn: psycopg.Connection) -> dict[str, str]:
    """The platform's own record of applied ``sql/`` files (filename -> sha256)."""
    if not conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = 'migration'").fetchone():
        conn.execute("CREATE SCHEMA migration")  # a role that may (without CREATE on the database: made by the owner)
    conn.execute("CREATE TABLE IF NOT EXISTS migration.schema_migrations ("
                 " filename text PRIMARY KEY, sha256 text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())")
    return dict(conn.execute("SELECT filename, sha256 FROM migration.schema_migrations").fetchall())


def schema_file_recorded(conn: psycopg.Connection, filename: str) -> bool:
    return conn.execute("SELECT 1 FROM migration.schema_migrations WHERE filename = %s", [filename]).fetchone() is not None


def record_schema_file(conn: psycopg.Connection, filename: str, sha256: str) -> None:
    conn.execute("INSERT INTO migration.schema_migrations (filename, sha256) VALUES (%s, %s)", [filename, sha256])
