"""The load loop of one :class:`LoaderSpec`: read -> decode -> transform -> resolve references
-> write, one transaction per batch.

Each batch commits its rows, its quarantine entries, its id_map entries, its pending
deferred references and the checkpoint *together*, so a run killed at any point resumes
after the last committed batch with nothing lost and nothing doubled. Rows are written
with COPY; when the tables were empty at the start of the generation they go straight
into the tables, otherwise (or after a conflict) through a staging table and an upsert.
A batch that PostgreSQL refuses (a CHECK, a unique index) is split in halves under
savepoints until the refused documents are isolated and quarantined with the
constraint's name; the rest of the batch loads.

Faults: a real run holds the loader's advisory lock (a second run of the same loader waits,
then fails clearly); a PostgreSQL connection lost mid-run becomes a ``TargetUnavailable``
naming the endpoint and the committed position, and the next run resumes there. Append-only
loaders (the funds ledger) only ever insert: an existing row the source changed is
reported (``immutable_conflicts``), never updated or deleted. A dry run writes only to
temporary shadow tables in a session PostgreSQL keeps read-only, after simulating the
parent loaders the same way, so it reports the quarantine a real run would produce.
"""

from __future__ import annotations

import hashlib
import time
import uuid
import weakref
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg
from bson import ObjectId, json_util

from migration_assets import target as tg
from migration_assets.ids import new_id
from migration_assets.kinds import LegacyRef, legacy_hex
from migration_assets.source import decode, legacy_key, raw_id
from migration_assets.spec import LoaderSpec, TableSpec, all_tables
from migration_assets.transform import DocResult, transform_document

RAW_JSON_LIMIT = 64 * 1024  # the quarantine keeps all raw bytes; the readable copy is capped


@dataclass
class LoadOptions:
    batch_size: int = 2000
    resume: bool = True
    dry_run: bool = False
    run_id: str = "local"
    # A second run of the same loader waits this long for the first one's lock, then fails.
    lock_timeout_s: float = 600.0
    # fastpath.py: compiled spec transforms, cached parent lookups, binary COPY. Same rows,
    # same rejections (anything unusual takes the reference path); False = reference only.
    compiled: bool = True


@dataclass
class LoadReport:
    loader: str
    docs_read: int = 0
    docs_loaded: int = 0
    docs_quarantined: int = 0
    rows: dict[str, int] = field(default_factory=dict)
    rows_changed: dict[str, int] = field(default_factory=dict)
    quarantine_sample: list[dict[str, str]] = field(default_factory=list)
    quarantine_reasons: dict[str, int] = field(default_factory=dict)
    deferred_applied: int = 0
    deferred_unresolved: int = 0
    resumed_from: str | None = None
    position: str | None = None  # last committed position (what a rerun resumes from)
    batches: int = 0
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    dry_run: bool = False
    fast_path: bool = False
    lock_waited_s: float = 0.0
    # Append-only tables: documents whose existing (immutable) row differs from the source.
    immutable_conflicts: list[str] = field(default_factory=list)
    # Dry run: parent loaders simulated (read, transformed, validated) to resolve references.
    simulated_parents: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def docs_per_second(self) -> float:
        return self.docs_read / self.seconds if self.seconds else 0.0


Progress = Callable[[LoadReport, int | None], None]


# --- one document ----------------------------------------------------------------------

@dataclass
class Rejected:
    legacy_id: str
    raw: bytes
    problems: list[dict[str, str]]
    doc: Mapping[str, Any] | None = None


def _rejection(raw: bytes, legacy_id: str, problems: list[dict[str, str]], doc=None) -> Rejected:
    return Rejected(legacy_id, raw, problems, doc)


MAX_REASONS = 100  # a 100k-element array of bad values is one document, not 100k reasons


