"""The reverse sync: a domain's writes made in PostgreSQL after its cutover, copied back into
Mongo, so a rollback loses nothing.

The documents that differ are found as ``reconcile`` finds them (digests per ``_id`` prefix,
then bisection), read the other way: a document PostgreSQL holds and Mongo lacks is inserted,
one whose rows differ is updated, one Mongo holds that PostgreSQL deleted is deleted. Only
writes made after the cutover are touched, by the rows' timestamps (and ``id_map`` for a
delete: the document was in PostgreSQL once); a document Mongo itself changed after the
cutover is left alone and listed. The funds ledger only grows: entries PostgreSQL appended are
inserted; a changed or missing entry is a conflict, never rewritten in either direction.

Each document is rendered from its rows by the same spec (``transform/render.py``) and written
with ``$set`` / ``$unset`` of the mapped paths only. Before it is written, its rendering is held
to its rows: the canonical rows of the rendered document (Python, from the document) must equal
those PostgreSQL returns (SQL), or it is refused with the difference, and nothing is written for
it. Before a document is changed or deleted, its current version is copied to
``migration.removed_rows`` (``direction = 'to_mongo'``).

Resumable: rows born in PostgreSQL without an ObjectId get one first (``id_map`` in the same
transaction), the plan is recorded, and each batch of documents is marked applied once Mongo
holds it. A run killed halfway is taken over by the next, which renders each remaining document
again from the rows of the moment; a document already written renders to no change.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg
import pymongo
from bson import ObjectId
from bson.errors import InvalidId

from migration_assets.cutover.reconcile import NEW, REMOVED, Reconciliation, locate
from migration_assets.source.documents import Source, decode
from migration_assets.specs.kinds import LegacyId, Timestamp
from migration_assets.specs.model import MISSING, LoaderSpec, get_path
from migration_assets.target import reverse_book as book
from migration_assets.target.aggregates import document_rows
from migration_assets.target.bookkeeping import add_id_map
from migration_assets.transform.context import prepare_context
from migration_assets.transform.render import Rendered, Unrenderable, render
from migration_assets.verify.canonical import Unmappable, canonical_rows, table_sql

INSERT, UPDATE, DELETE = "insert", "update", "delete"
BATCH = 500  # documents per Mongo bulk write (and per bookkeeping transaction)
TIMESTAMP_COLUMNS = ("updated_at", "created_at")  # the rows' own clock, newest first


@dataclass
class Planned:
    document: str
    action: str
    set_fields: list[str] = field(default_factory=list)
    unset_fields: list[str] = field(default_factory=list)


@dataclass
class ReverseSync:
    loader: str
    collection: str
    cutover_at: dt.datetime
    dry_run: bool = False
    run_id: str = ""
    resumed_from: str | None = None  # the interrupted run whose plan this one finished
    planned: list[Planned] = field(default_factory=list)
    applied: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)  # already as PostgreSQL has it (a resumed write)
    refused: dict[str, str] = field(default_factory=dict)  # no faithful rendering: nothing written
    left_alone: dict[str, str] = field(default_factory=dict)  # differs, but not a write made after the cutover
    conflicts: dict[str, str] = field(default_factory=dict)  # the ledger: never rewritten
    new_object_ids: dict[str, str] = field(default_factory=dict)  # row legacy id -> the ObjectId it got
    documents_read: int = 0
    seconds: float = 0.0
    seconds_locating: float = 0.0

    def of(self, action: str) -> list[Planned]:
        return [p for p in self.planned if p.action == action]

    @property
    def summary(self) -> str:
        found = (f"{self.loader}: {len(self.of(INSERT))} to insert, {len(self.of(UPDATE))} to update, "
                 f"{len(self.of(DELETE))} to delete in Mongo; {len(self.left_alone)} left alone, "
                 f"{len(self.conflicts)} ledger conflict(s)")
        done = ("dry run: nothing written" if self.dry_run else
                f"{len(self.applied)} written, {len(self.unchanged)} already so, {len(self.refused)} refused")
        resumed = f"; resumed the plan of run {self.resumed_from}" if self.resumed_from else ""
        return f"{found}; {done}{resumed} in {self.seconds:.2f}s"


# --- may it run, and since when -----------------------------------------------------------------

class ReverseSyncRefused(RuntimeError):
    """No cutover time, or the application still writes Mongo for the domain; nothing was read."""


def cutover_time(domain: str, record: book.CutoverRecord | None, cutover_at: dt.datetime | None,
                 force: str | None) -> dt.datetime:
    """The cutover time a reverse sync of ``domain`` starts from: ``cutover_at``, or the one
    recorded when the flip was confirmed. Refused while the record says the application still
    writes Mongo for the domain (its writes and ours would race), unless forced with a reason."""
    if record is not None and record.mongo_written and not force:
        raise ReverseSyncRefused(
            f"the cutover record of {domain} says the application writes Mongo ({record.writes}, recorded by "
            f"{record.recorded_by} at {record.recorded_at:%Y-%m-%d %H:%M:%S %Z}): a reverse sync would race it; "
            "pass --force REASON if Mongo's writers are stopped")
    if cutover_at is not None:
        return cutover_at if cutover_at.tzinfo else cutover_at.replace(tzinfo=dt.timezone.utc)
    if record is None or record.writes != "pg":
        raise ReverseSyncRefused(f"no cutover time for {domain}: record the flip with `migration-assets "
                                 "cutover --domain D --writes pg` (readiness GO), or pass --cutover-at TIME")
    return record.cutover_at


# --- when a document last changed, on each side -----------------------------------------------

def _newest(values: Sequence[Any]) -> dt.datetime | None:
    stamps = [v if v.tzinfo else v.replace(tzinfo=dt.timezone.utc) for v in values if isinstance(v, dt.datetime)]
    return max(stamps) if stamps else None


def clock_columns(loader: LoaderSpec) -> list[str]:
    names = {c.name for c in loader.root.columns if isinstance(c.kind, Timestamp)}
    return [n for n in TIMESTAMP_COLUMNS if n in names]


def postgres_changed_at(loader: LoaderSpec, rows: Mapping[str, list[dict[str, Any]]]) -> dt.datetime | None:
    root = rows.get(loader.root.table) or []
    return _newest([r.get(c) for r in root for c in clock_columns(loader)])


def mongo_changed_at(loader: LoaderSpec, doc: Mapping[str, Any] | None) -> dt.datetime | None:
    if doc is None:
        return None
    paths = [loader.root.column(c).path for c in clock_columns(loader)]
    return _newest([v for p in paths if p and (v := get_path(doc, p)) is not MISSING])


# --- plan ----------------------------------------------------------------------------------------

def _documents(source: Source, collection: str, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    oids = [ObjectId(i) for i in ids if ObjectId.is_valid(i)]
    return {str(d["_id"]): d for d in (decode(raw) for raw in source.find_by_ids(collection, oids))}


def classify(loader: LoaderSpec, kinds: Mapping[str, str], rows: Mapping[str, Mapping[str, list]],
             docs: Mapping[str, Mapping[str, Any]], mapped: set[str], cutover_at: dt.datetime,
             out: ReverseSync) -> list[tuple[str, str]]:
    """The forward diff's kinds read backwards, kept to the writes made after the cutover."""
    items = []
    for d, kind in sorted(kinds.items()):
        pg_at, mongo_at = postgres_changed_at(loader, rows[d]), mongo_changed_at(loader, docs.get(d))
        if loader.append_only and kind != REMOVED:
            out.conflicts[d] = ("an entry Mongo holds and PostgreSQL lacks" if kind == NEW else
                                "an entry that differs between the two sides") + ": the ledger is never rewritten"
            continue
        if mongo_at is not None and mongo_at > cutover_at:
            out.left_alone[d] = f"Mongo's document changed after the cutover ({mongo_at:%Y-%m-%d %H:%M:%S})"
            continue
        if kind == NEW:
            if d in mapped:
                items.append((d, DELETE))
            else:
                out.left_alone[d] = "Mongo holds it and PostgreSQL never did (not a delete made in PostgreSQL)"
            continue
        if pg_at is not None and pg_at <= cutover_at:
            out.left_alone[d] = f"PostgreSQL's rows did not change after the cutover (last {pg_at:%Y-%m-%d %H:%M:%S})"
            continue
        items.append((d, INSERT if kind == REMOVED else UPDATE))
    return items


