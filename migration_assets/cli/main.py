"""``migration-assets``: the operator's command line. It runs the same Dagster definitions
and jobs the UI runs (recorded in the same Dagster instance), shows each table's progress
and result as the run goes, and ends with a summary and where to open the run in the UI.

  migration-assets schema [--alter-application] [--print-grants]   install or adopt the application's schema
  migration-assets doctor                    both servers, the role's powers, conformance to the specs
  migration-assets profile COLLECTION [--sample N]   the census of a collection's field paths
  migration-assets scaffold COLLECTION --domain D [--write]   draft a spec from the census
  migration-assets generate [--mongo] [--dump] [--scale N] [--seed N]
  migration-assets migrate --domain D|all [--dry-run] [--lock-timeout S] [--executor auto|in_process|multiprocess]
  migration-assets verify --domain D|all [--json]
  migration-assets status [--json]           per domain: rows, quarantine, checks, gaps, last run, verdict
  migration-assets summary [--json]          per table: rows, quarantine, latest check results
  migration-assets diff TABLE [--limit N] [--json]   row-level differences of one table, Mongo vs PostgreSQL
  migration-assets readiness [--domain D|all] [--runs N] [--sample K] [--json]   GO / NO-GO per domain
  migration-assets reconcile TABLE|--domain D|all [--dry-run] [--full] [--json]   the catch-up that misses nothing
  migration-assets ledger-conflicts [--ack ENTRY --reason R [--by NAME]] [--json]
  migration-assets cutover --domain D --writes pg|dual|mongo [--at TIME] [--by NAME] [--reason R]
  migration-assets reverse-sync TABLE|--domain D|all [--dry-run] [--cutover-at TIME] [--force REASON] [--json]
  migration-assets watch [--domain D]        follow the runs in progress until they end
  migration-assets release RUN_ID            mark failed a run whose process died

Every command takes --verbose (Dagster's event log too) and --debug (tracebacks).
Exit status: 0 everything passed; 1 an ERROR check, a run, a diff or a readiness verdict
failed (or any other failure, told in one line on standard error); 2 usage error (unknown
command, domain or table); 3 only WARN checks failed (quarantine, unresolved references).
"""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Sequence

from migration_assets.cli.catchup import cmd_ledger_conflicts, cmd_reconcile
from migration_assets.cli.readiness import cmd_readiness
from migration_assets.cli.report import cmd_diff, cmd_status, cmd_summary
from migration_assets.cli.rollback import cmd_cutover, cmd_reverse_sync
from migration_assets.cli.runs import EXECUTORS, cmd_migrate, cmd_release, cmd_verify, cmd_watch
from migration_assets.cli.schema import cmd_doctor, cmd_schema
from migration_assets.cli.source import cmd_generate, cmd_profile, cmd_scaffold
from migration_assets.console.errors import explain_exception


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
                   help="seconds a load waits for another live run loading its tables (default 600)")
    m.add_argument("--executor", choices=EXECUTORS, default="auto",
                   help="auto: one process when every collection fits one range, else a process per step")
    m.set_defaults(fn=cmd_migrate)
    v = sub.add_parser("verify", parents=[jobs, as_json], help="run every check of a domain without loading")
    v.add_argument("--domain", default="all")
    v.add_argument("--executor", choices=EXECUTORS, default="auto", help="in_process: every check in one process")
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
    sf.add_argument("--write", action="store_true", help="write the file instead of printing it (validated first)")
    sf.add_argument("--diff", action="store_true", help="for a collection that has a spec: how a draft differs from it")
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
    co = sub.add_parser("cutover", parents=[common],
                        help="record who writes a domain from now on (pg: needs the latest readiness GO)")
    co.add_argument("--domain", required=True)
    co.add_argument("--writes", required=True, choices=("pg", "dual", "mongo"),
                    help="pg: the application writes PostgreSQL only; dual/mongo: it writes Mongo again")
    co.add_argument("--at", default=None, metavar="TIME", help="when the flags changed (ISO-8601; default now)")
    co.add_argument("--by", default=None, help="who (default: the login name)")
    co.add_argument("--reason", default=None)
    co.set_defaults(fn=cmd_cutover)
    rs = sub.add_parser("reverse-sync", parents=[jobs, as_json],
                        help="copy the writes PostgreSQL took after a domain's cutover back into Mongo (rollback)")
    rs.add_argument("table", nargs="?", default=None)
    rs.add_argument("--domain", default=None, help="a domain, or all")
    rs.add_argument("--dry-run", action="store_true", help="list every document it would insert, update or delete")
    rs.add_argument("--cutover-at", default=None, metavar="TIME",
                    help="writes after this time (ISO-8601; default: the domain's cutover record)")
    rs.add_argument("--force", default=None, metavar="REASON",
                    help="run although the cutover record says the application writes Mongo (recorded)")
    rs.set_defaults(fn=cmd_reverse_sync)
    w = sub.add_parser("watch", parents=[jobs], help="follow the runs in progress (progress, check results) until they end")
    w.add_argument("--domain", default=None)
    w.set_defaults(fn=cmd_watch)
    rl = sub.add_parser("release", parents=[common],
                        help="mark failed a run whose process died (status lists them), freeing its pools")
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
        if args.debug:
            traceback.print_exc()
        explained = explain_exception(exc, args.command)
        print(explained.line, file=sys.stderr)
        return int(explained.status)


if __name__ == "__main__":
    sys.exit(main())