def quarantine_entry(r: Rejected) -> tg.QuarantineEntry:
    first = r.problems[0]
    problems = r.problems
    if len(problems) > MAX_REASONS:
        problems = problems[:MAX_REASONS] + [{"code": "more_problems", "field": "$",
                                              "message": f"... and {len(r.problems) - MAX_REASONS} more problems"}]
    reason = "; ".join(f"{p['field']}: {p['message']}" for p in problems[:20])
    if len(problems) > 20:
        reason += f"; ... ({len(r.problems)} problems in all)"
    if r.doc is not None:
        try:
            raw_json = json_util.dumps(r.doc)
        except Exception:
            raw_json = None
    else:
        raw_json = None
    if raw_json is not None and len(raw_json) > RAW_JSON_LIMIT:
        raw_json = raw_json[:RAW_JSON_LIMIT] + f"... [{len(raw_json)} characters; raw_bson holds all]"
    if raw_json is not None:
        raw_json = raw_json.replace("\x00", "\\u0000")
    return tg.QuarantineEntry(
        legacy_id=r.legacy_id,
        raw_sha256=hashlib.sha256(r.raw).hexdigest(),
        reason_code=first["code"],
        reason=reason,
        reasons=problems,
        raw_bson=r.raw,
        raw_json=raw_json,
    )


def decode_and_transform(loader: LoaderSpec, raw: bytes, ctx: Mapping[str, Any]) -> DocResult | Rejected:
    ident = raw_id(raw)
    legacy_id = legacy_key(ident)
    if not isinstance(ident, ObjectId):
        return _rejection(raw, legacy_id, [{"code": "invalid_id", "field": "_id",
                                            "message": f"_id must be an ObjectId, got {type(ident).__name__}"}])
    try:
        doc = decode(raw)
    except Exception as e:  # InvalidBSON, invalid UTF-8 and friends
        return _rejection(raw, legacy_id, [{"code": "invalid_bson", "field": "$", "message": f"{type(e).__name__}: {e}"[:500]}])
    excluded = ctx.get("excluded", {})
    if legacy_id in excluded:
        return _rejection(raw, legacy_id, [excluded[legacy_id]], doc)
    result = transform_document(loader, doc, ctx, legacy_id)
    if not result.ok:
        return _rejection(raw, legacy_id, [p.as_dict() for p in result.problems], doc)
    result.doc = doc  # type: ignore[attr-defined]
    result.raw = raw  # type: ignore[attr-defined]
    return result


# --- prepare: collection-level rules ---------------------------------------------------

def prepare_context(loader: LoaderSpec, source, *, quarantined: set[str] | None = None) -> dict[str, Any]:
    """Collection-wide context: self-references that point nowhere, and ``loader.prepare``.

    During a load, documents that fail their own transform are invalid; a self-reference to
    an invalid or absent document makes the referrer invalid too (to a fixpoint). During
    verification, ``quarantined`` (the open quarantine) plays that part instead.
    """
    if not loader.self_deferred and loader.prepare is None:
        return {}
    docs: dict[str, Mapping[str, Any]] = {}
    invalid: dict[str, dict[str, str]] = {}
    for batch in source.iter_batches(loader.collection, batch_size=5000):
        for raw in batch.docs:
            ident = raw_id(raw)
            if not isinstance(ident, ObjectId):
                continue
            key = str(ident)
            try:
                doc = decode(raw)
            except Exception:
                continue
            if quarantined is not None:
                if key in quarantined:
                    continue
            else:
                res = transform_document(loader, doc, {}, key)
                own_problems = [p for p in res.problems if p.code != "missing_reference"]
                if own_problems:
                    invalid[key] = own_problems[0].as_dict()
            docs[key] = doc
    excluded: dict[str, dict[str, str]] = {}
    if quarantined is None:
        changed = True
        while changed:
            changed = False
            for key, doc in docs.items():
                if key in invalid or key in excluded:
                    continue
                for table, column in loader.self_deferred:
                    ref = doc.get(column.path) if column.path else None
                    if ref is None:
                        continue
                    try:
                        ref_key = legacy_hex(ref)
                    except Exception:
                        continue
                    if ref_key not in docs or ref_key in invalid or ref_key in excluded:
                        why = "absent from the source" if ref_key not in docs else "quarantined"
                        excluded[key] = {"code": "missing_reference", "field": column.path,
                                         "message": f"{table.table}.{column.name} -> {ref_key} is {why}"}
                        changed = True
                        break
    ctx: dict[str, Any] = {"excluded": excluded}
    if loader.prepare is not None:
        valid_docs = (d for k, d in docs.items() if k not in invalid and k not in excluded)
        ctx.update(loader.prepare(valid_docs))
    return ctx


# --- one batch -------------------------------------------------------------------------

