"""``readiness``: GO / NO-GO per domain, with its evidence, the flags to set and the rollback."""

from __future__ import annotations

from migration_assets.cli.common import Session, domains
from migration_assets.console.exits import Exit, worst
from migration_assets.console.jsonout import emit, run_document
from migration_assets.console.render import print_summary
from migration_assets.factory.naming import READINESS, READINESS_JOB

READINESS_FIELDS = ("verdict", "go", "green_runs_required", "checks_green", "checks_total", "open_dualwrite_gaps",
                    "gaps_by_entity", "acknowledged_ledger_conflicts", "sample_documents_compared", "sample_rows_compared", "sample_differences",
                    "sample_seed", "summary", "flags_to_set", "rollback")


def cmd_readiness(args) -> int:
    run_config = {"ops": {"__".join(READINESS.path): {"config": {
        "green_runs": args.runs, "sample_documents": args.sample,
        **({"seed": args.seed} if args.seed is not None else {})}}}}
    names = domains(args.domain)
    s = Session(args, quiet=args.json)
    runs, verdicts, statuses = [], [], []
    try:
        for d in names:
            run = s.run(READINESS_JOB, partition_key=d, run_config=run_config)
            runs.append(run)
            meta = run.assets[READINESS.to_user_string()].metadata if run.status == "SUCCESS" else None
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
