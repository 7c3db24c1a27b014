"""Every source field accounted for: the verification pass takes a census of the documents'
field paths; a path the spec neither maps nor ignores fails ``fields_accounted_for``, named
with its document count and sample _ids; declaring it ignored turns the check green."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re

import pytest
from bson import ObjectId
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from migration_assets.factory.checks import census_check
from migration_assets.source.census import Census, verdicts
from migration_assets.source.live import LiveSource
from migration_assets.specs.registry import all_loaders, loader_for_table
from migration_assets.verify.checksums import verify_loader
from migration_assets_tests.fixtures.any_bson import values
from migration_assets_tests.helpers import check_evaluations, meta_value, run_job

USERS = loader_for_table("users")


@pytest.mark.unit
def test_the_sample_world_is_fully_mapped(world):
    for loader in all_loaders():
        census = Census()
        for d in world.docs.get(loader.collection, ()):
            census.add(d, str(d["_id"]))
        assert [v.path for v in verdicts(loader, census) if v.status != "mapped"] == [], loader.name


documents = st.lists(st.dictionaries(st.sampled_from(["a", "b", "tags", "5f" * 12, "2024-05-01"]), values(),
                                     max_size=4), max_size=12)


@pytest.mark.unit
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(documents, min_size=1, max_size=4))
def test_batches_kept_as_json_add_up_to_one_census(batches):
    """A load keeps each batch's census as JSON; added up, they say what one census of every
    document says (paths, types, counts, sample _ids, map keys)."""
    whole, parts = Census(), Census()
    i = 0
    for docs in batches:
        part = Census()
        for d in docs:
            i += 1
            whole.add(d, str(i))
            part.add(d, str(i))
        parts.merge(Census.from_json(json.loads(json.dumps(part.to_json()))))
    assert (parts.documents, parts.pairs, parts.counts, parts.ids, parts.map_keys) == \
        (whole.documents, whole.pairs, whole.counts, whole.ids, whole.map_keys)
    assert parts.paths == whole.paths


@pytest.mark.unit
def test_paths_types_and_counts():
    census = Census()
    census.add({"_id": ObjectId(), "a": {"b": 1, "c": [{"d": "x"}, {"d": 2}]}, "tags": ["x", "y"]}, "1")
    census.add({"_id": ObjectId(), "a": {"b": 1.5}, "tags": []}, "2")
    paths = census.paths
    assert paths["a.b"].documents == 2 and dict(paths["a.b"].types) == {"int": 1, "double": 1}
    assert dict(paths["a.c[].d"].types) == {"string": 1, "int": 1} and paths["a.c[].d"].documents == 1
    assert paths["tags"].documents == 2 and paths["tags[]"].documents == 1
    assert paths["a.c"].sample_ids == ["1"]


@pytest.mark.integration
def test_unmapped_fields_fail_by_name_until_declared_ignored(migrated, definitions, mongo_client, live_source_db,
                                                             stack_env, target_conn):
    users = mongo_client[live_source_db]["users"]
    top, nested = ObjectId(), ObjectId()
    users.insert_one({"_id": top, "email": "extra@example.com", "createdAt": dt.datetime.now(dt.timezone.utc),
                      "nickname": "newly added by the application"})
    users.insert_one({"_id": nested, "email": "nested@example.com", "createdAt": dt.datetime.now(dt.timezone.utc),
                      "passkeys": [{"_id": ObjectId(), "credentialId": "c", "publicKey": "k",
                                    "createdAt": dt.datetime.now(dt.timezone.utc), "aaguid": "ab12"}]})
    assert run_job(definitions, "migrate_auth", partition_key="auth").success
    result = run_job(definitions, "verify_auth")
    evaluation = check_evaluations(result)[("public/users", "fields_accounted_for")]
    assert not evaluation.passed and meta_value(evaluation, "unmapped") == 2
    table = meta_value(evaluation, "unmapped_paths")
    assert f"| nickname | 1 | string | {top} |" in table
    assert f"| passkeys[].aaguid | 1 | string | {nested} |" in table
    assert result.success  # not blocking: the rows loaded are right, a column is missing

    lenient = dataclasses.replace(USERS, ignored={"nickname": "display only, not migrated",
                                                  "passkeys[].aaguid": "authenticator model, not needed"})
    source = LiveSource(stack_env["MONGODB_URI"], live_source_db)
    census = verify_loader(USERS, source, target_conn).census
    green = census_check(lenient, census)
    assert green.passed and green.metadata["ignored"].value == 2
    assert "display only, not migrated" in green.metadata["ignored_paths"].value


@pytest.mark.integration
def test_scaffold_drafts_a_spec_that_loads_as_definitions(mongo_client, mongo_db_name, world, stack_env, tmp_path,
                                                         migration_env, capsys):
    import importlib.util

    import dagster as dg
    from bson import Decimal128

    from migration_assets.cli.main import main
    from migration_assets.factory.assets import build_loader_asset, source_collection_asset
    from migration_assets.factory.resources import MongoSourceResource, PostgresTargetResource
    from migration_assets.generator.writers import write_mongo

    write_mongo(mongo_client[mongo_db_name], {"users": world.docs["users"]}, clear=False)
    users = [u["_id"] for u in world.docs["users"]]
    orders = [{"_id": ObjectId(), "__v": 0, "buyer": users[i % len(users)], "title": f"order {i}",
               "amount": Decimal128(f"{i}.50"), "placedAt": dt.datetime(2024, 1, 1 + i, tzinfo=dt.timezone.utc),
               "tags": ["a", "b"], "meta": {"color": "red", "giftWrap": bool(i % 2)},
               "lines": [{"sku": f"S{i}", "qty": 1 + i}], **({"note": "n"} if i % 2 else {})} for i in range(6)]
    mongo_client[mongo_db_name]["widgetorders"].insert_many(orders)
    migration_env(mode="live", database=mongo_db_name)

    capsys.readouterr()
    assert main(["profile", "widgetorders"]) == 0
    profile = capsys.readouterr().out
    assert "profile widgetorders: 6 documents, no spec yet" in profile and "lines[].qty" in profile

    assert main(["scaffold", "widgetorders", "--domain", "marketplace", "--name", "widget_orders"]) == 0
    text = capsys.readouterr().out
    assert 'Column("buyer", Ref("users"), "buyer", required=True)' in text
    assert 'Column("amount", MONEY, "amount", required=True)' in text
    assert 'Column("meta_color", TEXT, "meta.color", required=True)' in text
    assert 'Column("note", TEXT, "note")' in text  # in half the documents: not required
    assert 'Column("tags", TEXT_ARRAY, "tags"' in text and 'rows=array("lines")' in text
    assert 'ignored={"__v": "Mongoose version key"}' in text

    path = tmp_path / "widget_orders.py"
    path.write_text(text)
    spec = importlib.util.spec_from_file_location("draft_widget_orders", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    loader = module.LOADER
    assert [t.table for t in loader.tables] == ["widget_orders", "widget_orders_lines"]
    defs = dg.Definitions(assets=[source_collection_asset(loader), build_loader_asset(loader)],
                          resources={
                              "mongo": MongoSourceResource(uri=stack_env["MONGODB_URI"], database=mongo_db_name),
                              "postgres": PostgresTargetResource(url="postgresql://x@127.0.0.1/x")})
    dg.Definitions.validate_loadable(defs)
    # The draft accounts for every path of the collection it was drafted from.
    from migration_assets.source.census import census_of
    census = census_of(LiveSource(stack_env["MONGODB_URI"], mongo_db_name), "widgetorders")
    assert [v.path for v in verdicts(loader, census) if v.status == "unmapped"] == []


@pytest.mark.integration
def test_profile_and_scaffold_of_a_real_shaped_collection(mongo_client, mongo_db_name, world, migration_env, tmp_path,
                                                          monkeypatch, capsys):
    """Documents written through pymongo with the shapes of public data sets: ``profile``
    collapses their maps, ``scaffold --write`` writes a draft that loads (once), and refuses a
    collection that has a spec, or a draft naming what a spec has, writing nothing."""
    from migration_assets.cli import source as cli_source
    from migration_assets.cli.main import main
    from migration_assets.generator.writers import write_mongo
    from migration_assets_tests.fixtures.real_shapes import customers

    write_mongo(mongo_client[mongo_db_name], {"users": world.docs["users"]}, clear=False)  # for --diff
    mongo_client[mongo_db_name]["customers"].insert_many(customers())
    migration_env(mode="live", database=mongo_db_name)
    monkeypatch.setattr(cli_source, "TABLES_DIR", tmp_path)  # drafts go here, not into the package

    def cli(*args) -> tuple[int, str, str]:
        capsys.readouterr()
        rc = main(list(args))
        out = capsys.readouterr()
        return rc, out.out, out.err

    rc, out, _ = cli("profile", "customers")
    assert rc == 0 and "tier_and_details.<key>.tier" in out and "daily_logins.<key>" in out
    assert not re.search(r"tier_and_details\.[0-9a-f]{32}", out)

    rc, out, err = cli("scaffold", "customers", "--domain", "marketplace", "--write")
    assert rc == 0 and (tmp_path / "marketplace" / "customers.py").exists(), out + err
    rc, _, err = cli("scaffold", "customers", "--domain", "marketplace", "--write")
    assert rc == 1 and "exists; not overwritten" in err

    rc, _, err = cli("scaffold", "users", "--domain", "content_social", "--write")
    assert rc == 1 and "already has a spec: tables/auth/users.py (loader users)" in err
    assert not (tmp_path / "content_social").exists()
    rc, out, err = cli("scaffold", "users", "--domain", "auth", "--diff")
    assert rc == 0 and out.startswith("---") and "+++ draft" in out, out + err

    rc, _, err = cli("scaffold", "customers", "--domain", "auth", "--name", "users", "--write")
    assert rc == 1 and "not written" in err and "loader 'users' (auth/users.py)" in err
    assert not (tmp_path / "auth").exists()
