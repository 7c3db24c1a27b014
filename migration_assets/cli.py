"""``migration-assets``: the operator's command line. It runs the same Dagster definitions
and jobs the UI runs (recorded in the same Dagster instance), shows each table's progress
and result as the run goes, and ends with a summary and where to open the run in the UI.

  migration-assets schema [--alter-application] [--print-grants]   install or adopt the application's schema
  migration-assets doctor                    both servers, the role's powers, conformance to the specs
  migration-assets profile COLLECTION [--sample N]   the census of a collection's field paths
  migration-assets scaffold COLLECTION --domain D [--write]   draft a spec from the census
  migration-assets generate [--mongo] [--dump] [--scale N] [--seed N]
  migration-assets migrate --domain D|all [--dry-run] [--lock-timeout S]
  migration-assets verify --domain D|all [--json]
  migration-assets status [--json]           per domain: rows, quarantine, checks, gaps, last run, verdict
  migration-assets summary [--json]          per table: rows, quarantine, latest check results
  migration-assets diff TABLE [--limit N] [--json]   row-level differences of one table, Mongo vs PostgreSQL
  migration-assets readiness [--domain D|all] [--runs N] [--sample K] [--json]   GO / NO-GO per domain
  migration-assets reconcile TABLE|--domain D|all [--dry-run] [--full] [--json]   the catch-up that misses nothing
  migration-assets ledger-conflicts [--ack ENTRY --reason R [--by NAME]] [--json]
  migration-assets watch [--domain D]        follow the runs in progress until they end

Every command takes --verbose (Dagster's event log too) and --debug (tracebacks).
Exit status: 0 everything passed; 1 an ERROR check, a run, a diff or a readiness verdict
failed (or any other failure, told in one line on standard error); 2 usage error (unknown
command, domain or table); 3 only WARN checks failed (quarantine, unresolved references).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import time
import traceback
from collections.abc import Sequence

from migration_assets.specs.registry import DOMAINS, all_loaders


def env(name: str, default: str | None = None) -> str:
    value = os.environ.get(name, default)
    if value is None:
        from migration_assets.factory.resources import BadConfigValue

        raise BadConfigValue(f"{name} is not set (source scripts/env.sh or export it)")
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
    from migration_assets.console.runs import silence_dagster_warnings

    silence_dagster_warnings()
    from migration_assets.definitions import defs

    return defs()


def instance():
    import dagster as dg

    return dg.DagsterInstance.get() if os.environ.get("DAGSTER_HOME") else dg.DagsterInstance.ephemeral()


def domains(arg: str) -> Sequence[str]:
    if arg == "all":
        return DOMAINS
    if arg not in DOMAINS:
        from migration_assets.console.errors import UsageError

        raise UsageError(f"unknown domain {arg!r}; one of: all, {', '.join(DOMAINS)}")
    return (arg,)


def present_domains(names: Sequence[str]) -> list[str]:
    have = {l.domain for l in all_loaders()}
    return [d for d in names if d in have]


class Session:
    """What the commands that run jobs share: definitions, instance, console and view."""

    def __init__(self, args, *, quiet: bool = False, label_runs: bool = False, definitions: bool = True):
        from migration_assets.console.render import make_console, make_view

        self.args = args
        self.defs = get_definitions() if definitions else None
        self.instance = instance()
        self.console = make_console()
        default_every = 1.0 if self.console.is_terminal else 10.0
        self.every = args.progress_every if args.progress_every is not None else default_every
        self.view = make_view(self.console, self.every, live=not args.verbose, quiet=quiet, label_runs=label_runs)

    def run(self, name: str, **kwargs):
        from migration_assets.console.runs import run_job

        return run_job(self.defs, self.instance, name, self.view, every=self.every, verbose=self.args.verbose,
                       debug=self.args.debug, **kwargs)


def cmd_migrate(args) -> int:
    from migration_assets.console.exits import worst
    from migration_assets.console.render import print_summary

    names = present_domains(domains(args.domain))
    s = Session(args)
    runs = []
    try:
        for d in names:
            if args.dry_run:
                runs += dry_run_domain(s, d)
            else:
                runs.append(s.run(f"migrate_{d}", partition_key=d, lock_timeout_s=args.lock_timeout))
            if any(r.status != "SUCCESS" for r in runs):
                later = names[names.index(d) + 1:]
                if later:  # their tables reference this domain's
                    s.view.say(f"migrate: stopped after {d}; not started: {', '.join(later)}")
                break
    finally:
        s.view.close()
    print_summary(s.console, runs)
    if args.dry_run:
        s.console.print("migrate: dry run, nothing was written to the target", markup=False)
    return worst(r.exit_status() for r in runs)


def dry_run_domain(s: Session, domain: str) -> list:
    """One run per loader, only its load step: a dry run materializes nothing, so in one
    run the children of a loader would be skipped; id_map, remaps and checks would write
    or compare a target the dry run leaves untouched. Each loader simulates its parents."""
    from migration_assets.factory.keys import table_key

    return [s.run(f"migrate_{domain}", partition_key=domain, lock_timeout_s=s.args.lock_timeout,
                  run_config={"ops": {f"load_{l.name}": {"config": {"dry_run": True}}}},
                  asset_selection=[table_key(x) for x in l.table_names])
            for l in all_loaders() if l.domain == domain]


def cmd_verify(args) -> int:
    from migration_assets.console.exits import worst
    from migration_assets.console.jsonout import emit, run_document
    from migration_assets.console.render import print_summary

    names = present_domains(domains(args.domain))
    s = Session(args, quiet=args.json)
    runs = []
    try:
        for d in names:
            runs.append(s.run(f"verify_{d}"))
            if runs[-1].status != "SUCCESS":
                break  # what failed the run (a server, a setting) fails the next one too
    finally:
        s.view.close()
    status = worst(r.exit_status() for r in runs)
    if args.json:
        emit({"command": "verify", "exit_status": int(status), "runs": [run_document(r) for r in runs]})
    else:
        print_summary(s.console, runs)
    return status


def latest_checks(inst, defs) -> dict[tuple[str, str], str]:
    """(asset, check) -> ``passed``, ``failed/<SEVERITY>`` or the execution's status."""
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


