"""Acknowledged ledger conflicts that still hold.

An immutable ledger entry whose Mongo document changed or vanished stays as PostgreSQL
recorded it, and its difference fails the checks until an auditor acknowledges it
(``migration-assets ledger-conflicts --ack``). An acknowledgement holds for exactly the
difference it accepted: while the document reads as it did then (or is still gone), the
entry is left out of both sides of the checks and listed apart; another change of the same
entry fails again.
"""

from __future__ import annotations

from collections.abc import Iterable

import psycopg
from bson import ObjectId

from migration_assets.source.documents import Source, decode, raw_key
from migration_assets.specs.model import LoaderSpec
from migration_assets.target.bookkeeping import Acknowledgement, acknowledgements
from migration_assets.verify.canonical import expected_rows


def document_texts(loader: LoaderSpec, source: Source, entries: Iterable[str]) -> dict[str, str | None]:
    """The canonical text of each entry's root row as Mongo holds it now (None: no document)."""
    entries = sorted(set(entries))
    docs: dict[str, dict] = {}
    for raw in source.find_by_ids(loader.collection, [ObjectId(e) for e in entries]) if entries else ():
        docs.setdefault(raw_key(raw), decode(raw))  # a duplicated _id: the first occurrence counts
    out: dict[str, str | None] = {}
    for e in entries:
        rows = expected_rows(loader, loader.root, docs[e], {}) if e in docs else []
        out[e] = rows[0].text if rows else None  # an unmappable document is expected nowhere
    return out


def held_acknowledgements(loader: LoaderSpec, source: Source, conn: psycopg.Connection) -> dict[str, Acknowledgement]:
    """legacy id -> the acknowledgement that still describes the difference now."""
    if not loader.append_only:
        return {}
    acks = acknowledgements(conn, loader.name)
    now = document_texts(loader, source, acks)
    return {legacy: ack for legacy, ack in acks.items() if now[legacy] == ack.source_text}
