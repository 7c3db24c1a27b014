"""The source side of the verification that follows a load, taken from the documents the load
read: one read of Mongo for both.

Each batch of a load hands its raw documents here with what became of each (written, or
quarantined for its content or as a later occurrence of an ``_id``). :class:`LoadDigests` gives
what the verification pass would compute from them, with the same code (``compiled_canon``: the
canonical rows' count and hash sum per ``_id`` prefix and table, the census, the documents that
cannot map) and the quarantined ones' row counts; it commits with the batch
(``migration.load_source_digests``), so a load killed and resumed keeps exactly its committed
batches' share.

:func:`source_from_load` adds them up for the checks that follow the load, and only when they
are whole and still true: the loader's load completed in the run asking, every document it read
has its share, the canonical code and collection context are the ones they were taken with, no
acknowledged ledger conflict is left out, and the quarantine as it stands now skips exactly the
documents the load quarantined. Otherwise (and for every later verification) the source is read
afresh.
"""

from __future__ import annotations

import multiprocessing
import signal
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import BrokenExecutor, Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import psycopg

from migration_assets.source.census import Census
from migration_assets.source.documents import decode, raw_key
from migration_assets.specs.model import LoaderSpec
from migration_assets.specs.registry import loader_named
from migration_assets.target import bookkeeping as bk
from migration_assets.verify.canonical import Unmappable
from migration_assets.verify.compiled_canon import (
    BUCKET_PREFIX,
    Buckets,
    compile_canon,
    digest_documents,
    merge_buckets,
    source_fingerprint,
)
from migration_assets.verify.quarantined import QuarantineIndex

# Below this many documents, the side process's start costs more than it saves.
SIDE_PROCESS_MIN_DOCS = 20_000
Unmapped = list[tuple[int, str, str]]  # (position in the batch, key, why the document cannot map)


def digest_all(loader: LoaderSpec, raws: Sequence[bytes], ctx: Mapping[str, Any]) -> tuple[Buckets, dict, Unmapped]:
    """Every document's canonical digests per ``_id`` prefix and table, the census of the batch
    (every document that decodes: the verification's census holds the quarantined too), and
    the documents that cannot map, by position: ``digest_documents`` keys them by ``_id``, and a
    batch may hold an ``_id`` twice, written once and quarantined once."""
    code = compile_canon(loader)
    n = len(loader.tables)
    census = Census()
    buckets: Buckets = {}
    unmapped: Unmapped = []
    for i, raw in enumerate(raws):
        key = raw_key(raw)
        bucket = buckets.get(key[:BUCKET_PREFIX])
        if bucket is None:
            bucket = buckets[key[:BUCKET_PREFIX]] = ([0] * n, [0] * n)
        try:
            code.add(raw, ctx, bucket[0], bucket[1], census, key)
        except Unmappable as e:
            unmapped.append((i, key, e.reason))
    return buckets, census.to_json(), unmapped


def digest_named(name: str, raws: list[bytes]) -> tuple[Buckets, dict, Unmapped]:
    """:func:`digest_all` in the side process (loaders without a collection context)."""
    return digest_all(loader_named(name), raws, {})


def side_process() -> ProcessPoolExecutor:
    """A side process for one load; the load stops it at its end, while this process is whole (a
    process multiprocessing started, a Dagster step, runs no atexit hooks and joins its children
    as it ends: a side process left waiting for work would keep it alive)."""
    mp = multiprocessing.get_context("forkserver")  # forking a threaded process can copy a taken lock
    mp.set_forkserver_preload(["migration_assets.verify.load_digests"])
    return ProcessPoolExecutor(1, mp_context=mp, initializer=default_signals)


