"""Commands about the source: ``generate`` (sample data), ``profile`` (the census of a
collection) and ``scaffold`` (a draft spec from it)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from migration_assets.cli.common import env, resources
from migration_assets.console.errors import UsageError
from migration_assets.source.census import census_of, verdicts
from migration_assets.source.scaffold import draft, snake
from migration_assets.specs.registry import DOMAINS, all_loaders

TABLES_DIR = Path(__file__).resolve().parents[1] / "tables"


def cmd_generate(args) -> int:
    import pymongo

    from migration_assets.generator import generate
    from migration_assets.generator.writers import write_dump, write_mongo

    t = time.perf_counter()
    world = generate(args.seed, args.scale)
    print(f"generate: {world.total()} documents in {len(world.docs)} collections (seed {args.seed}, scale {args.scale})")
    if args.dump:
        print(f"generate: mongodump directory {write_dump(env('MONGODUMP_DIR'), env('MONGODB_DATABASE'), world.docs)}")
    if args.mongo:
        client = pymongo.MongoClient(env("MONGODB_URI"))
        write_mongo(client[env("MONGODB_DATABASE")], world.docs)
        print(f"generate: written to Mongo database {env('MONGODB_DATABASE')}")
    print(f"generate: {time.perf_counter() - t:.1f}s")
    return 0


def known_collection_of(source):
    """For a draft: the table whose collection holds these ObjectIds."""
    def owner(ids):
        for loader in all_loaders():
            if source.find_by_ids(loader.collection, ids[:5]):
                return loader.root.table
        return None
    return owner


def cmd_profile(args) -> int:
    loader = next((l for l in all_loaders() if l.collection == args.collection), None)
    with resources() as res, res.mongo.session() as source:
        census = census_of(source, args.collection, sample=args.sample)
    print(f"profile {args.collection}: {census.documents} documents"
          + (f" (a random sample of at most {args.sample})" if args.sample else "")
          + (f", spec {loader.domain}/{loader.name}" if loader else ", no spec yet (see `scaffold`)"))
    found = verdicts(loader, census) if loader else None
    width = max((len(p) for p in census.paths), default=4)
    for path, stats in sorted(census.paths.items()):
        status = next((v.status + (f" ({v.reason})" if v.reason else "") for v in found if v.path == path), "") \
            if found else ""
        types = ", ".join(f"{t} {n}" for t, n in stats.types.most_common())
        print(f"  {path:{width}s} {stats.documents:>8} ({100 * stats.documents / max(census.documents, 1):5.1f}%)  "
              f"{types}  {status}")
    return 0


def cmd_scaffold(args) -> int:
    if args.domain not in DOMAINS:
        raise UsageError(f"unknown domain {args.domain!r}; one of: {', '.join(DOMAINS)}")
    name = args.name or snake(args.collection)
    with resources() as res, res.mongo.session() as source:
        census = census_of(source, args.collection, sample=args.sample, examples=True)
        if not census.documents:
            print(f"scaffold: collection {args.collection!r} holds no document", file=sys.stderr)
            return 1
        text = draft(args.collection, args.domain, census, name=name, owner_of=known_collection_of(source))
    if not args.write:
        print(text)
        return 0
    path = TABLES_DIR / args.domain / f"{name}.py"
    if path.exists():
        print(f"scaffold: {path} exists; not overwritten", file=sys.stderr)
        return 1
    path.write_text(text)
    print(f"scaffold: wrote {path}; next: its DDL in sql/proposed/, and a review of every `# review:` line")
    return 0
