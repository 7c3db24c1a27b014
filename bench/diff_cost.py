"""Cost of the bisection diff against a full row comparison, on the largest generated table.

    python -m bench.diff_cost [--scale 40] [--changed 1,10,100]

Generates the sample world at ``--scale`` into a mongodump directory (cached under
bench/data/), loads the largest table's loader (and the loaders it references) into a
fresh database, changes ``k`` rows of that table in PostgreSQL, and measures:

* bisection: ranges hashed (source + PostgreSQL), documents re-read, rows fetched, seconds;
  level 0 comes from the verification pass the check runs anyway (timed apart), and a
  "cold" run includes that pass;
* full comparison (``verify.diff_rows``): every document and every row, compared in Python.

Both must find exactly the ``k`` changed rows.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import psycopg

from bench import pg
from bench.datasets import DATA, DATABASE

ROOT = Path(__file__).resolve().parents[1]


def ensure_world_dump(scale: float, seed: int = 7) -> Path:
    from migration_assets.generator import generate
    from migration_assets.generator.writers import write_dump

    path = DATA / f"diffcost-{scale:g}"
    manifest = path / "manifest.json"
    if not manifest.exists():
        t = time.perf_counter()
        world = generate(seed=seed, scale=scale)
        write_dump(path, DATABASE, world.docs)
        manifest.write_text(json.dumps({"scale": scale, "seed": seed,
                                        "counts": {k: len(v) for k, v in world.docs.items()}}))
        print(f"generated scale {scale:g} in {time.perf_counter() - t:.0f}s", flush=True)
    return path


def tamper(conn, table: str, column: str, k: int) -> list[str]:
    ids = [r[0] for r in conn.execute(
        f"SELECT legacy_object_id FROM public.{table} ORDER BY md5(legacy_object_id) LIMIT %s", [k]).fetchall()]
    conn.execute(f"UPDATE public.{table} SET {column} = coalesce({column}, '') || ' (changed)' "
                 f"WHERE legacy_object_id = ANY(%s)", [ids])
    return ids


def main() -> None:
    from migration_assets.load.report import LoadOptions
    from migration_assets.load.run import run_loader
    from migration_assets.source.dump import DumpSource
    from migration_assets.specs.kinds import Text
    from migration_assets.specs.registry import all_loaders, ancestors
    from migration_assets.target.schema import apply_schema
    from migration_assets.verify.checksums import verify_loader
    from migration_assets.verify.diff import bisect_diff, diff_rows

    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", type=float, default=40)
    ap.add_argument("--changed", default="1,10,100")
    args = ap.parse_args()
    dump = ensure_world_dump(args.scale)
    counts = json.loads((dump / "manifest.json").read_text())["counts"]
    loaders = {l.collection: l for l in all_loaders()}
    collection = max((c for c in counts if c in loaders), key=lambda c: counts[c])
    loader = loaders[collection]
    table = loader.root
    column = next(c.name for c in table.hashed_columns if type(c.kind) is Text and not c.required)
    source = DumpSource(dump, DATABASE)

    pg.ensure_template()
    name, url = pg.create("diffcost")
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            apply_schema(conn)
            t = time.perf_counter()
            for l in [*ancestors(loader), loader]:
                run_loader(l, source, conn, LoadOptions(run_id="bench"))
            rows = conn.execute(f"SELECT count(*) FROM public.{table.table}").fetchone()[0]
            print(f"largest table: {table.table} ({rows} rows from {counts[collection]} documents of "
                  f"{collection}); loaded with its parents in {time.perf_counter() - t:.0f}s; changing {column}",
                  flush=True)
            header = (f"{'changed':>7} | {'method':<22} | {'ranges hashed':>13} | {'docs read':>9} | "
                      f"{'rows fetched':>12} | {'levels':>6} | {'seconds':>7} | found")
            print(header)
            print("-" * len(header))
            for k in [int(x) for x in args.changed.split(",")]:
                conn.execute(f"UPDATE public.{table.table} SET {column} = replace({column}, ' (changed)', '') "
                             f"WHERE {column} LIKE '%% (changed)'")
                changed = set(tamper(conn, table.table, column, k))
                t = time.perf_counter()
                v = verify_loader(loader, source, conn)
                verify_s = time.perf_counter() - t
                n_buckets = len(v.tables[table.table].source_buckets) + len(v.tables[table.table].target_buckets)
                print(f"{k:>7} | {'verification pass':<22} | {n_buckets:>13} | {v.source_docs:>9} | {0:>12} | "
                      f"{'0':>6} | {verify_s:>7.2f} | (checksum mismatch: {not v.ok})")
                d = bisect_diff(loader, source, conn, verification=v, tables=[table.table], limit=10**6)
                s = d.stats
                found = {x.document for x in d.tables[table.table].sample}
                print(f"{k:>7} | {'bisection (after it)':<22} | {s.ranges_hashed_source + s.ranges_hashed_target:>13} | "
                      f"{s.docs_decoded:>9} | {s.rows_fetched:>12} | {s.levels:>6} | {s.seconds:>7.2f} | "
                      f"{found == changed}")
                t = time.perf_counter()
                cold = bisect_diff(loader, source, conn, tables=[table.table], limit=10**6)
                cold_s = time.perf_counter() - t
                c = cold.stats
                print(f"{k:>7} | {'bisection (cold)':<22} | {c.ranges_hashed_source + c.ranges_hashed_target + n_buckets:>13} | "
                      f"{c.docs_decoded:>9} | {c.rows_fetched:>12} | {c.levels + 1:>6} | {cold_s:>7.2f} | "
                      f"{ {x.document for x in cold.tables[table.table].sample} == changed}")
                t = time.perf_counter()
                full = diff_rows(loader, table.table, source, conn, limit=10**6)
                full_s = time.perf_counter() - t
                print(f"{k:>7} | {'full comparison':<22} | {'-':>13} | {v.source_docs:>9} | {rows:>12} | "
                      f"{'-':>6} | {full_s:>7.2f} | {({key.split('|')[0] for key, _ in full.changed}) == changed}",
                      flush=True)
    finally:
        pg.drop(name)


if __name__ == "__main__":
    main()
