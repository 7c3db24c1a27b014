"""Cutover readiness: the pure verdict rules, and the ``migration/cutover_readiness`` asset
against real migrations (jongodb -> PostgreSQL) with check history in a Dagster instance."""

from __future__ import annotations

import random

import dagster as dg
import pytest

from migration_assets.cutover import readiness as rd
from migration_assets.specs.registry import loader_for_entity, loader_for_table, loaders_in_domain
from migration_assets_tests.helpers import failed_checks, run_job

READINESS_OP = "migration__cutover_readiness"


# --- pure rules ----------------------------------------------------------------------------

@pytest.mark.unit
def test_flag_steps_follow_the_backend_modes():
    assert rd.flag_step("REPO_MARKETPLACE") == rd.FlagStep("REPO_MARKETPLACE", "dual", "pg", "dual")
    store = rd.flag_step("CATEGORY_STORE")
    assert (store.dual, store.cutover, store.rollback) == (None, "postgres", "mongo")
    chat = rd.flag_step("CHAT_STORE")  # an alias of REPO_CHAT, which has no dual-write wrapper
    assert (chat.dual, chat.cutover, chat.rollback) == (None, "pg", "mongo") and "dual-write" in chat.note
    assert "Mongoose" in rd.flag_step("REPO_PAYMENT").note
    quoting = rd.flag_step("ORACLE_QUOTING_ENABLED")  # a feature switch, not a store
    assert (quoting.dual, quoting.cutover, quoting.rollback) == ("true", "true", None)


@pytest.mark.unit
def test_aliases_of_one_switch_are_one_step():
    steps = rd.flag_steps(["REPO_RELEASE_HOLD", "RELEASE_HOLD_STORE", "REPO_PAYMENT"])
    assert [s.flag for s in steps] == ["REPO_RELEASE_HOLD", "REPO_PAYMENT"]
    assert steps[0].aliases == ("RELEASE_HOLD_STORE",)
    assert steps[0].show("pg") == "`REPO_RELEASE_HOLD=pg` (same switch: RELEASE_HOLD_STORE)"


@pytest.mark.unit
def test_domain_flags_come_from_the_table_specs():
    assert set(rd.domain_flags(loaders_in_domain("marketplace"))) == {"REPO_MARKETPLACE", "CATEGORY_STORE"}
    assert "REPO_PAYMENT" in rd.domain_flags(loaders_in_domain("payments"))


@pytest.mark.unit
def test_check_history_green_needs_n_passing_executions():
    h = rd.CheckHistory("public/users", "checksum_parity", ["passed", "passed", "failed (ERROR)"])
    assert h.green(2) and not h.green(3)
    assert rd.CheckHistory("a", "b", ["passed"]).why_not(3) == "1 of 3 required executions (passed)"
    assert "failed (ERROR)" in h.why_not(3)


@pytest.mark.unit
def test_gap_entities_match_table_collection_and_model_names():
    payments = {l.name for l in loaders_in_domain("payments")}
    for entity in ("funds_ledger_entries", "FundsLedgerEntry", "fundsledgerentries", "Payment", "payments"):
        assert loader_for_entity(entity)[0].name in payments, entity
    assert loader_for_entity("User")[0].domain == "auth"
    assert loader_for_entity("NoSuchThing") is None


def readiness(**over) -> rd.Readiness:
    base = dict(domain="marketplace", runs_required=2, tables=["seller_offers"],
                checks=[rd.CheckHistory("public/seller_offers", "checksum_parity", ["passed", "passed"])],
                gaps={}, samples=[rd.SampleResult("seller_offers", "selleroffers", documents=5, rows=5)],
                flags=[rd.flag_step("REPO_MARKETPLACE")])
    base.update(over)
    return rd.Readiness(**base)


