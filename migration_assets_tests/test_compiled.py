"""The compiled transform and the compiled canonical rows against the reference: the same
rows, the same rejections, the same checksums, document by document and in the real
PostgreSQL. The Decimal128 and uuid5 shortcuts against pymongo's and the standard library's."""

from __future__ import annotations

import datetime as dt
import hashlib
import random
import uuid
from decimal import Decimal

import bson
import pytest
from bson import Decimal128, ObjectId
from bson.datetime_ms import DatetimeMS
from bson.int64 import Int64

from migration_assets.generator.writers import write_dump
from migration_assets.load.remap import apply_remap
from migration_assets.load.report import LoadOptions
from migration_assets.load.run import run_loader
from migration_assets.source.documents import DECODE_OPTIONS, RawBatch, raw_id_hex
from migration_assets.source.dump import DumpSource
from migration_assets.specs.ids import NAMESPACE, new_id
from migration_assets.specs.kinds import MONEY, LegacyRef, Numeric, canon_decimal, canon_decimal128, canon_number
from migration_assets.specs.registry import all_loaders
from migration_assets.target import guard as tg
from migration_assets.transform.codegen import Bail
from migration_assets.transform.compiled import coerce_money, compile_loader
from migration_assets.transform.context import prepare_context
from migration_assets.transform.document import reference_document
from migration_assets.transform.results import Rejected
from migration_assets.verify import checksums, load_digests
from migration_assets.verify.canonical import hash60, source_rows
from migration_assets.verify.checksums import verify_loader
from migration_assets.verify.compiled_canon import compile_canon
from migration_assets.verify.load_digests import LoadDigests
from migration_assets_tests.helpers import source_side

UTC = dt.timezone.utc


# --- values ----------------------------------------------------------------------------

DECIMALS = ["0", "-0", "0.00", "1", "-1", "1234.56", "0.10", "1E+3", "1.5E+3", "-12.500", "1E-18", "1E-19",
            "123456789012345678901", "12345678901234567890.5", "9" * 34, "1" + "0" * 33, "0.000001",
            "1E-200", "7E+200", "-0E-5", "3.141592653589793238462643383"]


@pytest.mark.unit
@pytest.mark.parametrize("text", DECIMALS + ["NaN", "Infinity", "-Infinity"])
def test_decimal128_canonical_text_matches_pymongo(text):
    value = Decimal128(text)
    try:
        expected = canon_decimal(value.to_decimal())
    except Exception as e:  # pymongo's own failure (NaN has no canonical text)
        with pytest.raises(type(e)):
            canon_decimal128(value)
    else:
        assert canon_decimal128(value) == expected == canon_number(value)


@pytest.mark.unit
@pytest.mark.parametrize("kind", [MONEY, Numeric(10, 2), Numeric(38, 0)])
@pytest.mark.parametrize("text", DECIMALS + ["NaN", "Infinity"])
def test_money_coercion_accepts_exactly_what_the_reference_accepts(kind, text):
    value = Decimal128(text)
    try:
        ref = kind.coerce(value)
    except Exception:
        with pytest.raises(Exception):
            coerce_money(kind, value)
        return
    fast = coerce_money(kind, value)
    assert fast.as_tuple() == ref.as_tuple()


@pytest.mark.unit
def test_random_decimals_match():
    rng = random.Random(3)
    for _ in range(3000):
        digits = rng.randint(1, 34)
        coefficient = rng.randrange(10 ** (digits - 1), 10 ** digits)
        value = Decimal128(Decimal(f"{rng.choice(['', '-'])}{coefficient}E{rng.randint(-40, 20)}"))
        assert canon_decimal128(value) == canon_decimal(value.to_decimal())


@pytest.mark.unit
def test_new_id_is_uuid5():
    for table, legacy in [("users", "5f" * 12), ("purchase_requests", "0" * 24), ("t", "ünï"), ("", "")]:
        fast, ref = new_id(table, legacy), uuid.uuid5(NAMESPACE, f"{table}:{legacy}")
        assert fast == ref and hash(fast) == hash(ref) and str(fast) == str(ref) and fast.bytes == ref.bytes
        assert fast.version == 5 and fast.is_safe == ref.is_safe


