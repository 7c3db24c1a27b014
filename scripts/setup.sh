#!/usr/bin/env bash
# Installs everything the project needs on a fresh machine; safe to re-run.
#   PostgreSQL 15 and Redis 7 (Debian packages; Redis is the celery executor's broker),
#   the jongodb Mongo wire-protocol server (npm), the Python virtual environment at .venv
#   with the project and its test extras, and DAGSTER_HOME pointing at the repo's dagster.yaml.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$MIGRATION_ROOT"

need_apt=()
[ -x "$PG_BIN/initdb" ] || need_apt+=(postgresql)
command -v npm >/dev/null || need_apt+=(nodejs npm)
command -v redis-server >/dev/null || need_apt+=(redis-server)
if [ "${#need_apt[@]}" -gt 0 ]; then
    echo "setup: apt-get install ${need_apt[*]}"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

mkdir -p "$LOCAL_DIR/npm"
if [ ! -x "$JONGODB_BIN" ]; then
    echo "setup: npm install jongodb"
    (cd "$LOCAL_DIR/npm" && npm install --no-audit --no-fund --silent @jongodb/memory-server-bin-linux-x64-gnu@0.1.6 >/dev/null)
fi

if [ ! -x .venv/bin/python ]; then
    echo "setup: python venv at .venv"
    python3 -m venv .venv
fi
stamp=.venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)
if [ ! -f "$stamp" ]; then
    echo "setup: pip install -e .[dev]"
    .venv/bin/pip install -q --upgrade pip >/dev/null
    .venv/bin/pip install -q -e ".[dev]"
    rm -f .venv/.installed-*
    touch "$stamp"
fi

mkdir -p "$DAGSTER_HOME"
ln -sf "$MIGRATION_ROOT/dagster.yaml" "$DAGSTER_HOME/dagster.yaml"
echo "setup: done"