def resolve_references(conn: psycopg.Connection, loader: LoaderSpec, results: list[DocResult],
                       fresh: bool, *, shadow: bool = False
                       ) -> tuple[list[DocResult], list[Rejected], dict[tuple[str, str], uuid.UUID]]:
    """Turn LegacyRef placeholders into uuids. Own rows reuse an existing row's id (rows the
    application dual-wrote keep theirs) or get their deterministic uuid; references to other
    tables must exist there, or the document is rejected naming the missing parent.
    ``shadow`` (dry runs): a parent also exists when its simulated load would write it."""
    own_tables = set(loader.table_names)
    wanted: dict[str, set[str]] = defaultdict(set)
    for res in results:
        for table, rows in res.rows.items():
            for row in rows:
                for v in row:
                    if isinstance(v, LegacyRef):
                        wanted[v.table].add(v.legacy_id)
        for d in res.deferred:
            wanted[d.row.table].add(d.row.legacy_id)
    resolved: dict[tuple[str, str], uuid.UUID] = {}
    for table, ids in wanted.items():
        if table in own_tables:
            existing = {} if fresh else tg.lookup_ids(conn, table, sorted(ids))
            for legacy in ids:
                resolved[(table, legacy)] = existing.get(legacy) or new_id(table, legacy)
        else:
            also = tg.shadow_name(table) if shadow and tg.shadow_exists(conn, table) else None
            for legacy, pk in tg.lookup_ids(conn, table, sorted(ids), also=also).items():
                resolved[(table, legacy)] = pk
    ok: list[DocResult] = []
    rejected: list[Rejected] = []
    for res in results:
        missing = []
        for table, rows in res.rows.items():
            spec = loader.table(table)
            for row in rows:
                for i, v in enumerate(row):
                    if isinstance(v, LegacyRef):
                        pk = resolved.get((v.table, v.legacy_id))
                        if pk is None:
                            missing.append({"code": "missing_reference", "field": spec.columns[i].path or spec.columns[i].name,
                                            "message": f"{table}.{spec.columns[i].name} -> {v.table} {v.legacy_id} does not exist in PostgreSQL"})
                        else:
                            row[i] = pk
        if missing:
            rejected.append(_rejection(res.raw, res.legacy_id, missing, res.doc))  # type: ignore[attr-defined]
        else:
            ok.append(res)
    return ok, rejected, resolved


class BatchWriter:
    """Writes documents' rows; isolates documents PostgreSQL refuses.

    ``into`` maps a table to the relation written (a dry run's shadow tables)."""

    def __init__(self, conn: psycopg.Connection, loader: LoaderSpec, report: LoadReport,
                 into: Callable[[str], str] | None = None):
        self.conn = conn
        self.loader = loader
        self.report = report
        self.into = into or (lambda t: f"public.{t}")
        self.keep = {t.table: [c.name for c in t.columns if c.deferred] for t in loader.tables}
        self.json_pos = {t.table: tg.json_positions(t.columns) for t in loader.tables}
        self.copy_rows = tg.copy_rows  # the fast path swaps in binary COPY
        self.conflicts: set[str] = set()

    def _rows(self, results: Sequence[DocResult], table: TableSpec) -> list[list[Any]]:
        pos = self.json_pos[table.table]
        out = []
        for r in results:
            for row in r.rows.get(table.table, ()):
                out.append(tg.adapt_row(list(row), pos) if pos else row)
        return out

    def write(self, results: Sequence[DocResult], fast: bool) -> dict[str, int]:
        changed: dict[str, int] = {}
        append_only = self.loader.append_only
        for table in self.loader.tables:
            rows = self._rows(results, table)
            into = self.into(table.table)
            if fast:
                n = self.copy_rows(self.conn, into, table.column_names, rows)
                if append_only and table.is_root and not into.startswith("public."):
                    # Dry run: the immutable rows a real run would find changed in the target.
                    ids = [row[table.column_names.index("id")] for row in rows]
                    self.conflicts.update(tg.append_only_conflicts(
                        self.conn, table.table, table.column_names, table.key, staged=into, ids=ids))
            elif table.is_root:
                n = tg.merge_root(self.conn, table.table, table.column_names, table.key, rows,
                                  append_only=append_only, keep=self.keep[table.table], into=into)
                if append_only:
                    # Immutable rows are never rewritten; a source that changed one is reported.
                    self.conflicts.update(tg.append_only_conflicts(self.conn, table.table, table.column_names,
                                                                   table.key, into=into))
            else:
                root_idx = self.loader.root.column_names.index("id")
                parents = [row[root_idx] for r in results for row in r.rows[self.loader.root.table]]
                n = tg.merge_children(self.conn, table.table, table.column_names, table.key,
                                      table.parent_column, parents, rows, append_only=append_only, into=into)
            changed[table.table] = n
        return changed

    def write_isolating(self, results: list[DocResult], fast: bool) -> list[Rejected]:
        """Write ``results``; documents refused by a constraint come back as rejections."""
        if not results:
            return []
        try:
            with self.conn.transaction():
                changed = self.write(results, fast)
            for table, n in changed.items():
                self.report.rows_changed[table] = self.report.rows_changed.get(table, 0) + n
            return []
        except (psycopg.errors.IntegrityError, psycopg.errors.DataError, psycopg.errors.ProgramLimitExceeded,
                psycopg.errors.CardinalityViolation) as e:  # a child key repeated inside one document
            if fast:
                # A conflict on a fresh table (someone else wrote a row): merge instead.
                return self.write_isolating(results, fast=False)
            if len(results) == 1:
                r = results[0]
                diag = e.diag
                name = diag.constraint_name or type(e).__name__
                msg = (diag.message_primary or str(e)).strip()
                detail = (diag.message_detail or "").strip()
                return [_rejection(r.raw, r.legacy_id,  # type: ignore[attr-defined]
                                   [{"code": "constraint_violation", "field": name,
                                     "message": f"{msg}{'; ' + detail if detail else ''}"[:1000]}], r.doc)]  # type: ignore[attr-defined]
            mid = len(results) // 2
            return self.write_isolating(results[:mid], fast) + self.write_isolating(results[mid:], fast)


