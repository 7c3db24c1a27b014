"""A ``mongodump`` directory: ``<dir>/<database>/<collection>.bson`` (+ ``.metadata.json``).
File order; position = the byte offset just after a document. Every query is one pass over
the file, and a dump may hold one ``_id`` twice."""

from __future__ import annotations

import bisect
import datetime as dt
import os
import struct
from array import array
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import bson
from bson import ObjectId

from migration_assets.source.documents import (
    DECODE_OPTIONS,
    Range,
    RawBatch,
    SourceUnavailable,
    holds,
    legacy_key,
    raw_id,
    raw_id_hex,
)
from migration_assets.source.spans import Span, SpanPlan, fewer_note, offset_spans


def _in(key: str | None, lo: str | None, hi: str | None) -> bool:
    return key is not None and (lo is None or key >= lo) and (hi is None or key < hi)


def merge_ranges(ranges: Sequence[Range]) -> list[Range]:
    """Disjoint ``[lo, hi)`` ranges (None: unbounded) covering exactly ``ranges``, sorted."""
    out: list[list] = []
    for lo, hi in sorted(ranges, key=lambda r: r[0] or ""):
        if out and (out[-1][1] is None or (lo or "") <= out[-1][1]):
            if out[-1][1] is not None and (hi is None or hi > out[-1][1]):
                out[-1][1] = hi
            continue
        out.append([lo, hi])
    return [(lo, hi) for lo, hi in out]


