"""Source change detection for catch-up loads (no change streams on every server: poll).

A collection's *mark* is how far the loaded data reaches: the highest ``_id`` seen and the
latest ``updatedAt`` seen (plus, for a mongodump directory, the file's fingerprint). A
document with a larger ``_id`` is new; one with a later ``updatedAt`` changed. The first mark
comes from the last completed load (PostgreSQL: the highest legacy id loaded or
quarantined, and the time that load started).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import asdict, dataclass

import psycopg
from bson import ObjectId

from migration_assets import target as tg
from migration_assets.source import DECODE_OPTIONS, raw_id_hex
from migration_assets.spec import LoaderSpec


@dataclass(frozen=True)
class Mark:
    id: str | None = None  # highest _id (24 hex) seen
    updated: str | None = None  # latest updatedAt seen (ISO-8601, UTC)
    fingerprint: str | None = None  # a dump file's size + mtime

    def to_json(self) -> dict:
        return asdict(self)

    @staticmethod
    def from_json(d: dict | None) -> Mark | None:
        return Mark(**d) if d else None


@dataclass
class Changes:
    collection: str
    new_docs: int = 0
    updated_docs: int = 0
    mark: Mark | None = None  # the mark after these changes

    @property
    def any(self) -> bool:
        return bool(self.new_docs or self.updated_docs)


def updated_field(loader: LoaderSpec) -> tuple[str, str] | None:
    """(Mongo field, PostgreSQL column) of the root document's last-update time, if mapped."""
    for c in loader.root.columns:
        if c.path == "updatedAt":
            return c.path, c.name
    return None


def _iso(t: dt.datetime) -> str:
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.timezone.utc)
    return t.astimezone(dt.timezone.utc).isoformat(timespec="milliseconds")


def _time(s: str) -> dt.datetime:
    return dt.datetime.fromisoformat(s)


def loaded_mark(conn: psycopg.Connection, loader: LoaderSpec) -> Mark | None:
    """The mark of the last completed load of ``loader``; None if it never completed."""
    cp = tg.read_checkpoint(conn, loader.name)
    if cp is None or cp.status != "completed":
        return None
    (hi,) = conn.execute(
        f"SELECT max(k) FROM (SELECT max(legacy_object_id) AS k FROM public.{loader.root.table} "
        f"UNION ALL SELECT max(legacy_id) FROM migration.quarantine WHERE loader = %s "
        f"AND legacy_id ~ '^[0-9a-f]{{24}}$') s", [loader.name]).fetchone()
    (started,) = conn.execute("SELECT started_at FROM migration.load_checkpoints WHERE loader = %s",
                              [loader.name]).fetchone()
    return Mark(id=hi, updated=_iso(started) if started else None,
                fingerprint=cp.source_fingerprint if cp.source_fingerprint.startswith("dump:") else None)


def changes_since(source, loader: LoaderSpec, mark: Mark) -> Changes:
    """New (``_id`` above the mark) and updated (``updatedAt`` after it) documents."""
    out = Changes(loader.collection, mark=mark)
    field = updated_field(loader)
    since = _time(mark.updated) if mark.updated else None
    top_id, top_time = mark.id, since
    if getattr(source, "kind", "") == "dump":
        fp = source.fingerprint(loader.collection)
        if mark.fingerprint == fp:
            return out  # the same file: nothing changed
        import bson

        for batch in source.iter_batches(loader.collection, batch_size=5000):
            for raw in batch.docs:
                key = raw_id_hex(raw)
                if key is None:
                    continue
                if mark.id is None or key > mark.id:
                    out.new_docs += 1
                    top_id = key if top_id is None else max(top_id, key)
                    continue
                if field and since is not None:
                    v = bson.decode(raw, DECODE_OPTIONS).get(field[0])
                    if isinstance(v, dt.datetime) and v > since:
                        out.updated_docs += 1
                        top_time = max(top_time, v)
        out.mark = Mark(top_id, _iso(top_time) if top_time else mark.updated, fp)
        return out
    # live: an _id range query and an updatedAt query (both indexable)
    for batch in source.iter_batches(loader.collection, after=mark.id, batch_size=5000):
        for raw in batch.docs:
            key = raw_id_hex(raw)
            if key is not None:
                out.new_docs += 1
                top_id = key if top_id is None else max(top_id, key)
    if field and since is not None:
        ids = [i for i in source.ids_changed_since(loader.collection, since, field[0]) if isinstance(i, ObjectId)]
        old = [i for i in ids if mark.id is None or str(i) <= mark.id]  # new ones are counted above
        out.updated_docs = len(old)
        if ids:
            import bson

            for raw in source.find_by_ids(loader.collection, ids):
                v = bson.decode(raw, DECODE_OPTIONS).get(field[0])
                if isinstance(v, dt.datetime) and v > top_time:
                    top_time = v
    out.mark = Mark(top_id, _iso(top_time) if top_time else mark.updated, None)
    return out


def marks_key(marks: dict[str, Mark]) -> str:
    """A short stable digest of a set of marks (run keys)."""
    text = json.dumps({k: v.to_json() for k, v in sorted(marks.items())}, sort_keys=True)
    return hashlib.sha1(text.encode()).hexdigest()[:16]