# --- the loop --------------------------------------------------------------------------

Log = Callable[[str], None]


def run_loader(loader: LoaderSpec, source, conn: psycopg.Connection, options: LoadOptions,
               progress: Progress | None = None, total_docs: int | None = None,
               log: Log | None = None) -> LoadReport:
    """Load ``loader``'s collection into its tables; see the module docstring.

    A real run holds the loader's advisory lock (a second run of the same loader waits, then
    fails with :class:`target.LoadLocked`). A dry run writes only to session-private shadow
    tables in a read-only session. A lost PostgreSQL connection becomes
    :class:`target.TargetUnavailable` naming the checkpoint a rerun resumes from.
    """
    if not conn.autocommit:
        raise ValueError("run_loader needs an autocommit connection (each batch is its own transaction)")
    say: Log = log or (lambda msg: None)
    endpoint = tg.describe_conn(conn)
    report = LoadReport(loader.name, dry_run=options.dry_run)
    t0 = time.perf_counter()
    try:
        conn.execute("SELECT set_config('application_name', %s, false)",
                     [f"load_{loader.name} run {options.run_id[:8]}"[:63]])
        if options.dry_run:
            _dry_run(loader, source, conn, options, report, progress, total_docs, say)
        else:
            with tg.loader_lock(conn, loader.name, timeout_s=options.lock_timeout_s, log=say) as waited:
                report.lock_waited_s = waited
                _real_run(loader, source, conn, options, report, progress, total_docs, say)
    except psycopg.OperationalError as e:
        if not (conn.closed or conn.broken):
            raise
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise tg.TargetUnavailable(
            f"{loader.name}: lost the connection to PostgreSQL at {endpoint} after {report.docs_read} documents "
            f"({type(e).__name__}: {first}). Every batch up to position {report.position or '(start)'} is committed "
            f"with its checkpoint; run the load again to resume from there."
        ) from e
    report.seconds = time.perf_counter() - t0
    return report


def _real_run(loader: LoaderSpec, source, conn: psycopg.Connection, options: LoadOptions, report: LoadReport,
              progress: Progress | None, total_docs: int | None, say: Log) -> None:
    fingerprint = source.fingerprint(loader.collection)
    cp = tg.read_checkpoint(conn, loader.name)
    resume = (options.resume and cp is not None and cp.status == "running"
              and cp.source_fingerprint == fingerprint)
    if resume:
        position, fresh = cp.position, cp.fresh
        report.resumed_from = report.position = position
        report.docs_read, report.docs_quarantined = cp.docs_read, cp.docs_quarantined
        report.rows = dict(cp.rows_written)
        say(f"{loader.name}: resuming the interrupted load at position {position or '(start)'} "
            f"({cp.docs_read} documents already committed)")
    else:
        if cp is not None and cp.status == "running" and options.resume:
            say(f"{loader.name}: the interrupted load read another source ({cp.source_fingerprint}); starting over")
        fresh = not any(tg.table_has_rows(conn, t) for t in loader.table_names)
        with conn.transaction():
            tg.start_generation(conn, loader.name, fingerprint, fresh, options.run_id)
        position = None
    report.fast_path = fresh
    _load_batches(loader, source, conn, options, report, progress, total_docs,
                  position=position, fresh=fresh, writer=BatchWriter(conn, loader, report), dry=False)
    with conn.transaction():
        for table, column in loader.self_deferred:
            applied, unresolved = tg.apply_deferred(conn, table.table, column.name, column.ref_table)
            report.deferred_applied += applied
            report.deferred_unresolved += unresolved
        tg.complete_checkpoint(conn, loader.name)


