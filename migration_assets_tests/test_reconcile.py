"""The catch-up that misses nothing, on the real servers: after a green load, Mongo gets new
documents, changes with and without ``updatedAt``, deletes, and ledger entries changed and
removed behind the platform's back; the two sensors and the runs they request bring every
table back to zero diff, removed rows are kept in ``migration.removed_rows``, the ledger
keeps its rows and its conflicts wait for an auditor."""

from __future__ import annotations

import datetime as dt
import json
import re

import dagster as dg
import psycopg
import pytest
from bson import Decimal128, ObjectId

from migration_assets.cli.main import main
from migration_assets.cutover.reconcile import reconcile_loaders
from migration_assets.defs.reconcile import parity_failure_sensor
from migration_assets.defs.sensors import source_change_sensor
from migration_assets.factory.naming import table_key
from migration_assets.factory.resources import MongoSourceResource, PostgresTargetResource
from migration_assets.load.resync import resync_documents
from migration_assets.orchestration.records import MAX_RECONCILIATIONS
from migration_assets.source.live import LiveSource
from migration_assets.specs.registry import all_loaders, loader_for_table
from migration_assets.verify.checksums import verify_loader
from migration_assets.verify.diff import bisect_diff
from migration_assets_tests.cli_helpers import fresh_home
from migration_assets_tests.conftest import APP_ROLE, PLATFORM_ROLE

pytestmark = pytest.mark.integration

SCHEDULED = {"dagster/schedule_name": "hourly_verification"}


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A Dagster home the sensors, the runs and the CLI share (as the daemon and CLI do)."""
    monkeypatch.setenv("DAGSTER_HOME", str(fresh_home(tmp_path / "dagster_home")))
    with dg.DagsterInstance.get() as inst:
        yield inst


def as_owner(url: str) -> psycopg.Connection:
    """The application's owner on the same database: its own DDL and rows, as it writes them."""
    return psycopg.connect(url.replace(f"{PLATFORM_ROLE}@", f"{APP_ROLE}@", 1), autocommit=True)


def tick(sensor, instance, res, cursor=None) -> dg.SensorResult:
    return sensor(dg.build_sensor_context(instance=instance, resources=res, cursor=cursor, sensor_name=sensor.name))


def launch(definitions, instance, request: dg.RunRequest, sensor_name: str, job: str):
    """What the daemon does with a run request."""
    tags = {**request.tags, "dagster/run_key": request.run_key, "dagster/sensor_name": sensor_name}
    return definitions.resolve_job_def(request.job_name or job).execute_in_process(
        run_config=request.run_config, instance=instance, tags=tags, partition_key=request.partition_key,
        raise_on_error=False)


def scheduled_verification(definitions, instance, job: str = "verify_all"):
    """A run of the verification as the hourly schedule launches it (its tag)."""
    return definitions.resolve_job_def(job).execute_in_process(instance=instance, tags=SCHEDULED, raise_on_error=False)


def cli(capsys, *args) -> tuple[int, str]:
    capsys.readouterr()
    rc = main(list(args))
    return rc, capsys.readouterr().out


def loaded_ids(conn, table: str, n: int, offset: int = 0) -> list[str]:
    return [r[0] for r in conn.execute(f"SELECT legacy_object_id FROM public.{table} ORDER BY legacy_object_id "
                                       f"LIMIT %s OFFSET %s", [n, offset]).fetchall()]


def oids(ids) -> list[ObjectId]:
    return [ObjectId(i) for i in ids]