@dataclass
class Fetched:
    """What a plan read of its documents (Mongo's versions, PostgreSQL's rows) and the loader
    context its verification pass computed: the render of the same run starts from them."""

    docs: dict[str, dict[str, Any]]
    rows: dict[str, dict[str, list[dict[str, Any]]]]
    context: Mapping[str, Any]


def plan(loader: LoaderSpec, source: Source, conn: psycopg.Connection, out: ReverseSync, *,
         workers: int = 1) -> tuple[list[tuple[str, str]], Fetched]:
    """Give ObjectIds to rows born without one (not in a dry run), then find what differs."""
    for t in loader.tables:
        if not any(isinstance(c.kind, LegacyId) for c in t.columns):
            continue
        if loader.append_only:
            n = book.rows_without_object_id(conn, t.table)
            if n:
                out.conflicts[f"({t.table})"] = f"{n} entries have no ObjectId legacy id, and ledger rows are never updated"
            continue
        if out.dry_run:
            continue  # listed below as documents that get one
        out.new_object_ids.update(book.assign_object_ids(conn, t.table))
    stats = Reconciliation(loader.name, dry_run=True)
    kinds = locate(loader, source, conn, stats, workers)
    out.documents_read += stats.documents_read
    out.seconds_locating = stats.seconds_verifying + stats.seconds_locating
    rows = document_rows(conn, loader, list(kinds))
    docs = _documents(source, loader.collection, list(kinds))
    mapped = book.in_id_map(conn, loader.root.table, [d for d, k in kinds.items() if k == NEW])
    return classify(loader, kinds, rows, docs, mapped, out.cutover_at, out), Fetched(docs, rows, stats.context)


