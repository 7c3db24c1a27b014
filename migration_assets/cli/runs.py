"""Commands that run jobs and follow runs: ``migrate``, ``verify``, ``watch``, ``release``."""

from __future__ import annotations

import sys
from typing import Any

from migration_assets.cli.common import Session, domains, instance, present_domains, resources
from migration_assets.console.errors import UsageError
from migration_assets.console.exits import worst
from migration_assets.console.render import print_summary
from migration_assets.factory.executors import IN_PROCESS, multiprocess
from migration_assets.factory.naming import load_op, migrate_job, table_key, verify_job
from migration_assets.orchestration.dead_runs import find_holder, release
from migration_assets.orchestration.records import runs_in_progress
from migration_assets.source.spans import MIN_DOCS_PER_RANGE
from migration_assets.specs.registry import all_loaders, loaders_in_domain

EXECUTORS = ("auto", "in_process", "multiprocess")


def executor_for(choice: str, domain: str) -> dict[str, Any]:
    """``auto``: in one process when every collection of the domain fits one range (a step
    process costs more than it saves there), else a process per step, side by side."""
    if choice == "in_process":
        return IN_PROCESS
    if choice == "multiprocess":
        return multiprocess()
    try:
        with resources() as res, res.mongo.session() as source:
            biggest = max((source.count(l.collection) for l in loaders_in_domain(domain)), default=0)
    except Exception:  # noqa: BLE001 - an unreachable source or a bad setting: the run says so, step by step
        return IN_PROCESS
    return IN_PROCESS if biggest < MIN_DOCS_PER_RANGE else multiprocess()


def cmd_migrate(args) -> int:
    names = present_domains(domains(args.domain))
    s = Session(args)
    runs = []
    try:
        for d in names:
            executor = executor_for(args.executor, d)
            if args.dry_run:
                runs += dry_run_domain(s, d, executor)
            else:
                runs.append(s.run(migrate_job(d), partition_key=d, lock_timeout_s=args.lock_timeout,
                                  executor=executor))
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


def dry_run_domain(s: Session, domain: str, executor: dict[str, Any]) -> list:
    """One run per loader, only its load step: a dry run materializes nothing, so in one
    run the children of a loader would be skipped; id_map, remaps and checks would write
    or compare a target the dry run leaves untouched. Each loader simulates its parents."""
    return [s.run(migrate_job(domain), partition_key=domain, lock_timeout_s=s.args.lock_timeout, executor=executor,
                  run_config={"ops": {load_op(l.name): {"config": {"dry_run": True}}}},
                  asset_selection=[table_key(x) for x in l.table_names])
            for l in all_loaders() if l.domain == domain]


def cmd_verify(args) -> int:
    from migration_assets.console.jsonout import emit, run_document

    names = present_domains(domains(args.domain))
    s = Session(args, quiet=args.json)
    runs = []
    try:
        for d in names:
            runs.append(s.run(verify_job(d), executor=IN_PROCESS if args.executor == "in_process" else None))
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


def cmd_watch(args) -> int:
    from migration_assets.console.runs import follow

    wanted = domains(args.domain) if args.domain else None
    inst = instance()
    runs = [r for r in runs_in_progress(inst) if wanted is None
            or r.tags.get("domain") in wanted or r.tags.get("dagster/partition") in wanted]
    s = Session(args, label_runs=len(runs) > 1, with_definitions=False)
    if not runs:
        s.console.print("watch: no run in progress" + (f" for {args.domain}" if args.domain else ""), markup=False)
        return 0
    try:
        states = follow(inst, runs, s.view, debug=args.debug)
    finally:
        s.view.close()
    print_summary(s.console, states)
    return worst(r.exit_status() for r in states)


def cmd_release(args) -> int:
    """Marks failed a run recorded as in progress with no live process behind it (``status``
    lists them): the pools it holds are free again."""
    inst = instance()
    h = find_holder(inst, args.run_id)
    if h is None:
        raise UsageError(f"no run {args.run_id!r} is recorded (give the id `migration-assets status` prints)")
    label = f"run {h.run.run_id[:8]} ({h.run.job_name})"
    if h.alive:
        print(f"release: {label} is alive ({h.worker.describe()}); stop it with Ctrl-C, "
              f"`kill -INT {h.worker.pid}` (it cancels cleanly), or Terminate in the UI", file=sys.stderr)
        return 1
    if h.run.is_finished:
        print(f"release: {label} has ended ({h.run.status.value}); it holds nothing")
        return 0
    release(inst, h, "released by the operator (migration-assets release)")
    print(f"release: {label}: marked failed" + (f"; {', '.join(sorted(h.pools))} free again" if h.pools else ""))
    return 0