def test_changes_deletes_and_ledger_conflicts_all_reach_postgres(migrated, platform_conn, definitions, home, stack_env,
                                                                 target_url, live_source_db, mongo_client, capsys):
    conn = migrated
    db = mongo_client[live_source_db]
    res = {"postgres": PostgresTargetResource(url=target_url, allowed_hosts="127.0.0.1"),
           "mongo": MongoSourceResource(uri=stack_env["MONGODB_URI"], database=live_source_db, mode="live")}
    source = LiveSource(stack_env["MONGODB_URI"], live_source_db)
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    # The application keeps its own table with an ON DELETE CASCADE to chats (DDL as it
    # would run it, as its owner): deleting a chat deletes its pins too.
    with as_owner(target_url) as app:
        app.execute("CREATE TABLE public.chat_pins (chat_id uuid NOT NULL REFERENCES public.chats (id) "
                    "ON DELETE CASCADE, pinned_by text NOT NULL)")

    # --- what Mongo's writers did after the green load --------------------------------------
    offers = loaded_ids(conn, "seller_offers", 110)
    new_offers = [dict(d, _id=ObjectId(), message="another offer") for d in db.selleroffers.find({"_id": {"$in": oids(offers[:60])}})]
    new_notes = [dict(d, _id=ObjectId()) for d in db.notifications.find({"_id": {"$in": oids(loaded_ids(conn, "notifications", 40))}})]
    db.selleroffers.insert_many(new_offers)
    db.notifications.insert_many(new_notes)
    bumped = offers[60:110]  # 50 changes with updatedAt bumped
    db.selleroffers.update_many({"_id": {"$in": oids(bumped)}}, {"$set": {"message": "revised", "updatedAt": now}})
    reviews = loaded_ids(conn, "reviews", 24)
    silent = reviews[:20]  # 20 changes without updatedAt (an admin script)
    for d in db.reviews.find({"_id": {"$in": oids(silent)}}):
        db.reviews.update_one({"_id": d["_id"]}, {"$set": {"rating": 1.0 if d.get("rating") != 1.0 else 2.0}})
    gone_chats, gone_reviews = loaded_ids(conn, "chats", 6), reviews[20:24]  # 10 deletes
    pinned = conn.execute("SELECT id FROM chats WHERE legacy_object_id = %s", [gone_chats[0]]).fetchone()[0]
    with as_owner(target_url) as app:
        app.execute("INSERT INTO public.chat_pins VALUES (%s, 'support')", [pinned])
    db.chats.delete_many({"_id": {"$in": oids(gone_chats)}})
    db.reviews.delete_many({"_id": {"$in": oids(gone_reviews)}})
    entries = loaded_ids(conn, "funds_ledger_entries", 3)  # the immutable ledger, changed behind its back
    for e in entries[:2]:
        db.fundsledgerentries.update_one({"_id": ObjectId(e)}, {"$set": {"amount": Decimal128("0.01")}})
    db.fundsledgerentries.delete_one({"_id": ObjectId(entries[2])})
    ledger_rows = conn.execute("SELECT count(*) FROM funds_ledger_entries").fetchone()[0]

    # --- the dry run names exactly those documents, and writes nothing -----------------------
    rc, out = cli(capsys, "reconcile", "--domain", "all", "--dry-run", "--json")
    assert rc == 1, out  # the ledger's conflicts are not in sync, and never will be by a re-sync
    planned = {l["loader"]: l for l in json.loads(out)["loaders"]}
    found = {name: {k: sorted(v) for k, v in p["document_ids"].items() if v}
             for name, p in planned.items() if "document_ids" in p}
    assert found == {
        "seller_offers": {"new": sorted(str(d["_id"]) for d in new_offers), "changed": sorted(bumped)},
        "notifications": {"new": sorted(str(d["_id"]) for d in new_notes)},
        "reviews": {"changed": sorted(silent), "extra": sorted(gone_reviews)},
        "chats": {"extra": sorted(gone_chats)},
        "funds_ledger_entries": {"conflicts": sorted(entries)},
    }
    assert set(planned) == {l.name for l in all_loaders()}
    assert all(p["documents_read"] >= 0 and p["ranges_hashed"] > 0 for p in planned.values())
    assert conn.execute("SELECT count(*) FROM migration.removed_rows").fetchone()[0] == 0
    assert bisect_diff(loader_for_table("reviews"), source, conn).total == 24

    # A removal whose audit copy the platform cannot take is refused, naming why; nothing moves.
    refused = resync_documents(loader_for_table("chats"), source, platform_conn, [gone_chats[0]], run_id="refusal")
    assert refused.removed == [] and "GRANT SELECT ON chat_pins" in refused.refused[gone_chats[0]]
    with as_owner(target_url) as app:
        app.execute(f"GRANT SELECT ON public.chat_pins TO {PLATFORM_ROLE}")

    # --- sensor 1: the cheap high-water marks see the new and updatedAt-bumped documents -------
    first = tick(source_change_sensor, home, res)
    assert sorted(r.partition_key for r in first.run_requests) == ["content_social", "marketplace"]
    for request in first.run_requests:
        launch(definitions, home, request, source_change_sensor.name, "")
    for table in ("seller_offers", "notifications"):
        assert bisect_diff(loader_for_table(table), source, conn).total == 0, table

    # --- sensor 2: a scheduled verification's failing parity -> one reconciliation per loader --
    assert not scheduled_verification(definitions, home).success
    requests = tick(parity_failure_sensor, home, {}).run_requests
    assert sorted(r.tags["reconcile_loader"] for r in requests) == ["chats", "reviews"]  # never the ledger
    assert [r.run_key for r in tick(parity_failure_sensor, home, {}).run_requests] == [r.run_key for r in requests]
    for request in requests:
        assert launch(definitions, home, request, parity_failure_sensor.name, "reconcile").success

    # Every removed row is in the audit table first: 10 documents, their child rows and the
    # application's pin the cascade took with its chat.
    removed = conn.execute("SELECT table_name, document, effect FROM migration.removed_rows").fetchall()
    roots = {(t, d) for t, d, e in removed if t in ("chats", "reviews") and e == "deleted"}
    assert roots == {("chats", c) for c in gone_chats} | {("reviews", r) for r in gone_reviews}
    assert {t for t, _, _ in removed} >= {"chat_participants", "chat_messages", "chat_pins"}
    assert ("chat_pins", gone_chats[0], "deleted by ON DELETE CASCADE of public.chats") in removed
    assert conn.execute("SELECT count(*) FROM chat_pins").fetchone()[0] == 0
    # The UI shows the reconciliation's counts on the table's asset.
    seen = home.fetch_observations(table_key("reviews"), limit=1).records[0].asset_observation.metadata
    assert (seen["documents_changed"].value, seen["documents_removed"].value) == (20, 4)

    # --- the next round: the failed catch-up is retried, the verification is green but the ledger
    for request in tick(source_change_sensor, home, res, cursor=first.cursor).run_requests:
        assert launch(definitions, home, request, source_change_sensor.name, "").success
    verification = scheduled_verification(definitions, home)
    failing = {(e.asset_key.to_user_string(), e.check_name) for e in verification.get_asset_check_evaluations()
               if not e.passed}
    assert failing and all(a == "public/funds_ledger_entries" for a, _ in failing), failing
    for loader in all_loaders():
        if not loader.append_only:
            assert bisect_diff(loader, source, conn).total == 0, loader.name
    assert conn.execute("SELECT count(*) FROM funds_ledger_entries").fetchone()[0] == ledger_rows  # kept

    # --- the auditor: list the conflicts, acknowledge each, and payments is green, listing them
    rc, out = cli(capsys, "ledger-conflicts", "--json")
    listed = json.loads(out)
    assert rc == 1 and sorted(c["entry"] for c in listed["conflicts"]) == sorted(entries)
    assert {c["differs"] for c in listed["conflicts"]} == {"changed: amount", "absent from Mongo"}
    for e in entries:
        rc, out = cli(capsys, "ledger-conflicts", "--ack", e, "--reason", "reversal booked in Mongo by ops",
                      "--by", "auditor@example")
        assert rc == 0 and f"acknowledged {e}" in out
    rc, out = cli(capsys, "verify", "--domain", "payments", "--json")
    assert rc == 0, out
    records = home.event_log_storage.get_latest_asset_check_execution_by_key(
        [dg.AssetCheckKey(table_key("funds_ledger_entries"), "checksum_parity")])
    evaluation = next(iter(records.values())).event.dagster_event.event_specific_data
    assert evaluation.passed and evaluation.metadata["acknowledged_conflicts"].value == 3
    assert "auditor@example" in evaluation.metadata["acknowledged"].value

    # --- a second evaluation of both sensors requests nothing -------------------------------
    cursor = tick(source_change_sensor, home, res, cursor=first.cursor).cursor
    assert not tick(source_change_sensor, home, res, cursor=cursor).run_requests
    assert not tick(parity_failure_sensor, home, {}).run_requests

    # --- a new difference on an acknowledged entry fails again ------------------------------
    ledger = loader_for_table("funds_ledger_entries")
    assert verify_loader(ledger, source, conn).ok
    db.fundsledgerentries.update_one({"_id": ObjectId(entries[0])}, {"$set": {"amount": Decimal128("0.02")}})
    assert not verify_loader(ledger, source, conn).ok

    # --- and a wrong delete is undone from PostgreSQL alone, as the README says -------------
    conn.execute("INSERT INTO public.reviews SELECT (jsonb_populate_record(NULL::public.reviews, row)).* "
                 "FROM migration.removed_rows WHERE table_name = 'reviews' AND document = %s", [gone_reviews[0]])
    assert conn.execute("SELECT count(*) FROM reviews WHERE legacy_object_id = %s", [gone_reviews[0]]).fetchone()[0] == 1


