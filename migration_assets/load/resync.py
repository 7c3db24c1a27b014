"""Re-sync exactly the given documents from Mongo into PostgreSQL, through the load path.

Used for dual-write gaps (``pg_dualwrite_gaps``: writes the application could not apply to
PostgreSQL): each gap names an entity (a table, collection or Mongoose model name, see
``specs.registry.loader_for_entity``) and a legacy id. The documents are read by ``_id``
and go through the same :class:`~migration_assets.load.batch.BatchStep` as a load, under
the loader's advisory lock, all in one transaction together with the gaps' resolution: a gap is marked resolved only if its document was written (or, absent
from Mongo, removed from PostgreSQL) in that very transaction. A gap whose document could
not be applied (quarantined, immutable, unknown) stays open with ``attempts`` + 1 and the
reason in ``error``.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import psycopg
from bson import ObjectId

from migration_assets.load.batch import BatchStep
from migration_assets.load.remap import apply_remap, ref_table
from migration_assets.load.removal import remove_documents
from migration_assets.load.report import LoadReport
from migration_assets.source.documents import Source, raw_id_hex
from migration_assets.specs.model import LoaderSpec, TableSpec
from migration_assets.specs.registry import all_loaders, loader_for_entity
from migration_assets.target import bookkeeping as bk
from migration_assets.target.gaps import Gap, leave_gaps_open, resolve_gaps
from migration_assets.target.guard import loader_lock
from migration_assets.target.lease import Owner
from migration_assets.transform.context import prepare_context


class ResyncError(RuntimeError):
    """A re-sync request that cannot be carried out at all (nothing was written)."""


@dataclass
class ResyncReport:
    loader: str
    requested: list[str] = field(default_factory=list)  # document legacy ids
    loaded: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)  # absent from Mongo: their rows removed from PostgreSQL
    # in Mongo, but no longer mapping (quarantined): their rows removed from PostgreSQL too
    withdrawn: list[str] = field(default_factory=list)
    absent: list[str] = field(default_factory=list)  # absent from both: in sync, nothing to do
    refused: dict[str, str] = field(default_factory=dict)  # legacy id -> why it was not applied
    quarantined: list[str] = field(default_factory=list)  # of the refused: bad input, now in the quarantine
    # of the quarantined: PostgreSQL holds no row of them any more (withdrawn, or never loaded)
    quarantined_clear: list[str] = field(default_factory=list)
    rows_changed: dict[str, int] = field(default_factory=dict)
    gaps_resolved: list[int] = field(default_factory=list)
    gaps_left_open: dict[int, str] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def unresolved(self) -> dict[str, str]:
        """Documents not applied whose difference remains (quarantined ones with no row left
        are settled: the quarantine accounts for them on both sides)."""
        return {d: why for d, why in self.refused.items() if d not in self.quarantined_clear}

    @property
    def applied(self) -> set[str]:
        return set(self.loaded) | set(self.removed) | set(self.absent)


def is_object_id(value: str | None) -> bool:
    return isinstance(value, str) and len(value) == 24 and ObjectId.is_valid(value) and value == value.lower()


def documents_of(conn: psycopg.Connection, loader: LoaderSpec, table: TableSpec, gaps: Sequence[Gap],
                 source: Source | None = None) -> tuple[dict[str, list[int]], dict[int, str]]:
    """Map gaps of ``table`` to the legacy ids of the source documents to re-sync.

    Returns (document legacy id -> gap ids, gap id -> why it cannot be located). A child
    table's row is located through its PostgreSQL row (its document is its parent's)."""
    docs: dict[str, list[int]] = defaultdict(list)
    lost: dict[int, str] = {}
    for g in gaps:
        legacy = g.legacy_id
        if legacy is None and g.pg_id is not None and table.has_legacy_id:
            row = conn.execute(f"SELECT legacy_object_id FROM public.{table.table} WHERE id = %s", [g.pg_id]).fetchone()
            legacy = row[0] if row else None
        if table.is_root:
            if is_object_id(legacy):
                docs[legacy].append(g.id)
            else:
                lost[g.id] = f"no document _id for {g.entity} (legacy_id {legacy!r}, pg_id {g.pg_id})"
            continue
        parent = table.column(table.parent_column).ref_table
        row = None
        if legacy is not None and not table.has_legacy_id:
            # A child row without an id of its own is named by its document's _id.
            row = (legacy,) if is_object_id(legacy) else None
        elif legacy is not None:
            row = conn.execute(
                f"SELECT p.legacy_object_id FROM public.{table.table} t JOIN public.{parent} p "
                f"ON p.id = t.{table.parent_column} WHERE t.legacy_object_id = %s", [legacy]).fetchone()
            if row is None and source is not None and is_object_id(legacy):
                holders = source.ids_where(loader.collection, f"{table.rows.path}._id", ObjectId(legacy))
                row = (holders[0],) if holders else None
        elif g.pg_id is not None and "id" in table.column_names:
            row = conn.execute(
                f"SELECT p.legacy_object_id FROM public.{table.table} t JOIN public.{parent} p "
                f"ON p.id = t.{table.parent_column} WHERE t.id = %s", [g.pg_id]).fetchone()
        if row:
            docs[row[0]].append(g.id)
        else:
            lost[g.id] = (f"{g.entity} row {legacy or g.pg_id} is neither in PostgreSQL nor in any {loader.collection} "
                          f"document; record the gap against {parent}")
    return dict(docs), lost


def resync_documents(loader: LoaderSpec, source: Source, conn: psycopg.Connection, legacy_ids: Iterable[str], *,
                     run_id: str, gaps: Mapping[str, Sequence[int]] | None = None,
                     lock_timeout_s: float = 300.0) -> ResyncReport:
    """Re-sync these documents of ``loader`` (and resolve ``gaps``: document -> gap ids)."""
    if not conn.autocommit:
        raise ResyncError("resync needs an autocommit connection (it commits one transaction)")
    t0 = time.perf_counter()
    legacy_ids = list(legacy_ids)
    wanted = sorted({i for i in legacy_ids if is_object_id(i)})
    report = ResyncReport(loader.name, requested=wanted)
    for bad in sorted(set(legacy_ids) - set(wanted)):
        report.refused[bad] = "not an ObjectId"
    if not wanted:
        return report
    ctx = prepare_context(loader, source)  # collection-wide rules (demoted names, self-references)
    first: dict[str, bytes] = {}
    for raw in source.find_by_ids(loader.collection, [ObjectId(i) for i in wanted]):
        first.setdefault(raw_id_hex(raw), raw)  # a duplicated _id: the first occurrence counts
    load = LoadReport(loader.name)
    with loader_lock(conn, loader.name, timeout_s=lock_timeout_s, owner=Owner(run_id)):
        with conn.transaction():
            step = BatchStep(loader, conn, ctx, load, run_id=run_id, fresh=False)
            outcome = step.run([first[i] for i in wanted if i in first])
            for table, column in loader.self_deferred:
                bk.apply_deferred(conn, table.table, column.name, column.ref_table)
            for owner in all_loaders():  # remaps of, or pointing at, these tables
                for remap in owner.remaps:
                    if remap.table in loader.table_names or ref_table(owner, remap) in loader.table_names:
                        apply_remap(owner, remap, source, conn, run_id=run_id)
            conflicts = set(step.writer.conflicts)
            report.loaded = sorted(r.legacy_id for r in outcome.loaded if r.legacy_id not in conflicts)
            report.withdrawn = sorted(outcome.withdrawn)
            for legacy in conflicts:
                report.refused[legacy] = "immutable entry differs in Mongo; PostgreSQL keeps the original"
            for r in outcome.rejected:
                report.refused[r.legacy_id] = "quarantined: " + "; ".join(p["message"] for p in r.problems)[:300]
                report.quarantined.append(r.legacy_id)
            # a document that no longer maps left no stale row behind (the batch withdrew it)
            report.quarantined_clear = sorted(set(report.quarantined) - set(outcome.kept))
            for legacy, why in outcome.kept.items():
                report.refused[legacy] += f"; its rows stay: {why}"
            gone = [i for i in wanted if i not in first]
            report.removed, absent, not_removed = remove_documents(conn, loader, gone, run_id)
            report.absent += absent
            report.refused.update(not_removed)
            report.rows_changed = dict(load.rows_changed)
            if gaps:
                settle_gaps(conn, report, gaps, run_id)
    report.seconds = time.perf_counter() - t0
    return report


def settle_gaps(conn: psycopg.Connection, report: ResyncReport, gaps: Mapping[str, Sequence[int]], run_id: str) -> None:
    applied = report.applied
    for legacy, ids in gaps.items():
        if legacy in applied:
            report.gaps_resolved += list(ids)
        else:
            why = report.refused.get(legacy, "not applied")
            report.gaps_left_open.update({i: why for i in ids})
    resolve_gaps(conn, [i for i in report.gaps_resolved if i > 0], f"re-synced from Mongo by run {run_id}")
    leave_gaps_open(conn, report.gaps_left_open)


def resync_gaps(source: Source, conn: psycopg.Connection, gaps: Sequence[Gap], *, run_id: str) -> list[ResyncReport]:
    """Re-sync the documents of these gaps, loaders in dependency order. Gaps with an id
    <= 0 are rows asked for without a gap: re-synced, nothing to resolve."""
    by_loader: dict[str, list[tuple[Gap, str]]] = defaultdict(list)
    unknown: dict[int, str] = {}
    for g in gaps:
        hit = loader_for_entity(g.entity)
        if hit is None:
            unknown[g.id] = f"no loader migrates entity {g.entity!r}"
        else:
            by_loader[hit[0].name].append((g, hit[1]))
    leave_gaps_open(conn, unknown)
    reports = []
    for loader in all_loaders():
        mine = by_loader.get(loader.name)
        if not mine:
            continue
        docs: dict[str, list[int]] = defaultdict(list)
        lost: dict[int, str] = {}
        for table in sorted({t for _, t in mine}):
            d, l = documents_of(conn, loader, loader.table(table), [g for g, t in mine if t == table], source)
            for k, v in d.items():
                docs[k] += v
            lost.update(l)
        leave_gaps_open(conn, lost)
        report = resync_documents(loader, source, conn, list(docs), run_id=run_id, gaps=docs)
        report.gaps_left_open.update(lost)
        reports.append(report)
    if unknown:
        reports.append(ResyncReport("(unknown entity)", gaps_left_open=unknown))
    return reports
