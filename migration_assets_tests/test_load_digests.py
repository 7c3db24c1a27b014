"""The source side a load keeps of what it read (``verify/load_digests.py``) is used only by the
run that completed the load, and only while it still holds; otherwise the source is read again.
Its equality with a fresh read is proven where every awkward document is: test_compiled.py (the
sample world with the awkward documents, duplicates and invalid BSON), test_any_value_loads.py
(any BSON value in any field of every loader, dump and live), test_ranged.py (three ranges) and
test_faults_resume.py (a load killed twice with SIGKILL, then resumed)."""

from __future__ import annotations

import bson
import psutil
import pytest

from migration_assets.generator.writers import write_dump
from migration_assets.load.report import LoadOptions
from migration_assets.load.run import run_loader
from migration_assets.source.dump import DumpSource
from migration_assets.specs.registry import loader_for_table
from migration_assets.target import guard as tg
from migration_assets.verify import load_digests
from migration_assets.verify.checksums import verify_loader
from migration_assets.verify.load_digests import LoadDigests
from migration_assets_tests.helpers import source_side

pytestmark = pytest.mark.integration

USERS = loader_for_table("users")


def test_only_the_loading_run_uses_what_its_load_kept_and_only_while_it_holds(tmp_path, world, target_url):
    users = world.docs["users"]
    twin = dict(users[3], email="twin@example.com")  # a later occurrence of an _id: quarantined
    write_dump(tmp_path, "marketplace", {"users": users}, raw={"users": [bson.encode(twin)]})
    source = DumpSource(tmp_path, "marketplace")
    with tg.connect(target_url, ["127.0.0.1"]) as conn:
        run_loader(USERS, source, conn, LoadOptions(batch_size=7, run_id="r1", digests=LoadDigests))
        batches = conn.execute("SELECT count(*), sum(documents) FROM migration.load_source_digests "
                               "WHERE loader = 'users'").fetchone()
        assert batches == (-(-(len(users) + 1) // 7), len(users) + 1)
        fresh = verify_loader(USERS, source, conn)
        kept = verify_loader(USERS, source, conn, loaded_by="r1")
        assert fresh.read_source and not kept.read_source
        assert kept.ok and kept.quarantined_docs == 1 and source_side(kept) == source_side(fresh)

        # another run (a scheduled verification) reads the source
        assert verify_loader(USERS, source, conn, loaded_by="r2").read_source

        # the quarantine changed after the load: it, not the load, says what is skipped
        key = str(users[5]["_id"])
        conn.execute("INSERT INTO migration.quarantine (loader, collection, legacy_id, raw_sha256, reason_code, "
                     "reason, reasons, raw_json, run_id) VALUES ('users', 'users', %s, 'x', 'manual', 'held', '[]', "
                     "'{}', 'op')", [key])
        held = verify_loader(USERS, source, conn, loaded_by="r1")
        assert held.read_source and held.quarantined_docs == 2
        assert source_side(held) == source_side(verify_loader(USERS, source, conn))
        conn.execute("DELETE FROM migration.quarantine WHERE legacy_id = %s AND reason_code = 'manual'", [key])
        assert not verify_loader(USERS, source, conn, loaded_by="r1").read_source

        # a batch's share missing: the documents read no longer add up
        conn.execute("DELETE FROM migration.load_source_digests WHERE id = "
                     "(SELECT max(id) FROM migration.load_source_digests WHERE loader = 'users')")
        assert verify_loader(USERS, source, conn, loaded_by="r1").read_source

        # a new load by another run starts its own generation: the old shares are gone
        run_loader(USERS, source, conn, LoadOptions(batch_size=50, run_id="r3", digests=LoadDigests))
        assert verify_loader(USERS, source, conn, loaded_by="r1").read_source
        again = verify_loader(USERS, source, conn, loaded_by="r3")
        assert not again.read_source and source_side(again) == source_side(fresh)


def test_a_side_process_that_dies_costs_the_load_nothing(tmp_path, world, target_url, monkeypatch):
    """The side process killed mid-load (as the out-of-memory killer would): the load goes on
    digesting its batches itself, and what it kept still equals a fresh read."""
    monkeypatch.setattr(load_digests, "SIDE_PROCESS_MIN_DOCS", 0)
    write_dump(tmp_path, "marketplace", {"users": world.docs["users"]})
    source = DumpSource(tmp_path, "marketplace")
    me = psutil.Process()
    before = {p.pid for p in me.children(recursive=True)}
    killed = []

    def kill_the_side_process(report, total):
        if report.batches == 2 and not killed:
            for p in me.children(recursive=True):  # the worker, forked by the forkserver (a child of ours)
                if p.pid not in before and p.ppid() != me.pid:
                    p.kill()
                    killed.append(p.pid)

    with tg.connect(target_url, ["127.0.0.1"]) as conn:
        report = run_loader(USERS, source, conn, LoadOptions(batch_size=7, run_id="r1", digests=LoadDigests),
                            progress=kill_the_side_process)
        assert killed and report.docs_loaded == len(world.docs["users"])
        kept = verify_loader(USERS, source, conn, loaded_by="r1")
        assert not kept.read_source and kept.ok
        assert source_side(kept) == source_side(verify_loader(USERS, source, conn))
