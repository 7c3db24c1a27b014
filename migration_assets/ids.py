"""Deterministic ids: the same legacy ObjectId always maps to the same uuid, so migrating
the same source twice yields the same PostgreSQL ids (before any row exists to reuse)."""

from __future__ import annotations

import uuid

# Fixed namespace for this platform's uuid5 ids; changing it would change every id.
NAMESPACE = uuid.UUID("6f1c5c8e-2b1d-4c59-9a53-5e0c8f3a7d21")


def new_id(table: str, legacy_id: str) -> uuid.UUID:
    """uuid5 of ``table:legacy_id``; the table keeps equal ObjectIds of two collections apart."""
    return uuid.uuid5(NAMESPACE, f"{table}:{legacy_id}")
