"""Resources, bound to environment variables (``scripts/env.sh`` holds the local defaults)."""

import dagster as dg

from migration_assets.factory.resources import MongoSourceResource, PostgresTargetResource

defs = dg.Definitions(
    resources={
        "mongo": MongoSourceResource(
            uri=dg.EnvVar("MONGODB_URI"),
            database=dg.EnvVar("MONGODB_DATABASE"),
            mode=dg.EnvVar("MIGRATION_SOURCE"),
            dump_dir=dg.EnvVar("MONGODUMP_DIR"),
            checksum_workers=dg.EnvVar.int("MIGRATION_CHECKSUM_WORKERS"),
            allowed_hosts=dg.EnvVar("MIGRATION_MONGO_ALLOWED_HOSTS"),
        ),
        "postgres": PostgresTargetResource(
            url=dg.EnvVar("MIGRATION_PG_URL"),
            allowed_hosts=dg.EnvVar("MIGRATION_PG_ALLOWED_HOSTS"),
        ),
    }
)
