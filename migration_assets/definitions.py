"""Entry point: everything under ``defs/`` (each module contributes its own pieces).

The definitions are built (and resolved) once per process, when this module is imported, and
kept out of the garbage collector's way: a step process forked from a server that preloaded it
(the executor's ``forkserver``) starts with them built. ``job_named`` is how a run started
from the command line names its job to the processes that execute its steps
(``dg.build_reconstructable_job``)."""

import functools
import gc
import warnings
from pathlib import Path

import dagster as dg


@functools.cache
def loaded() -> dg.Definitions:
    return dg.load_from_defs_folder(path_within_project=Path(__file__).parent)


@dg.definitions
def defs() -> dg.Definitions:
    return loaded()


def job_named(name: str) -> dg.JobDefinition:
    return loaded().resolve_job_def(name)


with warnings.catch_warnings():  # Dagster's beta notices speak to the code's authors, not to each step's log
    warnings.simplefilter("ignore", dg.BetaWarning)
    warnings.simplefilter("ignore", dg.PreviewWarning)
    loaded().get_repository_def()
# Everything built so far lives as long as the process: out of the garbage collector's scans
# (a load allocates millions of short-lived objects, and every full collection would walk the
# definitions too: measured 18 % of a load's time in a run), and shared untouched by the
# step processes forked from a server that preloaded this module.
gc.freeze()
