"""The one batch step: a row PostgreSQL refuses during a COPY isolates exactly its document;
a row someone else wrote meanwhile (the application's dual write) is merged, never refused."""

from __future__ import annotations

import bson
import pytest
from bson import ObjectId

from migration_assets.load.batch import BatchStep
from migration_assets.load.report import LoadReport
from migration_assets.specs.ids import new_id
from migration_assets.specs.registry import loader_for_table

pytestmark = pytest.mark.integration

USERS = loader_for_table("users")


def user(n: int, **over) -> bytes:
    import datetime as dt

    doc = {"_id": ObjectId(), "email": f"u{n}@example.com", "createdAt": dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)}
    return bson.encode({**doc, **over})


def test_a_refused_copy_row_rejects_only_its_document(target_conn):
    raws = [user(i) for i in range(10)]
    raws[6] = user(6, email="u2@example.com")  # the unique email index refuses the later one
    report = LoadReport("users")
    step = BatchStep(USERS, target_conn, {}, report, run_id="t", fresh=True)
    outcome = step.run(raws, position="1")
    assert [r.legacy_id for r in outcome.rejected] == [bson.decode(raws[6])["_id"].binary.hex()]
    assert outcome.rejected[0].problems[0]["code"] == "constraint_violation"
    assert target_conn.execute("SELECT count(*) FROM users").fetchone()[0] == 9
    assert report.rows_changed["users"] == 9  # the other nine went in by COPY after the refused one left


def test_a_row_written_meanwhile_by_the_application_is_merged(target_conn):
    raws = [user(i) for i in range(5)]
    doc = bson.decode(raws[3])
    legacy = str(doc["_id"])
    # The application dual-wrote this user after the load decided the table was empty.
    target_conn.execute("INSERT INTO users (id, legacy_object_id, email, role, points, level, is_verified, created_at) "
                        "VALUES (%s, %s, 'old@example.com', 'user', 0, 1, false, now())",
                        [new_id("users", legacy), legacy])
    step = BatchStep(USERS, target_conn, {}, LoadReport("users"), run_id="t", fresh=True)
    outcome = step.run(raws, position="1")
    assert outcome.rejected == [] and len(outcome.loaded) == 5
    assert target_conn.execute("SELECT email FROM users WHERE legacy_object_id = %s", [legacy]).fetchone()[0] == \
        "u3@example.com"


# --- pending deferred references in a fresh load -------------------------------------------

CATEGORIES = loader_for_table("categories")


def category(oid: ObjectId, parent: ObjectId | None = None) -> bytes:
    import datetime as dt

    doc = {"_id": oid, "name": f"c{oid}", "slug": f"c-{oid}", "createdAt": dt.datetime(2024, 1, 1)}
    return bson.encode({**doc, **({"parent": parent} if parent else {})})


def pending(conn) -> list[tuple[str, str]]:
    return sorted(conn.execute("SELECT source_legacy_id, ref_legacy_id FROM migration.deferred_refs "
                               "WHERE target_table = 'categories'").fetchall())


def test_a_fresh_load_with_nothing_pending_records_its_references_without_clearing(target_conn):
    a, b, c = ObjectId(), ObjectId(), ObjectId()
    step = BatchStep(CATEGORIES, target_conn, {}, LoadReport("categories"), run_id="t", fresh=True)
    assert step.clears_deferred is False
    step.run([category(a, parent=c), category(b)], position="1")
    step.run([category(c, parent=b)], position="2")
    assert pending(target_conn) == sorted([(str(a), str(c)), (str(c), str(b))])


def test_a_fresh_load_clears_what_an_earlier_generation_left_pending(target_conn):
    """Empty tables, but an entry left by an earlier load (its rows since removed) for a
    document that no longer has a parent: the fresh load must drop it, or the remap would
    give the category the parent it lost."""
    from migration_assets.target.bookkeeping import apply_deferred, upsert_deferred

    child, parent = ObjectId(), ObjectId()
    upsert_deferred(target_conn, [("categories", "parent_id", new_id("categories", str(child)), str(child),
                                   "categories", str(parent))])
    step = BatchStep(CATEGORIES, target_conn, {}, LoadReport("categories"), run_id="t", fresh=True)
    assert step.clears_deferred is True
    step.run([category(parent), category(child)], position="1")
    assert pending(target_conn) == []
    apply_deferred(target_conn, "categories", "parent_id", "categories")
    assert target_conn.execute("SELECT parent_id FROM categories WHERE legacy_object_id = %s",
                               [str(child)]).fetchone()[0] is None