class DumpSource:
    """A mongodump directory, read document by document without loading a file whole."""

    ids_unique = False

    def __init__(self, directory: str | os.PathLike, database: str):
        self.directory = Path(directory)
        self.database = database

    def describe(self) -> str:
        return f"mongodump {self.directory / self.database}"

    def path(self, collection: str) -> Path:
        return self.directory / self.database / f"{collection}.bson"

    def ping(self) -> None:
        base = self.directory / self.database
        if not base.is_dir():
            raise SourceUnavailable(f"mongodump directory {base} does not exist")

    def fingerprint(self, collection: str) -> str:
        p = self.path(collection)
        st = p.stat() if p.exists() else None
        return f"dump:{p}:{st.st_size if st else 0}:{st.st_mtime_ns if st else 0}"

    def snapshot_version(self, collection: str) -> str | None:
        return self.fingerprint(collection)  # a file changes only when it is re-taken

    def _iter_raw(self, collection: str, offset: int = 0) -> Iterator[tuple[bytes, int]]:
        p = self.path(collection)
        if not p.exists():
            return
        with open(p, "rb", buffering=1 << 20) as f:
            f.seek(offset)
            pos = offset
            while True:
                head = f.read(4)
                if not head:
                    return
                if len(head) < 4:
                    raise SourceUnavailable(f"{p} is truncated at byte {pos}")
                (size,) = struct.unpack("<i", head)
                if size < 5:
                    raise SourceUnavailable(f"{p} has a corrupt length {size} at byte {pos}")
                body = f.read(size - 4)
                if len(body) < size - 4:
                    raise SourceUnavailable(f"{p} is truncated at byte {pos}")
                pos += size
                yield head + body, pos

    def _offsets(self, collection: str) -> Iterator[int]:
        """Where each document starts, walking the length prefixes only. A truncated or
        corrupt file is refused here, before a load starts, with the same message the reader
        would give: a damaged dump is re-taken, not half-loaded."""
        p = self.path(collection)
        if not p.exists():
            return
        pos, end = 0, p.stat().st_size
        with open(p, "rb") as f:
            while head := f.read(4):
                if len(head) < 4:
                    raise SourceUnavailable(f"{p} is truncated at byte {pos}")
                (size,) = struct.unpack("<i", head)
                if size < 5:
                    raise SourceUnavailable(f"{p} has a corrupt length {size} at byte {pos}")
                if pos + size > end:
                    raise SourceUnavailable(f"{p} is truncated at byte {pos}")
                yield pos
                f.seek(size - 4, os.SEEK_CUR)
                pos += size

    def count(self, collection: str) -> int:
        return sum(1 for _ in self._offsets(collection))

    def plan_spans(self, collection: str, n: int) -> SpanPlan:
        # Record offsets: any _id type, and a repeated _id, stay in file order.
        offsets = array("q", self._offsets(collection))
        size = self.path(collection).stat().st_size if offsets else 0
        spans = offset_spans(offsets, size, n)
        return SpanPlan(spans, "dump record offsets", fewer_note(n, len(spans), len(offsets)))

    def iter_span(self, collection: str, span: Span, *, after: str | None = None,
                  batch_size: int = 2000) -> Iterator[RawBatch]:
        start = int(after) if after else int(span.start or 0)
        end = int(span.end) if span.end is not None else None
        if end is not None and start >= end:
            return
        batch: list[bytes] = []
        pos = start
        for raw, pos in self._iter_raw(collection, start):
            batch.append(raw)
            if len(batch) >= batch_size:
                yield RawBatch(batch, str(pos))
                batch = []
            if end is not None and pos >= end:
                break
        if batch:
            yield RawBatch(batch, str(pos))

    def iter_batches(self, collection: str, *, after: str | None = None, lo: str | None = None,
                     hi: str | None = None, batch_size: int = 2000) -> Iterator[RawBatch]:
        offset = int(after) if after else 0
        ranged = lo is not None or hi is not None
        batch: list[bytes] = []
        pos = offset
        for raw, pos in self._iter_raw(collection, offset):
            if ranged and not _in(raw_id_hex(raw), lo, hi):
                continue
            batch.append(raw)
            if len(batch) >= batch_size:
                yield RawBatch(batch, str(pos))
                batch = []
        if batch:
            yield RawBatch(batch, str(pos))

    def iter_ranges(self, collection: str, ranges: Sequence[Range]) -> Iterator[bytes]:
        if not ranges:
            return
        merged = merge_ranges(ranges)
        starts = [lo or "" for lo, _ in merged]
        for raw, _ in self._iter_raw(collection):
            key = raw_id_hex(raw)
            if key is None:
                continue
            i = bisect.bisect_right(starts, key) - 1  # the one merged range that could hold it
            if i >= 0 and _in(key, *merged[i]):
                yield raw

    def keys_before(self, collection: str, position: str | None) -> Iterator[str]:
        """Keys of the documents that end at or before byte ``position``, exactly: not
        rounded to any batch size."""
        if not position:
            return
        stop = int(position)
        for raw, pos in self._iter_raw(collection):
            if pos > stop:
                return
            yield legacy_key(raw_id(raw))

    def iter_ids(self, collection: str) -> Iterator[str]:
        for raw, _ in self._iter_raw(collection):
            key = raw_id_hex(raw)
            if key is not None:
                yield key

    def find_by_ids(self, collection: str, ids: Sequence[ObjectId]) -> list[bytes]:
        wanted = {str(i) for i in ids}
        return [raw for raw, _ in self._iter_raw(collection) if raw_id_hex(raw) in wanted]

    def ids_where(self, collection: str, path: str, value: Any) -> list[str]:
        needle = value.binary if isinstance(value, ObjectId) else None
        out = []
        for raw, _ in self._iter_raw(collection):
            if needle is not None and needle not in raw:  # cheap pre-filter on the bytes
                continue
            key = raw_id_hex(raw)
            if key is None:
                continue
            try:
                doc = bson.decode(raw, DECODE_OPTIONS)
            except Exception:
                continue
            if holds(doc, path, value):
                out.append(key)
        return out

    def updated_since(self, collection: str, field: str, since: dt.datetime) -> list[tuple[str, dt.datetime]]:
        out = []
        for raw, _ in self._iter_raw(collection):
            key = raw_id_hex(raw)
            if key is None:
                continue
            try:
                v = bson.decode(raw, DECODE_OPTIONS).get(field)
            except Exception:
                continue
            if isinstance(v, dt.datetime) and v > since:
                out.append((key, v))
        return out

    def close(self) -> None:
        pass
