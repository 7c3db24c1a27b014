"""Rolling a domain back: ``cutover`` records who writes a domain now (``pg`` only on a GO
readiness), and ``reverse-sync`` copies the writes PostgreSQL took after the cutover back into
Mongo (the ``reverse_sync`` job)."""

from __future__ import annotations

import datetime as dt
import getpass

from migration_assets.cli.common import Session, domains, instance, resources, table_or_domain_loaders
from migration_assets.console.errors import UsageError
from migration_assets.console.exits import Exit, worst
from migration_assets.console.jsonout import emit, run_document
from migration_assets.factory.naming import REVERSE_SYNC, collection_key
from migration_assets.orchestration.records import latest_readiness, materializations_of_run, observations_of_run
from migration_assets.target.reverse_book import latest_cutover, record_cutover


def when(text: str | None) -> dt.datetime | None:
    if text is None:
        return None
    try:
        at = dt.datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(f"not an ISO-8601 time: {text!r} (e.g. 2026-12-04T18:00:00+00:00)") from None
    return at if at.tzinfo else at.replace(tzinfo=dt.timezone.utc)


def cmd_cutover(args) -> int:
    """Record who writes a domain from now on; ``--writes pg`` needs the domain's latest readiness GO."""
    (domain,) = domains(args.domain) if args.domain != "all" else (None,)
    if domain is None:
        raise UsageError("name one domain: a cutover is recorded domain by domain")
    by = args.by or getpass.getuser()
    at = when(args.at) or dt.datetime.now(dt.timezone.utc)
    readiness = None
    if args.writes == "pg":
        latest = latest_readiness(instance(), domain)
        if latest is None or latest[0].get("verdict") != "GO":
            verdict = "none yet" if latest is None else latest[0].get("verdict")
            raise UsageError(f"the latest readiness of {domain} is not GO ({verdict}): run `migration-assets "
                             f"readiness --domain {domain}` first")
        readiness = f"GO at {dt.datetime.fromtimestamp(latest[1], dt.timezone.utc):%Y-%m-%d %H:%M:%S %Z}"
    with resources() as res, res.postgres.connect("cutover") as conn:
        before = latest_cutover(conn, domain)
        record_cutover(conn, domain, args.writes, at, by=by, reason=args.reason, readiness=readiness)
    was = f" (was {before.writes} since {before.cutover_at:%Y-%m-%d %H:%M:%S %Z})" if before else ""
    print(f"cutover {domain}: the application writes {args.writes} from {at:%Y-%m-%d %H:%M:%S %Z}{was}; "
          f"recorded by {by}" + (f", on readiness {readiness}" if readiness else ""))
    return 0


def cmd_reverse_sync(args) -> int:
    """The writes PostgreSQL took after the cutover, back into Mongo: the ``reverse_sync`` job."""
    loaders = table_or_domain_loaders(args)
    if args.force is not None and not args.force.strip():
        raise UsageError("--force needs a reason (it is recorded)")
    at = when(args.cutover_at)
    config = {"loaders": [l.name for l in loaders], "dry_run": args.dry_run,
              "cutover_at": at.isoformat() if at else "", "force_reason": args.force or ""}
    s = Session(args, quiet=args.json)
    try:
        run = s.run(REVERSE_SYNC, run_config={"ops": {"reverse_sync_step": {"config": config}}})
    finally:
        s.view.close()
    keys = {collection_key(l.collection): l for l in loaders}
    found = [(keys[o.asset_key], {k: getattr(v, "value", v) for k, v in o.metadata.items()})
             for o in observations_of_run(s.instance, run.run_id) if o.asset_key in keys]
    found += [(keys[m.asset_key], {k: getattr(v, "value", v) for k, v in m.metadata.items()})
              for m in materializations_of_run(s.instance, run.run_id) if m.asset_key in keys]
    refused = sum(m["documents_refused"] + m["ledger_conflicts"] for _, m in found)
    status = worst([run.exit_status(), Exit.FAILED if refused else Exit.OK])
    if args.json:
        emit({"command": "reverse-sync", "exit_status": int(status), "dry_run": args.dry_run, "run": run_document(run),
              "loaders": [{"loader": l.name, **{k: v for k, v in m.items() if k != "documents"}} for l, m in found]})
        return status
    for loader, m in found:
        s.view.say(f"  {loader.name}: {m['documents_insert']} insert, {m['documents_update']} update, "
                   f"{m['documents_delete']} delete since {m['cutover_at']}; "
                   + ("dry run" if args.dry_run else f"{m['documents_written']} written, "
                      f"{m['documents_unchanged']} already so") + f", {m['documents_refused']} refused, "
                   f"{m['documents_left_alone']} left alone, {m['ledger_conflicts']} ledger conflict(s) in "
                   f"{m['seconds']:.2f}s" + (f" (resumed run {m['resumed_run']})" if m["resumed_run"] else ""))
        for p in m["planned"]:
            fields = "; ".join(x for x in (("set " + ", ".join(p["set"])) if p["set"] else "",
                                           ("unset " + ", ".join(p["unset"])) if p["unset"] else "") if x)
            s.view.say(f"    {p['action']:6s} {p['document']}  {fields}")
        for kind, items in m["not_applied"].items():
            for d, why in sorted(items.items()):
                s.view.say(f"    {kind.replace('_', ' ')}: {d}: {why}")
    if args.dry_run:
        s.view.say("reverse-sync: dry run, nothing was written to Mongo")
    return status

