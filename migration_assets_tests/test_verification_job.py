"""The verification job runs every check and loads nothing; tampering with PostgreSQL (a
changed value, a deleted row, an extra row, a ledger entry deleted with its trigger disabled)
and with Mongo (an added and a modified document) makes the checks fail naming the exact
legacy ids and columns; the dual-write gap sensor's re-sync makes them pass again."""

from __future__ import annotations

import dagster as dg
import pytest
from bson import ObjectId

from migration_assets.defs.sensors import dualwrite_gap_sensor
from migration_assets.factory.resources import PostgresTargetResource
from migration_assets.specs.registry import all_loaders
from migration_assets_tests.helpers import check_evaluations, failed_checks, meta_value, run_job, table_rows

pytestmark = pytest.mark.integration


def snapshot(conn) -> dict:
    return {t: table_rows(conn, t) for l in all_loaders() for t in l.table_names}


def test_verify_all_runs_every_check_and_loads_nothing(migrated, definitions):
    before = snapshot(migrated)
    result = run_job(definitions, "verify_all")
    assert result.success, failed_checks(result)
    assert result.get_asset_materialization_events() == []
    evaluated = {(e.asset_key, e.check_name) for e in result.get_asset_check_evaluations()}
    every = {(k.asset_key, k.name) for k in definitions.resolve_asset_graph().asset_check_keys}
    assert evaluated == every
    assert {"ledger_append_only", "no_orphan_references", "source_references_resolve", "checksum_parity",
            "one_primary_address_per_user", "selected_offer_belongs_to_request"} <= {n for _, n in evaluated}
    assert snapshot(migrated) == before
    schedule = definitions.resolve_schedule_def("hourly_verification")
    assert schedule.job_name == "verify_all" and schedule.cron_schedule == "0 * * * *"
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING


def md(evaluation) -> str:
    return meta_value(evaluation, "differing_rows")


