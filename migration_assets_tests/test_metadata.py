"""Materialization metadata and progress: what the UI shows about every table load, checked
on a real load (jongodb -> PostgreSQL) with a document that must be quarantined."""

from __future__ import annotations

import datetime as dt

import dagster as dg
import pytest
from bson import ObjectId

from migration_assets.factory.assets import ProgressLog, build_loader_asset, source_collection_asset
from migration_assets.factory.metadata import collection_schema, column_lineage, progress_line, static_table_metadata
from migration_assets.factory.naming import collection_key, table_key
from migration_assets.factory.resources import MongoSourceResource, PostgresTargetResource
from migration_assets.load.report import LoadReport
from migration_assets.specs.registry import all_loaders, loader_for_table

USERS = loader_for_table("users")
T0 = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)


# --- static metadata: lineage and schemas agree -------------------------------------------

@pytest.mark.unit
def test_column_lineage_maps_postgres_columns_to_mongo_field_paths():
    users, passkeys = USERS.table("users"), USERS.table("user_passkeys")
    lineage = column_lineage(USERS, users).deps_by_column
    assert lineage["email"] == [dg.TableColumnDep(asset_key=dg.AssetKey(["mongodb", "users"]), column_name="email")]
    pk = column_lineage(USERS, passkeys).deps_by_column
    assert [d.column_name for d in pk["credential_id"]] == ["passkeys[].credentialId"]
    assert [d.column_name for d in pk["user_id"]] == ["_id"]  # the enclosing document


@pytest.mark.unit
@pytest.mark.parametrize("loader", all_loaders(), ids=lambda l: l.name)
def test_every_lineage_edge_ends_at_a_field_of_the_source_schema(loader):
    fields = {c.name for c in collection_schema(loader).columns}
    for t in loader.tables:
        meta = static_table_metadata(loader, t)
        schema_cols = [c.name for c in meta["dagster/column_schema"].columns]
        assert schema_cols == list(t.column_names)
        for column, deps in column_lineage(loader, t).deps_by_column.items():
            assert column in t.column_names
            for d in deps:
                assert d.asset_key == collection_key(loader.collection)
                assert d.column_name in fields, (t.table, column, d.column_name)
        # Every column with a source path is in the lineage (nothing silently unmapped).
        sourced = {c.name for c in t.columns if c.source_paths}
        assert sourced == set(column_lineage(loader, t).deps_by_column)
        assert "Mongo field path" in meta["column_sources"].value
    spec = source_collection_asset(loader)
    assert spec.metadata["dagster/column_schema"] == collection_schema(loader)


# --- progress --------------------------------------------------------------------------------

class FakeLog:
    def __init__(self):
        self.lines: list[str] = []

    def info(self, msg: str) -> None:
        self.lines.append(msg)


class FakeClock:
    def __init__(self):
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


@pytest.mark.unit
def test_progress_logs_done_of_total_rate_and_eta_at_the_interval():
    log, clock = FakeLog(), FakeClock()
    progress = ProgressLog(log, "users", interval=10.0, clock=clock)
    report = LoadReport("users")
    for step in range(1, 31):  # one batch of 1000 documents per second
        clock.t += 1.0
        report.docs_read = 1000 * step
        report.rows = {"users": 1000 * step, "user_passkeys": 500 * step}
        report.seconds = float(step)
        progress(report, 50_000)
    assert len(log.lines) == 3  # at 10 s, 20 s and 30 s, not every batch
    assert log.lines[0].startswith("users: 10000/50000 documents (20.0%), 15000 rows written, 0 quarantined, 1000 docs/s")
    assert log.lines[0].endswith("ETA 40s")
    assert log.lines[-1].startswith("users: 30000/50000 documents (60.0%)") and log.lines[-1].endswith("ETA 20s")


@pytest.mark.unit
def test_progress_rate_of_a_resumed_load_counts_only_this_run():
    log, clock = FakeLog(), FakeClock()
    progress = ProgressLog(log, "users", interval=5.0, clock=clock)
    report = LoadReport("users", resumed_from="65f000000000000000000000")
    report.docs_read = 40_000  # from the checkpoint
    for _ in range(6):
        clock.t += 1.0
        report.docs_read += 500
        progress(report, 50_000)
    # Logged 5 s after the start: 2000 documents in the 4 s since the first batch (not the
    # 42500 of the checkpoint): 500 docs/s, 7500 left.
    assert log.lines == ["users: 42500/50000 documents (85.0%), 0 rows written, 0 quarantined, 500 docs/s, ETA 15s"]


@pytest.mark.unit
def test_progress_line_without_total_or_rate():
    assert progress_line("x", 10, None, 12, 1, 0.0) == "x: 10 documents, 12 rows written, 1 quarantined, 0 docs/s"
    assert progress_line("x", 0, 5, 0, 0, 0.0).endswith("ETA unknown")