# --- apply ---------------------------------------------------------------------------------------

def faithful(loader: LoaderSpec, conn: psycopg.Connection, rendered: Mapping[str, dict[str, Any]],
             ctx: Mapping[str, Any]) -> dict[str, str]:
    """Documents whose rendering does not read back as their rows -> what differs. The source
    side is the verification's own Python canonicalization of the rendered document, the target
    side its SQL over the rows: the writer shares neither."""
    target: dict[str, dict[str, list[str]]] = {d: {} for d in rendered}
    for t in loader.tables:
        sql, params = table_sql(t).documents_rows_query(list(rendered))
        for key, _, cols in conn.execute(sql, params):
            target[key].setdefault(t.table, []).append("|".join(cols))
    bad = {}
    for d, doc in rendered.items():
        try:
            source = canonical_rows(loader, loader.tables, doc, ctx)
        except Unmappable as e:
            bad[d] = f"the rendered document does not map: {e.reason}"
            continue
        for t in loader.tables:
            if sorted(r.text for r in source[t.table]) != sorted(target[d].get(t.table, [])):
                bad[d] = f"{t.table}: its rows have no document form the spec reads back as the same rows"
                break
    return bad


def _render_batch(loader: LoaderSpec, source: Source, conn: psycopg.Connection, items: Sequence[tuple[str, str]],
                  ctx: Mapping[str, Any], fetched: Fetched | None
                  ) -> tuple[dict[str, dict | None], dict[str, Rendered | None], dict[str, str]]:
    """Render a batch from what its plan read (``fetched``), or read afresh (a resumed plan)."""
    ids = [d for d, _ in items]
    docs: dict[str, dict | None] = dict.fromkeys(ids)
    if fetched is None:
        docs.update(_documents(source, loader.collection, ids))
        rows = document_rows(conn, loader, ids)
    else:
        docs.update((d, fetched.docs[d]) for d in ids if d in fetched.docs)
        rows = {d: fetched.rows[d] for d in ids}
    out: dict[str, Rendered | None] = {}
    refused = {}
    for d in ids:
        if not rows[d][loader.root.table]:
            out[d] = None  # PostgreSQL no longer holds it: a delete
            continue
        try:
            out[d] = render(loader, docs[d], rows[d], ctx, d)
        except (Unrenderable, InvalidId, ValueError, TypeError) as e:
            refused[d] = f"cannot be rendered: {e}"
    refused.update(faithful(loader, conn, {d: r.document for d, r in out.items() if r is not None and d not in refused},
                            ctx))
    return docs, out, refused


