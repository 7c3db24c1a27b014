"""Spans: the slices of one collection that a ranged load reads side by side, one Dagster
step each. A span is in the source's own order, so a step reads it with its index (a live
server: ``start <= _id < end``, hex ObjectIds) or by seeking (a dump: byte offsets of whole
documents). Together the spans of a plan cover the collection exactly once.

The pure part lives here (where to cut, how many ranges ``auto`` means); each source says
where its boundaries come from (``Source.plan_spans``)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

# A range smaller than this does not repay the start of a step (a process, its imports,
# its connections: about 2-3 s here, i.e. ~10k documents at the measured rates).
MIN_DOCS_PER_RANGE = 50_000
# At most this many ranges, whatever was asked: each holds a PostgreSQL connection.
MAX_RANGES = 64


@dataclass(frozen=True)
class Span:
    no: int
    start: str | None  # inclusive; None: the collection's beginning
    end: str | None  # exclusive; None: its end
    docs: int | None = None  # documents in it when the plan was made (None: not known exactly)

    def describe(self) -> str:
        return f"range {self.no} [{self.start or 'start'}, {self.end or 'end'})"


@dataclass(frozen=True)
class SpanPlan:
    spans: tuple[Span, ...]
    basis: str  # how the boundaries were found ("dump offsets", "_id quantiles of a sample", ...)
    note: str = ""  # why fewer ranges than asked, said in the run log

    @property
    def whole(self) -> bool:
        return len(self.spans) == 1 and self.spans[0].start is None and self.spans[0].end is None


WHOLE = (Span(0, None, None),)


def auto_ranges(docs: int, concurrency: int) -> int:
    """``ranges: auto``: one range per ``MIN_DOCS_PER_RANGE`` documents, at most as many as
    the executor runs at once (more would only queue), at least one."""
    return max(1, min(concurrency, math.ceil(docs / MIN_DOCS_PER_RANGE), MAX_RANGES))


def wanted_ranges(asked: int | str, docs: int, concurrency: int) -> int:
    if asked == "auto":
        return auto_ranges(docs, concurrency)
    try:
        n = int(asked)
    except (TypeError, ValueError):
        n = 0
    if n < 1:
        raise ValueError(f"ranges must be 'auto' or a positive number, not {asked!r}")
    return min(n, MAX_RANGES)


def cut_points(sorted_keys: Sequence[str], n: int) -> list[str]:
    """At most ``n - 1`` distinct, increasing boundaries splitting ``sorted_keys`` (a sorted
    sample or every key) into ``n`` near-equal parts; a boundary is the first key of the part
    it starts. Repeated keys never make an empty range."""
    if n <= 1 or not sorted_keys:
        return []
    out: list[str] = []
    for i in range(1, n):
        key = sorted_keys[(i * len(sorted_keys)) // n]
        if (not out or key > out[-1]) and key > sorted_keys[0]:
            out.append(key)
    return out


def spans_from_points(points: Sequence[str], counts: Sequence[int] | None = None) -> tuple[Span, ...]:
    """Spans ``[None, p0), [p0, p1), ..., [pk, None)`` (``counts``: documents in each)."""
    bounds = [None, *points, None]
    return tuple(Span(i, bounds[i], bounds[i + 1], counts[i] if counts else None) for i in range(len(bounds) - 1))


def offset_spans(offsets: Sequence[int], size: int, n: int) -> tuple[Span, ...]:
    """Spans of a file whose documents start at ``offsets`` (sorted) and which ends at
    ``size``: ``n`` (at most one per document) runs of whole documents, near-equal in number."""
    docs = len(offsets)
    n = max(1, min(n, docs))
    if n == 1:
        return (Span(0, None, None, docs),)
    firsts = [(i * docs) // n for i in range(n)]
    spans = []
    for i, first in enumerate(firsts):
        last = firsts[i + 1] if i + 1 < n else docs
        start = None if i == 0 else str(offsets[first])
        end = None if i + 1 == n else str(offsets[last])
        spans.append(Span(i, start, end, last - first))
    return tuple(spans)


def fewer_note(asked: int, got: int, docs: int) -> str:
    if got >= asked:
        return ""
    if docs == 0:
        return f"the collection is empty: 1 range instead of {asked}"
    return f"{docs} document(s) make {got} range(s) instead of {asked}"
