# Sourced by the scripts: local defaults for every variable the code reads. Anything already
# set in the environment wins, so the same scripts drive a real MongoDB / PostgreSQL.
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export MIGRATION_ROOT="$ROOT"
export LOCAL_DIR="${LOCAL_DIR:-$ROOT/.local}"
export PG_PORT="${PG_PORT:-54329}"
export MONGO_PORT="${MONGO_PORT:-27117}"
export REDIS_PORT="${REDIS_PORT:-6389}"
export PG_BIN="${PG_BIN:-/usr/lib/postgresql/15/bin}"
export JONGODB_BIN="${JONGODB_BIN:-$LOCAL_DIR/npm/node_modules/@jongodb/memory-server-bin-linux-x64-gnu/bin/jongodb}"

export MONGODB_URI="${MONGODB_URI:-mongodb://127.0.0.1:$MONGO_PORT/?directConnection=true}"
export MONGODB_DATABASE="${MONGODB_DATABASE:-marketplace}"
export MIGRATION_SOURCE="${MIGRATION_SOURCE:-live}"
export MONGODUMP_DIR="${MONGODUMP_DIR:-$LOCAL_DIR/dump}"
# The application owns its tables (APP_ROLE, the one its migrations run as: `schema` uses it);
# the platform connects as a role of its own with only the grants it needs (PLATFORM_ROLE).
export APP_ROLE="${APP_ROLE:-marketplace_app}"
export PLATFORM_ROLE="${PLATFORM_ROLE:-migration_platform}"
export MIGRATION_PG_URL="${MIGRATION_PG_URL:-postgresql://$PLATFORM_ROLE@127.0.0.1:$PG_PORT/migration}"
export MIGRATION_PG_OWNER_URL="${MIGRATION_PG_OWNER_URL:-postgresql://$APP_ROLE@127.0.0.1:$PG_PORT/migration}"
export MIGRATION_PG_ALLOWED_HOSTS="${MIGRATION_PG_ALLOWED_HOSTS:-127.0.0.1,localhost,::1}"
# The Mongo servers the reverse sync (PostgreSQL -> Mongo) may write to.
export MIGRATION_MONGO_ALLOWED_HOSTS="${MIGRATION_MONGO_ALLOWED_HOSTS:-127.0.0.1,localhost,::1}"
# Processes hashing the Mongo side of a checksum (collections of 50k documents or more).
export MIGRATION_CHECKSUM_WORKERS="${MIGRATION_CHECKSUM_WORKERS:-1}"
# Dagster's own run / event-log / schedule storage (dagster-postgres; see dagster.yaml).
export DAGSTER_PG_URL="${DAGSTER_PG_URL:-postgresql://postgres:postgres@127.0.0.1:$PG_PORT/dagster}"
export DAGSTER_HOME="${DAGSTER_HOME:-$LOCAL_DIR/dagster_home}"
# The celery executor's broker and result backend (Redis, see scripts/services.sh); the workers
# (scripts/celery_workers.sh) and every run on the celery executor use the same two URLs.
export CELERY_BROKER_URL="${CELERY_BROKER_URL:-redis://127.0.0.1:$REDIS_PORT/0}"
export CELERY_BACKEND_URL="${CELERY_BACKEND_URL:-redis://127.0.0.1:$REDIS_PORT/1}"
export PATH="$ROOT/.venv/bin:$PATH"
