"""``migration-assets``: the operator's command line. It runs the same Dagster definitions
and jobs the UI runs (recorded in the same Dagster instance), and exits non-zero when a
run or a check fails.

  migration-assets schema                    apply sql/ to MIGRATION_PG_URL
  migration-assets generate [--mongo] [--dump] [--scale N] [--seed N]
  migration-assets migrate --domain D|all [--dry-run]
  migration-assets verify --domain D|all
  migration-assets status                    per domain: rows, quarantine, checks, gaps, last run, verdict
  migration-assets diff TABLE [--limit N]    row-level differences of one table, Mongo vs PostgreSQL
  migration-assets readiness [--domain D|all] [--runs N] [--sample K]   GO / NO-GO per domain
  migration-assets summary                   per table: rows, quarantine, latest check results

Exit status: 0 when everything asked for passed, 1 when a run, a check, a diff or a
readiness verdict failed, 2 on usage errors (unknown domain or table).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence

from migration_assets.specs.registry import DOMAINS, all_loaders


def env(name: str, default: str | None = None) -> str:
    value = os.environ.get(name, default)
    if value is None:
        raise SystemExit(f"{name} is not set (source scripts/env.sh or export it)")
    return value


def allowed_hosts() -> list[str]:
    return env("MIGRATION_PG_ALLOWED_HOSTS", "127.0.0.1,localhost,::1").split(",")


def target_conn(url_var: str = "MIGRATION_PG_URL"):
    from migration_assets.target.guard import connect

    return connect(env(url_var) if url_var == "MIGRATION_PG_URL" else env(url_var, env("MIGRATION_PG_URL")),
                   allowed_hosts())


def cmd_schema(args) -> int:
    """sql/application and sql/proposed as the application's owner (MIGRATION_PG_OWNER_URL),
    sql/platform as the platform's role (MIGRATION_PG_URL); every object reported."""
    from urllib.parse import urlsplit

    from migration_assets.target.grants import grant_statements
    from migration_assets.target.schema import apply_schema

    if args.print_grants:
        url = urlsplit(env("MIGRATION_PG_URL"))
        print("\n".join(grant_statements(url.username or "migration_platform", url.path.lstrip("/") or "postgres")))
        return 0
    same = env("MIGRATION_PG_OWNER_URL", env("MIGRATION_PG_URL")) == env("MIGRATION_PG_URL")
    with target_conn("MIGRATION_PG_OWNER_URL") as owner:
        if same:
            result = apply_schema(owner, alter_application=args.alter_application)
        else:
            with target_conn() as platform:
                result = apply_schema(owner, platform, alter_application=args.alter_application)
    for action in result.actions:
        if action.done != "present" or args.verbose:
            print(f"  {action.line()}")
    counts = ", ".join(f"{result.count(d)} {d}" for d in ("created", "present", "kept", "dropped", "applied", "skipped")
                       if result.count(d) or d in ("created", "present", "kept"))
    print(f"schema: {result.mode}: {counts} ({len(result.applied)} file(s) with changes)")
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
        print(f"unknown domain {arg!r}; one of: all, {', '.join(DOMAINS)}", file=sys.stderr)
        raise SystemExit(2)
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
    for d in present_domains(domains(args.domain)):
        t = time.perf_counter()
        job = f"migrate_{d}"
        if args.dry_run:
            ok = dry_run_domain(defs, job, inst, d) and ok
            continue
        result = run_job(defs, job, inst, partition_key=d)
        passed, failed = report_checks(result)
        status = "ok" if result.success else "FAILED"
        print(f"migrate {d}: {status} in {time.perf_counter() - t:.1f}s, checks {passed} passed / {failed} failed "
              f"(run {result.run_id})")
        ok = ok and result.success and failed == 0
    return 0 if ok else 1


