"""The census of a collection's field paths: every path the documents hold, with its BSON
types and how many documents carry it, held against the loader's spec: each path is
mapped (a column reads it), ignored on purpose (the spec says why), or unmapped.

Paths: nested objects with dots (``deliveryInfo.address.city``), array elements with ``[]``
(``specifications[].key``; ``preferredSellers[]`` for an array of scalars). The census is
taken during the passes the platform makes anyway (the verification scan), not by an extra
one; ``migration-assets profile`` takes one on demand.

**Maps collapse to one path.** An object whose keys are data (a map keyed by ids) would
otherwise give a path per key: thousands, more columns than PostgreSQL allows. Its keys become
``<key>`` (``profile.<key>.status``), with the number of distinct keys seen:

* a key shaped like an id collapses wherever it is: an ObjectId's 24 hex digits, a uuid (with
  or without dashes), an integer, a date (``2024-05-01``), or 16 hex digits or more;
* any other object collapses when it holds ``MAP_MIN_KEYS`` (50) distinct keys or more across
  the documents, every one with values of the same BSON types (one shape).
"""

from __future__ import annotations

import datetime as dt
import functools
import random
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from bson import Binary, Decimal128, ObjectId, Regex, Timestamp
from bson.datetime_ms import DatetimeMS
from bson.int64 import Int64

from migration_assets.source.documents import Source
from migration_assets.source.scan import scan
from migration_assets.specs.kinds import Json, TextArray
from migration_assets.specs.model import LoaderSpec, source_path

SAMPLE_IDS = 5
MAP_KEY = "<key>"
MAP_MIN_KEYS = 50  # distinct keys of one shape that make an object a map
DISTINCT_KEYS_KEPT = 10_000  # distinct keys counted per map path, at most
ID_LIKE_KEY = re.compile(r"[0-9a-fA-F]{16,}|[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?"
                         r"[0-9a-fA-F]{12}|-?\d+|\d{4}-\d{2}-\d{2}(?:[T ][0-9:.]+Z?)?")


