"""Sensors, evaluated with dg.build_sensor_context on a real (temporary) Dagster instance;
the runs they request are launched here the way the daemon would (same run config, tags and
run key) and their effects checked against the real servers."""

from __future__ import annotations

import datetime as dt
import json

import dagster as dg
import pytest
from bson import ObjectId

from migration_assets.defs.sensors import dualwrite_gap_sensor, source_change_sensor
from migration_assets.factory.resources import MongoSourceResource, PostgresTargetResource
from migration_assets.source.live import LiveSource
from migration_assets.specs.registry import loader_for_table
from migration_assets.verify.diff import bisect_diff
from migration_assets_tests.helpers import failed_checks, run_job

pytestmark = pytest.mark.integration


@pytest.fixture
def instance():
    with dg.instance_for_test() as inst:
        yield inst


def resources(stack_env, target_url, database):
    return {"postgres": PostgresTargetResource(url=target_url, allowed_hosts="127.0.0.1"),
            "mongo": MongoSourceResource(uri=stack_env["MONGODB_URI"], database=database, mode="live")}


def tick(sensor, instance, res, cursor=None) -> dg.SensorResult:
    ctx = dg.build_sensor_context(instance=instance, resources=res, cursor=cursor, sensor_name=sensor.name)
    return sensor(ctx)


def launch(definitions, instance, request: dg.RunRequest, sensor_name: str):
    """What the daemon does with a run request."""
    job = definitions.resolve_job_def(request.job_name or "resync_rows")
    tags = {**request.tags, "dagster/run_key": request.run_key, "dagster/sensor_name": sensor_name}
    return job.execute_in_process(run_config=request.run_config, instance=instance, tags=tags,
                                  partition_key=request.partition_key, raise_on_error=False)


def add_gaps(conn, gaps: list[tuple[str, str, str]]) -> list[int]:
    return [conn.execute("INSERT INTO pg_dualwrite_gaps (entity, legacy_id, operation, error) "
                         "VALUES (%s, %s, %s, 'statement timeout') RETURNING id", list(g)).fetchone()[0] for g in gaps]


def open_gap_rows(conn):
    return conn.execute("SELECT id, attempts, error FROM pg_dualwrite_gaps WHERE resolved_at IS NULL ORDER BY id").fetchall()


def test_gap_sensor_resyncs_exactly_the_gap_rows(migrated, definitions, instance, stack_env, target_url,
                                                 live_source_db, mongo_client):
    conn = migrated
    res = resources(stack_env, target_url, live_source_db)
    first = tick(dualwrite_gap_sensor, instance, res)
    assert not first.run_requests and "no open dual-write gaps" in first.skip_reason.skip_message

    # The application's dual writes failed for these rows: PostgreSQL lost an update, a
    # delete and an insert, and Mongo moved on.
    offer = conn.execute("SELECT legacy_object_id FROM seller_offers ORDER BY 1 LIMIT 1").fetchone()[0]
    conn.execute("UPDATE seller_offers SET message = 'stale' WHERE legacy_object_id = %s", [offer])
    ghost = str(ObjectId())
    conn.execute("INSERT INTO seller_offers (id, legacy_object_id, purchase_request_id, seller_id, price, currency, "
                 "status, created_at) SELECT gen_random_uuid(), %s, purchase_request_id, seller_id, price, currency, "
                 "status, created_at FROM seller_offers WHERE legacy_object_id = %s", [ghost, offer])
    db = mongo_client[live_source_db]
    new_offer = dict(db["selleroffers"].find_one({"_id": ObjectId(offer)}), _id=ObjectId(), message="new")
    db["selleroffers"].insert_one(new_offer)
    user = db["users"].find_one(sort=[("_id", -1)])
    db["users"].update_one({"_id": user["_id"]}, {"$set": {"displayName": "Renamed in Mongo"}})
    ids = add_gaps(conn, [("seller_offers", offer, "update"), ("seller_offers", ghost, "delete"),
                          ("seller_offers", str(new_offer["_id"]), "insert"), ("users", str(user["_id"]), "update")])

    result = tick(dualwrite_gap_sensor, instance, res)
    (request,) = result.run_requests
    config = request.run_config["ops"]["resync_rows"]["config"]
    assert config["gap_ids"] == ids
    assert config["rows"] == [{"entity": "seller_offers", "legacy_ids": [offer, ghost, str(new_offer["_id"])]},
                              {"entity": "users", "legacy_ids": [str(user["_id"])]}]
    # Until the run exists, the same gaps make the same run key: the daemon never launches it twice.
    assert tick(dualwrite_gap_sensor, instance, res).run_requests[0].run_key == request.run_key
    assert json.loads(result.cursor)["last_gap_ids"] == ids

    run = launch(definitions, instance, request, dualwrite_gap_sensor.name)
    assert run.success
    assert open_gap_rows(conn) == []
    resolution = conn.execute("SELECT DISTINCT resolution FROM pg_dualwrite_gaps").fetchall()
    assert resolution == [(f"re-synced from Mongo by run {run.run_id}",)]
    after = tick(dualwrite_gap_sensor, instance, res)
    assert not after.run_requests
    # PostgreSQL now matches Mongo row for row.
    source = LiveSource(stack_env["MONGODB_URI"], live_source_db)
    for table in ("seller_offers", "users"):
        assert bisect_diff(loader_for_table(table), source, conn).total == 0, table
    assert conn.execute("SELECT count(*) FROM seller_offers WHERE legacy_object_id = %s", [ghost]).fetchone()[0] == 0
    assert conn.execute("SELECT display_name FROM users WHERE legacy_object_id = %s",
                        [str(user["_id"])]).fetchone()[0] == "Renamed in Mongo"


