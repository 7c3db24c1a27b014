"""Raw source documents and the one protocol every source implements.

A source yields raw BSON documents with a resumable position, so each document is decoded
on its own (a malformed one is quarantined, not fatal to its batch). What tells the two
sources apart is said by the protocol, never by asking which one it is: a live server
answers range and id queries with its indexes, a mongodump directory answers them in one
pass over its file, and only a dump can hold one ``_id`` twice (``ids_unique``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import bson
from bson import ObjectId
from bson.codec_options import CodecOptions, DatetimeConversion
from bson.raw_bson import RawBSONDocument

from migration_assets.source.spans import Span, SpanPlan
from migration_assets.specs.model import MISSING, get_path

# tz-aware UTC datetimes; dates outside years 1..9999 decode to DatetimeMS (quarantined).
DECODE_OPTIONS = CodecOptions(
    tz_aware=True,
    tzinfo=dt.timezone.utc,
    datetime_conversion=DatetimeConversion.DATETIME_AUTO,
)
RAW_OPTIONS = CodecOptions(document_class=RawBSONDocument)
# decoded queries (ids, a timestamp field): no other value of a document can fail them, even
# where a server returns more than the projection asked (jongodb ignores projections)
QUERY_OPTIONS = DECODE_OPTIONS.with_options(unicode_decode_error_handler="surrogateescape")
_OID_PREFIX = b"\x07_id\x00"


class SourceUnavailable(RuntimeError):
    """The source cannot be reached or read; the message names it without credentials."""


def raw_id_hex(raw: bytes) -> str | None:
    """The ``_id`` of a raw document when it is a leading ObjectId (always, for stored docs)."""
    if raw[4:9] == _OID_PREFIX:
        return raw[9:21].hex()
    return None


def raw_id(raw: bytes) -> Any:
    """The ``_id`` value of a raw document, decoding only when it is not a leading ObjectId."""
    hex_id = raw_id_hex(raw)
    if hex_id is not None:
        return ObjectId(hex_id)
    try:
        return RawBSONDocument(raw).get("_id")
    except Exception:
        return None


def legacy_key(value: Any) -> str:
    """Text key for any ``_id`` (ObjectIds as hex; anything else marked by its type)."""
    if isinstance(value, ObjectId):
        return str(value)
    return f"{type(value).__name__}:{value!r}"[:200]


def raw_key(raw: bytes) -> str:
    """``legacy_key`` of a raw document's ``_id``, without decoding it when it is an ObjectId."""
    return raw_id_hex(raw) or legacy_key(raw_id(raw))


def decode(raw: bytes) -> dict[str, Any]:
    return bson.decode(raw, DECODE_OPTIONS)


def next_id(hex_id: str) -> str:
    """The smallest ObjectId (hex) after ``hex_id``: the inclusive start of what follows it."""
    return format(int(hex_id, 16) + 1, "024x")


def holds(value: Any, path: str, wanted: Any) -> bool:
    """Whether ``value`` holds ``wanted`` at ``path``, arrays matched element-wise as Mongo
    matches ``{path: wanted}``."""
    head, _, rest = path.partition(".")
    if isinstance(value, list):
        return any(holds(v, path, wanted) for v in value)
    if not isinstance(value, dict):
        return False
    inner = get_path(value, head)
    if inner is MISSING:
        return False
    if not rest:
        return inner == wanted or (isinstance(inner, list) and wanted in inner)
    return holds(inner, rest, wanted)


@dataclass
class RawBatch:
    docs: list[bytes]
    position: str | None  # resume point after this batch (opaque to the caller)


Range = tuple[str | None, str | None]  # [lo, hi) of hex ObjectIds; None is open


class Source(Protocol):
    """What the loaders, checks and sensors ask of a Mongo source."""

    # Whether an ``_id`` occurs at most once (a server's unique index) or may repeat (a dump).
    ids_unique: bool

    def describe(self) -> str: ...
    def ping(self) -> None: ...
    def fingerprint(self, collection: str) -> str: ...

    def snapshot_version(self, collection: str) -> str | None:
        """A token that changes whenever the collection may have changed; None when the
        source cannot tell without reading it."""

    def count(self, collection: str) -> int: ...

    def iter_batches(self, collection: str, *, after: str | None = None, lo: str | None = None,
                     hi: str | None = None, batch_size: int = 2000) -> Iterator[RawBatch]:
        """Every document (or those with ``lo <= _id < hi``), resumable ``after`` a position."""

    def iter_ranges(self, collection: str, ranges: Sequence[Range]) -> Iterator[bytes]:
        """The documents whose ``_id`` falls in any of ``ranges``."""

    def plan_spans(self, collection: str, n: int) -> SpanPlan:
        """At most ``n`` spans covering the collection exactly once, cut where the source
        can seek (see ``spans.py``); fewer, saying why, when the collection cannot be split."""

    def iter_span(self, collection: str, span: Span, *, after: str | None = None,
                  batch_size: int = 2000) -> Iterator[RawBatch]:
        """The batches of one span, resumable ``after`` a position inside it."""

    def keys_before(self, collection: str, position: str | None) -> Iterator[str]:
        """Keys of the documents a load resumed at ``position`` already passed (needed only
        where ids may repeat)."""

    def iter_ids(self, collection: str) -> Iterator[str]:
        """Every ObjectId ``_id`` (hex), reading as little else as the source allows."""

    def find_by_ids(self, collection: str, ids: Sequence[ObjectId]) -> list[bytes]: ...

    def ids_where(self, collection: str, path: str, value: Any) -> list[str]:
        """``_id``s (hex) of the documents holding ``value`` at ``path`` (arrays element-wise)."""

    def updated_since(self, collection: str, field: str, since: dt.datetime) -> list[tuple[str, dt.datetime]]:
        """(``_id`` hex, ``field``) of the documents whose ``field`` is a date after ``since``."""

    def close(self) -> None: ...
