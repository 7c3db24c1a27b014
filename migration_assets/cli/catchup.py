"""The catch-up: ``reconcile`` (the new, changed and vanished documents of a table or domain)
and ``ledger-conflicts`` (the ledger's immutable conflicts, and an auditor's acknowledgement)."""

from __future__ import annotations

import getpass

from migration_assets.cli.common import Session, resources, table_or_domain_loaders
from migration_assets.console.errors import UsageError
from migration_assets.console.exits import Exit, worst
from migration_assets.console.jsonout import emit, run_document
from migration_assets.cutover.ledger_conflicts import acknowledge_conflict, ledger_conflicts
from migration_assets.factory.naming import RECONCILE, table_key
from migration_assets.orchestration.records import observations_of_run
from migration_assets.verify.invariants.ledger import ledger_loader


def reconciliation_records(inst, run_id: str, loaders) -> list[tuple]:
    """(loader, observation metadata) of each loader's root table in a reconcile run."""
    roots = {table_key(l.root.table): l for l in loaders}
    out = {}
    for obs in observations_of_run(inst, run_id):
        if obs.asset_key in roots:
            out[roots[obs.asset_key].name] = (roots[obs.asset_key],
                                              {k: getattr(v, "value", v) for k, v in obs.metadata.items()})
    return [out[l.name] for l in loaders if l.name in out]


def cmd_reconcile(args) -> int:
    """The catch-up that misses nothing, from the command line: the ``reconcile`` job."""
    loaders = table_or_domain_loaders(args)
    s = Session(args, quiet=args.json)
    try:
        run = s.run(RECONCILE, run_config={"ops": {"reconcile_step": {"config": {
            "loaders": [l.name for l in loaders], "dry_run": args.dry_run, "full": args.full}}}})
    finally:
        s.view.close()
    found = reconciliation_records(s.instance, run.run_id, loaders)
    conflicts = sum(m["immutable_conflicts"] for _, m in found)
    unresolved = sum(m.get("documents_unresolved", 0) for _, m in found)
    status = worst([run.exit_status(), Exit.FAILED if conflicts or unresolved else Exit.OK])
    if args.json:
        emit({"command": "reconcile", "exit_status": int(status), "dry_run": args.dry_run, "run": run_document(run),
              "loaders": [{"loader": l.name, **{k: v for k, v in m.items() if k != "documents"}} for l, m in found]})
        return status
    for loader, m in found:
        done = ("" if args.dry_run else
                f"; {m['documents_written']} written, {m['documents_removed']} removed, {m['documents_withdrawn']} "
                f"no longer map (quarantined, rows removed), {m['documents_unresolved']} not resolved")
        s.view.say(f"  {loader.name}: found {m['documents_new']} new, {m['documents_changed']} changed, "
                   f"{m['documents_extra']} extra, {m['immutable_conflicts']} immutable conflict(s){done}; read "
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


    loader = ledger_loader()
    with resources() as res, res.mongo.session() as source, res.postgres.connect("ledger_conflicts") as conn:
        if args.ack:
            if not args.reason:
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