def test_gap_is_never_resolved_unless_its_resync_succeeded(migrated, definitions, instance, stack_env, target_url,
                                                           live_source_db, mongo_client, monkeypatch):
    conn = migrated
    res = resources(stack_env, target_url, live_source_db)
    db = mongo_client[live_source_db]
    good = db["selleroffers"].find_one(sort=[("_id", 1)])
    bad = db["selleroffers"].find_one(sort=[("_id", -1)])
    db["selleroffers"].update_one({"_id": good["_id"]}, {"$set": {"message": "fixed"}})
    db["selleroffers"].update_one({"_id": bad["_id"]}, {"$set": {"status": "bogus"}})  # no such enum value
    ids = add_gaps(conn, [("seller_offers", str(good["_id"]), "update"), ("seller_offers", str(bad["_id"]), "update"),
                          ("widgets", str(ObjectId()), "insert")])

    # 1. The run cannot even reach Mongo: it fails before touching any gap.
    (request,) = tick(dualwrite_gap_sensor, instance, res).run_requests
    monkeypatch.setenv("MONGODB_URI", "mongodb://127.0.0.1:9/?directConnection=true&serverSelectionTimeoutMS=300")
    crashed = launch(definitions, instance, request, dualwrite_gap_sensor.name)
    assert not crashed.success
    assert [r[:2] for r in open_gap_rows(conn)] == [(i, 1) for i in ids]
    # The same gaps are requested again, under a new run key (a failed run is retried).
    (retry,) = tick(dualwrite_gap_sensor, instance, res).run_requests
    assert retry.run_key != request.run_key and retry.tags["gap_batch"] == request.tags["gap_batch"]

    # 2. The run works: the good row is re-synced and its gap resolved; the others stay open.
    monkeypatch.setenv("MONGODB_URI", stack_env["MONGODB_URI"])
    partial = launch(definitions, instance, retry, dualwrite_gap_sensor.name)
    assert not partial.success  # it says so: gaps were left open
    rows = {r[0]: r for r in open_gap_rows(conn)}
    assert set(rows) == {ids[1], ids[2]}
    assert rows[ids[1]][1] == 2 and "quarantined" in rows[ids[1]][2] and "bogus" in rows[ids[1]][2]
    assert rows[ids[2]][1] == 2 and "no loader migrates entity 'widgets'" in rows[ids[2]][2]
    assert conn.execute("SELECT message FROM seller_offers WHERE legacy_object_id = %s",
                        [str(good["_id"])]).fetchone()[0] == "fixed"
    # Their attempts changed, so they are a new batch; the bad document is fixed in Mongo.
    db["selleroffers"].update_one({"_id": bad["_id"]}, {"$set": {"status": "pending"}})
    conn.execute("UPDATE pg_dualwrite_gaps SET resolved_at = now(), resolution = 'not ours' WHERE id = %s", [ids[2]])
    (again,) = tick(dualwrite_gap_sensor, instance, res).run_requests
    assert again.run_config["ops"]["resync_rows"]["config"]["gap_ids"] == [ids[1]]
    assert launch(definitions, instance, again, dualwrite_gap_sensor.name).success
    assert open_gap_rows(conn) == []


