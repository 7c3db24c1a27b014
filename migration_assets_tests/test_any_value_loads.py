"""Any BSON value in any mapped field, loaded: from a mongodump, and through pymongo into the
live server. Every path runs on it without raising, and what it says holds.

Each example takes a spec and a few documents the migration already loaded (the session's
migrated sample world), replaces one field of each by any BSON value or removes it
(``fixtures/any_bson.py``), and runs the load again over a copy of the migrated target:

* no path raises: the load, the checksums (both sides, and the source side the load kept of
  what it read, which must equal a fresh read's), the bisection diff, a reconciliation,
  readiness's sample comparison, a re-sync, the census and a scaffold drafted from it;
* a document is quarantined exactly when the load path rejects it: every document the
  transform rejects is, and any other quarantined one was refused by reference resolution or
  a constraint (named in its reason); a quarantined document keeps no stale row;
* afterwards the checksums are equal on both sides, and the diff and the catch-up find nothing.
"""

from __future__ import annotations

import contextlib
import os
import random

import psycopg
import pytest
from bson.raw_bson import RawBSONDocument
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from migration_assets.cutover.readiness import sample_loader
from migration_assets.cutover.reconcile import reconcile
from migration_assets.generator.writers import write_dump
from migration_assets.load.report import LoadOptions
from migration_assets.load.resync import resync_documents
from migration_assets.load.run import run_loader
from migration_assets.source.census import census_of
from migration_assets.source.dump import DumpSource
from migration_assets.source.live import LiveSource
from migration_assets.source.scaffold import draft
from migration_assets.specs.registry import all_loaders
from migration_assets.target.bookkeeping import open_quarantine_keys
from migration_assets.transform.context import prepare_context
from migration_assets.transform.document import reference_document
from migration_assets.transform.results import Rejected
from migration_assets.verify.checksums import verify_loader
from migration_assets.verify.diff import bisect_diff
from migration_assets.verify.load_digests import LoadDigests
from migration_assets_tests.conftest import create_database, db_url, drop_databases
from migration_assets_tests.fixtures.any_bson import encode, mutate, mutations
from migration_assets_tests.helpers import source_side

pytestmark = pytest.mark.integration

LOADERS = all_loaders()
EXAMPLES = int(os.environ.get("ANY_VALUE_LOAD_EXAMPLES", "3"))  # per loader and source
# refusals that come after the transform: a parent the document names is missing, or a
# constraint of the target (its name is in the reason)
LATER_REFUSALS = ("missing_reference", "constraint", "refused")


def cases(loader):
    return st.tuples(st.lists(mutations(loader), min_size=1, max_size=4), st.randoms())


def apply(world, loader, ms, rng) -> tuple[list[dict], dict[str, bytes]]:
    """The collection with one field of a few documents replaced, and those documents' BSON."""
    docs = list(world.docs[loader.collection])
    picked = rng.sample(range(len(docs)), k=min(len(ms), len(docs)))
    raws = {}
    for i, m in zip(picked, ms):
        docs[i] = mutate(docs[i], m)
        raws[str(docs[i]["_id"])] = encode(docs[i])
    return docs, raws


