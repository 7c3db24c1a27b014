"""Resources, configured only by environment variables (see ``.env.example``)."""

import dagster as dg

from migration_assets.resources import MongoSourceResource, PostgresTargetResource

defs = dg.Definitions(
    resources={
        "mongo": MongoSourceResource(
            uri=dg.EnvVar("MONGODB_URI"),
            database=dg.EnvVar("MONGODB_DATABASE"),
            mode=dg.EnvVar("MIGRATION_SOURCE"),
            dump_dir=dg.EnvVar("MONGODUMP_DIR"),
        ),
        "postgres": PostgresTargetResource(
            url=dg.EnvVar("MIGRATION_PG_URL"),
            allowed_hosts=dg.EnvVar("MIGRATION_PG_ALLOWED_HOSTS"),
        ),
    }
)