def test_source_change_sensor_requests_one_catchup_per_change(migrated, definitions, instance, stack_env, target_url,
                                                              live_source_db, mongo_client):
    conn = migrated
    res = resources(stack_env, target_url, live_source_db)
    first = tick(source_change_sensor, instance, res)
    assert not first.run_requests
    cursor = json.loads(first.cursor)
    assert cursor["marks"]["selleroffers"]["id"] == conn.execute(
        "SELECT max(legacy_object_id) FROM seller_offers").fetchone()[0]

    db = mongo_client[live_source_db]
    added = dict(db["selleroffers"].find_one(sort=[("_id", 1)]), _id=ObjectId(), message="brand new")
    db["selleroffers"].insert_one(added)
    pr = db["purchaserequests"].find_one({"updatedAt": {"$exists": True}}, sort=[("_id", 1)])
    db["purchaserequests"].update_one({"_id": pr["_id"]}, {"$set": {"title": "Edited in Mongo",
                                                                    "updatedAt": dt.datetime.now(dt.timezone.utc)}})
    second = tick(source_change_sensor, instance, res, first.cursor)
    (request,) = second.run_requests
    assert request.job_name == "migrate_marketplace" and request.partition_key == "marketplace"
    assert "selleroffers: 1 new, 0 updated" in request.tags["catchup_changes"]
    assert "purchaserequests: 0 new, 1 updated" in request.tags["catchup_changes"]
    # While the catch-up is pending, nothing is requested again.
    assert not tick(source_change_sensor, instance, res, second.cursor).run_requests

    run = launch(definitions, instance, request, source_change_sensor.name)
    assert run.success, failed_checks(run)
    assert conn.execute("SELECT message FROM seller_offers WHERE legacy_object_id = %s",
                        [str(added["_id"])]).fetchone()[0] == "brand new"
    assert conn.execute("SELECT title FROM purchase_requests WHERE legacy_object_id = %s",
                        [str(pr["_id"])]).fetchone()[0] == "Edited in Mongo"
    third = tick(source_change_sensor, instance, res, second.cursor)
    assert not third.run_requests
    assert json.loads(third.cursor)["marks"]["selleroffers"]["id"] == str(added["_id"])
    assert not tick(source_change_sensor, instance, res, third.cursor).run_requests


@pytest.mark.parametrize("mode", ["live", "dump"])
def test_gap_on_a_deleted_child_row_finds_its_document(mode, request, target_conn, dump_dir, stack_env):
    """A gap names an embedded row (a delivery attempt) that PostgreSQL lost: its document
    is found in Mongo and re-synced, and the gap resolved."""
    from migration_assets.load.report import LoadOptions
    from migration_assets.load.resync import resync_gaps
    from migration_assets.load.run import run_loader
    from migration_assets.source.dump import DumpSource
    from migration_assets.specs.registry import all_loaders
    from migration_assets.target.gaps import open_gaps

    if mode == "live":
        source = LiveSource(stack_env["MONGODB_URI"], request.getfixturevalue("live_source_db"))
    else:
        source = DumpSource(dump_dir, "marketplace")
    for loader in all_loaders():
        run_loader(loader, source, target_conn, LoadOptions(run_id="test"))
    doc, attempt = target_conn.execute(
        "SELECT p.legacy_object_id, a.legacy_object_id FROM delivery_attempts a "
        "JOIN purchase_requests p ON p.id = a.purchase_request_id ORDER BY 2 DESC LIMIT 1").fetchone()
    target_conn.execute("DELETE FROM delivery_attempts WHERE legacy_object_id = %s", [attempt])
    add_gaps(target_conn, [("delivery_attempts", attempt, "insert"), ("delivery_attempts", str(ObjectId()), "insert")])
    (report,) = resync_gaps(source, target_conn, open_gaps(target_conn), run_id="resync")
    assert report.loaded == [doc] and len(report.gaps_resolved) == 1
    assert target_conn.execute("SELECT count(*) FROM delivery_attempts WHERE legacy_object_id = %s",
                               [attempt]).fetchone()[0] == 1
    (left,) = open_gaps(target_conn)  # the row nobody holds stays open, saying why
    assert "neither in PostgreSQL nor in any purchaserequests document" in target_conn.execute(
        "SELECT error FROM pg_dualwrite_gaps WHERE id = %s", [left.id]).fetchone()[0]


