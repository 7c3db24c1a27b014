"""One batch of raw documents through the whole load path, in one transaction:
decode -> transform -> resolve references -> write -> bookkeeping (quarantine, id_map,
deferred references, checkpoint).

The load loop, the dry run and the re-sync of given documents all use this one step, so a
document is treated the same whichever way it arrives. A batch PostgreSQL refuses (a CHECK,
a unique index) is split in halves under savepoints until the refused documents are
isolated and rejected with the constraint's name; the rest of the batch loads.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg

from migration_assets.load.removal import remove_documents
from migration_assets.load.report import BatchDigest, LoadReport
from migration_assets.load.resolve import ReferenceResolver
from migration_assets.specs.model import LoaderSpec
from migration_assets.target import bookkeeping as bk
from migration_assets.target.write import REFUSED, LoaderWriter, RowRefused, shadow_name
from migration_assets.transform.document import DocumentTransform
from migration_assets.transform.results import DocResult, Rejected, rejected


def document_of_row(results: Sequence[DocResult], table: str, row: int) -> int:
    """Index of the document whose rows of ``table`` include the ``row``-th one written."""
    seen = 0
    for i, r in enumerate(results):
        seen += len(r.rows.get(table, ()))
        if row < seen:
            return i
    raise IndexError(f"{table} row {row} is beyond the batch's {seen} rows")


def refusal(result: DocResult, e: psycopg.Error) -> Rejected:
    """The document rejected for what PostgreSQL refused, naming the constraint."""
    diag = e.diag
    msg = (diag.message_primary or str(e)).strip()
    detail = (diag.message_detail or "").strip()
    return rejected(result, [{"code": "constraint_violation", "field": diag.constraint_name or type(e).__name__,
                              "message": f"{msg}{'; ' + detail if detail else ''}"[:1000]}])


def fates(outs: Sequence[DocResult | Rejected], outcome: BatchOutcome) -> list[str | None]:
    """What became of each document of a batch, in order: None (written), "duplicate" (a later
    occurrence of an ``_id``) or "content" (rejected for itself: its values, a missing parent,
    a constraint)."""
    refused = {r.legacy_id for r in outcome.rejected if r.code != "duplicate_id"}
    return ["duplicate" if isinstance(o, Rejected) and o.code == "duplicate_id"
            else "content" if isinstance(o, Rejected) or o.legacy_id in refused else None for o in outs]


@dataclass
class BatchOutcome:
    loaded: list[DocResult] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    # rejected documents whose rows an earlier load wrote: removed with them (withdrawn), or
    # kept with the reason (an append-only table, a row another table still references)
    withdrawn: list[str] = field(default_factory=list)
    kept: dict[str, str] = field(default_factory=dict)


class BatchStep:
    """The per-run state of the load path for one loader on one connection.

    ``fresh``: the loader's tables were empty when the run started (rows are copied straight
    in, and own references are their uuid5). ``dry``: rows go to the session's shadow tables
    and nothing is recorded. ``seen``: the keys met so far, where a source may repeat an
    ``_id`` (every later occurrence is rejected as a duplicate). ``range_no``: the range of a
    ranged load whose checkpoint the batches advance. ``digest``: each batch with a position
    also commits the source side of the verification after the load (``LoadOptions.digests``)."""

    def __init__(self, loader: LoaderSpec, conn: psycopg.Connection, ctx: Mapping[str, Any], report: LoadReport, *,
                 run_id: str, fresh: bool, compiled: bool = True, dry: bool = False, seen: set[str] | None = None,
                 range_no: int | None = None, digest: BatchDigest | None = None):
        self.loader = loader
        self.range_no = range_no
        self.conn = conn
        self.report = report
        self.run_id = run_id
        self.fresh = fresh
        self.dry = dry
        self.seen = seen
        self.transform = DocumentTransform(loader, ctx, compiled=compiled, fresh=fresh)
        self.resolver = ReferenceResolver(loader, shadow=dry)
        self.writer = LoaderWriter(conn, loader, into=shadow_name if dry else None)
        self.digest = None if dry else digest
        # A fresh load that starts with no pending deferred reference for its tables only ever
        # holds entries its own batches added, for documents that hold the reference and that
        # no later batch repeats (a repeated _id is rejected): no batch has entries to clear.
        self.clears_deferred = not fresh or (not dry and bk.has_deferred(conn, loader))

    # --- stages -----------------------------------------------------------------------------

    def transform_all(self, raws: Sequence[bytes]) -> list[DocResult | Rejected]:
        """Each document's result, in the batch's order."""
        outs: list[DocResult | Rejected] = []
        for raw in raws:
            out = self.transform(raw)
            if self.seen is not None:
                if out.legacy_id in self.seen:
                    out = rejected(out, [{"code": "duplicate_id", "field": "_id",
                                          "message": f"_id {out.legacy_id} appears more than once in the source; "
                                                     "the first occurrence counts"}])
                else:
                    self.seen.add(out.legacy_id)
            outs.append(out)
        return outs

    def write_isolating(self, results: list[DocResult], fresh: bool) -> list[Rejected]:
        """Write ``results``; documents refused by a constraint come back as rejections.

        A COPY names the row it refused: that document is rejected at once, unless the row's
        identity (its key or legacy id) conflicts on a fresh table: someone else wrote that
        row meanwhile (the application's dual write), so the batch is merged instead.
        Anything else is found by bisection."""
        if not results:
            return []
        try:
            with self.conn.transaction():
                changed = self.writer.write(results, fresh)
            self.report.add_changed(changed)
            return []
        except RowRefused as r:
            if (fresh and isinstance(r.error, psycopg.errors.UniqueViolation)
                    and self.writer.identity_conflict(r.table, r.error.diag.constraint_name)):
                return self.write_isolating(results, fresh=False)
            i = document_of_row(results, r.table, r.row)
            return [refusal(results[i], r.error)] + self.write_isolating(results[:i] + results[i + 1:], fresh)
        except REFUSED as e:
            if fresh:  # a conflict on a fresh table (someone else wrote a row): merge instead
                return self.write_isolating(results, fresh=False)
            if len(results) == 1:
                return [refusal(results[0], e)]
            mid = len(results) // 2
            return self.write_isolating(results[:mid], fresh) + self.write_isolating(results[mid:], fresh)

    def checkpoint(self, outcome: BatchOutcome, position: str | None) -> bk.Checkpoint | None:
        """The checkpoint after this batch (None: nothing to resume, e.g. a re-sync)."""
        if position is None:
            return None
        r = self.report
        rows = dict(r.rows)
        for res in outcome.loaded:
            for table, trows in res.rows.items():
                rows[table] = rows.get(table, 0) + len(trows)
        n = len(outcome.loaded) + len(outcome.rejected)
        return bk.Checkpoint(self.loader.name, 0, "", position, "running", False, r.docs_read + n,
                             r.docs_quarantined + len(outcome.rejected), rows, self.run_id,
                             range_no=self.range_no)

    # --- the whole step ---------------------------------------------------------------------

    def run(self, raws: Sequence[bytes], position: str | None = None) -> BatchOutcome:
        """The batch through every stage; its rows, bookkeeping and checkpoint commit together."""
        timings = self.report.timings
        t = time.perf_counter()
        # the source side of the checks after the load, worked out meanwhile (elsewhere, for a big collection)
        digested = self.digest(raws) if self.digest is not None and position is not None else None
        outs = self.transform_all(raws)
        results = [o for o in outs if not isinstance(o, Rejected)]
        rejects = [o for o in outs if isinstance(o, Rejected)]
        timings["decode_transform"] += time.perf_counter() - t

        t = time.perf_counter()
        results, missing = self.resolver.resolve(self.conn, results, self.fresh)
        rejects += missing
        timings["resolve"] += time.perf_counter() - t

        t = time.perf_counter()
        outcome = BatchOutcome(results, rejects)
        withdrawing = not self.dry and not self.fresh
        with self.conn.transaction():
            if withdrawing:  # first, so a stale row holds no unique key a loading document needs
                self.withdraw(outcome, outcome.rejected)
            refused = self.write_isolating(results, True if self.dry else self.fresh)
            if refused:
                ids = {r.legacy_id for r in refused}
                outcome.loaded = [r for r in results if r.legacy_id not in ids]
                outcome.rejected += refused
                if withdrawing:
                    self.withdraw(outcome, refused)
            if not self.dry:
                bk.record_batch(self.conn, self.loader, outcome.loaded, outcome.rejected, self.run_id,
                                self.checkpoint(outcome, position), fresh=self.fresh,
                                clear_deferred_refs=self.clears_deferred)
            if digested is not None:
                td = time.perf_counter()
                bk.record_load_digests(self.conn, self.loader.name, self.range_no, position, len(raws),
                                       digested(fates(outs, outcome)))
                digesting = time.perf_counter() - td
                timings["source_digests"] += digesting
                t += digesting
        timings["write"] += time.perf_counter() - t
        self.count(outcome, position, len(raws))
        return outcome

    def withdraw(self, outcome: BatchOutcome, rejected: Sequence[Rejected]) -> None:
        """A document an earlier load wrote that no longer maps (a field changed type, a value
        went out of range) leaves no stale row behind: its rows are removed as a vanished
        document's are, copied to ``migration.removed_rows`` first, in this batch's transaction.
        A later occurrence of a loaded ``_id`` (a duplicate) withdraws nothing."""
        ids = sorted({r.legacy_id for r in rejected if r.code != "duplicate_id"})
        if ids:
            withdrawn, _, kept = remove_documents(self.conn, self.loader, ids, self.run_id)
            outcome.withdrawn += withdrawn
            outcome.kept.update(kept)
            self.report.withdrawn += withdrawn
            self.report.kept.update(kept)

    def count(self, outcome: BatchOutcome, position: str | None, docs: int) -> None:
        r = self.report
        if not self.dry and position is not None:
            r.position = position
        r.batches += 1
        r.docs_read += docs
        r.docs_loaded += len(outcome.loaded)
        r.docs_quarantined += len(outcome.rejected)
        for res in outcome.loaded:
            for table, rows in res.rows.items():
                r.rows[table] = r.rows.get(table, 0) + len(rows)
        for rej in outcome.rejected:
            r.quarantine_reasons[rej.code] = r.quarantine_reasons.get(rej.code, 0) + 1
            if len(r.quarantine_sample) < 20:
                r.quarantine_sample.append({"_id": rej.legacy_id, "code": rej.code,
                                            "reason": "; ".join(p["message"] for p in rej.problems[:5])[:300]})
