"""The loader's pool slot (``table_<loader>``) held by a ranged load's run from its plan to
its finish.

Dagster claims a pool slot per step, and a pool of one slot would run the ranges one after
another; so the range steps carry no pool, and the plan claims the table's slot for the run
itself, under a step key of its own, in the same storage Dagster's executors use. The finish
frees it, and so does a failure of any step of the load (``free_on_failure``); a killed run's
slot is freed as any dead run's (the CLI's release, the daemon's run monitoring). Anything that
reads pools (the CLI's wait, ``status``, the UI's pool page) sees the table held for the whole
load."""

import time

import dagster as dg

from migration_assets.target.guard import LoadLocked

# Marks the ops that hold a pool without naming it as theirs (``job_pools`` reads it).
POOL_TAG = "migration/pool"


def claim_key(pool: str) -> str:
    return f"{pool}[whole load]"


def claim_table_pool(instance: dg.DagsterInstance, pool: str, run_id: str, *, timeout_s: float, log,
                     poll_s: float = 1.0, log_every_s: float = 30.0) -> float:
    """Waits for the pool's slot (naming who holds it), returns the seconds waited; gives up
    with :class:`LoadLocked` after ``timeout_s``."""
    storage = instance.event_log_storage
    if not storage.supports_global_concurrency_limits:
        return 0.0
    if pool not in storage.get_concurrency_keys():  # as the executor does: the instance's default limit
        try:
            storage.initialize_concurrency_limit_to_default(pool)
        except Exception:  # another step initialized it meanwhile
            if pool not in storage.get_concurrency_keys():
                raise
    if storage.get_concurrency_info(pool).limit is None:
        return 0.0  # a pool without a limit
    t0, said = time.monotonic(), None
    while not storage.claim_concurrency_slot(pool, run_id, claim_key(pool)).is_claimed:
        waited = time.monotonic() - t0
        holders = sorted({s.run_id for s in storage.get_concurrency_info(pool).claimed_slots})
        ended = [h for h in holders if (r := instance.get_run_by_id(h)) is None or r.is_finished]
        for h in ended:  # a run that ended holds nothing (a killed step never ran its failure hook)
            storage.free_concurrency_slots_for_run(h)
            log(f"freed pool {pool}: run {h[:8]} had ended holding it")
        if ended:
            continue
        if waited >= timeout_s:
            storage.free_concurrency_slot_for_step(run_id, claim_key(pool))  # leave no pending claim
            raise LoadLocked(f"gave up after {waited:.0f}s waiting for pool {pool}: held by run(s) "
                             f"{', '.join(h[:8] for h in holders) or '(none recorded)'}; let it finish or cancel it, "
                             "then run again (committed batches are kept)")
        if said is None or time.monotonic() - said >= log_every_s:
            log(f"waiting for pool {pool}: held by run(s) {', '.join(h[:8] for h in holders)}; waited {waited:.0f}s "
                f"of at most {timeout_s:.0f}s")
            said = time.monotonic()
        time.sleep(poll_s)
    return time.monotonic() - t0


def free_table_pool(instance: dg.DagsterInstance, pool: str, run_id: str) -> None:
    if instance.event_log_storage.supports_global_concurrency_limits:
        instance.event_log_storage.free_concurrency_slot_for_step(run_id, claim_key(pool))


def free_on_failure(pool: str) -> dg.HookDefinition:
    @dg.failure_hook(name=f"free_{pool}")
    def _free(context: dg.HookContext):
        free_table_pool(context.instance, pool, context.run_id)

    return _free