def checks_status(statuses) -> int:
    """Exit status of latest check results: WARN failures alone say 3, anything else not passed 1."""
    from migration_assets.console.exits import Exit, worst

    return worst(Exit.OK if s == "passed" else Exit.WARNINGS if s == "failed/WARN" else Exit.FAILED
                 for s in statuses)


def summary_rows(conn, checks) -> list[dict]:
    from migration_assets.target.bookkeeping import open_quarantine_count

    rows = []
    for loader in all_loaders():
        quarantined = open_quarantine_count(conn, [loader.name])
        for t in loader.tables:
            n = conn.execute(f"SELECT count(*) FROM public.{t.table}").fetchone()[0]
            rows.append({"domain": loader.domain, "table": t.table, "remap": False, "rows": n,
                         "quarantined": quarantined if t.is_root else None,
                         "checks": {c: s for (k, c), s in checks.items() if k == f"public/{t.table}"}})
        for r in loader.remaps:
            n = conn.execute(f"SELECT count(*) FROM public.{r.table} WHERE {r.column} IS NOT NULL").fetchone()[0]
            rows.append({"domain": loader.domain, "table": f"{r.table}.{r.column}", "remap": True, "rows": n,
                         "quarantined": open_quarantine_count(conn, [r.name]),
                         "checks": {c: s for (k, c), s in checks.items() if k == f"public/{r.table}/{r.column}"}})
    return rows


def checks_text(checks: dict[str, str]) -> str:
    if not checks:
        return "not run"
    bad = [f"{c}={s}" for c, s in checks.items() if s != "passed"]
    return ", ".join(bad) or "all passed"


