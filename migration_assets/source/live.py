"""A running MongoDB (or wire-compatible) server, read with pymongo: ``_id`` order, position
= the last ``_id`` (``{_id: {$gt: position}}`` resumes)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from typing import Any

import pymongo
import pymongo.errors
from bson import ObjectId

from migration_assets.redaction import redact, scrub
from migration_assets.source.documents import (
    QUERY_OPTIONS,
    RAW_OPTIONS,
    Range,
    RawBatch,
    SourceUnavailable,
    raw_id,
    raw_id_hex,
)
from migration_assets.source.spans import WHOLE, Span, SpanPlan, cut_points, fewer_note, spans_from_points

SAMPLE_PER_RANGE = 200  # sampled _ids per range asked: boundaries within ~7 % of an equal split


def driver_error(e: Exception, uri: str) -> str:
    """The useful head of a pymongo error (its topology dump is long), without secrets."""
    text = str(e).strip() or type(e).__name__
    text = text.split(", Timeout:")[0].split("Topology Description")[0].strip().rstrip(",")
    return f"{type(e).__name__}: {scrub(text, uri)[:300]}"


class LiveSource:
    """A live server: range and id queries use its ``_id`` index; ids are unique."""

    ids_unique = True

    def __init__(self, uri: str, database: str, *, timeout_ms: int = 5000):
        self.uri = uri
        self.database = database
        try:
            self.client = pymongo.MongoClient(uri, serverSelectionTimeoutMS=timeout_ms, connectTimeoutMS=timeout_ms)
        except (pymongo.errors.PyMongoError, ValueError, TypeError) as e:
            raise SourceUnavailable(f"MongoDB URI {redact(uri)} is not usable: {driver_error(e, uri)}") from None
        self.db = self.client.get_database(database, codec_options=QUERY_OPTIONS)

    def describe(self) -> str:
        return f"{redact(self.uri)} database {self.database}"

    def ping(self) -> None:
        try:
            self.client.admin.command("ping")
        except pymongo.errors.PyMongoError as e:
            raise SourceUnavailable(f"MongoDB at {redact(self.uri)} is unreachable: {driver_error(e, self.uri)}") from None

    def _failed(self, e: Exception, what: str) -> SourceUnavailable:
        return SourceUnavailable(f"MongoDB at {redact(self.uri)} failed while {what}: {driver_error(e, self.uri)}")

    def fingerprint(self, collection: str) -> str:
        return f"live:{redact(self.uri)}/{self.database}.{collection}"

    def snapshot_version(self, collection: str) -> str | None:
        return None  # a live collection changes under us: only reading it tells

    def count(self, collection: str) -> int:
        try:
            return self.db[collection].count_documents({})
        except pymongo.errors.PyMongoError as e:
            raise self._failed(e, f"counting {self.database}.{collection}") from None

    def _raw(self, collection: str):
        return self.db.get_collection(collection, codec_options=RAW_OPTIONS)

    def iter_batches(self, collection: str, *, after: str | None = None, lo: str | None = None,
                     hi: str | None = None, batch_size: int = 2000) -> Iterator[RawBatch]:
        """Batches in ``_id`` order; a server failure becomes :class:`SourceUnavailable`
        naming the last position read (committed batches resume from the checkpoint)."""
        last = after
        try:
            for batch in self._iter_batches(collection, after=after, lo=lo, hi=hi, batch_size=batch_size):
                last = batch.position or last
                yield batch
        except pymongo.errors.PyMongoError as e:
            raise self._failed(e, f"reading {self.database}.{collection} after _id {last or '(start)'}") from None

    def _iter_batches(self, collection: str, *, after: str | None, lo: str | None, hi: str | None,
                      batch_size: int) -> Iterator[RawBatch]:
        coll = self._raw(collection)
        if after is None and lo is None and hi is None:
            # Documents whose _id is not an ObjectId sort outside any ObjectId range; read them
            # first so they are quarantined rather than skipped.
            odd = [d.raw for d in coll.find({"_id": {"$not": {"$type": "objectId"}}})]
            if odd:
                yield RawBatch(odd, None)
        cond: dict[str, Any] = {}
        if after is not None:
            cond["$gt"] = ObjectId(after)
        if lo is not None:
            cond["$gte"] = ObjectId(lo)
        if hi is not None:
            cond["$lt"] = ObjectId(hi)
        query = {"_id": cond} if cond else {"_id": {"$type": "objectId"}}
        cursor = coll.find(query).sort("_id", 1).batch_size(batch_size)
        batch: list[bytes] = []
        for doc in cursor:
            batch.append(doc.raw)
            if len(batch) >= batch_size:
                yield RawBatch(batch, raw_id_hex(batch[-1]) or str(raw_id(batch[-1])))
                batch = []
        if batch:
            yield RawBatch(batch, raw_id_hex(batch[-1]) or str(raw_id(batch[-1])))

    def iter_ranges(self, collection: str, ranges: Sequence[Range]) -> Iterator[bytes]:
        for lo, hi in sorted(ranges, key=lambda r: r[0] or ""):
            for batch in self.iter_batches(collection, lo=lo, hi=hi, batch_size=5000):
                yield from batch.docs

    def plan_spans(self, collection: str, n: int) -> SpanPlan:
        try:
            return self._plan_spans(collection, n)
        except pymongo.errors.PyMongoError as e:
            raise self._failed(e, f"planning the ranges of {self.database}.{collection}") from None

    def _plan_spans(self, collection: str, n: int) -> SpanPlan:
        coll = self.db[collection]
        docs = coll.count_documents({})
        if n <= 1 or docs <= 1:
            return SpanPlan(WHOLE, "one range", fewer_note(n, 1, docs))
        odd = coll.count_documents({"_id": {"$not": {"$type": "objectId"}}})
        if odd:
            # _id ranges order ObjectIds only; the other types sort apart and would be missed.
            return SpanPlan(WHOLE, "one range", f"{odd} document(s) have an _id that is not an ObjectId "
                                                f"(mixed _id types): 1 range instead of {n}")
        n = min(n, docs)
        try:
            sample = coll.aggregate([{"$sample": {"size": min(docs, SAMPLE_PER_RANGE * n)}}, {"$project": {"_id": 1}}])
            points, basis = cut_points(sorted(str(d["_id"]) for d in sample), n), "_id quantiles of a sample"
        except pymongo.errors.OperationFailure:
            # A server without $sample: the exact quantiles, n - 1 walks of the _id index.
            points = [str(coll.find_one({}, {"_id": 1}, sort=[("_id", 1)], skip=(i * docs) // n)["_id"])
                      for i in range(1, n)]
            points, basis = sorted(set(points)), "_id quantiles from the _id index"
        spans = spans_from_points(points)
        return SpanPlan(spans, basis, fewer_note(n, len(spans), docs))

    def iter_span(self, collection: str, span: Span, *, after: str | None = None,
                  batch_size: int = 2000) -> Iterator[RawBatch]:
        return self.iter_batches(collection, after=after, lo=span.start, hi=span.end, batch_size=batch_size)

    def keys_before(self, collection: str, position: str | None) -> Iterator[str]:
        return iter(())  # ids are unique: nothing to remember

    def iter_ids(self, collection: str) -> Iterator[str]:
        try:
            for d in self._raw(collection).find({"_id": {"$type": "objectId"}}, {"_id": 1}):
                yield raw_id_hex(d.raw)
        except pymongo.errors.PyMongoError as e:
            raise self._failed(e, f"listing the ids of {self.database}.{collection}") from None

    def find_by_ids(self, collection: str, ids: Sequence[ObjectId]) -> list[bytes]:
        ids = list(ids)
        try:
            return [d.raw for i in range(0, len(ids), 1000)
                    for d in self._raw(collection).find({"_id": {"$in": ids[i:i + 1000]}})]
        except pymongo.errors.PyMongoError as e:
            raise self._failed(e, f"reading {len(ids)} documents of {self.database}.{collection}") from None

    def ids_where(self, collection: str, path: str, value: Any) -> list[str]:
        try:
            return [h for d in self._raw(collection).find({path: value}, {"_id": 1})
                    if (h := raw_id_hex(d.raw)) is not None]
        except pymongo.errors.PyMongoError as e:
            raise self._failed(e, f"querying {self.database}.{collection} by {path}") from None

    def updated_since(self, collection: str, field: str, since: dt.datetime) -> list[tuple[str, dt.datetime]]:
        try:
            docs = self.db[collection].find({field: {"$gt": since}}, {"_id": 1, field: 1})
            return [(str(d["_id"]), _aware(d[field])) for d in docs
                    if isinstance(d.get("_id"), ObjectId) and isinstance(d.get(field), dt.datetime)]
        except pymongo.errors.PyMongoError as e:
            raise self._failed(e, f"querying {self.database}.{collection} by {field}") from None

    def close(self) -> None:
        self.client.close()


def _aware(t: dt.datetime) -> dt.datetime:
    return t if t.tzinfo else t.replace(tzinfo=dt.timezone.utc)
