"""Integrity and business invariants: green on a clean load; each one fails on the tampering
it guards against, naming the exact legacy ids (and the typed reason)."""

from __future__ import annotations

import uuid

import pytest
from bson import ObjectId

from migration_assets.load.remap import apply_remap
from migration_assets.load.report import LoadOptions
from migration_assets.load.run import run_loader
from migration_assets.source.dump import DumpSource
from migration_assets.source.live import LiveSource
from migration_assets.specs.registry import all_loaders, loader_for_table
from migration_assets.verify.invariants import integrity as inv
from migration_assets.verify.invariants.rules import business_rule, declared_rules

pytestmark = pytest.mark.integration


def load_everything(source, conn) -> None:
    for loader in all_loaders():
        run_loader(loader, source, conn, LoadOptions(run_id="test"))
    for loader in all_loaders():  # remaps once their targets are loaded
        for remap in loader.remaps:
            apply_remap(loader, remap, source, conn, run_id="test")


@pytest.fixture
def loaded(target_conn, dump_dir):
    source = DumpSource(dump_dir, "marketplace")
    load_everything(source, target_conn)
    return source, target_conn


def pg_only_results(conn):
    for loader in all_loaders():
        for t in loader.tables:
            yield inv.orphan_references(conn, t)
            yield inv.enum_values(conn, t)
    for table, rule in declared_rules():
        yield business_rule(conn, rule, table)


def test_clean_load_satisfies_every_invariant(loaded):
    source, conn = loaded
    failing = [(r.name, r.table, r.reasons) for r in pg_only_results(conn) if not r.passed]
    assert failing == []
    for loader in all_loaders():
        r = inv.dangling_source_references(loader, source, conn)
        assert r.passed, (loader.name, r.reasons, r.violations[:5])
    counted = inv.dangling_source_references(loader_for_table("seller_offers"), source, conn)
    assert counted.measures["references_checked"] > 0


def test_orphan_reference_is_named(loaded):
    _, conn = loaded
    offer = conn.execute("SELECT legacy_object_id FROM seller_offers ORDER BY 1 LIMIT 1").fetchone()[0]
    ghost = uuid.uuid4()
    with conn.transaction():
        conn.execute("SET LOCAL session_replication_role = replica")  # FK triggers off for this tampering only
        conn.execute("UPDATE seller_offers SET seller_id = %s WHERE legacy_object_id = %s", [ghost, offer])
    r = inv.orphan_references(conn, loader_for_table("seller_offers").root)
    assert not r.passed and r.reasons == {"orphan_reference": 1}
    assert r.subjects == [offer]
    assert f"seller_id -> users {ghost}" in r.violations[0].detail
    assert r.measures["orphans_seller_id"] == 1 and r.measures["orphans_purchase_request_id"] == 0


def test_child_table_orphan_is_named_by_its_document(loaded):
    _, conn = loaded
    doc, position = conn.execute(
        "SELECT p.legacy_object_id, s.position FROM purchase_request_specifications s "
        "JOIN purchase_requests p ON p.id = s.purchase_request_id ORDER BY 1, 2 LIMIT 1").fetchone()
    user = conn.execute("SELECT p.legacy_object_id FROM purchase_request_preferred_sellers s "
                        "JOIN purchase_requests p ON p.id = s.purchase_request_id ORDER BY 1 LIMIT 1").fetchone()[0]
    with conn.transaction():
        conn.execute("SET LOCAL session_replication_role = replica")
        conn.execute("UPDATE purchase_request_preferred_sellers s SET seller_id = gen_random_uuid() "
                      "FROM purchase_requests p WHERE p.id = s.purchase_request_id AND p.legacy_object_id = %s", [user])
    table = loader_for_table("purchase_requests").table("purchase_request_preferred_sellers")
    r = inv.orphan_references(conn, table)
    assert not r.passed and all(s.startswith(user + " ") for s in r.subjects)
    assert doc  # the other child table is untouched
    assert inv.orphan_references(conn, loader_for_table("purchase_requests").table("purchase_request_specifications")).passed


