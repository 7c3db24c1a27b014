"""Funds-ledger invariants: green on the generated ledger (which follows the double-entry
model); each broken with the immutability triggers disabled for the test, failing with its
typed reason and the exact legacy ids; a deleted entry comes back through the re-sync."""

from __future__ import annotations

import dagster as dg
import pytest

from migration_assets.factory.invariant_checks import ledger_specs
from migration_assets.load.remap import apply_remap
from migration_assets.load.report import LoadOptions
from migration_assets.load.resync import resync_gaps
from migration_assets.load.run import run_loader
from migration_assets.source.dump import DumpSource
from migration_assets.specs.registry import all_loaders, loader_for_table
from migration_assets.target.gaps import open_gaps
from migration_assets.verify.invariants import ledger as inv
from migration_assets.verify.invariants.ledger import ledger_loader
from migration_assets_tests.helpers import check_evaluations, failed_checks, meta_value, run_job

pytestmark = pytest.mark.integration

LEDGER = loader_for_table("funds_ledger_entries")


@pytest.fixture
def ledger_db(target_conn, dump_dir):
    source = DumpSource(dump_dir, "marketplace")
    for loader in all_loaders():
        run_loader(loader, source, target_conn, LoadOptions(run_id="load-1"))
    for loader in all_loaders():
        for remap in loader.remaps:
            apply_remap(loader, remap, source, target_conn, run_id="load-1")
    return source, target_conn


def all_ledger(source, conn, run_id="check"):
    return {
        "immutable": inv.ledger_immutability(conn, LEDGER.root.table),
        "balances": inv.ledger_balances(LEDGER, source, conn),
        "sums": inv.ledger_payment_sums(conn, LEDGER),
        "money": inv.money_checks(conn, LEDGER),
        "append_only": inv.ledger_append_only(conn, LEDGER, run_id),
    }


def released_payment(conn):
    """A released payment and its escrow_release entry crediting the seller."""
    return conn.execute(
        "SELECT p.legacy_object_id, f.legacy_object_id, f.account, f.currency::text FROM payments p "
        "JOIN funds_ledger_entries f ON f.payment_id = p.id WHERE p.status = 'released' "
        "AND f.account = 'seller_wallet' ORDER BY 1 LIMIT 1").fetchone()


def test_generated_ledger_satisfies_every_invariant(ledger_db):
    source, conn = ledger_db
    results = all_ledger(source, conn, "first")
    assert {k: r.reasons for k, r in results.items() if not r.passed} == {}
    assert results["immutable"].measures == {"guard_triggers": 3, "update_refused": 1, "delete_refused": 1,
                                             "truncate_refused": 1}
    assert results["sums"].measures["payments_checked"] > 0 and results["balances"].measures["balances_compared"] > 0
    n = conn.execute("SELECT count(*) FROM funds_ledger_entries").fetchone()[0]
    assert results["append_only"].measures["entries_recorded_now"] == n
    again = inv.ledger_append_only(conn, LEDGER, "second")
    assert again.passed and again.measures["entries_recorded_before"] == n and again.measures["entries_recorded_now"] == 0
    # The probe left nothing behind.
    assert conn.execute("SELECT count(*) FROM funds_ledger_entries WHERE account = 'probe'").fetchone()[0] == 0


def test_disabled_or_missing_triggers_fail_typed(ledger_db):
    _, conn = ledger_db
    conn.execute("ALTER TABLE funds_ledger_entries DISABLE TRIGGER funds_ledger_entries_no_update")
    conn.execute("DROP TRIGGER funds_ledger_entries_no_truncate ON funds_ledger_entries")
    before = conn.execute("SELECT count(*) FROM funds_ledger_entries").fetchone()[0]
    r = inv.ledger_immutability(conn, LEDGER.root.table)
    assert r.reasons == {"trigger_disabled": 1, "update_not_refused": 1, "trigger_missing": 1, "truncate_not_refused": 1}
    assert r.measures["delete_refused"] == 1 and r.measures["update_refused"] == 0
    # The attempts were rolled back: the TRUNCATE that went through emptied nothing.
    assert conn.execute("SELECT count(*) FROM funds_ledger_entries").fetchone()[0] == before


def test_tampered_entries_break_balances_sums_and_append_only(ledger_db):
    source, conn = ledger_db
    assert inv.ledger_append_only(conn, LEDGER, "load-1").passed  # the snapshot of every entry
    payment, entry, account, currency = released_payment(conn)
    conn.execute("ALTER TABLE funds_ledger_entries DISABLE TRIGGER USER")  # for the test only
    conn.execute("UPDATE funds_ledger_entries SET amount = amount + 1 WHERE legacy_object_id = %s", [entry])
    conn.execute("ALTER TABLE funds_ledger_entries ENABLE TRIGGER USER")
    user = conn.execute("SELECT u.legacy_object_id FROM funds_ledger_entries f JOIN users u ON u.id = f.user_id "
                        "WHERE f.legacy_object_id = %s", [entry]).fetchone()[0]
    r = all_ledger(source, conn)
    assert r["immutable"].passed and r["money"].passed
    assert r["balances"].reasons == {"balance_mismatch": 1}
    assert r["balances"].subjects == [f"{account}/{user}/{currency}"]
    assert "delta 1" in r["balances"].violations[0].detail and r["balances"].measures["absolute_delta"] == 1.0
    assert r["sums"].reasons == {"unbalanced_payment": 1, "release_differs_from_amount": 1, "ledger_unbalanced": 1}
    assert {v.subject for v in r["sums"].violations} == {payment, currency}
    assert r["append_only"].reasons == {"entry_changed": 1} and r["append_only"].subjects == [entry]