def apply_batch(loader: LoaderSpec, target: Any, conn: psycopg.Connection, items: Sequence[tuple[str, str]],
                docs: Mapping[str, dict | None], rendered: Mapping[str, Rendered | None], refused: Mapping[str, str],
                out: ReverseSync) -> None:
    """One rendered batch: copy the previous versions, write Mongo, mark the items."""
    writes, previous, states = [], [], []
    for d, _ in items:
        current, r = docs[d], rendered.get(d)
        if d in refused:
            out.refused[d] = refused[d]
            states.append((d, "refused", refused[d]))
        elif r is None and current is None or r is not None and current is not None and r.empty:
            out.unchanged.append(d)
            states.append((d, "unchanged", ""))
        elif r is None:
            if loader.append_only:
                out.conflicts[d] = "an entry PostgreSQL lacks: the ledger is never rewritten"
                states.append((d, "refused", out.conflicts[d]))
                continue
            previous.append((d, "deleted from Mongo", current))
            writes.append(pymongo.DeleteOne({"_id": current["_id"]}))
            states.append((d, "applied", DELETE))
        elif current is None:
            writes.append(pymongo.InsertOne(r.document))
            states.append((d, "applied", INSERT))
        else:
            if loader.append_only:
                out.conflicts[d] = "an entry that differs: the ledger is never rewritten"
                states.append((d, "refused", out.conflicts[d]))
                continue
            previous.append((d, "updated in Mongo", current))
            writes.append(pymongo.UpdateOne({"_id": current["_id"]}, r.update))
            states.append((d, "applied", UPDATE))
    with conn.transaction():
        book.save_previous(conn, loader.name, loader.collection, out.run_id, previous)
    if writes:
        target[loader.collection].bulk_write(writes, ordered=False)
    mapped = [d for d, state, action in states if state == "applied" and action != DELETE]
    with conn.transaction():
        book.mark_items(conn, loader.name, out.run_id, states)
        if mapped:  # rows now in both stores (an inserted document, an added element) get their entry
            rows = document_rows(conn, loader, mapped)
            for t in loader.tables:
                if t.has_legacy_id and "id" in t.column_names:
                    add_id_map(conn, t.table, [(r["legacy_object_id"], r["id"]) for d in mapped for r in rows[d][t.table]])
    out.applied += [s[0] for s in states if s[1] == "applied"]


def reverse_sync(loader: LoaderSpec, source: Source, target: Any, conn: psycopg.Connection, *, run_id: str,
                 cutover_at: dt.datetime, dry_run: bool = False, forced: str | None = None, workers: int = 1,
                 progress: Callable[[str], None] | None = None) -> ReverseSync:
    """One loader's reverse sync into ``target`` (a pymongo database opened through the Mongo
    allowlist; None for a dry run)."""
    t0 = time.perf_counter()
    out = ReverseSync(loader.name, loader.collection, cutover_at, dry_run=dry_run, run_id=run_id)
    resumed = None if dry_run else book.open_plan(conn, loader.name)
    fetched: Fetched | None = None
    if resumed is not None:
        out.run_id, out.resumed_from, items = resumed.run_id, resumed.run_id, resumed.items
    else:
        items, fetched = plan(loader, source, conn, out, workers=workers)
        if dry_run:  # rows born without an ObjectId: a run gives them one first, then inserts them
            out.planned += [Planned(d, INSERT, ["_id (a new ObjectId, given when it runs)"]) for d, a in items
                            if a == INSERT and not ObjectId.is_valid(d)]
            items = [(d, a) for d, a in items if ObjectId.is_valid(d) or a != INSERT]
        else:
            book.save_plan(conn, loader.name, run_id, items, forced)
    if not items:
        out.seconds = time.perf_counter() - t0
        return out
    ctx = fetched.context if fetched is not None else prepare_context(loader, source)
    for i in range(0, len(items), BATCH):
        chunk = items[i:i + BATCH]
        docs, rendered, refused = _render_batch(loader, source, conn, chunk, ctx, fetched)
        for d, action in chunk:
            r = rendered.get(d)
            out.planned.append(Planned(d, action, sorted(r.set) if r else [], sorted(r.unset) if r else []))
        if dry_run:
            out.refused.update(refused)
            continue
        apply_batch(loader, target, conn, chunk, docs, rendered, refused, out)
        if progress:
            progress(f"{loader.name}: {min(i + BATCH, len(items))}/{len(items)} documents written to Mongo")
    out.seconds = time.perf_counter() - t0
    return out