def dry_run_domain(defs, job: str, inst, domain: str) -> bool:
    """One run per loader, only its load step: a dry run materializes nothing, so in one
    run the children of a loader would be skipped; id_map, remaps and checks would write
    or compare a target the dry run leaves untouched. Each loader simulates its parents."""
    from migration_assets.factory.keys import table_key

    ok, lines, t0 = True, [], time.perf_counter()
    for l in all_loaders():
        if l.domain != domain:
            continue
        t = time.perf_counter()
        result = defs.resolve_job_def(job).execute_in_process(
            instance=inst, partition_key=domain, raise_on_error=False,
            run_config={"ops": {f"load_{l.name}": {"config": {"dry_run": True}}}},
            asset_selection=[table_key(x) for x in l.table_names])
        seen = [e.event_specific_data.asset_observation.metadata for e in result.all_events
                if e.event_type_value == "ASSET_OBSERVATION"
                and e.event_specific_data.asset_observation.asset_key == table_key(l.root.table)]
        detail = ""
        if seen:
            meta = {k: getattr(v, "value", v) for k, v in seen[-1].items()}
            detail = (f": {meta.get('documents_read')} documents, {meta.get('documents_quarantined')} would be "
                      f"quarantined {meta.get('quarantine_reasons')}")
        lines.append(f"  {l.name}: {'ok' if result.success else 'FAILED'} in {time.perf_counter() - t:.1f}s"
                     f"{detail} (run {result.run_id})")
        ok = ok and result.success
    print(f"migrate {domain}: {'ok' if ok else 'FAILED'} in {time.perf_counter() - t0:.1f}s "
          f"(dry run, nothing written)")
    print("\n".join(lines))
    return ok


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
    from migration_assets.target.bookkeeping import open_quarantine_count

    defs, inst = get_definitions(), instance()
    checks = latest_checks(inst, defs)
    rows = []
    with target_conn() as conn:
        for loader in all_loaders():
            quarantined = open_quarantine_count(conn, [loader.name])
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
                rq = open_quarantine_count(conn, [r.name])
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


def latest_run(inst, job_name: str):
    import dagster as dg

    records = inst.get_run_records(filters=dg.RunsFilter(job_name=job_name), limit=1)
    return records[0] if records else None


def latest_readiness(inst, domain: str):
    """The newest cutover-readiness materialization of ``domain`` (metadata dict) or None."""
    import dagster as dg

    from migration_assets.defs.cutover_readiness import READINESS

    records = inst.fetch_materializations(dg.AssetRecordsFilter(asset_key=READINESS, asset_partitions=[domain]),
                                          limit=1).records
    if not records:
        return None
    mat = records[0].asset_materialization
    return {k: getattr(v, "value", v) for k, v in mat.metadata.items()}, records[0].timestamp


def when(ts: float | None) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC") if ts else "-"


def cmd_status(args) -> int:
    """One line per domain, then what needs attention."""
    from migration_assets.cutover.readiness import domain_gaps
    from migration_assets.target.bookkeeping import interrupted_loads, open_quarantine_count
    from migration_assets.target.gaps import open_gap_counts

    defs, inst = get_definitions(), instance()
    checks = latest_checks(inst, defs)
    attention: list[str] = []
    rows = []
    with target_conn() as conn:
        gaps = open_gap_counts(conn)
        running = interrupted_loads(conn)
        for d in present_domains(DOMAINS):
            loaders = [l for l in all_loaders() if l.domain == d]
            tables = [t for l in loaders for t in l.table_names]
            n_rows = sum(conn.execute(f"SELECT count(*) FROM public.{t}").fetchone()[0] for t in tables)
            quarantined = open_quarantine_count(conn, [l.name for l in loaders] + [r.name for l in loaders for r in l.remaps])
            keys = {f"public/{t}" for t in tables} | {f"public/{r.table}/{r.column}" for l in loaders for r in l.remaps}
            mine = {k: s for k, s in checks.items() if k[0] in keys}
            passed = sum(1 for s in mine.values() if s == "passed")
            failed = [f"{a} {c} ({s})" for (a, c), s in sorted(mine.items()) if s.startswith("failed")]
            d_gaps = domain_gaps(conn, loaders)
            run = latest_run(inst, f"migrate_{d}")
            ready = latest_readiness(inst, d)
            verdict = f"{ready[0].get('verdict')} ({when(ready[1])})" if ready else "not assessed"
            rows.append((d, len(tables), n_rows, quarantined, f"{passed}/{len(mine)} passed" if mine else "not run",
                         sum(d_gaps.values()), f"{run.dagster_run.status.value} ({when(run.start_time or run.create_timestamp.timestamp())})"
                         if run else "never",
                         verdict))
            attention += [f"{d}: check {f}" for f in failed]
            if quarantined:
                attention.append(f"{d}: {quarantined} document(s) in the open quarantine")
            if d_gaps:
                attention.append(f"{d}: open dual-write gaps {d_gaps}")
            attention += [f"{d}: load of {l.name} interrupted after {running[l.name]} documents (re-run migrate "
                          f"to resume)" for l in loaders if l.name in running]
    headers = ("domain", "tables", "rows", "quarantined", "checks (latest)", "open gaps", "last migrate run", "readiness")
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]
    for r in [headers, *rows]:
        print("  ".join(str(v).ljust(w) for v, w in zip(r, widths)).rstrip())
    other_gaps = sum(gaps.values()) - sum(r[5] for r in rows)
    if other_gaps:
        attention.append(f"{other_gaps} open dual-write gap(s) of entities no domain claims: {gaps}")
    print("attention:" if attention else "status: nothing needs attention")
    for a in attention:
        print(f"  {a}")
    failing = any("check" in a for a in attention)
    return 1 if failing else 0