def test_money_checks_missing_not_validated_or_violated(ledger_db):
    _, conn = ledger_db
    entry = conn.execute("SELECT legacy_object_id FROM funds_ledger_entries ORDER BY 1 LIMIT 1").fetchone()[0]
    conn.execute("ALTER TABLE funds_ledger_entries DROP CONSTRAINT funds_ledger_entries_amount_positive_ck")
    conn.execute("ALTER TABLE funds_ledger_entries DISABLE TRIGGER USER")
    conn.execute("UPDATE funds_ledger_entries SET amount = 0 WHERE legacy_object_id = %s", [entry])
    r = inv.money_checks(conn, LEDGER)
    assert r.reasons == {"check_missing": 1, "amount_not_positive": 1}
    assert [v.subject for v in r.violations] == ["funds_ledger_entries.amount", entry]
    conn.execute("ALTER TABLE funds_ledger_entries ADD CONSTRAINT funds_ledger_entries_amount_positive_ck "
                 "CHECK (amount > 0) NOT VALID")
    r = inv.money_checks(conn, LEDGER)
    assert r.reasons == {"check_not_validated": 1, "amount_not_positive": 1}


def test_deleted_entry_returns_through_resync_changed_one_stays_flagged(ledger_db):
    source, conn = ledger_db
    assert inv.ledger_append_only(conn, LEDGER, "load-1").passed
    payment, entry, _, _ = released_payment(conn)
    other = conn.execute("SELECT legacy_object_id FROM funds_ledger_entries WHERE legacy_object_id <> %s "
                         "AND payment_id IS NULL ORDER BY 1 LIMIT 1", [entry]).fetchone()[0]
    conn.execute("ALTER TABLE funds_ledger_entries DISABLE TRIGGER USER")
    conn.execute("DELETE FROM funds_ledger_entries WHERE legacy_object_id = %s", [entry])
    conn.execute("UPDATE funds_ledger_entries SET description = 'rewritten' WHERE legacy_object_id = %s", [other])
    conn.execute("ALTER TABLE funds_ledger_entries ENABLE TRIGGER USER")
    r = all_ledger(source, conn)
    assert r["append_only"].reasons == {"entry_deleted": 1, "entry_changed": 1}
    assert set(r["append_only"].subjects) == {entry, other}
    assert payment in r["sums"].subjects
    # The application reports both rows as dual-write gaps; the re-sync puts the deleted entry
    # back, and refuses to rewrite an immutable one (its gap stays open, with the reason).
    conn.execute("INSERT INTO pg_dualwrite_gaps (entity, legacy_id, operation, error) VALUES "
                 "('funds_ledger_entries', %s, 'insert', 'timeout'), ('funds_ledger_entries', %s, 'update', 'timeout')",
                 [entry, other])
    reports = resync_gaps(source, conn, open_gaps(conn), run_id="resync-1")
    assert reports[0].loaded == [entry] and other in reports[0].refused
    (left,) = open_gaps(conn)
    assert left.legacy_id == other and left.attempts == 2
    assert "immutable" in conn.execute("SELECT error FROM pg_dualwrite_gaps WHERE id = %s", [left.id]).fetchone()[0]
    r = all_ledger(source, conn)
    assert r["balances"].passed and r["sums"].passed
    assert r["append_only"].reasons == {"entry_changed": 1}  # the rewritten one, still reported


def test_ledger_checks_in_dagster_block_with_typed_reasons(migration_env, definitions, target_conn, dump_dir):
    migration_env(mode="dump", dump=dump_dir)
    result = run_job(definitions, "migrate_all_tables")
    assert result.success, failed_checks(result)
    evaluations = check_evaluations(result)
    ledger = {k[1]: e for k, e in evaluations.items() if k[0] == "public/funds_ledger_entries"}
    assert {"ledger_immutable", "ledger_balances_match_source", "ledger_payment_sums", "ledger_money_checks",
            "ledger_append_only"} <= set(ledger)
    assert all(e.passed for e in ledger.values())
    payment, entry, _, _ = released_payment(target_conn)
    target_conn.execute("ALTER TABLE funds_ledger_entries DISABLE TRIGGER USER")
    target_conn.execute("UPDATE funds_ledger_entries SET amount = amount * 2 WHERE legacy_object_id = %s", [entry])
    result = run_job(definitions, "verify_payments")
    ev = {k[1]: e for k, e in check_evaluations(result).items() if k[0] == "public/funds_ledger_entries"}
    for name in ("ledger_immutable", "ledger_balances_match_source", "ledger_payment_sums", "ledger_append_only"):
        assert not ev[name].passed and ev[name].severity == dg.AssetCheckSeverity.ERROR, name
    # The platform's role may not UPDATE the ledger at all (refused by privilege, before any
    # trigger), and the disabled trigger is named from the catalog.
    assert meta_value(ev["ledger_immutable"], "failure_reasons") == {"trigger_disabled": 3}
    assert meta_value(ev["ledger_immutable"], "update_refused_by_privilege") == 1
    assert meta_value(ev["ledger_payment_sums"], "failure_reasons")["unbalanced_payment"] == 1
    assert payment in meta_value(ev["ledger_payment_sums"], "violating_rows")
    assert entry in meta_value(ev["ledger_append_only"], "violating_rows")
    assert isinstance(meta_value(ev["ledger_balances_match_source"], "absolute_delta"), float)
    assert ev["ledger_money_checks"].passed
    specs = {s.name: s for s in ledger_specs(ledger_loader())}
    assert len(specs) == 5 and all(s.blocking for s in specs.values())
