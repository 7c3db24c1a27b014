"""The Mongo side: a live server through pymongo, or a ``mongodump`` directory.

Both yield raw BSON documents with a resumable position, so the loader decodes each
document on its own (a malformed one is quarantined, not fatal to its batch):

* live: ``_id`` order, position = last ``_id`` (``{_id: {$gt: position}}`` resumes);
* dump: file order, position = byte offset just after the document.
"""

from __future__ import annotations

import datetime as dt
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

import bson
from bson import ObjectId
from bson.codec_options import CodecOptions, DatetimeConversion
from bson.raw_bson import RawBSONDocument

# tz-aware UTC datetimes; dates outside years 1..9999 decode to DatetimeMS (quarantined).
DECODE_OPTIONS = CodecOptions(
    tz_aware=True,
    tzinfo=dt.timezone.utc,
    datetime_conversion=DatetimeConversion.DATETIME_AUTO,
)
RAW_OPTIONS = CodecOptions(document_class=RawBSONDocument)
_OID_PREFIX = b"\x07_id\x00"


class SourceUnavailable(RuntimeError):
    """The source cannot be reached or read; the message names it without credentials."""


def redact_uri(uri: str) -> str:
    """``mongodb://user:secret@host/db`` -> ``mongodb://user:***@host/db`` (secret query
    options masked too)."""
    try:
        parts = urlsplit(uri)
    except ValueError:
        return "<unparseable uri>"
    netloc = parts.netloc
    if "@" in netloc:
        creds, hosts = netloc.rsplit("@", 1)
        user = creds.split(":", 1)[0]
        netloc = f"{user}:***@{hosts}"
    query = "&".join(
        f"{k}=***" if k.lower() in _SECRET_OPTIONS else (f"{k}={v}" if v else k)
        for k, _, v in (pair.partition("=") for pair in parts.query.split("&") if pair)
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


_SECRET_OPTIONS = ("password", "authmechanismproperties", "tlscertificatekeyfilepassword")


def uri_secrets(uri: str) -> list[str]:
    found: list[str] = []
    try:
        parts = urlsplit(uri)
        if parts.password:
            found += [parts.password, unquote(parts.password)]
        for k, _, v in (pair.partition("=") for pair in parts.query.split("&") if pair):
            if k.lower() in _SECRET_OPTIONS and v:
                found += [v, unquote(v)]
    except ValueError:
        pass
    return sorted({f for f in found if f}, key=len, reverse=True)


def scrub_uri(text: str, uri: str) -> str:
    """``text`` with the secrets of ``uri`` masked (driver errors may quote their input)."""
    for secret in uri_secrets(uri):
        text = text.replace(secret, "***")
    return text


def _driver_error(e: Exception, uri: str) -> str:
    """The useful head of a pymongo error (its topology dump is long), without secrets."""
    text = str(e).strip() or type(e).__name__
    text = text.split(", Timeout:")[0].split("Topology Description")[0].strip().rstrip(",")
    return f"{type(e).__name__}: {scrub_uri(text, uri)[:300]}"


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


@dataclass
class RawBatch:
    docs: list[bytes]
    position: str | None  # resume point after this batch


class LiveSource:
    """A running MongoDB (or wire-compatible) server, read with pymongo."""

    kind = "live"

    def __init__(self, uri: str, database: str, *, timeout_ms: int = 5000):
        import pymongo
        import pymongo.errors

        self.uri = uri
        self.database = database
        try:
            self.client = pymongo.MongoClient(uri, serverSelectionTimeoutMS=timeout_ms, connectTimeoutMS=timeout_ms)
        except (pymongo.errors.PyMongoError, ValueError, TypeError) as e:
            raise SourceUnavailable(f"MongoDB URI {redact_uri(uri)} is not usable: {_driver_error(e, uri)}") from None
        self.db = self.client[database]

    def describe(self) -> str:
        return f"{redact_uri(self.uri)} database {self.database}"

    def ping(self) -> None:
        import pymongo.errors

        try:
            self.client.admin.command("ping")
        except pymongo.errors.PyMongoError as e:
            raise SourceUnavailable(
                f"MongoDB at {redact_uri(self.uri)} is unreachable: {_driver_error(e, self.uri)}"
            ) from None

    def _failed(self, e: Exception, what: str) -> SourceUnavailable:
        return SourceUnavailable(f"MongoDB at {redact_uri(self.uri)} failed while {what}: {_driver_error(e, self.uri)}")

    def fingerprint(self, collection: str) -> str:
        return f"live:{redact_uri(self.uri)}/{self.database}.{collection}"

    def count(self, collection: str) -> int:
        import pymongo.errors

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
        import pymongo.errors

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

    def ids_changed_since(self, collection: str, since: dt.datetime, field: str = "updatedAt") -> list[Any]:
        return [d["_id"] for d in self.db[collection].find({field: {"$gt": since}}, {"_id": 1})]

    def find_by_ids(self, collection: str, ids: list[ObjectId]) -> list[bytes]:
        return [d.raw for d in self._raw(collection).find({"_id": {"$in": ids}})]

    def close(self) -> None:
        self.client.close()


class DumpSource:
    """A ``mongodump`` directory: ``<dir>/<database>/<collection>.bson`` (+ ``.metadata.json``)."""

    kind = "dump"

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

    def count(self, collection: str) -> int:
        """Documents in the file, walking the length prefixes only. A truncated or corrupt
        file is refused here, before a load starts (the loader counts first), with the same
        message the reader would give: a damaged dump is re-taken, not half-loaded."""
        p = self.path(collection)
        if not p.exists():
            return 0
        n, pos, end = 0, 0, p.stat().st_size
        with open(p, "rb") as f:
            while head := f.read(4):
                if len(head) < 4:
                    raise SourceUnavailable(f"{p} is truncated at byte {pos}")
                (size,) = struct.unpack("<i", head)
                if size < 5:
                    raise SourceUnavailable(f"{p} has a corrupt length {size} at byte {pos}")
                if pos + size > end:
                    raise SourceUnavailable(f"{p} is truncated at byte {pos}")
                f.seek(size - 4, os.SEEK_CUR)
                pos += size
                n += 1
        return n

    def iter_batches(self, collection: str, *, after: str | None = None, lo: str | None = None,
                     hi: str | None = None, batch_size: int = 2000) -> Iterator[RawBatch]:
        offset = int(after) if after else 0
        batch: list[bytes] = []
        pos = offset
        for raw, pos in self._iter_raw(collection, offset):
            if lo is not None or hi is not None:
                key = raw_id_hex(raw)
                if key is None or (lo is not None and key < lo) or (hi is not None and key >= hi):
                    continue
            batch.append(raw)
            if len(batch) >= batch_size:
                yield RawBatch(batch, str(pos))
                batch = []
        if batch:
            yield RawBatch(batch, str(pos))

    def keys_before(self, collection: str, position: str | None) -> Iterator[str]:
        """Legacy keys of the documents that end at or before byte ``position`` (what a
        resumed load already passed), exactly: not rounded to any batch size."""
        if not position:
            return
        stop = int(position)
        for raw, pos in self._iter_raw(collection):
            if pos > stop:
                return
            yield legacy_key(raw_id(raw))

    def ids_changed_since(self, collection: str, since: dt.datetime, field: str = "updatedAt") -> list[Any]:
        out = []
        for raw, _ in self._iter_raw(collection):
            doc = bson.decode(raw, DECODE_OPTIONS)
            v = doc.get(field)
            if isinstance(v, dt.datetime) and v > since:
                out.append(doc["_id"])
        return out

    def find_by_ids(self, collection: str, ids: list[ObjectId]) -> list[bytes]:
        wanted = {str(i) for i in ids}
        return [raw for raw, _ in self._iter_raw(collection) if raw_id_hex(raw) in wanted]

    def close(self) -> None:
        pass


def decode(raw: bytes) -> dict[str, Any]:
    return bson.decode(raw, DECODE_OPTIONS)