def test_dangling_mongo_references_are_surfaced_per_reference(live_source_db, mongo_client, stack_env, target_conn):
    db = mongo_client[live_source_db]
    template = db["selleroffers"].find_one(sort=[("_id", 1)])
    nobody, no_request = ObjectId(), ObjectId()
    bad = dict(template, _id=ObjectId(), seller=nobody, purchaseRequest=no_request)
    db["selleroffers"].insert_one(bad)
    source = LiveSource(stack_env["MONGODB_URI"], live_source_db)
    load_everything(source, target_conn)
    loader = loader_for_table("seller_offers")
    # The loader refused the document as missing_reference ...
    (code,) = target_conn.execute("SELECT reason_code FROM migration.quarantine WHERE legacy_id = %s",
                                  [str(bad["_id"])]).fetchone()
    assert code == "missing_reference"
    # ... and the check lists each reference of it, as a warning (it is quarantined).
    r = inv.dangling_source_references(loader, source, target_conn)
    assert r.reasons == {"dangling_reference": 2} and r.errors == 0 and r.warned == 2
    details = sorted(v.detail for v in r.violations)
    assert all(v.subject == str(bad["_id"]) for v in r.violations)
    assert any(f"users {nobody}" in d and "absent from Mongo users" in d for d in details)
    assert any(f"purchase_requests {no_request}" in d for d in details)
    # A dangling reference whose document is not quarantined is an error (a silent drop).
    target_conn.execute("DELETE FROM migration.quarantine WHERE legacy_id = %s", [str(bad["_id"])])
    r = inv.dangling_source_references(loader, source, target_conn)
    assert r.reasons == {"dangling_reference_not_quarantined": 2} and r.errors == 2


def test_business_rules_fail_naming_legacy_ids(loaded):
    _, conn = loaded
    rules = {r.name: (t, r) for t, r in declared_rules()}
    # Two primary addresses for one user (the guard index dropped first, as a broken schema would).
    user, a1, a2 = conn.execute(
        "SELECT u.legacy_object_id, min(a.legacy_object_id), max(a.legacy_object_id) FROM addresses a "
        "JOIN users u ON u.id = a.user_id GROUP BY 1 HAVING count(*) > 1 ORDER BY 1 LIMIT 1").fetchone()
    conn.execute("DROP INDEX addresses_one_primary_per_user_uq")
    conn.execute("UPDATE addresses SET is_primary = true WHERE legacy_object_id IN (%s, %s)", [a1, a2])
    r = business_rule(conn, *reversed(rules["one_primary_address_per_user"]))
    assert r.reasons == {"several_primary_addresses": 1, "guard_index_missing": 1}
    assert r.violations[0].subject == user and a1 in r.violations[0].detail and a2 in r.violations[0].detail

    # Two active categories whose names differ only by case and spaces.
    c1, c2 = [x[0] for x in conn.execute(
        "SELECT legacy_object_id FROM categories WHERE lower(btrim(name)) = 'electronics' ORDER BY 1 LIMIT 2").fetchall()]
    conn.execute("DROP INDEX categories_active_name_norm_uq")
    conn.execute("UPDATE categories SET is_active = true WHERE legacy_object_id IN (%s, %s)", [c1, c2])
    r = business_rule(conn, *reversed(rules["active_category_names_unique"]))
    assert r.reasons["duplicate_active_name"] == 1
    assert c1 in r.violations[0].subject and c2 in r.violations[0].subject

    # A selected offer that belongs to another request.
    pr, other_offer = conn.execute(
        "SELECT p.legacy_object_id, o.legacy_object_id FROM purchase_requests p JOIN seller_offers o "
        "ON o.purchase_request_id <> p.id WHERE p.selected_offer_id IS NOT NULL ORDER BY 1, 2 LIMIT 1").fetchone()
    conn.execute("UPDATE purchase_requests SET selected_offer_id = (SELECT id FROM seller_offers WHERE legacy_object_id = %s) "
                 "WHERE legacy_object_id = %s", [other_offer, pr])
    r = business_rule(conn, *reversed(rules["selected_offer_belongs_to_request"]))
    assert r.reasons == {"offer_of_another_request": 1} and r.subjects == [pr]
    assert other_offer in r.violations[0].detail


def test_enum_values_fail_on_a_value_the_spec_does_not_know(loaded):
    _, conn = loaded
    offer = conn.execute("SELECT legacy_object_id FROM seller_offers ORDER BY 1 LIMIT 1").fetchone()[0]
    table = loader_for_table("seller_offers").root
    assert inv.enum_values(conn, table).passed
    conn.execute("ALTER TYPE seller_offer_status ADD VALUE 'expired'")
    conn.execute("UPDATE seller_offers SET status = 'expired' WHERE legacy_object_id = %s", [offer])
    r = inv.enum_values(conn, table)
    assert r.reasons == {"type_labels_differ": 1, "invalid_enum_value": 1}
    bad = [v for v in r.violations if v.reason == "invalid_enum_value"][0]
    assert bad.subject == offer and "status = 'expired'" in bad.detail
