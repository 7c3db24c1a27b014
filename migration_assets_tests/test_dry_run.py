"""Dry run: reads, transforms, validates and reports everything a real run would (counts,
rows, quarantine reasons including missing parents and the constraints PostgreSQL would
refuse), and writes nothing to the target.

"Nothing" is measured: every table of the ``public`` and ``migration`` schemas keeps its
exact content (row count and an md5 over all rows) and its insert/update/delete counters.
The dry run's numbers are then compared with a real run's over the same source.
"""

from __future__ import annotations

import time

import dagster as dg
import pytest

from migration_assets.cli.main import main
from migration_assets.factory.assets import build_loader_asset
from migration_assets.factory.resources import MongoSourceResource, PostgresTargetResource
from migration_assets.generator.writers import write_dump
from migration_assets.load.report import LoadOptions
from migration_assets.load.run import run_loader
from migration_assets.source.dump import DumpSource
from migration_assets.specs.registry import loader_for_table
from migration_assets_tests.fixtures.bad_input import LOADER_OF, build_corpus

pytestmark = pytest.mark.integration

CORE = [loader_for_table(t) for t in ("users", "categories", "request_templates", "purchase_requests", "seller_offers")]
COMPARED = ("documents_read", "documents_quarantined", "rows_loaded", "quarantine_reasons")


def snapshot(conn) -> dict[str, tuple]:
    """Every public and migration table: (rows, md5 of all rows in a fixed order)."""
    tables = [r[0] for r in conn.execute(
        "SELECT format('%I.%I', schemaname, relname) FROM pg_stat_user_tables "
        "WHERE schemaname IN ('public', 'migration') ORDER BY 1").fetchall()]
    out = {}
    for t in tables:
        out[t] = conn.execute(f"SELECT count(*), md5(coalesce(string_agg(x::text, '|' ORDER BY x::text), '')) "
                              f"FROM {t} x").fetchone()
    return out


def write_counters(conn) -> dict[str, tuple]:
    time.sleep(1.5)  # backends report their counters as they end
    return {r[0]: r[1:] for r in conn.execute(
        "SELECT format('%I.%I', schemaname, relname), n_tup_ins, n_tup_upd, n_tup_del FROM pg_stat_user_tables "
        "WHERE schemaname IN ('public', 'migration')").fetchall()}


@pytest.fixture
def corpus_dump(world, tmp_path):
    corpus = build_corpus(world)
    docs = {k: list(v) for k, v in world.docs.items() if k in LOADER_OF}
    for coll, extra in corpus.docs("dump").items():
        docs.setdefault(coll, []).extend(extra)
    write_dump(tmp_path / "dump", "marketplace", docs, raw=corpus.raw())
    return tmp_path / "dump", corpus


def observations(instance) -> dict[str, dict]:
    """asset key -> metadata of its latest observation."""
    out = {}
    for l in CORE:
        for t in l.table_names:
            key = dg.AssetKey(["public", t])
            records = instance.fetch_observations(key, limit=1).records
            if records:
                obs = records[0].event_log_entry.dagster_event.event_specific_data.asset_observation
                out[key.to_user_string()] = {k: getattr(v, "value", v) for k, v in obs.metadata.items()}
    return out


def test_dry_run_writes_nothing_and_reports_what_a_real_run_does(
        corpus_dump, migration_env, target_url, target_conn, tmp_path, monkeypatch, capsys):
    dump, corpus = corpus_dump
    migration_env(mode="dump", dump=dump)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    (tmp_path / "dagster_home").mkdir()
    (tmp_path / "dagster_home" / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")

    before, counters_before = snapshot(target_conn), write_counters(target_conn)
    # The operator's command, per domain (marketplace loaders simulate users, their parent).
    for domain in ("auth", "marketplace"):
        assert main(["migrate", "--domain", domain, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "migrate: dry run, nothing was written to the target" in out and "FAILED" not in out
    assert any(x.startswith("migrate_marketplace ") and " SUCCESS " in x for x in out.splitlines()), out

    assert snapshot(target_conn) == before
    assert write_counters(target_conn) == counters_before
    assert before["migration.load_checkpoints"][0] == 0 and before["migration.quarantine"][0] == 0

    with dg.DagsterInstance.get() as instance:
        dry = observations(instance)
    for l in CORE:
        for t in l.table_names:
            assert dry[f"public/{t}"]["dry_run"] is True

    # The same source, for real.
    real = dg.materialize([build_loader_asset(l) for l in CORE], raise_on_error=False, resources={
        "mongo": MongoSourceResource(uri="mongodb://127.0.0.1:1/", database="marketplace", mode="dump", dump_dir=str(dump)),
        "postgres": PostgresTargetResource(url=target_url, allowed_hosts="127.0.0.1")})
    assert real.success
    mats = {e.asset_key.to_user_string(): {k: getattr(v, "value", v) for k, v in e.materialization.metadata.items()}
            for e in real.get_asset_materialization_events()}
    for l in CORE:
        for t in l.table_names:
            key = f"public/{t}"
            for field in COMPARED:
                if field in mats[key] or field in dry[key]:
                    assert dry[key].get(field) == mats[key].get(field), (key, field)
    reasons = dry["public/purchase_requests"]["quarantine_reasons"]
    assert reasons["missing_reference"] == 2 and reasons["constraint_violation"] == 1  # CHECK quantity > 0
    # An absent request, and a request the dry run found it would quarantine (its simulated parent load).
    assert dry["public/seller_offers"]["quarantine_reasons"]["missing_reference"] == 2
    assert dry["public/users"]["quarantine_reasons"]["constraint_violation"] == 2  # UNIQUE email, index row size
    total_quarantined = sum(dry[f"public/{l.root.table}"]["documents_quarantined"] for l in CORE)
    assert total_quarantined == sum(corpus.expected_quarantine("dump").values())
    print(f"\ndry run: {len(before)} tables unchanged (content and write counters); "
          f"{total_quarantined} quarantine verdicts identical to the real run's")


def test_dry_run_session_is_read_only(target_url, dump_dir):
    """The guarantee is PostgreSQL's, not the code paths': while a dry run holds the
    connection, the session refuses writes to real tables."""
    import psycopg

    from migration_assets.target import guard as tg

    loader = loader_for_table("users")
    with tg.connect(target_url, ["127.0.0.1"]) as conn:
        seen = {}

        def probe(report, total):
            try:
                with conn.transaction():
                    conn.execute("INSERT INTO migration.load_checkpoints (loader, source_fingerprint, status) "
                                 "VALUES ('probe', 'x', 'running')")
            except psycopg.errors.ReadOnlySqlTransaction as e:
                seen["refused"] = str(e)

        report = run_loader(loader, DumpSource(dump_dir, "marketplace"), conn,
                            LoadOptions(dry_run=True, batch_size=10), progress=probe)
        assert "read-only transaction" in seen["refused"]
        assert report.docs_read > 0 and report.docs_quarantined == 0
        # After the dry run the connection is writable again (the op's own session).
        assert conn.execute("SHOW default_transaction_read_only").fetchone()[0] == "off"
        assert conn.execute("SELECT count(*) FROM migration.load_checkpoints").fetchone()[0] == 0