class LoadDigests:
    """A load's :class:`~migration_assets.load.report.BatchDigest` for one loader and context.
    A big collection's batches are digested in a side process while this one transforms and
    writes them (the load's process and its PostgreSQL backend take turns, so on two cores one
    is mostly free); a small one's, here. The few documents the batch quarantined are taken out
    afterwards, here."""

    def __init__(self, loader: LoaderSpec, ctx: Mapping[str, Any], docs: int):
        self.loader = loader
        self.ctx = ctx
        self.fingerprint = source_fingerprint(loader, ctx)
        self.side = side_process() if docs >= SIDE_PROCESS_MIN_DOCS and not ctx else None

    def __call__(self, raws: Sequence[bytes]) -> Callable[[Sequence[str | None]], dict[str, Any]]:
        if self.side is not None:
            try:
                future = self.side.submit(digest_named, self.loader.name, list(raws))
            except BrokenExecutor:
                return self.here(raws)
            return lambda fates: self.payload(raws, fates, *self.result(future, raws))
        return self.here(raws)

    def here(self, raws: Sequence[bytes]) -> Callable[[Sequence[str | None]], dict[str, Any]]:
        return lambda fates: self.payload(raws, fates, *digest_all(self.loader, raws, self.ctx))

    def result(self, future: Future, raws: Sequence[bytes]) -> tuple[Buckets, dict, Unmapped]:
        """The side process's work; if it died (killed, out of memory), this batch and the next
        are digested here: the load goes on, its checks lose nothing."""
        try:
            return future.result()
        except BrokenExecutor:
            self.close()
            return digest_all(self.loader, raws, self.ctx)

    def payload(self, raws: Sequence[bytes], fates: Sequence[str | None], buckets: Buckets, census: dict,
                unmapped: Unmapped) -> dict[str, Any]:
        """What commits with the batch: the written documents' digests per prefix (the others'
        row counts, listed), the census, the written documents that cannot map."""
        gone = [raw for raw, fate in zip(raws, fates, strict=True) if fate is not None]
        for prefix, (counts, sums) in digest_documents({}, compile_canon(self.loader), gone, self.ctx,
                                                       BUCKET_PREFIX).items():
            bucket = buckets[prefix]
            for i in range(len(counts)):
                bucket[0][i] -= counts[i]
                bucket[1][i] -= sums[i]
        quarantined: list[list[Any]] = []  # [key, fate, rows per table (None: undecodable)]
        for raw, fate in zip(raws, fates):
            if fate is None:
                continue
            key = raw_key(raw)
            try:
                doc = decode(raw)
            except Exception:
                quarantined.append([key, fate, None])
                continue
            quarantined.append([key, fate, [sum(1 for _ in t.rows.sources(doc)) for t in self.loader.tables]])
        # a prefix stays where a written document has it (as in a verification's own pass)
        written = {raw_key(raw)[:BUCKET_PREFIX] for raw, fate in zip(raws, fates) if fate is None}
        buckets = {p: b for p, b in buckets.items() if p in written}
        return {"fingerprint": self.fingerprint, "buckets": buckets, "census": census,
                "unmappable": {key: why for i, key, why in unmapped if fates[i] is None},
                "quarantined": quarantined}

    def close(self) -> None:
        side, self.side = self.side, None
        if side is not None:
            side.shutdown(wait=True, cancel_futures=True)


def default_signals() -> None:
    """A side process starts with the default signal dispositions (one inherited as ignored
    could never be stopped)."""
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, signal.SIG_DFL)


@dataclass
class FromLoad:
    """The source side as the load's batches kept it."""

    buckets: Buckets = field(default_factory=dict)
    census: Census = field(default_factory=Census)
    unmappable: dict[str, str] = field(default_factory=dict)
    source_docs: int = 0
    quarantined_docs: int = 0
    quarantined_rows: list[int] = field(default_factory=list)


def source_from_load(loader: LoaderSpec, conn: psycopg.Connection, loaded_by: str, ctx: Mapping[str, Any],
                     qindex: QuarantineIndex, acknowledged: Mapping[str, Any]) -> FromLoad | None:
    """The source side of the loader's last load, when the run ``loaded_by`` completed it and
    what it kept still holds (the module's docstring); None: read the source."""
    cp = bk.read_checkpoint(conn, loader.name)
    if cp is None or cp.status != "completed" or cp.run_id != loaded_by or acknowledged:
        return None
    batches = bk.load_digests(conn, loader.name)
    if sum(n for n, _ in batches) != cp.docs_read:
        return None
    fingerprint = source_fingerprint(loader, ctx)
    if any(d["fingerprint"] != fingerprint for _, d in batches):
        return None
    fates: dict[str, set[str]] = {}
    for _, d in batches:
        for key, fate, _rows in d["quarantined"]:
            fates.setdefault(key, set()).add(fate)
    content, dupes = qindex.content, set(qindex.dupes) - qindex.content
    if (fates.keys() != content | dupes or any("content" not in fates[k] for k in content)
            or any("content" in fates[k] for k in dupes)):
        return None  # the quarantine changed since the load: it, not the load, says what is skipped
    out = FromLoad(quarantined_rows=[0] * len(loader.tables))
    for n, d in batches:
        out.source_docs += n
        merge_buckets(out.buckets, {p: (c, s) for p, (c, s) in d["buckets"].items()})
        out.census.merge(Census.from_json(d["census"]))
        out.unmappable.update(d["unmappable"])
        for _key, _fate, rows in d["quarantined"]:
            out.quarantined_docs += 1
            for i, r in enumerate(rows or ()):
                out.quarantined_rows[i] += r
    return out