def test_a_table_that_keeps_failing_is_left_to_people(migrated, definitions, home, live_source_db, mongo_client,
                                                     capsys):
    """A user removed from Mongo whose rows PostgreSQL still references: each reconciliation
    refuses the removal, naming both rows; after MAX_RECONCILIATIONS the sensor stops and
    ``status`` says so."""
    conn = migrated
    user = conn.execute("SELECT u.legacy_object_id FROM users u JOIN addresses a ON a.user_id = u.id "
                        "ORDER BY 1 LIMIT 1").fetchone()[0]
    mongo_client[live_source_db].users.delete_one({"_id": ObjectId(user)})
    for n in range(MAX_RECONCILIATIONS):
        scheduled_verification(definitions, home, "verify_auth")
        (request,) = tick(parity_failure_sensor, home, {}).run_requests
        run = launch(definitions, home, request, parity_failure_sensor.name, "reconcile")
        assert not run.success
        failure = next(e for e in run.all_events if e.event_type_value == "STEP_FAILURE")
        why = failure.event_specific_data.error.message
        # Both named: the user, and the rows (by their legacy ids) whose foreign key still holds it.
        named = re.search(rf"users {user} not removed: (\w+) ([0-9a-f, ]+) still references it \((\w+)\)", why)
        assert named, why
        table, ids, constraint = named.group(1), named.group(2).split(", "), named.group(3)
        column = conn.execute("SELECT a.attname FROM pg_constraint c JOIN pg_attribute a ON a.attrelid = c.conrelid "
                              "AND a.attnum = c.conkey[1] WHERE c.conname = %s", [constraint]).fetchone()[0]
        holders = conn.execute(f"SELECT t.legacy_object_id FROM public.{table} t JOIN users u ON u.id = t.{column} "
                               f"WHERE u.legacy_object_id = %s ORDER BY 1 LIMIT 5", [user]).fetchall()
        assert [h[0] for h in holders] == ids
    scheduled_verification(definitions, home, "verify_auth")
    last = tick(parity_failure_sensor, home, {})
    assert not last.run_requests and "left to people" in last.skip_reason.skip_message
    rc, out = cli(capsys, "status")
    assert f"auth: users still differs after {MAX_RECONCILIATIONS} reconciliations; left to people" in out
    assert conn.execute("SELECT count(*) FROM users WHERE legacy_object_id = %s", [user]).fetchone()[0] == 1