def test_tampering_fails_by_name_and_gap_resync_restores(migrated, definitions, live_source_db, mongo_client,
                                                         stack_env, target_url):
    conn = migrated
    # PostgreSQL: a changed value, a deleted (child) row, an extra row.
    offer = conn.execute("SELECT legacy_object_id FROM seller_offers ORDER BY 1 OFFSET 3 LIMIT 1").fetchone()[0]
    conn.execute("UPDATE seller_offers SET message = 'tampered' WHERE legacy_object_id = %s", [offer])
    request, position = conn.execute(
        "SELECT p.legacy_object_id, s.position FROM purchase_request_specifications s "
        "JOIN purchase_requests p ON p.id = s.purchase_request_id ORDER BY 1 LIMIT 1").fetchone()
    conn.execute("DELETE FROM purchase_request_specifications s USING purchase_requests p "
                 "WHERE p.id = s.purchase_request_id AND p.legacy_object_id = %s AND s.position = %s", [request, position])
    ghost = str(ObjectId())
    conn.execute("INSERT INTO seller_offers (id, legacy_object_id, purchase_request_id, seller_id, price, currency, "
                 "status, created_at) SELECT gen_random_uuid(), %s, purchase_request_id, seller_id, price, currency, "
                 "status, created_at FROM seller_offers WHERE legacy_object_id = %s", [ghost, offer])
    # The ledger, with its guard disabled for the test: an escrow release entry deleted.
    payment, entry = conn.execute(
        "SELECT p.legacy_object_id, f.legacy_object_id FROM funds_ledger_entries f JOIN payments p ON p.id = f.payment_id "
        "WHERE p.status = 'released' AND f.account = 'seller_wallet' ORDER BY 1 LIMIT 1").fetchone()
    conn.execute("ALTER TABLE funds_ledger_entries DISABLE TRIGGER USER")
    conn.execute("DELETE FROM funds_ledger_entries WHERE legacy_object_id = %s", [entry])
    conn.execute("ALTER TABLE funds_ledger_entries ENABLE TRIGGER USER")
    # Mongo: an added and a modified document.
    db = mongo_client[live_source_db]
    added = dict(db["selleroffers"].find_one({"_id": ObjectId(offer)}), _id=ObjectId(), message="added in Mongo")
    db["selleroffers"].insert_one(added)
    user = db["users"].find_one({"role": "seller"}, sort=[("_id", 1)])
    db["users"].update_one({"_id": user["_id"]}, {"$set": {"displayName": "Modified in Mongo"}})

    result = run_job(definitions, "verify_all")
    assert not result.success  # nothing loads, but the failed checks fail the run
    assert result.get_asset_materialization_events() == []
    ev = check_evaluations(result)
    offers = ev[("public/seller_offers", "checksum_parity")]
    assert not offers.passed and offers.severity == dg.AssetCheckSeverity.ERROR
    assert (meta_value(offers, "rows_changed"), meta_value(offers, "rows_extra_in_postgres"),
            meta_value(offers, "rows_missing_in_postgres")) == (1, 1, 1)
    assert f"| {offer} |  | changed | message |" in md(offers)
    assert f"| {ghost} |  | extra in PostgreSQL |" in md(offers)
    assert f"| {added['_id']} |  | missing in PostgreSQL |" in md(offers)
    specs = ev[("public/purchase_request_specifications", "checksum_parity")]
    assert f"| {request} | position={position} | missing in PostgreSQL |" in md(specs)
    assert meta_value(ev[("public/purchase_request_specifications", "row_count_parity")], "diff") == -1
    users = ev[("public/users", "checksum_parity")]
    assert f"| {user['_id']} |  | changed | display_name |" in md(users)
    ledger = ev[("public/funds_ledger_entries", "checksum_parity")]
    assert f"| {entry} |  | missing in PostgreSQL |" in md(ledger)
    sums = ev[("public/funds_ledger_entries", "ledger_payment_sums")]
    assert not sums.passed and payment in meta_value(sums, "violating_rows")
    assert meta_value(sums, "failure_reasons") == {"unbalanced_payment": 1, "release_differs_from_amount": 1,
                                                   "ledger_unbalanced": 1}
    append_only = ev[("public/funds_ledger_entries", "ledger_append_only")]
    assert meta_value(append_only, "failure_reasons") == {"entry_deleted": 1}
    assert entry in meta_value(append_only, "violating_rows")
    assert not ev[("public/funds_ledger_entries", "ledger_balances_match_source")].passed
    assert ev[("public/funds_ledger_entries", "ledger_immutable")].passed  # the guard is back on
    failing = set(failed_checks(result))

    # The application's dual-write path recorded a gap for each of these rows.
    for entity, legacy, op in [("seller_offers", offer, "update"), ("seller_offers", ghost, "delete"),
                               ("seller_offers", str(added["_id"]), "insert"), ("users", str(user["_id"]), "update"),
                               ("purchase_requests", request, "update"), ("funds_ledger_entries", entry, "insert")]:
        conn.execute("INSERT INTO pg_dualwrite_gaps (entity, legacy_id, operation) VALUES (%s, %s, %s)",
                     [entity, legacy, op])
    with dg.instance_for_test() as instance:
        ctx = dg.build_sensor_context(
            instance=instance, sensor_name=dualwrite_gap_sensor.name,
            resources={"postgres": PostgresTargetResource(url=target_url, allowed_hosts="127.0.0.1")})
        (req,) = dualwrite_gap_sensor(ctx).run_requests
        run = definitions.resolve_job_def("resync_rows").execute_in_process(
            run_config=req.run_config, instance=instance, raise_on_error=False,
            tags={**req.tags, "dagster/run_key": req.run_key})
        assert run.success
    assert conn.execute("SELECT count(*) FROM pg_dualwrite_gaps WHERE resolved_at IS NULL").fetchone()[0] == 0

    again = run_job(definitions, "verify_all")
    assert again.success, failed_checks(again)
    ev = check_evaluations(again)
    assert all(ev[tuple(k.split(":"))].passed for k in failing)