def test_sensors_skip_saying_why_when_a_server_is_unusable(instance, pg_server, stack_env):
    # A PostgreSQL database without the schema, and a Mongo server nobody listens on.
    res = {"postgres": PostgresTargetResource(url=pg_server, allowed_hosts="127.0.0.1"),
           "mongo": MongoSourceResource(uri="mongodb://127.0.0.1:9/?serverSelectionTimeoutMS=300", database="x")}
    gaps = tick(dualwrite_gap_sensor, instance, res)
    assert not gaps.run_requests and "pg_dualwrite_gaps" in gaps.skip_reason.skip_message
    changes = tick(source_change_sensor, instance, res, cursor='{"marks": {}}')
    assert not changes.run_requests and "cannot compare the source" in changes.skip_reason.skip_message
    assert changes.cursor == '{"marks": {}}'  # nothing learned, nothing lost


def test_source_change_sensor_on_a_mongodump_directory(migration_env, definitions, dump_dir, tmp_path, instance,
                                                       stack_env, target_url):
    import shutil

    import bson

    dump = tmp_path / "dump"
    shutil.copytree(dump_dir, dump)
    migration_env(mode="dump", dump=dump)
    assert run_job(definitions, "migrate_marketplace", partition_key="marketplace").success
    res = {"postgres": PostgresTargetResource(url=target_url, allowed_hosts="127.0.0.1"),
           "mongo": MongoSourceResource(uri=stack_env["MONGODB_URI"], mode="dump", dump_dir=str(dump))}
    first = tick(source_change_sensor, instance, res)
    assert not first.run_requests  # the file the last load read: nothing to scan
    path = dump / "marketplace" / "selleroffers.bson"
    offer = bson.decode(path.read_bytes()[:int.from_bytes(path.read_bytes()[:4], "little")])
    with open(path, "ab") as f:  # a newer dump: one more document
        f.write(bson.encode(dict(offer, _id=ObjectId(), message="in the new dump")))
    (request,) = tick(source_change_sensor, instance, res, first.cursor).run_requests
    assert request.tags["catchup_changes"] == "selleroffers: 1 new, 0 updated"
    assert request.partition_key == "marketplace"


def test_gaps_under_the_applications_own_entity_names_are_resynced(migrated, definitions, instance, stack_env,
                                                                   target_url, live_source_db):
    """The application records gaps by its Mongoose model names (Payment, PurchaseRequest) as
    often as by table names: one resolver maps them all to their loaders. A gap no loader
    migrates stays open with that reason."""
    conn = migrated
    payment = conn.execute("SELECT legacy_object_id FROM payments ORDER BY 1 LIMIT 1").fetchone()[0]
    request_a, request_b = [r[0] for r in conn.execute(
        "SELECT legacy_object_id FROM purchase_requests ORDER BY 1 LIMIT 2").fetchall()]
    conn.execute("UPDATE payments SET provider_reference = 'stale' WHERE legacy_object_id = %s", [payment])
    conn.execute("UPDATE purchase_requests SET title = 'stale' WHERE legacy_object_id = ANY(%s)", [[request_a, request_b]])
    ids = add_gaps(conn, [("Payment", payment, "update"), ("PurchaseRequest", request_a, "update"),
                          ("purchase_requests", request_b, "update"), ("WidgetOrder", str(ObjectId()), "insert")])
    result = tick(dualwrite_gap_sensor, instance, resources(stack_env, target_url, live_source_db))
    (request,) = result.run_requests
    launch(definitions, instance, request, "dualwrite_gap_sensor")
    resolved = {r[0] for r in conn.execute("SELECT id FROM pg_dualwrite_gaps WHERE resolved_at IS NOT NULL").fetchall()}
    assert set(ids[:3]) <= resolved
    assert conn.execute("SELECT count(*) FROM purchase_requests WHERE title = 'stale'").fetchone()[0] == 0
    assert conn.execute("SELECT provider_reference FROM payments WHERE legacy_object_id = %s",
                        [payment]).fetchone()[0] != "stale"
    (error,) = conn.execute("SELECT error FROM pg_dualwrite_gaps WHERE id = %s", [ids[3]]).fetchone()
    assert error == "re-sync: no loader migrates entity 'WidgetOrder'"