def table_diff(loader, table: str, source, conn, limit: int) -> tuple[dict[str, int], list[tuple[str, str, str]], str]:
    """Differences of one table by bisection: exact counts per kind, up to ``limit`` sample
    rows (kind, row, columns) and how the diff found them."""
    from migration_assets.verify.diff import bisect_diff

    d = bisect_diff(loader, source, conn, tables=[table], limit=limit)
    td = d.tables[table]
    rows = [(x.kind, f"{x.document} {x.row}".rstrip(), ", ".join(x.columns)) for x in td.sample]
    stats = d.stats
    method = (f"bisection diff: {stats.levels} level(s), {stats.leaf_ranges} leaf range(s), "
              f"{stats.rows_fetched} PostgreSQL rows fetched")
    return {"missing": td.missing, "extra": td.extra, "changed": td.changed}, rows, method


def cmd_diff(args) -> int:
    import dagster as dg

    from migration_assets.specs.registry import all_tables

    tables = all_tables()
    if args.table not in tables:
        print(f"unknown table {args.table!r}; one of: {', '.join(sorted(tables))}", file=sys.stderr)
        return 2
    loader = tables[args.table][0]
    defs = get_definitions()
    t = time.perf_counter()
    # The resources of the Dagster definitions (same EnvVars, same allowlist) as the checks use.
    with dg.build_resources({k: defs.resources[k] for k in ("mongo", "postgres")}) as res:
        with res.mongo.session() as source, res.postgres.connect(f"diff_{args.table}") as conn:
            counts, rows, method = table_diff(loader, args.table, source, conn, args.limit)
    print(f"diff {args.table}: {counts['missing']} missing in PostgreSQL, {counts['extra']} extra in PostgreSQL, "
          f"{counts['changed']} changed ({method}; {time.perf_counter() - t:.1f}s)")
    for kind, row, cols in rows:
        print(f"  {kind:8s} {row}" + (f"  columns: {cols}" if cols else ""))
    if sum(counts.values()) > len(rows):
        print(f"  ... {sum(counts.values()) - len(rows)} more (raise --limit)")
    return 1 if sum(counts.values()) else 0


def resources():
    """The Dagster definitions' resources (same EnvVars, same allowlist as the runs use)."""
    import dagster as dg

    defs = get_definitions()
    return dg.build_resources({k: defs.resources[k] for k in ("mongo", "postgres")})


def cmd_doctor(args) -> int:
    """Both servers reachable, the connected role's powers, and the target's conformance to
    the specs, mismatch by mismatch."""
    from migration_assets.target.conformance import check_conformance
    from migration_assets.target.grants import role_risks
    from migration_assets.verify.invariants.ledger import ledger_loader

    with resources() as res:
        with res.mongo.session() as source:
            print(f"doctor: source {source.describe()}: reachable")
        with res.postgres.connect("doctor") as conn:
            print(f"doctor: target {res.postgres.redacted_url}: reachable")
            ledger = ledger_loader()
            role, risks = role_risks(conn, [ledger.root.table] if ledger else [])
            for risk in risks:
                print(f"  warning: role {role} holds {risk}: it could switch the ledger's triggers off")
            found = check_conformance(conn)
    blocking = [m for m in found.all if m.blocking]
    for m in found.all:
        print(f"  {'mismatch' if m.blocking else 'note'}: {m.line()}")
    print(f"doctor: {len(blocking)} mismatch(es), {len(found.all) - len(blocking)} note(s) over "
          f"{len(found.by_table)} tables")
    return 1 if blocking else 0


def known_collection_of(source):
    """For a draft: the table whose collection holds these ObjectIds."""
    def owner(ids):
        for loader in all_loaders():
            if source.find_by_ids(loader.collection, ids[:5]):
                return loader.root.table
        return None
    return owner


