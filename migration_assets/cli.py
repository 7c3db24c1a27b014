"""``migration-assets``: the operator's command line. It runs the same Dagster definitions
and jobs the UI runs (recorded in the same Dagster instance), and exits non-zero when a
run or a check fails.

  migration-assets schema                    apply sql/ to MIGRATION_PG_URL
  migration-assets generate [--mongo] [--dump] [--scale N] [--seed N]
  migration-assets migrate --domain D|all [--dry-run]
  migration-assets verify --domain D|all
  migration-assets summary
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence

from migration_assets.spec import DOMAINS, all_loaders


def env(name: str, default: str | None = None) -> str:
    value = os.environ.get(name, default)
    if value is None:
        raise SystemExit(f"{name} is not set (source scripts/env.sh or export it)")
    return value


def target_conn():
    from migration_assets import target as tg

    return tg.connect(env("MIGRATION_PG_URL"), env("MIGRATION_PG_ALLOWED_HOSTS", "127.0.0.1,localhost,::1").split(","))


def cmd_schema(args) -> int:
    from migration_assets.schema import apply_migrations

    with target_conn() as conn:
        result = apply_migrations(conn)
    print(f"schema: {len(result.applied)} migration(s) applied, {len(result.skipped)} already present")
    for name in result.applied:
        print(f"  + {name}")
    return 0


def cmd_generate(args) -> int:
    from migration_assets.generator import generate
    from migration_assets.generator.writers import write_dump, write_mongo

    t = time.perf_counter()
    world = generate(args.seed, args.scale)
    print(f"generate: {world.total()} documents in {len(world.docs)} collections (seed {args.seed}, scale {args.scale})")
    if args.dump:
        print(f"generate: mongodump directory {write_dump(env('MONGODUMP_DIR'), env('MONGODB_DATABASE'), world.docs)}")
    if args.mongo:
        import pymongo

        client = pymongo.MongoClient(env("MONGODB_URI"))
        write_mongo(client[env("MONGODB_DATABASE")], world.docs)
        print(f"generate: written to Mongo database {env('MONGODB_DATABASE')}")
    print(f"generate: {time.perf_counter() - t:.1f}s")
    return 0


def get_definitions():
    from migration_assets.definitions import defs

    return defs()


def instance():
    import dagster as dg

    return dg.DagsterInstance.get() if os.environ.get("DAGSTER_HOME") else dg.DagsterInstance.ephemeral()


def domains(arg: str) -> Sequence[str]:
    if arg == "all":
        return DOMAINS
    if arg not in DOMAINS:
        raise SystemExit(f"unknown domain {arg!r}; one of: all, {', '.join(DOMAINS)}")
    return (arg,)


def present_domains(names: Sequence[str]) -> list[str]:
    have = {l.domain for l in all_loaders()}
    return [d for d in names if d in have]


def run_job(defs, name: str, inst, partition_key: str | None = None, run_config=None):
    job = defs.resolve_job_def(name)
    return job.execute_in_process(instance=inst, partition_key=partition_key, raise_on_error=False,
                                  run_config=run_config or {})


def report_checks(result) -> tuple[int, int]:
    failed = passed = 0
    for ev in result.get_asset_check_evaluations():
        if ev.passed:
            passed += 1
        else:
            failed += 1
            print(f"  FAILED {ev.asset_key.to_user_string()} {ev.check_name} ({ev.severity.value})")
    return passed, failed


def cmd_migrate(args) -> int:
    defs, inst = get_definitions(), instance()
    ok = True
    run_config = None
    if args.dry_run:
        run_config = {"ops": {f"load_{l.name}": {"config": {"dry_run": True}} for l in all_loaders()}}
    for d in present_domains(domains(args.domain)):
        t = time.perf_counter()
        job = f"migrate_{d}"
        if args.dry_run:
            cfg = {"ops": {k: v for k, v in run_config["ops"].items()
                           if any(l.domain == d and k == f"load_{l.name}" for l in all_loaders())}}
        else:
            cfg = None
        result = run_job(defs, job, inst, partition_key=d, run_config=cfg)
        passed, failed = report_checks(result)
        status = "ok" if result.success else "FAILED"
        print(f"migrate {d}: {status} in {time.perf_counter() - t:.1f}s, checks {passed} passed / {failed} failed "
              f"(run {result.run_id})")
        ok = ok and result.success and (failed == 0 or args.dry_run)
    return 0 if ok else 1


def cmd_verify(args) -> int:
    defs, inst = get_definitions(), instance()
    ok = True
    for d in present_domains(domains(args.domain)):
        result = run_job(defs, f"verify_{d}", inst)
        passed, failed = report_checks(result)
        print(f"verify {d}: checks {passed} passed / {failed} failed (run {result.run_id})")
        ok = ok and result.success and failed == 0
    return 0 if ok else 1


def latest_checks(inst, defs) -> dict[tuple[str, str], str]:
    graph = defs.resolve_asset_graph()
    keys = list(graph.asset_check_keys)
    records = inst.event_log_storage.get_latest_asset_check_execution_by_key(keys)
    out = {}
    for key, rec in records.items():
        status = rec.status.value
        if rec.event and rec.event.dagster_event and rec.event.dagster_event.event_specific_data:
            evaluation = rec.event.dagster_event.event_specific_data
            if getattr(evaluation, "passed", None) is not None:
                status = "passed" if evaluation.passed else f"failed/{evaluation.severity.value}"
        out[(key.asset_key.to_user_string(), key.name)] = status
    return out


def cmd_summary(args) -> int:
    defs, inst = get_definitions(), instance()
    checks = latest_checks(inst, defs)
    rows = []
    with target_conn() as conn:
        for loader in all_loaders():
            quarantined = conn.execute(
                "SELECT count(*) FROM migration.quarantine WHERE loader = %s AND resolved_at IS NULL", [loader.name]
            ).fetchone()[0]
            for t in loader.tables:
                n = conn.execute(f"SELECT count(*) FROM public.{t.table}").fetchone()[0]
                key = f"public/{t.table}"
                statuses = [s for (k, _), s in checks.items() if k == key]
                rows.append((loader.domain, t.table, n, quarantined if t.is_root else "", 
                             "all passed" if statuses and all(s == "passed" for s in statuses)
                             else ", ".join(f"{c}={s}" for (k, c), s in checks.items() if k == key and s != "passed") or "not run"))
            for r in loader.remaps:
                key = f"public/{r.table}/{r.column}"
                statuses = [s for (k, _), s in checks.items() if k == key]
                n = conn.execute(f"SELECT count(*) FROM public.{r.table} WHERE {r.column} IS NOT NULL").fetchone()[0]
                rq = conn.execute("SELECT count(*) FROM migration.quarantine WHERE loader = %s AND resolved_at IS NULL",
                                  [r.name]).fetchone()[0]
                rows.append((loader.domain, f"{r.table}.{r.column} (remap)", n, rq,
                             "all passed" if statuses and all(s == "passed" for s in statuses) else "not passed"))
    width = max(len(r[1]) for r in rows)
    print(f"{'domain':15s} {'table':{width}s} {'rows':>9s} {'quarantined':>11s}  checks")
    for r in rows:
        print(f"{r[0]:15s} {r[1]:{width}s} {r[2]:>9} {str(r[3]):>11s}  {r[4]}")
    total = sum(r[2] for r in rows if "(remap)" not in r[1])
    bad = [r for r in rows if r[4] != "all passed"]
    print(f"summary: {len(rows)} tables, {total} rows, {len(bad)} with checks not all passed")
    return 0 if not bad else 1


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="migration-assets", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("schema", help="apply sql/ migrations to the target").set_defaults(fn=cmd_schema)
    g = sub.add_parser("generate", help="generate deterministic sample data")
    g.add_argument("--seed", type=int, default=7)
    g.add_argument("--scale", type=float, default=1.0)
    g.add_argument("--mongo", action="store_true", help="write to MONGODB_URI/MONGODB_DATABASE")
    g.add_argument("--dump", action="store_true", help="write a mongodump directory at MONGODUMP_DIR")
    g.set_defaults(fn=cmd_generate)
    m = sub.add_parser("migrate", help="load and verify a domain (or all, in FK order)")
    m.add_argument("--domain", default="all")
    m.add_argument("--dry-run", action="store_true", help="read, transform and validate; write nothing")
    m.set_defaults(fn=cmd_migrate)
    v = sub.add_parser("verify", help="run every check of a domain without loading")
    v.add_argument("--domain", default="all")
    v.set_defaults(fn=cmd_verify)
    sub.add_parser("summary", help="tables, rows, quarantine and latest check results").set_defaults(fn=cmd_summary)
    args = p.parse_args(argv)
    return args.fn(args)


if __name__ == "__main__":
    sys.exit(main())