@pytest.mark.unit
def test_verdict_go_only_with_every_piece_of_evidence():
    assert readiness().verdict == "GO" and readiness().reasons == []
    young = readiness(runs_required=3)
    assert young.verdict == "NO-GO" and len(young.reasons) == 1 and "fewer than 3 (fewest: 2)" in young.reasons[0]
    failed = readiness(checks=[rd.CheckHistory("public/seller_offers", "checksum_parity", ["passed", "failed (ERROR)"])])
    assert failed.reasons == ["public/seller_offers checksum_parity: last runs: passed, failed (ERROR)"]
    assert readiness(gaps={"SellerOffer": 2}).reasons == ["2 open dual-write gap(s): SellerOffer=2"]
    diff = rd.SampleResult("seller_offers", "selleroffers", documents=5, rows=5,
                           differences=[rd.SampleDifference("seller_offers", "x|y", "changed", ("price",))])
    assert readiness(samples=[diff]).reasons == ["selleroffers: 1 difference(s) in 5 sampled documents"]
    assert readiness(tables=[], checks=[]).verdict == "NO-GO"
    text = rd.render_flags(readiness()) + rd.render_rollback(readiness())
    assert "`REPO_MARKETPLACE=dual`" in text and "`REPO_MARKETPLACE=pg`" in text
    assert "migration-assets migrate --domain marketplace" in text


# --- against real migrations ------------------------------------------------------------------

@pytest.fixture
def migrated(migration_env, live_source_db, definitions, target_conn):
    """The migrated target (a copy of the session's) and an instance in which every check
    of auth and marketplace has run once."""
    migration_env(mode="live", database=live_source_db)
    instance = dg.DagsterInstance.ephemeral()
    for d in ("auth", "marketplace"):
        result = run_job(definitions, f"verify_{d}", instance=instance)
        assert result.success, failed_checks(result)
    return instance


def assess(definitions, instance, domain="marketplace", **config) -> dict:
    result = run_job(definitions, "cutover_readiness", partition_key=domain, instance=instance,
                     run_config={"ops": {READINESS_OP: {"config": {"seed": 7, **config}}}})
    assert result.success
    (mat,) = result.asset_materializations_for_node(READINESS_OP)
    assert mat.partition == domain
    return {k: getattr(v, "value", v) for k, v in mat.metadata.items()}


@pytest.mark.integration
def test_readiness_go_after_enough_green_runs(migrated, definitions, world):
    meta = assess(definitions, migrated, green_runs=1)
    assert meta["verdict"] == "GO", meta["summary"]
    assert meta["checks_total"] == meta["checks_green"] > 0
    assert meta["sample_documents_compared"] > 0 and meta["sample_differences"] == 0
    assert "`REPO_MARKETPLACE=dual`" in meta["flags_to_set"] and "`REPO_MARKETPLACE=pg`" in meta["flags_to_set"]
    assert "migrate --domain marketplace" in meta["rollback"]

    # Two executions required, one happened: NO-GO until verification runs again.
    meta = assess(definitions, migrated, green_runs=2)
    assert meta["verdict"] == "NO-GO"
    assert "passed every execution so far but have fewer than 2 (fewest: 1)" in meta["summary"]
    assert run_job(definitions, "verify_marketplace", instance=migrated).success
    assert assess(definitions, migrated, green_runs=2)["verdict"] == "GO"


