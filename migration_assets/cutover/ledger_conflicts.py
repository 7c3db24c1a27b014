"""Immutable conflicts of an append-only ledger, and an auditor's acknowledgement of them.

The funds ledger is never rewritten: an entry whose Mongo document changed or vanished stays
as PostgreSQL recorded it, and the difference fails the ledger's checks. An auditor lists
those differences (``migration-assets ledger-conflicts``) and may acknowledge one with a
reason; the record says which entry, what differs (both canonical rows), who, when and why.
It holds for exactly that difference (``verify/acknowledged.py``): another change of the
same entry fails the checks again.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg

from migration_assets.source.documents import Source
from migration_assets.specs.model import LoaderSpec
from migration_assets.target.bookkeeping import Acknowledgement, acknowledge
from migration_assets.verify.acknowledged import document_texts, held_acknowledgements
from migration_assets.verify.canonical import prefix_bounds, table_sql
from migration_assets.verify.diff import bisect_diff

ABSENT = "absent from Mongo"


class NotAConflict(ValueError):
    """The entry named for acknowledgement is not a current conflict."""


@dataclass(frozen=True)
class LedgerConflict:
    entry: str  # legacy_object_id
    differs: str  # "absent from Mongo" or "changed: <columns>"
    source_text: str | None  # the document's canonical row now (None: it vanished)
    target_text: str  # the entry's canonical row in PostgreSQL


def target_text(loader: LoaderSpec, conn: psycopg.Connection, entry: str) -> str | None:
    tsql = table_sql(loader.root)
    where, params = tsql.where(*prefix_bounds(entry))
    row = conn.execute(f"SELECT {tsql.key_expr}, {tsql.row_text} FROM {tsql.from_sql}{where}", params).fetchone()
    return row[1] if row and row[0] == entry else None


def ledger_conflicts(loader: LoaderSpec, source: Source, conn: psycopg.Connection
                     ) -> tuple[list[LedgerConflict], dict[str, Acknowledgement]]:
    """The entries of ``loader`` (append-only) that differ from Mongo and are not acknowledged,
    and the acknowledgements that still hold. Entries Mongo has and PostgreSQL lacks are not
    conflicts: the next load inserts them."""
    root = loader.root.table
    diff = bisect_diff(loader, source, conn, tables=[root], limit=None)
    found = {d.document: (ABSENT if d.kind == "extra" else "changed: " + ", ".join(d.columns))
             for d in diff.tables[root].sample if d.kind in ("extra", "changed")}
    texts = document_texts(loader, source, found)
    conflicts = [LedgerConflict(e, why, texts[e], target_text(loader, conn, e) or "") for e, why in sorted(found.items())]
    return conflicts, held_acknowledgements(loader, source, conn)


def acknowledge_conflict(loader: LoaderSpec, source: Source, conn: psycopg.Connection, entry: str, *,
                         by: str, reason: str) -> LedgerConflict:
    """Record an auditor's acknowledgement of the current conflict of ``entry``."""
    if not reason.strip() or not by.strip():
        raise NotAConflict("an acknowledgement needs a reason and who gives it")
    conflicts, held = ledger_conflicts(loader, source, conn)
    if entry in held:
        raise NotAConflict(f"{entry} is already acknowledged (by {held[entry].acknowledged_by}: {held[entry].reason})")
    hit = next((c for c in conflicts if c.entry == entry), None)
    if hit is None:
        raise NotAConflict(f"{entry} is not a conflict of {loader.root.table}: it reads the same in Mongo and PostgreSQL")
    acknowledge(conn, loader.name, Acknowledgement(entry, hit.source_text, hit.target_text, hit.differs, by, reason,
                                                   None))
    return hit
