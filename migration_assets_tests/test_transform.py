"""Pure unit tests of the document -> rows engine on the marketplace specs."""

from __future__ import annotations

import datetime as dt

import pytest
from bson import Decimal128, ObjectId

from migration_assets.specs.kinds import LegacyRef
from migration_assets.specs.registry import loader_for_table
from migration_assets.tables.marketplace.categories import find_demoted
from migration_assets.transform.reference import transform_document

pytestmark = pytest.mark.unit

NOW = dt.datetime(2025, 1, 2, 3, 4, 5, 678000, tzinfo=dt.timezone.utc)


def pr_doc(**over):
    doc = {
        "_id": ObjectId("64b000000000000000000001"),
        "buyer": ObjectId("64a000000000000000000001"),
        "category": ObjectId("64a000000000000000000002"),
        "title": "Phone",
        "status": "paid",
        "budget": {"amount": Decimal128("100.50"), "currency": "TRY"},
        "selectedOfferId": ObjectId("64c000000000000000000001"),
        "deliveryInfo": {"method": "shipping", "address": {"line1": "1 Main", "city": "Izmir", "country": "TR"}},
        "specifications": [{"key": "color", "value": "red"}, {"key": "size", "value": "L"}],
        "preferredSellers": [ObjectId("64a000000000000000000003")],
        "createdAt": NOW,
    }
    doc.update(over)
    return doc


def test_purchase_request_aggregate_becomes_rows():
    loader = loader_for_table("purchase_requests")
    doc = pr_doc()
    res = transform_document(loader, doc, {}, str(doc["_id"]))
    assert res.ok, res.problems
    counts = {t: len(rows) for t, rows in res.rows.items()}
    assert counts == {
        "purchase_requests": 1, "purchase_request_delivery_info": 1, "purchase_request_delivery_address": 1,
        "purchase_request_seller_delivery_info": 0, "purchase_request_service_info": 0,
        "purchase_request_specifications": 2, "purchase_request_preferred_sellers": 1, "delivery_attempts": 0,
    }
    root = dict(zip(loader.root.column_names, res.rows["purchase_requests"][0]))
    assert root["buyer_id"] == LegacyRef("users", "64a000000000000000000001")
    assert root["quantity"] == 1  # older documents have no quantity: the default applies
    assert root["selected_offer_id"] is None  # deferred: written by the remap
    assert [(d.column, d.ref.legacy_id) for d in res.deferred] == [("selected_offer_id", "64c000000000000000000001")]
    spec_rows = res.rows["purchase_request_specifications"]
    assert [r[1:] for r in spec_rows] == [[0, "color", "red"], [1, "size", "L"]]


def test_every_problem_of_a_document_is_reported_together():
    loader = loader_for_table("purchase_requests")
    doc = pr_doc(status="lost", title=None, budget={"amount": "12", "currency": "TRY"},
                 specifications=[{"key": "color"}])
    res = transform_document(loader, doc, {}, str(doc["_id"]))
    codes = sorted((p.code, p.field) for p in res.problems)
    assert codes == [
        ("missing_required", "specifications[0].value"),
        ("missing_required", "title"),
        ("unknown_enum", "status"),
        ("wrong_type", "budget.amount"),
    ]


def test_category_duplicates_by_case_and_spaces_are_demoted_oldest_first():
    docs = [
        {"_id": ObjectId("64a000000000000000000010"), "name": "Books", "isActive": True, "createdAt": NOW},
        {"_id": ObjectId("64a000000000000000000011"), "name": " books ", "isActive": True, "createdAt": NOW + dt.timedelta(days=1)},
        {"_id": ObjectId("64a000000000000000000012"), "name": "BOOKS", "isActive": False, "createdAt": NOW - dt.timedelta(days=1)},
        {"_id": ObjectId("64a000000000000000000013"), "name": "Toys", "createdAt": NOW},
    ]
    assert find_demoted(docs)["demoted"] == {"64a000000000000000000011": "64a000000000000000000010"}


def test_duplicate_keys_inside_one_document_are_named():
    loader = loader_for_table("purchase_requests")
    seller = ObjectId("64a000000000000000000003")
    twice_seller = transform_document(loader, pr_doc(preferredSellers=[seller, seller]), {}, "x")
    assert [(p.code, p.field) for p in twice_seller.problems] == [("duplicate_key", "preferredSellers")]
    assert str(seller) in twice_seller.problems[0].message
    twice_key = transform_document(loader, pr_doc(specifications=[{"key": "c", "value": "1"}, {"key": "c", "value": "2"}]), {}, "x")
    assert [(p.code, p.field) for p in twice_key.problems] == [("duplicate_key", "specifications")]