# --- a real load ------------------------------------------------------------------------------

def user_doc(i: int, **over) -> dict:
    doc = {"_id": ObjectId(f"65a0000000000000000000{i:02x}"), "email": f"u{i}@example.com", "username": f"u{i}",
           "createdAt": T0 + dt.timedelta(days=i),
           "passkeys": [{"_id": ObjectId(f"65b0000000000000000000{i:02x}"), "credentialId": f"c{i}",
                         "publicKey": "pk", "createdAt": T0}]}
    doc.update(over)
    return doc


@pytest.mark.integration
def test_materialization_metadata_of_a_real_load(stack_env, mongo_client, mongo_db_name, target_url, target_conn):
    docs = [user_doc(i) for i in range(1, 12)]
    bad = user_doc(40)
    del bad["email"]  # required: the document is quarantined, with the reason
    mongo_client[mongo_db_name]["users"].insert_many(docs + [bad])
    resources = {
        "mongo": MongoSourceResource(uri=stack_env["MONGODB_URI"], database=mongo_db_name, mode="live"),
        "postgres": PostgresTargetResource(url=target_url, allowed_hosts="127.0.0.1"),
    }
    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize(
        [build_loader_asset(USERS)], resources=resources, instance=instance,
        run_config={"ops": {"load_users": {"config": {"batch_size": 3, "progress_interval_s": 0.0}}}},
        raise_on_error=False)
    assert result.success
    mats = {e.asset_key: e.materialization.metadata for e in result.get_asset_materialization_events()}
    users, passkeys = mats[table_key("users")], mats[table_key("user_passkeys")]

    assert users["dagster/row_count"].value == 11 == target_conn.execute("SELECT count(*) FROM users").fetchone()[0]
    assert passkeys["dagster/row_count"].value == 11
    assert users["dagster/table_name"].value.endswith(".public.users")
    assert [c.name for c in users["dagster/column_schema"].schema.columns] == list(USERS.table("users").column_names)
    lineage = passkeys["dagster/column_lineage"].lineage
    assert lineage == column_lineage(USERS, USERS.table("user_passkeys"))
    assert users["rows_loaded"].value == 11 and users["documents_read"].value == 12
    assert users["documents_quarantined"].value == 1 and users["open_quarantine"].value == 1
    assert users["duration_s"].value > 0 and users["rows_per_second"].value > 0
    assert users["quarantine_reasons"].value == {"missing_required": 1}
    sample = users["quarantine_sample"].value
    assert str(bad["_id"]) in sample and "missing_required" in sample and "users.email is required" in sample

    # The checksum on the materialization is the one the checksum check computed in SQL.
    checks = {(e.asset_key, e.check_name): e for e in result.get_asset_check_evaluations()}
    actual = checks[(table_key("users"), "checksum_parity")].metadata["actual_checksum"].value
    assert users["pg_checksum"].value == actual
    assert checks[(table_key("users"), "checksum_parity")].passed
    assert not checks[(table_key("users"), "quarantine_empty")].passed  # WARN: one document held back

    # Progress reached the run log: done of total, rows, rate and ETA (interval 0: every batch).
    messages = [e.user_message for e in instance.all_logs(result.run_id) if "documents (" in (e.user_message or "")]
    assert len(messages) == 4  # 12 documents in batches of 3
    assert messages[0].startswith("users: 3/12 documents (25.0%), 6 rows written, 0 quarantined, ")
    assert "docs/s" in messages[-1] and "ETA" in messages[-1] and "12/12 documents (100.0%)" in messages[-1]


@pytest.mark.integration
def test_metadata_of_a_dry_run_is_an_observation(stack_env, mongo_client, mongo_db_name, target_url, target_conn):
    bad = user_doc(41)
    bad["createdAt"] = "yesterday"
    mongo_client[mongo_db_name]["users"].insert_many([user_doc(1), bad])
    resources = {
        "mongo": MongoSourceResource(uri=stack_env["MONGODB_URI"], database=mongo_db_name, mode="live"),
        "postgres": PostgresTargetResource(url=target_url, allowed_hosts="127.0.0.1"),
    }
    result = dg.materialize([build_loader_asset(USERS)], resources=resources,
                            run_config={"ops": {"load_users": {"config": {"dry_run": True}}}})
    assert result.get_asset_materialization_events() == []
    obs = {e.asset_key: e.event_specific_data.asset_observation.metadata
           for e in result.all_events if e.event_type_value == "ASSET_OBSERVATION"}
    users = obs[table_key("users")]
    assert users["dry_run"].value is True and users["documents_quarantined"].value == 1
    assert str(bad["_id"]) in users["quarantine_sample"].value
    assert target_conn.execute("SELECT count(*) FROM users").fetchone()[0] == 0
    assert target_conn.execute("SELECT count(*) FROM migration.quarantine").fetchone()[0] == 0