def test_a_vanished_parent_and_its_vanished_children_are_both_removed(migrated, platform_conn, live_source_db,
                                                                      stack_env, mongo_client):
    """A purchase request deleted in Mongo together with its offers: its removal is refused
    while the offers still reference it, and tried again, in reverse FK order, once they are
    gone; both end removed, and kept in the audit table."""
    conn = migrated
    pr, offers = conn.execute(
        "SELECT p.legacy_object_id, array_agg(o.legacy_object_id ORDER BY o.legacy_object_id) FROM purchase_requests p "
        "JOIN seller_offers o ON o.purchase_request_id = p.id WHERE p.selected_offer_id IS NULL "
        + "".join(f"AND NOT EXISTS (SELECT 1 FROM {t} x WHERE x.purchase_request_id = p.id) "
                  for t in ("chats", "disputes", "payments", "reviews", "release_holds"))
        + "GROUP BY 1 ORDER BY 1 LIMIT 1").fetchone()
    db = mongo_client[live_source_db]
    db.purchaserequests.delete_one({"_id": ObjectId(pr)})
    db.selleroffers.delete_many({"_id": {"$in": oids(offers)}})
    source = LiveSource(stack_env["MONGODB_URI"], live_source_db)
    loaders = [l for l in all_loaders() if l.domain == "marketplace"]
    done = {r.loader: r for r in reconcile_loaders(loaders, source, platform_conn, run_id="test")}
    assert (done["purchase_requests"].removed, sorted(done["seller_offers"].removed)) == ([pr], offers)
    assert done["purchase_requests"].refused == {} and sorted(done["seller_offers"].resync.removed) == offers
    assert done["purchase_requests"].resync.removed == [pr]
    kept = conn.execute("SELECT table_name, count(*) FROM migration.removed_rows WHERE effect = 'deleted' "
                        "GROUP BY 1").fetchall()
    assert dict(kept)["seller_offers"] == len(offers) and dict(kept)["purchase_requests"] == 1
    for loader in loaders:
        assert bisect_diff(loader, source, conn).total == 0, loader.name


