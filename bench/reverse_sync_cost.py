"""Cost of a rollback's reverse sync (``cutover/reverse_sync.py``) of k rows changed in
PostgreSQL after the cutover, next to a full forward load of the same tables, in one run:

    python -m bench.reverse_sync_cost [--n 100000] [--changes 10000]

The core dataset (``bench/datasets.py``, N core documents) is written to a fresh database of
the live Mongo server (the reverse sync writes a live server), then loaded forward from it into
a fresh PostgreSQL database: that load is the reference time. Then k seller offers, spread
evenly, are changed in PostgreSQL as the application would (``message`` and ``updated_at``), and
the reverse sync runs over every core loader from a cutover time just before. Reported: the
documents it found and wrote, its seconds (locating, then render + audit + write) and the ratio
to the full load; every loader must then verify green (not timed). Writes
``bench/reverse_sync_results.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import time
import uuid
from pathlib import Path

import pymongo
from bson.raw_bson import RawBSONDocument

from bench import pg
from bench.datasets import CORE, DATABASE, ensure_dump
from bench.measure import ALLOWED, measured
from bench.reconcile_cost import load_core

OUT = Path(__file__).with_name("reverse_sync_results.json")


def to_mongo(dump: Path, client: pymongo.MongoClient, name: str) -> None:
    from migration_assets.source.dump import DumpSource

    source = DumpSource(dump, DATABASE)
    db = client.get_database(name)
    for coll in CORE:
        for batch in source.iter_batches(coll, batch_size=5000):
            db[coll].insert_many([RawBSONDocument(raw) for raw in batch.docs], ordered=False)


def main() -> None:
    from migration_assets.cutover.reverse_sync import reverse_sync
    from migration_assets.source.live import LiveSource
    from migration_assets.source.mongo_target import open_mongo_target
    from migration_assets.target.guard import connect
    from migration_assets.verify.checksums import verify_loader

    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--changes", type=int, default=10_000)
    ap.add_argument("--dry-run", action="store_true",
                    help="locate, render and prove every document, write nothing (a server whose updates "
                         "scan the collection, as jongodb's do, would time itself instead of the sync)")
    args = ap.parse_args()
    uri = os.environ.get("MONGODB_URI", "mongodb://127.0.0.1:27117/?directConnection=true")
    dump, counts = ensure_dump("core", args.n)
    pg.ensure_template()
    mongo_db = f"bench_rs_{uuid.uuid4().hex[:8]}"
    client = pymongo.MongoClient(uri)
    name, url = pg.create("reverse_sync")
    results = {"n": sum(counts.values()), "counts": counts, "changes": args.changes, "dry_run": args.dry_run}
    try:
        t0 = time.perf_counter()
        to_mongo(dump, client, mongo_db)
        print(f"{results['n']} core documents written to Mongo in {time.perf_counter() - t0:.1f}s", flush=True)
        source = LiveSource(uri, mongo_db)
        load_s = load_core(source, url)
        with connect(url, ALLOWED) as conn:
            results["full_load_seconds"] = round(load_s, 2)
            print(f"full forward load from the live server: {load_s:.1f}s", flush=True)
            cutover = dt.datetime.now(dt.timezone.utc)
            time.sleep(0.01)
            total = conn.execute("SELECT count(*) FROM seller_offers").fetchone()[0]
            step = max(1, total // args.changes)
            changed = conn.execute(
                "UPDATE seller_offers s SET message = coalesce(s.message, '') || ' (edited in PostgreSQL)', "
                "updated_at = now() FROM (SELECT id, row_number() OVER (ORDER BY legacy_object_id) AS i "
                "FROM seller_offers) o WHERE o.id = s.id AND o.i %% %s = 0 AND o.i / %s <= %s",
                [step, step, args.changes]).rowcount
            target = None if args.dry_run else open_mongo_target(uri, mongo_db, ALLOWED)
            t0 = time.perf_counter()
            done = [reverse_sync(l, source, target, conn, run_id="bench", cutover_at=cutover, dry_run=args.dry_run)
                    for l in measured("core")]
            seconds = time.perf_counter() - t0
            if target is not None:
                target.client.close()
            green = None if args.dry_run else all(verify_loader(l, source, conn).ok for l in measured("core"))
        located = sum(r.seconds_locating for r in done)
        results.update({
            "rows_changed": changed, "seconds": round(seconds, 2), "vs_full_load": round(seconds / load_s, 3),
            "seconds_locating": round(located, 2), "seconds_writing": round(seconds - located, 2),
            "documents_written": sum(len(r.applied) for r in done),
            "documents_planned": sum(len(r.planned) for r in done),
            "documents_refused": sum(len(r.refused) for r in done),
            "documents_read": sum(r.documents_read for r in done), "green_after": green})
        print(f"reverse sync of {changed} rows changed in PostgreSQL: {seconds:.1f}s ({seconds / load_s:.1%} of the "
              f"forward load; locating {located:.1f}s, render + audit + write {seconds - located:.1f}s); "
              f"{results['documents_planned']} planned, {results['documents_written']} documents written, {results['documents_refused']} refused; "
              f"green after: {green}", flush=True)
    finally:
        pg.drop(name)
        client.close()  # jongodb cannot drop, and a delete scans: a restart of the local server empties it
    OUT.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
