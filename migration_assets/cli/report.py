"""Commands that report: ``summary`` (per table), ``status`` (per domain, and what needs
attention), ``diff`` (one table's differing rows)."""

from __future__ import annotations

import datetime as dt
import time

from migration_assets.cli.common import definitions, instance, present_domains, resources
from migration_assets.console.errors import UsageError
from migration_assets.console.exits import Exit, worst
from migration_assets.console.jsonout import emit, timestamp
from migration_assets.console.render import make_console, table
from migration_assets.cutover.readiness import domain_gaps
from migration_assets.factory.naming import column_key, migrate_job, pool, table_key
from migration_assets.orchestration.dead_runs import holders
from migration_assets.orchestration.records import latest_outcomes, latest_readiness, latest_run, left_to_people
from migration_assets.specs.registry import DOMAINS, all_loaders, all_tables
from migration_assets.target.bookkeeping import interrupted_loads, open_quarantine_count
from migration_assets.target.gaps import open_gap_counts
from migration_assets.target.tables import row_count
from migration_assets.verify.diff import bisect_diff
from migration_assets.verify.outcomes import FAILED_WARN, PASSED, is_failure


def latest_checks(inst, defs) -> dict[tuple[str, str], str]:
    """(asset, check) -> its latest outcome, of every check of the definitions that ran."""
    keys = list(defs.resolve_asset_graph().asset_check_keys)
    return {(k.asset_key.to_user_string(), k.name): o for k, o in latest_outcomes(inst, keys).items()}


def checks_status(outcomes) -> int:
    """Exit status of latest check outcomes: WARN failures alone say 3, anything else not passed 1."""
    return worst(Exit.OK if o == PASSED else Exit.WARNINGS if o == FAILED_WARN else Exit.FAILED for o in outcomes)


def summary_rows(conn, checks) -> list[dict]:
    rows = []
    for loader in all_loaders():
        quarantined = open_quarantine_count(conn, [loader.name])
        for t in loader.tables:
            key = table_key(t.table).to_user_string()
            rows.append({"domain": loader.domain, "table": t.table, "remap": False, "rows": row_count(conn, t.table),
                         "quarantined": quarantined if t.is_root else None,
                         "checks": {c: o for (k, c), o in checks.items() if k == key}})
        for r in loader.remaps:
            key = column_key(r.table, r.column).to_user_string()
            rows.append({"domain": loader.domain, "table": f"{r.table}.{r.column}", "remap": True,
                         "rows": row_count(conn, r.table, not_null=r.column),
                         "quarantined": open_quarantine_count(conn, [r.name]),
                         "checks": {c: o for (k, c), o in checks.items() if k == key}})
    return rows


def checks_text(checks: dict[str, str]) -> str:
    if not checks:
        return "not run"
    bad = [f"{c}={o}" for c, o in checks.items() if o != PASSED]
    return ", ".join(bad) or "all passed"


def cmd_summary(args) -> int:
    defs, inst = definitions(), instance()
    with resources() as res, res.postgres.connect("summary") as conn:
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


def when(iso: str) -> str:
    return dt.datetime.fromisoformat(iso).strftime("%Y-%m-%d %H:%M UTC")


def domain_status(conn, inst, checks, d: str, running: dict[str, int], by_pool: dict) -> tuple[dict, list[str]]:
    """One domain's state (as ``status --json`` gives it) and what in it needs attention."""
    loaders = [l for l in all_loaders() if l.domain == d]
    tables = [t for l in loaders for t in l.table_names]
    keys = ({table_key(t).to_user_string() for t in tables}
            | {column_key(r.table, r.column).to_user_string() for l in loaders for r in l.remaps})
    mine = {k: o for k, o in checks.items() if k[0] in keys}
    failed = [{"asset": a, "check": c, "status": o} for (a, c), o in sorted(mine.items()) if is_failure(o)]
    gaps = domain_gaps(conn, loaders)
    run = latest_run(inst, migrate_job(d))
    ready = latest_readiness(inst, d)
    row = {
        "domain": d, "tables": len(tables),
        "rows": sum(row_count(conn, t) for t in tables),
        "quarantined": open_quarantine_count(conn, [l.name for l in loaders] + [r.name for l in loaders for r in l.remaps]),
        "checks": {"passed": sum(1 for o in mine.values() if o == PASSED), "total": len(mine), "failed": failed},
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
        h = by_pool.get(pool(name))
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
    defs, inst = definitions(), instance()
    checks = latest_checks(inst, defs)
    runs = holders(inst)
    by_pool = {name: h for h in runs for name in h.pools}
    stuck = [h for h in runs if h.dead]
    rows, attention = [], []
    with resources() as res, res.postgres.connect("status") as conn:
        gaps = open_gap_counts(conn)
        running = interrupted_loads(conn)
        for d in present_domains(DOMAINS):
            row, notes = domain_status(conn, inst, checks, d, running, by_pool)
            rows.append(row)
            attention += notes
    named = {by_pool[p].run.run_id for p in (pool(name) for name in running) if p in by_pool}
    attention += [f"{h.describe()} is recorded as running but no process is behind it: "
                  f"`migration-assets release {h.run.run_id[:8]}` frees it" for h in stuck if h.run.run_id not in named]
    other_gaps = sum(gaps.values()) - sum(r["open_gaps"] for r in rows)
    if other_gaps:
        attention.append(f"{other_gaps} open dual-write gap(s) of entities no domain claims: {gaps}")
    status = checks_status(f["status"] for r in rows for f in r["checks"]["failed"])
    if args.json:
        emit({"command": "status", "exit_status": int(status), "domains": rows, "attention": attention,
              "stuck_runs": [{"run_id": h.run.run_id, "job": h.run.job_name, "status": h.run.status.value,
                              "worker": h.worker.describe() if h.worker else None, "pools": sorted(h.pools)}
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


def table_diff(loader, table_name: str, source, conn, limit: int) -> tuple[dict[str, int], list[tuple[str, str, str]], str]:
    """Differences of one table by bisection: exact counts per kind, up to ``limit`` sample
    rows (kind, row, columns) and how the diff found them."""
    d = bisect_diff(loader, source, conn, tables=[table_name], limit=limit)
    td = d.tables[table_name]
    rows = [(x.kind, f"{x.document} {x.row}".rstrip(), ", ".join(x.columns)) for x in td.sample]
    stats = d.stats
    method = (f"bisection diff: {stats.levels} level(s), {stats.leaf_ranges} leaf range(s), "
              f"{stats.rows_fetched} PostgreSQL rows fetched")
    return {"missing": td.missing, "extra": td.extra, "changed": td.changed}, rows, method


def cmd_diff(args) -> int:
    tables = all_tables()
    if args.table not in tables:
        raise UsageError(f"unknown table {args.table!r}; one of: {', '.join(sorted(tables))}")
    loader = tables[args.table][0]
    t = time.perf_counter()
    with resources() as res, res.mongo.session() as source, res.postgres.connect(f"diff_{args.table}") as conn:
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