# Loaders a connection's dry runs have already simulated into shadow tables.
_simulated: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def ancestors(loader: LoaderSpec) -> list[LoaderSpec]:
    """The loaders whose tables ``loader`` references (transitively), parents first."""
    tables = all_tables()
    out: list[LoaderSpec] = []

    def visit(l: LoaderSpec) -> None:
        for parent in sorted(l.external_parents()):
            owner = tables.get(parent, (None,))[0]
            if owner is None or owner.name == loader.name or any(o.name == owner.name for o in out):
                continue
            visit(owner)
            out.append(owner)

    visit(loader)
    return out


def _dry_run(loader: LoaderSpec, source, conn: psycopg.Connection, options: LoadOptions, report: LoadReport,
             progress: Progress | None, total_docs: int | None, say: Log) -> None:
    """Everything a real run does except writing: the rows go to temporary shadow tables
    carrying the target's NOT NULL, CHECK and unique constraints, in a session PostgreSQL
    keeps read-only. Parent loaders are simulated the same way first, so a reference to a
    parent the real run would load counts as resolved and one it would quarantine does not."""
    done: set[str] = _simulated.setdefault(conn, set())
    parents = [p for p in ancestors(loader) if p.name not in done]
    tg.create_shadows(conn, [t for l in [*parents, loader] for t in l.table_names])
    done.discard(loader.name)
    tg.enter_read_only(conn)
    try:
        for parent in parents:
            sub = LoadReport(parent.name, dry_run=True)
            fresh = not any(tg.table_has_rows(conn, t) for t in parent.table_names)
            _load_batches(parent, source, conn, options, sub, None, None, position=None, fresh=fresh,
                          writer=BatchWriter(conn, parent, sub, into=tg.shadow_name), dry=True)
            done.add(parent.name)
            report.simulated_parents[parent.name] = {"documents": sub.docs_read, "loadable": sub.docs_loaded,
                                                     "quarantined": sub.docs_quarantined}
            say(f"{loader.name}: dry run simulated parent loader {parent.name}: {sub.docs_loaded} of "
                f"{sub.docs_read} documents would load")
        fresh = not any(tg.table_has_rows(conn, t) for t in loader.table_names)
        report.fast_path = fresh
        _load_batches(loader, source, conn, options, report, progress, total_docs, position=None, fresh=fresh,
                      writer=BatchWriter(conn, loader, report, into=tg.shadow_name), dry=True)
        done.add(loader.name)
    finally:
        tg.leave_read_only(conn)