@pytest.mark.unit
def test_hash60_is_the_first_60_bits_of_md5():
    for text in ["", "a", "s5:hello|n0|z", "ünïcødé 🎁", "x" * 10_000]:
        assert hash60(text) == int(hashlib.md5(text.encode()).hexdigest()[:15], 16)


# --- documents -------------------------------------------------------------------------

def awkward(world) -> dict[str, list]:
    """Documents the fast path must hand to the reference (or transform identically)."""
    users = world.docs["users"]
    pr = dict(world.docs["purchaserequests"][0])
    offer = dict(world.docs["selleroffers"][0])
    user = dict(users[0])
    base = dt.datetime(2024, 5, 1, tzinfo=UTC)
    out = {"purchaserequests": [], "selleroffers": [], "users": []}

    def p(**changes):
        d = {**pr, "_id": ObjectId(), **changes}
        out["purchaserequests"].append({k: v for k, v in d.items() if v is not _DROP})

    p(quantity=2.5)                                      # not integral
    p(quantity=3.0)                                      # integral double: loads as 3
    p(quantity=Int64(2))                                 # Int64
    p(quantity=2**40)                                    # out of range for integer
    p(quantity=True)                                     # bool is not a number
    p(title="nul \x00 byte")
    p(title=12)                                          # wrong type
    p(title=_DROP)                                       # required and missing
    p(status="weird")                                    # unknown enum
    p(status=_DROP)                                      # default
    p(budget={"amount": Decimal128("1E-30"), "currency": "USDT"})    # precision loss
    p(budget={"amount": Decimal128("NaN"), "currency": "USDT"})
    p(budget={"amount": 100, "currency": "ETH"})         # int amount
    p(budget={"amount": 10.25, "currency": "BTC"})       # double amount
    p(budget={"amount": Decimal128("1E+3")})             # default currency
    p(budget="cheap")                                    # not an object
    p(deliveryInfo="door")                               # embedded not an object
    p(deliveryInfo={"method": "pickup", "address": {"line1": "x", "city": "y", "country": "TR"}})
    p(specifications={"key": "a"})                       # array not an array
    p(specifications=[{"key": "a", "value": "b"}, "loose"])
    p(specifications=[{"key": "a", "value": None}])      # required null
    p(preferredSellers=[users[1]["_id"], "nope"])
    p(preferredSellers=[str(users[1]["_id"])])           # legacy hex-string reference
    p(buyer=str(users[2]["_id"]))
    p(buyer=ObjectId())                                  # missing parent
    p(deadline="tomorrow")
    p(deadline=DatetimeMS(2**62))                        # outside years 1..9999
    p(createdAt=dt.datetime(1969, 12, 31, 23, 59, 59, 999000, tzinfo=UTC))
    p(description="Ünïcødé 🎁 ok")
    p(deliveryAttempts=[{"_id": ObjectId(), "attemptNumber": 1, "status": "failed", "attemptedAt": base},
                        {"_id": ObjectId(), "attemptNumber": "2", "status": "failed", "attemptedAt": base}])
    p(selectedOfferId="not an id")
    p(quantity=0)                                        # CHECK quantity > 0: PostgreSQL refuses the batch
    p(budget={"amount": Decimal128("-5"), "currency": "USDT"})  # CHECK budget_amount >= 0
    out["selleroffers"].append({**offer, "_id": ObjectId(), "price": {"amount": 10.5, "currency": "USDT"}})
    out["selleroffers"].append({**offer, "_id": ObjectId(), "deliveryDays": 1.5})
    out["selleroffers"].append({**offer, "_id": ObjectId(), "price": {"amount": Decimal128("-1"), "currency": "USDT"}})
    out["users"].append({**user, "_id": ObjectId(), "points": True})
    out["users"].append({k: v for k, v in {**user, "_id": ObjectId()}.items() if k != "email"})
    out["users"].append({**user, "_id": ObjectId(), "email": "u@x", "passkeys": [
        {"_id": ObjectId(), "credentialId": "c", "publicKey": "k", "transports": ["usb", 5], "createdAt": base}]})
    return out


