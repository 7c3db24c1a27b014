"""The bad-input corpus (fixtures/bad_input.py) through real Dagster runs, from a mongodump
(raw bytes, including what no server accepts) and from the live server (what it accepts).

Each bad document is quarantined with its reason, the run does not crash, the odd-but-valid
documents load, and the counts and checksums account for every document: the row_count
and checksum checks stay green with the quarantined counts reported.
"""

from __future__ import annotations

import hashlib
from collections import Counter

import dagster as dg
import pytest

from migration_assets.factory.assets import build_loader_asset, build_remap_asset
from migration_assets.factory.resources import MongoSourceResource, PostgresTargetResource
from migration_assets.generator.writers import write_dump, write_mongo
from migration_assets.specs.registry import loader_for_table
from migration_assets_tests.fixtures.bad_input import LOADER_OF, build_corpus
from migration_assets_tests.helpers import check_evaluations, meta_value

pytestmark = pytest.mark.integration

CORE = [loader_for_table(t) for t in ("users", "categories", "request_templates", "purchase_requests", "seller_offers")]


@pytest.fixture(scope="module")
def corpus(world):
    return build_corpus(world)


def source_with_corpus(mode, request, world, corpus, tmp_path):
    docs = {k: list(v) for k, v in world.docs.items() if k in LOADER_OF}
    for coll, extra in corpus.docs(mode).items():
        docs.setdefault(coll, []).extend(extra)
    if mode == "dump":
        write_dump(tmp_path / "dump", "marketplace", docs, raw=corpus.raw())
        return MongoSourceResource(uri="mongodb://127.0.0.1:1/", database="marketplace", mode="dump",
                                   dump_dir=str(tmp_path / "dump")), docs
    stack_env, client, name = (request.getfixturevalue(f) for f in ("stack_env", "mongo_client", "mongo_db_name"))
    write_mongo(client[name], docs, clear=False, chunk=50)
    return MongoSourceResource(uri=stack_env["MONGODB_URI"], database=name), docs


def materialize(mongo, target_url):
    pr = loader_for_table("purchase_requests")
    assets = [build_loader_asset(l) for l in CORE] + [build_remap_asset(pr, pr.remaps[0])]
    return dg.materialize(assets, raise_on_error=False,
                          resources={"mongo": mongo,
                                     "postgres": PostgresTargetResource(url=target_url, allowed_hosts="127.0.0.1")})


@pytest.mark.parametrize("mode", ["dump", "live"])
def test_bad_input_corpus(mode, request, world, corpus, tmp_path, target_url, target_conn):
    mongo, docs = source_with_corpus(mode, request, world, corpus, tmp_path)
    result = materialize(mongo, target_url)
    assert result.success, [f.step_failure_data.error.to_string() for f in result.get_step_failure_events()]

    # Every bad document is quarantined, with the expected reason, and nothing else is.
    rows = target_conn.execute(
        "SELECT loader, legacy_id, reason_code, reason, raw_sha256, raw_bson FROM migration.quarantine "
        "WHERE resolved_at IS NULL").fetchall()
    got = Counter((r[0], r[1], r[2]) for r in rows)
    expected = corpus.expected_quarantine(mode)
    assert got == expected, {"missing": expected - got, "unexpected": got - expected}
    for loader, legacy, code, reason, sha, raw in rows:
        assert reason.strip(), (legacy, code)
        assert raw is not None and hashlib.sha256(raw).hexdigest() == sha  # the exact bytes are kept

    # The odd-but-valid documents loaded.
    for item in corpus.expected_loaded(mode):
        table = loader_for_table(LOADER_OF[item.collection] if item.collection != "purchaserequests"
                                 else "purchase_requests").root.table
        assert target_conn.execute(f"SELECT count(*) FROM {table} WHERE legacy_object_id = %s",
                                   [item.legacy_id]).fetchone()[0] == 1, item.name

    # Counts and checksums account for every document: source = loaded + quarantined.
    evaluations = check_evaluations(result)
    per_loader = corpus.quarantined_per_loader(mode)
    for loader in CORE:
        source_docs = len(docs.get(loader.collection, [])) + len(corpus.raw().get(loader.collection, []) if mode == "dump" else [])
        loaded = target_conn.execute(f"SELECT count(*) FROM {loader.root.table}").fetchone()[0]
        assert source_docs == loaded + per_loader.get(loader.name, 0), loader.name
        for t in loader.table_names:
            for check in ("row_count_parity", "checksum_parity"):
                assert evaluations[(f"public/{t}", check)].passed, (t, check)
        count = evaluations[(f"public/{loader.root.table}", "row_count_parity")]
        assert meta_value(count, "source_documents") == source_docs
        assert meta_value(count, "quarantined_documents") == per_loader.get(loader.name, 0)
        q = evaluations[(f"public/{loader.root.table}", "quarantine_empty")]
        assert q.passed == (per_loader.get(loader.name, 0) == 0)
        assert q.severity == dg.AssetCheckSeverity.WARN

    # A rerun changes nothing: same rows, the same quarantine entries (seen again, not doubled).
    before = target_conn.execute("SELECT count(*), sum(hashtext(legacy_id || reason_code)) FROM migration.quarantine").fetchone()
    again = materialize(mongo, target_url)
    assert again.success
    assert target_conn.execute("SELECT count(*), sum(hashtext(legacy_id || reason_code)) FROM migration.quarantine").fetchone() == before
    for e in again.get_asset_materialization_events():
        changed = e.materialization.metadata.get("rows_inserted_or_changed")
        if changed is not None:
            assert changed.value == 0, e.asset_key
    print(f"\nbad input ({mode}): {sum(expected.values())} quarantined with the expected reason "
          f"({len(set(c for _, _, c in expected))} reason codes), {len(corpus.expected_loaded(mode))} odd-but-valid loaded; "
          f"row_count/checksum checks green for {sum(len(l.tables) for l in CORE)} tables")


def test_truncated_dump_is_refused_before_anything_is_written(world, tmp_path, target_url, target_conn):
    """A dump file cut off mid-document is a damaged dump (re-take it), not a bad document:
    the run refuses it up front, naming the file and the offset, and writes nothing."""
    import bson

    users = world.docs["users"]
    write_dump(tmp_path / "dump", "marketplace", {"users": users})
    path = tmp_path / "dump" / "marketplace" / "users.bson"
    blob = path.read_bytes()
    path.write_bytes(blob[:-7])
    cut_at = len(blob) - len(bson.encode(users[-1]))
    result = dg.materialize([build_loader_asset(loader_for_table("users"))], raise_on_error=False, resources={
        "mongo": MongoSourceResource(uri="mongodb://127.0.0.1:1/", database="marketplace", mode="dump",
                                     dump_dir=str(tmp_path / "dump")),
        "postgres": PostgresTargetResource(url=target_url, allowed_hosts="127.0.0.1")})
    assert not result.success
    error = result.get_step_failure_events()[0].step_failure_data.error
    messages = []
    while error is not None:
        messages.append(error.message)
        error = error.cause
    assert any(f"users.bson is truncated at byte {cut_at}" in m for m in messages), messages
    assert target_conn.execute("SELECT count(*) FROM users").fetchone()[0] == 0
    assert target_conn.execute("SELECT count(*) FROM migration.load_checkpoints").fetchone()[0] == 0