def test_a_pass_reuses_only_the_digests_of_unchanged_bytes(migrated, platform_conn, live_source_db, stack_env,
                                                           mongo_client):
    """The second pass decodes only the prefixes whose bytes changed, and still finds a row
    changed in PostgreSQL under an unchanged prefix; with ``full`` it finds the same."""
    from migration_assets.cutover.reconcile import reconcile

    conn, loader = migrated, loader_for_table("reviews")
    source = LiveSource(stack_env["MONGODB_URI"], live_source_db)
    first = reconcile(loader, source, platform_conn, run_id="first", dry_run=True)
    assert first.documents_decoded == first.documents_read > 0 and first.documents == 0
    ids = loaded_ids(conn, "reviews", 60)
    in_mongo = ids[0]
    in_pg = next(i for i in reversed(ids) if i[:3] != in_mongo[:3])  # under a prefix whose bytes do not change
    mongo_client[live_source_db].reviews.update_one({"_id": ObjectId(in_mongo)}, {"$set": {"comment": "edited"}})
    conn.execute("UPDATE reviews SET comment = coalesce(comment, '') || ' (edited in PostgreSQL)' "
                 "WHERE legacy_object_id = %s", [in_pg])
    second = reconcile(loader, source, platform_conn, run_id="second", dry_run=True)
    same_prefix = sum(1 for i in ids if i[:3] == in_mongo[:3])
    assert second.changed == sorted([in_mongo, in_pg])
    assert second.documents_decoded < first.documents_decoded and second.documents_decoded >= same_prefix
    full = reconcile(loader, source, platform_conn, run_id="full", dry_run=True, full=True)
    assert full.changed == second.changed and full.documents_decoded >= first.documents_decoded


def test_documents_that_no_longer_map_are_withdrawn_or_kept_and_every_command_says_which(
        migrated, home, live_source_db, mongo_client, capsys):
    """Loaded documents that the application then changes so that they no longer map (an
    integer title; a category referenced by request templates losing its name): reconcile
    quarantines them, removes the rows it may (copied to the audit table first), keeps the one
    other rows still reference, and says so: a kept row is a difference it could not resolve,
    so reconcile exits 1 and diff, verify and status show it; a pass after it finds nothing new."""
    conn = migrated
    db = mongo_client[live_source_db]
    titles = loaded_ids(conn, "notifications", 3)
    db.notifications.update_many({"_id": {"$in": oids(titles)}}, {"$set": {"title": 4200}})
    rc, out = cli(capsys, "reconcile", "notifications")
    line = next(x for x in out.splitlines() if x.strip().startswith("notifications:"))
    # they no longer map, so PostgreSQL's rows of them are extra; withdrawn, not "removed"
    assert rc == 0 and "found 0 new, 0 changed, 3 extra" in line, out
    assert "0 removed, 3 no longer map (quarantined, rows removed), 0 not resolved" in line, out
    assert conn.execute("SELECT count(*) FROM notifications WHERE legacy_object_id = ANY(%s)", [titles]).fetchone()[0] == 0
    audit = conn.execute("SELECT count(DISTINCT document) FROM migration.removed_rows WHERE table_name = "
                         "'notifications' AND document = ANY(%s)", [titles]).fetchone()[0]
    assert audit == 3
    rc, out = cli(capsys, "reconcile", "notifications")
    assert rc == 0 and "found 0 new, 0 changed, 0 extra" in out, out  # never "removed" again
    assert cli(capsys, "diff", "notifications")[0] == 0

    category = conn.execute("SELECT c.legacy_object_id FROM categories c JOIN request_templates t ON t.category_id = "
                            "c.id ORDER BY 1 LIMIT 1").fetchone()[0]
    db.categories.update_one({"_id": ObjectId(category)}, {"$set": {"name": 17}})
    rc, out = cli(capsys, "reconcile", "categories")
    assert rc == 1 and "1 not resolved" in out and f"unresolved {category}" in out, out
    rc, out = cli(capsys, "diff", "categories")
    assert rc == 1 and "1 extra in PostgreSQL" in out and category in out, out
    rc, out = cli(capsys, "verify", "--domain", "marketplace")
    line = next(x for x in out.splitlines() if " public/categories " in x)
    assert rc == 1 and line.split()[0] == "FAILED", out
    rc, out = cli(capsys, "status")
    assert rc == 1 and "check public/categories" in out, out
