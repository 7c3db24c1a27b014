"""Cost of the catch-up that misses nothing (``cutover/reconcile.py``) after 0, 100 and
10,000 changes, against a full load of the same documents, in one run:

    python -m bench.reconcile_cost [--n 1000000] [--changes 0,100,10000] [--workers 2]

The core dataset's dump (``bench/datasets.py``, N core documents) is loaded once into a
base database: that load is the reference time. For each change count k, a copy of the
dump gets k changes spread evenly over ``selleroffers`` (the largest core collection): a
third new offers (copies of existing ones under new ObjectIds, appended as a dump would
hold them), a third changed without ``updatedAt`` (the message), a third deleted (offers no
purchase request selected); the base database is cloned and ``reconcile_loaders`` runs
over every core loader, reusing the digests the pass after the load saved (timed apart:
nothing to reuse then). Reported per k: documents read (source side; each one's bytes are
hashed) and decoded (canonicalized: the changed prefixes, the diff, the re-syncs), ranges hashed,
PostgreSQL rows fetched, seconds, and the ratio to the full load; every loader must then
verify green (not timed). Writes ``bench/reconcile_results.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from pathlib import Path

import bson
from bson import ObjectId

from bench import pg
from bench.datasets import DATABASE, ensure_dump
from bench.measure import ALLOWED, measured

OUT = Path(__file__).with_name("reconcile_results.json")
OFFERS = "selleroffers"


def selected_offers(dump: Path) -> set[bytes]:
    from migration_assets.source.dump import DumpSource

    out = set()
    for batch in DumpSource(dump, DATABASE).iter_batches("purchaserequests"):
        for raw in batch.docs:
            sel = bson.decode(raw).get("selectedOfferId")
            if isinstance(sel, ObjectId):
                out.add(sel.binary)
            elif isinstance(sel, str) and ObjectId.is_valid(sel):
                out.add(ObjectId(sel).binary)
    return out


def mutated_dump(dump: Path, k: int, into: Path) -> dict[str, int]:
    """A copy of ``dump`` with ``k`` changes spread over the offers (hard links for the
    other collections); returns how many of each kind."""
    from migration_assets.source.dump import DumpSource

    if into.exists():
        shutil.rmtree(into)
    (into / DATABASE).mkdir(parents=True)
    for f in (dump / DATABASE).iterdir():
        if f.name != f"{OFFERS}.bson":
            os.link(f, into / DATABASE / f.name)
    source = DumpSource(dump, DATABASE)
    total = source.count(OFFERS)
    keep_selected = selected_offers(dump)
    kinds = {"inserted": k // 3, "updated": k // 3, "deleted": k - 2 * (k // 3)}
    plan = [kind for i in range(k) for kind in [("updated", "deleted", "inserted")[i % 3]] if kinds[kind]]
    step = max(1, total // max(k, 1))
    counts = dict.fromkeys(kinds, 0)
    owed: list[str] = []  # changes due here or earlier (a selected offer is not deleted: the next one is)
    appended: list[bytes] = []
    with open(into / DATABASE / f"{OFFERS}.bson", "wb") as out:
        for i, (raw, _) in enumerate(source._iter_raw(OFFERS)):  # noqa: SLF001 (a bench reads the file as it is)
            if i % step == 0 and i // step < len(plan):
                owed.append(plan[i // step])
            if owed:
                doc = bson.decode(raw)
                kind = owed[0]
                if kind == "deleted" and doc["_id"].binary in keep_selected:
                    out.write(raw)
                    continue
                owed.pop(0)
                counts[kind] += 1
                if kind == "deleted":
                    continue
                if kind == "updated":
                    raw = bson.encode(dict(doc, message=f"{doc.get('message') or ''} (edited by a script)"))
                else:
                    appended.append(bson.encode(dict(doc, _id=ObjectId())))
            out.write(raw)
        for raw in appended:
            out.write(raw)
    return counts


def load_base(dump: Path, url: str) -> float:
    from migration_assets.source.dump import DumpSource

    return load_core(DumpSource(dump, DATABASE), url)


def load_core(source, url: str) -> float:
    """A full load of the core loaders and their remaps from ``source``; its seconds."""
    from migration_assets.load.remap import apply_remap
    from migration_assets.load.report import LoadOptions
    from migration_assets.load.run import run_loader
    from migration_assets.target.guard import connect

    with connect(url, ALLOWED) as conn:
        t0 = time.perf_counter()
        for loader in measured("core"):
            run_loader(loader, source, conn, LoadOptions(batch_size=5000, run_id="bench"))
        for loader in measured("core"):
            for remap in loader.remaps:
                apply_remap(loader, remap, source, conn, run_id="bench")
        return time.perf_counter() - t0


def main() -> None:
    from migration_assets.cutover.reconcile import reconcile_loaders
    from migration_assets.source.dump import DumpSource
    from migration_assets.target.guard import connect
    from migration_assets.verify.checksums import verify_loader

    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--changes", default="0,100,10000")
    ap.add_argument("--workers", type=int, default=1, help="processes hashing the source side")
    args = ap.parse_args()
    dump, counts = ensure_dump("core", args.n)
    pg.ensure_template()
    base, base_url = pg.create("reconcile_base")
    results = {"n": sum(counts.values()), "counts": counts, "workers": args.workers, "cases": []}
    try:
        load_s = load_base(dump, base_url)
        results["full_load_seconds"] = round(load_s, 2)
        print(f"full load of {results['n']} core documents: {load_s:.1f}s", flush=True)
        with connect(base_url, ALLOWED) as conn:  # the pass after the load: nothing saved to reuse yet
            t0 = time.perf_counter()
            first = reconcile_loaders(measured("core"), DumpSource(dump, DATABASE), conn, run_id="bench",
                                      workers=args.workers)
            first_s = time.perf_counter() - t0
        results["first_pass"] = {"seconds": round(first_s, 2), "vs_full_load": round(first_s / load_s, 3),
                                 "documents_decoded": sum(r.documents_decoded for r in first)}
        print(f"first pass after the load (every document canonicalized): {first_s:.1f}s "
              f"({first_s / load_s:.1%} of the load)", flush=True)
        print(f"{'changes':>7} | {'docs read':>9} | {'decoded':>9} | {'ranges hashed':>13} | {'pg rows fetched':>15} | {'seconds':>7} | "
              f"{'vs full load':>12} | found (new/changed/removed) | green after")
        for k in [int(x) for x in args.changes.split(",")]:
            into = dump.with_name(f"{dump.name}-changed")
            made = mutated_dump(dump, k, into)
            changed = DumpSource(into, DATABASE)
            name, url = pg.create("reconcile", template=base)
            try:
                with connect(url, ALLOWED) as conn:
                    t0 = time.perf_counter()
                    done = reconcile_loaders(measured("core"), changed, conn, run_id="bench", workers=args.workers)
                    seconds = time.perf_counter() - t0
                    green = all(verify_loader(l, changed, conn).ok for l in measured("core"))
            finally:
                pg.drop(name)
            case = {"changes": k, "made": made, "seconds": round(seconds, 2),
                    "vs_full_load": round(seconds / load_s, 3),
                    "documents_read": sum(r.documents_read for r in done),
                    "documents_decoded": sum(r.documents_decoded for r in done),
                    "ranges_hashed": sum(r.ranges_hashed for r in done),
                    "postgres_rows_fetched": sum(r.rows_fetched for r in done),
                    "seconds_verifying": round(sum(r.seconds_verifying for r in done), 2),
                    "seconds_locating": round(sum(r.seconds_locating for r in done), 2),
                    "seconds_writing": round(sum(r.seconds - r.seconds_verifying - r.seconds_locating for r in done), 2),
                    "found": {"new": sum(len(r.new) for r in done), "changed": sum(len(r.changed) for r in done),
                              "removed": sum(len(r.removed) for r in done)},
                    "green_after": green}
            results["cases"].append(case)
            f = case["found"]
            print(f"{k:>7} | {case['documents_read']:>9} | {case['documents_decoded']:>9} | {case['ranges_hashed']:>13} | "
                  f"{case['postgres_rows_fetched']:>15} | {seconds:>7.1f} | {case['vs_full_load']:>12.1%} | "
                  f"{f['new']}/{f['changed']}/{f['removed']} of {made} | {green}", flush=True)
            shutil.rmtree(into)
    finally:
        pg.drop(base)
    OUT.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
