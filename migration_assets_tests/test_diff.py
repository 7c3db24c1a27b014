"""The bisection diff: it names exactly the rows that differ (missing in PostgreSQL, extra in
PostgreSQL, changed with its columns), child tables included, from a live server and from a
mongodump directory, and reads a dump once per level rather than once per range."""

from __future__ import annotations

import datetime as dt

import pytest
from bson import ObjectId

from migration_assets.load.report import LoadOptions
from migration_assets.load.run import run_loader
from migration_assets.source.dump import DumpSource
from migration_assets.source.live import LiveSource
from migration_assets.specs.registry import all_loaders, loader_for_table
from migration_assets.verify import diff as bd
from migration_assets.verify.canonical import prefix_bounds
from migration_assets.verify.checksums import verify_loader
from migration_assets.verify.diff import diff_rows

# --- pure parts -----------------------------------------------------------------------------

@pytest.mark.unit
def test_object_id_bounds_cover_exactly_the_prefix():
    assert bd.object_id_bounds("65a3") == ("65a3" + "0" * 20, "65a4" + "0" * 20)
    assert bd.object_id_bounds("6f") == ("6f" + "0" * 22, "70" + "0" * 22)
    assert bd.object_id_bounds("ff") == ("ff" + "0" * 22, None)
    assert bd.object_id_bounds("zz") is None  # a PostgreSQL-only key: no ObjectId starts with it
    oid = "65a3" + "9" * 20
    lo, hi = bd.object_id_bounds("65a3")
    assert lo <= oid < hi


@pytest.mark.unit
def test_merged_ranges_hold_exactly_what_the_ranges_hold():
    import random

    from migration_assets.source.dump import merge_ranges

    rng = random.Random(3)
    keys = sorted(format(rng.getrandbits(96), "024x") for _ in range(2000))
    for _ in range(50):
        ranges = [bd.object_id_bounds(format(rng.getrandbits(12), "03x")[: rng.randint(1, 3)]) for _ in range(40)]
        ranges += [(None, keys[rng.randrange(2000)]), (keys[rng.randrange(2000)], None)][: rng.randint(0, 2)]
        merged = merge_ranges(ranges)
        assert all(a[1] is not None and a[1] < (b[0] or "") for a, b in zip(merged, merged[1:]))  # disjoint, sorted
        inside = lambda k, rs: any((lo is None or k >= lo) and (hi is None or k < hi) for lo, hi in rs)  # noqa: E731
        assert [k for k in keys if inside(k, ranges)] == [k for k in keys if inside(k, merged)]


@pytest.mark.unit
def test_prefix_bounds_in_code_point_order():
    lo, hi = prefix_bounds("6f")
    assert (lo, hi) == ("6f", "6g")
    assert lo <= "6fffffffffffffffffffffff" < hi and not (lo <= "70" < hi)
    assert prefix_bounds("\U0010ffff") == ("\U0010ffff", None)


@pytest.mark.unit
def test_row_labels_are_readable():
    spec = loader_for_table("purchase_request_specifications").table("purchase_request_specifications")
    assert bd.row_label(spec, "r65a3aaaaaaaaaaaaaaaaaaa/n2") == "position=2"
    assert bd.split_canonical("s3:a/b/n1") == ["s3:a/b", "n1"]
    assert bd.readable("z") == "null" and bd.readable("s5:hello") == "hello"


# --- against the real servers ----------------------------------------------------------------

def load_everything(source, conn) -> None:
    for loader in all_loaders():
        run_loader(loader, source, conn, LoadOptions(run_id="test"))