@pytest.mark.integration
def test_readiness_no_go_on_open_gaps_and_on_a_failed_check(migrated, definitions, target_conn):
    target_conn.execute("INSERT INTO pg_dualwrite_gaps (entity, legacy_id, operation, error) "
                        "VALUES ('SellerOffer', 'abc', 'update', 'timeout'), ('User', 'def', 'insert', 'timeout')")
    meta = assess(definitions, migrated, green_runs=1)
    assert meta["verdict"] == "NO-GO" and meta["open_dualwrite_gaps"] == 1  # the User gap is auth's
    assert meta["gaps_by_entity"] == {"SellerOffer": 1}
    target_conn.execute("UPDATE pg_dualwrite_gaps SET resolved_at = now(), resolution = 'resynced'")
    assert assess(definitions, migrated, green_runs=1)["verdict"] == "GO"

    # A failing check (a row changed behind the migration's back) is NO-GO, and stays in
    # the history for the next N runs even after the row is repaired.
    before = target_conn.execute("SELECT price FROM seller_offers ORDER BY legacy_object_id LIMIT 1").fetchone()[0]
    target_conn.execute("UPDATE seller_offers SET price = price + 1 WHERE legacy_object_id = "
                        "(SELECT min(legacy_object_id) FROM seller_offers)")
    assert "public/seller_offers:checksum_parity" in failed_checks(
        run_job(definitions, "verify_marketplace", instance=migrated))
    meta = assess(definitions, migrated, green_runs=1)
    assert meta["verdict"] == "NO-GO"
    assert "public/seller_offers checksum_parity: last runs: failed (ERROR)" in meta["summary"]
    target_conn.execute("UPDATE seller_offers SET price = %s WHERE legacy_object_id = "
                        "(SELECT min(legacy_object_id) FROM seller_offers)", [before])
    assert run_job(definitions, "verify_marketplace", instance=migrated).success
    assert assess(definitions, migrated, green_runs=1)["verdict"] == "GO"
    assert assess(definitions, migrated, green_runs=2)["verdict"] == "NO-GO"


@pytest.mark.integration
def test_sampled_reads_find_changed_missing_and_extra_rows(migrated, stack_env, live_source_db, target_conn,
                                                           mongo_client):
    from migration_assets.source.live import LiveSource

    loader = loader_for_table("seller_offers")
    ids = [r[0] for r in target_conn.execute(  # offers no purchase request selected (one gets deleted)
        "SELECT legacy_object_id FROM seller_offers o WHERE NOT EXISTS "
        "(SELECT 1 FROM purchase_requests p WHERE p.selected_offer_id = o.id) "
        "ORDER BY legacy_object_id LIMIT 3").fetchall()]
    source = LiveSource(stack_env["MONGODB_URI"], live_source_db)
    try:
        clean = rd.compare_documents(loader, source, target_conn, ids)
        assert (clean.documents, clean.rows, clean.differences) == (3, 3, [])

        target_conn.execute("UPDATE seller_offers SET delivery_days = coalesce(delivery_days, 0) + 1 "
                            "WHERE legacy_object_id = %s", [ids[0]])
        target_conn.execute("DELETE FROM seller_offers WHERE legacy_object_id = %s", [ids[1]])
        from bson import ObjectId

        mongo_client[live_source_db]["selleroffers"].delete_one({"_id": ObjectId(ids[2])})
        found = {(d.row.split("|")[0], d.kind, d.columns) for d in rd.compare_documents(loader, source, target_conn, ids).differences}
        assert found == {(ids[0], "changed", ("delivery_days",)), (ids[1], "missing in PostgreSQL", ()),
                         (ids[2], "extra in PostgreSQL", ())}
        # The random sample draws from both sides, so it sees the row Mongo no longer has.
        sample = rd.sample_ids(source, target_conn, loader, 500, random.Random(1))
        assert ids[2] in sample and ids[1] in sample
    finally:
        source.close()


@pytest.mark.definitions
def test_hourly_schedule_requests_every_domain(definitions):
    import datetime as dt

    from migration_assets.defs.cutover_readiness import hourly_cutover_readiness
    from migration_assets.specs.registry import DOMAINS

    assert definitions.resolve_schedule_def("hourly_cutover_readiness")
    ctx = dg.build_schedule_context(scheduled_execution_time=dt.datetime(2026, 1, 1, 10, 30))
    requests = list(hourly_cutover_readiness(ctx))
    assert [r.partition_key for r in requests] == list(DOMAINS)
    assert requests[0].run_key == "auth:2026-01-01T10:30"