def bson_type(value: Any) -> str:
    """The BSON type name of a decoded value (as ``$type`` names them)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, Int64):
        return "long"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "double"
    if isinstance(value, Decimal128):
        return "decimal"
    if isinstance(value, str):
        return "string"
    if isinstance(value, ObjectId):
        return "objectId"
    if isinstance(value, (dt.datetime, DatetimeMS)):
        return "date"
    if isinstance(value, Mapping):
        return "object"
    if isinstance(value, list):
        return "array"
    if isinstance(value, (bytes, Binary)):
        return "binData"
    if isinstance(value, Regex):
        return "regex"
    if isinstance(value, Timestamp):
        return "timestamp"
    return type(value).__name__


_TYPES = {type(None): "null", bool: "bool", int: "int", Int64: "long", float: "double", Decimal128: "decimal",
          str: "string", ObjectId: "objectId", dt.datetime: "date", DatetimeMS: "date", dict: "object", list: "array"}


@functools.lru_cache(maxsize=8192)  # field names repeat in every document; a map's keys rarely do
def _data_key(key: str) -> bool:
    return ID_LIKE_KEY.fullmatch(key) is not None


def _walk(value: Mapping[str, Any], prefix: str, out: set[tuple[str, str]],
          keys: dict[str, set[str]] | None = None) -> None:
    # The hot loop of the census (every document of every verification): a type lookup by
    # class, one set of (path, type) per document.
    for k, v in value.items():
        if _data_key(k):
            if keys is not None:
                seen = keys.setdefault(prefix + MAP_KEY, set())
                if len(seen) < DISTINCT_KEYS_KEPT:
                    seen.add(k)
            k = MAP_KEY
        path = prefix + k
        t = _TYPES.get(v.__class__) or bson_type(v)
        out.add((path, t))
        if t == "object":
            _walk(v, path + ".", out, keys)
        elif t == "array":
            _walk_items(v, path + "[]", out, keys)


def _walk_items(items: list, path: str, out: set[tuple[str, str]], keys: dict[str, set[str]] | None) -> None:
    for v in items:
        t = _TYPES.get(v.__class__) or bson_type(v)
        out.add((path, t))
        if t == "object":
            _walk(v, path + ".", out, keys)
        elif t == "array":
            _walk_items(v, path + "[]", out, keys)


def _find(value: Any, parts: list[str]) -> Any:
    """One value at a path's ``parts`` (``["a[]", "b"]``: b of an element of array a), for
    drafting a spec; None when absent."""
    if not parts:
        return value
    head, depth = parts[0], 0
    while head.endswith("[]"):
        head, depth = head[:-2], depth + 1
    if not isinstance(value, Mapping) or head not in value:
        return None
    values = [value[head]]
    for _ in range(depth):
        values = [x for v in values if isinstance(v, list) for x in v]
    for v in values:
        found = _find(v, parts[1:])
        if found is not None:
            return found
    return None


@dataclass
class PathStats:
    documents: int = 0
    types: Counter = field(default_factory=Counter)  # BSON type -> documents holding it there
    sample_ids: list[str] = field(default_factory=list)
    examples: list[Any] = field(default_factory=list)  # a few values (profiles only: drafting a spec reads them)
    distinct_keys: int | None = None  # a map's path (``…<key>``): how many distinct keys were seen


@dataclass
class Census:
    documents: int = 0
    # frozenset of (path, type) -> documents of that shape. Documents of one collection share a
    # few shapes, so a document costs its walk and one count, not one count per path.
    shapes: Counter = field(default_factory=Counter)
    ids: dict[str, list[str]] = field(default_factory=dict)  # path -> the first few _ids holding it
    examples: dict[str, list[Any]] | None = None  # path -> a few values, when asked for
    sampled: set[str] = field(default_factory=set)  # paths that have their few _ids
    map_keys: dict[str, set[str]] = field(default_factory=dict)  # map path (…<key>) -> distinct keys seen

    def add(self, doc: Mapping[str, Any], key: str) -> None:
        """One decoded document (``key``: its ``_id``)."""
        self.documents += 1
        found: set[tuple[str, str]] = set()
        _walk(doc, "", found, self.map_keys)
        shape = frozenset(found)
        seen = self.shapes[shape]
        self.shapes[shape] = seen + 1
        if seen >= SAMPLE_IDS:
            return  # every path of this shape has its few _ids (and examples) already
        for p in {p for p, _ in found} - self.sampled:  # empty once every path has its few _ids
            ids = self.ids.setdefault(p, [])
            ids.append(key)
            if len(ids) >= SAMPLE_IDS:
                self.sampled.add(p)
            if self.examples is not None and MAP_KEY not in p:
                self.examples.setdefault(p, []).append(_find(doc, p.split(".")))

    def merge(self, other: Census) -> None:
        self.documents += other.documents
        self.shapes.update(other.shapes)
        for p, keys in other.ids.items():
            mine = self.ids.setdefault(p, [])
            mine += keys[:SAMPLE_IDS - len(mine)]
            if len(mine) >= SAMPLE_IDS:
                self.sampled.add(p)
        for p, keys in other.map_keys.items():
            mine_keys = self.map_keys.setdefault(p, set())
            mine_keys.update(list(keys)[:max(0, DISTINCT_KEYS_KEPT - len(mine_keys))])

    def to_json(self) -> dict[str, Any]:
        """What a load keeps of its batches' census (``from_json`` reads it back). Per path, the
        sets of types documents hold there with their counts: everything ``pairs``, ``counts``
        and ``paths`` say, in far less than the shapes (optional fields multiply shapes)."""
        per_path: Counter = Counter()
        for shape, n in self.shapes.items():
            types: dict[str, list[str]] = {}
            for p, t in shape:
                types.setdefault(p, []).append(t)
            for p, ts in types.items():
                per_path[(p, tuple(sorted(ts)))] += n
        return {"documents": self.documents, "types": [[p, list(ts), n] for (p, ts), n in per_path.items()],
                "ids": self.ids, "map_keys": {p: sorted(k) for p, k in self.map_keys.items()}}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Census:
        out = cls(documents=data["documents"], ids={p: list(k) for p, k in data["ids"].items()},
                  map_keys={p: set(k) for p, k in data["map_keys"].items()})
        for p, ts, n in data["types"]:  # one shape per path and type set: the same pairs and counts
            out.shapes[frozenset((p, t) for t in ts)] += n
        out.sampled = {p for p, k in out.ids.items() if len(k) >= SAMPLE_IDS}
        return out

    @property
    def pairs(self) -> Counter:
        """(path, type) -> documents."""
        out: Counter = Counter()
        for shape, n in self.shapes.items():
            for pair in shape:
                out[pair] += n
        return out

    @property
    def counts(self) -> Counter:
        """path -> documents."""
        out: Counter = Counter()
        for shape, n in self.shapes.items():
            for path in {p for p, _ in shape}:
                out[path] += n
        return out

    @property
    def paths(self) -> dict[str, PathStats]:
        """Every path with its stats, maps collapsed to ``<key>`` (the module's docstring)."""
        raw: dict[str, PathStats] = {}
        counts = self.counts
        for (p, t), n in self.pairs.items():
            stats = raw.setdefault(p, PathStats(counts[p], sample_ids=self.ids.get(p, []),
                                                examples=(self.examples or {}).get(p, [])))
            stats.types[t] = n
        return collapse_maps(raw, {p: len(k) for p, k in self.map_keys.items()})


def _parent_and_key(path: str) -> tuple[str, str] | None:
    """``a.b.c`` -> (``a.b``, ``c``); None for a top-level field or an array element."""
    head, dot, key = path.rpartition(".")
    return (head, key) if dot and "[" not in key else None


def collapse_maps(paths: dict[str, PathStats], known: Mapping[str, int]) -> dict[str, PathStats]:
    """Objects with ``MAP_MIN_KEYS`` distinct keys or more, all of one value shape, seen as maps:
    their key becomes ``<key>``, and the paths under each key merge."""
    children: dict[str, dict[str, frozenset[str]]] = {}
    for p, stats in paths.items():
        pk = _parent_and_key(p)
        if pk and pk[1] != MAP_KEY:
            children.setdefault(pk[0], {})[pk[1]] = frozenset(stats.types)
    maps = {parent: len(keys) for parent, keys in children.items()
            if len(keys) >= MAP_MIN_KEYS and len(set(keys.values())) == 1}
    if not maps:
        return paths
    out: dict[str, PathStats] = {}
    # deepest maps first would be more precise; one pass over the shallowest ones is enough here
    for p, stats in sorted(paths.items()):
        target, keys = p, known.get(p)
        for parent in sorted(maps, key=len):
            if p.startswith(parent + ".") and "[" not in p[len(parent) + 1:].split(".")[0]:
                rest = p[len(parent) + 1:].split(".", 1)
                target = parent + "." + MAP_KEY + ("." + rest[1] if len(rest) > 1 else "")
                keys = maps[parent]
                break
        merged = out.get(target)
        if merged is None:
            out[target] = PathStats(stats.documents, Counter(stats.types), list(stats.sample_ids),
                                    list(stats.examples), keys if target.endswith(MAP_KEY) else None)
        else:  # a document may hold several keys: its count is at most the sum
            merged.documents = max(merged.documents, stats.documents)
            merged.types.update(stats.types)
            merged.sample_ids += [i for i in stats.sample_ids if i not in merged.sample_ids][:SAMPLE_IDS]
    return out


# --- held against a spec ------------------------------------------------------------------------

MAPPED, IGNORED, UNMAPPED = "mapped", "ignored", "unmapped"


def mapped_paths(loader: LoaderSpec) -> tuple[set[str], set[str]]:
    """(paths the spec reads, paths whose whole subtree one column takes: JSON columns)."""
    exact: set[str] = set()
    subtrees: set[str] = set()  # JSON and array columns take everything under their path
    for t in loader.tables:
        if t.rows.path:
            exact.add(t.rows.path)
            if t.rows.mode == "array":
                exact.add(f"{t.rows.path}[]")
        for c in t.columns:
            for p in c.source_paths:
                if p == "$index" or (p == "$root._id" and not t.is_root):
                    continue
                full = source_path(t, p).removesuffix(" (position)")
                exact.add(full)
                if isinstance(c.kind, (Json, TextArray)):
                    subtrees.add(full)
    return exact, subtrees


def _under(path: str, roots: Iterable[str]) -> str | None:
    for root in roots:
        if path == root or path.startswith(root + ".") or path.startswith(root + "[]"):
            return root
    return None


def classify(loader: LoaderSpec, path: str, exact: set[str], subtrees: set[str]) -> str:
    if path in exact or _under(path, subtrees) or any(p.startswith(path + ".") or p.startswith(path + "[]")
                                                      for p in exact):
        return MAPPED  # read by a column, inside a JSON column, or a container of read paths
    if _under(path, loader.ignored):
        return IGNORED
    return UNMAPPED


@dataclass(frozen=True)
class PathVerdict:
    path: str
    status: str
    stats: PathStats
    reason: str = ""  # why it is ignored


def verdicts(loader: LoaderSpec, census: Census) -> list[PathVerdict]:
    exact, subtrees = mapped_paths(loader)
    out = []
    for path, stats in sorted(census.paths.items()):
        status = classify(loader, path, exact, subtrees)
        reason = loader.ignored[_under(path, loader.ignored)] if status == IGNORED else ""
        out.append(PathVerdict(path, status, stats, reason))
    return out


def census_of(source: Source, collection: str, *, sample: int | None = None, seed: int = 0,
              examples: bool = False) -> Census:
    """A census taken on demand (``migration-assets profile``): every document, or a uniform
    random ``sample`` of them (reservoir sampling over one read of the raw documents)."""
    census = Census(examples={} if examples else None)
    if sample is None:
        for d in scan(source, collection):
            if d.doc is not None:
                census.add(d.doc, d.key)
        return census
    rng, kept = random.Random(seed), []
    for i, d in enumerate(scan(source, collection)):
        if i < sample:
            kept.append(d)
        elif (j := rng.randrange(i + 1)) < sample:
            kept[j] = d
    for d in kept:
        if d.doc is not None:
            census.add(d.doc, d.key)
    return census