class _Drop:
    pass


_DROP = _Drop()


def _sources(world):
    extra = awkward(world)
    for loader in all_loaders():
        docs = list(world.docs.get(loader.collection, ())) + extra.get(loader.collection, [])
        yield loader, [bson.encode(d) for d in docs]


@pytest.mark.unit
def test_compiled_transform_equals_reference(world):
    """For every loader and document: the compiled transform gives the reference's rows,
    or bails (the document then takes the reference path). It never accepts a document
    the reference rejects."""
    checked = bailed = 0
    for loader, raws in _sources(world):
        compiled = compile_loader(loader)
        source = _ListSource(loader.collection, raws)
        ctx = prepare_context(loader, source)
        own = set(loader.table_names)
        for raw in raws:
            ref = reference_document(loader, raw, ctx)
            doc = bson.decode(raw, compiled.load_options)
            legacy = raw_id_hex(raw)
            for fresh in (False, True):
                transform = compiled.transform_fresh if fresh else compiled.transform
                try:
                    fast = transform(doc, ctx, legacy)
                except (Bail, Exception):
                    bailed += 1
                    continue
                assert not isinstance(ref, Rejected), (loader.name, legacy, ref.problems)
                expected = {t: [[new_id(v.table, v.legacy_id) if fresh and isinstance(v, LegacyRef) and v.table in own
                                 else v for v in row] for row in rows] for t, rows in ref.rows.items()}
                assert fast.rows == expected, (loader.name, legacy)
                assert [(d.table, d.column, d.row, d.ref) for d in fast.deferred] == \
                       [(d.table, d.column, d.row, d.ref) for d in ref.deferred]
                checked += 1
    assert checked > 1000 and bailed > 10


@pytest.mark.unit
def test_compiled_checksums_equal_reference(world):
    for loader, raws in _sources(world):
        compiled = compile_canon(loader)
        source = _ListSource(loader.collection, raws)
        ctx = prepare_context(loader, source)
        n = len(loader.tables)
        for raw in raws:
            doc = bson.decode(raw, DECODE_OPTIONS)
            try:
                expected = [[hash60(r.text) for r in source_rows(loader, t, doc, ctx)] for t in loader.tables]
            except Exception:
                continue  # the reference itself cannot render this document (it is quarantined)
            counts, totals = [0] * n, [0] * n
            compiled.add(raw, ctx, counts, totals)
            assert counts == [len(e) for e in expected], (loader.name, doc["_id"])
            assert totals == [sum(e) for e in expected], (loader.name, doc["_id"])


class _ListSource:
    """Documents in memory, for the collection-level context (no server needed)."""

    ids_unique = True

    def __init__(self, collection, raws):
        self.collection, self.raws = collection, raws

    def iter_batches(self, collection, **_):
        if collection == self.collection:
            yield RawBatch(list(self.raws), None)


# --- in PostgreSQL ---------------------------------------------------------------------

def _table_state(conn, loader) -> dict:
    out = {}
    for t in loader.tables:
        out[t.table] = sorted(conn.execute(f"SELECT * FROM public.{t.table}").fetchall(), key=repr)  # a total order
    out["quarantine"] = conn.execute(
        "SELECT loader, legacy_id, raw_sha256, reason_code, reason, reasons, raw_json FROM migration.quarantine "
        "WHERE loader = %s ORDER BY legacy_id, raw_sha256", [loader.name]).fetchall()
    out["id_map"] = conn.execute("SELECT entity, legacy_id, new_id FROM public.id_map WHERE entity = ANY(%s) ORDER BY 1, 2",
                                 [list(loader.table_names)]).fetchall()
    out["deferred"] = conn.execute("SELECT * FROM migration.deferred_refs WHERE target_table = ANY(%s) ORDER BY 1, 2, 3",
                                   [list(loader.table_names)]).fetchall()
    return out