def cmd_summary(args) -> int:
    from migration_assets.console.exits import Exit, worst
    from migration_assets.console.jsonout import emit
    from migration_assets.console.render import make_console, table

    defs, inst = get_definitions(), instance()
    with target_conn() as conn:
        rows = summary_rows(conn, latest_checks(inst, defs))
    status = worst(checks_status(r["checks"].values()) if r["checks"] else Exit.FAILED for r in rows)
    total = sum(r["rows"] for r in rows if not r["remap"])
    bad = [r for r in rows if checks_text(r["checks"]) != "all passed"]
    if args.json:
        emit({"command": "summary", "exit_status": int(status), "tables": rows,
              "totals": {"tables": len(rows), "rows": total, "not_all_passed": len(bad)}})
        return status
    console = make_console()
    console.print(table(("domain", "table", "rows", "quarantined", "checks"),
                        [(r["domain"], r["table"] + (" (remap)" if r["remap"] else ""), r["rows"],
                          "" if r["quarantined"] is None else r["quarantined"], checks_text(r["checks"]))
                         for r in rows], right=("rows", "quarantined")))
    console.print(f"summary: {len(rows)} tables, {total} rows, {len(bad)} with checks not all passed", markup=False)
    return status


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


def when(iso: str) -> str:
    return dt.datetime.fromisoformat(iso).strftime("%Y-%m-%d %H:%M UTC")


def domain_status(conn, inst, checks, d: str, running: dict[str, int], by_pool: dict) -> tuple[dict, list[str]]:
    """One domain's state (as ``status --json`` gives it) and what in it needs attention."""
    from migration_assets.console.jsonout import timestamp
    from migration_assets.cutover.readiness import domain_gaps
    from migration_assets.defs.reconcile import left_to_people
    from migration_assets.target.bookkeeping import open_quarantine_count

    loaders = [l for l in all_loaders() if l.domain == d]
    tables = [t for l in loaders for t in l.table_names]
    keys = {f"public/{t}" for t in tables} | {f"public/{r.table}/{r.column}" for l in loaders for r in l.remaps}
    mine = {k: s for k, s in checks.items() if k[0] in keys}
    failed = [{"asset": a, "check": c, "status": s} for (a, c), s in sorted(mine.items()) if s.startswith("failed")]
    gaps = domain_gaps(conn, loaders)
    run = latest_run(inst, f"migrate_{d}")
    ready = latest_readiness(inst, d)
    row = {
        "domain": d, "tables": len(tables),
        "rows": sum(conn.execute(f"SELECT count(*) FROM public.{t}").fetchone()[0] for t in tables),
        "quarantined": open_quarantine_count(conn, [l.name for l in loaders] + [r.name for l in loaders for r in l.remaps]),
        "checks": {"passed": sum(1 for s in mine.values() if s == "passed"), "total": len(mine), "failed": failed},
        "open_gaps": sum(gaps.values()),
        "last_migrate_run": {"run_id": run.dagster_run.run_id, "status": run.dagster_run.status.value,
                             "started_at": timestamp(run.start_time or run.create_timestamp.timestamp())}
        if run else None,
        "readiness": {"verdict": ready[0].get("verdict"), "assessed_at": timestamp(ready[1])} if ready else None,
        "interrupted_loads": {l.name: running[l.name] for l in loaders if l.name in running},
    }
    attention = [f"{d}: check {f['asset']} {f['check']} ({f['status']})" for f in failed]
    if row["quarantined"]:
        attention.append(f"{d}: {row['quarantined']} document(s) in the open quarantine")
    if gaps:
        attention.append(f"{d}: open dual-write gaps {gaps}")
    for name, n in row["interrupted_loads"].items():
        h = by_pool.get(f"table_{name}")
        if h is None:
            attention.append(f"{d}: load of {name} interrupted after {n} documents (re-run migrate to resume)")
        elif h.dead:
            attention.append(f"{d}: load of {name} interrupted after {n} documents; {h.describe()} has no live "
                             f"process: re-run migrate (it releases the run and resumes), or "
                             f"`migration-assets release {h.run.run_id[:8]}`")
        else:
            attention.append(f"{d}: {name} is being loaded by {h.describe()}; {n} documents committed so far")
    row["left_to_people"] = {l.name: n for l in loaders if (n := left_to_people(inst, l)) is not None}
    attention += [f"{d}: {name} still differs after {n} reconciliations; left to people (`migration-assets diff "
                  f"TABLE` names the rows)" for name, n in row["left_to_people"].items()]
    return row, attention


