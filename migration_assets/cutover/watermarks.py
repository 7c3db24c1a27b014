"""Source change detection for catch-up loads (no change streams on every server: poll).

A collection's *mark* is how far the loaded data reaches: the highest ``_id`` seen and the
latest ``updatedAt`` seen (plus the source's snapshot version, where it has one: a mongodump
directory's file). A
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

from migration_assets.source.documents import Source, next_id, raw_id_hex
from migration_assets.specs.model import LoaderSpec
from migration_assets.target.bookkeeping import read_checkpoint


@dataclass(frozen=True)
class Mark:
    id: str | None = None  # highest _id (24 hex) seen
    updated: str | None = None  # latest updatedAt seen (ISO-8601, UTC)
    fingerprint: str | None = None  # the source's snapshot version (a dump file's size + mtime)

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


def loaded_mark(conn: psycopg.Connection, loader: LoaderSpec, source: Source) -> Mark | None:
    """The mark of the last completed load of ``loader``; None if it never completed."""
    cp = read_checkpoint(conn, loader.name)
    if cp is None or cp.status != "completed":
        return None
    (hi,) = conn.execute(
        f"SELECT max(k) FROM (SELECT max(legacy_object_id) AS k FROM public.{loader.root.table} "
        f"UNION ALL SELECT max(legacy_id) FROM migration.quarantine WHERE loader = %s "
        f"AND legacy_id ~ '^[0-9a-f]{{24}}$') s", [loader.name]).fetchone()
    (started,) = conn.execute("SELECT started_at FROM migration.load_checkpoints WHERE loader = %s",
                              [loader.name]).fetchone()
    return Mark(id=hi, updated=_iso(started) if started else None,
                # A source with snapshot versions fingerprints loads by them (a dump's file).
                fingerprint=cp.source_fingerprint if source.snapshot_version(loader.collection) is not None else None)


def changes_since(source: Source, loader: LoaderSpec, mark: Mark) -> Changes:
    """New (``_id`` above the mark) and updated (``updatedAt`` after it) documents."""
    out = Changes(loader.collection, mark=mark)
    version = source.snapshot_version(loader.collection)
    if version is not None and mark.fingerprint == version:
        return out  # the same snapshot: nothing changed
    field = updated_field(loader)
    since = _time(mark.updated) if mark.updated else None
    top_id, top_time = mark.id, since
    lo = next_id(mark.id) if mark.id else None
    for batch in source.iter_batches(loader.collection, lo=lo, batch_size=5000):
        for raw in batch.docs:
            key = raw_id_hex(raw)
            if key is not None:
                out.new_docs += 1
                top_id = key if top_id is None else max(top_id, key)
    if field and since is not None:
        for key, updated in source.updated_since(loader.collection, field[0], since):
            if mark.id is None or key <= mark.id:  # new ones are counted above
                out.updated_docs += 1
            top_time = max(top_time, updated)
    out.mark = Mark(top_id, _iso(top_time) if top_time else mark.updated, version)
    return out


def marks_key(marks: dict[str, Mark]) -> str:
    """A short stable digest of a set of marks (run keys)."""
    text = json.dumps({k: v.to_json() for k, v in sorted(marks.items())}, sort_keys=True)
    return hashlib.sha1(text.encode()).hexdigest()[:16]
