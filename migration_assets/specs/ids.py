"""Deterministic ids: the same legacy ObjectId always maps to the same uuid, so migrating
the same source twice yields the same PostgreSQL ids (before any row exists to reuse)."""

from __future__ import annotations

import functools
import hashlib
import uuid

# Fixed namespace for this platform's uuid5 ids; changing it would change every id.
NAMESPACE = uuid.UUID("6f1c5c8e-2b1d-4c59-9a53-5e0c8f3a7d21")

_NS = NAMESPACE.bytes
_V5_CLEAR = ~((0xC000 << 48) | (0xF000 << 64))
_V5_SET = (0x8000 << 48) | (5 << 76)


def new_id(table: str, legacy_id: str) -> uuid.UUID:
    """uuid5 of ``table:legacy_id`` (the table keeps equal ObjectIds of two collections
    apart). The same 128 bits as ``uuid.uuid5``, built without ``UUID.__init__``'s checks,
    which cost three times the hashing on a load's hot path."""
    digest = hashlib.sha1(_NS + f"{table}:{legacy_id}".encode()).digest()[:16]
    u = object.__new__(uuid.UUID)
    object.__setattr__(u, "int", (int.from_bytes(digest, "big") & _V5_CLEAR) | _V5_SET)
    object.__setattr__(u, "is_safe", uuid.SafeUUID.unknown)
    return u


@functools.lru_cache(maxsize=1 << 14)
def cached_new_id(table: str, legacy_id: str) -> uuid.UUID:
    """``new_id``, remembered: a document's child rows all name its root row."""
    return new_id(table, legacy_id)