def cmd_status(args) -> int:
    """One line per domain, then what needs attention."""
    from migration_assets.console.jsonout import emit
    from migration_assets.console.render import make_console, table
    from migration_assets.orchestration.dead_runs import holders
    from migration_assets.target.bookkeeping import interrupted_loads
    from migration_assets.target.gaps import open_gap_counts

    defs, inst = get_definitions(), instance()
    checks = latest_checks(inst, defs)
    runs = holders(inst)
    by_pool = {pool: h for h in runs for pool in h.pools}
    stuck = [h for h in runs if h.dead]
    rows, attention = [], []
    with target_conn() as conn:
        gaps = open_gap_counts(conn)
        running = interrupted_loads(conn)
        for d in present_domains(DOMAINS):
            row, notes = domain_status(conn, inst, checks, d, running, by_pool)
            rows.append(row)
            attention += notes
    named = {by_pool[p].run.run_id for p in (f"table_{name}" for name in running) if p in by_pool}
    attention += [f"{h.describe()} is recorded as running but no process is behind it: "
                  f"`migration-assets release {h.run.run_id[:8]}` frees it" for h in stuck if h.run.run_id not in named]
    other_gaps = sum(gaps.values()) - sum(r["open_gaps"] for r in rows)
    if other_gaps:
        attention.append(f"{other_gaps} open dual-write gap(s) of entities no domain claims: {gaps}")
    status = checks_status(f["status"] for r in rows for f in r["checks"]["failed"])
    if args.json:
        emit({"command": "status", "exit_status": int(status), "domains": rows, "attention": attention,
              "stuck_runs": [{"run_id": h.run.run_id, "job": h.run.job_name, "status": h.run.status.value,
                              "worker": h.worker.describe() if h.worker else None, "pools": sorted(set(h.pools))}
                             for h in stuck]})
        return status
    console = make_console()
    console.print(table(
        ("domain", "tables", "rows", "quarantined", "checks (latest)", "open gaps", "last migrate run", "readiness"),
        [(r["domain"], r["tables"], r["rows"], r["quarantined"],
          f"{r['checks']['passed']}/{r['checks']['total']} passed" if r["checks"]["total"] else "not run",
          r["open_gaps"],
          f"{r['last_migrate_run']['status']} ({when(r['last_migrate_run']['started_at'])})"
          if r["last_migrate_run"] else "never",
          f"{r['readiness']['verdict']} ({when(r['readiness']['assessed_at'])})"
          if r["readiness"] else "not assessed") for r in rows],
        right=("tables", "rows", "quarantined", "open gaps")))
    console.print("attention:" if attention else "status: nothing needs attention", markup=False)
    for a in attention:
        console.print(f"  {a}", markup=False)
    return status


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

    from migration_assets.console.errors import UsageError
    from migration_assets.console.jsonout import emit
    from migration_assets.specs.registry import all_tables

    tables = all_tables()
    if args.table not in tables:
        raise UsageError(f"unknown table {args.table!r}; one of: {', '.join(sorted(tables))}")
    loader = tables[args.table][0]
    defs = get_definitions()
    t = time.perf_counter()
    # The resources of the Dagster definitions (same EnvVars, same allowlist) as the checks use.
    with dg.build_resources({k: defs.resources[k] for k in ("mongo", "postgres")}) as res:
        with res.mongo.session() as source, res.postgres.connect(f"diff_{args.table}") as conn:
            counts, rows, method = table_diff(loader, args.table, source, conn, args.limit)
    seconds = time.perf_counter() - t
    status = 1 if sum(counts.values()) else 0
    if args.json:
        emit({"command": "diff", "exit_status": status, "table": args.table, **counts, "method": method,
              "seconds": round(seconds, 3),
              "rows": [{"kind": k, "row": r, "columns": c.split(", ") if c else []} for k, r, c in rows]})
        return status
    print(f"diff {args.table}: {counts['missing']} missing in PostgreSQL, {counts['extra']} extra in PostgreSQL, "
          f"{counts['changed']} changed ({method}; {seconds:.1f}s)")
    for kind, row, cols in rows:
        print(f"  {kind:8s} {row}" + (f"  columns: {cols}" if cols else ""))
    if sum(counts.values()) > len(rows):
        print(f"  ... {sum(counts.values()) - len(rows)} more (raise --limit)")
    return status