def _load_batches(loader: LoaderSpec, source, conn: psycopg.Connection, options: LoadOptions, report: LoadReport,
                  progress: Progress | None, total_docs: int | None, *, position: str | None, fresh: bool,
                  writer: BatchWriter, dry: bool) -> None:
    t0 = time.perf_counter() - report.seconds
    t = time.perf_counter()
    ctx = prepare_context(loader, source)
    report.timings["prepare"] += time.perf_counter() - t

    # Only a dump can hold one _id twice. Every later occurrence is quarantined as a
    # duplicate, whatever became of the first (loaded, or quarantined for its content).
    seen: set[str] | None = set() if getattr(source, "kind", "") == "dump" else None
    if seen is not None and position:
        seen.update(source.keys_before(loader.collection, position))

    fast = None
    if options.compiled and not dry:  # fast path hook (fastpath.py)
        from migration_assets.fastpath import FastLoad

        fast = FastLoad(loader, conn, ctx, writer, fresh=fresh)
    batches = source.iter_batches(loader.collection, after=position, batch_size=options.batch_size)
    for batch in fast.prefetch(batches) if fast else batches:
        tb = time.perf_counter()
        results: list[DocResult] = []
        rejected: list[Rejected] = []
        for raw in batch.docs:
            out = fast.decode_and_transform(raw) if fast else decode_and_transform(loader, raw, ctx)
            if seen is not None:
                if out.legacy_id in seen:
                    dup = {"code": "duplicate_id", "field": "_id",
                           "message": f"_id {out.legacy_id} appears more than once in the source; the first occurrence counts"}
                    out = _rejection(raw, out.legacy_id, [dup, *(out.problems if isinstance(out, Rejected) else [])],
                                     getattr(out, "doc", None))
                else:
                    seen.add(out.legacy_id)
            (rejected if isinstance(out, Rejected) else results).append(out)
        report.timings["decode_transform"] += time.perf_counter() - tb

        tr = time.perf_counter()
        if fast:
            results, missing, _ = fast.resolve(conn, results, fresh)
        else:
            results, missing, _ = resolve_references(conn, loader, results, fresh, shadow=dry)
        rejected.extend(missing)
        report.timings["resolve"] += time.perf_counter() - tr

        tw = time.perf_counter()
        with conn.transaction():
            refused = writer.write_isolating(results, True if dry else fresh)
            if refused:
                refused_ids = {r.legacy_id for r in refused}
                results = [r for r in results if r.legacy_id not in refused_ids]
                rejected.extend(refused)
            if not dry:
                _commit_batch_bookkeeping(conn, loader, results, rejected, options.run_id, report, batch.position)
        report.timings["write"] += time.perf_counter() - tw
        if not dry and batch.position is not None:
            report.position = batch.position

        report.batches += 1
        report.docs_read += len(batch.docs)
        report.docs_loaded += len(results)
        report.docs_quarantined += len(rejected)
        for r in results:
            for table, rows in r.rows.items():
                report.rows[table] = report.rows.get(table, 0) + len(rows)
        for r in rejected:
            code = r.problems[0]["code"]
            report.quarantine_reasons[code] = report.quarantine_reasons.get(code, 0) + 1
            if len(report.quarantine_sample) < 20:
                report.quarantine_sample.append({"_id": r.legacy_id, "code": code,
                                                 "reason": "; ".join(p["message"] for p in r.problems[:5])[:300]})
        report.seconds = time.perf_counter() - t0
        if progress:
            progress(report, total_docs)
    report.immutable_conflicts = sorted(writer.conflicts)


def _commit_batch_bookkeeping(conn, loader: LoaderSpec, results: list[DocResult], rejected: list[Rejected],
                              run_id: str, report: LoadReport, position: str | None) -> None:
    root = loader.root
    id_idx = root.column_names.index("id")
    tg.write_quarantine(conn, loader.name, loader.collection, run_id, [quarantine_entry(r) for r in rejected])
    tg.resolve_quarantine(conn, loader.name, [r.legacy_id for r in results], run_id)
    for table in loader.tables:
        if table.has_legacy_id and "id" in table.column_names:
            i = table.column_names.index("id")
            li = table.column_names.index("legacy_object_id")
            pairs = [(row[li], row[i]) for r in results for row in r.rows.get(table.table, ())]
            tg.upsert_id_map(conn, table.table, pairs)
    deferred = []
    holders: dict[tuple[str, str], list[uuid.UUID]] = defaultdict(list)
    for r in results:
        root_id = r.rows[root.table][0][id_idx]
        for d in r.deferred:
            deferred.append((d.table, d.column, root_id, r.legacy_id, d.ref.table, d.ref.legacy_id))
    for table in loader.tables:
        for c in table.columns:
            if c.deferred:
                with_ref = {(r.legacy_id) for r in results for d in r.deferred if d.column == c.name}
                holders[(table.table, c.name)] = [r.rows[root.table][0][id_idx] for r in results if r.legacy_id not in with_ref]
    for (table, column), ids in holders.items():
        tg.clear_deferred(conn, table, column, ids)
    tg.upsert_deferred(conn, deferred)
    rows = dict(report.rows)
    for r in results:
        for table, trows in r.rows.items():
            rows[table] = rows.get(table, 0) + len(trows)
    cp = tg.Checkpoint(loader.name, 0, "", position, "running", False,
                       report.docs_read + len(results) + len(rejected),
                       report.docs_quarantined + len(rejected), rows)
    if position is not None:
        tg.advance_checkpoint(conn, cp, run_id)
