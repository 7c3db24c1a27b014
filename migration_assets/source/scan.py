"""The one scan over a collection that every check, diff and context pass makes: each raw
document with its key, whether it is expected in PostgreSQL, and its decoding on demand."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from bson import ObjectId

from migration_assets.source.documents import Range, Source, decode, legacy_key, raw_id, raw_id_hex

UNDECODABLE = object()


@dataclass
class Scanned:
    key: str  # legacy key of the _id (24 hex for ObjectIds)
    raw: bytes
    object_id: bool  # only ObjectId documents can load
    skipped: bool  # not expected in PostgreSQL (quarantined, or not an ObjectId)
    _doc: Any = field(default=None, repr=False)

    @property
    def doc(self) -> dict[str, Any] | None:
        """The decoded document, None when it cannot be decoded (it is quarantined then)."""
        if self._doc is None:
            try:
                self._doc = decode(self.raw)
            except Exception:
                self._doc = UNDECODABLE
        return None if self._doc is UNDECODABLE else self._doc


def scan(source: Source, collection: str, *, skip: Callable[[str], bool] | None = None,
         lo: str | None = None, hi: str | None = None, ranges: Sequence[Range] | None = None,
         batch_size: int = 5000) -> Iterator[Scanned]:
    """Every document of ``collection`` (or of ``lo``..``hi``, or of ``ranges``), in source
    order. ``skip(key)`` is asked of every document in that order (a quarantine of duplicated
    ``_id``s counts occurrences) and marks the ones PostgreSQL is not expected to hold."""
    if ranges is not None:
        raws: Iterator[bytes] = source.iter_ranges(collection, ranges)
    else:
        raws = (raw for b in source.iter_batches(collection, lo=lo, hi=hi, batch_size=batch_size) for raw in b.docs)
    for raw in raws:
        hex_id = raw_id_hex(raw)
        if hex_id is not None:
            key, oid = hex_id, True
        else:
            ident = raw_id(raw)
            key, oid = legacy_key(ident), isinstance(ident, ObjectId)
        skipped = bool(skip(key)) if skip is not None else False
        yield Scanned(key, raw, oid, skipped or not oid)
