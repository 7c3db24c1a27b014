"""Ledger safety: the platform never issues UPDATE or DELETE against
``funds_ledger_entries``, and a rerun inserts only the entries that are missing.

Measured by PostgreSQL itself (``pg_stat_user_tables`` n_tup_upd / n_tup_del / n_tup_ins
and each row's ``xmin``), across a first load and a full rerun after the source changed:
one entry edited, one deleted, one added.
"""

from __future__ import annotations

import time

import dagster as dg
import pytest
from bson import Decimal128, ObjectId

from migration_assets.factory.assets import build_loader_asset
from migration_assets.factory.resources import MongoSourceResource, PostgresTargetResource
from migration_assets.specs.registry import ancestors, loader_for_table
from migration_assets_tests.helpers import check_evaluations, meta_value

pytestmark = pytest.mark.integration

LEDGER = loader_for_table("funds_ledger_entries")
CHAIN = [*ancestors(LEDGER), LEDGER]


def ledger_stats(conn) -> dict[str, int]:
    row = conn.execute("SELECT n_tup_ins, n_tup_upd, n_tup_del, n_tup_hot_upd FROM pg_stat_user_tables "
                       "WHERE relid = 'public.funds_ledger_entries'::regclass").fetchone()
    return dict(zip(("ins", "upd", "del", "hot_upd"), row))


def settled_stats(conn, expected_ins: int) -> dict[str, int]:
    """Backends report their counters when they end; wait for the inserts to show up."""
    deadline = time.monotonic() + 20
    while True:
        stats = ledger_stats(conn)
        if stats["ins"] >= expected_ins or time.monotonic() > deadline:
            time.sleep(1.5)  # and a little longer, so a late UPDATE/DELETE would show too
            return ledger_stats(conn)
        time.sleep(0.2)


def resources(stack_env, database, target_url):
    return {"mongo": MongoSourceResource(uri=stack_env["MONGODB_URI"], database=database),
            "postgres": PostgresTargetResource(url=target_url, allowed_hosts="127.0.0.1")}


def materialize(stack_env, database, target_url, *, checks_pass: bool = True):
    result = dg.materialize([build_loader_asset(l) for l in CHAIN],
                            resources=resources(stack_env, database, target_url), raise_on_error=False)
    failures = [f.step_failure_data.error.to_string() for f in result.get_step_failure_events()]
    if checks_pass:
        assert result.success, failures
    else:  # the loads succeed; only the blocking checks fail (and fail the check step)
        assert failures and all("DagsterAssetCheckFailedError" in f for f in failures), failures
    return result


def probes(*results) -> int:
    """Rows the immutability check inserted in a transaction it rolled back (one per
    execution): PostgreSQL counts them as inserts."""
    return sum(1 for r in results for k in check_evaluations(r) if k[1] == "ledger_immutable")


def test_ledger_rerun_inserts_only_missing_entries(stack_env, live_source_db, mongo_client, target_url, target_conn):
    first = materialize(stack_env, live_source_db, target_url)
    n0 = target_conn.execute("SELECT count(*) FROM funds_ledger_entries").fetchone()[0]
    coll = mongo_client[live_source_db]["fundsledgerentries"]
    assert n0 == coll.count_documents({}) > 100
    assert all(e.passed for e in check_evaluations(first).values())
    stats0 = settled_stats(target_conn, n0 + probes(first))
    assert stats0 == {"ins": n0 + probes(first), "upd": 0, "del": 0, "hot_upd": 0}
    before = {r[0]: r[1:] for r in target_conn.execute(
        "SELECT legacy_object_id, xmin::text, amount, description FROM funds_ledger_entries").fetchall()}

    # The source changes under the immutable ledger: an entry edited, one deleted, one added.
    edited, deleted, template = coll.find({}).sort("_id", 1).limit(3)
    coll.update_one({"_id": edited["_id"]}, {"$set": {"amount": Decimal128("999999.99"), "description": "rewritten"}})
    coll.delete_one({"_id": deleted["_id"]})
    added = {**template, "_id": ObjectId("7f000000aaaaaaaaaaaaaaaa")}
    coll.insert_one(added)

    # A dry run over the changed source reports the conflict a real run would meet, writing nothing.
    dry = dg.materialize([build_loader_asset(LEDGER)], resources=resources(stack_env, live_source_db, target_url),
                         run_config={"ops": {"load_funds_ledger_entries": {"config": {"dry_run": True}}}})
    observed = next(e.event_specific_data.asset_observation.metadata for e in dry.all_events
                    if e.event_type_value == "ASSET_OBSERVATION")
    assert observed["immutable_conflicts"].value == 1
    assert settled_stats(target_conn, n0 + probes(first)) == stats0

    second = materialize(stack_env, live_source_db, target_url, checks_pass=False)
    stats1 = settled_stats(target_conn, n0 + 1 + probes(first, second))
    # Exactly one INSERT (the new entry) besides the probes' rolled-back rows, no UPDATE, no DELETE, ever.
    assert stats1 == {"ins": n0 + 1 + probes(first, second), "upd": 0, "del": 0, "hot_upd": 0}
    after = {r[0]: r[1:] for r in target_conn.execute(
        "SELECT legacy_object_id, xmin::text, amount, description FROM funds_ledger_entries").fetchall()}
    assert set(after) == set(before) | {str(added["_id"])}
    # Every pre-existing row is the very same tuple (same xmin): nothing was rewritten, the
    # edited entry keeps its loaded amount and the deleted one is still there.
    assert {k: after[k] for k in before} == before

    meta = next(e.materialization.metadata for e in second.get_asset_materialization_events()
                if e.asset_key.to_user_string() == "public/funds_ledger_entries")
    assert meta["rows_inserted_or_changed"].value == 1
    assert meta["immutable_conflicts"].value == 1  # the edited entry, reported, not applied

    # The checks see the drift instead of a silent rewrite: the edited entry differs and the
    # deleted one is extra in PostgreSQL.
    evaluations = check_evaluations(second)
    checksum = evaluations[("public/funds_ledger_entries", "checksum_parity")]
    assert not checksum.passed
    assert str(edited["_id"]) in meta_value(checksum, "differing_rows")
    count = evaluations[("public/funds_ledger_entries", "row_count_parity")]
    assert not count.passed and meta_value(count, "diff") == 1
    print(f"\nledger: {n0} entries loaded; rerun after edit/delete/add: n_tup_ins +1, n_tup_upd 0, n_tup_del 0, "
          f"{len(before)} existing rows untouched (same xmin), 1 immutable conflict reported")
