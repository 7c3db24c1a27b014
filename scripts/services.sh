#!/usr/bin/env bash
# Local services: PostgreSQL 15, the jongodb Mongo server and Redis (the celery executor's
# broker and result backend), on loopback, state in .local/.
#   scripts/services.sh start|stop|status      (start is idempotent)
#   scripts/services.sh recreate-target [DB]   (drop and create an empty target database)
set -euo pipefail
source "$(dirname "$0")/env.sh"

PGDIR="$LOCAL_DIR/pg"
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

pg_running() { [ -f "$PGDIR/data/postmaster.pid" ] && as_pg "$PG_BIN/pg_ctl" -D "$PGDIR/data" status >/dev/null 2>&1; }
mongo_running() { [ -f "$LOCAL_DIR/jongodb.pid" ] && kill -0 "$(cat "$LOCAL_DIR/jongodb.pid")" 2>/dev/null; }
redis_running() { [ -f "$LOCAL_DIR/redis.pid" ] && kill -0 "$(cat "$LOCAL_DIR/redis.pid")" 2>/dev/null; }

# The server runs as the postgres user (initdb refuses root); it must be able to reach .local/pg.
# A checkout under a private directory (mktemp -d is 0700) gets o+x (traverse only) on ancestors.
make_traversable() {
    [ "$(id -u)" = 0 ] || return 0
    local d="$1"
    while [ "$d" != "/" ]; do
        if ! runuser -u postgres -- test -x "$d"; then
            echo "postgres: granting traverse (o+x) on $d"
            chmod o+x "$d"
        fi
        d="$(dirname "$d")"
    done
}

# A target database as production has it: owned by the application's role; the platform's
# role may connect and make temporary tables, and owns the `migration` schema the DBA made for
# it; nothing else (no CREATE on the database: no schema, no extension of its own). Without
# that schema, `migration-assets schema` has the owner make it; `schema --print-grants` gives
# the platform the rest.
create_target_db() {
    psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -v ON_ERROR_STOP=1 -q \
        -c "CREATE DATABASE $1 OWNER $APP_ROLE" -c "GRANT CONNECT, TEMPORARY ON DATABASE $1 TO $PLATFORM_ROLE" >/dev/null
    # as the DBA would: the platform's own schema, the one place it creates objects
    psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -d "$1" -v ON_ERROR_STOP=1 -q \
        -c "CREATE SCHEMA migration AUTHORIZATION $PLATFORM_ROLE" >/dev/null
}

start_pg() {
    if ! [ -f "$PGDIR/data/PG_VERSION" ]; then
        mkdir -p "$PGDIR"
        make_traversable "$LOCAL_DIR"
        [ "$(id -u)" = 0 ] && chown postgres:postgres "$PGDIR"
        as_pg "$PG_BIN/initdb" -D "$PGDIR/data" -U postgres -A trust --no-sync -E UTF8 --locale=C.UTF-8 >/dev/null
    fi
    if ! pg_running; then
        as_pg "$PG_BIN/pg_ctl" -D "$PGDIR/data" -l "$PGDIR/server.log" -w -t 30 \
            -o "-p $PG_PORT -k $PGDIR -c listen_addresses=127.0.0.1 -c max_connections=200" start >/dev/null
    fi
    # The application's owner role and the platform's least-privilege role (see README,
    # "Least privilege"); the migration database belongs to the application.
    psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -v ON_ERROR_STOP=1 -qc "DO \$\$ BEGIN
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '$APP_ROLE') THEN CREATE ROLE $APP_ROLE LOGIN; END IF;
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '$PLATFORM_ROLE') THEN CREATE ROLE $PLATFORM_ROLE LOGIN; END IF;
        END \$\$" >/dev/null
    psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'dagster'" | grep -q 1 \
        || psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -qc "CREATE DATABASE dagster" >/dev/null
    psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'migration'" | grep -q 1 \
        || create_target_db migration
    echo "postgres: 127.0.0.1:$PG_PORT (databases migration (owner $APP_ROLE, platform role $PLATFORM_ROLE), dagster)"
}

start_mongo() {
    if ! mongo_running; then
        nohup "$JONGODB_BIN" --host=127.0.0.1 --port="$MONGO_PORT" >"$LOCAL_DIR/jongodb.log" 2>&1 &
        echo $! >"$LOCAL_DIR/jongodb.pid"
    fi
    for _ in $(seq 1 50); do
        "$MIGRATION_ROOT/.venv/bin/python" -c "import pymongo,sys; pymongo.MongoClient(sys.argv[1], serverSelectionTimeoutMS=300).admin.command('ping')" \
            "$MONGODB_URI" 2>/dev/null && { echo "mongo: $MONGODB_URI (jongodb, in memory)"; return; }
        sleep 0.2
    done
    echo "mongo: jongodb did not answer on port $MONGO_PORT; see $LOCAL_DIR/jongodb.log" >&2
    exit 1
}

redis_ping() {
    if command -v redis-cli >/dev/null; then
        [ "$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null)" = PONG ]
    else
        "$MIGRATION_ROOT/.venv/bin/python" -c "import redis,sys; redis.Redis(host='127.0.0.1', port=int(sys.argv[1]), socket_timeout=0.3).ping()" \
            "$REDIS_PORT" 2>/dev/null
    fi
}

# In memory only (--save '', no AOF): queued steps and results do not outlive a restart.
start_redis() {
    if ! redis_running; then
        mkdir -p "$LOCAL_DIR/redis"
        redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$LOCAL_DIR/redis" \
            --pidfile "$LOCAL_DIR/redis.pid" --logfile "$LOCAL_DIR/redis.log" --daemonize yes
    fi
    for _ in $(seq 1 50); do
        redis_ping && { echo "redis: 127.0.0.1:$REDIS_PORT (broker $CELERY_BROKER_URL, backend $CELERY_BACKEND_URL; in memory)"; return; }
        sleep 0.2
    done
    echo "redis: redis-server did not answer PING on port $REDIS_PORT; see $LOCAL_DIR/redis.log" >&2
    exit 1
}

case "${1:-start}" in
    start) mkdir -p "$LOCAL_DIR"; start_pg; start_mongo; start_redis ;;
    recreate-target)  # the demo's own local target only: an empty database for regenerated data
        psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -qc "DROP DATABASE IF EXISTS ${2:-migration} WITH (FORCE)" >/dev/null
        create_target_db "${2:-migration}"
        ;;
    stop)
        pg_running && as_pg "$PG_BIN/pg_ctl" -D "$PGDIR/data" -m fast -w stop >/dev/null && echo "postgres: stopped"
        if mongo_running; then kill "$(cat "$LOCAL_DIR/jongodb.pid")"; rm -f "$LOCAL_DIR/jongodb.pid"; echo "mongo: stopped"; fi
        if redis_running; then
            pid="$(cat "$LOCAL_DIR/redis.pid")"; kill "$pid"
            for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            rm -f "$LOCAL_DIR/redis.pid"; echo "redis: stopped"
        fi
        ;;
    status)
        pg_running && echo "postgres: running on $PG_PORT" || echo "postgres: stopped"
        mongo_running && echo "mongo: running on $MONGO_PORT" || echo "mongo: stopped"
        redis_running && echo "redis: running on $REDIS_PORT" || echo "redis: stopped"
        ;;
    *) echo "usage: $0 start|stop|status|recreate-target [DB]" >&2; exit 2 ;;
esac
