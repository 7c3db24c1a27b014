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

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg

from migration_assets.source.census import Census
from migration_assets.source.documents import decode, raw_key
from migration_assets.specs.model import LoaderSpec
from migration_assets.target import bookkeeping as bk
from migration_assets.verify.canonical import Unmappable
from migration_assets.verify.compiled_canon import (
    BUCKET_PREFIX,
    Buckets,
    compile_canon,
    merge_buckets,
    source_fingerprint,
)
from migration_assets.verify.quarantined import QuarantineIndex


class LoadDigests:
    """A load's :data:`~migration_assets.load.report.BatchDigest` for one loader and context."""

    def __init__(self, loader: LoaderSpec, ctx: Mapping[str, Any]):
        self.loader = loader
        self.ctx = ctx
        self.code = compile_canon(loader)
        self.fingerprint = source_fingerprint(loader, ctx)

    def __call__(self, raws: Sequence[bytes], fates: Sequence[str | None]) -> dict[str, Any]:
        n = len(self.loader.tables)
        buckets: Buckets = {}
        census = Census()
        unmappable: dict[str, str] = {}
        quarantined: list[list[Any]] = []  # [key, fate, rows per table (None: undecodable)]
        for raw, fate in zip(raws, fates, strict=True):
            key = raw_key(raw)
            if fate is None:
                bucket = buckets.get(key[:BUCKET_PREFIX])
                if bucket is None:
                    bucket = buckets[key[:BUCKET_PREFIX]] = ([0] * n, [0] * n)
                try:
                    self.code.add(raw, self.ctx, bucket[0], bucket[1], census, key)
                except Unmappable as e:
                    unmappable[key] = e.reason
                continue
            try:
                doc = decode(raw)
            except Exception:
                quarantined.append([key, fate, None])
                continue
            census.add(doc, key)
            quarantined.append([key, fate, [sum(1 for _ in t.rows.sources(doc)) for t in self.loader.tables]])
        return {"fingerprint": self.fingerprint, "buckets": buckets, "census": census.to_json(),
                "unmappable": unmappable, "quarantined": quarantined}


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
