#!/usr/bin/env bash
# Command (a): from a fresh clone, set everything up, start the services, load sample data,
# materialize every asset, run every check, print a summary, then serve the Dagster UI on
# http://127.0.0.1:3000 (Ctrl-C stops the UI; scripts/services.sh stop stops the servers).
#   DEMO_SCALE (default 1) sizes the sample data; DEMO_NO_UI=1 skips serving the UI.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$MIGRATION_ROOT"
start=$(date +%s)

scripts/setup.sh
scripts/services.sh start
migration-assets schema
migration-assets generate --scale "${DEMO_SCALE:-1}" --mongo --dump
migration-assets migrate --domain all
migration-assets summary
echo "demo: finished in $(( $(date +%s) - start ))s"

if [ "${DEMO_NO_UI:-0}" != "1" ]; then
    dagster-daemon run -w workspace.yaml >"$LOCAL_DIR/daemon.log" 2>&1 &
    daemon=$!
    trap 'kill $daemon 2>/dev/null || true' EXIT
    echo "demo: Dagster UI on http://127.0.0.1:3000 (daemon log: $LOCAL_DIR/daemon.log)"
    dagster-webserver -h 127.0.0.1 -p 3000 -w workspace.yaml
fi
