"""The range planner's pure part: where to cut, and how many ranges ``auto`` means."""

import pytest

from migration_assets.source.spans import (
    MIN_DOCS_PER_RANGE,
    auto_ranges,
    cut_points,
    fewer_note,
    offset_spans,
    spans_from_points,
    wanted_ranges,
)

pytestmark = pytest.mark.unit


def test_cut_points_split_evenly_and_never_repeat():
    keys = [f"{i:024x}" for i in range(100)]
    points = cut_points(keys, 4)
    assert points == [keys[25], keys[50], keys[75]]
    assert cut_points(["a"] * 50 + ["b"] * 50, 4) == ["b"]  # repeated keys make no empty range
    assert cut_points(keys, 1) == [] and cut_points([], 3) == []


def test_spans_cover_everything_once():
    spans = spans_from_points(["b", "d"])
    assert [(s.start, s.end) for s in spans] == [(None, "b"), ("b", "d"), ("d", None)]
    assert [s.no for s in spans] == [0, 1, 2]


def test_offset_spans():
    offsets = [0, 10, 25, 40, 41]
    spans = offset_spans(offsets, 60, 2)
    assert [(s.start, s.end, s.docs) for s in spans] == [(None, "25", 2), ("25", None, 3)]
    assert len(offset_spans(offsets, 60, 9)) == 5  # at most one range per document
    assert [(s.start, s.end, s.docs) for s in offset_spans([], 0, 4)] == [(None, None, 0)]


def test_auto_and_asked():
    assert auto_ranges(0, 8) == 1
    assert auto_ranges(MIN_DOCS_PER_RANGE * 3, 2) == 2  # no more than the executor runs at once
    assert auto_ranges(MIN_DOCS_PER_RANGE * 3, 8) == 3
    assert wanted_ranges("auto", 10, 4) == 1
    assert wanted_ranges("3", 10, 4) == 3
    with pytest.raises(ValueError, match="positive"):
        wanted_ranges("0", 10, 4)
    assert "empty" in fewer_note(4, 1, 0) and fewer_note(2, 2, 10) == ""