@pytest.mark.integration
def test_compiled_load_equals_reference_load_in_postgres(world, make_target_db, tmp_path, monkeypatch):
    """The whole sample world plus the awkward documents (and a duplicate _id and an invalid
    BSON document), loaded once by the reference transform and once by the compiled one:
    every table, the quarantine, id_map and pending references are identical, and so are
    both sides' checksums with the compiled and the reference source-side code, and with the
    source side each load kept of what it read (``verify/load_digests.py``)."""
    monkeypatch.setattr(checksums, "PARALLEL_MIN_DOCS", 0)
    monkeypatch.setattr(load_digests, "SIDE_PROCESS_MIN_DOCS", 0)  # the load's digests in a side process
    extra = awkward(world)
    docs = {c: list(v) + extra.get(c, []) for c, v in world.docs.items()}
    dup = dict(world.docs["purchaserequests"][3])
    bad_utf8 = bson.encode({"_id": ObjectId(), "title": "AB"}).replace(b"AB", b"\xff\xfe")
    raw = {"purchaserequests": [bson.encode(dup), bad_utf8, b"\x10\x00\x00\x00\x02_id\x00\x02\x00\x00\x00\xff\x00\x00"]}
    write_dump(tmp_path, "marketplace", docs, raw=raw)
    source = DumpSource(tmp_path, "marketplace")
    states = {}
    digests = {}
    for compiled in (False, True):
        url = make_target_db()
        with tg.connect(url, ["127.0.0.1"]) as conn:
            for loader in all_loaders():
                report = run_loader(loader, source, conn, LoadOptions(batch_size=97, compiled=compiled,
                                                                      run_id="load", digests=LoadDigests))
                assert report.docs_read == source.count(loader.collection)
            for loader in all_loaders():
                for remap in loader.remaps:
                    apply_remap(loader, remap, source, conn, run_id="t")
            states[compiled] = {l.name: _table_state(conn, l) for l in all_loaders()}
            # reference checksums, fast ones in this process, fast ones over two processes
            for fast_checksums, workers in ((False, 1), (True, 1), (True, 2)):
                # two processes: on the biggest collections (a pool per loader costs ~1 s)
                for loader in all_loaders() if workers == 1 else [l for l in all_loaders()
                                                                  if l.collection in ("purchaserequests", "selleroffers")]:
                    v = verify_loader(loader, source, conn, compiled=fast_checksums, workers=workers)
                    digests[(compiled, fast_checksums, workers, loader.name)] = {
                        t: (tv.source.hexdigest, tv.target.hexdigest, tv.quarantined_rows,
                            {k: d.hexdigest for k, d in tv.source_buckets.items()})
                        for t, tv in v.tables.items()}
                    assert v.ok, (compiled, fast_checksums, loader.name)
                    if workers == 1 and fast_checksums:
                        # the load's own digests of what it read: the same source side
                        kept = verify_loader(loader, source, conn, loaded_by="load")
                        assert not kept.read_source and v.read_source, loader.name
                        assert kept.ok, (compiled, loader.name)
                        assert source_side(kept) == source_side(v), (compiled, loader.name)
    reference = states[False]
    for name in reference:
        assert states[True][name] == reference[name], name
    codes = {q[3] for q in states[True]["purchase_requests"]["quarantine"]}
    # Refused by PostgreSQL in a fresh COPY batch: the load fell back to merge + bisection.
    assert {"constraint_violation", "duplicate_id", "invalid_bson", "invalid_id", "missing_reference"} <= codes, codes
    assert sum(1 for k in digests if k[2] == 2) == 4  # the two-process path ran
    for key, value in digests.items():
        assert value == digests[(False, False, 1, key[-1])], key