READINESS_FIELDS = ("verdict", "go", "green_runs_required", "checks_green", "checks_total", "open_dualwrite_gaps",
                    "gaps_by_entity", "acknowledged_ledger_conflicts", "sample_documents_compared", "sample_rows_compared", "sample_differences",
                    "sample_seed", "summary", "flags_to_set", "rollback")


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
        from migration_assets.console.errors import UsageError

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
    path = Path(__file__).parent / "tables" / args.domain / f"{name}.py"
    if path.exists():
        print(f"scaffold: {path} exists; not overwritten", file=sys.stderr)
        return 1
    path.write_text(text)
    print(f"scaffold: wrote {path}; next: its DDL in sql/proposed/, and a review of every `# review:` line")
    return 0


def cmd_readiness(args) -> int:
    from migration_assets.console.exits import Exit, worst
    from migration_assets.console.jsonout import emit, run_document
    from migration_assets.console.render import print_summary

    run_config = {"ops": {"migration__cutover_readiness": {"config": {
        "green_runs": args.runs, "sample_documents": args.sample,
        **({"seed": args.seed} if args.seed is not None else {})}}}}
    names = domains(args.domain)
    s = Session(args, quiet=args.json)
    runs, verdicts, statuses = [], [], []
    try:
        for d in names:
            run = s.run("cutover_readiness", partition_key=d, run_config=run_config)
            runs.append(run)
            meta = run.assets["migration/cutover_readiness"].metadata if run.status == "SUCCESS" else None
            verdicts.append({"domain": d, **{k: meta[k] for k in READINESS_FIELDS if meta and k in meta},
                             "run": run_document(run)})
            statuses.append(run.exit_status() if meta is None else Exit.OK if meta["verdict"] == "GO" else Exit.FAILED)
            if meta is None:
                continue
            if not args.json:
                s.view.say(meta["summary"])
                if args.verbose:
                    s.view.say("\n" + meta["check_history"] + "\n\n" + meta["sample_comparison"])
                s.view.say("\n### Flags\n" + meta["flags_to_set"] + "\n\n### Rollback\n" + meta["rollback"] + "\n")
                s.view.say(f"readiness {d}: {meta['verdict']} (run {run.run_id})")
    finally:
        s.view.close()
    status = worst(statuses)
    if args.json:
        emit({"command": "readiness", "exit_status": int(status), "domains": verdicts})
    else:
        print_summary(s.console, runs)
    return status


def cmd_watch(args) -> int:
    from migration_assets.console.exits import worst
    from migration_assets.console.render import print_summary
    from migration_assets.console.runs import follow, runs_in_progress

    wanted = domains(args.domain) if args.domain else None
    inst = instance()
    runs = [r for r in runs_in_progress(inst) if wanted is None
            or r.tags.get("domain") in wanted or r.tags.get("dagster/partition") in wanted]
    s = Session(args, label_runs=len(runs) > 1, definitions=False)
    if not runs:
        s.console.print("watch: no run in progress" + (f" for {args.domain}" if args.domain else ""), markup=False)
        return 0
    try:
        states = follow(inst, runs, s.view, debug=args.debug)
    finally:
        s.view.close()
    print_summary(s.console, states)
    return worst(r.exit_status() for r in states)


def reconcile_loaders_of(args) -> list:
    """The loaders ``reconcile`` works on: one table's, or a domain's (all: every loader)."""
    from migration_assets.console.errors import UsageError
    from migration_assets.specs.registry import all_tables

    if (args.table is None) == (args.domain is None):
        raise UsageError("name a TABLE or --domain D|all")
    if args.table is not None:
        tables = all_tables()
        if args.table not in tables:
            raise UsageError(f"unknown table {args.table!r}; one of: {', '.join(sorted(tables))}")
        return [tables[args.table][0]]
    return [l for l in all_loaders() if l.domain in domains(args.domain)]


