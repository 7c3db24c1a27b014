"""Deterministic sample-data world: one seeded RNG, ObjectIds whose timestamps follow a
simulated timeline (so ``_id`` order roughly follows ``createdAt``, as in production), and
the ids of everything generated so far for later collections to reference."""

from __future__ import annotations

import datetime as dt
import random
import struct
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from bson import Decimal128, ObjectId

START = dt.datetime(2023, 1, 1, tzinfo=dt.timezone.utc)
END = dt.datetime(2026, 6, 1, tzinfo=dt.timezone.utc)


@dataclass
class World:
    seed: int
    scale: float
    rng: random.Random = field(init=False)
    docs: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    ids: dict[str, list[ObjectId]] = field(default_factory=lambda: defaultdict(list))
    _counter: int = 0

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def n(self, per_scale: float, minimum: int = 1) -> int:
        return max(minimum, int(round(per_scale * self.scale)))

    def when(self, after: dt.datetime | None = None, within_days: float | None = None) -> dt.datetime:
        lo = after or START
        hi = END if within_days is None else min(END, lo + dt.timedelta(days=within_days))
        if hi <= lo:
            hi = lo + dt.timedelta(minutes=1)
        span = (hi - lo).total_seconds()
        t = lo + dt.timedelta(seconds=self.rng.random() * span)
        return t.replace(microsecond=(t.microsecond // 1000) * 1000)  # BSON dates are ms

    def oid(self, at: dt.datetime) -> ObjectId:
        self._counter += 1
        ts = int(at.timestamp())
        return ObjectId(struct.pack(">I", ts) + struct.pack(">I", self.rng.getrandbits(32)) + self._counter.to_bytes(4, "big"))

    def money(self, lo: float, hi: float, places: int = 2) -> Decimal128:
        q = Decimal(1).scaleb(-places)
        value = Decimal(str(self.rng.uniform(lo, hi))).quantize(q)
        return Decimal128(value)

    def choice(self, seq):
        return self.rng.choice(seq)

    def chance(self, p: float) -> bool:
        return self.rng.random() < p

    def add(self, collection: str, doc: dict[str, Any]) -> dict[str, Any]:
        self.docs[collection].append(doc)
        self.ids[collection].append(doc["_id"])
        return doc

    def total(self) -> int:
        return sum(len(v) for v in self.docs.values())
