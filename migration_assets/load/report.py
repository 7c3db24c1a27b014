"""What a load is asked to do (:class:`LoadOptions`) and what it did (:class:`LoadReport`)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from migration_assets.specs.model import LoaderSpec
from migration_assets.target.lease import Owner


class BatchDigest(Protocol):
    """What a batch's documents give the verification after the load (``verify/load_digests.py``
    supplies it; the load never imports the verification). Called with a batch's raw documents
    as the batch starts (it may work on them meanwhile, elsewhere); what it returns is called, in
    the batch's transaction, with what became of each document (None: written; "content" or
    "duplicate": quarantined) and gives what commits with the batch (JSON)."""

    def __call__(self, raws: Sequence[bytes]) -> Callable[[Sequence[str | None]], Mapping[str, Any]]: ...

    def close(self) -> None: ...


@dataclass
class LoadOptions:
    batch_size: int = 2000
    resume: bool = True
    dry_run: bool = False
    run_id: str = "local"
    # A second run of the same loader waits this long for the first one's lock, then fails.
    lock_timeout_s: float = 600.0
    # The compiled transform (transform/compiled.py): same rows, same rejections (anything
    # unusual takes the reference path); False = the reference transform only.
    compiled: bool = True
    # The Dagster run asking, and the process that runs it: the load's lease (target/lease.py).
    # None (a direct call): the load holds no lease, and waits only for the lock and live leases.
    owner: Owner | None = None
    # (loader, collection context, documents expected) -> its BatchDigest: each batch keeps the
    # source side of the first verification after the load (None: it reads the source again).
    digests: Callable[[LoaderSpec, Mapping[str, Any], int], BatchDigest] | None = None


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
    id_map_added: int = 0  # entries a ranged load's finish added (rows written by something else)
    resumed_from: str | None = None
    docs_before: int = 0  # documents of this load committed before this run took it up
    position: str | None = None  # last committed position (what a rerun resumes from)
    batches: int = 0
    seconds: float = 0.0
    cpu_s: float = 0.0  # this process's CPU in the batch loop (summed over a ranged load's ranges)
    timings: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    dry_run: bool = False
    fresh: bool = False  # the tables were empty: rows were copied straight in
    lock_waited_s: float = 0.0
    # Append-only tables: documents whose existing (immutable) row differs from the source.
    immutable_conflicts: list[str] = field(default_factory=list)
    # Documents an earlier load wrote that no longer map: quarantined, their rows removed (audited).
    withdrawn: list[str] = field(default_factory=list)
    # ... and those whose rows had to stay (append-only, still referenced): document -> why; the
    # parity checks name them as rows PostgreSQL holds and the source does not map
    kept: dict[str, str] = field(default_factory=dict)
    # Dry run: parent loaders simulated (read, transformed, validated) to resolve references.
    simulated_parents: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def docs_per_second(self) -> float:
        return self.docs_read / self.seconds if self.seconds else 0.0

    def add_changed(self, changed: dict[str, int]) -> None:
        for table, n in changed.items():
            self.rows_changed[table] = self.rows_changed.get(table, 0) + n


def merge_reports(loader: str, reports: Sequence[LoadReport], *, resumed: bool = False) -> LoadReport:
    """One report of the ranges of a ranged load (their sums; the first 20 quarantined). A
    resumed load says how: ranges that had landed, ranges resumed mid-way, documents
    committed before this run (one range resumed mid-way: its position, as one stream)."""
    out = LoadReport(loader, fresh=all(r.fresh for r in reports) if reports else False)
    for r in reports:
        out.docs_read += r.docs_read
        out.docs_loaded += r.docs_loaded
        out.docs_quarantined += r.docs_quarantined
        out.batches += r.batches
        out.cpu_s += r.cpu_s
        out.lock_waited_s = max(out.lock_waited_s, r.lock_waited_s)
        for table, n in r.rows.items():
            out.rows[table] = out.rows.get(table, 0) + n
        out.add_changed(r.rows_changed)
        for code, n in r.quarantine_reasons.items():
            out.quarantine_reasons[code] = out.quarantine_reasons.get(code, 0) + n
        out.quarantine_sample.extend(r.quarantine_sample[:20 - len(out.quarantine_sample)])
        for stage, seconds in r.timings.items():
            out.timings[stage] += seconds
        out.immutable_conflicts.extend(r.immutable_conflicts)
        out.withdrawn.extend(r.withdrawn)
        out.kept.update(r.kept)
        out.docs_before += r.docs_before
    from_ranges = [r.resumed_from for r in reports if r.resumed_from]
    landed = sum(1 for r in reports if r.resumed_from and r.resumed_from.startswith("landed"))
    if len(reports) == 1 and from_ranges and not landed:
        out.resumed_from = from_ranges[0]
    elif resumed or from_ranges:
        out.resumed_from = (f"{landed} of {len(reports)} range(s) had landed, {len(from_ranges) - landed} resumed "
                            f"mid-range; {out.docs_before} documents committed before this run")
    out.immutable_conflicts.sort()
    return out


Progress = Callable[[LoadReport, int | None], None]
Log = Callable[[str], None]