def run_every_path(loader, source, url, raws: dict[str, bytes], what: str) -> int:
    """Everything the platform does with a collection, on ``source``; the documents quarantined."""
    with psycopg.connect(url, autocommit=True) as conn:
        ctx = prepare_context(loader, source)
        report = run_loader(loader, source, conn, LoadOptions(run_id="any-value", batch_size=50, digests=LoadDigests))
        kept = verify_loader(loader, source, conn, loaded_by="any-value")  # what the load kept of its read
        _, content = open_quarantine_keys(conn, loader.name)
        for key, raw in raws.items():
            ref = reference_document(loader, raw, ctx)
            if isinstance(ref, Rejected):
                assert key in content, f"{what}: {key} rejected by the transform, not quarantined"
        reasons = {r["_id"]: r["code"] for r in report.quarantine_sample}
        for key in set(content) & set(raws):
            if not isinstance(reference_document(loader, raws[key], ctx), Rejected):
                assert any(c in reasons.get(key, "") for c in LATER_REFUSALS), (what, key, reasons.get(key))
            # no stale row of a quarantined document, unless the load said why it stays
            held = conn.execute(f"SELECT count(*) FROM public.{loader.root.table} WHERE legacy_object_id = %s",
                                [key]).fetchone()[0]
            assert held == 0 or key in report.kept, (what, key)
        v = verify_loader(loader, source, conn)
        assert not kept.read_source and source_side(kept) == source_side(v), what
        diff = bisect_diff(loader, source, conn)
        found = reconcile(loader, source, conn, run_id="any-value", dry_run=True, full=True)
        # rows kept on purpose, each named: a quarantined document's row another row references,
        # or a ledger entry (never rewritten) whose document changed: an immutable conflict
        stays = set(report.kept) | set(found.conflicts)
        assert set(found.conflicts) <= set(raws), (what, found.conflicts)  # only what we changed
        if not stays:  # equal on both sides, nothing for the diff or the catch-up
            assert v.ok, (what, {t: (tv.source.hexdigest, tv.target.hexdigest) for t, tv in v.tables.items()})
            assert diff.total == 0 and found.documents == 0, (what, found.summary)
        else:  # differences, and every check says so, naming them
            assert not v.ok and set(report.kept) <= set(found.removed) | set(found.conflicts), (what, found.summary)
            named = {d.document for td in diff.tables.values() for d in td.sample}
            assert stays <= named, (what, stays, named)
        sample = sample_loader(loader, source, conn, 20, random.Random(1))
        assert {d.row.split("|")[0] for d in sample.differences} <= stays, (what, sample.differences[:3])
        # a re-sync of the same documents (and of those kept because of them) says the same
        again = resync_documents(loader, source, conn, sorted(set(raws) | set(report.kept)), run_id="any-value")
        assert set(again.unresolved) == stays, (what, again.unresolved, stays)
        assert verify_loader(loader, source, conn).ok == (not stays), what
    census = census_of(source, loader.collection)
    compile(draft(loader.collection, loader.domain, census, name=f"draft_{loader.name}"), "draft.py", "exec")
    return len(set(content) & set(raws))


@pytest.fixture
def fresh_target(pg_server, migrated_template):
    made = []

    def make() -> str:
        made.append(create_database(pg_server, "ma_any", migrated_template))
        return db_url(pg_server, made[-1])

    yield make
    drop_databases(pg_server, *made)


def each_example(loader, world, fresh_target, label: str, source_of) -> None:
    """``EXAMPLES`` generated cases of ``loader``'s collection, each run through every path on
    the source ``source_of(docs)`` yields, against a fresh copy of the migrated target."""
    seen = {"examples": 0, "documents": 0, "quarantined": 0}

    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture])
    @given(cases(loader))
    def one(case):
        ms, rng = case
        docs, raws = apply(world, loader, ms, rng)
        what = f"{loader.name} ({label}): " + "; ".join(m.describe() for m in ms)
        with source_of(docs) as source:
            seen["quarantined"] += run_every_path(loader, source, fresh_target(), raws, what)
        seen["examples"] += 1
        seen["documents"] += len(raws)

    one()
    print(f"\nany value, {loader.name}, {label}: {seen}")
    assert seen["examples"] == EXAMPLES


@pytest.mark.parametrize("loader", LOADERS, ids=[l.name for l in LOADERS])
def test_any_value_loaded_from_a_dump(loader, world, fresh_target, tmp_path_factory):
    @contextlib.contextmanager
    def dump_of(docs):
        d = tmp_path_factory.mktemp("any")
        write_dump(d, "marketplace", {}, raw={loader.collection: [encode(x) for x in docs]})
        yield DumpSource(d, "marketplace")

    each_example(loader, world, fresh_target, "dump", dump_of)


@pytest.mark.parametrize("loader", LOADERS, ids=[l.name for l in LOADERS])
def test_any_value_written_through_pymongo(loader, world, fresh_target, mongo_client, mongo_db_name):
    """The same documents written to the live server as an application would (pymongo; the
    BSON as encoded, invalid UTF-8 included), read back through pymongo."""
    coll = mongo_client[mongo_db_name][loader.collection]

    @contextlib.contextmanager
    def live_with(docs):
        coll.delete_many({})
        coll.insert_many([RawBSONDocument(encode(x)) for x in docs], ordered=True)
        source = LiveSource(mongo_client.address and f"mongodb://{mongo_client.address[0]}:{mongo_client.address[1]}"
                            "/?directConnection=true", mongo_db_name)
        try:
            yield source
        finally:
            source.close()
            coll.delete_many({})

    each_example(loader, world, fresh_target, "live", live_with)
