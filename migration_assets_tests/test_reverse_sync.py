"""Rollback that loses nothing, on the real servers: every domain is migrated and green, then
"flipped"; the application writes PostgreSQL only, as its owner role (a user born without an
ObjectId, a purchase request with its child rows, a ledger deposit, updates with a child row
added and one removed, a review deleted). The reverse sync's dry run lists exactly those, the
run applies them, the domain's checks are green again, the fields the spec does not map are
unchanged and the audit holds the previous versions."""

from __future__ import annotations

import datetime as dt
import json
import os
import uuid

import psycopg
import pytest
from bson import ObjectId

from migration_assets.cli.main import main
from migration_assets.target.reverse_book import previous_versions
from migration_assets_tests.conftest import APP_ROLE, PLATFORM_ROLE
from migration_assets_tests.helpers import failed_checks, run_job

pytestmark = pytest.mark.integration

UTC = dt.timezone.utc


def as_owner(url: str) -> psycopg.Connection:
    """The application's owner: its rows, as it writes them."""
    return psycopg.connect(url.replace(f"{PLATFORM_ROLE}@", f"{APP_ROLE}@", 1), autocommit=True)


def cli_json(capsys, *args) -> tuple[int, dict]:
    capsys.readouterr()
    rc = main(list(args))
    captured = capsys.readouterr()
    assert "{" in captured.out, captured.err
    return rc, json.loads(captured.out[captured.out.index("{"):])


def planned(document: dict) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for l in document["loaders"]:
        for p in l["planned"]:
            out.setdefault(p["action"], set()).add(f"{l['loader']}:{p['document']}")
    return out


@pytest.fixture
def home(tmp_path, monkeypatch):
    from migration_assets_tests.cli_helpers import fresh_home

    monkeypatch.setenv("DAGSTER_HOME", str(fresh_home(tmp_path / "dagster_home")))


def the_application_writes_postgres(owner: psycopg.Connection, db) -> dict[str, str]:
    """What the application does with its flags on `pg`; returns the ids involved."""
    now = dt.datetime.now(UTC)
    ids: dict[str, str] = {}
    # a user the application created without an ObjectId (its legacy id is its uuid)
    user_id = uuid.uuid4()
    owner.execute("INSERT INTO users (id, legacy_object_id, email, role, points, level, is_verified, created_at) "
                  "VALUES (%s, %s, 'born-in-pg@example.com', 'user', 0, 1, false, %s)", [user_id, str(user_id), now])
    ids["new_user"] = str(user_id)
    buyer, category = owner.execute("SELECT buyer_id, category_id FROM purchase_requests LIMIT 1").fetchone()
    # a purchase request with its child rows, its ObjectId made by the application
    pr_legacy = str(ObjectId())
    pr = owner.execute(
        "INSERT INTO purchase_requests (id, legacy_object_id, buyer_id, category_id, title, quantity, budget_amount, "
        "budget_currency, status, created_at, updated_at) VALUES (gen_random_uuid(), %s, %s, %s, 'made in pg', 2, "
        "120.5, 'USDT', 'open', %s, %s) RETURNING id", [pr_legacy, buyer, category, now, now]).fetchone()[0]
    owner.execute("INSERT INTO purchase_request_specifications (purchase_request_id, position, key, value) "
                  "VALUES (%s, 0, 'color', 'red'), (%s, 1, 'size', 'XL')", [pr, pr])
    owner.execute("INSERT INTO purchase_request_delivery_info (purchase_request_id, method) VALUES (%s, 'courier')",
                  [pr])
    ids["new_pr"] = pr_legacy
    # a deposit of the new user: both legs
    for account, direction, user in (("external", "debit", None), ("buyer_wallet", "credit", buyer)):
        legacy = str(ObjectId())
        owner.execute("INSERT INTO funds_ledger_entries (id, legacy_object_id, user_id, account, currency, direction, "
                      "amount, entry_type, description, created_at) VALUES (gen_random_uuid(), %s, %s, %s, 'USDT', %s, "
                      "50, 'deposit', 'deposit pg-1', %s)", [legacy, user, account, direction, now])
        ids[f"ledger_{direction}"] = legacy
    # an update: a new title, a delivery attempt added, the last specification removed
    doc = db.purchaserequests.find_one({"specifications.1": {"$exists": True}})
    ids["changed_pr"] = str(doc["_id"])
    db.purchaserequests.update_one({"_id": doc["_id"]}, {"$set": {"__v": 7}})  # Mongoose's key: unmapped
    changed = owner.execute("UPDATE purchase_requests SET title = 'renamed in pg', updated_at = %s "
                            "WHERE legacy_object_id = %s RETURNING id", [now, ids["changed_pr"]]).fetchone()[0]
    owner.execute("DELETE FROM purchase_request_specifications WHERE purchase_request_id = %s AND position = "
                  "(SELECT max(position) FROM purchase_request_specifications WHERE purchase_request_id = %s)",
                  [changed, changed])
    attempt = str(ObjectId())
    owner.execute("INSERT INTO delivery_attempts (id, legacy_object_id, purchase_request_id, attempt_number, status, "
                  "attempted_at) VALUES (gen_random_uuid(), %s, %s, 99, 'failed', %s)", [attempt, changed, now])
    ids["attempt"] = attempt
    # a buyer selects an offer (the deferred reference the remap writes)
    pr2, offer = owner.execute(
        "SELECT p.id, o.id FROM purchase_requests p JOIN seller_offers o ON o.purchase_request_id = p.id "
        "WHERE p.legacy_object_id <> %s AND p.selected_offer_id IS DISTINCT FROM o.id LIMIT 1",
        [ids["changed_pr"]]).fetchone()
    ids["selecting_pr"], ids["selected_offer"] = owner.execute(
        "UPDATE purchase_requests p SET selected_offer_id = %s, updated_at = %s FROM seller_offers o "
        "WHERE p.id = %s AND o.id = %s RETURNING p.legacy_object_id, o.legacy_object_id",
        [offer, now, pr2, offer]).fetchone()
    # a user renamed
    user = db.users.find_one({})
    db.users.update_one({"_id": user["_id"]}, {"$set": {"__v": 2}})
    ids["changed_user"] = str(user["_id"])
    owner.execute("UPDATE users SET display_name = 'Renamed In PG', updated_at = %s WHERE legacy_object_id = %s",
                  [now, ids["changed_user"]])
    # a review deleted
    ids["deleted_review"] = owner.execute("DELETE FROM reviews WHERE id = (SELECT id FROM reviews LIMIT 1) "
                                          "RETURNING legacy_object_id").fetchone()[0]
    return ids


