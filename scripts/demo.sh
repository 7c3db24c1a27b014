#!/usr/bin/env bash
# Command (a): from a fresh clone, set everything up, start the services, load sample data,
# materialize every asset, run every check, print the status, then serve the Dagster UI on
# http://127.0.0.1:3000 (Ctrl-C stops the UI; scripts/services.sh stop stops the servers).
#   DEMO_SCALE (default 1) sizes the sample data; DEMO_NO_UI=1 skips serving the UI.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$MIGRATION_ROOT"
start=$(date +%s)

scripts/setup.sh
scripts/services.sh start
if [ "$MIGRATION_PG_URL" = "postgresql://$PLATFORM_ROLE@127.0.0.1:$PG_PORT/migration" ]; then
    # The demo's own local target only: sample data is regenerated, so start from an empty
    # database (the ledger's triggers rightly refuse TRUNCATE/DELETE of old demo rows).
    scripts/services.sh recreate-target migration
fi
if [ "${DEMO_NO_UI:-0}" != "1" ]; then
    export DAGSTER_WEBSERVER_URL="${DAGSTER_WEBSERVER_URL:-http://127.0.0.1:3000}"  # the runs' links
fi
migration-assets schema                       # the application's files as its owner, the platform's as itself
# The backend team's step in production: the platform role's GRANTs, applied by the owner.
migration-assets schema --print-grants | psql -v ON_ERROR_STOP=1 -q "$MIGRATION_PG_OWNER_URL"
migration-assets generate --scale "${DEMO_SCALE:-1}" --mongo --dump
migration-assets migrate --domain all    # per table: progress, result and checks; then the summary
migration-assets status                  # per domain, and what needs attention
echo "demo: finished in $(( $(date +%s) - start ))s"

if [ "${DEMO_NO_UI:-0}" != "1" ]; then
    dagster-daemon run -w workspace.yaml >"$LOCAL_DIR/daemon.log" 2>&1 &
    daemon=$!
    trap 'kill $daemon 2>/dev/null || true' EXIT
    echo "demo: Dagster UI on http://127.0.0.1:3000 (daemon log: $LOCAL_DIR/daemon.log)"
    dagster-webserver -h 127.0.0.1 -p 3000 -w workspace.yaml
fi
