#!/bin/sh
# Run once by the postgres image on a new volume (docker-entrypoint-initdb.d): Dagster's own
# database, and the two roles of the target as production has them: the application owns the
# migration database; the platform has a role of its own (its GRANTs come from
# `migration-assets schema --print-grants`, applied by the schema service).
set -e
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres <<SQL
CREATE DATABASE dagster OWNER $POSTGRES_USER;
CREATE ROLE marketplace_app LOGIN PASSWORD '$APP_PASSWORD';
CREATE ROLE migration_platform LOGIN PASSWORD '$PLATFORM_PASSWORD';
CREATE DATABASE marketplace OWNER marketplace_app;
GRANT CREATE ON DATABASE marketplace TO migration_platform;
SQL