def test_a_reverse_sync_brings_the_writes_made_in_postgres_back_to_mongo(
        migrated, platform_conn, target_url, live_source_db, mongo_client, definitions, home, capsys):
    db = mongo_client[live_source_db]
    cutover = dt.datetime.now(UTC).replace(microsecond=0)
    with as_owner(target_url) as owner:
        ids = the_application_writes_postgres(owner, db)
    before_pr = db.purchaserequests.find_one({"_id": ObjectId(ids["changed_pr"])})

    rc, dry = cli_json(capsys, "reverse-sync", "--domain", "all", "--cutover-at", cutover.isoformat(), "--dry-run",
                       "--json")
    assert rc == 0, json.dumps(dry)[:2000]
    assert planned(dry) == {
        "insert": {f"users:{ids['new_user']}", f"purchase_requests:{ids['new_pr']}",
                   f"funds_ledger_entries:{ids['ledger_debit']}",
                   f"funds_ledger_entries:{ids['ledger_credit']}"},
        "update": {f"purchase_requests:{ids['changed_pr']}", f"purchase_requests:{ids['selecting_pr']}",
                   f"users:{ids['changed_user']}"},
        "delete": {f"reviews:{ids['deleted_review']}"}}
    fields = {p["document"]: p for l in dry["loaders"] for p in l["planned"]}
    assert fields[ids["new_user"]]["set"] == ["_id (a new ObjectId, given when it runs)"]
    assert fields[ids["changed_pr"]]["set"] == ["deliveryAttempts", "specifications", "title", "updatedAt"]
    assert fields[ids["changed_user"]]["set"] == ["displayName", "updatedAt"]
    assert fields[ids["selecting_pr"]]["set"] == ["selectedOfferId", "updatedAt"]
    assert db.purchaserequests.find_one({"_id": ObjectId(ids["changed_pr"])}) == before_pr  # nothing written

    rc, done = cli_json(capsys, "reverse-sync", "--domain", "all", "--cutover-at", cutover.isoformat(), "--json")
    assert rc == 0, done
    new_user_oid = platform_conn.execute("SELECT legacy_object_id FROM users WHERE id = %s",
                                         [ids["new_user"]]).fetchone()[0]
    assert ObjectId.is_valid(new_user_oid)
    assert platform_conn.execute("SELECT new_id::text FROM id_map WHERE entity = 'users' AND legacy_id = %s",
                                 [new_user_oid]).fetchone() == (ids["new_user"],)
    assert planned(done)["insert"] >= {f"users:{new_user_oid}", f"purchase_requests:{ids['new_pr']}"}

    user = db.users.find_one({"_id": ObjectId(new_user_oid)})
    assert user["email"] == "born-in-pg@example.com" and user["role"] == "user"
    pr = db.purchaserequests.find_one({"_id": ObjectId(ids["new_pr"])})
    assert [(s["key"], s["value"]) for s in pr["specifications"]] == [("color", "red"), ("size", "XL")]
    assert str(pr["budget"]["amount"].to_decimal()) == "120.5" and pr["deliveryInfo"] == {"method": "courier"}
    assert db.fundsledgerentries.count_documents({"_id": {"$in": [ObjectId(ids["ledger_debit"]),
                                                                   ObjectId(ids["ledger_credit"])]}}) == 2
    changed = db.purchaserequests.find_one({"_id": ObjectId(ids["changed_pr"])})
    assert changed["title"] == "renamed in pg" and changed["__v"] == 7  # the unmapped field kept
    assert len(changed["specifications"]) == len(before_pr["specifications"]) - 1
    assert changed["specifications"] == before_pr["specifications"][:-1]  # the kept ones untouched
    assert ObjectId(ids["attempt"]) in [a["_id"] for a in changed.get("deliveryAttempts", [])]
    assert db.users.find_one({"_id": ObjectId(ids["changed_user"])})["__v"] == 2
    selecting = db.purchaserequests.find_one({"_id": ObjectId(ids["selecting_pr"])})
    assert selecting["selectedOfferId"] == ObjectId(ids["selected_offer"])
    assert db.reviews.find_one({"_id": ObjectId(ids["deleted_review"])}) is None

    # the audit holds the previous versions, every BSON type kept
    (effect, previous), = previous_versions(platform_conn, "purchase_requests", ids["changed_pr"])
    assert effect == "updated in Mongo" and previous == before_pr
    assert [e for e, _ in previous_versions(platform_conn, "reviews", ids["deleted_review"])] == ["deleted from Mongo"]

    result = run_job(definitions, "verify_all")
    assert result.success, failed_checks(result)

    rc, again = cli_json(capsys, "reverse-sync", "--domain", "all", "--cutover-at", cutover.isoformat(), "--json")
    assert rc == 0 and planned(again) == {}, again