def reconciliation_records(inst, run_id: str, loaders) -> list[tuple]:
    """(loader, observation metadata) of each loader's root table in a reconcile run."""
    import dagster as dg

    from migration_assets.factory.keys import table_key

    roots = {table_key(l.root.table): l for l in loaders}
    out = {}
    for entry in inst.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_OBSERVATION):
        obs = entry.dagster_event.event_specific_data.asset_observation
        if obs.asset_key in roots:
            out[roots[obs.asset_key].name] = (roots[obs.asset_key],
                                              {k: getattr(v, "value", v) for k, v in obs.metadata.items()})
    return [out[l.name] for l in loaders if l.name in out]


def cmd_reconcile(args) -> int:
    """The catch-up that misses nothing, from the command line: the ``reconcile`` job."""
    from migration_assets.console.exits import Exit, worst
    from migration_assets.console.jsonout import emit, run_document

    loaders = reconcile_loaders_of(args)
    s = Session(args, quiet=args.json)
    try:
        run = s.run("reconcile", run_config={"ops": {"reconcile_step": {"config": {
            "loaders": [l.name for l in loaders], "dry_run": args.dry_run, "full": args.full}}}})
    finally:
        s.view.close()
    found = reconciliation_records(s.instance, run.run_id, loaders)
    conflicts = sum(m["immutable_conflicts"] for _, m in found)
    status = worst([run.exit_status(), Exit.FAILED if conflicts else Exit.OK])
    if args.json:
        emit({"command": "reconcile", "exit_status": int(status), "dry_run": args.dry_run, "run": run_document(run),
              "loaders": [{"loader": l.name, **{k: v for k, v in m.items() if k != "documents"}} for l, m in found]})
        return status
    for loader, m in found:
        s.view.say(f"  {loader.name}: {m['documents_new']} new, {m['documents_changed']} changed, "
                   f"{m['documents_removed']} removed, {m['immutable_conflicts']} immutable conflict(s); read "
                   f"{m['documents_read']} documents (decoded {m['documents_decoded']}), hashed {m['ranges_hashed']} "
                   f"ranges, fetched "
                   f"{m['postgres_rows_fetched']} PostgreSQL rows in {m['seconds']:.2f}s")
        for kind, ids in m.get("document_ids", {}).items():
            for d in ids:
                s.view.say(f"    {kind:9s} {d}")
    if conflicts:
        s.view.say(f"reconcile: {conflicts} immutable ledger conflict(s) kept as PostgreSQL recorded them; "
                   "an auditor lists them with `migration-assets ledger-conflicts`")
    if args.dry_run:
        s.view.say("reconcile: dry run, nothing was written to the target")
    return status


def cmd_ledger_conflicts(args) -> int:
    """The ledger's immutable conflicts; ``--ack`` records an auditor's acknowledgement."""
    import getpass

    from migration_assets.console.jsonout import emit
    from migration_assets.cutover.ledger_conflicts import acknowledge_conflict, ledger_conflicts
    from migration_assets.verify.invariants.ledger import ledger_loader

    loader = ledger_loader()
    with resources() as res, res.mongo.session() as source, res.postgres.connect("ledger_conflicts") as conn:
        if args.ack:
            if not args.reason:
                from migration_assets.console.errors import UsageError

                raise UsageError("--ack needs --reason: why the difference is accepted")
            hit = acknowledge_conflict(loader, source, conn, args.ack, by=args.by or getpass.getuser(),
                                       reason=args.reason)
            print(f"ledger-conflicts: acknowledged {hit.entry} ({hit.differs}) by {args.by or getpass.getuser()}: "
                  f"{args.reason}")
            return 0
        conflicts, held = ledger_conflicts(loader, source, conn)
    status = 1 if conflicts else 0
    if args.json:
        emit({"command": "ledger-conflicts", "exit_status": status, "table": loader.root.table,
              "conflicts": [{"entry": c.entry, "differs": c.differs, "mongo": c.source_text, "postgres": c.target_text}
                            for c in conflicts],
              "acknowledged": [{"entry": e, "differs": a.differs, "by": a.acknowledged_by, "reason": a.reason,
                                "at": a.acknowledged_at.isoformat()} for e, a in sorted(held.items())]})
        return status
    print(f"ledger-conflicts {loader.root.table}: {len(conflicts)} conflict(s), {len(held)} acknowledged")
    for c in conflicts:
        print(f"  {c.entry}  {c.differs}\n    postgres: {c.target_text}\n    mongo:    {c.source_text or '(no document)'}")
    for e, a in sorted(held.items()):
        print(f"  acknowledged {e}  {a.differs}; by {a.acknowledged_by} at {a.acknowledged_at:%Y-%m-%d %H:%M %Z}: "
              f"{a.reason}")
    if conflicts:
        print("ledger-conflicts: acknowledge one with --ack ENTRY --reason TEXT [--by NAME]")
    return status


