"""Jobs by domain (migrate, verify), the full migration, and the hourly verification."""

import dagster as dg

from migration_assets.factory.keys import table_key
from migration_assets.factory.partitions import DOMAIN_PARTITIONS
from migration_assets.spec import DOMAINS


def domain_tables(domain: str) -> dg.AssetSelection:
    return dg.AssetSelection.groups(domain).materializable()


migrate_jobs = [
    dg.define_asset_job(
        f"migrate_{d}",
        selection=domain_tables(d) | dg.AssetSelection.assets(table_key("id_map")),
        partitions_def=DOMAIN_PARTITIONS,
        description=f"Loads and verifies every {d} table, then reconciles id_map for {d} "
        f"(launch with partition '{d}').",
        tags={"domain": d},
    )
    for d in DOMAINS
]

verify_jobs = [
    dg.define_asset_job(
        f"verify_{d}",
        selection=dg.AssetSelection.all_asset_checks() & dg.AssetSelection.groups(d),
        description=f"Runs every check of the {d} tables without loading data.",
        tags={"domain": d},
    )
    for d in DOMAINS
]

migrate_all = dg.define_asset_job(
    "migrate_all_tables",
    selection=dg.AssetSelection.groups(*DOMAINS).materializable(),
    description="Loads and verifies every table of every domain in FK order (id_map is per domain).",
)

verify_all = dg.define_asset_job(
    "verify_all",
    selection=dg.AssetSelection.all_asset_checks(),
    description="Runs every asset check (counts, checksums, integrity, ledger) without loading data.",
)

hourly_verification = dg.ScheduleDefinition(
    name="hourly_verification",
    job=verify_all,
    cron_schedule="0 * * * *",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Re-verifies every table every hour.",
)

defs = dg.Definitions(jobs=[*migrate_jobs, *verify_jobs, migrate_all, verify_all], schedules=[hourly_verification])