def cmd_profile(args) -> int:
    from migration_assets.source.census import census_of, verdicts

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
    from pathlib import Path

    from migration_assets.source.census import census_of
    from migration_assets.source.scaffold import draft, snake

    if args.domain not in DOMAINS:
        print(f"unknown domain {args.domain!r}; one of: {', '.join(DOMAINS)}", file=sys.stderr)
        return 2
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
    path = Path(__file__).parent / "tables" / args.domain / f"{name}.py"
    if path.exists():
        print(f"scaffold: {path} exists; not overwritten", file=sys.stderr)
        return 1
    path.write_text(text)
    print(f"scaffold: wrote {path}; next: its DDL in sql/proposed/, and a review of every `# review:` line")
    return 0


def cmd_readiness(args) -> int:
    defs, inst = get_definitions(), instance()
    ok = True
    run_config = {"ops": {"migration__cutover_readiness": {"config": {
        "green_runs": args.runs, "sample_documents": args.sample,
        **({"seed": args.seed} if args.seed is not None else {})}}}}
    for d in domains(args.domain):
        result = run_job(defs, "cutover_readiness", inst, partition_key=d, run_config=run_config)
        if not result.success:
            print(f"readiness {d}: run FAILED (run {result.run_id})")
            ok = False
            continue
        mat = result.asset_materializations_for_node("migration__cutover_readiness")[0]
        meta = {k: getattr(v, "value", v) for k, v in mat.metadata.items()}
        print(meta["summary"])
        if args.verbose:
            print("\n" + meta["check_history"] + "\n\n" + meta["sample_comparison"])
        print("\n### Flags\n" + meta["flags_to_set"] + "\n\n### Rollback\n" + meta["rollback"] + "\n")
        print(f"readiness {d}: {meta['verdict']} (run {result.run_id})")
        ok = ok and meta["verdict"] == "GO"
    return 0 if ok else 1


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="migration-assets", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    sc = sub.add_parser("schema", help="install or adopt the application's schema, then the platform's")
    sc.add_argument("--alter-application", action="store_true",
                    help="allow altering or dropping objects the application already has (kept otherwise)")
    sc.add_argument("--print-grants", action="store_true",
                    help="print the GRANTs the platform's role (MIGRATION_PG_URL's user) needs, for the owner to apply")
    sc.add_argument("-v", "--verbose", action="store_true", help="also list the objects already present")
    sc.set_defaults(fn=cmd_schema)
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
    sub.add_parser("status", help="per domain: rows, quarantine, checks, gaps, last run, readiness").set_defaults(
        fn=cmd_status)
    df = sub.add_parser("diff", help="row-level differences of one table (exit 1 when any)")
    df.add_argument("table")
    df.add_argument("--limit", type=int, default=50, help="differences listed per kind")
    df.set_defaults(fn=cmd_diff)
    sub.add_parser("doctor", help="both servers, the role's powers, and the target's conformance to the specs"
                   ).set_defaults(fn=cmd_doctor)
    pr = sub.add_parser("profile", help="the census of a collection's field paths: types, counts, mapped or not")
    pr.add_argument("collection")
    pr.add_argument("--sample", type=int, default=None, help="a random sample of N documents instead of all")
    pr.set_defaults(fn=cmd_profile)
    sf = sub.add_parser("scaffold", help="draft tables/<domain>/<name>.py for a collection, from its census")
    sf.add_argument("collection")
    sf.add_argument("--domain", required=True)
    sf.add_argument("--name", default=None, help="the loader and root table name (default: the collection's, snake_case)")
    sf.add_argument("--sample", type=int, default=None)
    sf.add_argument("--write", action="store_true", help="write the file instead of printing it")
    sf.set_defaults(fn=cmd_scaffold)
    r = sub.add_parser("readiness", help="GO / NO-GO per domain, with evidence, flags and rollback")
    r.add_argument("--domain", default="all")
    r.add_argument("--runs", type=int, default=3, help="executions every check must have passed")
    r.add_argument("--sample", type=int, default=20, help="random documents compared per collection (x2)")
    r.add_argument("--seed", type=int, default=None)
    r.add_argument("-v", "--verbose", action="store_true", help="also print every check's history and the sample comparison")
    r.set_defaults(fn=cmd_readiness)
    args = p.parse_args(argv)
    return args.fn(args)


if __name__ == "__main__":
    sys.exit(main())
