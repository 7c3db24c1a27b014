"""``python -m migration_assets.generator --seed 7 --scale 1 [--mongo URI] [--dump DIR]``"""

from __future__ import annotations

import argparse
import time

from migration_assets.generator import generate
from migration_assets.generator.writers import write_dump, write_mongo


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--scale", type=float, default=1.0)
    p.add_argument("--mongo", help="MongoDB URI to write to (collections are emptied first)")
    p.add_argument("--database", default="marketplace")
    p.add_argument("--dump", help="mongodump directory to write")
    a = p.parse_args(argv)
    t = time.perf_counter()
    world = generate(a.seed, a.scale)
    print(f"generated {world.total()} documents in {len(world.docs)} collections ({time.perf_counter() - t:.1f}s)")
    if a.dump:
        print(f"dump: {write_dump(a.dump, a.database, world.docs)}")
    if a.mongo:
        import pymongo

        t = time.perf_counter()
        client = pymongo.MongoClient(a.mongo)
        write_mongo(client[a.database], world.docs)
        print(f"mongo: {a.database} written in {time.perf_counter() - t:.1f}s")
    for name, docs in sorted(world.docs.items()):
        print(f"  {name:28s} {len(docs):8d}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
