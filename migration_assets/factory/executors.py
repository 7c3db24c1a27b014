"""How a run's steps execute: one executor for every job, Dagster's multiprocess-or-in-process
executor configured so that its default is what this platform wants.

* Default (``max_concurrent: 0`` = the cores): every step in a process of its own, forked
  from a server that preloaded the definitions and the Dagster storage's driver
  (``forkserver``): a step starts in ~0.1 s instead of ~1 s with ``spawn``, and loads the FK
  graph leaves unordered, and a ranged loader's ranges, side by side.
* ``in_process: true``: every step in the run worker, one after another: for small runs,
  where a step process costs more than it saves (the command line's ``--executor auto``).

Run config: ``execution: {config: {in_process: false, max_concurrent: 2}}``."""

from typing import Any

import dagster as dg

PRELOAD = ["migration_assets.definitions", "dagster_postgres"]


def _resolve(config: dict[str, Any]) -> dict[str, Any]:
    if config["in_process"]:
        return {"in_process": {}}
    multiprocess: dict[str, Any] = {"start_method": {"forkserver": {"preload_modules": PRELOAD}}}
    if config["max_concurrent"]:
        multiprocess["max_concurrent"] = config["max_concurrent"]
    return {"multiprocess": multiprocess}


EXECUTOR = dg.multi_or_in_process_executor.configured(
    _resolve,
    name="migration_executor",
    config_schema={
        "in_process": dg.Field(bool, default_value=False,
                               description="Every step in the run's own process, one after another."),
        "max_concurrent": dg.Field(int, default_value=0,
                                   description="Step processes at once (0: one per core). Each holds one "
                                               "PostgreSQL connection."),
    },
)


def multiprocess(max_concurrent: int = 0) -> dict[str, Any]:
    return {"execution": {"config": {"in_process": False, "max_concurrent": max_concurrent}}}


IN_PROCESS: dict[str, Any] = {"execution": {"config": {"in_process": True}}}


def in_process(run_config: dict[str, Any]) -> bool:
    return bool(((run_config.get("execution") or {}).get("config") or {}).get("in_process"))