def tamper_postgres(conn) -> dict:
    """Change a value, a child row's value, delete a child row, insert an extra row."""
    offer = conn.execute("SELECT legacy_object_id FROM seller_offers ORDER BY legacy_object_id OFFSET 5 LIMIT 1").fetchone()[0]
    conn.execute("UPDATE seller_offers SET message = 'tampered', delivery_days = 99 WHERE legacy_object_id = %s", [offer])
    attempt_doc, attempt = conn.execute(
        "SELECT p.legacy_object_id, a.legacy_object_id FROM delivery_attempts a "
        "JOIN purchase_requests p ON p.id = a.purchase_request_id ORDER BY 2 LIMIT 1").fetchone()
    conn.execute("UPDATE delivery_attempts SET carrier = 'Tampered Express' WHERE legacy_object_id = %s", [attempt])
    spec_doc, position = conn.execute(
        "SELECT p.legacy_object_id, s.position FROM purchase_request_specifications s "
        "JOIN purchase_requests p ON p.id = s.purchase_request_id ORDER BY 1 DESC, 2 LIMIT 1").fetchone()
    conn.execute("DELETE FROM purchase_request_specifications s USING purchase_requests p "
                 "WHERE p.id = s.purchase_request_id AND p.legacy_object_id = %s AND s.position = %s", [spec_doc, position])
    ghost = str(ObjectId())
    conn.execute(
        "INSERT INTO seller_offers (id, legacy_object_id, purchase_request_id, seller_id, price, currency, status, created_at) "
        "SELECT gen_random_uuid(), %s, purchase_request_id, seller_id, price, currency, status, created_at "
        "FROM seller_offers WHERE legacy_object_id = %s", [ghost, offer])
    return {"offer": offer, "attempt_doc": attempt_doc, "attempt": attempt, "spec_doc": spec_doc,
            "position": position, "ghost": ghost}


def differences(result) -> set[tuple]:
    return {(t, d.kind, d.document, d.row, d.columns) for t, td in result.tables.items() for d in td.sample}


def expected_differences(t: dict) -> set[tuple]:
    return {
        ("seller_offers", "changed", t["offer"], "", ("delivery_days", "message")),
        ("seller_offers", "extra", t["ghost"], "", ()),
        ("delivery_attempts", "changed", t["attempt_doc"], f"legacy_object_id={t['attempt']}", ("carrier",)),
        ("purchase_request_specifications", "missing", t["spec_doc"], f"position={t['position']}", ()),
    }


def run_diffs(source, conn, documents: bool = False, **kw):
    out = {}
    for name in ("seller_offers", "purchase_requests"):
        loader = loader_for_table(name)
        v = verify_loader(loader, source, conn)
        if documents:  # as a catch-up pass after the source changed: every prefix's bytes differ
            first = verify_loader(loader, source, conn, reuse=(None, {}))
            saved = {p: (c + 1, s, *rest) for p, (c, s, *rest) in first.saved_buckets().items()}
            v = verify_loader(loader, source, conn, reuse=(first.fingerprint, saved), documents=True)
            assert v.document_digests and v.documents_known
        out[name] = bd.bisect_diff(loader, source, conn, verification=v, **kw)
    return out


def merged(results) -> set[tuple]:
    return set().union(*(differences(r) for r in results.values()))


