"""Integration: the marketplace core migrated through Dagster against the real local servers,
from the live Mongo source and from a mongodump directory."""

from __future__ import annotations

import dagster as dg
import pytest

from migration_assets.factory.assets import build_loader_asset, build_remap_asset
from migration_assets.factory.checks import loader_check_specs, remap_check_specs
from migration_assets.factory.resources import MongoSourceResource, PostgresTargetResource
from migration_assets.specs.registry import all_loaders, loader_for_table
from migration_assets_tests.helpers import check_evaluations, failed_checks, meta_value, run_job, table_rows

pytestmark = pytest.mark.integration

CORE = ("users", "categories", "request_templates", "purchase_requests", "seller_offers")


def expected_root_counts(world) -> dict[str, int]:
    return {l.root.table: len(world.docs[l.collection]) for l in all_loaders() if l.collection in world.docs}


@pytest.mark.parametrize("mode", ["live", "dump"])
def test_migrate_all_tables_green(mode, request, migration_env, definitions, target_conn, world, dump_dir):
    database = request.getfixturevalue("live_source_db") if mode == "live" else "marketplace"
    migration_env(mode=mode, database=database, dump=dump_dir)
    result = run_job(definitions, "migrate_all_tables")
    assert result.success, failed_checks(result)
    evaluations = check_evaluations(result)
    assert evaluations and not failed_checks(result)
    for table, n in expected_root_counts(world).items():
        assert target_conn.execute(f"SELECT count(*) FROM public.{table}").fetchone()[0] == n, table
    # The count check saw the same number through Mongo.
    users = evaluations[("public/users", "row_count_parity")]
    assert meta_value(users, "expected_rows") == len(world.docs["users"]) == meta_value(users, "actual_rows")


def test_dg_materialize_core_chain_with_explicit_resources(stack_env, live_source_db, target_url, target_conn, world):
    """dg.materialize over the core loaders + remap + checks, resources passed directly."""
    loaders = [loader_for_table(t) for t in CORE]
    assets = [build_loader_asset(l) for l in loaders]
    pr = loader_for_table("purchase_requests")
    assets.append(build_remap_asset(pr, pr.remaps[0]))
    resources = {
        "mongo": MongoSourceResource(uri=stack_env["MONGODB_URI"], database=live_source_db, mode="live"),
        "postgres": PostgresTargetResource(url=target_url, allowed_hosts="127.0.0.1"),
    }
    result = dg.materialize(assets, resources=resources, raise_on_error=False)
    assert result.success, failed_checks(result)
    # every check of every loader (computed in its load step) and of the remap
    expected = sum(len(loader_check_specs(l)) for l in loaders) + len(remap_check_specs(pr, pr.remaps[0]))
    assert len(result.get_asset_check_evaluations()) == expected
    selected = sum(1 for d in world.docs["purchaserequests"] if d.get("selectedOfferId"))
    assert target_conn.execute(
        "SELECT count(*) FROM purchase_requests WHERE selected_offer_id IS NOT NULL").fetchone()[0] == selected
    # The remap only ever points a request at one of its own offers.
    assert target_conn.execute(
        "SELECT count(*) FROM purchase_requests p JOIN seller_offers o ON o.id = p.selected_offer_id "
        "WHERE o.purchase_request_id <> p.id").fetchone()[0] == 0
    mats = {e.asset_key.to_user_string(): e.materialization.metadata
            for e in result.get_asset_materialization_events()}
    meta = mats["public/purchase_requests"]
    assert meta["dagster/row_count"].value == len(world.docs["purchaserequests"])
    assert "dagster/column_schema" in meta and "dagster/column_lineage" in meta


def test_rerun_is_idempotent_with_same_ids(migration_env, definitions, target_conn, dump_dir):
    migration_env(mode="dump", dump=dump_dir)
    assert run_job(definitions, "migrate_all_tables").success
    before = {t: table_rows(target_conn, t) for l in all_loaders() for t in l.table_names}
    second = run_job(definitions, "migrate_all_tables")
    assert second.success, failed_checks(second)
    after = {t: table_rows(target_conn, t) for l in all_loaders() for t in l.table_names}
    assert before == after
    # The second run changed nothing: every upsert found identical rows.
    for e in second.get_asset_materialization_events():
        changed = e.materialization.metadata.get("rows_inserted_or_changed")
        if changed is not None:
            assert changed.value == 0, e.asset_key


def test_changing_one_row_fails_checksum_naming_it(migration_env, definitions, target_conn, dump_dir):
    migration_env(mode="dump", dump=dump_dir)
    assert run_job(definitions, "migrate_all_tables").success
    legacy = target_conn.execute("SELECT min(legacy_object_id) FROM seller_offers").fetchone()[0]
    target_conn.execute("UPDATE seller_offers SET message = 'tampered' WHERE legacy_object_id = %s", [legacy])
    result = run_job(definitions, "verify_marketplace")
    evaluations = check_evaluations(result)
    checksum = evaluations[("public/seller_offers", "checksum_parity")]
    assert not checksum.passed
    assert checksum.severity == dg.AssetCheckSeverity.ERROR
    assert meta_value(checksum, "rows_changed") == 1
    table_md = meta_value(checksum, "differing_rows")
    assert legacy in table_md and "message" in table_md
    assert evaluations[("public/seller_offers", "row_count_parity")].passed


def test_failing_blocking_check_stops_children(migration_env, definitions, target_conn, dump_dir, pg_server):
    """users loaded, then corrupted: the next run's users checks fail and marketplace children do not load."""
    migration_env(mode="dump", dump=dump_dir)
    assert run_job(definitions, "migrate_auth", partition_key="auth").success
    # A row PostgreSQL has and the source does not: the users checks will fail (ERROR, blocking).
    target_conn.execute(
        "INSERT INTO users (id, legacy_object_id, email, role, points, level, is_verified, created_at) "
        "VALUES (gen_random_uuid(), 'ffffffffffffffffffffffff', 'ghost@example.com', 'user', 0, 1, false, now())")
    result = run_job(definitions, "migrate_all_tables")
    assert not result.success
    assert "public/users:row_count_parity" in failed_checks(result)
    materialized = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert "public/users" in materialized
    assert "public/purchase_requests" not in materialized
    assert target_conn.execute("SELECT count(*) FROM purchase_requests").fetchone()[0] == 0
