"""Commands about the target itself: ``schema`` (install or adopt, the platform role's
GRANTs) and ``doctor`` (both servers, the role's powers, conformance to the specs)."""

from __future__ import annotations

from urllib.parse import urlsplit

from migration_assets.cli.common import env, resources, target_as
from migration_assets.target.conformance import check_conformance
from migration_assets.target.grants import database_risks, grant_statements, ledger_risks
from migration_assets.target.schema import apply_schema
from migration_assets.verify.invariants.ledger import ledger_loader


def cmd_schema(args) -> int:
    """sql/application and sql/proposed as the application's owner (MIGRATION_PG_OWNER_URL),
    sql/platform as the platform's role (MIGRATION_PG_URL); every object reported."""
    if args.print_grants:
        url = urlsplit(env("MIGRATION_PG_URL"))
        print("\n".join(grant_statements(url.username or "migration_platform", url.path.lstrip("/") or "postgres")))
        return 0
    owner, platform = target_as("MIGRATION_PG_OWNER_URL"), target_as("MIGRATION_PG_URL")
    with owner.connect("schema") as owner_conn:
        if owner.url == platform.url:
            result = apply_schema(owner_conn, alter_application=args.alter_application)
        else:
            with platform.connect("schema") as platform_conn:
                result = apply_schema(owner_conn, platform_conn, alter_application=args.alter_application)
    for action in result.actions:
        if action.done != "present" or args.verbose:
            print(f"  {action.line()}")
    counts = ", ".join(f"{result.count(d)} {d}" for d in ("created", "present", "kept", "dropped", "applied", "skipped")
                       if result.count(d) or d in ("created", "present", "kept"))
    print(f"schema: {result.mode}: {counts} ({len(result.applied)} file(s) with changes)")
    return 0


def cmd_doctor(args) -> int:
    """Both servers reachable, the connected role's powers, and the target's conformance to
    the specs, mismatch by mismatch."""
    with resources() as res:
        with res.mongo.session() as source:
            print(f"doctor: source {source.describe()}: reachable")
        with res.postgres.connect("doctor") as conn:
            print(f"doctor: target {res.postgres.redacted_url}: reachable")
            ledger = ledger_loader()
            role, risks = ledger_risks(conn, [ledger.root.table] if ledger else [])
            for risk in risks:
                print(f"  warning: role {role} holds {risk}: it could switch the ledger's triggers off")
            for risk in database_risks(conn):
                print(f"  warning: role {role} holds {risk}: it could create schemas and extensions "
                      "outside its migration schema (`schema --print-grants` gives it none)")
            found = check_conformance(conn)
    blocking = [m for m in found.all if m.blocking]
    for m in found.all:
        print(f"  {'mismatch' if m.blocking else 'note'}: {m.line()}")
    print(f"doctor: {len(blocking)} mismatch(es), {len(found.all) - len(blocking)} note(s) over "
          f"{len(found.by_table)} tables")
    return 1 if blocking else 0