def test_it_refuses_while_the_record_says_mongo_is_written_unless_forced_with_a_reason(
        migrated, target_url, live_source_db, mongo_client, home, capsys):
    assert main(["cutover", "--domain", "config_ops", "--writes", "dual", "--by", "ops", "--reason", "rolled back"]) == 0
    capsys.readouterr()
    rc = main(["reverse-sync", "--domain", "config_ops"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 1 and len(err) == 1 and "says the application writes Mongo (dual" in err[0], err
    with as_owner(target_url) as owner:
        gone = owner.execute("DELETE FROM reviews WHERE id = (SELECT id FROM reviews LIMIT 1) "
                             "RETURNING legacy_object_id").fetchone()[0]
    at = (dt.datetime.now(UTC) - dt.timedelta(minutes=1)).isoformat()
    rc, done = cli_json(capsys, "reverse-sync", "reviews", "--cutover-at", at, "--force", "writers stopped", "--json")
    assert rc == 0 and planned(done) == {"delete": {f"reviews:{gone}"}}, done
    with psycopg.connect(target_url) as conn:
        assert conn.execute("SELECT DISTINCT forced FROM migration.reverse_sync_items").fetchall() == [
            ("writers stopped",)]
    assert mongo_client[live_source_db].reviews.find_one({"_id": ObjectId(gone)}) is None


def test_without_a_cutover_time_it_refuses(migrated, home, capsys):
    rc = main(["reverse-sync", "--domain", "chat"])
    err = capsys.readouterr().err
    assert rc == 1 and "no cutover time for chat" in err, err


def test_a_mongo_host_outside_the_allowlist_is_refused(migrated, home, capsys, monkeypatch):
    monkeypatch.setenv("MIGRATION_MONGO_ALLOWED_HOSTS", "mongo.internal")
    at = dt.datetime.now(UTC).isoformat()
    rc = main(["reverse-sync", "reviews", "--cutover-at", at])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 1 and len(err) == 1 and "not in MIGRATION_MONGO_ALLOWED_HOSTS" in err[0], err


@pytest.mark.process
def test_killed_mid_run_then_rerun_ends_as_one_clean_run(migrated, platform_conn, target_url, live_source_db,
                                                         mongo_client, stack_env, tmp_path):
    """SIGKILL a real ``dagster job execute`` of the reverse sync halfway, and run it again: the
    same end state, no duplicate document, and one ObjectId for each row born without one."""
    import subprocess
    import sys
    from pathlib import Path

    import yaml

    from migration_assets_tests.cli_helpers import make_env
    from migration_assets_tests.fixtures import dagster_proc as dp

    n = 6000
    cutover = dt.datetime.now(UTC) - dt.timedelta(seconds=1)
    with as_owner(target_url) as owner:
        user = owner.execute("SELECT id FROM users LIMIT 1").fetchone()[0]
        owner.execute("INSERT INTO notifications (id, legacy_object_id, user_id, type, title, created_at) "
                      "SELECT u, u::text, %s, 'system', 'born in pg ' || i, now() "
                      "FROM (SELECT gen_random_uuid() AS u, i FROM generate_series(1, %s) AS i) s", [user, n])
    db = mongo_client[live_source_db]
    before = db.notifications.count_documents({})
    home = dp.make_home(tmp_path / "home")
    env = {**os.environ, **make_env(stack_env, target_url, live_source_db, home), "PYTHONUNBUFFERED": "1",
           "MIGRATION_MONGO_ALLOWED_HOSTS": "127.0.0.1,localhost"}
    cfg = home / "reverse.yaml"
    cfg.write_text(yaml.safe_dump({"ops": {"reverse_sync_step": {"config": {
        "loaders": ["notifications"], "cutover_at": cutover.isoformat()}}}}))
    dagster = str(Path(sys.executable).with_name("dagster"))

    def start(name: str) -> dp.DagsterRun:
        log = home / f"{name}.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen([dagster, "job", "execute", "-m", "migration_assets.definitions", "-a", "defs",
                                     "-j", "reverse_sync", "-c", str(cfg)], env=env, stdout=out,
                                    stderr=subprocess.STDOUT, start_new_session=True)
        return dp.DagsterRun(proc, home, log)

    def applied() -> int:
        return platform_conn.execute("SELECT count(*) FILTER (WHERE state = 'applied') FROM "
                                     "migration.reverse_sync_items WHERE loader = 'notifications'").fetchone()[0]

    first = start("first")
    dp.wait_until(lambda: applied() > 0 or not first.alive(), timeout=300, interval=0.01, what="a first batch")
    assert first.alive(), f"the run ended before the kill:\n{first.output()[-3000:]}"
    first.kill()
    dp.wait_until(lambda: not first.live_group_members(), timeout=10, what="the run's processes to die")
    done_at_kill = applied()
    assert 0 < done_at_kill < n, done_at_kill
    given = dict(platform_conn.execute("SELECT id::text, legacy_object_id FROM notifications WHERE title LIKE "
                                       "'born in pg %'").fetchall())
    assert len(given) == n and all(ObjectId.is_valid(v) for v in given.values())  # given before any write

    second = start("second")
    assert second.wait(300) == 0, second.output()[-3000:]
    assert "resumed the plan of run" in second.output()
    assert dict(platform_conn.execute("SELECT id::text, legacy_object_id FROM notifications WHERE title LIKE "
                                      "'born in pg %'").fetchall()) == given  # no second ObjectId
    assert platform_conn.execute("SELECT count(*) FROM id_map WHERE entity = 'notifications' AND new_id::text = "
                                 "ANY(%s)", [list(given)]).fetchone()[0] == n
    born = list(db.notifications.find({"title": {"$regex": "^born in pg "}}, {"_id": 1}))
    assert db.notifications.count_documents({}) == before + n and len(born) == n
    assert {str(d["_id"]) for d in born} == set(given.values())

    third = start("third")  # nothing left: a clean run would have left the same
    assert third.wait(300) == 0, third.output()[-3000:]
    assert "0 to insert, 0 to update, 0 to delete" in third.output()
