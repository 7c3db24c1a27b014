"""What every command shares: settings from the environment, the definitions and their
resources (the one way to open the source and the target), the Dagster instance, the domain
arguments, and a session that runs jobs and shows them."""

from __future__ import annotations

import os
from collections.abc import Sequence

import dagster as dg

from migration_assets.console.errors import UsageError
from migration_assets.factory.resources import BadConfigValue, PostgresTargetResource
from migration_assets.specs.registry import DOMAINS, all_loaders, all_tables


def env(name: str, default: str | None = None) -> str:
    value = os.environ.get(name, default)
    if value is None:
        raise BadConfigValue(f"{name} is not set (source scripts/env.sh or export it)")
    return value


def definitions() -> dg.Definitions:
    from migration_assets.orchestration.launch import silence_dagster_warnings

    silence_dagster_warnings()
    from migration_assets.definitions import loaded

    return loaded()


def resources():
    """The definitions' Mongo and PostgreSQL resources (same EnvVars, same allowlist as the runs)."""
    defs = definitions()
    return dg.build_resources({k: defs.resources[k] for k in ("mongo", "postgres")})


def target_as(url_var: str) -> PostgresTargetResource:
    """The target as another role (the application's owner), under the same allowlist."""
    return PostgresTargetResource(url=env(url_var, env("MIGRATION_PG_URL")),
                                  allowed_hosts=env("MIGRATION_PG_ALLOWED_HOSTS", "127.0.0.1,localhost,::1"))


def instance() -> dg.DagsterInstance:
    """The instance of DAGSTER_HOME: runs execute in a worker process of their own, which must
    see the same instance."""
    if not os.environ.get("DAGSTER_HOME"):
        raise BadConfigValue("DAGSTER_HOME is not set (source scripts/env.sh or export it)")
    return dg.DagsterInstance.get()


def domains(arg: str) -> Sequence[str]:
    if arg == "all":
        return DOMAINS
    if arg not in DOMAINS:
        raise UsageError(f"unknown domain {arg!r}; one of: all, {', '.join(DOMAINS)}")
    return (arg,)


def table_or_domain_loaders(args) -> list:
    """The loaders a command works on: one table's (``args.table``), or a domain's (all: every loader)."""
    if (args.table is None) == (args.domain is None):
        raise UsageError("name a TABLE or --domain D|all")
    if args.table is not None:
        tables = all_tables()
        if args.table not in tables:
            raise UsageError(f"unknown table {args.table!r}; one of: {', '.join(sorted(tables))}")
        return [tables[args.table][0]]
    return [l for l in all_loaders() if l.domain in domains(args.domain)]


def present_domains(names: Sequence[str]) -> list[str]:
    have = {l.domain for l in all_loaders()}
    return [d for d in names if d in have]


class Session:
    """What the commands that run jobs share: definitions, instance, console and view."""

    def __init__(self, args, *, quiet: bool = False, label_runs: bool = False, with_definitions: bool = True):
        from migration_assets.console.render import make_console, make_view
        from migration_assets.orchestration.launch import warm_up

        if with_definitions:
            warm_up()  # the run workers' server starts while the definitions load here
        self.args = args
        self.defs = definitions() if with_definitions else None
        self.instance = instance()
        self.console = make_console()
        default_every = 1.0 if self.console.is_terminal else 10.0
        self.every = args.progress_every if args.progress_every is not None else default_every
        self.view = make_view(self.console, self.every, live=not args.verbose, quiet=quiet, label_runs=label_runs)

    def run(self, name: str, **kwargs):
        from migration_assets.console.runs import run_job

        return run_job(self.defs, self.instance, name, self.view, every=self.every, verbose=self.args.verbose,
                       debug=self.args.debug, **kwargs)