def cmd_release(args) -> int:
    """Frees a run that holds pool slots with no live process behind it (``status`` lists them)."""
    from migration_assets.console.errors import UsageError
    from migration_assets.orchestration.dead_runs import find_holder, release

    inst = instance()
    h = find_holder(inst, args.run_id)
    if h is None:
        raise UsageError(f"no run {args.run_id!r} is recorded (give the id `migration-assets status` prints)")
    label = f"run {h.run.run_id[:8]} ({h.run.job_name})"
    if h.alive:
        print(f"release: {label} is alive ({h.worker.describe()}); stop it with Ctrl-C or "
              f"`kill -TERM {h.worker.pid}` (it cancels cleanly), or terminate it in the UI", file=sys.stderr)
        return 1
    if h.run.is_finished and not h.pools:
        print(f"release: {label} has ended ({h.run.status.value}) and holds no pool slot; nothing to release")
        return 0
    ended = h.run.is_finished
    freed = release(inst, h, "released by the operator (migration-assets release)")
    print(f"release: {label}: " + ("" if ended else "marked failed, ") + f"{freed} pool slot(s) freed")
    return 0


def parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-v", "--verbose", action="store_true",
                        help="also print Dagster's event log (and, for readiness, every check's history)")
    common.add_argument("--debug", action="store_true", help="print the traceback of a failure")
    jobs = argparse.ArgumentParser(add_help=False, parents=[common])
    jobs.add_argument("--progress-every", type=float, default=None, metavar="S",
                      help="seconds between progress updates (default: 1 on a terminal, 10 otherwise)")
    as_json = argparse.ArgumentParser(add_help=False)
    as_json.add_argument("--json", action="store_true", help="print one JSON document (shape: README)")

    p = argparse.ArgumentParser(prog="migration-assets", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    sc = sub.add_parser("schema", parents=[common],
                        help="install or adopt the application's schema, then the platform's (-v: also what is present)")
    sc.add_argument("--alter-application", action="store_true",
                    help="allow altering or dropping objects the application already has (kept otherwise)")
    sc.add_argument("--print-grants", action="store_true",
                    help="print the GRANTs the platform's role (MIGRATION_PG_URL's user) needs, for the owner to apply")
    sc.set_defaults(fn=cmd_schema)
    g = sub.add_parser("generate", parents=[common], help="generate deterministic sample data")
    g.add_argument("--seed", type=int, default=7)
    g.add_argument("--scale", type=float, default=1.0)
    g.add_argument("--mongo", action="store_true", help="write to MONGODB_URI/MONGODB_DATABASE")
    g.add_argument("--dump", action="store_true", help="write a mongodump directory at MONGODUMP_DIR")
    g.set_defaults(fn=cmd_generate)
    m = sub.add_parser("migrate", parents=[jobs], help="load and verify a domain (or all, in FK order)")
    m.add_argument("--domain", default="all")
    m.add_argument("--dry-run", action="store_true", help="read, transform and validate; write nothing")
    m.add_argument("--lock-timeout", type=float, default=None, metavar="S",
                   help="seconds a load waits for another run's lock on its tables (default 600)")
    m.set_defaults(fn=cmd_migrate)
    v = sub.add_parser("verify", parents=[jobs, as_json], help="run every check of a domain without loading")
    v.add_argument("--domain", default="all")
    v.set_defaults(fn=cmd_verify)
    sub.add_parser("summary", parents=[common, as_json],
                   help="tables, rows, quarantine and latest check results").set_defaults(fn=cmd_summary)
    sub.add_parser("status", parents=[common, as_json],
                   help="per domain: rows, quarantine, checks, gaps, last run, readiness").set_defaults(fn=cmd_status)
    df = sub.add_parser("diff", parents=[common, as_json], help="row-level differences of one table (exit 1 when any)")
    df.add_argument("table")
    df.add_argument("--limit", type=int, default=50, help="differences listed per kind")
    df.set_defaults(fn=cmd_diff)
    sub.add_parser("doctor", parents=[common], help="both servers, the role's powers, and the target's conformance to the specs"
                   ).set_defaults(fn=cmd_doctor)
    pr = sub.add_parser("profile", parents=[common], help="the census of a collection's field paths: types, counts, mapped or not")
    pr.add_argument("collection")
    pr.add_argument("--sample", type=int, default=None, help="a random sample of N documents instead of all")
    pr.set_defaults(fn=cmd_profile)
    sf = sub.add_parser("scaffold", parents=[common], help="draft tables/<domain>/<name>.py for a collection, from its census")
    sf.add_argument("collection")
    sf.add_argument("--domain", required=True)
    sf.add_argument("--name", default=None, help="the loader and root table name (default: the collection's, snake_case)")
    sf.add_argument("--sample", type=int, default=None)
    sf.add_argument("--write", action="store_true", help="write the file instead of printing it")
    sf.set_defaults(fn=cmd_scaffold)
    r = sub.add_parser("readiness", parents=[jobs, as_json], help="GO / NO-GO per domain, with evidence, flags and rollback")
    r.add_argument("--domain", default="all")
    r.add_argument("--runs", type=int, default=3, help="executions every check must have passed")
    r.add_argument("--sample", type=int, default=20, help="random documents compared per collection (x2)")
    r.add_argument("--seed", type=int, default=None)
    r.set_defaults(fn=cmd_readiness)
    rc = sub.add_parser("reconcile", parents=[jobs, as_json],
                        help="re-sync exactly the new, changed and vanished documents of a table or domain")
    rc.add_argument("table", nargs="?", default=None)
    rc.add_argument("--domain", default=None, help="a domain, or all")
    rc.add_argument("--dry-run", action="store_true", help="list what would be inserted, changed and removed")
    rc.add_argument("--full", action="store_true",
                    help="canonicalize every document (default: only the _id ranges whose bytes changed since the last pass)")
    rc.set_defaults(fn=cmd_reconcile)
    lc = sub.add_parser("ledger-conflicts", parents=[common, as_json],
                        help="the ledger's immutable conflicts (exit 1 when any is unacknowledged); --ack one")
    lc.add_argument("--ack", metavar="ENTRY", default=None, help="acknowledge this entry's current difference")
    lc.add_argument("--reason", default=None, help="why the difference is accepted (with --ack)")
    lc.add_argument("--by", default=None, help="who acknowledges (default: the login name)")
    lc.set_defaults(fn=cmd_ledger_conflicts)
    w = sub.add_parser("watch", parents=[jobs], help="follow the runs in progress (progress, check results) until they end")
    w.add_argument("--domain", default=None)
    w.set_defaults(fn=cmd_watch)
    rl = sub.add_parser("release", parents=[common],
                        help="free the pool slots of a run whose process died (status lists them)")
    rl.add_argument("run_id", help="the run's id, or its first characters")
    rl.set_defaults(fn=cmd_release)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return int(args.fn(args))
    except KeyboardInterrupt:
        print(f"{args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        from migration_assets.console.errors import explain_exception

        if args.debug:
            traceback.print_exc()
        explained = explain_exception(exc, args.command)
        print(explained.line, file=sys.stderr)
        return int(explained.status)


if __name__ == "__main__":
    sys.exit(main())
