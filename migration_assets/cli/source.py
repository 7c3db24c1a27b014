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
from migration_assets.specs.registry import DOMAINS, TABLES_PACKAGE, all_loaders

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


class DraftRefused(ValueError):
    """A draft that would clash with the specs there are, or not load as definitions."""


def existing_spec(collection: str):
    return next((l for l in all_loaders() if l.collection == collection), None)


def spec_path(domain: str, name: str) -> Path:
    return TABLES_DIR / domain / f"{name}.py"


def validate_draft(text: str, domain: str, name: str) -> None:
    """The draft loads as definitions beside every spec there is, or :class:`DraftRefused`
    says why: it names a loader, table or collection another spec has, or Dagster refuses it."""
    import dagster as dg

    from migration_assets.definitions import loaded
    from migration_assets.factory.assets import build_loader_asset, source_collection_asset
    from migration_assets.specs.model import LoaderSpec
    from migration_assets.specs.registry import check_place

    namespace: dict = {}
    try:
        exec(compile(text, str(spec_path(domain, name)), "exec"), namespace)  # noqa: S102 - our own draft
    except Exception as e:  # noqa: BLE001 - any way the draft fails to run is a refusal
        raise DraftRefused(f"the draft does not run: {type(e).__name__}: {e}") from None
    loader = namespace.get("LOADER")
    if not isinstance(loader, LoaderSpec):
        raise DraftRefused("the draft defines no LOADER")
    check_place(loader, f"migration_assets.tables.{domain}.{name}")
    others = all_loaders()
    taken = {t: l for l in others for t in l.table_names}
    clash = [f"loader {loader.name!r} ({l.domain}/{l.name}.py)" for l in others if l.name == loader.name]
    clash += [f"table {t!r} (loader {taken[t].name})" for t in loader.table_names if t in taken]
    if clash:
        raise DraftRefused(f"the draft names what another spec has: {', '.join(clash)}; choose another --name")
    try:  # beside the project's definitions: their resources, and no key taken twice
        dg.Definitions.validate_loadable(dg.Definitions.merge(loaded(), dg.Definitions(
            assets=[source_collection_asset(loader), build_loader_asset(loader)])))
    except Exception as e:  # noqa: BLE001 - Dagster's refusal, in one line
        raise DraftRefused(f"the draft does not load as definitions: {type(e).__name__}: "
                           f"{str(e).splitlines()[0]}") from None


def cmd_scaffold(args) -> int:
    import difflib
    import importlib

    if args.domain not in DOMAINS:
        raise UsageError(f"unknown domain {args.domain!r}; one of: {', '.join(DOMAINS)}")
    name = snake(args.name or args.collection)
    spec = existing_spec(args.collection)
    if spec is not None and not args.diff:
        print(f"scaffold: collection {args.collection!r} already has a spec: tables/{spec.domain}/{spec.name}.py "
              f"(loader {spec.name}); `scaffold {args.collection} --domain {spec.domain} --diff` shows how a "
              "draft differs from it", file=sys.stderr)
        return 1
    with resources() as res, res.mongo.session() as source:
        census = census_of(source, args.collection, sample=args.sample, examples=True)
        if not census.documents:
            print(f"scaffold: collection {args.collection!r} holds no document", file=sys.stderr)
            return 1
        text = draft(args.collection, args.domain, census, name=name, owner_of=known_collection_of(source))
    if spec is not None:  # --diff: the draft against the spec there is (its module's file)
        path = Path(importlib.import_module(f"{TABLES_PACKAGE}.{spec.domain}.{spec.name}").__file__)
        sys.stdout.writelines(difflib.unified_diff(path.read_text().splitlines(keepends=True),
                                                   text.splitlines(keepends=True), str(path), "draft"))
        return 0
    if not args.write:
        print(text)
        return 0
    path = spec_path(args.domain, name)
    if path.exists():
        print(f"scaffold: {path} exists; not overwritten", file=sys.stderr)
        return 1
    try:
        validate_draft(text, args.domain, name)
    except (DraftRefused, ValueError) as e:
        print(f"scaffold: not written: {e}", file=sys.stderr)
        return 1
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    print(f"scaffold: wrote {path}; next: its DDL in sql/proposed/, and a review of every `# review:` line")
    return 0