@pytest.mark.integration
@pytest.mark.parametrize("mode", ["live", "dump"])
def test_bisection_names_exact_rows_and_columns(mode, request, target_conn, dump_dir, stack_env):
    if mode == "live":
        source = LiveSource(stack_env["MONGODB_URI"], request.getfixturevalue("live_source_db"))
    else:
        source = DumpSource(dump_dir, "marketplace")
    load_everything(source, target_conn)
    clean = run_diffs(source, target_conn)
    assert merged(clean) == set(), "a freshly loaded database has no differences"
    t = tamper_postgres(target_conn)
    results = run_diffs(source, target_conn)
    assert merged(results) == expected_differences(t)
    so = results["seller_offers"].tables["seller_offers"]
    assert (so.missing, so.extra, so.changed) == (0, 1, 1)
    # Same answer when forced down one character per level to single documents.
    deep = run_diffs(source, target_conn, leaf_rows=1, step=1)
    assert merged(deep) == expected_differences(t)
    assert deep["purchase_requests"].stats.levels > results["purchase_requests"].stats.levels
    # ... and when the differing ranges count as wide: straight to one digest per document.
    wide = run_diffs(source, target_conn, leaf_rows=1, step=1, wide_share=0.0)
    assert merged(wide) == expected_differences(t)
    assert wide["purchase_requests"].stats.levels == 2  # the documents' digests, then their rows
    assert deep["purchase_requests"].stats.levels > 2
    # ... and from the documents' digests the verification pass kept: nothing read again
    # until the rows of the differing documents are compared.
    kept = run_diffs(source, target_conn, documents=True, leaf_rows=1, step=1, wide_share=0.0)
    assert merged(kept) == expected_differences(t)
    assert kept["purchase_requests"].stats.docs_decoded < wide["purchase_requests"].stats.docs_decoded
    assert kept["purchase_requests"].stats.ranges_hashed_source == wide["purchase_requests"].stats.ranges_hashed_source
    # ... and the same as the full row-by-row comparison.
    full = diff_rows(loader_for_table("seller_offers"), "seller_offers", source, target_conn)
    assert [k.split("|")[0] for k in full.extra] == [t["ghost"]]
    assert [k.split("|")[0] for k, _ in full.changed] == [t["offer"]]
    # Only the differing ranges were re-read: a few documents, not the collection.
    total = len(list(d for b in source.iter_batches("purchaserequests") for d in b.docs))
    stats = results["purchase_requests"].stats
    assert 0 < stats.docs_decoded < total / 2
    assert stats.rows_fetched < 50


@pytest.mark.integration
def test_mongo_side_changes_are_named(live_source_db, mongo_client, stack_env, target_conn):
    source = LiveSource(stack_env["MONGODB_URI"], live_source_db)
    load_everything(source, target_conn)
    coll = mongo_client[live_source_db]["selleroffers"]
    changed = coll.find_one(sort=[("_id", 1)])
    coll.update_one({"_id": changed["_id"]}, {"$set": {"message": "edited in Mongo",
                                                        "updatedAt": dt.datetime.now(dt.timezone.utc)}})
    added = dict(changed, _id=ObjectId(), status="pending")
    coll.insert_one(added)
    loader = loader_for_table("seller_offers")
    result = bd.bisect_diff(loader, source, target_conn)
    assert differences(result) == {
        ("seller_offers", "changed", str(changed["_id"]), "", ("message", "updated_at")),
        ("seller_offers", "missing", str(added["_id"]), "", ()),
    }


class CountingDump(DumpSource):
    """A dump source that counts full passes over a collection's file."""

    passes = 0

    def iter_batches(self, collection, **kw):
        if not any(kw.get(k) for k in ("after", "lo", "hi")):
            type(self).passes += 1
        return super().iter_batches(collection, **kw)

    def iter_ranges(self, collection, ranges):
        type(self).passes += 1
        return super().iter_ranges(collection, ranges)


@pytest.mark.integration
def test_dump_is_read_once_per_level_not_per_range(target_conn, dump_dir):
    source = DumpSource(dump_dir, "marketplace")
    load_everything(source, target_conn)
    # Many scattered differences: every purchase request's title.
    target_conn.execute("UPDATE purchase_requests SET title = title || ' (edited)'")
    loader = loader_for_table("purchase_requests")
    counting = CountingDump(dump_dir, "marketplace")
    v = verify_loader(loader, counting, target_conn)
    CountingDump.passes = 0
    result = bd.bisect_diff(loader, counting, target_conn, verification=v, leaf_rows=2, step=1)
    pr = result.tables["purchase_requests"]
    assert pr.changed == target_conn.execute("SELECT count(*) FROM purchase_requests").fetchone()[0]
    assert result.stats.leaf_ranges > 10  # many ranges ...
    assert CountingDump.passes == result.stats.levels  # ... one pass over the file per level
